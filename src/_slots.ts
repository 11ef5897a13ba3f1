import { type Ask, PLAIN } from "./_ask.ts";
import { clock, logError, Reporter } from "./_observe.ts";
import { type Queued, WaitLine } from "./_wait_line.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";
import { retryAfterSeconds } from "./_reject.ts";
import type { LimitAlgorithm } from "./limit_algorithm.ts";

/** The options of a limiter, checked. */
export interface SlotsConfig {
  limit: number | LimitAlgorithm;
  queue: number;
  queueTimeout: number;
  order: "fifo" | "lifo" | "adaptive";
  dryRun: boolean;
  headroom: number;
  target: number;
  interval: number;
}

/**
 * What the limiter needs back when a slot is released: how much capacity it
 * holds, when it was granted (to measure hold times) and how much was held
 * then (for an adaptive limit's sample; 0 without one).
 */
export interface Hold {
  readonly weight: number;
  readonly granted: number;
  readonly inflight: number;
}

/** How the work done in a slot ended, for an adaptive limit. */
export type Outcome = "done" | "dropped";

/** The widest slot whose hold can go untimed. */
const WIDEST_UNTIMED = 64;

/**
 * The holds of slots that are not timed, by weight: under a static limit,
 * hold times are measured only on slots granted near the limit, where they
 * matter, so that the fast path allocates nothing and reads no clock.
 */
const UNTIMED_HOLDS: readonly Hold[] = Array.from(
  { length: WIDEST_UNTIMED + 1 },
  (_, weight) => Object.freeze({ weight, granted: 0, inflight: 0 }),
);

/** The untimed hold of a slot of weight 1, the common one. */
export const UNTIMED: Hold = UNTIMED_HOLDS[1];

/** Whether `hold` is one of the untimed holds. */
export function isUntimed(hold: Hold): boolean {
  return hold === UNTIMED ||
    (hold.weight <= WIDEST_UNTIMED && UNTIMED_HOLDS[hold.weight] === hold);
}

/** How much each new hold time moves the estimate (an EWMA). */
export const HOLD_SMOOTHING = 0.1;

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

/**
 * A slot granted from the queue in workerd, until its waiter claims it. It
 * is reported (observe) when claimed, or as aborted when withdrawn.
 */
