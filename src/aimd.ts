import { checkNumber } from "./_options.ts";
import { type Window, Windowed } from "./_windowed.ts";
import type { AdaptiveOptions, LimitAlgorithm } from "./limit_algorithm.ts";

/** Options for {@linkcode aimd}. */
export interface AimdOptions extends AdaptiveOptions {
  /**
   * The factor the limit is multiplied by after a window with queueing or
   * drops, in (0, 1).
   *
   * @default {0.9}
   */
  backoff?: number;
  /**
   * How much slower than the no-load latency a window's mean latency may be
   * before it counts as queueing: a factor >= 1.
   *
   * @default {1.2}
   */
  tolerance?: number;
  /**
   * Added to the limit after a window without queueing, > 0. The step
   * doubles with each further quiet window in a row, so that capacity that
   * came back is found in a few windows rather than hundreds.
   *
   * @default {1}
   */
  increase?: number;
}

class Aimd extends Windowed {
  #backoff: number;
  #tolerance: number;
  #increase: number;
  #step: number;

  constructor(options: AimdOptions | undefined) {
    super(options, ["backoff", "tolerance", "increase"]);
    const given = this.options;
    this.#backoff = checkNumber("backoff", given.backoff, {
      fallback: 0.9,
      above: 0,
      below: 1,
    });
    this.#tolerance = checkNumber("tolerance", given.tolerance, {
      fallback: 1.2,
      min: 1,
      max: Infinity,
    });
    this.#increase = checkNumber("increase", given.increase, {
      fallback: 1,
      above: 0,
      max: Infinity,
    });
    this.#step = this.#increase;
  }

  protected congested(window: Window): boolean {
    return window.dropped || window.rtt > window.noLoadRtt * this.#tolerance;
  }

  protected decide(_window: Window, congested: boolean): number {
    if (congested) {
      this.#step = this.#increase;
      return this.estimate * this.#backoff;
    }
    const next = this.estimate + this.#step;
    this.#step *= 2;
    return next;
  }
}

/**
 * Additive increase, multiplicative decrease, as TCP congestion control
 * does: the limit grows by `increase` after each window of about `limit`
 * samples whose mean latency stays within `tolerance` of the no-load latency
 * (the step doubling while such windows follow each other), and is
 * multiplied by `backoff` after a window that is slower or saw a drop.
 * Simple and predictable; it keeps the limit in a saw-tooth just above what
 * the downstream serves without queueing.
 *
 * @example
 * ```ts
 * import { aimd, throttle } from "@floodgate/floodgate";
 *
 * const fetch = throttle(() => new Response("ok"), {
 *   limit: aimd({ initial: 10, max: 200 }),
 *   queue: 100,
 * });
 * console.log(fetch.stats().limit); // 10, from the start
 * ```
 *
 * @param options The bounds and the tuning knobs.
 * @returns A {@linkcode LimitAlgorithm} for the `limit` option.
 * @throws {TypeError} If an option has the wrong type or is unknown.
 * @throws {RangeError} If a number is out of range, or `initial` is outside
 * [`min`, `max`].
 */
export function aimd(options?: AimdOptions): LimitAlgorithm {
  return new Aimd(options);
}
