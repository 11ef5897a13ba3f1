import {
  checkChoice,
  checkFunction,
  checkInteger,
  checkOptionsObject,
  show,
} from "./_options.ts";
import { releaseWithBody } from "./_body.ts";
import { defaultRejection } from "./_reject.ts";
import {
  deny,
  enter,
  isAdaptive,
  leave,
  leaveSampled,
  Limiter,
  LIMITER_OPTIONS,
  type LimiterOptions,
  type LimiterStats,
} from "./limiter.ts";
import { RejectedError, type RejectReason } from "./rejected_error.ts";

/** What a `reject` callback learns about a rejected request. */
export interface RejectInfo {
  /** Why the request was rejected. */
  reason: RejectReason;
  /** The limit of the limiter that rejected it. */
  limit: number;
  /** Requests running on that limiter. */
  active: number;
  /** Requests waiting on that limiter. */
  queued: number;
  /** The request's key, when the `key` option is set. */
  key?: string;
}

/**
 * Options shared by {@linkcode throttle} and the Hono middleware. `S` is what
 * the callbacks receive first (the `Request`, or Hono's `Context`); `A` are
 * the handler's arguments after the request, which `key` and `skip` receive
 * too (Deno's `info`, Bun's `server`, Workers' `env` and `ctx`).
 */
export interface GateOptions<S, A extends unknown[] = []>
  extends LimiterOptions {
  /**
   * A limiter to share between several handlers. It cannot be combined with
   * `key` or with any limiter option (`limit`, `queue`, `queueTimeout`,
   * `order`, `dryRun`): those belong to the limiter.
   */
  limiter?: Limiter;
  /**
   * Gives each key (a path, a client, a tenant) an independent limiter with
   * these options. A key with nothing active or queued is forgotten, so
   * memory follows the keys that are busy now. Must return a string.
   */
  key?: (subject: S, ...rest: A) => string;
  /**
   * Returning `true` lets the request bypass the gate (health checks). Must
   * return a boolean.
   */
  skip?: (subject: S, ...rest: A) => boolean;
  /**
   * When the slot frees: when the handler returns (`"response"`), or only
   * when the response body has finished streaming, errored or was cancelled
   * (`"body"`). Use `"body"` for streaming routes (SSE, downloads, proxies).
   * Where the server reports delivery (Deno's `info.completed`, Node's
   * response under `@hono/node-server`) the slot waits for that; elsewhere
   * the body is re-wrapped, which costs a stream per response. A HEAD
   * request, a body-less response, a 101 upgrade and Bun's `undefined` free
   * the slot when the handler returns; an unread body that is garbage
   * collected frees it then.
   *
   * @default {"response"}
   */
  release?: "response" | "body";
  /**
   * Builds the response for a rejected request instead of the default 503.
   * Must return a Response (or a promise of one).
   */
  reject?: (subject: S, info: RejectInfo) => Response | Promise<Response>;
  /**
   * The default rejection's `Retry-After`, in whole seconds.
   *
   * @default {1}
   */
  retryAfter?: number;
}

/**
 * Options for {@linkcode throttle}: the limiter options plus these. `A` are
 * the handler's arguments after the request.
 */
export type ThrottleOptions<A extends unknown[] = unknown[]> = GateOptions<
  Request,
  A
>;

/** A snapshot of a throttled handler, summed over all its keys. */
export interface ThrottleStats extends LimiterStats {
  /** Keys with something active or queued now; always `0` without `key`. */
  keys: number;
}

/** The controls every throttled handler and middleware has. */
export interface ThrottleControls {
  /**
   * The limiters' figures summed over all live keys, plus the counters of
   * keys already forgotten.
   */
  stats(): ThrottleStats;
  /**
   * Closes every limiter: later requests are rejected with reason
   * `"closed"`. Resolves when no request holds a slot.
   */
  close(): Promise<void>;
}

/**
 * A fetch handler wrapped by {@linkcode throttle}: the same call signature,
 * plus `stats()` and `close()`.
 */
export type ThrottledHandler<
  A extends unknown[] = unknown[],
  R extends Response | undefined = Response,
> =
  & ((request: Request, ...rest: A) => R | Response | Promise<R | Response>)
  & ThrottleControls;

const GATE_OPTIONS: ReadonlySet<string> = new Set([
  ...LIMITER_OPTIONS,
  "limiter",
  "key",
  "skip",
  "release",
  "reject",
  "retryAfter",
]);

