import { type Ask, askOf } from "./_ask.ts";
import {
  checkBoolean,
  checkChoice,
  checkDuration,
  checkInteger,
  checkNumber,
  checkOptionsObject,
  show,
} from "./_options.ts";
import {
  GRANTS_ARE_OFFERS,
  type Hold,
  Slots,
  type SlotsConfig,
  type Waiter,
  waiterOf,
} from "./_slots.ts";
import { type Observer, observeSlots } from "./_observe.ts";
import { isLimitAlgorithm, type LimitAlgorithm } from "./limit_algorithm.ts";

/** Options for {@linkcode Limiter}. */
export interface LimiterOptions {
  /**
   * The most permits held at once: an integer >= 1, or `Infinity`; or a
   * {@linkcode LimitAlgorithm} (`aimd()`, `vegas()`, `gradient()`) that moves
   * it with measured latency.
   *
   * @default {100}
   */
  limit?: number | LimitAlgorithm;
  /**
   * The most callers waiting for a permit: an integer >= 0, or `Infinity`.
   * With `0`, a caller that finds no free permit is rejected at once.
   *
   * @default {0}
   */
  queue?: number;
  /**
   * The longest a caller waits in the queue, in milliseconds, before it is
   * rejected with `RejectedError("timeout")`.
   *
   * @default {Infinity}
   */
  queueTimeout?: number;
  /**
   * Which waiter of a flow a freed permit goes to: the oldest (`"fifo"`),
   * the newest (`"lifo"`, which keeps latency low for most callers when the
   * queue is long, at the price of the oldest), or `"adaptive"`: CoDel with
   * adaptive LIFO. That serves the oldest first while the queue empties now
   * and then (at least once every `interval` ms); once it stands, it serves
   * the newest first and lets go of waiters older than `target` ms with
   * `RejectedError("timeout")`, since their clients have likely given up.
   *
   * @default {"fifo"}
   */
  order?: "fifo" | "lifo" | "adaptive";
  /**
   * With `order: "adaptive"`, the longest a waiter may have waited, in ms,
   * and still be granted while the queue stands.
   *
   * @default {5}
   */
  target?: number;
  /**
   * With `order: "adaptive"`, how long the queue must go without being
   * empty, in ms, before it counts as standing.
   *
   * @default {100}
   */
  interval?: number;
  /**
   * The share of the limit kept for urgent work, in [0, 1). Work of
   * priority `u` is admitted only while the capacity held stays within
   * `floor(limit * (1 - headroom * u / 7))` (at least 1): with
   * `headroom: 0.3` and `limit: 100`, priority 7 stops at 70, the default
   * priority 3 at 87, and priority 0 may use all 100.
   *
   * @default {0}
   */
  headroom?: number;
  /**
   * Never wait and never reject: an acquisition that would have waited or
   * been rejected is granted at once and counted in `rejected`, so a limit
   * can be measured before it is enforced.
   *
   * @default {false}
   */
  dryRun?: boolean;
}

/**
 * Where an acquisition stands in line and how long it may wait, for
 * {@linkcode Limiter.prototype.tryAcquire}.
 */
export interface TryAcquireOptions {
  /**
   * Urgency on the scale of RFC 9218 (`Priority: u=`), an integer from 0
   * (most urgent) to 7. The most urgent waiter is granted first; less
   * urgent work may use only part of the limit (see `headroom`).
   *
   * @default {3}
   */
  priority?: number;
  /**
   * Who the work is for (a client, a tenant). Waiters of one priority take
   * turns by flow, so one busy flow cannot crowd out the others; a full
   * queue gives up a waiter of the longest flow first.
   *
   * @default {one flow shared by every caller}
   */
  flow?: string;
  /**
   * How much of the limit the work occupies, an integer >= 1 (at most the
   * whole limit is taken). A wide waiter first in line is never overtaken
   * by narrow ones.
   *
   * @default {1}
   */
  weight?: number;
  /**
   * Ms from now after which the caller no longer wants the work. A caller
   * whose expected wait exceeds what its deadline leaves, after the
   * measured hold time, is rejected at once with `RejectedError("timeout")`;
   * a waiter that can no longer be served in time is let go the same way.
   *
   * @default {Infinity}
   */
  deadline?: number;
}

