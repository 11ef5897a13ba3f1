import { gate } from "./_gate.ts";
import type { Reject, RejectInfo } from "./_reject.ts";
import type { AsyncLimiter } from "./async_limiter.ts";
import type { Limiter, LimiterOptions, LimiterStats } from "./limiter.ts";
import type { Observer } from "./_observe.ts";

export type { Reject, RejectInfo };

/**
 * What a gate does besides limiting, for {@linkcode throttle} and the Hono
 * middleware. `S` is what the callbacks receive first (the `Request`, or
 * Hono's `Context`); `A` are the handler's arguments after the request,
 * which `skip` receives too (Deno's `info`, Bun's `server`, Workers' `env`
 * and `ctx`).
 */
export interface ThrottleBaseOptions<S, A extends unknown[]> {
  /**
   * Returning `true` lets the request bypass the gate (health checks). Must
   * return a boolean, synchronously.
   */
  skip?: (subject: S, ...rest: A) => boolean;
  /**
   * When the slot frees: when the handler returns (`"response"`), or only
   * when the response body has finished streaming, errored or was cancelled
   * (`"body"`). Use `"body"` for streaming routes (SSE, downloads, proxies).
   * Where the server reports delivery (Deno's `info.completed`, Node's
   * response under `@hono/node-server`) the slot waits for that; elsewhere
   * the body is re-wrapped, which costs a stream per response. A HEAD
   * request, a body-less response, a body already used or locked, a 101
   * upgrade and Bun's `undefined` free the slot when the handler returns; an
   * unread body that is garbage collected frees it then.
   *
   * @default {"response"}
   */
  release?: "response" | "body";
  /**
   * Builds the response for a rejected request instead of the default 503.
   * Must return a Response (or a promise of one).
   */
  reject?: Reject<S>;
  /**
   * The default rejection's `Retry-After`: whole seconds, or `"auto"`, the
   * expected time until a newcomer of the request's priority would find
   * capacity (from the measured hold time and what is queued ahead), spread
   * by up to +50% so that rejected clients do not return in step, within
   * 1-60 s (1 before any slot was released). A custom `reject` gets it as
   * `info.retryAfter`.
   *
   * @default {"auto"}
   */
  retryAfter?: number | "auto";
  /**
   * The request's urgency, an integer from 0 (most urgent) to 7, as
   * `Limiter.acquire`'s `priority`; called once per request. A value out of
   * range fails that request with a RangeError. Tip: RFC 9218's `Priority:
   * u=N` header carries exactly this scale.
   *
   * @default {() => 3}
   */
  priority?: (subject: S, ...rest: A) => number;
  /**
   * Who the request is for (a client address, a tenant); requests of one
   * priority take turns by flow, so one busy client cannot crowd out the
   * others. Called once per request; must return a string.
   */
  flow?: (subject: S, ...rest: A) => string;
  /**
   * How many slots the request occupies, an integer >= 1 (an expensive
   * export might weigh 8). Called once per request.
   *
   * @default {() => 1}
   */
  weight?: (subject: S, ...rest: A) => number;
  /**
   * Ms from now after which the client no longer wants the response (from
   * `grpc-timeout`, `x-request-timeout` or Envoy's
   * `x-envoy-expected-rq-timeout-ms`), or `undefined` for none. A request
   * that cannot be served in time is rejected at once with reason
   * `"timeout"` instead of waiting in vain.
   */
  deadline?: (subject: S, ...rest: A) => number | undefined;
}

/** A gate with limiters of its own: one, or one per key. */
export interface OwnLimiterOptions<S, A extends unknown[]>
  extends LimiterOptions {
  /** Only with a shared limiter. */
  limiter?: undefined;
  /**
   * Gives each key (a path, a client, a tenant) an independent limiter with
   * these options. A key with nothing active or queued is forgotten, so
   * memory follows the keys that are busy now. Must return a string,
   * synchronously.
   */
  key?: (subject: S, ...rest: A) => string;
}

/** A gate on a limiter shared with other handlers, which owns the options. */
export interface SharedLimiterOptions {
  /**
   * A limiter to share between several handlers. It cannot be combined with
   * `key` or with any limiter option (`limit`, `queue`, `queueTimeout`,
   * `order`, `dryRun`): those belong to the limiter. An
   * {@linkcode AsyncLimiter} (a fleet-wide `RedisLimiter`) is awaited on
   * every request; its `"unavailable"` rejections are answered like the
   * others (503 by default).
   */
  limiter: Limiter | AsyncLimiter;
  /** Set on the limiter instead. */
  key?: undefined;
  /** Set on the limiter instead. */
  limit?: undefined;
  /** Set on the limiter instead. */
  queue?: undefined;
  /** Set on the limiter instead. */
  queueTimeout?: undefined;
  /** Set on the limiter instead. */
  order?: undefined;
  /** Set on the limiter instead. */
  dryRun?: undefined;
  /** Set on the limiter instead. */
  headroom?: undefined;
  /** Set on the limiter instead. */
  target?: undefined;
  /** Set on the limiter instead. */
  interval?: undefined;
}

/**
 * Options for {@linkcode throttle}: the limiter options (or a shared
 * `limiter`) plus what the gate does. `A` are the handler's arguments after
 * the request; `S` is what the callbacks receive first.
 */
export type ThrottleOptions<A extends unknown[] = unknown[], S = Request> =
  & ThrottleBaseOptions<S, A>
  & (OwnLimiterOptions<S, A> | SharedLimiterOptions);

/**
 * A snapshot of a throttled handler, summed over all its keys; `limit` is
 * each key's.
 */
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
  /**
   * Adds an observer of every request admitted, rejected and released, over
   * every key (events carry `key` when the `key` option is set). Requests
   * that `skip` lets through are not seen. See `Limiter.observe()`.
   *
   * @returns A function that removes the observer.
   */
  observe(observer: Observer): () => void;
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