interface Offer extends Hold {
  /** When an event first saw it unclaimed; 0 until then. */
  seen: number;
  /** Ms its waiter spent in the queue. */
  readonly wait: number;
  readonly priority: number;
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

/**
 * A caller waiting for a slot: a {@linkcode Queued} (see WaitNode for why an
 * interface) with what the limiter needs. {@linkcode waiterOf} makes one;
 * `run()` has a class of its own.
 */
export interface Waiter extends Queued {
  /** Receives the slot; must not run the caller's work synchronously. */
  readonly grant: (hold: Hold) => void;
  /** Receives why no slot will come. */
  readonly fail: (error: unknown) => void;
  watch: AbortWatch | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  // The times are `undefined` rather than NaN or Infinity when unset: V8
  // boxes a field that only ever holds numbers, an allocation a waiter.
  /** When it queued (`clock.now()`); `undefined` while nothing reads it. */
  queuedAt: number | undefined;
  /**
   * When its caller stops wanting the work (`clock.now()`); `undefined`
   * without a deadline.
   */
  deadlineAt: number | undefined;
}

/** A waiter that hands the slot to `grant`, or why none came to `fail`. */
export function waiterOf(
  grant: (hold: Hold) => void,
  fail: (error: unknown) => void,
): Waiter {
  return {
    prev: undefined,
    next: undefined,
    queued: false,
    priority: 3,
    weight: 1,
    flowName: undefined,
    flow: undefined,
    grant,
    fail,
    watch: undefined,
    timer: undefined,
    queuedAt: undefined,
    deadlineAt: undefined,
  };
}

/** Drops the waiter's timer and abort listener, so nothing outlives the wait. */
function stopWaiting(waiter: Waiter): void {
  if (waiter.timer !== undefined) clearTimeout(waiter.timer);
  waiter.watch?.remove(waiter);
  waiter.watch = waiter.timer = undefined;
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
 * The counting at the heart of every limiter: slots, waiters in grant order,
 * counters, the adaptive limit and the hold-time estimate. `Limiter` is its
 * public face; the fetch wrapper uses it directly, so that a request that
 * finds a free slot allocates nothing.
 */
export class Slots {
  #limit: number;
  #algorithm: LimitAlgorithm | undefined = undefined;
  readonly #queue: number;
  readonly #queueTimeout: number;
  readonly #lifo: boolean;
  readonly #adaptive: boolean;
  readonly #dryRun: boolean;
  readonly #headroom: number;
  readonly #target: number;
  readonly #interval: number;

  /** Capacity held now: the weight of the slots granted. */
  #active = 0;
  readonly #waiters = new WaitLine<Waiter>();
  #admitted = 0;
  #rejected = 0;
  #timedOut = 0;
  #aborted = 0;
  /** How long slots are held, ms (an EWMA); `undefined` until one was. */
  #holdTime: number | undefined = undefined;
  /** When the queue was last empty, for `order: "adaptive"`. */
  #lastEmpty = 0;
  /** How many waiters have a deadline. */
  #deadlined = 0;
  // Made on first use: a limiter per key must stay small.
  #offers: Set<Offer> | undefined = undefined;
  #watches: WeakMap<AbortSignal, AbortWatch> | undefined = undefined;
  #closed: Promise<void> | undefined = undefined;
  #resolveClosed: (() => void) | undefined = undefined;
  /** Set while granting, so that a waiter let go meanwhile does not recurse. */
  #granting = false;
  /** From how much held capacity on a slot's hold is timed: the lowest ceiling. */
  #timedFrom: number;
  /** observe: where events go; `undefined` while nobody observes. */
  #reporter: Reporter | undefined = undefined;

  constructor(config: SlotsConfig) {
    this.#limit = this.#use(config.limit);
    this.#queue = config.queue;
    this.#queueTimeout = config.queueTimeout;
    this.#lifo = config.order === "lifo";
    this.#adaptive = config.order === "adaptive";
    this.#dryRun = config.dryRun;
    this.#headroom = config.headroom;
    this.#target = config.target;
    this.#interval = config.interval;
    this.#timedFrom = this.#ceiling(7);
  }

  get limit(): number {
    return this.#limit;
  }

  set limit(limit: number | LimitAlgorithm) {
    this.#limit = this.#use(limit);
    this.#timedFrom = this.#ceiling(7);
    this.#grantWaiters();
  }

  get active(): number {
    return this.#active;
  }

  /** observe: reports events to `reporter` from now on, or stops. */
  reportTo(reporter: Reporter | undefined): void {
    if (this.#reporter === undefined && reporter !== undefined) {
      // Waiters that queued unobserved were not timed: their wait, as
      // observed, starts now.
      const now = clock.now();
      for (const waiter of this.#waiters.all()) {
        waiter.queuedAt ??= now;
      }
    }
    this.#reporter = reporter;
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
   * Takes capacity for `ask` if it fits under its priority's ceiling and
   * nobody as urgent waits (under `dryRun`, always). Returns its hold, or
   * `undefined` when the caller has to wait or be turned away; that is not
   * counted yet.
   */
  acquireNow(ask: Ask = PLAIN): Hold | undefined {
    if (this.#closed !== undefined) return undefined;
    if (this.#offers?.size) this.#withdrawUnclaimed();
    const ceiling = this.#ceiling(ask.priority);
    const taken = ask.weight < ceiling ? ask.weight : ceiling;
    if (
      this.#active + taken <= ceiling &&
      !this.#waiters.hasWaitersAtOrAbove(ask.priority)
    ) {
      // observe
      if (this.#reporter !== undefined) return this.#admitNow(taken, ask);
      return this.#take(taken, false);
    }
    if (this.#dryRun) {
      this.#rejected++;
      // observe: a would-be rejection, granted all the same.
      if (this.#reporter !== undefined) {
        this.#reporter.rejected("full", 0, ask.priority);
        return this.#admitNow(taken, ask);
      }
      return this.#take(taken, false);
    }
    return undefined;
  }

  /**
   * After `acquireNow()` found no room: counts and returns the reason to
   * turn the caller away at once, or returns `undefined` if it may queue
   * (after a full queue made room by evicting a less deserving waiter).
   */
  refuse(ask: Ask = PLAIN): RejectReason | undefined {
    if (this.#closed !== undefined) {
      this.#rejected++;
      this.#reporter?.rejected("closed", 0, ask.priority); // observe
      return "closed";
    }
    // A full queue makes room: first by letting go of a waiter that a
    // standing queue would serve too late anyway, else by evicting (P4).
    let stale: Waiter | undefined;
    let evicted: Waiter | undefined;
    if (this.#waiters.size >= this.#queue) {
      stale = this.#staleWaiter();
      evicted = stale ?? this.#waiters.evictionFor(ask.priority, ask.flow);
      if (evicted === undefined) {
        this.#rejected++;
        this.#reporter?.rejected("full", 0, ask.priority); // observe
        return "full";
      }
    }
    const budget = this.#budget(ask.deadline);
    if (
      budget !== Infinity && this.#holdTime !== undefined &&
      this.#expectedWait(ask.priority, ask.weight, ask.flow) > budget
    ) {
      this.#timedOut++;
      this.#reporter?.rejected("timeout", 0, ask.priority); // observe
      return "timeout";
    }
    if (stale !== undefined) this.#drop(stale);
    else if (evicted !== undefined) {
      this.#abandon(evicted);
      this.#rejected++;
      this.#reportWaiter("full", evicted); // observe
      evicted.fail(new RejectedError("full"));
    }
    return undefined;
  }

  /** Counts a caller turned away without a word (a failed `tryAcquire()`). */
  countRejection(ask: Ask = PLAIN): void {
    this.#rejected++;
    // observe
    this.#reporter?.rejected(
      this.#closed !== undefined ? "closed" : "full",
      0,
      ask.priority,
    );
  }

  /**
   * Queues `waiter` until it is granted, it times out or `signal` aborts; a
   * caller that may not wait fails at once. Call after `acquireNow()` found
   * no room.
   */
  enqueue(
    waiter: Waiter,
    signal: AbortSignal | undefined,
    ask: Ask = PLAIN,
  ): void {
    if (this.#closed === undefined && signal?.aborted) {
      this.#aborted++;
      this.#reporter?.rejected("aborted", 0, ask.priority); // observe
      return waiter.fail(signal.reason);
    }
    let reason = this.refuse(ask);
    // An observer told of the waiter that made room may have queued a caller
    // in its place: room is made again, or the newcomer turned away.
    while (reason === undefined && this.#waiters.size >= this.#queue) {
      reason = this.refuse(ask);
    }
    if (reason !== undefined) return waiter.fail(new RejectedError(reason));
    if (signal !== undefined) {
      waiter.watch = this.#watch(signal);
      waiter.watch.waiters.add(waiter);
    }
    if (ask !== PLAIN) {
      waiter.priority = ask.priority;
      waiter.flowName = ask.flow;
      waiter.weight = ask.weight;
    }
    const budget = this.#budget(ask.deadline);
    if (budget !== Infinity || IN_WORKERD) {
      this.#armTimer(waiter, budget < 0 ? 0 : budget);
    }
    // The wait is timed only where something reads it: a deadline, CoDel,
    // an observer (one that comes later starts the clock then: reportTo)
    // and workerd's offers. A clock read costs about a tenth of a queued
    // run().
    let now: number | undefined;
    if (
      ask.deadline !== undefined || this.#adaptive ||
      this.#reporter !== undefined || IN_WORKERD
    ) {
      now = waiter.queuedAt = clock.now();
      if (ask.deadline !== undefined) waiter.deadlineAt = now + ask.deadline;
      if (
        (ask.deadline !== undefined || this.#adaptive) &&
        this.#waiters.size === 0
      ) this.#lastEmpty = now;
    }
    // Queued in FIFO order behind someone as urgent, it changes neither who
    // is first in line nor whether that one fits, so a grant pass would
    // find what the last one found: unless a deadline ran out meanwhile, or
    // it is first now (with "lifo", or with nobody as urgent ahead of it).
    const passIsMoot = !this.#lifo && !this.#adaptive &&
      this.#deadlined === 0 &&
      this.#waiters.hasWaitersAtOrAbove(waiter.priority);
    if (waiter.deadlineAt !== undefined) this.#deadlined++;
    this.#waiters.push(waiter);
    if (!passIsMoot) this.#grantWaiters(now);
  }

  /**
   * Takes a slot granted from the queue, from the waiter's own context, and
   * returns the hold to use. Returns `undefined` when the grant was withdrawn
   * meanwhile (in workerd, after it stayed unclaimed too long): the caller
   * must acquire again.
   */
  claim(hold: Hold): Hold | undefined {
    if (!IN_WORKERD) return hold;
    const offer = hold as Offer;
    if (this.#offers!.delete(offer)) {
      return this.#reporter?.admitted(offer, offer.wait, offer.priority) ??
        offer;
    }
    // Counted (and reported) as aborted when withdrawn; the caller that
    // comes back acquires anew.
    return undefined;
  }

  /**
   * Gives a slot back and passes it on to the next waiter. A `"dropped"`
   * outcome tells an adaptive limit that the work failed.
   */
  release(hold: Hold, outcome: Outcome): void {
    // The clock read to measure the hold also times the grants it makes.
    let now: number | undefined;
    if (!isUntimed(hold)) {
      hold = Reporter.released(hold, outcome); // observe
      if (!isUntimed(hold)) now = this.#measure(hold, outcome);
    }
    this.#active -= hold.weight;
    this.#passOn(now);
  }

  /**
   * The seconds a newcomer of `priority` should wait before it tries again:
   * the expected wait for capacity, spread by up to +50% so that rejected
   * clients do not return in step, within 1-60; 1 before any slot was
   * released.
   */
  retryAfter(priority: number): number {
    if (this.#holdTime === undefined) return 1;
    return retryAfterSeconds(
      this.#expectedWait(priority, 1, undefined, true),
    );
  }

  /**
   * After slots came back: to the waiters, or to `close()` once idle. `now`
   * is the time if it was read already.
   */
  #passOn(now?: number): void {
    if (this.#waiters.size !== 0) this.#grantWaiters(now);
    else if (this.#active === 0) this.#resolveClosed?.();
  }

  /**
   * Stops admitting: every waiter fails with `RejectedError("closed")`.
   * Resolves once no slot is held.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
      for (const waiter of this.#waiters.drain()) {
        this.#left(waiter);
        this.#rejected++;
        this.#reportWaiter("closed", waiter); // observe
        stopWaiting(waiter);
        waiter.fail(new RejectedError("closed"));
      }
      if (this.#active === 0) this.#resolveClosed!();
    }
    return this.#closed;
  }

  /** The most capacity work of `priority` may find held (rule P1). */
  #ceiling(priority: number): number {
    const limit = this.#limit;
    if (this.#headroom === 0 || limit === Infinity) return limit;
    const ceiling = Math.floor(limit * (1 - this.#headroom * priority / 7));
    return ceiling > 1 ? ceiling : 1;
  }

  /** How long `deadline` ms from now lets a caller wait: D1's budget. */
  #budget(deadline: number | undefined): number {
    if (deadline === undefined) return this.#queueTimeout;
    const budget = deadline - (this.#holdTime ?? 0);
    return budget < this.#queueTimeout ? budget : this.#queueTimeout;
  }

  /**
   * How long a newcomer of `priority` asking for `weight` in `flow` would
   * wait, ms: the capacity to free before it fits, at the rate at which held
   * capacity frees. With `everyone`, all waiters as urgent count as ahead.
   */
  #expectedWait(
    priority: number,
    weight: number,
    flow: string | undefined,
    everyone = false,
  ): number {
    const ceiling = this.#ceiling(priority);
    const taken = weight < ceiling ? weight : ceiling;
    const ahead = everyone
      ? this.#waiters.weightAtOrAbove(priority)
      : this.#waiters.weightAhead(
        priority,
        flow,
        this.#lifo || (this.#adaptive && this.#standing()),
      );
    const needed = this.#active + ahead + taken - ceiling;
    if (needed <= 0) return 0;
    const active = this.#active > 1 ? this.#active : 1;
    return needed * this.#holdTime! / active;
  }

  /**
   * With `order: "adaptive"` and a standing queue, the oldest waiter of the
   * flow a full queue would evict from, if it waited longer than `target`.
   */
  #staleWaiter(): Waiter | undefined {
    if (!this.#adaptive || !this.#standing()) return undefined;
    const oldest = this.#waiters.oldestOfLeastUrgent()!;
    return clock.now() - oldest.queuedAt! > this.#target ? oldest : undefined;
  }

  /** Whether the queue has not been empty for `interval` (CoDel). */
  #standing(): boolean {
    return this.#waiters.size !== 0 &&
      clock.now() - this.#lastEmpty > this.#interval;
  }

  /** Takes `taken` of capacity; `now` is the time if it was read already. */
  #take(taken: number, fromQueue: boolean, now?: number): Hold {
    this.#active += taken;
    this.#admitted++;
    if (this.#algorithm !== undefined) {
      return {
        weight: taken,
        granted: now ?? clock.now(),
        inflight: this.#active,
      };
    }
    // Timed only where an estimate is needed: near the limit, and until the
    // first hold was measured.
    if (
      fromQueue || this.#holdTime === undefined ||
      this.#active >= this.#timedFrom || taken > WIDEST_UNTIMED
    ) return { weight: taken, granted: now ?? clock.now(), inflight: 0 };
    return taken === 1 ? UNTIMED : UNTIMED_HOLDS[taken];
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

  /** Learns from one released, timed slot; returns the time now. */
  #measure(hold: Hold, outcome: Outcome): number {
    const now = clock.now();
    const rtt = now - hold.granted;
    const estimate = this.#holdTime;
    this.#holdTime = estimate === undefined
      ? rtt
      : estimate + (rtt - estimate) * HOLD_SMOOTHING;
    if (hold.inflight !== 0) this.#sample(rtt, hold.inflight, outcome);
    return now;
  }

  /** Feeds one released slot to the adaptive limit. */
  #sample(rtt: number, inflight: number, outcome: Outcome): void {
    const algorithm = this.#algorithm;
    // A slot granted before the limit became adaptive has no timing.
    if (algorithm === undefined) return;
    try {
      algorithm.update({ rtt, inflight, dropped: outcome === "dropped" });
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

  /**
   * Hands capacity to waiters in grant order while the first one fits: a
   * wide waiter first in line is never overtaken by narrow ones behind it.
   * A waiter that can no longer be served in time is let go instead.
   */
  #grantWaiters(now?: number): void {
    if (this.#granting) return;
    this.#granting = true;
    try {
      this.#grantInOrder(now);
    } finally {
      this.#granting = false;
    }
  }

  /**
   * `now` is the time if it was read already: one clock read serves every
   * grant of a pass, which takes no longer than the bookkeeping.
   */
  #grantInOrder(now: number | undefined): void {
    while (this.#waiters.size !== 0) {
      const standing = this.#adaptive && this.#standing();
      const waiter = this.#waiters.first(this.#lifo || standing)!;
      const deadlineAt = waiter.deadlineAt;
      if (deadlineAt !== undefined || standing) {
        now ??= clock.now();
        if (
          (deadlineAt !== undefined &&
            now + (this.#holdTime ?? 0) > deadlineAt) ||
          (standing && now - waiter.queuedAt! > this.#target)
        ) {
          this.#drop(waiter);
          // Its observers may have taken their time.
          if (this.#reporter !== undefined) now = undefined;
          continue;
        }
      }
      const ceiling = this.#ceiling(waiter.priority);
      const taken = waiter.weight < ceiling ? waiter.weight : ceiling;
      if (this.#active + taken > ceiling) return;
      this.#waiters.take(waiter);
      this.#left(waiter);
      stopWaiting(waiter);
      now ??= clock.now();
      const hold = this.#take(taken, true, now);
      if (IN_WORKERD) {
        const offer: Offer = {
          ...hold,
          seen: 0,
          wait: now - waiter.queuedAt!,
          priority: waiter.priority,
        };
        (this.#offers ??= new Set()).add(offer);
        waiter.grant(offer);
      } else if (this.#reporter === undefined) waiter.grant(hold);
      else { // observe
        const wait = now - waiter.queuedAt!;
        waiter.grant(this.#reporter.admitted(hold, wait, waiter.priority));
        now = undefined; // its observers may have taken their time
      }
    }
  }

  /** observe: a slot granted at once while observed. */
  #admitNow(taken: number, ask: Ask): Hold {
    return this.#reporter!.admitted(this.#take(taken, false), 0, ask.priority);
  }

  /** observe: a waiter denied, after its wait. */
  #reportWaiter(reason: RejectReason | "aborted", waiter: Waiter): void {
    this.#reporter?.rejected(
      reason,
      clock.now() - waiter.queuedAt!,
      waiter.priority,
    );
  }

  /** Lets a queued waiter go with `"timeout"`. */
  #drop(waiter: Waiter): void {
    this.#abandon(waiter);
    this.#timedOut++;
    this.#reportWaiter("timeout", waiter); // observe
    waiter.fail(new RejectedError("timeout"));
  }

  /**
   * After `waiter` left the queue: counts its deadline out, and notes when
   * the queue emptied (CoDel).
   */
  #left(waiter: Waiter): void {
    if (waiter.deadlineAt !== undefined) this.#deadlined--;
    if (this.#adaptive && this.#waiters.size === 0) {
      this.#lastEmpty = clock.now();
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
        this.#active -= offer.weight;
        this.#admitted--;
        this.#aborted++;
        this.#reporter?.rejected("aborted", offer.wait, offer.priority);
        withdrawn = true;
      }
    }
    if (withdrawn) this.#passOn();
  }

  /**
   * Arms the waiter's timer for `ms`, in steps that setTimeout can take; in
   * workerd in ticks, each of which also withdraws unclaimed offers (an
   * infinite timeout there only keeps the request alive).
   */
  #armTimer(waiter: Waiter, ms: number): void {
    const step = Math.min(ms, IN_WORKERD ? TICK : LONGEST_TIMER);
    waiter.timer = setTimeout(() => {
      if (this.#offers?.size) this.#withdrawUnclaimed();
      if (!waiter.queued) return;
      if (ms > step) this.#armTimer(waiter, ms - step);
      else this.#drop(waiter);
    }, step);
  }

  /** Lets every waiter of an aborted signal go. */
  #abortAll(watch: AbortWatch, signal: AbortSignal): void {
    for (const waiter of [...watch.waiters]) {
      if (!this.#abandon(waiter)) continue;
      this.#aborted++;
      this.#reportWaiter("aborted", waiter); // observe
      waiter.fail(signal.reason);
    }
  }

  /** The watch of the waiters that share `signal`, made on first use. */
  #watch(signal: AbortSignal): AbortWatch {
    const watches = this.#watches ??= new WeakMap();
    let watch = watches.get(signal);
    if (watch === undefined) {
      const onAbort = () => {
        // Every waiter of the signal leaves before anyone is granted: a
        // grant in between could go to one of them.
        const granting = this.#granting;
        this.#granting = true;
        try {
          this.#abortAll(watch!, signal);
        } finally {
          this.#granting = granting;
        }
        if (!granting && this.#waiters.size !== 0) this.#grantWaiters();
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

  /**
   * Takes a waiter that gives up out of the queue, if it is still there, and
   * lets the next one in if it now fits (a wide first waiter may have held
   * the others back).
   */
  #abandon(waiter: Waiter): boolean {
    if (waiter.flow === undefined) return false;
    this.#waiters.remove(waiter);
    this.#left(waiter);
    stopWaiting(waiter);
    if (this.#waiters.size !== 0) this.#grantWaiters();
    return true;
  }
}