/** Options for {@linkcode Limiter.prototype.acquire} and `run`. */
export interface AcquireOptions extends TryAcquireOptions {
  /**
   * Gives up waiting when it aborts: the caller leaves the queue at once and
   * the promise rejects with `signal.reason`.
   */
  signal?: AbortSignal;
}

/**
 * The right to run one piece of work. Release it exactly when the work is
 * done; releasing twice does nothing.
 */
export interface Permit {
  /** Gives the permit back (to the next waiter, if any). Idempotent. */
  release(): void;
  /** The same as `release()`, so `using permit = await limiter.acquire()` works. */
  [Symbol.dispose](): void;
}

/** A snapshot of a {@linkcode Limiter}, from {@linkcode Limiter.prototype.stats}. */
export interface LimiterStats {
  /** The current limit. */
  limit: number;
  /** Permits held now. */
  active: number;
  /** Callers waiting now. */
  queued: number;
  /** Permits granted since creation. */
  admitted: number;
  /**
   * Acquisitions denied as `"full"` or `"closed"` since creation (a
   * `tryAcquire()` that returned `undefined` included), plus the would-be
   * rejections of `dryRun`.
   */
  rejected: number;
  /**
   * Acquisitions denied as `"timeout"` since creation: waiters that left the
   * queue after `queueTimeout` or their deadline, and callers refused at
   * once because their expected wait was longer.
   */
  timedOut: number;
  /** Acquisitions given up through their `AbortSignal` since creation. */
  aborted: number;
}

/** The names of the options {@linkcode Limiter} takes. */
export const LIMITER_OPTION_NAMES = [
  "limit",
  "queue",
  "queueTimeout",
  "order",
  "dryRun",
  "headroom",
  "target",
  "interval",
] as const;

/** Checks `value` as a limit; shared by the constructor and the setter. */
function checkLimit(value: unknown): number | LimitAlgorithm {
  if (isLimitAlgorithm(value)) return value;
  return checkInteger("limit", value, { min: 1, infinite: true });
}

/**
 * Checks limiter options that were already found to be an object with known
 * names only.
 */
export function checkLimiterOptions(given: LimiterOptions): SlotsConfig {
  return {
    limit: given.limit === undefined ? 100 : checkLimit(given.limit),
    queue: checkInteger("queue", given.queue, {
      min: 0,
      infinite: true,
      fallback: 0,
    }),
    queueTimeout: checkDuration("queueTimeout", given.queueTimeout, Infinity),
    order: checkChoice("order", given.order, {
      choices: ["fifo", "lifo", "adaptive"],
    }),
    dryRun: checkBoolean("dryRun", given.dryRun),
    headroom: checkNumber("headroom", given.headroom, {
      fallback: 0,
      min: 0,
      below: 1,
    }),
    target: checkNumber("target", given.target, { fallback: 5, above: 0 }),
    interval: checkNumber("interval", given.interval, {
      fallback: 100,
      above: 0,
    }),
  };
}

/** A permit: one held slot, given back exactly once. */
class LimiterPermit implements Permit {
  #slots: Slots | undefined;
  readonly #hold: Hold;

  constructor(slots: Slots, hold: Hold) {
    this.#slots = slots;
    this.#hold = hold;
  }

