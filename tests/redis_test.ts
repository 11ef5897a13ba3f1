import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { createClient } from "redis";
import { Redis } from "ioredis";
import { RejectedError, throttle } from "../mod.ts";
import { type RedisAdapter, RedisLimiter } from "../redis.ts";
import { deferred } from "./_helpers.ts";
import { freePort } from "../scripts/_process.ts";
import { until } from "./_server.ts";
import {
  command,
  delayProxy,
  type RedisServer,
  removeNodeWorker,
  startRedis,
  startWorker,
  type Worker,
} from "./_redis.ts";

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
  await removeNodeWorker();
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

/** Resolves once the fleet's queue of `name` holds `count` waiters. */
/** Waits until the sorted set `key` on Redis at `port` holds `count`. */
function untilCard(
  port: number,
  key: string,
  count: number,
  ms = 5000,
): Promise<void> {
  return until(
    `${key} to hold ${count}`,
    async () => await command(port, "ZCARD", key) === `:${count}`,
    ms,
  );
}

const untilQueued = (name: string, count: number) =>
  untilCard(server.port, `floodgate:{${name}}:queue`, count);

const rejectsWith = (reason: string) => (error: unknown) =>
  error instanceof RejectedError && error.reason === reason;

/** Asserts that each worker's process exits by itself, with 0, within 5 s. */
async function endByThemselves(workers: Worker[]): Promise<void> {
  for (const worker of workers) {
    assert.equal(
      await within(5000, `the exit\n${worker.output()}`, worker.exited),
      0,
    );
  }
}

/** Kills the workers a failed test left running. */
function killLeft(workers: Worker[]): void {
  for (const worker of workers) {
    if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
  }
}

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

/**
 * A node-redis connection as an adapter that can hold back the grants
 * published to it, or the replies to its commands, until `flush()`: to
 * order the two ways a process learns of a grant.
 */
async function holding(port: number) {
  const redis = createClient({ url: `redis://127.0.0.1:${port}` });
  await redis.connect();
  const held: Array<() => void> = [];
  const state = { messages: false, replies: false, heard: deferred() };
  const subscribers: Array<{ destroy(): void }> = [];
  const adapter: RedisAdapter = {
    async send(args) {
      const reply = await redis.sendCommand(args);
      if (state.replies) await new Promise<void>((go) => held.push(go));
      return reply;
    },
    async subscribe(channel, listener) {
      const subscriber = redis.duplicate();
      await subscriber.connect();
      subscribers.push(subscriber);
      await subscriber.subscribe(channel, (message: string) => {
        if (state.messages) held.push(() => listener(message));
        else listener(message);
        state.heard.resolve();
      });
      return () => Promise.resolve(subscriber.destroy());
    },
  };
  return {
    adapter,
    state,
    held,
    flush() {
      state.messages = state.replies = false;
      for (const go of held.splice(0)) go();
    },
    close() {
      for (const subscriber of subscribers) subscriber.destroy();
      redis.destroy();
    },
  };
}

/**
 * A limiter of limit 1 and queue 1 on a connection whose messages and
 * replies the test can hold back.
 */
async function limiterOnHolding() {
  const connection = await holding(server.port);
  const name = fresh();
  // A lease of a minute: a grant learnt at the renewal would take 20 s.
  const limiter = new RedisLimiter({
    redis: connection.adapter,
    name,
    limit: 1,
    queue: 1,
    lease: 60_000,
  });
  return { connection, name, limiter };
}

/**
 * {@linkcode limiterOnHolding} with one permit held and one waiter queued;
 * `admitted()` counts its admitted events.
 */
async function oneHolderOneWaiter() {
  const { connection, name, limiter } = await limiterOnHolding();
  let admitted = 0;
  limiter.observe({ admitted: () => admitted++ });
  const first = await limiter.acquire();
  const waiting = limiter.acquire();
  await untilQueued(name, 1);
  return {
    connection,
    name,
    limiter,
    admitted: () => admitted,
    first,
    waiting,
  };
}

test("RedisLimiter grants its own waiter from the release's reply, and the grant's message that comes later changes nothing", async () => {
  const { connection, name, limiter, admitted, first, waiting } =
    await oneHolderOneWaiter();
  connection.state.messages = true;
  first.release();
  const second = await within(5000, "the waiter, from the reply", waiting);
  await within(5000, "the message", connection.state.heard.promise);
  assert.equal(connection.held.length, 1);
  connection.flush();
  assert.deepEqual(
    { admitted: admitted(), active: limiter.active, queued: limiter.queued },
    { admitted: 2, active: 1, queued: 0 },
  );
  // The permit is still the waiter's alone: nobody else gets it.
  assert.equal(await limiter.tryAcquire(), undefined);
  second.release();
  const third = await limiter.acquire();
  third.release();
  await limiter.close();
  assert.deepEqual(
    { admitted: limiter.stats().admitted, expired: limiter.stats().expired },
    { admitted: 3, expired: 0 },
  );
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  connection.close();
});

