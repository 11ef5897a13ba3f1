/**
 * One concurrency limit for a whole fleet, held in Redis: at most `limit`
 * permits across every process that uses the same `name`, waiters served in
 * arrival order and woken by pub/sub, permits leased so that a dead process
 * cannot keep them. Works with node-redis, ioredis and Bun's `RedisClient`;
 * depends on none of them.
 *
 * @example Behind a local limit, so that one instance cannot take the fleet's share
 * ```ts ignore
 * import { Redis } from "ioredis";
 * import { Limiter, throttle } from "@floodgate/floodgate";
 * import { RedisLimiter } from "@floodgate/floodgate/redis";
 *
 * const fleet = new RedisLimiter({ redis: new Redis(), name: "api", limit: 50, queue: 200 });
 * const handler = (_request: Request) => fleet.run(() => new Response("hello"));
 * export default { fetch: throttle(handler, { limit: 10, queue: 20 }) };
 * ```
 *
 * @module
 */
export {
  type RedisAcquireOptions,
  type RedisAdapter,
  RedisLimiter,
  type RedisLimiterObserver,
  type RedisLimiterOptions,
  type RedisLimiterStats,
} from "./src/redis.ts";
