import type { Observable } from "./_observe.ts";
import type { LimiterStats } from "./limiter.ts";

/**
 * What metrics can be taken from: a `Limiter`, a throttled handler or a Hono
 * middleware (anything with `observe()` and `stats()`).
 */
export interface MetricsTarget extends Observable {
  /** The limit and the load now. */
  stats(): Pick<LimiterStats, "limit" | "active" | "queued">;
}

/**
 * The upper bounds, in seconds, of the wait and hold histograms: from 1 ms
 * (a wait of 0, the common case below the limit, lands in the first) to a
 * minute, about 2.5x apart, which suits request latencies.
 */
export const LATENCY_BUCKETS: readonly number[] = Object.freeze([
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
]);

/** The results a request counts under, in the order they are written. */
export const RESULTS = [
  "admitted",
  "full",
  "timeout",
  "closed",
  "aborted",
] as const;

/** One of {@linkcode RESULTS}. */
export type Result = typeof RESULTS[number];

/** Whether `value` has `observe()` and `stats()`. */
export function isMetricsTarget(value: unknown): value is MetricsTarget {
  return (typeof value === "object" || typeof value === "function") &&
    value !== null &&
    typeof (value as MetricsTarget).observe === "function" &&
    typeof (value as MetricsTarget).stats === "function";
}
