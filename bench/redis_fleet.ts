/**
 * One process of a fleet for bench/suites/redis.ts. Orders come from the
 * environment; it prints one JSON line and exits.
 *
 * - LIB: `floodgate` (RedisLimiter on ioredis) or `semaphore`
 *   (redis-semaphore's Semaphore on ioredis, its defaults: it polls every
 *   10 ms).
 * - MODE=handoff: ROUNDS times: acquire (limit 1), hold HOLD_MS, release,
 *   pause PAUSE_MS; prints the wall times of each start, grant and release,
 *   which the suite pairs across processes.
 * - MODE=throughput: CONCURRENCY loops of acquire + release for SECONDS on a
 *   limit no one reaches; prints how many.
 * - MODE=server: a throttled HTTP server on PORT with a fleet limit of LIMIT
 *   (fleet queue QUEUE) behind a local limit of LOCAL_LIMIT (handler:
 *   HOLD_MS of waiting); prints `listening`, then its stats when done. With
 *   SPLIT=1, an in-process limit of LIMIT / 2 (queue QUEUE / 2) instead of
 *   the fleet's: the same load without Redis, for reference. With TIMES=1,
 *   the stats also carry the wall times of the fleet's grants and releases,
 *   the hold of each permit and the round trips of a PING sent every 10 ms.
 */
import process from "node:process";
import { Redis } from "ioredis";
import { Semaphore } from "redis-semaphore";
import { throttle } from "../mod.ts";
import { RedisLimiter } from "../redis.ts";

const env = process.env;
const redis = new Redis({ port: Number(env.REDIS_PORT), host: "127.0.0.1" });
const name = env.NAME ?? "fleet";
const limit = Number(env.LIMIT ?? 1);
const lib = env.LIB ?? "floodgate";
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const limiter = new RedisLimiter({
  redis,
  name,
  limit,
  queue: env.QUEUE === undefined ? Infinity : Number(env.QUEUE),
});

type Handler = (request: Request) => Response | Promise<Response>;

/**
 * Serves `handler` on 127.0.0.1 as each runtime's users do (on Node, with
 * @hono/node-server); resolves, once it listens, to what stops it.
 */
async function serve(
  port: number,
  handler: Handler,
): Promise<() => Promise<unknown>> {
  const hostname = "127.0.0.1";
  const { Bun } = globalThis as unknown as {
    Bun?: {
      serve(options: object): { stop(force: boolean): Promise<void> };
    };
  };
  if (Bun) {
    const server = Bun.serve({ hostname, port, fetch: handler });
    return () => server.stop(true);
  }
  if ("Deno" in globalThis) {
    const server = Deno.serve({ hostname, port, onListen() {} }, handler);
    return () => server.shutdown();
  }
  const { serve } = await import("@hono/node-server");
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const it = serve({ fetch: handler, hostname, port }, () => resolve(it));
  });
  return () =>
    new Promise((resolve) => {
      server.close(resolve);
      // Without this, close() waits for the load generator's idle
      // keep-alive connections to time out (minutes).
      (server as { closeAllConnections?(): void }).closeAllConnections?.();
    });
}

/** Acquires once, the way `lib` does; resolves with the release. */
async function acquire(): Promise<() => Promise<void>> {
  if (lib === "floodgate") {
    const permit = await limiter.acquire();
    return () => Promise.resolve(permit.release());
  }
  const semaphore = new Semaphore(redis, name, limit, {
    acquireTimeout: 60_000,
  });
  await semaphore.acquire();
  return () => semaphore.release();
}

if (env.MODE === "handoff") {
  const starts: number[] = [];
  const grants: number[] = [];
  const releases: number[] = [];
  for (let round = 0; round < Number(env.ROUNDS); round++) {
    starts.push(now());
    const release = await acquire();
    grants.push(now());
    await sleep(Number(env.HOLD_MS));
    releases.push(now());
    await release();
    // Lets the other process, waiting now, take the permit.
    await sleep(Number(env.PAUSE_MS));
  }
  console.log(JSON.stringify({ starts, grants, releases }));
} else if (env.MODE === "throughput") {
  const until = Date.now() + Number(env.SECONDS) * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: Number(env.CONCURRENCY) }, async () => {
      while (Date.now() < until) {
        const release = await acquire();
        await release();
        count++;
      }
    }),
  );
  console.log(JSON.stringify({ count }));
} else if (env.MODE === "server") {
  const hold = Number(env.HOLD_MS);
  // SPLIT=1: the reference without Redis, the fleet's limit and queue split
  // evenly between the two servers as in-process limits.
  const fleet = throttle(
    async () => {
      await sleep(hold);
      return new Response("ok");
    },
    env.SPLIT === "1"
      ? { limit: limit / 2, queue: Number(env.QUEUE) / 2 }
      : { limiter },
  );
  // A local limit in front: most rejections stay in the process.
  const handler = throttle(fleet, {
    limit: Number(env.LOCAL_LIMIT),
    queue: 0,
  });
  const stop = await serve(Number(env.PORT), handler);
  const times = { grants: [] as number[], releases: [] as number[] };
  const holds: number[] = [];
  const pings: number[] = [];
  const until = Date.now() + Number(env.SECONDS) * 1000;
  let pinging = Promise.resolve();
  if (env.TIMES === "1") {
    limiter.observe({
      admitted: () => times.grants.push(now()),
      released: ({ hold }) => (times.releases.push(now()), holds.push(hold)),
    });
    // What one round trip to Redis takes from this process under the load:
    // the least a hand-off can take.
    pinging = (async () => {
      while (Date.now() < until) {
        await sleep(10);
        const started = performance.now();
        await redis.ping();
        pings.push(performance.now() - started);
      }
    })();
  }
  console.log("listening");
  await sleep(until - Date.now());
  await Promise.all([stop(), pinging]);
  console.log(JSON.stringify({
    local: handler.stats(),
    fleet: fleet.stats(),
    ...(env.TIMES === "1" ? { ...times, holds, pings } : {}),
  }));
}
await limiter.close();
redis.disconnect();