const COUNTERS = ["admitted", "rejected", "timedOut", "aborted"] as const;

// A waiting client that disconnected gets this answer, which nobody reads
// (nginx logs the same situation as 499).
const CLIENT_CLOSED: ResponseInit = {
  status: 499,
  statusText: "Client Closed Request",
};

function isThenable<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | undefined)?.then === "function";
}

/** How a framework adapter (Hono) differs from a bare fetch handler. */
export interface Adapter<S, A> {
  /** What `key`, `skip` and `reject` receive (instead of the request). */
  subject(request: Request, rest: A): S;
  /** Whether the handler failed even though it returned normally. */
  dropped(rest: A): boolean;
  /** What {@linkcode deliveredBy} should look at. */
  server(rest: A): unknown;
}

/**
 * The server's own word that a response was delivered (or failed), where it
 * gives one with the argument after the request: Deno's `info.completed`,
 * and the "close" event of Node's response in `@hono/node-server`'s
 * `{ incoming, outgoing }`. With it, a slot waits for delivery instead of for
 * a re-wrapped body, which costs a stream per response.
 */
function deliveredBy(server: unknown): PromiseLike<unknown> | undefined {
  const { completed, outgoing } = (server ?? {}) as {
    completed?: unknown;
    outgoing?: { once?: unknown };
  };
  if (isThenable(completed)) return completed;
  const once = outgoing?.once;
  if (typeof once !== "function") return undefined;
  return new Promise((resolve) => once.call(outgoing, "close", resolve));
}

/**
 * The engine behind {@linkcode throttle} and the Hono middleware: wraps
 * `handler` in the gate that `options` describe. Without `adapter`, the
 * callbacks get the request and the handler's other arguments, and only a
 * handler that throws or rejects counts as dropped.
 */
export function gate<
  A extends unknown[],
  R extends Response | undefined,
  S = Request,
