import {
  checkBoolean,
  checkChoice,
  checkDuration,
  checkInteger,
  checkOptionsObject,
} from "./_options.ts";
import { WaitNode, WaitQueue } from "./_queue.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";
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
   * Which waiter a freed permit goes to: the oldest (`"fifo"`) or the newest
   * (`"lifo"`, which keeps latency low for most callers when the queue is
   * long, at the price of the oldest).
   *
   * @default {"fifo"}
   */
  order?: "fifo" | "lifo";
  /**
   * Never wait and never reject: an acquisition that would have waited or
   * been rejected is granted at once and counted in `rejected`, so a limit
   * can be measured before it is enforced.
   *
   * @default {false}
   */
  dryRun?: boolean;
}

/** Options for {@linkcode Limiter.prototype.acquire}. */
export interface AcquireOptions {
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
  /** Waiters that left the queue after `queueTimeout` since creation. */
  timedOut: number;
  /** Acquisitions given up through their `AbortSignal` since creation. */
  aborted: number;
}

/** The names of the options {@linkcode Limiter} takes. */
export const LIMITER_OPTIONS: readonly string[] = [
  "limit",
  "queue",
  "queueTimeout",
  "order",
  "dryRun",
];
const OPTIONS: ReadonlySet<string> = new Set(LIMITER_OPTIONS);

/** Checks `value` as a limit; shared by the constructor and the setter. */
function checkLimit(
  value: unknown,
  fallback?: number,
): number | LimitAlgorithm {
  if (isLimitAlgorithm(value)) return value;
  return checkInteger("limit", value, fallback, 1);
}

/**
 * An algorithm's limit as an integer >= 1: a buggy algorithm must not stop
 * every request (0 or NaN) or break the counting (a fraction).
 */
function sane(limit: number): number {
  return limit >= 1 ? Math.floor(limit) : 1;
}

class Waiter extends WaitNode {
  resolve: (permit: Permit) => void;
  reject: (reason: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(
    resolve: (permit: Permit) => void,
    reject: (reason: unknown) => void,
    signal: AbortSignal | undefined,
  ) {
    super();
    this.resolve = resolve;
    this.reject = reject;
    this.signal = signal;
  }

  /** Drops the timer and the abort listener, so nothing outlives the wait. */
  settle(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort !== undefined) {
      this.signal!.removeEventListener("abort", this.onAbort);
    }
    this.signal = this.onAbort = this.timer = undefined;
  }
}

class LimiterPermit implements Permit {
  #limiter: Limiter | undefined;
  #granted: number;
  #inflight: number;

  constructor(limiter: Limiter, granted: number, inflight: number) {
    this.#limiter = limiter;
    this.#granted = granted;
    this.#inflight = inflight;
  }

  release(): void {
    this.end(false);
  }

  [Symbol.dispose](): void {
    this.end(false);
  }

