import { type Ask, PLAIN } from "./_ask.ts";
import { show } from "./_options.ts";
import { type Observer, observeSlots } from "./_observe.ts";
import { asyncGate } from "./_gate_async.ts";
import { call, checkGateOptions } from "./_gate_options.ts";
import { checkCallbackResult, CLIENT_CLOSED } from "./_gate_shared.ts";
import { deliveredBy, releaseAfterBody } from "./_release_body.ts";
import type { RejectInfo } from "./_reject.ts";
import {
  type Hold,
  type Outcome,
  type Slots,
  UNTIMED,
  waiterOf,
} from "./_slots.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";
import type { ThrottledHandler, ThrottleStats } from "./throttle.ts";

/** How a framework adapter (Hono) differs from a bare fetch handler. */
export interface Adapter<S, A> {
  /** What `key`, `skip` and `reject` receive (instead of the request). */
  subject(request: Request, rest: A): S;
  /** How a handler that returned normally ended (Hono: `onError` ran). */
  outcome(rest: A): Outcome;
  /** What {@linkcode deliveredBy} should look at. */
  server(rest: A): unknown;
  /** The arguments `key` and `skip` receive after the subject. */
  callbackArguments(rest: A): A;
}

/** The fetch wrapper itself: callbacks get the request and the arguments. */
const bare: Adapter<never, never> = {
  subject: (request) => request as never,
  outcome: () => "done",
  server: (rest) => (rest as unknown[])[0],
  callbackArguments: (rest) => rest,
};

function checkHandler(handler: unknown): void {
  if (typeof handler === "function") return;
  if (
    typeof (handler as { fetch?: unknown } | null)?.fetch === "function"
  ) {
    throw new TypeError(
      'floodgate: throttle() takes a fetch handler function, got an object with a fetch method (a Hono app?); pass app.fetch, or use app.use(throttle()) from "floodgate/hono"',
    );
  }
  throw new TypeError(
    `floodgate: the handler must be a function, got ${show(handler)}`,
  );
}

/**
 * The promise of a handler's result, or `undefined` when the result is final
 * already. A thenable other than a native promise is adopted once, and the
 * adopting promise is what the server gets: a thenable that calls back twice
 * then releases once, and a lazy one does its work once.
 */
function pending<R>(result: R | Promise<R>): Promise<R> | undefined {
  if (result instanceof Promise) return result;
  if (result instanceof Response || result === undefined) return undefined;
  const then = (result as { then?: unknown } | null)?.then;
  return typeof then === "function" ? Promise.resolve(result) : undefined;
}

/**
 * The engine behind `throttle()` and the Hono middleware: wraps `handler` in
 * the gate that `options` describe. The adapter says what the callbacks
 * receive and when a handler that returned counts as failed.
 */
export function gate<
  A extends unknown[],
  R extends Response | undefined,
  S = Request,
