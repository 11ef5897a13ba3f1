import { Observers, Reporter } from "./_observe.ts";
import { limitOf, Slots, type SlotsConfig } from "./_slots.ts";

/** The counters a keyed gate keeps after a key is forgotten. */
interface Counters {
  admitted: number;
  rejected: number;
  timedOut: number;
  aborted: number;
}

/**
 * One set of slots per key, made on first use and forgotten as soon as it
 * holds and queues nothing, so that memory follows the keys busy now.
 */
export class KeyedSlots {
  readonly #config: SlotsConfig;
  readonly #live = new Map<string, Slots>();
  readonly #retired: Counters = {
    admitted: 0,
    rejected: 0,
    timedOut: 0,
    aborted: 0,
  };
  #closed = false;
  /** observe: made on first use; each key's slots report with their key. */
  #observers: Observers | undefined = undefined;

  constructor(config: SlotsConfig) {
    this.#config = config;
  }

  /** The slots of `key`, made on first use; `undefined` once closed. */
  slotsFor(key: string): Slots | undefined {
    let slots = this.#live.get(key);
    if (slots === undefined && !this.#closed) {
      slots = new Slots(this.#config);
      this.#live.set(key, slots);
      // observe
      if (this.#observers?.size) {
        slots.reportTo(new Reporter(this.#observers, key));
      }
    }
    return slots;
  }

  /** Counts a request turned away because the gate was closed. */
  countClosed(key: string, priority: number): void {
    this.#retired.rejected++;
    // observe
    if (this.#observers?.size) {
      new Reporter(this.#observers, key).rejected("closed", 0, priority);
    }
  }

  /** observe: adds an observer of every key's slots, live and future. */
  observe(observer: unknown): () => void {
    const observers = this.#observers ??= new Observers((observed) => {
      for (const [key, slots] of this.#live) {
        slots.reportTo(observed ? new Reporter(observers, key) : undefined);
      }
    });
    return observers.add(observer);
  }

  /**
   * Forgets the slots of `key` if they are idle, keeping their counters.
   * Slots already forgotten (a late call for a key that has newer slots
   * since) are left alone.
   */
  retireIfIdle(key: string, slots: Slots): void {
    if (slots.active !== 0 || slots.queued !== 0) return;
    if (this.#live.get(key) !== slots) return;
    this.#live.delete(key);
    const counters = slots.counters();
    const retired = this.#retired;
    retired.admitted += counters.admitted;
    retired.rejected += counters.rejected;
    retired.timedOut += counters.timedOut;
    retired.aborted += counters.aborted;
  }

  /** The figures of all live keys, plus the counters of forgotten ones. */
  stats(): Counters & {
    limit: number;
    active: number;
    queued: number;
    keys: number;
  } {
    // Every key has the same limit (with an algorithm, one shared estimate).
    const sum = {
      limit: limitOf(this.#config.limit),
      active: 0,
      queued: 0,
      ...this.#retired,
      keys: this.#live.size,
    };
    for (const slots of this.#live.values()) {
      const counters = slots.counters();
      sum.limit = slots.limit;
      sum.active += slots.active;
      sum.queued += slots.queued;
      sum.admitted += counters.admitted;
      sum.rejected += counters.rejected;
      sum.timedOut += counters.timedOut;
      sum.aborted += counters.aborted;
    }
    return sum;
  }

  /** Closes every key's slots; new keys are turned away from now on. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#live.values()].map((slots) => slots.close()));
  }
}
