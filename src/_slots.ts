import { WaitNode, WaitQueue } from "./_queue.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";
import type { LimitAlgorithm } from "./limit_algorithm.ts";

/** The options of a limiter, checked. */
export interface SlotsConfig {
  limit: number | LimitAlgorithm;
  queue: number;
  queueTimeout: number;
  order: "fifo" | "lifo";
  dryRun: boolean;
}

/**
 * What the limiter needs back when a slot is released: when it was granted
 * and how many slots were held then, for an adaptive limit's sample.
 */
export interface Hold {
  readonly granted: number;
  readonly inflight: number;
}

/** How the work done in a slot ended, for an adaptive limit. */
export type Outcome = "done" | "dropped";

/** The hold of every slot granted under a static limit: nothing to time. */
export const UNTIMED: Hold = Object.freeze({ granted: 0, inflight: 0 });

/**
 * Every runtime has a console, but not every program's types declare one
 * (a Bun or Workers program without the DOM library).
 */
const logError = (message: string, error: unknown): void =>
  (globalThis as { console?: { error(...data: unknown[]): void } }).console
    ?.error(message, error);

/**
 * workerd runs each request in a context of its own and cancels one that
 * waits on nothing of its own ("the Worker's code had hung"), or whose client
 * reset the connection. So there a waiter keeps a timer ticking in its own
 * context, even without a queueTimeout; and a slot granted from the queue is
 * only offered until the waiter claims it from its own context: an offer
 * nobody claims (the waiter's request died) is withdrawn and passed on.
 */
const IN_WORKERD = globalThis.navigator?.userAgent === "Cloudflare-Workers";
/**
 * Whether a slot granted from the queue must be claimed with `claim()` from
 * the waiter's own context before it is used (in workerd).
 */
export const GRANTS_ARE_OFFERS: boolean = IN_WORKERD;
/** How often a waiter's timer ticks in workerd, ms. */
const TICK = 100;
/**
 * How long an offer may stay unclaimed, ms. It is withdrawn by the first
 * event this long after an earlier one saw it unclaimed, so that a clock
 * that stands still between events (as deployed Workers' does) cannot cut
 * it short.
 */
const CLAIM_WINDOW = 250;

/** A slot granted from the queue in workerd, until its waiter claims it. */
interface Offer extends Hold {
  /** When an event first saw it unclaimed; 0 until then. */
  seen: number;
}

/** The algorithms whose error was reported already. */
const failedAlgorithms = new WeakSet<LimitAlgorithm>();

/** setTimeout fires at once beyond this many milliseconds. */
const LONGEST_TIMER = 2 ** 31 - 1;

/**
 * The waiters of one limiter that share an abort signal, behind a single
 * listener: with a listener each, adding one is a scan on some runtimes
 * (Node checks every listener for a duplicate), and a batch of jobs with one
 * signal would queue in quadratic time.
 */
class AbortWatch {
  readonly waiters = new Set<Waiter>();
  readonly #signal: AbortSignal;
  readonly #onAbort: () => void;
  readonly #forget: () => void;

  constructor(signal: AbortSignal, onAbort: () => void, forget: () => void) {
    this.#signal = signal;
    this.#onAbort = onAbort;
    this.#forget = forget;
    signal.addEventListener("abort", onAbort);
  }

  remove(waiter: Waiter): void {
    this.waiters.delete(waiter);
    if (this.waiters.size !== 0) return;
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#forget();
  }
}

/** A caller waiting for a slot. */
export class Waiter extends WaitNode {
  /** Receives the slot; must not run the caller's work synchronously. */
  readonly grant: (hold: Hold) => void;
  /** Receives why no slot will come. */
  readonly fail: (error: unknown) => void;
  watch: AbortWatch | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(grant: (hold: Hold) => void, fail: (error: unknown) => void) {
    super();
    this.grant = grant;
    this.fail = fail;
  }

  /** Drops the timer and the abort listener, so nothing outlives the wait. */
  stopWaiting(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.watch?.remove(this);
    this.watch = this.timer = undefined;
  }
}

/**
 * A limit, or an algorithm's as an integer >= 1: a buggy algorithm must not stop
 * every request (0 or NaN) or break the counting (a fraction).
 */
export function limitOf(limitOrAlgorithm: number | LimitAlgorithm): number {
  if (typeof limitOrAlgorithm === "number") return limitOrAlgorithm;
  const limit = limitOrAlgorithm.limit;
  return limit >= 1 ? Math.floor(limit) : 1;
}

/**
 * The counting at the heart of every limiter: slots, waiters, counters and
 * the adaptive limit. `Limiter` is its public face; the fetch wrapper uses it
 * directly, so that a request that finds a free slot allocates nothing.
 */
