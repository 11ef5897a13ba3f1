import { checkInteger, checkOptionsObject } from "./_options.ts";
import type { LimitAlgorithm, LimitSample } from "./limit_algorithm.ts";

/** What one window of samples showed. */
export interface Window {
  /** The limit the window was collected under. */
  limit: number;
  /** The mean round trip. */
  rtt: number;
  /** The mean number of permits held. */
  inflight: number;
  /** Whether any sample was dropped. */
  dropped: boolean;
  /** The lowest round trip measured with no queueing, in ms. */
  noLoadRtt: number;
}

/** The smallest window, so that tiny limits still average a few samples. */
const MIN_WINDOW = 10;

/**
 * The machinery the adaptive algorithms share. Deciding on every sample
 * overshoots, because the completions of one round all reflect the
 * concurrency before the last change; so samples are gathered into windows
 * of about `limit` and one decision is made per window. The limit starts at
 * `initial` and the latency with no queueing is the lowest seen so far,
 * learned from the samples at whatever limit is in force (a server that
 * starts under load must not drop to `min` to measure it). At `min` the
 * lowest latency of a window replaces it, so that a downstream that became
 * slower for good is not mistaken for queueing forever. A sample of 0 ms
 * carries no timing (Workers stop the clock between I/O): it counts for the
 * load, not for the latency.
 */
export abstract class Windowed implements LimitAlgorithm {
  readonly min: number;
  readonly max: number;
  /** The options as given, for the subclass to check its own. */
  protected readonly options: Record<string, unknown>;
  #estimate: number;
  #growing = true;
  /** Whether the first descent from `initial` is still under way. */
  #descending = true;
  /** The window before a step down of the descent, while it is tried. */
  #stepFrom: { estimate: number; rtt: number } | undefined = undefined;
  /** Windows to wait after a step, whose samples began before it. */
  #settling = 0;
  #noLoadRtt = Infinity;

  #count = 0;
  #timed = 0;
  #rttSum = 0;
  #rttMin = Infinity;
  #inflightSum = 0;
  #dropped = false;

  /** Checks the shared options; returns all options for the subclass. */
  constructor(options: unknown, known: readonly string[]) {
    const given = checkOptionsObject(options, [
      "initial",
      "min",
      "max",
      ...known,
    ]);
    this.options = given;
    this.min = checkInteger("min", given.min, { min: 1, fallback: 1 });
    this.max = checkInteger("max", given.max, {
      min: this.min,
      fallback: Math.max(1000, this.min),
    });
    this.#estimate = checkInteger("initial", given.initial, {
      min: this.min,
      fallback: Math.min(Math.max(20, this.min), this.max),
    });
    if (this.#estimate > this.max) {
      throw new RangeError(
        `floodgate: option "initial" must be <= max (${this.max}), got ${this.#estimate}`,
      );
    }
  }

  get limit(): number {
    return Math.floor(this.#estimate);
  }

  update(sample: LimitSample): void {
    this.#count++;
    if (sample.rtt > 0) {
      this.#timed++;
      this.#rttSum += sample.rtt;
      if (sample.rtt < this.#rttMin) this.#rttMin = sample.rtt;
    }
    this.#inflightSum += sample.inflight;
    if (sample.dropped) this.#dropped = true;
    if (this.#count < Math.max(MIN_WINDOW, this.limit)) return;

    const windowMin = this.#rttMin;
    if (this.limit <= this.min && windowMin !== Infinity) {
      // At `min` nothing queues: this is the latency of the work itself.
      this.#noLoadRtt = windowMin;
    } else if (windowMin < this.#noLoadRtt) {
      this.#noLoadRtt = windowMin;
    }
    const window: Window = {
      limit: this.limit,
      // No timed sample: as fast as the fastest seen, no sign of queueing.
      rtt: this.#timed === 0 ? 0 : this.#rttSum / this.#timed,
      inflight: this.#inflightSum / this.#count,
      dropped: this.#dropped,
      noLoadRtt: this.#noLoadRtt,
    };
    this.#count =
      this.#timed =
      this.#rttSum =
      this.#inflightSum =
        0;
    this.#rttMin = Infinity;
    this.#dropped = false;

    if (this.#descending && this.#descend(window)) return;
    // Latency says nothing until a timed sample gave the no-load latency.
    const congested = window.dropped ||
      (window.rtt > 0 && window.noLoadRtt !== Infinity &&
        this.congested(window));
    let next: number;
    if (!congested && window.inflight < window.limit / 2) {
      // Most of the limit went unused: the window says nothing about it.
      next = this.#estimate;
    } else if (this.#growing && !congested) {
      // Slow start: double until the first sign of queueing.
      next = this.#estimate * 2;
    } else {
      this.#growing = false;
      next = this.decide(window, congested);
    }
    this.#estimate = Math.min(this.max, Math.max(this.min, next));
  }

  /**
   * The first windows at `initial` cannot tell queueing from work: a server
   * that starts above the capacity of what it calls sees only inflated
   * latencies. So the limit steps down by a quarter while each step buys a
   * proportionate share of the latency back (the load cut was only
   * queueing), and returns to the last step when one does not. Returns
   * whether the window was used for that.
   */
  #descend(window: Window): boolean {
    if (this.#settling > 0) {
      this.#settling--;
      return true;
    }
    const from = this.#stepFrom;
    this.#stepFrom = undefined;
    if (from !== undefined) {
      const cut = 1 - this.#estimate / from.estimate;
      if (window.rtt > 0 && window.rtt <= from.rtt * (1 - cut / 2)) {
        // The step was queueing: the lower limit stays; try the next one.
        this.#growing = false;
        return this.#stepDown(window);
      }
      this.#estimate = from.estimate;
      this.#descending = false;
      return true;
    }
    if (window.dropped || window.rtt === 0) return false;
    if (window.inflight < window.limit / 2) return true;
    return this.#stepDown(window);
  }

  #stepDown(window: Window): boolean {
    const next = Math.max(this.min, Math.floor(this.#estimate * 0.75));
    if (next === Math.floor(this.#estimate)) {
      this.#descending = false;
      return true;
    }
    this.#stepFrom = { estimate: this.#estimate, rtt: window.rtt };
    this.#estimate = next;
    this.#settling = 1;
    return true;
  }

  /**
   * Whether a window shows queueing. Called only with a measured latency
   * (`rtt > 0`) and a known, finite `noLoadRtt`.
   */
  protected abstract congested(window: Window): boolean;

  /** The next limit estimate after a window, past slow start. */
  protected abstract decide(window: Window, congested: boolean): number;

  /** The current estimate, fractional. */
  protected get estimate(): number {
    return this.#estimate;
  }
}