>(
  handler: (request: Request, ...rest: A) => R | Promise<R>,
  options: GateOptions<S, A> | undefined,
  adapter?: Adapter<S, A>,
): ThrottledHandler<A, R> {
  if (typeof handler !== "function") {
    throw new TypeError(
      `floodgate: the handler must be a function, got ${show(handler)}`,
    );
  }
  const o = checkOptionsObject(options, GATE_OPTIONS);
  const key = checkFunction<(subject: S, ...rest: A) => string>("key", o.key);
  const skip = checkFunction<(subject: S, ...rest: A) => boolean>(
    "skip",
    o.skip,
  );
  const reject = checkFunction<GateOptions<S>["reject"]>("reject", o.reject);
  const byBody = checkChoice("release", o.release, ["response", "body"]) ===
    "body";
  const retryAfter = checkInteger("retryAfter", o.retryAfter, 1, 0, false);
  const rejection = defaultRejection(retryAfter);

  let shared: Limiter | undefined;
  const limiterOptions: Record<string, unknown> = {};
  for (const name of LIMITER_OPTIONS) {
    if (o[name] !== undefined) limiterOptions[name] = o[name];
  }
  if (o.limiter !== undefined) {
    if (!(o.limiter instanceof Limiter)) {
      throw new TypeError(
        `floodgate: option "limiter" must be a Limiter, got ${show(o.limiter)}`,
      );
    }
    const conflict = Object.keys(limiterOptions)[0] ??
      (key !== undefined ? "key" : undefined);
    if (conflict !== undefined) {
      throw new TypeError(
        `floodgate: option "limiter" cannot be combined with "${conflict}"; set it on the Limiter`,
      );
    }
    shared = o.limiter;
  } else {
    // Built once even with `key`, so that bad options fail here.
    shared = new Limiter(limiterOptions as LimiterOptions);
  }

  const live = new Map<string, Limiter>();
  const retired = { admitted: 0, rejected: 0, timedOut: 0, aborted: 0 };
  let closed = false;

  /** The limiter for `k`, made on first use; `undefined` once closed. */
  function limiterFor(k: string): Limiter | undefined {
    let limiter = live.get(k);
    if (limiter === undefined && !closed) {
      limiter = new Limiter(limiterOptions as LimiterOptions);
      live.set(k, limiter);
    }
    return limiter;
  }

  /** Forgets an idle keyed limiter, keeping its counters. */
  function forget(k: string, limiter: Limiter): void {
    if (limiter.active !== 0 || limiter.queued !== 0) return;
    live.delete(k);
    const stats = limiter.stats();
    for (const name of COUNTERS) retired[name] += stats[name];
  }

  function free(
    limiter: Limiter,
    k: string | undefined,
    granted: number,
    inflight: number,
    dropped: boolean,
  ): void {
    leaveSampled(limiter, granted, inflight, dropped);
    if (k !== undefined) forget(k, limiter);
  }

  function rejectWith(
    subject: S,
    reason: RejectReason,
    limiter: Limiter | undefined,
    k: string | undefined,
  ): Response | Promise<Response> {
    if (reject === undefined) return rejection();
    const info: RejectInfo = {
      reason,
      limit: limiter?.limit ?? shared!.limit,
      active: limiter?.active ?? 0,
      queued: limiter?.queued ?? 0,
    };
    if (k !== undefined) info.key = k;
    const response = reject(subject, info);
    return isThenable<Response>(response)
      ? Promise.resolve(response).then(checkRejection)
      : checkRejection(response);
  }

  /** Frees the slot when the body is done, or at once when there is none. */
  function holdBody(
    response: R,
    method: string,
    delivered: PromiseLike<unknown> | undefined,
    freeSlot: () => void,
  ): R {
    if (
      !(response instanceof Response) || response.status === 101 ||
      method === "HEAD"
    ) {
      freeSlot();
      return response;
    }
    // Checked after `delivered`: on Node, reading `body` alone makes
    // @hono/node-server build the full Response it otherwise avoids.
    if (delivered !== undefined) delivered.then(freeSlot, freeSlot);
    else if (response.body === null) freeSlot();
    else return releaseWithBody(response, freeSlot) as R;
    return response;
  }

  /** Calls the handler in a slot already taken and arranges its release. */
  function admitted(
    limiter: Limiter,
    k: string | undefined,
    request: Request,
    rest: A,
  ): R | Promise<R> {
    // An adaptive limit learns from the time to release and the load.
    const adaptive = isAdaptive(limiter);
    const inflight = adaptive ? limiter.active : 0;
    const granted = adaptive ? performance.now() : 0;
    let result: R | Promise<R>;
    try {
      result = handler(request, ...rest);
    } catch (error) {
      free(limiter, k, granted, inflight, true);
      throw error;
    }
    if (!byBody && !adaptive && k === undefined) {
      // The common case: no closure, no promise beyond the handler's own.
      if (isThenable<R>(result)) result.then(freeShared, freeShared);
      else freeShared();
      return result;
    }
    const freeSlot = (dropped: boolean) =>
      free(limiter, k, granted, inflight, dropped);
    if (byBody) {
      const method = request.method;
      const delivered = deliveredBy(
        adapter === undefined ? rest[0] : adapter.server(rest),
      );
      const hold = (response: R) => {
        // Decided now, so that what frees the slot later holds no `rest`.
        const dropped = adapter?.dropped(rest) ?? false;
        return holdBody(response, method, delivered, () => freeSlot(dropped));
      };
      if (!isThenable<R>(result)) return hold(result);
      return Promise.resolve(result).then(hold, (error) => {
        freeSlot(true);
        throw error;
      });
    }
    const done = () => freeSlot(adapter?.dropped(rest) ?? false);
    if (isThenable<R>(result)) result.then(done, () => freeSlot(true));
    else done();
    return result;
  }
  const freeShared = () => leave(shared!);

  /** The slow path: wait for a slot or be turned away. */
  function waitOrReject(
    limiter: Limiter,
    k: string | undefined,
    subject: S,
    request: Request,
    rest: A,
  ): R | Response | Promise<R | Response> {
    const reason = deny(limiter);
    if (reason !== undefined) return rejectWith(subject, reason, limiter, k);
    return limiter.acquire({ signal: request.signal }).then(
      // The permit's slot is given back through free(), like the fast path's.
      () => admitted(limiter, k, request, rest),
      (error) => {
        if (k !== undefined) forget(k, limiter);
        if (error instanceof RejectedError) {
          return rejectWith(subject, error.reason, limiter, k);
        }
        return new Response(null, CLIENT_CLOSED);
      },
    );
  }

  function throttled(
    request: Request,
    ...rest: A
  ): R | Response | Promise<R | Response> {
    if (key === undefined && skip === undefined) {
      if (enter(shared!)) return admitted(shared!, undefined, request, rest);
      return waitOrReject(shared!, undefined, request as S, request, rest);
    }
    // The fetch wrapper's callbacks get the handler's arguments; the Hono
    // middleware's get the Context alone.
    const subject = adapter === undefined
      ? request as S
      : adapter.subject(request, rest);
    const extra = adapter === undefined ? rest : [] as unknown[] as A;
    if (skip !== undefined) {
      const skipped = skip(subject, ...extra);
      if (typeof skipped !== "boolean") {
        throw new TypeError(
          `floodgate: option "skip" must return a boolean, got ${
            show(skipped)
          }`,
        );
      }
      if (skipped) return handler(request, ...rest);
    }
    if (key === undefined) {
      if (enter(shared!)) return admitted(shared!, undefined, request, rest);
      return waitOrReject(shared!, undefined, subject, request, rest);
    }
    const k = key(subject, ...extra);
    if (typeof k !== "string") {
      throw new TypeError(
        `floodgate: option "key" must return a string, got ${show(k)}`,
      );
    }
    const limiter = limiterFor(k);
    if (limiter === undefined) {
      retired.rejected++;
      return rejectWith(subject, "closed", undefined, k);
    }
    if (enter(limiter)) return admitted(limiter, k, request, rest);
    return waitOrReject(limiter, k, subject, request, rest);
  }

  function stats(): ThrottleStats {
    if (key === undefined) return { ...shared!.stats(), keys: 0 };
    const sum: ThrottleStats = {
      // Every key has the same limit (with an algorithm, one shared estimate).
      limit: (live.values().next().value ?? shared!).limit,
      active: 0,
      queued: 0,
      ...retired,
      keys: live.size,
    };
    for (const limiter of live.values()) {
      const s = limiter.stats();
      sum.active += s.active;
      sum.queued += s.queued;
      for (const name of COUNTERS) sum[name] += s[name];
    }
    return sum;
  }

  async function close(): Promise<void> {
    closed = true;
    if (key === undefined) return shared!.close();
    await Promise.all([...live.values()].map((limiter) => limiter.close()));
  }

  return Object.assign(throttled, { stats, close });
}

