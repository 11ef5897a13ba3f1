import type { AcquireOptions, LimiterStats, Permit } from "./limiter.ts";
import type { Observer } from "./_observe.ts";

/**
 * A limiter whose permits take a round trip to grant, such as the fleet-wide
 * `RedisLimiter` of `@floodgate/floodgate/redis`. `throttle` and the Hono
 * middleware accept one as their `limiter` and await each acquisition; the
 * in-process {@linkcode Limiter} keeps its synchronous fast path.
 *
 * @example Any object of this shape can gate a handler
 * ```ts
 * import { type AsyncLimiter, Limiter, throttle } from "@floodgate/floodgate";
 *
 * const local = new Limiter({ limit: 2 });
 * const remote: AsyncLimiter = {
 *   acquire: (options) => local.acquire(options),
 *   stats: () => local.stats(),
 *   close: () => local.close(),
 * };
 * const fetch = throttle(() => new Response("hi"), { limiter: remote });
 * console.log((await fetch(new Request("http://localhost/"))).status); // 200
 * ```
 */
export interface AsyncLimiter {
  /** Resolves with a permit, or rejects with a `RejectedError`. */
  acquire(options?: AcquireOptions): Promise<Permit>;
  /** A snapshot of this process's view of the limiter. */
  stats(): LimiterStats;
  /** Stops admitting; resolves when this process holds no permit. */
  close(): Promise<void>;
  /** Adds an observer of its events; returns the function that removes it. */
  observe?(observer: Observer): () => void;
  /**
   * The seconds `retryAfter: "auto"` sends to a caller of `priority` turned
   * away now; without this method, 1.
   */
  retryAfter?(priority: number): number;
}

/** Whether `value` has the shape of an {@linkcode AsyncLimiter}. */
export function isAsyncLimiter(value: unknown): value is AsyncLimiter {
  const limiter = value as Partial<AsyncLimiter> | null;
  return typeof limiter === "object" && limiter !== null &&
    typeof limiter.acquire === "function" &&
    typeof limiter.stats === "function" &&
    typeof limiter.close === "function";
}