>(
  handler: (request: Request, ...rest: A) => R | Promise<R>,
  options: unknown,
  adapter: Adapter<S, A> = bare as unknown as Adapter<S, A>,
): ThrottledHandler<A, R> {
  checkHandler(handler);
  const config = checkGateOptions<S, A>(options);
  if (config.remote !== undefined) return asyncGate(handler, config, adapter);
  const {
    shared,
    keyed,
    keyOf,
    skip,
    askOf,
    byBody,
    reject,
    retryAfter,
    overloaded,
  } = config;

  function turnAway(
    subject: S,
    ask: Ask,
    why: { reason: RejectReason; slots: Slots | undefined; key?: string },
  ): Response | Promise<Response> {
    const seconds = retryAfter !== "auto"
      ? retryAfter
      : why.slots?.retryAfter(ask.priority) ?? 1;
    // The default answer needs nothing else of the rejection.
    if (reject === undefined) return overloaded(seconds);
    const info: RejectInfo = {
      reason: why.reason,
      limit: why.slots?.limit ?? stats().limit,
      active: why.slots?.active ?? 0,
      queued: why.slots?.queued ?? 0,
      retryAfter: seconds,
    };
    if (why.key !== undefined) info.key = why.key;
    return reject(subject, info);
  }

  /** Gives a slot back, and forgets an idle key. */
  function release(
    slots: Slots,
    hold: Hold,
    outcome: Outcome,
    key: string | undefined,
  ): void {
    slots.release(hold, outcome);
    if (key !== undefined) keyed!.retireIfIdle(key, slots);
  }

  const releaseShared = () => shared!.release(UNTIMED, "done");

  /** Calls the handler in a slot already held and arranges its release. */
  function admitted(
    slots: Slots,
    hold: Hold,
    key: string | undefined,
    request: Request,
    rest: A,
  ): R | Promise<R> {
    let result: R | Promise<R>;
    try {
      result = handler(request, ...rest);
    } catch (error) {
      release(slots, hold, "dropped", key);
      throw error;
    }
    let promise: Promise<R> | undefined;
    try {
      promise = pending(result);
    } catch (error) {
      // A result whose `then` getter throws, or a revoked proxy.
      release(slots, hold, "dropped", key);
      throw error;
    }
    if (!byBody && hold === UNTIMED && key === undefined) {
      // The common case: no closure, no promise beyond the handler's own.
      if (promise === undefined) releaseShared();
      else promise.then(releaseShared, releaseShared);
      return promise ?? result;
    }
    if (!byBody) {
      if (promise === undefined) {
        release(slots, hold, adapter.outcome(rest), key);
        return result;
      }
      promise.then(
        () => release(slots, hold, adapter.outcome(rest), key),
        () => release(slots, hold, "dropped", key),
      );
      return promise;
    }
    const when = {
      method: request.method,
      delivered: deliveredBy(adapter.server(rest)),
    };
    const releaseWhenSent = (response: R) => {
      // Decided now, so that what releases the slot later holds no `rest`.
      const outcome = adapter.outcome(rest);
      return releaseAfterBody(
        response,
        when,
        () => release(slots, hold, outcome, key),
      );
    };
    if (promise === undefined) return releaseWhenSent(result as R);
    return promise.then(releaseWhenSent, (error) => {
      release(slots, hold, "dropped", key);
      throw error;
    });
  }

  /** The slow path: wait for a slot or be turned away. */
  function waitOrReject(
    slots: Slots,
    key: string | undefined,
    subject: S,
    ask: Ask,
    request: Request,
    rest: A,
  ): R | Response | Promise<R | Response> {
    // A client that left already fails in enqueue (counted as aborted): it
    // must not make room first by evicting or letting a waiter go. Only
    // waiters can make room (and reading the signal makes Deno warn).
    const reason = slots.queued !== 0 && request.signal.aborted
      ? undefined
      : slots.refuse(ask);
    if (reason !== undefined) {
      return turnAway(subject, ask, { reason, slots, key });
    }
    const offered = new Promise<Hold>((resolve, reject) =>
      slots.enqueue(waiterOf(resolve, reject), request.signal, ask)
    );
    return offered.then(
      (granted) => {
        const hold = slots.claim(granted);
        if (hold !== undefined) {
          return admitted(slots, hold, key, request, rest);
        }
        // Withdrawn before it was claimed: start over.
        return enter(slots, key, subject, ask, request, rest);
      },
      (error) => {
        if (key !== undefined) keyed!.retireIfIdle(key, slots);
        if (error instanceof RejectedError) {
          return turnAway(subject, ask, { reason: error.reason, slots, key });
        }
        return new Response(null, CLIENT_CLOSED);
      },
    );
  }

  /** Takes a free slot of `slots`, or waits for one, or is turned away. */
  function enter(
    slots: Slots,
    key: string | undefined,
    subject: S,
    ask: Ask,
    request: Request,
    rest: A,
  ): R | Response | Promise<R | Response> {
    const hold = slots.acquireNow(ask);
    if (hold !== undefined) return admitted(slots, hold, key, request, rest);
    return waitOrReject(slots, key, subject, ask, request, rest);
  }

  function throttled(
    request: Request,
    ...rest: A
  ): R | Response | Promise<R | Response> {
    if (shared !== undefined && skip === undefined && askOf === undefined) {
      return enter(
        shared,
        undefined,
        adapter.subject(request, rest),
        PLAIN,
        request,
        rest,
      );
    }
    const subject = adapter.subject(request, rest);
    const extra = adapter.callbackArguments(rest);
    if (skip !== undefined) {
      const skipped = call(skip, subject, extra);
      checkCallbackResult("skip", skipped);
      if (skipped) return handler(request, ...rest);
    }
    const ask = askOf === undefined ? PLAIN : askOf(subject, extra);
    if (shared !== undefined) {
      return enter(shared, undefined, subject, ask, request, rest);
    }
    const key = call(keyOf!, subject, extra) as string;
    checkCallbackResult("key", key);
    const slots = keyed!.slotsFor(key);
    if (slots === undefined) {
      keyed!.countClosed(key, ask.priority);
      return turnAway(subject, ask, { reason: "closed", slots, key });
    }
    return enter(slots, key, subject, ask, request, rest);
  }

  function stats(): ThrottleStats {
    if (keyed !== undefined) return keyed.stats();
    return { ...shared!.stats(), keys: 0 };
  }

  function close(): Promise<void> {
    return keyed !== undefined ? keyed.close() : shared!.close();
  }

  function observe(observer: Observer): () => void {
    return keyed !== undefined
      ? keyed.observe(observer)
      : observeSlots(shared!, observer);
  }

  return Object.assign(throttled, { stats, close, observe });
}