function checkRejection(response: unknown): Response {
  if (!(response instanceof Response)) {
    throw new TypeError(
      `floodgate: option "reject" must return a Response, got ${
        show(response)
      }`,
    );
  }
  return response;
}

/**
 * Wraps a fetch handler so that at most `limit` calls run at once, at most
 * `queue` wait for a slot, and every other request gets a fast 503 with
 * `Retry-After`. Arguments after the request (Deno's `info`, Bun's `server`,
 * Workers' `env` and `ctx`) pass through untouched.
 *
 * When a slot is free, the handler is called synchronously and its result
 * returned as is: no promise is added and neither the body nor
 * `request.signal` is touched. A request that waits leaves the queue when
 * its client disconnects (`request.signal` aborts), and its handler is never
 * called. A handler that throws frees its slot; the error propagates.
 *
 * @example Deno, Bun and Cloudflare Workers
 * ```ts
 * import { throttle } from "@floodgate/floodgate";
 *
 * const handler = (_request: Request) => new Response("hello");
 * export default { fetch: throttle(handler, { limit: 100, queue: 50 }) };
 * ```
 *
 * @example One limit per path
 * ```ts
 * import { throttle } from "@floodgate/floodgate";
 *
 * const fetch = throttle((_request: Request) => new Response("hello"), {
 *   limit: 10,
 *   key: (request) => new URL(request.url).pathname,
 * });
 * const response = await fetch(new Request("http://localhost/a"));
 * console.log(response.status, fetch.stats().keys); // 200 0
 * ```
 *
 * @param handler The fetch handler to protect.
 * @param options The limit, the queue and how requests are turned away.
 * @returns The throttled handler, with `stats()` and `close()`.
 * @throws {TypeError} If the handler is not a function, or an option has the
 * wrong type, is unknown, or `limiter` is combined with `key` or a limiter
 * option.
 * @throws {RangeError} If a number is out of range.
 */
export function throttle<
  A extends unknown[],
  R extends Response | undefined = Response,
>(
  handler: (request: Request, ...rest: A) => R | Promise<R>,
  options?: ThrottleOptions<A>,
): ThrottledHandler<A, R> {
  return gate(handler, options);
}
