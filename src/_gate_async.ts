import type { AsyncLimiter } from "./async_limiter.ts";
import type { Adapter } from "./_gate.ts";
import { call, type GateConfig } from "./_gate_options.ts";
import { checkCallbackResult, CLIENT_CLOSED } from "./_gate_shared.ts";
import type { Observer } from "./_observe.ts";
import { deliveredBy, releaseAfterBody } from "./_release_body.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";
import type { ThrottledHandler } from "./throttle.ts";

/**
 * The gate on an {@linkcode AsyncLimiter}: every request awaits its
 * acquisition (a round trip to the store), then runs as in the synchronous
 * gate. Kept apart so that the in-process path stays as it is.
 */
export function asyncGate<
  A extends unknown[],
  R extends Response | undefined,
  S,
>(
  handler: (request: Request, ...rest: A) => R | Promise<R>,
  config: GateConfig<S, A>,
  adapter: Adapter<S, A>,
): ThrottledHandler<A, R> {
  const limiter = config.remote as AsyncLimiter;
  const { skip, askOf, byBody, reject, overloaded } = config;
  function turnAway(subject: S, reason: RejectReason, priority = 3) {
    const retryAfter = config.retryAfter !== "auto"
      ? config.retryAfter
      : limiter.retryAfter?.(priority) ?? 1;
    if (reject === undefined) return overloaded(retryAfter);
    const { limit, active, queued } = limiter.stats();
    return reject(subject, { reason, limit, active, queued, retryAfter });
  }

  async function throttled(
    request: Request,
    ...rest: A
  ): Promise<R | Response> {
    const subject = adapter.subject(request, rest);
    const extra = adapter.callbackArguments(rest);
    if (skip !== undefined) {
      const skipped = call(skip, subject, extra);
      checkCallbackResult("skip", skipped);
      if (skipped) return handler(request, ...rest);
    }
    let permit;
    let ask;
    try {
      ask = askOf?.(subject, extra);
      permit = await limiter.acquire({ ...ask, signal: request.signal });
    } catch (error) {
      if (error instanceof RejectedError) {
        return turnAway(subject, error.reason, ask?.priority);
      }
      if (request.signal.aborted) return new Response(null, CLIENT_CLOSED);
      throw error;
    }
    const release = () => permit.release();
    let response: R;
    try {
      response = await handler(request, ...rest);
    } catch (error) {
      release();
      throw error;
    }
    if (!byBody) {
      release();
      return response;
    }
    const when = {
      method: request.method,
      delivered: deliveredBy(adapter.server(rest)),
    };
    return releaseAfterBody(response, when, release);
  }

  function observe(observer: Observer): () => void {
    if (limiter.observe === undefined) {
      throw new TypeError("floodgate: the shared limiter has no observe()");
    }
    return limiter.observe(observer);
  }

  return Object.assign(throttled, {
    stats: () => ({ ...limiter.stats(), keys: 0 }),
    close: () => limiter.close(),
    observe,
  });
}
