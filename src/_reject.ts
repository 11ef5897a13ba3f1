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
  /**
   * The seconds the default rejection sends in `Retry-After`: the
   * `retryAfter` option, or with `"auto"` the estimate for this request.
   */
  retryAfter: number;
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
 * D5: the `Retry-After` seconds for an expected wait of `wait` ms, spread by
 * up to +50% so that rejected clients do not return in step, rounded up and
 * kept within 1-60.
 */
export function retryAfterSeconds(wait: number): number {
  const seconds = Math.ceil(wait * (1 + Math.random() / 2) / 1000);
  return seconds < 1 ? 1 : seconds > 60 ? 60 : seconds;
}

/**
 * The default rejection: 503 with `Retry-After` and a short plain-text body.
 * The init of each `Retry-After` value is made once, so that a flood of
 * rejections costs less than serving real responses.
 */
export function defaultRejection(): (retryAfter: number) => Response {
  const inits = new Map<number, ResponseInit>();
  return (retryAfter) => {
    let init = inits.get(retryAfter);
    if (init === undefined) {
      init = {
        status: 503,
        headers: {
          "content-type": "text/plain; charset=utf-8",
          "retry-after": String(retryAfter),
        },
      };
      // "auto" sends 1-60; a fixed value is one more.
      if (inits.size < 64) inits.set(retryAfter, init);
    }
    // Neutral wording: the same body answers "full", "timeout", "closed" and
    // a fleet limit whose Redis is "unavailable".
    return new Response("Service Unavailable: try again later\n", init);
  };
}
