/**
 * floodgate caps how many requests a Web-standard fetch handler runs at once:
 * at most `limit` run, at most `queue` wait, and everyone else gets a fast
 * 503 with `Retry-After`, so a flood cannot exhaust the server.
 *
 * @example Protecting a fetch handler
 * ```ts
 * import { throttle } from "@floodgate/floodgate";
 *
 * const handler = (_request: Request) => new Response("hello");
 * export default { fetch: throttle(handler, { limit: 100 }) };
 * ```
 *
 * @module
 */
export {
  type AcquireOptions,
  Limiter,
  type LimiterOptions,
  type LimiterStats,
  type Permit,
  type TryAcquireOptions,
} from "./src/limiter.ts";
export type {
  AdmittedEvent,
  Observable,
  Observer,
  RejectedEvent,
  ReleasedEvent,
} from "./src/_observe.ts";
export { RejectedError, type RejectReason } from "./src/rejected_error.ts";
export type { AsyncLimiter } from "./src/async_limiter.ts";
export type {
  AdaptiveOptions,
  LimitAlgorithm,
  LimitSample,
} from "./src/limit_algorithm.ts";
export { aimd, type AimdOptions } from "./src/aimd.ts";
export { gradient, type GradientOptions } from "./src/gradient.ts";
export { vegas, type VegasOptions } from "./src/vegas.ts";
export {
  type OwnLimiterOptions,
  type Reject,
  type RejectInfo,
  type SharedLimiterOptions,
  throttle,
  type ThrottleBaseOptions,
  type ThrottleControls,
  type ThrottledHandler,
  type ThrottleOptions,
  type ThrottleStats,
} from "./src/throttle.ts";