export class Slots {
  #limit: number;
  #algorithm: LimitAlgorithm | undefined = undefined;
  readonly #queue: number;
  readonly #queueTimeout: number;
  readonly #lifo: boolean;
  readonly #dryRun: boolean;

  #active = 0;
  readonly #waiters = new WaitQueue<Waiter>();
  #admitted = 0;
  #rejected = 0;
  #timedOut = 0;
  #aborted = 0;
  // Made on first use: a limiter per key must stay small.
  #offers: Set<Offer> | undefined = undefined;
  #watches: WeakMap<AbortSignal, AbortWatch> | undefined = undefined;
  #closed: Promise<void> | undefined = undefined;
  #resolveClosed: (() => void) | undefined = undefined;

  constructor(config: SlotsConfig) {
    this.#limit = this.#use(config.limit);
    this.#queue = config.queue;
    this.#queueTimeout = config.queueTimeout;
    this.#lifo = config.order === "lifo";
    this.#dryRun = config.dryRun;
  }

  get limit(): number {
    return this.#limit;
  }

  set limit(limit: number | LimitAlgorithm) {
    this.#limit = this.#use(limit);
    this.#grantWaiters();
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#waiters.size;
  }

  /** The limit, the load now and the counters since creation. */
  stats(): {
    limit: number;
    active: number;
    queued: number;
    admitted: number;
    rejected: number;
    timedOut: number;
    aborted: number;
  } {
    return {
      limit: this.#limit,
      active: this.#active,
      queued: this.#waiters.size,
      ...this.counters(),
    };
  }

  /** The counters since creation. */
  counters(): {
    admitted: number;
    rejected: number;
    timedOut: number;
    aborted: number;
  } {
    return {
      admitted: this.#admitted,
      rejected: this.#rejected,
      timedOut: this.#timedOut,
      aborted: this.#aborted,
    };
  }

