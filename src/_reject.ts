import { show } from "./_options.ts";
import type { RejectReason } from "./rejected_error.ts";

/** What a `reject` callback learns about a rejected request. */
export interface RejectInfo {
  /** Why the request was rejected. */
  reason: RejectReason;
  /** The limit of the limiter that rejected it. */
  limit: number;
  /** Requests running on that limiter. */
  active: number;
  /** Requests waiting on that limiter. */
  queued: number;
  /** The request's key, when the `key` option is set. */
  key?: string;
}

/** Builds the response for a rejected request. */
export type Reject<S> = (
  subject: S,
  info: RejectInfo,
) => Response | Promise<Response>;

function checkRejection(response: unknown): Response {
  if (!(response instanceof Response)) {
    throw new TypeError(
      `floodgate: option "reject" must return a Response, got ${
        show(response)
      }`,
    );
  }
  return response;
}

/** The user's `reject`, with its answer checked. */
export function checkedReject<S>(reject: Reject<S>): Reject<S> {
  return (subject, info) => {
    const response = reject(subject, info);
    return response instanceof Promise
      ? response.then(checkRejection)
      : checkRejection(response);
  };
}

/**
 * The default rejection: 503 with `Retry-After` and a short plain-text body.
 * Its init is made once, so that a flood of rejections costs less than
 * serving real responses.
 */
export function defaultRejection(
  options: { retryAfter: number },
): () => Response {
  const init: ResponseInit = {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(options.retryAfter),
    },
  };
  return () => new Response("Service Unavailable: server at capacity\n", init);
}