  /** Releases once; `dropped` tells an adaptive limit the work failed. */
  end(dropped: boolean): void {
    const limiter = this.#limiter;
    if (limiter === undefined) return;
    this.#limiter = undefined;
    // inflight is 0 for a permit granted under a static limit.
    if (this.#inflight === 0) leave(limiter);
    else leaveSampled(limiter, this.#granted, this.#inflight, dropped);
  }
}

/** Calls `fn` and ends `permit` when its result settles. */
function settleNow<T>(
  permit: LimiterPermit,
  fn: () => T | PromiseLike<T>,
): Promise<T> {
  let result: T | PromiseLike<T>;
  try {
    result = fn();
  } catch (error) {
    permit.end(true);
    return Promise.reject(error);
  }
  return Promise.resolve(result).then((value) => {
    permit.end(false);
    return value;
  }, (error) => {
    permit.end(true);
    throw error;
  });
}

/** Calls `fn`, ends `permit` when its result settles, and passes it on. */
function settle<T>(
  permit: LimiterPermit,
  fn: () => T | PromiseLike<T>,
  resolve: (value: T) => void,
  reject: (reason: unknown) => void,
): void {
  let result: T | PromiseLike<T>;
  try {
    result = fn();
  } catch (error) {
    permit.end(true);
    return reject(error);
  }
  if (typeof (result as PromiseLike<T> | undefined)?.then !== "function") {
    permit.end(false);
    return resolve(result as T);
  }
  (result as PromiseLike<T>).then((value) => {
    permit.end(false);
    resolve(value);
  }, (error) => {
    permit.end(true);
    reject(error);
  });
}

/**
 * Takes a slot without a {@linkcode Permit} object, for the fetch wrapper's
 * fast path. Returns `false` when the caller has to wait or be rejected.
 */
export let enter: (limiter: Limiter) => boolean;
/** Gives back a slot taken by `enter` (or held by a permit). */
export let leave: (limiter: Limiter) => void;
/**
 * After `enter` failed: the reason to reject at once (counted), or
 * `undefined` when the caller may queue through `acquire`.
 */
export let deny: (limiter: Limiter) => RejectReason | undefined;
/** Whether the limit is a {@linkcode LimitAlgorithm} that wants samples. */
export let isAdaptive: (limiter: Limiter) => boolean;
/**
 * Gives back a slot granted at `granted` (from `performance.now()`) with
 * `inflight` permits held, feeding the sample to an adaptive limit.
 */
export let leaveSampled: (
  limiter: Limiter,
  granted: number,
  inflight: number,
  dropped: boolean,
) => void;

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
  #limit: number;
  #algorithm: LimitAlgorithm | undefined = undefined;
  #queue: number;
  #queueTimeout: number;
  #lifo: boolean;
  #dryRun: boolean;

  #active = 0;
  #waiters = new WaitQueue<Waiter>();
  #admitted = 0;
  #rejected = 0;
  #timedOut = 0;
  #aborted = 0;
  #closed: Promise<void> | undefined = undefined;
  #resolveClosed: (() => void) | undefined = undefined;

  static {
    enter = (limiter) => limiter.#enter();
    leave = (limiter) => limiter.#leave();
    deny = (limiter) => limiter.#deny();
    isAdaptive = (limiter) => limiter.#algorithm !== undefined;
    leaveSampled = (limiter, granted, inflight, dropped) =>
      limiter.#leaveSampled(granted, inflight, dropped);
  }

  /**
   * Creates a limiter. Every option is checked here, never later.
   *
   * @param options How many permits, how many waiters, and how they wait.
   * @throws {TypeError} If an option has the wrong type or is unknown.
   * @throws {RangeError} If a number is out of range.
   */
  constructor(options?: LimiterOptions) {
    const o = checkOptionsObject(options, OPTIONS);
    this.#limit = this.#use(checkLimit(o.limit, 100));
    this.#queue = checkInteger("queue", o.queue, 0, 0);
    this.#queueTimeout = checkDuration(
      "queueTimeout",
      o.queueTimeout,
      Infinity,
    );
    this.#lifo = checkChoice("order", o.order, ["fifo", "lifo"]) === "lifo";
    this.#dryRun = checkBoolean("dryRun", o.dryRun);
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
    return this.#limit;
  }

  set limit(value: number | LimitAlgorithm) {
    this.#limit = this.#use(checkLimit(value));
    this.#drain();
  }

  /** Permits held now. */
  get active(): number {
    return this.#active;
  }

  /** Callers waiting for a permit now. */
  get queued(): number {
    return this.#waiters.size;
  }