  /**
   * Takes a slot if one is free and nobody waits (under `dryRun`, always).
   * Returns its hold, or `undefined` when the caller has to wait or be
   * turned away; that is not counted yet.
   */
  acquireNow(): Hold | undefined {
    if (this.#closed !== undefined) return undefined;
    if (this.#offers?.size) this.#withdrawUnclaimed();
    if (this.#active < this.#limit && this.#waiters.size === 0) {
      return this.#take();
    }
    if (this.#dryRun) {
      this.#rejected++;
      return this.#take();
    }
    return undefined;
  }

  /**
   * After `acquireNow()` found no slot: counts and returns the reason to turn
   * the caller away at once, or returns `undefined` if it may queue.
   */
  refuse(): RejectReason | undefined {
    if (this.#closed !== undefined) {
      this.#rejected++;
      return "closed";
    }
    if (this.#waiters.size >= this.#queue) {
      this.#rejected++;
      return "full";
    }
    return undefined;
  }

  /** Counts a caller turned away without a word (a failed `tryAcquire()`). */
  countRejection(): void {
    this.#rejected++;
  }

  /**
   * Queues `waiter` until a slot frees, it times out or `signal` aborts; a
   * caller that may not wait fails at once. Call after `acquireNow()` found
   * no slot.
   */
  enqueue(waiter: Waiter, signal: AbortSignal | undefined): void {
    if (this.#closed === undefined && signal?.aborted) {
      this.#aborted++;
      return waiter.fail(signal.reason);
    }
    const reason = this.refuse();
    if (reason !== undefined) return waiter.fail(new RejectedError(reason));
    if (signal !== undefined) {
      waiter.watch = this.#watch(signal);
      waiter.watch.waiters.add(waiter);
    }
    if (this.#queueTimeout !== Infinity || IN_WORKERD) {
      this.#armTimer(waiter, this.#queueTimeout);
    }
    this.#waiters.push(waiter);
  }

  /**
   * Takes a slot granted from the queue, from the waiter's own context.
   * Returns `false` when the grant was withdrawn meanwhile (in workerd, after
   * it stayed unclaimed too long): the caller must acquire again.
   */
  claim(hold: Hold): boolean {
    if (!IN_WORKERD || this.#offers!.delete(hold as Offer)) return true;
    // Counted as aborted when withdrawn; the waiter was alive after all.
    this.#aborted--;
    return false;
  }

  /**
   * Gives a slot back and passes it on to the next waiter. A `"dropped"`
   * outcome tells an adaptive limit that the work failed.
   */
  release(hold: Hold, outcome: Outcome): void {
    if (hold.inflight !== 0) this.#sample(hold, outcome);
    this.#active--;
    this.#passOn();
  }

  /** After slots came back: to the waiters, or to `close()` once idle. */
  #passOn(): void {
    if (this.#waiters.size !== 0) this.#grantWaiters();
    else if (this.#active === 0) this.#resolveClosed?.();
  }

  /**
   * Stops admitting: every waiter fails with `RejectedError("closed")`.
   * Resolves once no slot is held.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
      for (
        let w = this.#waiters.takeOldest();
        w;
        w = this.#waiters.takeOldest()
      ) {
        this.#rejected++;
        w.stopWaiting();
        w.fail(new RejectedError("closed"));
      }
      if (this.#active === 0) this.#resolveClosed!();
    }
    return this.#closed;
  }

  #take(): Hold {
    this.#active++;
    this.#admitted++;
    return this.#algorithm === undefined
      ? UNTIMED
      : { granted: performance.now(), inflight: this.#active };
  }

  /** Remembers an algorithm, and returns the limit to enforce now. */
  #use(limit: number | LimitAlgorithm): number {
    if (typeof limit === "number") {
      this.#algorithm = undefined;
      return limit;
    }
    this.#algorithm = limit;
    return limitOf(limit);
  }

  /** Feeds one released slot to the adaptive limit. */
  #sample(hold: Hold, outcome: Outcome): void {
    const algorithm = this.#algorithm;
    // A slot granted before the limit became adaptive has no timing.
    if (algorithm === undefined) return;
    try {
      algorithm.update({
        rtt: performance.now() - hold.granted,
        inflight: hold.inflight,
        dropped: outcome === "dropped",
      });
      // Unless `update` itself switched the limit to something else.
      if (this.#algorithm === algorithm) this.#limit = limitOf(algorithm);
    } catch (error) {
      // A bug in the algorithm must not take the server down: the last good
      // limit stays, and the error is reported once per algorithm (keyed
      // gates share one between many limiters).
      if (failedAlgorithms.has(algorithm)) return;
      failedAlgorithms.add(algorithm);
      logError(
        `floodgate: the limit algorithm threw; the limit stays at ${this.#limit}`,
        error,
      );
    }
  }

  /** Hands free slots to waiters, in order, while the limit allows. */
  #grantWaiters(): void {
    while (this.#waiters.size !== 0 && this.#active < this.#limit) {
      const waiter = this.#lifo
        ? this.#waiters.takeNewest()!
        : this.#waiters.takeOldest()!;
      waiter.stopWaiting();
      const hold = this.#take();
      if (!IN_WORKERD) waiter.grant(hold);
      else {
        const offer: Offer = { ...hold, seen: 0 };
        (this.#offers ??= new Set()).add(offer);
        waiter.grant(offer);
      }
    }
  }

  /**
   * Withdraws the offers that stayed unclaimed for a claim window (their
   * waiters' requests died) and passes their slots on.
   */
  #withdrawUnclaimed(): void {
    const now = Date.now();
    let withdrawn = false;
    for (const offer of this.#offers!) {
      if (offer.seen === 0) offer.seen = now;
      else if (now - offer.seen >= CLAIM_WINDOW) {
        this.#offers!.delete(offer);
        this.#active--;
        this.#admitted--;
        this.#aborted++;
        withdrawn = true;
      }
    }
    if (withdrawn) this.#passOn();
  }

  /**
   * Arms the waiter's timer for the queue timeout `ms`, in steps that
   * setTimeout can take; in workerd in ticks, each of which also withdraws
   * unclaimed offers (an infinite timeout there only keeps the request
   * alive).
   */
  #armTimer(waiter: Waiter, ms: number): void {
    const step = Math.min(ms, IN_WORKERD ? TICK : LONGEST_TIMER);
    waiter.timer = setTimeout(() => {
      if (this.#offers?.size) this.#withdrawUnclaimed();
      if (!waiter.queued) return;
      if (ms > step) this.#armTimer(waiter, ms - step);
      else if (this.#abandon(waiter)) {
        this.#timedOut++;
        waiter.fail(new RejectedError("timeout"));
      }
    }, step);
  }

  /** The watch of the waiters that share `signal`, made on first use. */
  #watch(signal: AbortSignal): AbortWatch {
    const watches = this.#watches ??= new WeakMap();
    let watch = watches.get(signal);
    if (watch === undefined) {
      const onAbort = () => {
        for (const waiter of [...watch!.waiters]) {
          if (!this.#abandon(waiter)) continue;
          this.#aborted++;
          waiter.fail(signal.reason);
        }
      };
      watch = new AbortWatch(
        signal,
        onAbort,
        () => watches.delete(signal),
      );
      watches.set(signal, watch);
    }
    return watch;
  }

  /** Takes a waiter that gives up out of the queue, if it is still there. */
  #abandon(waiter: Waiter): boolean {
    if (!waiter.queued) return false;
    this.#waiters.remove(waiter);
    waiter.stopWaiting();
    return true;
  }
}
