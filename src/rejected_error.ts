/**
 * Why a permit was not granted: `"full"` (no free permit and no room in the
 * queue), `"timeout"` (waited longer than `queueTimeout`), `"closed"` (the
 * limiter was closed) or `"unavailable"` (a fleet limiter could not reach
 * its store, e.g. Redis).
 */
export type RejectReason = "full" | "timeout" | "closed" | "unavailable";

const messages: Record<RejectReason, string> = {
  full: "floodgate: no free permit and the queue is full",
  timeout: "floodgate: waited in the queue longer than queueTimeout",
  closed: "floodgate: the limiter is closed",
  unavailable: "floodgate: the limiter's store cannot be reached",
};

/**
 * The error a {@linkcode Limiter} rejects with when it does not grant a
 * permit. Test for it with `instanceof` and branch on `reason`.
 *
 * @example Telling overload from other failures
 * ```ts
 * import { Limiter, RejectedError } from "@floodgate/floodgate";
 *
 * const limiter = new Limiter({ limit: 1 });
 * const held = limiter.tryAcquire();
 * try {
 *   await limiter.acquire();
 * } catch (error) {
 *   if (!(error instanceof RejectedError)) throw error;
 *   console.log(error.reason); // "full"
 * }
 * held?.release();
 * ```
 */
export class RejectedError extends Error {
  /** Why the permit was not granted. */
  readonly reason: RejectReason;

  /**
   * Creates the error for `reason`, with a message that explains it.
   *
   * @param reason Why the permit was not granted.
   */
  constructor(reason: RejectReason) {
    super(messages[reason]);
    this.name = "RejectedError";
    this.reason = reason;
  }
}