  /**
   * Takes a permit if one is free and nobody waits for one; never waits.
   *
   * @returns A permit, or `undefined` (counted as rejected).
   */
  tryAcquire(): Permit | undefined {
    if (this.#enter()) return this.#permit();
    this.#rejected++;
    return undefined;
  }

  /**
   * Takes a permit, waiting in the queue if none is free.
   *
   * @param options An optional `signal` to give up waiting.
   * @returns A promise of the permit. It rejects with `RejectedError`
   * (`"full"`, `"timeout"` or `"closed"`), or with `signal.reason` when the
   * signal aborts first.
   */
  acquire(options?: AcquireOptions): Promise<Permit> {
    const signal = options?.signal;
    const now = this.#start(signal);
    if (now instanceof LimiterPermit) return Promise.resolve(now);
    if (now !== undefined) return Promise.reject(now.error);
    return new Promise((resolve, reject) =>
      this.#enqueue(signal, resolve, reject)
    );
  }

  /**
   * Runs `fn` with a permit: acquires one, calls `fn`, and releases the
   * permit when the promise `fn` returns settles.
   *
   * @param fn The work to run.
   * @param options An optional `signal` to give up waiting.
   * @returns `fn`'s result; rejects with `fn`'s error, or as
   * {@linkcode Limiter.prototype.acquire} does when no permit is granted.
   */
  run<T>(
    fn: () => T | PromiseLike<T>,
    options?: AcquireOptions,
  ): Promise<T> {
    const signal = options?.signal;
    const now = this.#start(signal);
    if (now !== undefined && !(now instanceof LimiterPermit)) {
      return Promise.reject(now.error);
    }
    if (now !== undefined) return settleNow(now, fn);
    // A queued call runs `fn` from the grant itself, without a promise for
    // the acquisition.
    return new Promise<T>((resolve, reject) => {
      this.#enqueue(signal, (permit) => {
        settle(permit as LimiterPermit, fn, resolve, reject);
      }, reject);
    });
  }

  /**
   * A snapshot of the limit, the current load and the counters.
   *
   * @returns A new object; later changes do not show in it.
   */
  stats(): LimiterStats {
    return {
      limit: this.#limit,
      active: this.#active,
      queued: this.#waiters.size,
      admitted: this.#admitted,
      rejected: this.#rejected,
      timedOut: this.#timedOut,
      aborted: this.#aborted,
    };
  }

  /**
   * Stops admitting: every waiter and every later `acquire` rejects with
   * `RejectedError("closed")` and `tryAcquire` returns `undefined`. Permits
   * already held keep working until released. Idempotent.
   *
   * @returns A promise that resolves once `active` is 0.
   */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = new Promise((resolve) => this.#resolveClosed = resolve);
      for (
        let w = this.#waiters.take(false);
        w;
        w = this.#waiters.take(false)
      ) {
        this.#rejected++;
        w.settle();
        w.reject(new RejectedError("closed"));
      }
      if (this.#active === 0) this.#resolveClosed!();
    }
    return this.#closed;
  }

  /**
   * The start of every acquisition: a permit if one is free, what to reject
   * with if the caller may not wait, or `undefined` to queue.
   */
  #start(
    signal: AbortSignal | undefined,
  ): LimiterPermit | { error: unknown } | undefined {
    if (this.#closed === undefined && signal?.aborted) {
      this.#aborted++;
      return { error: signal.reason };
    }
    if (this.#enter()) return this.#permit();
    const reason = this.#deny();
    return reason === undefined
      ? undefined
      : { error: new RejectedError(reason) };
  }

  /** Queues a caller; `grant` receives its permit, `fail` the error. */
  #enqueue(
    signal: AbortSignal | undefined,
    grant: (permit: Permit) => void,
    fail: (reason: unknown) => void,
  ): void {
    const waiter = new Waiter(grant, fail, signal);
    if (signal !== undefined) {
      waiter.onAbort = () => this.#abandon(waiter, false);
      signal.addEventListener("abort", waiter.onAbort);
    }
    if (this.#queueTimeout !== Infinity) {
      waiter.timer = setTimeout(
        () => this.#abandon(waiter, true),
        this.#queueTimeout,
      );
    }
    this.#waiters.push(waiter);
  }

  #enter(): boolean {
    if (
      this.#active < this.#limit && this.#waiters.size === 0 &&
      this.#closed === undefined
    ) {
      this.#active++;
      this.#admitted++;
      return true;
    }
    if (this.#dryRun && this.#closed === undefined) {
      this.#rejected++;
      this.#active++;
      this.#admitted++;
      return true;
    }
    return false;
  }

  #deny(): RejectReason | undefined {
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

  /** Remembers an algorithm, and returns the limit to enforce now. */
  #use(limit: number | LimitAlgorithm): number {
    if (typeof limit === "number") {
      this.#algorithm = undefined;
      return limit;
    }
    this.#algorithm = limit;
    return sane(limit.limit);
  }

  /** A permit for a slot just taken, timed when the limit is adaptive. */
  #permit(): LimiterPermit {
    return this.#algorithm === undefined
      ? new LimiterPermit(this, 0, 0)
      : new LimiterPermit(this, performance.now(), this.#active);
  }

  #leaveSampled(granted: number, inflight: number, dropped: boolean): void {
    const algorithm = this.#algorithm;
    // A permit granted before the limit became adaptive has no timing.
    if (algorithm !== undefined && inflight > 0) {
      try {
        algorithm.update({
          rtt: performance.now() - granted,
          inflight,
          dropped,
        });
        this.#limit = sane(algorithm.limit);
      } catch (error) {
        // The slot must still come back; the algorithm's bug surfaces as an
        // uncaught error instead of breaking the caller's release().
        queueMicrotask(() => {
          throw error;
        });
      }
    }
    this.#leave();
  }

  #leave(): void {
    this.#active--;
    if (this.#waiters.size !== 0) this.#drain();
    else if (this.#active === 0) this.#resolveClosed?.();
  }

  /** Hands free permits to waiters, in order, while the limit allows. */
  #drain(): void {
    while (this.#waiters.size !== 0 && this.#active < this.#limit) {
      const waiter = this.#waiters.take(this.#lifo)!;
      waiter.settle();
      this.#active++;
      this.#admitted++;
      waiter.resolve(this.#permit());
    }
  }

  /** Removes a waiter that timed out or whose signal aborted. */
  #abandon(waiter: Waiter, timedOut: boolean): void {
    if (!waiter.queued) return;
    this.#waiters.remove(waiter);
    const error = timedOut
      ? new RejectedError("timeout")
      : waiter.signal!.reason;
    waiter.settle();
    if (timedOut) this.#timedOut++;
    else this.#aborted++;
    waiter.reject(error);
  }
}
