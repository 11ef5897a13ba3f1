import { show } from "./_options.ts";
import type { Hold, Outcome, Slots } from "./_slots.ts";
import type { RejectReason } from "./rejected_error.ts";

/** A permit granted: how long it waited, for what. */
export interface AdmittedEvent {
  /**
   * Ms spent in the queue; 0 when granted at once. A waiter that queued
   * before anyone observed is timed from when observing began.
   */
  wait: number;
  /** 0 (most urgent) to 7; 3 where none was given. */
  priority: number;
  /** The capacity it holds (its weight, at most its priority's ceiling). */
  weight: number;
  /** The gate's key, when the `key` option is set. */
  key?: string;
}

/** An acquisition denied. */
export interface RejectedEvent {
  /** Why: a {@linkcode RejectReason}, or `"aborted"` (the caller's signal). */
  reason: RejectReason | "aborted";
  /**
   * Ms spent in the queue before the denial; 0 for an immediate one. A
   * waiter that queued before anyone observed is timed from when observing
   * began.
   */
  wait: number;
  /** 0 (most urgent) to 7; 3 where none was given. */
  priority: number;
  /** The gate's key, when the `key` option is set. */
  key?: string;
}

/** A permit given back. */
export interface ReleasedEvent {
  /** Ms from grant to release. */
  hold: number;
  /** 0 (most urgent) to 7; 3 where none was given. */
  priority: number;
  /** The capacity it held. */
  weight: number;
  /** Whether the work failed (a handler that threw, a job that rejected). */
  dropped: boolean;
  /** The gate's key, when the `key` option is set. */
  key?: string;
}

/**
 * Receives a limiter's events, synchronously, as they happen. Every method
 * is optional; one that throws is reported once and never breaks the gate.
 */
export interface Observer {
  /** A permit was granted. */
  admitted?(event: AdmittedEvent): void;
  /** An acquisition was denied (`tryAcquire()` returning `undefined` included). */
  rejected?(event: RejectedEvent): void;
  /** A permit was given back. */
  released?(event: ReleasedEvent): void;
}

/** What `observe()` is found on: a limiter, a throttled handler, a middleware. */
export interface Observable {
  /**
   * Adds an observer of every permit granted, denied and given back.
   *
   * @returns A function that removes the observer.
   */
  observe(observer: Observer): () => void;
}

/**
 * The clock, looked up once: on Node 20 the global `performance` is a getter
 * called on every read.
 */
export const clock: { now(): number } = performance;

type EventName = "admitted" | "rejected" | "released";

/**
 * Reports a user's code that threw, on the console. Every runtime has one,
 * but not every program's types declare one (a Bun or Workers program
 * without the DOM library). An error the console cannot print (a throwing
 * `stack` getter, a revoked proxy) is not reported: the gate goes on.
 */
export function logError(message: string, error: unknown): void {
  try {
    (globalThis as { console?: { error(...data: unknown[]): void } })
      .console?.error(message, error);
  } catch {
    // Nothing more can be said about it.
  }
}

/** The observers whose throw was reported already. */
const failedObservers = new WeakSet<Observer>();

function checkObserver(observer: unknown): Observer {
  if (typeof observer !== "object" || observer === null) {
    throw new TypeError(
      `floodgate: observe() takes an object with admitted, rejected or released methods, got ${
        show(observer)
      }`,
    );
  }
  for (const name of ["admitted", "rejected", "released"] as const) {
    const method = (observer as Record<string, unknown>)[name];
    if (method !== undefined && typeof method !== "function") {
      throw new TypeError(
        `floodgate: observer "${name}" must be a function, got ${show(method)}`,
      );
    }
  }
  return observer as Observer;
}

/**
 * The observers of one limiter or gate. The list is replaced, never changed
 * in place, so an observer that removes itself (or adds one) while an event
 * is dispatched changes nothing for that event.
 */
export class Observers {
  #list: readonly Observer[] = [];
  readonly #watch: (observed: boolean) => void;

  /** `watch` learns when the first observer comes and the last one goes. */
  constructor(watch: (observed: boolean) => void) {
    this.#watch = watch;
  }

  get size(): number {
    return this.#list.length;
  }

  /**
   * The observers now. A permit's `released` goes to those its `admitted`
   * went to, so that an observer added meanwhile never gets one without the
   * other.
   */
  get current(): readonly Observer[] {
    return this.#list;
  }

