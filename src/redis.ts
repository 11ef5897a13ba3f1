import { askOf } from "./_ask.ts";
import {
  checkDuration,
  checkInteger,
  checkOptionsObject,
  fail,
  show,
} from "./_options.ts";
import { type Observer, Observers } from "./_observe.ts";
import { adapterOf, type RedisAdapter } from "./_redis_client.ts";
import { ACQUIRE, CANCEL, RELEASE, RENEW } from "./_redis_scripts.ts";
import type { AcquireOptions, LimiterStats, Permit } from "./limiter.ts";
import { RejectedError } from "./rejected_error.ts";
import { retryAfterSeconds } from "./_reject.ts";
import { HOLD_SMOOTHING } from "./_slots.ts";

export type { RedisAdapter };

/** Options for {@linkcode RedisLimiter}. */
export interface RedisLimiterOptions {
  /**
   * The connection: a node-redis client (connected), an ioredis client, Bun's
   * `RedisClient`, or a {@linkcode RedisAdapter} for anything else. The
   * limiter opens one more connection (a duplicate) to be woken by
   * pub/sub, and closes it in `close()`; the client itself stays yours.
   */
  redis: unknown;
  /** The limit's name: every process with the same name shares the limit. */
  name: string;
  /** Most permits held at once across the fleet. */
  limit: number;
  /**
   * Most callers waiting across the fleet (the queue lives in Redis).
   *
   * @default {0}
   */
  queue?: number;
  /**
   * Longest a caller waits, in ms.
   *
   * @default {Infinity}
   */
  queueTimeout?: number;
  /**
   * How long a permit (or a place in the queue) lasts without renewal, in
   * ms. It is renewed every third of `lease` while held, so only a process
   * that died or froze loses it; its permits return within `lease`.
   *
   * @default {10000}
   */
  lease?: number;
  /**
   * How long one round trip to Redis may take, in ms, before the limiter
   * treats Redis as unreachable: the acquisition rejects with
   * `RejectedError("unavailable")`, and so does every acquisition in the
   * next `timeout` ms without trying (one attempt a `timeout` while Redis is
   * away keeps rejections fast).
   *
   * @default {1000}
   */
  timeout?: number;
}

/** Options for {@linkcode RedisLimiter.prototype.acquire}. */
export interface RedisAcquireOptions extends AcquireOptions {
  /**
   * Ms from now after which the caller no longer wants the permit: bounds
   * the wait like `queueTimeout` (the smaller of the two applies).
   */
  deadline?: number;
}

/** {@linkcode LimiterStats} plus what only a fleet limiter counts. */
export interface RedisLimiterStats extends LimiterStats {
  /** Acquisitions rejected because Redis could not be reached (also in `rejected`). */
  unavailable: number;
  /** Releases that came after their lease had expired, and freed nothing. */
  expired: number;
}

/**
 * What an observer of a {@linkcode RedisLimiter} is told: the same events as
 * for the in-process `Limiter` (priority 3 and weight 1 throughout).
 */
export type RedisLimiterObserver = Observer;

const OPTION_NAMES = [
  "redis",
  "name",
  "limit",
  "queue",
  "queueTimeout",
  "lease",
  "timeout",
] as const;

interface Waiter {
  id: string;
  started: number;
  resolve(permit: Permit): void;
  reject(error: unknown): void;
  /** Set once the waiter is settled, or handed a permit. */
  settled: boolean;
  /** Set once its place in the fleet's queue is confirmed (then renewed). */
  placed: boolean;
  /** Set when a grant was published for it. */
  woken: boolean;
  cleanup(): void;
}

class Unavailable extends Error {}
/** Refused without a round trip: Redis never saw the call. */
class Unsent extends Unavailable {}
/** A reply of a shape no script gives: a bug of the adapter, not an outage. */
class BadReply extends TypeError {}

/**
 * The calls of one script made in the same turn, or while one call of it is
 * in flight, to go together as the next call: one round trip for several
 * acquisitions (or releases) when many happen at once, none added when one
 * happens alone.
 */
interface Batch {
  script: string;
  /** How many arguments each call adds. */
  width: number;
  how: { gated?: boolean; patient?: boolean };
  flying: boolean;
  /** Whether a call is to leave once this turn's microtasks have run. */
  scheduled: boolean;
  args: string[];
  calls: Array<{ resolve(reply: unknown): void; reject(error: unknown): void }>;
}

