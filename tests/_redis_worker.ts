/**
 * One process of a fleet, for tests/redis_test.ts and the benchmark. Reads
 * its orders from the environment, prints one JSON line per result.
 *
 * - MODE=exact: COUNT acquisitions, CONCURRENCY at a time; inside each, an
 *   independent counter (INCR/DECR of `<NAME>:inside`) must never exceed
 *   LIMIT. Prints `done {"acquired", "violations", "most", "stats"}` (`most`:
 *   the most holders it saw at once).
 * - MODE=hold: acquires one permit, prints `held`, releases it after HOLD_MS
 *   and prints `released {"stats"}`.
 * - MODE=resubscribe: acquires once (so the limiter subscribes), prints
 *   `subscribed`; once Redis was stopped prints `away`, once it is back
 *   `recovered`;
 *   once the key `<NAME>:go` exists, waits for a permit (LEASE long) and
 *   prints `granted`.
 * - MODE=quiet: acquires, waits, hands a permit on, closes the limiter (with
 *   a `timeout` of TIMEOUT ms) and the client, prints `closed`, and does not
 *   call `process.exit()`: the process must end by itself.
 * - MODE=away: connects, prints `connected`, waits until Redis is stopped,
 *   then makes a limiter (with a queue, so that it subscribes) whose
 *   acquisitions fail, closes it and the client, prints `closed {"stats"}`
 *   and does not call `process.exit()`: the process must end by itself.
 */
import process from "node:process";
import { createConnection } from "node:net";
import { createClient } from "redis";
import { Redis } from "ioredis";
import { RedisLimiter } from "floodgate/redis";

const env = process.env;
const port = Number(env.REDIS_PORT);
const name = env.NAME!;
const limit = Number(env.LIMIT ?? 1);
const kind = env.CLIENT ?? "node-redis";

async function connect(): Promise<{ redis: unknown; close(): unknown }> {
  if (kind === "ioredis") {
    const redis = new Redis({ port, host: "127.0.0.1" });
    return { redis, close: () => redis.disconnect() };
  }
  if (kind === "bun") {
    const { RedisClient } = (globalThis as unknown as {
      Bun: { RedisClient: new (url: string) => { close(): void } };
    }).Bun;
    const redis = new RedisClient(`redis://127.0.0.1:${port}`);
    return { redis, close: () => redis.close() };
  }
  const redis = createClient({ url: `redis://127.0.0.1:${port}` });
  redis.on("error", () => {});
  await redis.connect();
  return { redis, close: () => redis.destroy() };
}

/** Resolves once nothing listens on the port any more. */
async function untilRefused(): Promise<void> {
  while (
    await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    })
  ) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function away(): Promise<void> {
  const { redis, close } = await connect();
  (redis as { on?(event: string, listener: () => void): void }).on?.(
    "error",
    () => {},
  );
  console.log("connected");
  await untilRefused();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit,
    queue: 10,
    timeout: 200,
  });
  for (let i = 0; i < 4; i++) {
    await limiter.acquire().then((permit) => permit.release(), () => {});
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  await limiter.close();
  await close();
  console.log(`closed ${JSON.stringify({ stats: limiter.stats() })}`);
}

async function resubscribe(): Promise<void> {
  const { redis, close } = await connect();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit,
    queue: 10,
    lease: Number(env.LEASE ?? 10_000),
    timeout: 200,
  });
  (await limiter.acquire()).release();
  console.log("subscribed");
  await untilRefused();
  console.log("away");
  for (;;) {
    const permit = await limiter.acquire().catch(() => undefined);
    if (permit !== undefined) {
      permit.release();
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log("recovered");
  const send = (redis as { send(command: string, args: string[]): unknown })
    .send.bind(redis);
  while (!await send("EXISTS", [`${name}:go`])) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const permit = await limiter.acquire();
  console.log("granted");
  permit.release();
  await limiter.close();
  await close();
  process.exit(0);
}

async function quiet(): Promise<void> {
  const { redis, close } = await connect();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 1,
    timeout: Number(env.TIMEOUT),
  });
  const first = await limiter.acquire();
  const second = limiter.acquire();
  await new Promise((resolve) => setTimeout(resolve, 20));
  first.release();
  (await second).release();
  await limiter.close();
  await close();
  console.log("closed");
}

if (env.MODE === "away") await away();
else if (env.MODE === "quiet") await quiet();
else if (env.MODE === "resubscribe") await resubscribe();
else await fleet();

async function fleet(): Promise<void> {
  const { redis, close } = await connect();
  // The independent counter runs on a client of its own, as the work would.
  const counter = createClient({ url: `redis://127.0.0.1:${port}` });
  counter.on("error", () => {});
  await counter.connect();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit,
    queue: Infinity,
    lease: Number(env.LEASE ?? 10_000),
  });

  if (env.MODE === "hold") {
    const permit = await limiter.acquire();
    console.log("held");
    await new Promise((resolve) => setTimeout(resolve, Number(env.HOLD_MS)));
    permit.release();
    await limiter.close();
    console.log(`released ${JSON.stringify({ stats: limiter.stats() })}`);
  } else {
    const count = Number(env.COUNT);
    const concurrency = Number(env.CONCURRENCY);
    let started = 0;
    let acquired = 0;
    let violations = 0;
    let most = 0;
    const inside = `${name}:inside`;
    const one = async () => {
      while (started < count) {
        started++;
        await limiter.run(async () => {
          acquired++;
          const now = await counter.incr(inside);
          if (now > limit) violations++;
          most = Math.max(most, now);
          await new Promise((resolve) =>
            setTimeout(resolve, Math.random() * 2)
          );
          await counter.decr(inside);
        });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, one));
    await limiter.close();
    console.log(
      `done ${
        JSON.stringify({ acquired, violations, most, stats: limiter.stats() })
      }`,
    );
  }
  counter.destroy();
  await close();
  process.exit(0);
}