  release(): void {
    const slots = this.#slots;
    if (slots === undefined) return;
    this.#slots = undefined;
    slots.release(this.#hold, "done");
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * Calls `fn` in a slot already held and releases the slot when `fn`'s
 * result settles; the promise returned then settles with that result.
 * Whatever `fn` returns or throws (a thenable that calls back twice, or
 * whose `then` or `constructor` getter throws), the slot is released
 * exactly once. The promise is the reaction's own: no other is made.
 */
function runHeld<T>(
  slots: Slots,
  hold: Hold,
  fn: () => T | PromiseLike<T>,
): Promise<T> {
  let result: Promise<T>;
  try {
    result = Promise.resolve(fn());
  } catch (error) {
    slots.release(hold, "dropped");
    return Promise.reject(error);
  }
  return result.then((value) => {
    slots.release(hold, "done");
    return value;
  }, (error) => {
    slots.release(hold, "dropped");
    throw error;
  });
}

/**
 * A queued `run()`: a waiter that carries what to start when granted, so
 * that queueing makes no closure beyond the promise's own. It sets every
 * field of a {@linkcode Waiter} itself, in the order of `waiterOf()`: see
 * WaitNode for why there is no base class.
 */
class QueuedRun<T> implements Waiter {
  // Set in the constructor: see WaitNode.
  declare prev: Waiter["prev"];
  declare next: Waiter["next"];
  declare queued: boolean;
  declare priority: number;
  declare weight: number;
  declare flowName: string | undefined;
  declare flow: Waiter["flow"];
  declare readonly grant: (hold: Hold) => void;
  declare readonly fail: (error: unknown) => void;
  declare watch: Waiter["watch"];
  declare timer: Waiter["timer"];
  declare queuedAt: number | undefined;
  declare deadlineAt: number | undefined;
  declare readonly slots: Slots;
  declare readonly fn: () => T | PromiseLike<T>;
  declare readonly resolve: (value: T) => void;
  declare hold: Hold | undefined;

  constructor(
    slots: Slots,
    fn: () => T | PromiseLike<T>,
    resolve: (value: T) => void,
    reject: (error: unknown) => void,
  ) {
    this.prev = undefined;
    this.next = undefined;
    this.queued = false;
    this.priority = 3;
    this.weight = 1;
    this.flowName = undefined;
    this.flow = undefined;
    this.grant = startQueuedRun;
    this.fail = reject;
    this.watch = undefined;
    this.timer = undefined;
    this.queuedAt = undefined;
    this.deadlineAt = undefined;
    this.slots = slots;
    this.fn = fn;
    this.resolve = resolve;
    this.hold = undefined;
  }
}

/**
 * The grant of a {@linkcode QueuedRun}, called as its method: runs its `fn`
 * in a microtask of its own (never inside another caller's release). A
 * reaction rather than queueMicrotask(), which Node wraps in JavaScript of
 * its own.
 */
function startQueuedRun(this: QueuedRun<unknown>, hold: Hold): void {
  this.hold = hold;
  void Promise.resolve(this).then(runGranted);
}

/**
 * Runs a granted {@linkcode QueuedRun}'s `fn` as {@linkcode runHeld} does,
 * and settles the promise `run()` returned (made before the grant) with its
 * result. The reactions keep the run alone, all they need: a context of one
 * variable rather than four (about 5% of a queued run() on Node 20).
 */
function runGranted(run: QueuedRun<unknown>): void {
  let result: Promise<unknown>;
  try {
    result = Promise.resolve(run.fn());
  } catch (error) {
    run.slots.release(run.hold!, "dropped");
    return run.fail(error);
  }
  result.then((value) => {
    run.slots.release(run.hold!, "done");
    run.resolve(value);
  }, (error) => {
    run.slots.release(run.hold!, "dropped");
    run.fail(error);
  });
}

/**
 * Waits in the queue of `slots`. The caller continues in a reaction to the
 * promise, which runs in a microtask of its own (never inside another
 * caller's release) and, in workerd, in the caller's own request context.
 */
function queue(
  slots: Slots,
  signal: AbortSignal | undefined,
  ask: Ask,
): Promise<Hold> {
  return new Promise((resolve, reject) =>
    slots.enqueue(waiterOf(resolve, reject), signal, ask)
  );
}

/** The caller's `signal`, checked before it is needed (when it queues). */
function signalOf(
  options: AcquireOptions | undefined,
): AbortSignal | undefined {
  const signal = options?.signal;
  if (
    signal !== undefined &&
    typeof (signal as Partial<AbortSignal> | null)?.addEventListener !==
      "function"
  ) {
    throw new TypeError(
      `floodgate: option "signal" must be an AbortSignal, got ${show(signal)}`,
    );
  }
  return signal;
}

const slotsOfLimiter = new WeakMap<Limiter, Slots>();

/** The slots behind `limiter`, for the fetch wrapper. */
export function slotsOf(limiter: Limiter): Slots {
  return slotsOfLimiter.get(limiter)!;
}

/**
 * Caps how many pieces of work run at once: at most `limit` permits are held,
 * at most `queue` callers wait for one, and everyone else is rejected at once
 * with a {@linkcode RejectedError}. Acquiring and releasing are O(1), and so
 * is removing a waiter that gave up.
 *
 * @example Running at most two jobs at once
 * ```ts
 * import { Limiter } from "@floodgate/floodgate";
 *
 * const limiter = new Limiter({ limit: 2, queue: 10 });
 * const jobs = [1, 2, 3, 4].map((n) => limiter.run(async () => n * 2));
 * console.log(await Promise.all(jobs)); // [2, 4, 6, 8]
 * ```
 *
 * @example Urgent work first, and tenants in turns
 * ```ts
 * import { Limiter } from "@floodgate/floodgate";
 *
 * const limiter = new Limiter({ limit: 1, queue: 10 });
 * const order: string[] = [];
 * const job = (name: string) => () => void order.push(name);
 * const first = limiter.acquire();
 * const jobs = [
 *   limiter.run(job("batch a1"), { priority: 7, flow: "a" }),
 *   limiter.run(job("batch a2"), { priority: 7, flow: "a" }),
 *   limiter.run(job("batch b1"), { priority: 7, flow: "b" }),
 *   limiter.run(job("checkout"), { priority: 0 }),
 * ];
 * (await first).release();
 * await Promise.all(jobs);
 * console.log(order); // ["checkout", "batch a1", "batch b1", "batch a2"]
 * ```
 *
 * @example Holding a permit for a block
 * ```ts
 * import { Limiter } from "@floodgate/floodgate";
 *
 * const limiter = new Limiter({ limit: 1 });
 * {
 *   using _permit = await limiter.acquire();
 *   console.log(limiter.active); // 1
 * }
 * console.log(limiter.active); // 0
 * ```
 */
export class Limiter {
  readonly #slots: Slots;

  /**
   * Creates a limiter. Every option is checked here, never later.
   *
   * @param options How many permits, how many waiters, and how they wait.
   * @throws {TypeError} If an option has the wrong type or is unknown.
   * @throws {RangeError} If a number is out of range.
   */
  constructor(options?: LimiterOptions) {
    const checked = checkOptionsObject(options, LIMITER_OPTION_NAMES);
    this.#slots = new Slots(checkLimiterOptions(checked));
    slotsOfLimiter.set(this, this.#slots);
  }

  /**
   * The most permits held at once (with an adaptive limit, its current
   * value). Lowering it lets holders keep their permits and admits no one
   * until `active < limit`; raising it admits waiters at once. Assigning a
   * number switches to that static limit; assigning a
   * {@linkcode LimitAlgorithm} switches to it.
   *
   * @throws {TypeError} On assignment of something else.
   * @throws {RangeError} On assignment of a number that is not an integer >= 1
   * or `Infinity`.
   */
  get limit(): number {
    return this.#slots.limit;
  }

  set limit(value: number | LimitAlgorithm) {
    this.#slots.limit = checkLimit(value);
  }

  /** Permits held now. */
  get active(): number {
    return this.#slots.active;
  }

  /** Callers waiting for a permit now. */
  get queued(): number {
    return this.#slots.queued;
  }

  /**
   * Takes a permit if capacity is free and nobody as urgent waits; never
   * waits.
   *
   * @param options Where it stands: `priority`, `flow`, `weight`
   * (`deadline` is checked, and needs no wait to be met).
   * @returns A permit, or `undefined` (counted as rejected).
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  tryAcquire(options?: TryAcquireOptions): Permit | undefined {
    const slots = this.#slots;
    const ask = askOf(options);
    const hold = slots.acquireNow(ask);
    if (hold !== undefined) return new LimiterPermit(slots, hold);
    slots.countRejection(ask);
    return undefined;
  }

  /**
   * Takes a permit, waiting in the queue if none is free.
   *
   * @param options An optional `signal` to give up waiting, and where the
   * caller stands in line: `priority`, `flow`, `weight`, `deadline`.
   * @returns A promise of the permit. It rejects with `RejectedError`
   * (`"full"`, `"timeout"` or `"closed"`), or with `signal.reason` when the
   * signal aborts first.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  acquire(options?: AcquireOptions): Promise<Permit> {
    const slots = this.#slots;
    const ask = askOf(options);
    const signal = signalOf(options);
    if (signal?.aborted !== true) {
      const hold = slots.acquireNow(ask);
      if (hold !== undefined) {
        return Promise.resolve(new LimiterPermit(slots, hold));
      }
    }
    if (!GRANTS_ARE_OFFERS) {
      // The permit is made by the grant itself: one promise a waiter.
      return new Promise((resolve, reject) => {
        const grant = (hold: Hold) => resolve(new LimiterPermit(slots, hold));
        slots.enqueue(waiterOf(grant, reject), signal, ask);
      });
    }
    return queue(slots, signal, ask).then((granted) => {
      const hold = slots.claim(granted);
      return hold ? new LimiterPermit(slots, hold) : this.acquire(options);
    });
  }

  /**
   * Runs `fn` with a permit: acquires one, calls `fn`, and releases the
   * permit when the result `fn` returns settles. A queued `fn` runs in a
   * microtask of its own, never inside another caller's `release()`.
   *
   * @param fn The work to run.
   * @param options As for {@linkcode Limiter.prototype.acquire}.
   * @returns `fn`'s result; rejects with `fn`'s error, or as
   * {@linkcode Limiter.prototype.acquire} does when no permit is granted.
   * @throws {TypeError} If an option has the wrong type.
   * @throws {RangeError} If an option is out of range.
   */
  run<T>(
    fn: () => T | PromiseLike<T>,
    options?: AcquireOptions,
  ): Promise<T> {
    const slots = this.#slots;
    const ask = askOf(options);
    const signal = signalOf(options);
    if (signal?.aborted !== true) {
      const hold = slots.acquireNow(ask);
      if (hold !== undefined) return runHeld(slots, hold, fn);
    }
    if (!GRANTS_ARE_OFFERS) {
      return new Promise<T>((resolve, reject) =>
        slots.enqueue(new QueuedRun(slots, fn, resolve, reject), signal, ask)
      );
    }
    return queue(slots, signal, ask).then((granted) => {
      const hold = slots.claim(granted);
      return hold ? runHeld(slots, hold, fn) : this.run(fn, options);
    });
  }

  /**
   * A snapshot of the limit, the current load and the counters.
   *
   * @returns A new object; later changes do not show in it.
   */
  stats(): LimiterStats {
    return this.#slots.stats();
  }

  /**
   * Adds an observer of every permit granted, denied and given back. Its
   * methods are called synchronously; one that throws is reported once on
   * the console and breaks nothing. While nobody observes, no event is made.
   *
   * @example Logging what the limiter does
   * ```ts
   * import { Limiter } from "@floodgate/floodgate";
   *
   * const limiter = new Limiter({ limit: 1 });
   * const stop = limiter.observe({
   *   admitted: (event) => console.log("admitted after", event.wait, "ms"),
   *   rejected: (event) => console.log("rejected:", event.reason),
   * });
   * const permit = limiter.tryAcquire(); // admitted after 0 ms
   * limiter.tryAcquire(); // rejected: full
   * permit?.release();
   * stop();
   * ```
   *
   * @param observer An object with any of `admitted`, `rejected`, `released`.
   * @returns A function that removes the observer.
   * @throws {TypeError} If `observer` is not such an object.
   */
  observe(observer: Observer): () => void {
    return observeSlots(this.#slots, observer);
  }

  /**
   * Stops admitting: every waiter and every later `acquire` rejects with
   * `RejectedError("closed")` and `tryAcquire` returns `undefined`. Permits
   * already held keep working until released. Idempotent.
   *
   * @returns A promise that resolves once `active` is 0.
   */
  close(): Promise<void> {
    return this.#slots.close();
  }
}