/** Most calls a script call carries: bounds how long it blocks Redis. */
const MOST_PER_CALL = 64;

/** A command in flight, failed by the watchdog past its deadline. */
interface Flight {
  deadline: number;
  fail(): void;
}

async function sha1(text: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    new TextEncoder().encode(text),
  );
  return Array.from(
    new Uint8Array(digest),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

let hashing: Promise<unknown> | undefined;
/** The SHA1 of every script once computed (once for all limiters). */
let hashed: Record<string, string> | undefined;

/** Resolves once `hashed` is set. */
function hashes(): Promise<unknown> {
  hashing ??= Promise.all(
    [ACQUIRE, RELEASE, CANCEL, RENEW].map(async (script) =>
      [script, await sha1(script)] as const
    ),
  ).then((pairs) => hashed = Object.fromEntries(pairs));
  return hashing;
}

/**
 * One concurrency limit shared by every process that uses the same `name`
 * on the same Redis: a database's connections, an API account's concurrent
 * calls. Permits are leases renewed while held; waiters are served in
 * arrival order across the fleet and woken by pub/sub. When Redis cannot be
 * reached, acquisitions reject at once with `RejectedError("unavailable")`
 * (which `throttle` answers with 503) and the limiter recovers by itself.
 *
 * @example A fleet-wide limit for a handler
 * ```ts ignore
 * import { createClient } from "redis";
 * import { throttle } from "@floodgate/floodgate";
 * import { RedisLimiter } from "@floodgate/floodgate/redis";
 *
 * const redis = await createClient().connect();
 * const limiter = new RedisLimiter({ redis, name: "db", limit: 20, queue: 100 });
 * const handler = (_request: Request) => new Response("hello");
 * export default { fetch: throttle(handler, { limiter }) };
 * ```
 */
export class RedisLimiter {
  readonly #redis: RedisAdapter;
  readonly #keys: string[];
  readonly #prefix: string;
  readonly #token = crypto.randomUUID();
  readonly #limit: number;
  readonly #queue: number;
  readonly #queueTimeout: number;
  readonly #lease: number;
  readonly #timeout: number;
  readonly #waiters = new Map<string, Waiter>();
  /** The mean time this process holds a permit (ms, an EWMA), once known. */
  #holdTime: number | undefined = undefined;
  /** Permits held: when each was granted, and who saw it granted. */
  readonly #held = new Map<
    string,
    { granted: number; observers: readonly Observer[] }
  >();
  readonly #observers = new Observers(() => {});
  readonly #pending = new Set<Promise<unknown>>();
  readonly #hashing: Promise<unknown> = hashes();
  /** Calls waiting for the hashes. */
  #deferred = 0;
  #sequence = 0;
  #subscription: Promise<() => Promise<void>> | undefined;
  /** Whether `#subscription` has succeeded (no await needed). */
  #subscribed = false;
  #renewal: ReturnType<typeof setInterval> | undefined;
  /** Whether a renewal's round trip is under way. */
  #renewing = false;
  #downUntil = 0;
  readonly #inFlight = new Set<Flight>();
  #watchdog: ReturnType<typeof setInterval> | undefined;
  /** What every script call sends after its SHA1: the keys and the settings. */
  readonly #common: string[];
  #closed = false;
  readonly #acquisitions: Batch = batch(ACQUIRE, 2, { gated: true });
  readonly #releases: Batch = batch(RELEASE, 1, { patient: true });
  /** Acquisitions whose round trip to Redis is under way. */
  #entering = 0;
  /** What `close()` waits on: called when nothing is held or entering. */
  #idle: Array<() => void> = [];
  #stats = {
    admitted: 0,
    rejected: 0,
    timedOut: 0,
    aborted: 0,
    unavailable: 0,
    expired: 0,
  };

  /**
   * Creates the limiter; nothing is sent to Redis until the first
   * acquisition.
   *
   * @param options The client, the name, the limit and how to wait.
   * @throws {TypeError} If an option has the wrong type or is unknown, or
   * `redis` is not a client this module recognises.
   * @throws {RangeError} If a number is out of range.
   */
  constructor(options: RedisLimiterOptions) {
    const given = checkOptionsObject(options, OPTION_NAMES);
    this.#redis = adapterOf(given.redis);
    if (typeof given.name !== "string" || given.name === "") {
      fail(TypeError, "name", "a non-empty string", given.name);
    }
    this.#limit = checkInteger("limit", given.limit, { min: 1 });
    this.#queue = checkInteger("queue", given.queue, {
      min: 0,
      infinite: true,
      fallback: 0,
    });
    this.#queueTimeout = checkDuration(
      "queueTimeout",
      given.queueTimeout,
      Infinity,
    );
    this.#lease = checkInteger("lease", given.lease, {
      min: 30,
      fallback: 10_000,
    });
    this.#timeout = checkInteger("timeout", given.timeout, {
      min: 1,
      fallback: 1000,
    });
    this.#prefix = `floodgate:{${given.name}}:`;
    this.#keys = ["holders", "queue", "waiting", "arrivals"].map((key) =>
      this.#prefix + key
    );
    this.#common = [
      "4",
      ...this.#keys,
      String(this.#limit),
      String(this.#lease),
    ];
  }

  /** The fleet-wide limit. */
  get limit(): number {
    return this.#limit;
  }

  /**
   * The seconds a caller turned away now should wait before it tries again,
   * which `throttle` sends with `retryAfter: "auto"`: the expected time until
   * a permit frees for a newcomer behind a full fleet queue (the queue's
   * bound plus one permits, at this process's mean hold time, over the
   * limit), spread by up to +50% at random, within 1-60; 1 before this
   * process gave a permit back.
   */
  retryAfter(): number {
    if (this.#holdTime === undefined) return 1;
    const ahead = this.#queue === Infinity ? this.#waiters.size : this.#queue;
    return retryAfterSeconds((ahead + 1) * this.#holdTime / this.#limit);
  }

  /** Permits this process holds now. */
  get active(): number {
    return this.#held.size;
  }

  /** Callers of this process waiting now. */
  get queued(): number {
    return this.#waiters.size;
  }

  /**
   * A permit if one is free across the fleet now and nobody waits, else
   * `undefined`; never waits in the queue (one round trip to Redis).
   *
   * @returns The permit, or `undefined` (also after `close()`).
   * @throws {RejectedError} With reason `"unavailable"` if Redis cannot be
   * reached.
   */
  async tryAcquire(): Promise<Permit | undefined> {
    const id = this.#nextId();
    const started = Date.now();
    if (this.#closed) {
      this.#deny("closed", started);
      return undefined;
    }
    let result: unknown;
    this.#entering++;
    try {
      result = await this.#batched(this.#acquisitions, [id, "-2"]);
    } catch (error) {
      // The script may have run after the round trip timed out: whatever it
      // granted goes back.
      this.#cancelUnlessUnsent(id, error);
      throw this.#failed(error, started);
    } finally {
      this.#entered();
    }
    if (result === 1 && this.#closed) {
      // Closed during the round trip: what Redis granted goes back.
      this.#cancel(id);
      this.#deny("closed", started);
      return undefined;
    }
    if (result === 1) return this.#grant(id, started);
    this.#deny("full", started);
    return undefined;
  }

  /**
   * Resolves with a permit when one is free across the fleet, waiting in the
   * fleet's queue (in arrival order) if `queue` allows.
   *
   * @param options `signal` gives up waiting; `deadline` bounds the wait
   * like `queueTimeout`.
   * @returns The permit.
   * @throws {RejectedError} `"full"`, `"timeout"`, `"closed"` or
   * `"unavailable"`; the signal's reason when it aborts.
   */
  async acquire(options?: RedisAcquireOptions): Promise<Permit> {
    const { signal, deadline } = checkAcquireOptions(options);
    const started = Date.now();
    if (signal?.aborted) {
      this.#count("aborted", started);
      throw signal.reason;
    }
    this.#refuseIfClosed(started);
    const wait = Math.min(this.#queueTimeout, deadline);
    const id = this.#nextId();
    // With a wait of 0 (queueTimeout or deadline), a caller that finds room
    // in the queue times out at once, as with the in-process Limiter; one
    // that finds it full is "full".
    const mayWait = this.#queue > 0;
    let granted!: (permit: Permit) => void;
    let refused!: (error: unknown) => void;
    const promise = new Promise<Permit>((resolve, reject) => {
      granted = resolve;
      refused = reject;
    });
    // close() may reject it before it is returned to the caller: that must
    // not count as an unhandled rejection (Node and Deno exit on one).
    promise.catch(() => {});
    if (mayWait && !this.#subscribed) {
      try {
        await this.#subscribe();
      } catch (error) {
        throw this.#failed(error, started);
      }
      this.#refuseIfClosed(started);
    }
    // Registered before the script runs: the grant may be published before
    // the script's reply arrives.
    const waiter: Waiter = {
      id,
      started,
      resolve: granted,
      reject: refused,
      settled: false,
      placed: false,
      woken: false,
      cleanup: () => {},
    };
    if (mayWait) this.#waiters.set(id, waiter);
    if (signal !== undefined) {
      // From now on, also while the script is on its way: the cancellation
      // leaves at once (ahead of later acquisitions), and again once the
      // reply comes, in case it overtook the script (#enter).
      const abort = () => this.#letGo(waiter, "aborted", signal.reason);
      signal.addEventListener("abort", abort, { once: true });
      waiter.cleanup = () => signal.removeEventListener("abort", abort);
      // It may have aborted while this waited to subscribe.
      if (signal.aborted) {
        abort();
        return promise;
      }
    }
    this.#enter(
      waiter,
      !mayWait ? "-2" : this.#queue === Infinity ? "-1" : String(this.#queue),
      wait,
    );
    return promise;
  }

  /**
   * Sends the acquisition of `waiter` (how many may wait: `most`) and
   * settles it by the reply, unless it was settled meanwhile (closed,
   * aborted, or granted by a notification that came first).
   */
  async #enter(waiter: Waiter, most: string, wait: number): Promise<void> {
    const { id, started } = waiter;
    let result: unknown;
    this.#entering++;
    try {
      result = await this.#batched(this.#acquisitions, [id, most]);
    } catch (error) {
      // The script may have run: whatever it granted or queued goes back.
      this.#cancelUnlessUnsent(id, error);
      if (waiter.settled) return;
      this.#settle(waiter);
      waiter.reject(this.#failed(error, started));
      return;
    } finally {
      this.#entered();
    }
    if (waiter.settled) {
      // A rejected waiter's place or permit goes back, since a cancellation
      // may have reached Redis before its acquisition.
      if (!waiter.woken && result !== 0) this.#cancel(id);
      return;
    }
    if (result === 2) {
      waiter.placed = true;
      this.#wait(waiter, wait);
      this.#renewWhileBusy();
      return;
    }
    this.#settle(waiter);
    if (result === 1 && this.#closed) {
      this.#cancel(id);
      this.#deny("closed", started);
      waiter.reject(new RejectedError("closed"));
    } else if (result === 1) {
      waiter.resolve(this.#grant(id, started));
    } else {
      this.#deny("full", started);
      waiter.reject(new RejectedError("full"));
    }
  }

  /**
   * Acquires a permit, runs `fn`, and releases the permit when `fn`'s
   * result settles.
   *
   * @param fn The work to run while holding a permit.
   * @param options As for {@linkcode RedisLimiter.prototype.acquire}.
   * @returns What `fn` returns.
   * @throws {RejectedError} As `acquire`; whatever `fn` throws.
   */
  async run<T>(
    fn: () => T | PromiseLike<T>,
    options?: RedisAcquireOptions,
  ): Promise<T> {
    if (typeof fn !== "function") {
      throw new TypeError(`floodgate: run() takes a function, got ${show(fn)}`);
    }
    const permit = await this.acquire(options);
    try {
      return await fn();
    } finally {
      permit.release();
    }
  }

  /**
   * This process's view: `active` and `queued` are its own permits and
   * waiters; `limit` is the fleet's; the counters count since creation.
   *
   * @returns A snapshot.
   */
  stats(): RedisLimiterStats {
    return {
      limit: this.#limit,
      active: this.#held.size,
      queued: this.#waiters.size,
      ...this.#stats,
    };
  }

  /**
   * Calls the observer's methods on every admission, rejection and release,
   * synchronously, as `Limiter.observe()` does: one that throws is reported
   * once on the console and breaks nothing.
   *
   * @param observer An object with any of `admitted`, `rejected`, `released`.
   * @returns A function that removes the observer.
   * @throws {TypeError} If `observer` is not such an object.
   */
  observe(observer: RedisLimiterObserver): () => void {
    return this.#observers.add(observer);
  }

  /**
   * Stops admitting: this process's waiters and every acquisition not
   * granted yet reject with `RejectedError("closed")` (a permit Redis grants
   * to one of them meanwhile goes back) and leave the fleet's queue; later
   * ones reject at once. Resolves when this process holds no permit, no
   * acquisition of its is under way, and its releases reached Redis (or
   * failed), then closes the connection it opened for pub/sub. Idempotent.
   *
   * @returns A promise that resolves once closed.
   */
  async close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      for (const waiter of [...this.#waiters.values()]) {
        this.#letGo(waiter, "closed", new RejectedError("closed"));
      }
    }
    while (this.#held.size > 0 || this.#entering > 0) {
      await new Promise<void>((resolve) => this.#idle.push(resolve));
    }
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
    this.#stopRenewal();
    this.#stopWatchdogIfIdle();
    const subscription = this.#subscription;
    this.#subscription = undefined;
    this.#subscribed = false;
    if (subscription !== undefined) {
      await subscription.then((unsubscribe) => unsubscribe(), () => {});
    }
  }

  #nextId(): string {
    return `${this.#token}:${++this.#sequence}`;
  }

  #refuseIfClosed(started: number): void {
    if (!this.#closed) return;
    this.#deny("closed", started);
    throw new RejectedError("closed");
  }

  /**
   * Sends `script` by its SHA1, and in full when Redis does not know it.
   * An acquisition or a renewal must answer within `timeout`; what gives
   * permits back may take up to a lease, since nobody waits for it. An
   * acquisition (`gated`) is refused without a round trip for `timeout` ms
   * after a round trip failed.
   */
  #script(
    script: string,
    args: string[],
    how: { gated?: boolean; patient?: boolean } = {},
  ): Promise<unknown> {
    if (how.gated && Date.now() < this.#downUntil) {
      return Promise.reject(new Unsent("recently unreachable"));
    }
    // Until the hashes are known, and while calls wait for them, every call
    // waits on the same promise, so commands leave in call order.
    if (hashed === undefined || this.#deferred > 0) {
      this.#deferred++;
      return this.#hashing.then(() => {
        this.#deferred--;
        return this.#evalsha(script, args, how.patient);
      });
    }
    return this.#evalsha(script, args, how.patient);
  }

  #evalsha(
    script: string,
    args: string[],
    patient: boolean | undefined,
  ): Promise<unknown> {
    const bound = patient ? this.#lease : this.#timeout;
    return this.#bounded(
      ["EVALSHA", hashed![script], ...this.#common, ...args],
      bound,
    ).catch((error) => {
      if (!String((error as Error)?.message).includes("NOSCRIPT")) {
        throw error;
      }
      return this.#bounded(["EVAL", script, ...this.#common, ...args], bound);
    });
  }

  /**
   * One command, failed after about `ms` (one watchdog timer checks every
   * command in flight, a quarter of `timeout` apart, instead of a timer
   * each).
   */
  #bounded(args: string[], ms: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const flight: Flight = {
        deadline: Date.now() + ms,
        fail: () => {
          this.#downUntil = Date.now() + this.#timeout;
          reject(new Unavailable("no answer in time"));
        },
      };
      this.#inFlight.add(flight);
      this.#watchdog ??= setInterval(() => this.#watch(), this.#timeout / 4);
      const done = () => {
        this.#inFlight.delete(flight);
        // Once closed, the last command stops the watchdog (which would
        // otherwise keep the process alive until its next tick).
        if (this.#closed) this.#stopWatchdogIfIdle();
      };
      let sent: Promise<unknown>;
      try {
        sent = this.#redis.send(args);
      } catch (error) {
        sent = Promise.reject(error);
      }
      sent.then((reply) => {
        done();
        resolve(reply);
      }, (error) => {
        done();
        if (!isReplyError(error)) {
          this.#downUntil = Date.now() + this.#timeout;
        }
        reject(error);
      });
    });
  }

  /** Fails the commands past their deadline; stops when none is in flight. */
  #watch(): void {
    const now = Date.now();
    for (const flight of this.#inFlight) {
      if (flight.deadline > now) continue;
      this.#inFlight.delete(flight);
      flight.fail();
    }
    this.#stopWatchdogIfIdle();
  }

  #stopWatchdogIfIdle(): void {
    if (this.#inFlight.size > 0) return;
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  #subscribe(): Promise<() => Promise<void>> {
    if (this.#subscription !== undefined) return this.#subscription;
    // Refused without trying, as acquisitions are, while Redis is away.
    if (Date.now() < this.#downUntil) {
      return Promise.reject(new Unavailable("recently unreachable"));
    }
    const subscribe = this.#redis.subscribe;
    const channel = `${this.#prefix}wake:${this.#token}`;
    // Given up after `timeout`: the adapter then drops the connection it
    // opened, which would otherwise reconnect for as long as Redis is away
    // (and keep the process alive after close()).
    const giveUp = new AbortController();
    let subscription: Promise<() => Promise<void>>;
    try {
      subscription = subscribe === undefined
        ? Promise.resolve(() => Promise.resolve())
        : Promise.resolve(
          subscribe.call(
            this.#redis,
            channel,
            (id) => this.#woken(id),
            giveUp.signal,
          ),
        );
    } catch (error) {
      subscription = Promise.reject(error);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const bounded = Promise.race([
      subscription,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Unavailable("could not subscribe")),
          this.#timeout,
        );
      }),
    ]).finally(() => clearTimeout(timer));
    this.#subscription = bounded;
    bounded.then(() => {
      if (this.#subscription === bounded) this.#subscribed = true;
    }, () => {
      // Tried again by the next acquisition after `timeout`; a late success
      // is closed.
      this.#downUntil = Date.now() + this.#timeout;
      if (this.#subscription === bounded) this.#subscription = undefined;
      giveUp.abort(new Unavailable("could not subscribe"));
      subscription.then((unsubscribe) => unsubscribe(), () => {});
    });
    return bounded;
  }

  /**
   * The grants a script made, as its reply tells them: this process's
   * waiters among them need not wait for the message, which then finds
   * them settled (and so does the reply when the message comes first).
   */
  #wokenAll(ids: string[]): void {
    for (const id of ids) this.#woken(id);
  }

  /** A grant published for one of this process's waiters. */
  #woken(id: string): void {
    const waiter = this.#waiters.get(id);
    if (waiter === undefined || waiter.settled) return;
    this.#settle(waiter);
    waiter.woken = true;
    waiter.resolve(this.#grant(id, waiter.started));
  }

  /** Times the placed waiter out after `wait` ms. */
  #wait(waiter: Waiter, wait: number): void {
    if (wait === Infinity) return;
    const timer = setTimeout(
      () => this.#letGo(waiter, "timedOut", new RejectedError("timeout")),
      wait,
    );
    const { cleanup } = waiter;
    waiter.cleanup = () => {
      clearTimeout(timer);
      cleanup();
    };
  }

  #settle(waiter: Waiter): void {
    waiter.settled = true;
    waiter.cleanup();
    this.#waiters.delete(waiter.id);
  }

  /** Sends `args` with the next call of `batch`'s script. */
  #batched(batch: Batch, args: string[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      batch.calls.push({ resolve, reject });
      batch.args.push(...args);
      this.#schedule(batch);
    });
  }

  /**
   * Sends the calls made so far once this turn's microtasks have run (the
   * callers that one reply resumes then go together), unless a call is in
   * flight: its reply schedules the next.
   */
  #schedule(batch: Batch): void {
    if (batch.scheduled || batch.flying) return;
    batch.scheduled = true;
    queueMicrotask(() => {
      batch.scheduled = false;
      this.#fly(batch);
    });
  }

  #fly(batch: Batch): void {
    const count = Math.min(batch.calls.length, MOST_PER_CALL);
    const calls = batch.calls.splice(0, count);
    const args = batch.args.splice(0, count * batch.width);
    batch.flying = true;
    const landed = () => {
      batch.flying = false;
      if (batch.calls.length > 0) this.#schedule(batch);
    };
    this.#script(batch.script, args, batch.how).then((reply) => {
      landed();
      let answers: unknown[], grants: string[];
      try {
        [answers, grants] = lists(reply, 2) as [unknown[], string[]];
      } catch (error) {
        for (const call of calls) call.reject(error);
        return;
      }
      // Before the answers: an acquisition queued by this very call may
      // have been granted in it.
      this.#wokenAll(grants);
      calls.forEach((call, i) => {
        const answer = answerOf(answers[i]);
        if (answer !== undefined) return call.resolve(answer);
        const shown = show(answers[i]);
        call.reject(new BadReply(`floodgate: Redis answered a call ${shown}`));
      });
    }, (error) => {
      landed();
      for (const call of calls) call.reject(error);
    });
  }

  /**
   * Cancels `id` after its acquisition failed with `error`, unless the call
   * never left (refused while Redis is unreachable): then Redis has nothing
   * of it, and a cancellation per refusal would only pile up in the client
   * for the outage's length.
   */
  #cancelUnlessUnsent(id: string, error: unknown): void {
    if (!(error instanceof Unsent)) this.#cancel(id);
  }

  /** Takes `id` out of the queue and the holders, in the background. */
  #cancel(id: string): void {
    this.#track(
      this.#script(CANCEL, [id], { patient: true }).then((reply) =>
        this.#wokenAll((reply as [number, string[]])[1])
      ),
    );
  }

  #track(promise: Promise<unknown>): Promise<unknown> {
    const quiet = promise.catch(() => undefined);
    this.#pending.add(quiet);
    quiet.then(() => this.#pending.delete(quiet));
    return quiet;
  }

  #grant(id: string, started: number): Permit {
    const granted = Date.now();
    const observers = this.#observers.current;
    this.#held.set(id, { granted, observers });
    this.#stats.admitted++;
    this.#emit("admitted", { wait: granted - started, priority: 3, weight: 1 });
    this.#renewWhileBusy();
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.#release(id);
    };
    return { release, [Symbol.dispose]: release };
  }

  #release(id: string): void {
    const { granted, observers } = this.#held.get(id)!;
    this.#held.delete(id);
    const hold = Date.now() - granted;
    this.#holdTime = this.#holdTime === undefined
      ? hold
      : this.#holdTime + (hold - this.#holdTime) * HOLD_SMOOTHING;
    if (observers.length > 0) {
      this.#observers.emit("released", {
        hold,
        priority: 3,
        weight: 1,
        dropped: false,
      }, observers);
    }
    this.#track(
      this.#batched(this.#releases, [id]).then((released) => {
        if (released === 0) this.#stats.expired++;
      }),
    );
    this.#whenIdle();
  }

  /** An acquisition's round trip is over. */
  #entered(): void {
    this.#entering--;
    this.#whenIdle();
  }

  /** Lets `close()` go on once nothing is held or entering. */
  #whenIdle(): void {
    if (this.#held.size > 0 || this.#entering > 0) return;
    for (const resolve of this.#idle.splice(0)) resolve();
  }

  #renewWhileBusy(): void {
    if (this.#renewal !== undefined) return;
    if (this.#held.size === 0 && this.#waiters.size === 0) return;
    this.#renewal = setInterval(() => this.#renew(), this.#lease / 3);
  }

  #stopRenewal(): void {
    clearInterval(this.#renewal);
    this.#renewal = undefined;
  }

  /**
   * Extends the leases of this process's permits and waiters, and learns of
   * grants whose notification was lost. A waiter whose place is gone (Redis
   * restarted empty) or that cannot reach Redis rejects with
   * `"unavailable"`, so that no waiter hangs while Redis is away.
   */
  async #renew(): Promise<void> {
    const held = [...this.#held.keys()];
    // A waiter whose acquisition is still on its way has a fresh place.
    const waiting = [...this.#waiters.values()].filter((waiter) =>
      waiter.placed
    ).map((waiter) => waiter.id);
    if (held.length === 0 && this.#waiters.size === 0) {
      this.#stopRenewal();
      return;
    }
    // One at a time: while Redis is slow (a lease under 3 timeouts), ticks
    // would otherwise pile renewals up in the client, each of them sent
    // when Redis answers again. The one under way ends within `timeout`.
    if (this.#renewing) return;
    this.#renewing = true;
    let reply: string[][];
    try {
      reply = lists(
        await this.#script(RENEW, [
          String(held.length),
          ...held,
          ...waiting,
        ]),
        4,
      ) as string[][];
    } catch {
      for (const id of waiting) this.#unavailable(id);
      return;
    } finally {
      this.#renewing = false;
    }
    const [, granted, gone, grants] = reply;
    this.#wokenAll(granted);
    this.#wokenAll(grants);
    for (const id of gone) this.#unavailable(id);
  }

  #unavailable(id: string): void {
    const waiter = this.#waiters.get(id);
    if (waiter === undefined) return;
    this.#letGo(waiter, "unavailable", new RejectedError("unavailable"));
  }

  /**
   * Lets a waiter go that is still waiting: out of the fleet's queue (and
   * whatever Redis granted it meanwhile back), counted, rejected with
   * `error`.
   */
  #letGo(
    waiter: Waiter,
    why: "aborted" | "timedOut" | "unavailable" | "closed",
    error: unknown,
  ): void {
    if (waiter.settled) return;
    this.#settle(waiter);
    this.#cancel(waiter.id);
    if (why === "closed") this.#deny("closed", waiter.started);
    else this.#count(why, waiter.started);
    waiter.reject(error);
  }

  /** The error to throw for a failed round trip. */
  #failed(error: unknown, started: number): unknown {
    if (isReplyError(error) || error instanceof BadReply) return error;
    this.#count("unavailable", started);
    return new RejectedError("unavailable");
  }

  #deny(reason: "full" | "closed", started: number): void {
    this.#stats.rejected++;
    this.#emit("rejected", { reason, wait: Date.now() - started, priority: 3 });
  }

  #count(
    what: "timedOut" | "aborted" | "unavailable",
    started: number,
  ): void {
    this.#stats[what]++;
    if (what === "unavailable") this.#stats.rejected++;
    const reason = what === "timedOut" ? "timeout" : what;
    this.#emit("rejected", { reason, wait: Date.now() - started, priority: 3 });
  }

  #emit(kind: "admitted" | "rejected", event: object): void {
    if (this.#observers.size > 0) this.#observers.emit(kind, event);
  }
}

