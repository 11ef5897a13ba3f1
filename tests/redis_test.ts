import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createClient } from "redis";
import { Redis } from "ioredis";
import { Limiter, RejectedError, throttle } from "../mod.ts";
import { RedisLimiter } from "../redis.ts";
import {
  command,
  delayProxy,
  type RedisServer,
  startRedis,
  startWorker,
} from "./_redis.ts";

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

let names = 0;
/** A name of its own for each test, so that tests share no state. */
const fresh = () => `t${process.pid}-${++names}`;

type Client = { redis: unknown; close(): unknown };

const clients: Record<string, (port: number) => Promise<Client>> = {
  "node-redis": async (port) => {
    const redis = createClient({
      url: `redis://127.0.0.1:${port}`,
      socket: { reconnectStrategy: () => 100 },
    });
    redis.on("error", () => {});
    await redis.connect();
    return { redis, close: () => redis.destroy() };
  },
  ioredis: (port) => {
    const redis = new Redis({
      port,
      host: "127.0.0.1",
      retryStrategy: () => 100,
    });
    redis.on("error", () => {});
    return Promise.resolve({ redis, close: () => redis.disconnect() });
  },
};
// Bun's own client runs in the Bun worker of the fleet tests, on every runtime
// alike, so that each runtime runs the same tests.

/** Fails with `what` if `promise` has not settled within `ms`. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what}: not within ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

const rejectsWith = (reason: string) => (error: unknown) =>
  error instanceof RejectedError && error.reason === reason;

test("new RedisLimiter() checks its options", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const ok = { redis, name: "x", limit: 1 };
  assert.throws(
    () => new RedisLimiter({ ...ok, redis: {} }),
    /option "redis" must be a node-redis, ioredis or Bun RedisClient client/,
  );
  assert.throws(() => new RedisLimiter({ ...ok, name: "" }), TypeError);
  assert.throws(
    () => new RedisLimiter({ ...ok, limit: 0 }),
    (e) => e instanceof RangeError && /option "limit".*got 0/.test(e.message),
  );
  assert.throws(() => new RedisLimiter({ ...ok, limit: Infinity }), RangeError);
  assert.throws(() => new RedisLimiter({ ...ok, queue: -1 }), RangeError);
  assert.throws(() => new RedisLimiter({ ...ok, lease: 1.5 }), RangeError);
  assert.throws(
    () => new RedisLimiter({ ...ok, lease: "10" as unknown as number }),
    TypeError,
  );
  assert.throws(
    () => new RedisLimiter({ ...ok, limt: 3 } as never),
    /did you mean "limit"/,
  );
  const limiter = new RedisLimiter(ok);
  await assert.rejects(
    limiter.acquire({ priority: 9 } as never),
    RangeError,
  );
  await assert.rejects(limiter.acquire({ deadline: -1 }), RangeError);
  await close();
});

for (const [kind, connect] of Object.entries(clients)) {
  test(`RedisLimiter (${kind}) caps permits across limiters and hands a released one to the oldest waiter at once`, async () => {
    const a = await connect(server.port);
    const b = await connect(server.port);
    const name = fresh();
    // A lease of a minute: a grant that relied on renewal would come after 20 s.
    const options = { name, limit: 2, queue: 10, lease: 60_000 };
    const first = new RedisLimiter({ redis: a.redis, ...options });
    const second = new RedisLimiter({ redis: b.redis, ...options });
    const held = [await first.acquire(), await second.acquire()];
    assert.equal(await first.tryAcquire(), undefined);
    const order: string[] = [];
    const waiting = [
      second.acquire().then((p) => (order.push("second-1"), p)),
    ];
    await new Promise((resolve) => setTimeout(resolve, 50));
    waiting.push(first.acquire().then((p) => (order.push("first-1"), p)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    waiting.push(second.acquire().then((p) => (order.push("second-2"), p)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(first.queued + second.queued, 3);
    assert.equal(
      await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
      ":2",
    );
    held[0].release();
    const granted = await within(5000, "the first waiter", waiting[0]);
    assert.deepEqual(order, ["second-1"]);
    granted.release();
    const next = await within(5000, "the second waiter", waiting[1]);
    held[1].release();
    const last = await within(5000, "the third waiter", waiting[2]);
    assert.deepEqual(order, ["second-1", "first-1", "second-2"]);
    next.release();
    last.release();
    await Promise.all([first.close(), second.close()]);
    assert.deepEqual(
      {
        ...first.stats(),
        ...{ admitted: first.stats().admitted + second.stats().admitted },
      },
      { ...first.stats(), admitted: 5 },
    );
    assert.equal(first.stats().rejected, 1); // the tryAcquire
    assert.equal(
      await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
      ":0",
    );
    await a.close();
    await b.close();
  });
}