test("RedisLimiter grants its own waiter from the grant's message when it comes before the release's reply, which then changes nothing", async () => {
  const { connection, name, limiter, admitted, first, waiting } =
    await oneHolderOneWaiter();
  // Replies come in order: past this one, the acquisition's has come.
  await connection.adapter.send(["PING"]);
  connection.state.replies = true;
  first.release();
  const second = await within(5000, "the waiter, from the message", waiting);
  // The release's reply has not come yet.
  assert.equal(connection.held.length, 1);
  connection.flush();
  // Its reply comes before this one's, on the same connection.
  assert.equal(await limiter.tryAcquire(), undefined);
  assert.deepEqual(
    { admitted: admitted(), active: limiter.active, queued: limiter.queued },
    { admitted: 2, active: 1, queued: 0 },
  );
  second.release();
  await limiter.close();
  assert.equal(limiter.stats().expired, 0);
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  connection.close();
});

test("RedisLimiter: a signal that aborts while the acquisition's script is on its way rejects it at once, and the permit or place Redis gave goes back", async () => {
  const { connection, name, limiter } = await limiterOnHolding();
  const key = (what: string) => `floodgate:{${name}}:${what}`;
  /**
   * Aborts an acquisition once Redis put it in `set`, its reply held back;
   * it rejects at once with the signal's reason.
   */
  async function abortOnItsWay(set: string, reason: string): Promise<void> {
    const controller = new AbortController();
    connection.state.replies = true;
    const acquiring = limiter.acquire({ signal: controller.signal });
    await until("a reply held", () => connection.held.length > 0);
    assert.equal(await command(server.port, "ZCARD", key(set)), ":1");
    controller.abort(new Error(reason));
    await assert.rejects(acquiring, new RegExp(reason));
    connection.flush();
  }
  // Capacity is free: Redis grants it.
  await abortOnItsWay("holders", "gone while granted");
  // Full: Redis queues it behind the holder.
  const held = await within(5000, "the permit", limiter.acquire());
  await abortOnItsWay("queue", "gone while queued");
  held.release();
  await limiter.close();
  assert.deepEqual(
    {
      admitted: limiter.stats().admitted,
      aborted: limiter.stats().aborted,
      unavailable: limiter.stats().unavailable,
      active: limiter.active,
      queued: limiter.queued,
    },
    { admitted: 1, aborted: 2, unavailable: 0, active: 0, queued: 0 },
  );
  assert.equal(await command(server.port, "ZCARD", key("holders")), ":0");
  assert.equal(await command(server.port, "ZCARD", key("queue")), ":0");
  connection.close();
});