function batch(script: string, width: number, how: Batch["how"]): Batch {
  return {
    script,
    width,
    how,
    flying: false,
    scheduled: false,
    args: [],
    calls: [],
  };
}

/**
 * `reply` if it is an array of `count` arrays, as every script answers;
 * else a `TypeError` (an adapter that decodes replies otherwise), which
 * the acquisitions of the call reject with, instead of staying unsettled.
 */
function lists(reply: unknown, count: number): unknown[][] {
  if (
    !Array.isArray(reply) || reply.length < count ||
    !reply.slice(0, count).every(Array.isArray)
  ) {
    throw new BadReply(
      `floodgate: Redis answered a script with ${
        show(reply)
      }, not ${count} arrays (does the "redis" adapter return arrays as arrays?)`,
    );
  }
  return reply;
}

/**
 * Error replies of a Redis that is reached but cannot serve now: loading its
 * data after a restart, a replica after a failover, out of memory, a disk
 * error, a script running too long. Like an outage, they are `"unavailable"`
 * whatever the client.
 */
const UNSERVED =
  /^(LOADING|READONLY|MASTERDOWN|OOM|MISCONF|BUSY|CLUSTERDOWN|TRYAGAIN|NOREPLICAS)\b/;

/**
 * A script's answer for one call, 0, 1 or 2, also from an adapter that
 * decodes integers as strings or bigints; `undefined` for anything else,
 * which fails the call (whose caller then gives back whatever Redis did
 * for it) instead of being taken for a refusal.
 */
function answerOf(value: unknown): number | undefined {
  const type = typeof value;
  if (type !== "number" && type !== "bigint" && type !== "string") {
    return undefined;
  }
  return /^[012]$/.test(String(value)) ? Number(value) : undefined;
}

/** An error reply from Redis itself (a bug, or a script error), not an outage. */
function isReplyError(error: unknown): boolean {
  const message = String((error as Error)?.message ?? "");
  if (UNSERVED.test(message)) return false;
  return /^(ERR|WRONGTYPE|NOSCRIPT)\b/.test(message) ||
    (error as Error)?.name === "ReplyError" ||
    (error as Error)?.name === "ErrorReply";
}

function checkAcquireOptions(
  options: RedisAcquireOptions | undefined,
): { signal: AbortSignal | undefined; deadline: number } {
  if (options === undefined) return { signal: undefined, deadline: Infinity };
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `floodgate: acquire() options must be an object, got ${show(options)}`,
    );
  }
  const { signal } = options;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    fail(TypeError, "signal", "an AbortSignal", signal);
  }
  // Checked as the in-process limiter checks them; only the deadline counts.
  return { signal, deadline: askOf(options).deadline ?? Infinity };
}
