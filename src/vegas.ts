import { checkNumber } from "./_options.ts";
import { type Window, Windowed } from "./_windowed.ts";
import type { AdaptiveOptions, LimitAlgorithm } from "./limit_algorithm.ts";

/** Options for {@linkcode vegas}. */
export interface VegasOptions extends AdaptiveOptions {
  /**
   * Below this estimated queue, as a fraction of the limit, the limit grows
   * (by that fraction).
   *
   * @default {0.1}
   */
  alpha?: number;
  /**
   * Above this estimated queue, as a fraction of the limit, the limit shrinks
   * by the excess. Must be >= `alpha`.
   *
   * @default {0.2}
   */
  beta?: number;
}

class Vegas extends Windowed {
  #alpha: number;
  #beta: number;

  constructor(options: VegasOptions | undefined) {
    super(options, ["alpha", "beta"]);
    const given = this.options;
    this.#alpha = checkNumber("alpha", given.alpha, {
      fallback: 0.1,
      above: 0,
      max: 1,
    });
    this.#beta = checkNumber("beta", given.beta, {
      fallback: Math.max(0.2, this.#alpha),
      min: this.#alpha,
      max: 1,
    });
  }

  /** How many of the permits held were queueing rather than working. */
  #queue(window: Window): number {
    // No measured latency, or none to compare with: no sign of queueing.
    if (!(window.rtt > 0) || window.noLoadRtt === Infinity) return 0;
    return window.inflight * (1 - window.noLoadRtt / window.rtt);
  }

  protected congested(window: Window): boolean {
    return window.dropped ||
      this.#queue(window) > this.#alpha * window.inflight;
  }

  protected decide(window: Window, _congested: boolean): number {
    const limit = this.estimate;
    if (window.dropped) return limit / 2;
    const queue = this.#queue(window);
    if (queue > this.#beta * limit) return limit - (queue - this.#beta * limit);
    if (queue < this.#alpha * limit) {
      return limit + Math.max(1, this.#alpha * limit);
    }
    return limit;
  }
}

/**
 * TCP Vegas applied to concurrency: the latency over the no-load latency
 * tells how many of the permits held are queueing
 * (`inflight * (1 - noLoadRtt / rtt)`). Below `alpha * limit` queued the
 * limit grows, above `beta * limit` it shrinks by the excess, in between it
 * holds, so the limit settles where the downstream is just saturated.
 * Allowances proportional to the limit keep small limits stable.
 *
 * @example
 * ```ts
 * import { Limiter, vegas } from "@floodgate/floodgate";
 *
 * const limiter = new Limiter({ limit: vegas({ max: 500 }), queue: 1000 });
 * console.log(await limiter.run(() => "done")); // "done"
 * ```
 *
 * @param options The bounds and the tuning knobs.
 * @returns A {@linkcode LimitAlgorithm} for the `limit` option.
 * @throws {TypeError} If an option has the wrong type or is unknown.
 * @throws {RangeError} If a number is out of range, or `initial` is outside
 * [`min`, `max`].
 */
export function vegas(options?: VegasOptions): LimitAlgorithm {
  return new Vegas(options);
}
