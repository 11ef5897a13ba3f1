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

/**
 * The rejection of a gate: the user's `reject`, checked, or the default 503
 * with `Retry-After` and a short plain-text body, whose init is made once so
 * that a flood of rejections costs less than serving real responses.
 */
export function rejection<S>(
  reject: Reject<S> | undefined,
  options: { retryAfter: number },
): Reject<S> {
  if (reject !== undefined) {
    return (subject, info) => {
      const response = reject(subject, info);
      return response instanceof Promise
        ? response.then(checkRejection)
        : checkRejection(response);
    };
  }
  const init: ResponseInit = {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(options.retryAfter),
    },
  };
  return () => new Response("Service Unavailable: server at capacity\n", init);
}
