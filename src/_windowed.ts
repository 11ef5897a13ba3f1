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

/** Samples collected at `min` before the first decision. */
const PROBE_SAMPLES = 10;
/** The smallest window, so that tiny limits still average a few samples. */
const MIN_WINDOW = 10;

/**
 * The machinery the adaptive algorithms share. Deciding on every sample
 * overshoots, because the completions of one round all reflect the
 * concurrency before the last change; so samples are gathered into windows
 * of about `limit` and one decision is made per window. The latency with no
 * queueing is measured at start-up by running at `min` for a few samples,
 * and again whenever the limit is back at `min` (so that a downstream that
 * became slower for good is not mistaken for queueing forever).
 */
export abstract class Windowed implements LimitAlgorithm {
  readonly min: number;
  readonly max: number;
  /** The options as given, for the subclass to check its own. */
  protected readonly options: Record<string, unknown>;
  #initial: number;
  #estimate: number;
  #probing = true;
  #growing = true;
  #noLoadRtt = Infinity;

  #count = 0;
  #rttSum = 0;
  #rttMin = Infinity;
  #inflightSum = 0;
  #dropped = false;

  /** Checks the shared options; returns all options for the subclass. */
  constructor(options: unknown, known: readonly string[]) {
    const o = checkOptionsObject(
      options,
      new Set(["initial", "min", "max", ...known]),
    );
    this.options = o;
    this.min = checkInteger("min", o.min, 1, 1, false);
    this.max = checkInteger(
      "max",
      o.max,
      Math.max(1000, this.min),
      this.min,
      false,
    );
    this.#initial = checkInteger(
      "initial",
      o.initial,
      Math.min(Math.max(20, this.min), this.max),
      this.min,
      false,
    );
    if (this.#initial > this.max) {
      throw new RangeError(
        `floodgate: option "initial" must be <= max (${this.max}), got ${this.#initial}`,
      );
    }
    this.#estimate = this.min;
  }

  get limit(): number {
    return Math.floor(this.#estimate);
  }

  update(sample: LimitSample): void {
    this.#count++;
    this.#rttSum += sample.rtt;
    if (sample.rtt < this.#rttMin) this.#rttMin = sample.rtt;
    this.#inflightSum += sample.inflight;
    if (sample.dropped) this.#dropped = true;
    const size = this.#probing
      ? PROBE_SAMPLES
      : Math.max(MIN_WINDOW, this.limit);
    if (this.#count < size) return;

    const window: Window = {
      limit: this.limit,
      rtt: this.#rttSum / this.#count,
      inflight: this.#inflightSum / this.#count,
      dropped: this.#dropped,
      noLoadRtt: this.#noLoadRtt,
    };
    this.#count = this.#rttSum = this.#inflightSum = 0;
    const windowMin = this.#rttMin;
    this.#rttMin = Infinity;
    this.#dropped = false;

    if (this.#probing || this.limit <= this.min) {
      // At `min` nothing queues: this is the latency of the work itself.
      this.#noLoadRtt = windowMin;
    } else if (windowMin < this.#noLoadRtt) {
      this.#noLoadRtt = windowMin;
    }
    if (this.#probing) {
      this.#probing = false;
      this.#estimate = this.#initial;
      return;
    }
    window.noLoadRtt = this.#noLoadRtt;
    const congested = this.congested(window);
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

  /** Whether a window shows queueing (or drops). */
  protected abstract congested(window: Window): boolean;

  /** The next limit estimate after a window, past slow start. */
  protected abstract decide(window: Window, congested: boolean): number;

  /** The current estimate, fractional. */
  protected get estimate(): number {
    return this.#estimate;
  }
}
