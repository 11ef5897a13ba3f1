/** One released permit, as seen by a {@linkcode LimitAlgorithm}. */
export interface LimitSample {
  /** Milliseconds from grant to release. */
  rtt: number;
  /** Permits held right after this one was granted, itself included. */
  inflight: number;
  /** Whether the work failed in a way that signals overload. */
  dropped: boolean;
}

/**
 * A limit that moves with measured latency. A {@linkcode Limiter} calls
 * `update` once per released permit and then applies `limit`. Implement it to
 * bring your own algorithm, or use {@linkcode aimd}, {@linkcode vegas} or
 * {@linkcode gradient}.
 */
export interface LimitAlgorithm {
  /** The current limit, an integer >= 1. */
  readonly limit: number;
  /** Takes one sample into account. */
  update(sample: LimitSample): void;
}

/** Whether `value` looks like a {@linkcode LimitAlgorithm}. */
export function isLimitAlgorithm(value: unknown): value is LimitAlgorithm {
  return typeof value === "object" && value !== null &&
    typeof (value as LimitAlgorithm).update === "function";
}

/** The bounds every adaptive algorithm takes. */
export interface AdaptiveOptions {
  /**
   * The limit from creation on, until the measurements move it.
   *
   * @default {20}
   */
  initial?: number;
  /**
   * The lowest limit, an integer >= 1.
   *
   * @default {1}
   */
  min?: number;
  /**
   * The highest limit.
   *
   * @default {1000}
   */
  max?: number;
}