test("RedisLimiter rejects a full fleet queue, times waiters out, honours signals and closes", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const name = fresh();
  const one = new RedisLimiter({ redis, name, limit: 1, queue: 1 });
  const other = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 1,
    queueTimeout: 50,
  });
  const held = await one.acquire();
  const waiting = one.acquire();
  await untilQueued(name, 1);
  const seen: string[] = [];
  other.observe({ rejected: ({ reason }) => seen.push(reason) });
  // The queue is the fleet's: the other limiter finds it full.
  await assert.rejects(other.acquire(), rejectsWith("full"));
  held.release();
  const next = await within(5000, "the waiter", waiting);
  next.release();
  const third = await other.acquire();
  const timedOut = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 5,
    queueTimeout: 50,
  });
  await assert.rejects(timedOut.acquire(), rejectsWith("timeout"));
  await assert.rejects(
    timedOut.acquire({ deadline: 30 }),
    rejectsWith("timeout"),
  );
  const controller = new AbortController();
  const aborted = one.acquire({ signal: controller.signal });
  await untilQueued(name, 1);
  controller.abort(new Error("gone"));
  await assert.rejects(aborted, /gone/);
  const closing = one.acquire();
  await untilQueued(name, 1);
  const closed = one.close();
  await assert.rejects(closing, rejectsWith("closed"));
  await assert.rejects(one.acquire(), rejectsWith("closed"));
  assert.equal(await one.tryAcquire(), undefined);
  await closed;
  third.release();
  // The queue is empty again: whoever was cancelled left it.
  const last = await within(5000, "a fresh acquisition", other.acquire());
  last.release();
  await Promise.all([other.close(), timedOut.close()]);
  assert.deepEqual(seen, ["full"]);
  assert.deepEqual(
    {
      timedOut: timedOut.stats().timedOut,
      aborted: one.stats().aborted,
      rejected: one.stats().rejected,
      queued: one.stats().queued + other.queued + timedOut.queued,
    },
    { timedOut: 2, aborted: 1, rejected: 3, queued: 0 },
  );
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:queue`),
    ":0",
  );
  await close();
});

test("RedisLimiter tells observers of admissions, rejections and releases", async () => {
  const { redis, close } = await clients.ioredis(server.port);
  const limiter = new RedisLimiter({ redis, name: fresh(), limit: 1 });
  const events: string[] = [];
  const stop = limiter.observe({
    admitted: ({ wait, priority, weight }) =>
      events.push(`admitted ${wait >= 0} ${priority} ${weight}`),
    rejected: ({ reason }) => events.push(`rejected ${reason}`),
    released: ({ hold }) => events.push(`released ${hold >= 0}`),
  });
  limiter.observe({
    admitted: () => {
      throw new Error("an observer that throws");
    },
  });
  const permit = await limiter.acquire();
  assert.equal(await limiter.tryAcquire(), undefined);
  permit.release();
  permit.release();
  stop();
  await limiter.run(() => "not seen");
  await limiter.close();
  assert.deepEqual(events, [
    "admitted true 3 1",
    "rejected full",
    "released true",
  ]);
  assert.deepEqual(limiter.stats(), {
    limit: 1,
    active: 0,
    queued: 0,
    admitted: 2,
    rejected: 1,
    timedOut: 0,
    aborted: 0,
    unavailable: 0,
    expired: 0,
  });
  await close();
});

test("throttle() shares a RedisLimiter, behind a local limit, and answers the fleet's overload with 503", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const name = fresh();
  const fleet = new RedisLimiter({ redis, name, limit: 1 });
  const elsewhere = new RedisLimiter({ redis, name, limit: 1 });
  const release = deferred();
  const handler = throttle(async () => {
    await release.promise;
    return new Response("ok");
  }, { limiter: fleet });
  // The local limit in front keeps most rejections in the process.
  const local = throttle(handler, { limit: 1 });
  const request = () => new Request("http://localhost/");
  const taken = await elsewhere.acquire();
  const refused = await local(request());
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.equal(fleet.stats().rejected, 1);
  taken.release();
  const first = local(request());
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(await elsewhere.tryAcquire(), undefined);
  assert.equal((await local(request())).status, 503);
  assert.equal(local.stats().rejected, 1);
  assert.equal(fleet.stats().rejected, 1);
  release.resolve();
  assert.equal((await first).status, 200);
  assert.deepEqual(handler.stats(), { ...fleet.stats(), keys: 0 });
  await handler.close();
  await elsewhere.close();
  assert.equal(fleet.active, 0);
  await close();
});

test("RedisLimiter rejects with unavailable at once while Redis is away, and recovers by itself", async () => {
  const own = await startRedis();
  const { redis, close } = await clients.ioredis(own.port);
  const name = fresh();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 10,
    lease: 600,
    timeout: 200,
  });
  const fetch = throttle(() => new Response("ok"), { limiter });
  const held = await limiter.acquire();
  const waiters = [limiter.acquire(), limiter.acquire()];
  await new Promise((resolve) => setTimeout(resolve, 50));
  await own.stop();
  // Every waiter settles: its lease renewal fails within a third of a lease.
  for (const waiter of waiters) {
    await assert.rejects(
      within(5000, "a waiter while Redis is away", waiter),
      rejectsWith("unavailable"),
    );
  }
  await assert.rejects(
    within(5000, "an acquisition while Redis is away", limiter.acquire()),
    rejectsWith("unavailable"),
  );
  assert.equal(
    (await within(
      5000,
      "a request",
      Promise.resolve(fetch(new Request("http://x/"))),
    )).status,
    503,
  );
  held.release();
  await own.start();
  // Redis came back empty; new acquisitions work again once reconnected.
  const deadline = Date.now() + 10_000;
  let permit;
  while (permit === undefined) {
    try {
      permit = await limiter.acquire();
    } catch (error) {
      assert.ok(rejectsWith("unavailable")(error));
      if (Date.now() > deadline) throw new Error("no recovery within 10 s");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  permit.release();
  await limiter.close();
  const stats = limiter.stats();
  assert.ok(stats.unavailable >= 4, `unavailable: ${stats.unavailable}`);
  assert.equal(stats.active + stats.queued, 0);
  await close();
  await own.stop();
});

test("RedisLimiter through a slow network: a round trip over timeout is unavailable, a slow one within it works", async () => {
  const delay = { ms: 100 };
  const proxy = await delayProxy(server.port, delay);
  const { redis, close } = await clients["node-redis"](proxy.port);
  const name = fresh();
  const slow = new RedisLimiter({ redis, name, limit: 1, timeout: 50 });
  await assert.rejects(slow.acquire(), rejectsWith("unavailable"));
  // Within the next timeout, no round trip is tried: rejected at once.
  await assert.rejects(slow.tryAcquire(), rejectsWith("unavailable"));
  // Its acquisition may have been granted after it gave up: the cancellation
  // that follows it gives the permit back.
  await slow.close();
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  const patient = new RedisLimiter({ redis, name, limit: 1, timeout: 2000 });
  delay.ms = 20;
  await patient.run(async () => {
    assert.equal(await patient.tryAcquire(), undefined);
  });
  await patient.close();
  assert.equal(patient.stats().admitted, 1);
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  await close();
  await proxy.close();
});

test("RedisLimiter is exact across Deno, Bun and Node processes: never more holders than the limit, every acquisition completes", async () => {
  const name = fresh();
  const env = {
    REDIS_PORT: String(server.port),
    NAME: name,
    LIMIT: "4",
    MODE: "exact",
    COUNT: "150",
    CONCURRENCY: "12",
  };
  const workers = await Promise.all([
    startWorker("deno", { ...env, CLIENT: "node-redis" }),
    startWorker("bun", { ...env, CLIENT: "bun" }),
    startWorker("node", { ...env, CLIENT: "ioredis" }),
  ]);
  const results = await within(
    60_000,
    "the fleet",
    Promise.all(workers.map(async (worker) => {
      const line = await worker.line("done ");
      return JSON.parse(line.slice(5));
    })),
  );
  for (const { acquired, violations, stats } of results) {
    assert.equal(acquired, 150);
    assert.equal(violations, 0);
    assert.equal(stats.admitted, 150);
    assert.equal(stats.expired, 0);
  }
  // The limit was reached: the test could have caught one holder too many.
  assert.equal(Math.max(...results.map((result) => result.most)), 4);
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  assert.equal(await command(server.port, "GET", `${name}:inside`), "$1\r\n0");
});

test("RedisLimiter reclaims the permit of a process killed with SIGKILL within its lease", async () => {
  const name = fresh();
  const holder = await startWorker("bun", {
    REDIS_PORT: String(server.port),
    NAME: name,
    MODE: "hold",
    HOLD_MS: "60000",
    LEASE: "1000",
    CLIENT: "bun",
  });
  await within(30_000, "the holder", holder.line("held"));
  const { redis, close } = await clients.ioredis(server.port);
  const limiter = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 1,
    lease: 1000,
  });
  assert.equal(await limiter.tryAcquire(), undefined);
  const waiting = limiter.acquire();
  process.kill(holder.pid, "SIGKILL");
  await holder.exited;
  // Nobody announces a death: the lease runs out, and the next renewal or
  // acquisition finds it.
  const permit = await within(5000, "the reclaimed permit", waiting);
  permit.release();
  await limiter.close();
  await close();
});

test("RedisLimiter: a holder frozen with SIGSTOP past its lease frees nothing of anyone else's when it releases late, and counts it", async () => {
  const name = fresh();
  const holder = await startWorker("node", {
    REDIS_PORT: String(server.port),
    NAME: name,
    MODE: "hold",
    HOLD_MS: "300",
    LEASE: "600",
    CLIENT: "node-redis",
  });
  await within(30_000, "the holder", holder.line("held"));
  process.kill(holder.pid, "SIGSTOP");
  const { redis, close } = await clients["node-redis"](server.port);
  const options = { redis, name, limit: 1, queue: 5, lease: 600 };
  const limiter = new RedisLimiter(options);
  const permit = await within(
    5000,
    "the permit of the frozen holder",
    limiter.acquire(),
  );
  process.kill(holder.pid, "SIGCONT");
  const line = await within(
    30_000,
    "the late release",
    holder.line("released "),
  );
  assert.equal(JSON.parse(line.slice(9)).stats.expired, 1);
  // The late release freed nothing: the permit is still ours.
  const other = new RedisLimiter(options);
  assert.equal(await other.tryAcquire(), undefined);
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":1",
  );
  permit.release();
  await Promise.all([limiter.close(), other.close()]);
  await close();
});

test("RedisLimiter with queue 0: close() during an acquisition grants nothing, gives back what Redis granted, and resolves only after", async () => {
  // A delay on the way makes sure the acquisitions are under way at close().
  const proxy = await delayProxy(server.port, { ms: 30 });
  const { redis, close } = await clients["node-redis"](proxy.port);
  const name = fresh();
  const limiter = new RedisLimiter({ redis, name, limit: 2, queue: 0 });
  const acquiring = limiter.acquire().then((permit) => permit, (e) => e);
  const trying = limiter.tryAcquire();
  await new Promise((resolve) => setTimeout(resolve, 15));
  await limiter.close();
  // Nothing is held here, nor in Redis, once close() resolved.
  assert.equal(limiter.active, 0);
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  assert.ok(rejectsWith("closed")(await acquiring));
  assert.equal(await trying, undefined);
  assert.deepEqual(
    { admitted: limiter.stats().admitted, rejected: limiter.stats().rejected },
    { admitted: 0, rejected: 2 },
  );
  // With a queue: acquisitions under way at close() leave no place behind,
  // and those close() rejects before they returned raise no unhandled
  // rejection (one acquisition first, so that the limiter is subscribed).
  const queued = new RedisLimiter({ redis, name, limit: 1, queue: 5 });
  (await queued.acquire()).release();
  const attempts = [1, 2, 3].map(() =>
    queued.acquire().then((permit) => permit, (e) => e)
  );
  await new Promise((resolve) => setTimeout(resolve, 15));
  await queued.close();
  for (const attempt of attempts) {
    assert.ok(rejectsWith("closed")(await attempt));
  }
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:holders`),
    ":0",
  );
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:queue`),
    ":0",
  );
  await close();
  await proxy.close();
});

test("RedisLimiter: acquisitions made at once go together and each gets its own answer, in call order", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const name = fresh();
  const limiter = new RedisLimiter({ redis, name, limit: 2, queue: 1 });
  // The first acquisition that may wait subscribes first; then they line up.
  await limiter.run(() => {});
  const order: string[] = [];
  const attempts = ["a", "b", "c", "d", "e"].map((label) =>
    limiter.acquire().then(
      (permit) => (order.push(label), permit),
      (error) => (order.push(`${label} ${error.reason}`), undefined),
    )
  );
  const tried = limiter.tryAcquire();
  // a and b hold, c waits, d and e find the fleet's queue full.
  const [a, b, c, d, e] = attempts;
  assert.deepEqual([await d, await e, await tried], [
    undefined,
    undefined,
    undefined,
  ]);
  assert.equal(limiter.queued, 1);
  (await a)!.release();
  const third = await within(5000, "the waiter", c);
  assert.deepEqual(order, ["a", "b", "d full", "e full", "c"]);
  third!.release();
  (await b)!.release();
  await limiter.close();
  assert.deepEqual(
    { admitted: limiter.stats().admitted, rejected: limiter.stats().rejected },
    { admitted: 4, rejected: 3 },
  );
  await close();
});

test("RedisLimiter.observe() handles observers as Limiter.observe() does: methods of a class, checked methods, releases to those that saw the grant", async () => {
  const { redis, close } = await clients.ioredis(server.port);
  const limiter = new RedisLimiter({ redis, name: fresh(), limit: 2 });
  class Log {
    events: string[] = [];
    admitted(event: { weight: number }) {
      this.events.push(`admitted ${event.weight}`);
    }
    released() {
      this.events.push("released");
    }
  }
  const log = new Log();
  limiter.observe(log);
  await limiter.run(() => {});
  assert.deepEqual(log.events, ["admitted 1", "released"]);
  // One added while a permit is held does not get its release.
  const permit = await limiter.acquire();
  const late = new Log();
  limiter.observe(late);
  permit.release();
  assert.deepEqual(late.events, []);
  assert.equal(log.events.length, 4);
  assert.throws(
    () => limiter.observe({ rejected: 5 } as never),
    (e) => e instanceof TypeError && /observer "rejected"/.test(e.message),
  );
  assert.throws(() => limiter.observe(null as never), TypeError);
  await limiter.close();
  await close();
});

test("throttle() with a RedisLimiter checks skip() as the in-process gate does", async () => {
  const { redis, close } = await clients.ioredis(server.port);
  const limiter = new RedisLimiter({ redis, name: fresh(), limit: 1 });
  const fetch = throttle(() => new Response("ok"), {
    limiter,
    skip: (() => Promise.resolve(false)) as never,
  });
  await assert.rejects(
    Promise.resolve(fetch(new Request("http://localhost/"))),
    (e) =>
      e instanceof TypeError &&
      /option "skip" must return a boolean synchronously/.test(e.message),
  );
  await limiter.close();
  await close();
});

test("throttle() with a RedisLimiter sends the fleet's expected wait in Retry-After", async () => {
  const { redis, close } = await clients.ioredis(server.port);
  const limiter = new RedisLimiter({
    redis,
    name: fresh(),
    limit: 1,
    queue: 4,
  });
  assert.equal(limiter.retryAfter(), 1); // no permit given back yet
  const first = await limiter.acquire();
  await new Promise((resolve) => setTimeout(resolve, 400));
  first.release();
  // Behind a full queue: (4 + 1) x a hold of 400-500 ms over a limit of 1,
  // spread by up to +50%: 2-4 s.
  const seconds = limiter.retryAfter();
  assert.ok(seconds >= 2 && seconds <= 4, `retryAfter() ${seconds}`);

  const held = await limiter.acquire();
  const waiters = Array.from({ length: 4 }, () => limiter.acquire());
  const fetch = throttle(() => new Response("ok"), { limiter });
  const response = await fetch(new Request("http://localhost/"));
  assert.equal(response.status, 503);
  const sent = Number(response.headers.get("retry-after"));
  assert.ok(sent >= 2 && sent <= 4, `Retry-After ${sent}`);
  held.release();
  for (const waiter of waiters) (await waiter).release();
  await limiter.close();
  await close();
});

test("RedisLimiter: a tryAcquire() whose round trip outlasts timeout gives back what Redis granted late", async () => {
  const delay = { ms: 0 };
  const proxy = await delayProxy(server.port, delay);
  const { redis, close } = await clients["node-redis"](proxy.port);
  const name = fresh();
  const holders = () =>
    command(server.port, "ZCARD", `floodgate:{${name}}:holders`);
  const limiter = new RedisLimiter({ redis, name, limit: 1, timeout: 100 });
  // Once fast, so that Redis knows the script and the slow call is one trip.
  (await limiter.tryAcquire())!.release();
  await new Promise((resolve) => setTimeout(resolve, 50));
  delay.ms = 300;
  await assert.rejects(limiter.tryAcquire(), rejectsWith("unavailable"));
  await limiter.close();
  // The script ran after the limiter gave up (it reaches Redis 300 ms after
  // it left); what it granted went back, instead of staying with nobody for
  // a lease (10 s).
  await new Promise((resolve) => setTimeout(resolve, 800));
  assert.equal(await holders(), ":0");
  delay.ms = 0;
  const other = new RedisLimiter({ redis, name, limit: 1 });
  const permit = await other.tryAcquire();
  assert.notEqual(permit, undefined);
  permit!.release();
  await other.close();
  await close();
  await proxy.close();
});

test("RedisLimiter sends nothing for the acquisitions it refuses without a round trip while Redis is unreachable", async () => {
  const sent: string[] = [];
  const adapter: RedisAdapter = {
    send(args) {
      sent.push(args[0]);
      return Promise.reject(new Error("connect ECONNREFUSED"));
    },
  };
  const limiter = new RedisLimiter({
    redis: adapter,
    name: fresh(),
    limit: 1,
    timeout: 60_000,
  });
  // The first tries, fails, and gives back what its script may have done.
  await assert.rejects(limiter.acquire(), rejectsWith("unavailable"));
  const tried = sent.length;
  assert.ok(tried >= 1, `sent ${tried}`);
  for (let i = 0; i < 20; i++) {
    await assert.rejects(limiter.acquire(), rejectsWith("unavailable"));
    await assert.rejects(limiter.tryAcquire(), rejectsWith("unavailable"));
  }
  await limiter.close();
  // Refused within `timeout` without a round trip: no cancellation either.
  assert.equal(sent.length, tried);
  assert.equal(limiter.stats().unavailable, 41);
});

test("RedisLimiter: a process whose limiter could never subscribe, Redis being away, ends by itself once the limiter and the client are closed", async () => {
  const own = await startRedis();
  const env = { REDIS_PORT: String(own.port), NAME: fresh(), MODE: "away" };
  const workers = await Promise.all([
    startWorker("deno", { ...env, CLIENT: "node-redis" }),
    startWorker("node", { ...env, CLIENT: "ioredis" }),
    startWorker("bun", { ...env, CLIENT: "bun" }),
  ]);
  try {
    for (const worker of workers) {
      await within(30_000, "connected", worker.line("connected"));
    }
    await own.stop();
    for (const worker of workers) {
      const line = await within(30_000, "closed", worker.line("closed "));
      const { stats } = JSON.parse(line.slice("closed ".length));
      assert.equal(stats.unavailable, 4, worker.output());
    }
    // Nothing the limiter opened (a subscriber reconnecting to a Redis that
    // is gone) keeps it alive.
    await endByThemselves(workers);
  } finally {
    killLeft(workers);
  }
});

test("RedisLimiter: a subscription that fails is not tried again within timeout, and the connection opened for it is dropped", async () => {
  const signals: AbortSignal[] = [];
  const adapter: RedisAdapter = {
    send: () => Promise.reject(new Error("not expected")),
    subscribe(_channel, _listener, signal) {
      signals.push(signal!);
      // A connection that keeps trying to reach a Redis that is away.
      return new Promise(() => {});
    },
  };
  const limiter = new RedisLimiter({
    redis: adapter,
    name: fresh(),
    limit: 1,
    queue: 5,
    timeout: 300,
  });
  await assert.rejects(limiter.acquire(), rejectsWith("unavailable"));
  assert.equal(signals.length, 1);
  assert.equal(signals[0].aborted, true);
  const started = Date.now();
  const refused = await Promise.allSettled(
    Array.from({ length: 10 }, () => limiter.acquire()),
  );
  assert.ok(refused.every((r) => r.status === "rejected"));
  // Refused at once, as acquisitions are while Redis is away.
  assert.ok(Date.now() - started < 250, `${Date.now() - started} ms`);
  assert.equal(signals.length, 1);
  await limiter.close();
  assert.equal(limiter.stats().unavailable, 11);
});

test("RedisLimiter: an adapter that answers scripts with what no script returns fails the acquisitions, neither hanging nor throwing where nobody catches", async () => {
  const odd: RedisAdapter = { send: () => Promise.resolve(null) };
  const limiter = new RedisLimiter({ redis: odd, name: fresh(), limit: 1 });
  const malformed = (e: unknown) =>
    e instanceof TypeError && /answered a script with null/.test(e.message);
  await assert.rejects(within(2000, "acquire", limiter.acquire()), malformed);
  await assert.rejects(
    within(2000, "tryAcquire", limiter.tryAcquire()),
    malformed,
  );
  await within(2000, "close", limiter.close());
  // Queued by the acquisition, then answered oddly by each renewal: the
  // waiter leaves as when Redis is away.
  const queuedOnly: RedisAdapter = { send: () => Promise.resolve([[2], []]) };
  const waiting = new RedisLimiter({
    redis: queuedOnly,
    name: fresh(),
    limit: 1,
    queue: 1,
    lease: 60,
  });
  await assert.rejects(
    within(2000, "the waiter", waiting.acquire()),
    rejectsWith("unavailable"),
  );
  await within(2000, "close", waiting.close());
  assert.deepEqual(
    { active: waiting.active, queued: waiting.queued },
    { active: 0, queued: 0 },
  );
});

for (const [kind, connect] of Object.entries(clients)) {
  test(`RedisLimiter (${kind}): a Redis that is reached but cannot serve (a read-only replica) is unavailable, answered with 503, and recovers`, async () => {
    const own = await startRedis();
    const { redis, close } = await connect(own.port);
    try {
      const name = fresh();
      const limiter = new RedisLimiter({
        redis,
        name,
        limit: 1,
        queue: 2,
        timeout: 100,
      });
      const fetch = throttle(() => new Response("ok"), { limiter });
      (await limiter.acquire()).release();
      // Released in Redis before it turns read-only: a release it refuses
      // leaves the permit taken until its lease runs out.
      await untilCard(own.port, `floodgate:{${name}}:holders`, 0);
      // A replica of a primary that is not there: it answers, and refuses
      // every write with READONLY. (Out of memory, the other such answer
      // that can be made on purpose, is not reliable to make: Redis 7.0 now
      // and then went on running scripts under `maxmemory 1`.)
      const away = await freePort();
      const replicaOf = ["REPLICAOF", "127.0.0.1", String(away)];
      assert.equal(await command(own.port, ...replicaOf), "+OK");
      await assert.rejects(limiter.acquire(), rejectsWith("unavailable"));
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal((await fetch(new Request("http://x/"))).status, 503);
      assert.equal(await command(own.port, "REPLICAOF", "NO", "ONE"), "+OK");
      await new Promise((resolve) => setTimeout(resolve, 150));
      (await limiter.acquire()).release();
      await limiter.close();
      assert.equal(limiter.stats().unavailable, 2);
    } finally {
      await close();
      await own.stop();
    }
  });
}

test("RedisLimiter on Bun's client is still woken by notifications after Redis restarted", async () => {
  const own = await startRedis();
  const name = fresh();
  const worker = await startWorker("bun", {
    REDIS_PORT: String(own.port),
    NAME: name,
    MODE: "resubscribe",
    CLIENT: "bun",
    // Renewals, which would also find the grant, come every 10 s.
    LEASE: "30000",
  });
  try {
    await within(30_000, "subscribed", worker.line("subscribed"));
    await own.stop();
    await within(30_000, "away", worker.line("away"));
    await own.start();
    await within(30_000, "recovered", worker.line("recovered"));
    const { redis, close } = await clients["node-redis"](own.port);
    const limiter = new RedisLimiter({ redis, name, limit: 1 });
    const permit = await limiter.acquire();
    await command(own.port, "SET", `${name}:go`, "1");
    await untilCard(own.port, `floodgate:{${name}}:queue`, 1, 10_000);
    permit.release();
    // The grant's message wakes it, long before its next renewal.
    await within(3000, "the grant", worker.line("granted"));
    assert.equal(await worker.exited, 0);
    await limiter.close();
    await close();
  } finally {
    if (worker.child.exitCode === null) worker.child.kill("SIGKILL");
    await own.stop();
  }
});

test("RedisLimiter leaves no timer behind once closed: the process ends at once, whatever the timeout", async () => {
  const env = {
    REDIS_PORT: String(server.port),
    MODE: "quiet",
    // The watchdog of round trips ticks every quarter of it: 15 s.
    TIMEOUT: "60000",
  };
  const workers = await Promise.all([
    startWorker("deno", { ...env, NAME: fresh(), CLIENT: "node-redis" }),
    startWorker("node", { ...env, NAME: fresh(), CLIENT: "ioredis" }),
    startWorker("bun", { ...env, NAME: fresh(), CLIENT: "bun" }),
  ]);
  try {
    for (const worker of workers) {
      await within(30_000, "closed", worker.line("closed"));
    }
    await endByThemselves(workers);
  } finally {
    killLeft(workers);
  }
});

test("RedisLimiter with a wait of 0 (queueTimeout or deadline) times out a caller that finds room in the queue, as Limiter does, and rejects one that finds it full", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const name = fresh();
  const limiter = new RedisLimiter({
    redis,
    name,
    limit: 1,
    queue: 1,
    queueTimeout: 0,
  });
  const held = await limiter.acquire();
  await assert.rejects(limiter.acquire(), rejectsWith("timeout"));
  const patient = new RedisLimiter({ redis, name, limit: 1, queue: 1 });
  await assert.rejects(
    patient.acquire({ deadline: 0 }),
    rejectsWith("timeout"),
  );
  const waiting = patient.acquire();
  await untilQueued(name, 1);
  await assert.rejects(limiter.acquire(), rejectsWith("full"));
  held.release();
  (await waiting).release();
  await limiter.close();
  await patient.close();
  assert.deepEqual(
    [limiter.stats().timedOut, limiter.stats().rejected],
    [1, 1],
  );
  assert.deepEqual(
    [patient.stats().timedOut, patient.stats().rejected],
    [1, 0],
  );
  assert.equal(
    await command(server.port, "ZCARD", `floodgate:{${name}}:queue`),
    ":0",
  );
  await close();
});

test("RedisLimiter sends one renewal at a time: a Redis that stops answering does not pile them up", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const client = redis as ReturnType<typeof createClient>;
  let stalled = false;
  let sent = 0;
  const adapter: RedisAdapter = {
    send(args) {
      if (!stalled) return client.sendCommand(args);
      sent++;
      return new Promise(() => {}); // Redis frozen: no answer, ever
    },
  };
  const limiter = new RedisLimiter({
    redis: adapter,
    name: fresh(),
    limit: 1,
    // Renewed every 20 ms; a round trip may take 1 s.
    lease: 60,
    timeout: 1000,
  });
  const permit = await limiter.acquire();
  stalled = true;
  await new Promise((resolve) => setTimeout(resolve, 500));
  // The first renewal is still under way: the next ticks send nothing.
  assert.equal(sent, 1);
  permit.release();
  await within(5000, "close", limiter.close());
  await close();
});

test("RedisLimiter takes integers decoded as strings or bigints for what they are, and gives back what an answer it cannot read stands for", async () => {
  const { redis, close } = await clients["node-redis"](server.port);
  const client = redis as ReturnType<typeof createClient>;
  const name = fresh();
  const holders = () =>
    command(server.port, "ZCARD", `floodgate:{${name}}:holders`);
  const decoded = (as: (n: number) => unknown): RedisAdapter => ({
    send: async (args) => {
      const map = (value: unknown): unknown =>
        Array.isArray(value)
          ? value.map(map)
          : typeof value === "number"
          ? as(value)
          : value;
      return map(await client.sendCommand(args));
    },
  });
  for (const as of [String, BigInt]) {
    const limiter = new RedisLimiter({ redis: decoded(as), name, limit: 1 });
    const permit = await limiter.tryAcquire();
    assert.notEqual(permit, undefined, `${as.name}: granted`);
    assert.equal(await limiter.tryAcquire(), undefined);
    permit!.release();
    await limiter.close();
    assert.equal(limiter.stats().expired, 0);
    assert.equal(await holders(), ":0");
  }
  // An answer that says nothing: the call fails, and what Redis granted
  // goes back.
  const unreadable = new RedisLimiter({
    redis: decoded(() => null),
    name,
    limit: 1,
  });
  await assert.rejects(unreadable.acquire(), TypeError);
  await unreadable.close();
  assert.equal(await holders(), ":0");
  await close();
});
