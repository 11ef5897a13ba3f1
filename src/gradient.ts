import { checkNumber } from "./_options.ts";
import { type Window, Windowed } from "./_windowed.ts";
import type { AdaptiveOptions, LimitAlgorithm } from "./limit_algorithm.ts";

/** Options for {@linkcode gradient}. */
export interface GradientOptions extends AdaptiveOptions {
  /**
   * How much slower than the no-load latency a window may be before the
   * limit is pulled down: a factor >= 1.
   *
   * @default {1.1}
   */
  tolerance?: number;
  /**
   * The queue allowed on top of the limit, as a fraction of it; also how
   * fast the limit grows while there is no queueing.
   *
   * @default {0.1}
   */
  queue?: number;
  /**
   * How far each window moves the limit toward its new target, in (0, 1].
   *
   * @default {0.5}
   */
  smoothing?: number;
}

class Gradient extends Windowed {
  #tolerance: number;
  #queue: number;
  #smoothing: number;

  constructor(options: GradientOptions | undefined) {
    super(options, ["tolerance", "queue", "smoothing"]);
    const given = this.options;
    this.#tolerance = checkNumber("tolerance", given.tolerance, {
      fallback: 1.1,
      min: 1,
      max: Infinity,
    });
    this.#queue = checkNumber("queue", given.queue, {
      fallback: 0.1,
      above: 0,
      max: 1,
    });
    this.#smoothing = checkNumber("smoothing", given.smoothing, {
      fallback: 0.5,
      above: 0,
      max: 1,
    });
  }

  #gradient(window: Window): number {
    if (window.dropped) return 0.5;
    // No measured latency, or none to compare with: no sign of queueing.
    if (!(window.rtt > 0) || window.noLoadRtt === Infinity) return 1;
    const ratio = (this.#tolerance * window.noLoadRtt) / window.rtt;
    return Math.min(1, Math.max(0.5, ratio));
  }

  protected congested(window: Window): boolean {
    return this.#gradient(window) < 1;
  }

  protected decide(window: Window, _congested: boolean): number {
    const limit = this.estimate;
    const target = limit * this.#gradient(window) + this.#queue * limit;
    return limit + (target - limit) * this.#smoothing;
  }
}

/**
 * In the spirit of Netflix's Gradient2: the ratio of the no-load latency
 * (with `tolerance`) to a window's mean latency is a gradient in [0.5, 1]
 * that scales the limit down when requests queue, and a queue allowance
 * proportional to the limit lets it grow when they do not; `smoothing`
 * damps each step. Unlike Gradient2 the reference is the measured no-load
 * latency, not a long-term average, which would absorb sustained queueing
 * and drift upward.
 *
 * @example
 * ```ts
 * import { gradient, throttle } from "@floodgate/floodgate";
 *
 * export default {
 *   fetch: throttle(() => new Response("ok"), { limit: gradient(), queue: 50 }),
 * };
 * ```
 *
 * @param options The bounds and the tuning knobs.
 * @returns A {@linkcode LimitAlgorithm} for the `limit` option.
 * @throws {TypeError} If an option has the wrong type or is unknown.
 * @throws {RangeError} If a number is out of range, or `initial` is outside
 * [`min`, `max`].
 */
export function gradient(options?: GradientOptions): LimitAlgorithm {
  return new Gradient(options);
}