  add(observer: unknown): () => void {
    const added = checkObserver(observer);
    this.#list = [...this.#list, added];
    if (this.#list.length === 1) this.#watch(true);
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const index = this.#list.indexOf(added);
      this.#list = this.#list.filter((_, i) => i !== index);
      if (this.#list.length === 0) this.#watch(false);
    };
  }

  /**
   * Calls `name` of every observer with `event`, or of those in `to` that
   * still observe. One that throws (its method, or a getter or proxy that
   * reads it) is reported once and the others still get the event.
   */
  emit(name: EventName, event: object, to = this.#list): void {
    const list = this.#list;
    for (const observer of to) {
      if (to !== list && !list.includes(observer)) continue; // removed since
      try {
        // One named read per event: `observer[name]` would be a keyed read
        // that sees three names, which V8 makes megamorphic (a global cache
        // lookup on every event, missed often under a server's other work).
        const method = (name === "admitted"
          ? observer.admitted
          : name === "released"
          ? observer.released
          : observer.rejected) as ((event: object) => void) | undefined;
        if (method !== undefined) {
          method.call(observer, event);
        }
      } catch (error) {
        if (failedObservers.has(observer)) continue;
        failedObservers.add(observer);
        logError(
          `floodgate: an observer's ${name}() threw; the gate goes on`,
          error,
        );
      }
    }
  }
}

/**
 * A hold granted while observed: the limiter's own hold, plus what its
 * `released` event needs. It copies the fields of the hold it wraps, so the
 * limiter reads it as its own.
 */
interface ObservedHold extends Hold {
  readonly inner: Hold;
  readonly priority: number;
  readonly since: number;
  readonly reporter: Reporter;
  /** The observers its `admitted` went to. */
  readonly observers: readonly Observer[];
}

/**
 * What one set of slots reports to while observed: its gate's observers,
 * with its key. Slots hold one only while someone observes, so that
 * nothing is allocated for events nobody receives.
 */
export class Reporter {
  readonly #observers: Observers;
  readonly #key: string | undefined;

  constructor(observers: Observers, key: string | undefined) {
    this.#observers = observers;
    this.#key = key;
  }

  /** Emits `admitted`; returns the hold to give the caller. */
  admitted(hold: Hold, wait: number, priority: number): Hold {
    const event: AdmittedEvent = { wait, priority, weight: hold.weight };
    if (this.#key !== undefined) event.key = this.#key;
    const observers = this.#observers.current;
    this.#observers.emit("admitted", event, observers);
    const observed: ObservedHold = {
      weight: hold.weight,
      granted: hold.granted,
      inflight: hold.inflight,
      inner: hold,
      priority,
      // A hold the limiter times itself was granted just now: no second read
      // of the clock.
      since: hold.granted !== 0 ? hold.granted : clock.now(),
      reporter: this,
      observers,
    };
    return observed;
  }

  rejected(
    reason: RejectReason | "aborted",
    wait: number,
    priority: number,
  ): void {
    const event: RejectedEvent = { reason, wait, priority };
    if (this.#key !== undefined) event.key = this.#key;
    this.#observers.emit("rejected", event);
  }

  /** Emits `released` for an observed hold; returns the limiter's own. */
  static released(hold: Hold, outcome: Outcome): Hold {
    const observed = hold as Partial<ObservedHold>;
    const reporter = observed.reporter;
    if (reporter === undefined) return hold;
    const event: ReleasedEvent = {
      hold: clock.now() - observed.since!,
      priority: observed.priority!,
      weight: hold.weight,
      dropped: outcome === "dropped",
    };
    if (reporter.#key !== undefined) event.key = reporter.#key;
    reporter.#observers.emit("released", event, observed.observers);
    return observed.inner!;
  }
}

const observersOfSlots = new WeakMap<Slots, Observers>();

/**
 * Adds an observer of one set of slots (a `Limiter`'s, or an unkeyed
 * gate's); the slots report while anyone observes.
 */
export function observeSlots(slots: Slots, observer: unknown): () => void {
  let observers = observersOfSlots.get(slots);
  if (observers === undefined) {
    const made: Observers = new Observers((observed) =>
      slots.reportTo(observed ? new Reporter(made, undefined) : undefined)
    );
    observersOfSlots.set(slots, observers = made);
  }
  return observers.add(observer);
}
