import { test } from "node:test";
import assert from "node:assert/strict";
import { type LimitAlgorithm, Limiter, RejectedError } from "../mod.ts";
import { scripted, settled, tick } from "./_helpers.ts";

function rejectsWith(reason: string) {
  return (error: unknown) =>
    error instanceof RejectedError && error.name === "RejectedError" &&
    error.reason === reason;
}

test("Limiter grants at most limit permits at once", () => {
  const limiter = new Limiter({ limit: 2 });
  const a = limiter.tryAcquire();
  const b = limiter.tryAcquire();
  assert.ok(a && b);
  assert.equal(limiter.tryAcquire(), undefined);
  assert.equal(limiter.active, 2);
  a.release();
  assert.equal(limiter.active, 1);
  assert.ok(limiter.tryAcquire());
});

test("Limiter defaults to limit 100, no queue, fifo", async () => {
  const limiter = new Limiter();
  const permits = Array.from({ length: 100 }, () => limiter.tryAcquire());
  assert.ok(permits.every((p) => p !== undefined));
  await assert.rejects(limiter.acquire(), rejectsWith("full"));
  assert.equal(limiter.stats().limit, 100);
});

test("Permit.release() is idempotent and [Symbol.dispose] releases", () => {
  const limiter = new Limiter({ limit: 2 });
  const a = limiter.tryAcquire()!;
  const b = limiter.tryAcquire()!;
  a.release();
  a.release();
  a[Symbol.dispose]();
  assert.equal(limiter.active, 1);
  b[Symbol.dispose]();
  b.release();
  assert.equal(limiter.active, 0);
});

test("Limiter hands a released permit to the oldest waiter with fifo", async () => {
  const limiter = new Limiter({ limit: 1, queue: 3 });
  const held = limiter.tryAcquire()!;
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) =>
    limiter.acquire().then((permit) => {
      order.push(n);
      permit.release();
    })
  );
  assert.equal(limiter.queued, 3);
  held.release();
  await Promise.all(waits);
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(limiter.active, 0);
});

test("Limiter hands a released permit to the newest waiter with lifo", async () => {
  const limiter = new Limiter({ limit: 1, queue: 3, order: "lifo" });
  const held = limiter.tryAcquire()!;
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) =>
    limiter.acquire().then((permit) => {
      order.push(n);
      permit.release();
    })
  );
  held.release();
  await Promise.all(waits);
  assert.deepEqual(order, [3, 2, 1]);
});

test("Limiter passes a permit straight to the waiter so nobody overtakes it", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const held = limiter.tryAcquire()!;
  const waiting = limiter.acquire();
  held.release();
  // The waiter owns the slot before its promise callbacks even run.
  assert.equal(limiter.active, 1);
  assert.equal(limiter.queued, 0);
  assert.equal(limiter.tryAcquire(), undefined);
  (await waiting).release();
  assert.equal(limiter.active, 0);
});

test("Limiter.tryAcquire() returns undefined while anyone waits", async () => {
  const limiter = new Limiter({ limit: 2, queue: 1 });
  const a = limiter.tryAcquire()!;
  limiter.tryAcquire()!;
  const waiting = limiter.acquire();
  limiter.limit = 3; // raising admits the waiter at once
  assert.equal(limiter.queued, 0);
  (await waiting).release();
  const c = limiter.acquire();
  a.release();
  await c;
  assert.equal(limiter.active, 2);
});

test('Limiter rejects a newcomer at once with "full" when the queue is full', async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  limiter.tryAcquire();
  const waiting = limiter.acquire();
  await assert.rejects(limiter.acquire(), rejectsWith("full"));
  assert.equal(limiter.queued, 1);
  assert.equal(await settled(waiting), false);
  assert.equal(limiter.stats().rejected, 1);
});

test("Limiter with queue 0 rejects every caller that finds no free permit", async () => {
  const limiter = new Limiter({ limit: 1 });
  limiter.tryAcquire();
  await assert.rejects(limiter.acquire(), rejectsWith("full"));
  await assert.rejects(limiter.acquire(), rejectsWith("full"));
  assert.equal(limiter.tryAcquire(), undefined);
  assert.equal(limiter.stats().rejected, 3);
});

test("Limiter keeps holders after the limit is lowered and admits no one until active < limit", async () => {
  const limiter = new Limiter({ limit: 3, queue: 5 });
  const permits = [1, 2, 3].map(() => limiter.tryAcquire()!);
  limiter.limit = 1;
  assert.equal(limiter.active, 3);
  const waiting = limiter.acquire();
  permits[0].release();
  permits[1].release();
  assert.equal(await settled(waiting), false);
  assert.equal(limiter.active, 1);
  permits[2].release();
  assert.equal(await settled(waiting), true);
  assert.equal(limiter.active, 1);
});

test("Limiter admits waiters at once when the limit is raised", async () => {
  const limiter = new Limiter({ limit: 1, queue: 5 });
  limiter.tryAcquire();
  const waits = [limiter.acquire(), limiter.acquire(), limiter.acquire()];
  limiter.limit = 3;
  assert.equal(limiter.active, 3);
  assert.equal(limiter.queued, 1);
  assert.equal(await settled(waits[0]), true);
  assert.equal(await settled(waits[1]), true);
  assert.equal(await settled(waits[2]), false);
  limiter.limit = Infinity;
  assert.equal(await settled(waits[2]), true);
});

test('Limiter rejects a waiter with "timeout" after queueTimeout', async () => {
  const limiter = new Limiter({ limit: 1, queue: 2, queueTimeout: 20 });
  const held = limiter.tryAcquire()!;
  const started = Date.now();
  await assert.rejects(limiter.acquire(), rejectsWith("timeout"));
  assert.ok(Date.now() - started >= 15);
  assert.equal(limiter.queued, 0);
  assert.equal(limiter.stats().timedOut, 1);
  held.release();
  assert.equal(limiter.active, 0);
});

test("Limiter does not time out a waiter that got its permit in time", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1, queueTimeout: 30 });
  const held = limiter.tryAcquire()!;
  const waiting = limiter.acquire();
  held.release();
  const permit = await waiting;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(limiter.active, 1);
  assert.equal(limiter.stats().timedOut, 0);
  permit.release();
});

test("Limiter removes an aborted waiter at once and rejects with signal.reason", async () => {
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const held = limiter.tryAcquire()!;
  const controller = new AbortController();
  const waiting = limiter.acquire({ signal: controller.signal });
  const other = limiter.acquire();
  const reason = new Error("client left");
  controller.abort(reason);
  assert.equal(limiter.queued, 1);
  await assert.rejects(waiting, (error) => error === reason);
  held.release();
  (await other).release();
  assert.deepEqual(
    { ...limiter.stats(), limit: 0 },
    {
      limit: 0,
      active: 0,
      queued: 0,
      admitted: 2,
      rejected: 0,
      timedOut: 0,
      aborted: 1,
    },
  );
});

test("Limiter rejects an already-aborted signal without queueing", async () => {
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const signal = AbortSignal.abort(new Error("gone"));
  await assert.rejects(limiter.acquire({ signal }), /gone/);
  assert.equal(limiter.active, 0);
  assert.equal(limiter.stats().aborted, 1);
  assert.equal(limiter.stats().admitted, 0);
});

test("Limiter ignores a signal that aborts after the permit was granted", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const held = limiter.tryAcquire()!;
  const controller = new AbortController();
  const waiting = limiter.acquire({ signal: controller.signal });
  held.release();
  controller.abort();
  const permit = await waiting;
  assert.equal(limiter.active, 1);
  assert.equal(limiter.stats().aborted, 0);
  permit.release();
  assert.equal(limiter.active, 0);
});

test("Limiter.close() rejects waiters and later callers, and resolves when permits are back", async () => {
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const held = limiter.tryAcquire()!;
  const waiting = limiter.acquire();
  const closed = limiter.close();
  assert.equal(limiter.close(), closed);
  await assert.rejects(waiting, rejectsWith("closed"));
  await assert.rejects(limiter.acquire(), rejectsWith("closed"));
  assert.equal(limiter.tryAcquire(), undefined);
  assert.equal(await settled(closed), false);
  assert.equal(limiter.active, 1);
  held.release();
  assert.equal(await settled(closed), true);
  assert.equal(limiter.stats().rejected, 3);
});

test("Limiter.close() resolves at once when nothing is held", async () => {
  const limiter = new Limiter();
  assert.equal(await settled(limiter.close()), true);
});

test("Limiter with dryRun grants everything and counts would-be rejections", async () => {
  const limiter = new Limiter({ limit: 1, dryRun: true });
  const permits = [
    limiter.tryAcquire(),
    limiter.tryAcquire(),
    await limiter.acquire(),
  ];
  assert.ok(permits.every((p) => p !== undefined));
  assert.equal(limiter.active, 3);
  assert.equal(limiter.queued, 0);
  const stats = limiter.stats();
  assert.equal(stats.admitted, 3);
  assert.equal(stats.rejected, 2);
  for (const p of permits) p!.release();
  assert.equal(limiter.active, 0);
});

test("Limiter.run() releases the permit whether fn resolves or rejects", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  assert.equal(await limiter.run(() => 42), 42);
  const failure = new Error("boom");
  await assert.rejects(
    limiter.run(() => Promise.reject(failure)),
    (e) => e === failure,
  );
  await assert.rejects(
    limiter.run(() => {
      throw failure;
    }),
    (e) => e === failure,
  );
  assert.equal(limiter.active, 0);
  assert.equal(limiter.stats().admitted, 3);
});

test("Limiter.run() queues when busy and rejects with the limiter's error", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  let running = 0;
  let peak = 0;
  const job = async () => {
    peak = Math.max(peak, ++running);
    await tick();
    running--;
  };
  const first = limiter.run(job);
  const second = limiter.run(job);
  await assert.rejects(limiter.run(job), rejectsWith("full"));
  await Promise.all([first, second]);
  assert.equal(peak, 1);
});

test("Limiter.stats() returns a snapshot of every counter", () => {
  const limiter = new Limiter({ limit: 2, queue: 1 });
  const a = limiter.tryAcquire()!;
  const snapshot = limiter.stats();
  a.release();
  assert.deepEqual(snapshot, {
    limit: 2,
    active: 1,
    queued: 0,
    admitted: 1,
    rejected: 0,
    timedOut: 0,
    aborted: 0,
  });
  assert.equal(limiter.stats().active, 0);
});

test("Limiter removes waiters from the middle of a long queue", async () => {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const held = limiter.tryAcquire()!;
  const controllers = Array.from({ length: 1000 }, () => new AbortController());
  const waits = controllers.map((c) =>
    limiter.acquire({ signal: c.signal }).then((p) => p, () => undefined)
  );
  controllers.forEach((c, i) => i % 2 === 1 && c.abort());
  assert.equal(limiter.queued, 500);
  held.release();
  for (const [i, wait] of waits.entries()) {
    const permit = await wait;
    assert.equal(permit === undefined, i % 2 === 1);
    permit?.release();
  }
  assert.equal(limiter.active, 0);
  assert.equal(limiter.stats().aborted, 500);
});

test("Limiter.run settles every queued synchronous job, however long the queue", async () => {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const held = limiter.tryAcquire()!;
  const jobs = Array.from({ length: 50_000 }, (_, i) => limiter.run(() => i));
  held.release();
  const results = await Promise.all(jobs);
  assert.equal(results.length, 50_000);
  assert.equal(results[49_999], 49_999);
  assert.equal(limiter.active, 0);
  await limiter.close();
});

test("Limiter.run settles 10,000 queued jobs of which most answer synchronously", async () => {
  const limiter = new Limiter({ limit: 10, queue: Infinity });
  const cache = new Map<number, number>();
  const jobs = Array.from({ length: 10_000 }, (_, i) =>
    limiter.run(() => {
      const hit = cache.get(i % 50);
      if (hit !== undefined) return hit;
      return tick().then(() => {
        cache.set(i % 50, i);
        return i;
      });
    }));
  const results = await Promise.allSettled(jobs);
  assert.equal(results.filter((r) => r.status === "fulfilled").length, 10_000);
  assert.deepEqual([limiter.active, limiter.queued], [0, 0]);
  await limiter.close();
});

/** A thenable that breaks the rules: it calls back twice, then fails too. */
const twice: PromiseLike<number> = {
  then(
    onFulfilled?: ((value: number) => unknown) | null,
    onRejected?: ((reason: unknown) => unknown) | null,
  ) {
    onFulfilled?.(1);
    onFulfilled?.(2);
    onRejected?.(new Error("late"));
    return this as unknown as PromiseLike<never>;
  },
};

test("Limiter.run releases exactly once for a thenable that calls back twice", async () => {
  const limiter = new Limiter({ limit: 1, queue: 5 });
  assert.equal(await limiter.run(() => twice), 1);
  const held = limiter.tryAcquire()!;
  const queued = [limiter.run(() => twice), limiter.run(() => twice)];
  held.release();
  assert.deepEqual(await Promise.all(queued), [1, 1]);
  assert.equal(limiter.active, 0);
  const a = limiter.tryAcquire();
  assert.ok(a);
  assert.equal(limiter.tryAcquire(), undefined, "the limit must still hold");
  a.release();
});

test("Limiter.run settles a queued job whose thenable's then throws, and frees the slot", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const broken = {
    then() {
      throw new Error("broken then");
    },
  };
  const held = limiter.tryAcquire()!;
  const queued = limiter.run(() => broken as unknown as PromiseLike<never>);
  held.release();
  await assert.rejects(queued, /broken then/);
  assert.equal(limiter.active, 0);
  await limiter.close();
});

test("Limiter keeps waiters queued with a queueTimeout beyond 2^31-1 ms", async () => {
  for (
    const queueTimeout of [
      2 ** 31,
      30 * 24 * 3600 * 1000,
      Number.MAX_SAFE_INTEGER,
    ]
  ) {
    const limiter = new Limiter({ limit: 1, queue: 1, queueTimeout });
    const held = limiter.tryAcquire()!;
    const waiter = limiter.acquire();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(await settled(waiter), false, `timed out at ${queueTimeout}`);
    held.release();
    (await waiter).release();
    assert.equal(limiter.stats().timedOut, 0);
  }
});

test("Limiter feeds every released permit to the algorithm and applies its limit", async () => {
  const { algorithm, samples } = scripted(2);
  const limiter = new Limiter({ limit: algorithm, queue: 5 });
  assert.equal(limiter.limit, 2);
  const a = limiter.tryAcquire()!;
  const b = limiter.tryAcquire()!;
  const waiting = [limiter.acquire(), limiter.acquire()];
  await new Promise((resolve) => setTimeout(resolve, 15));
  algorithm.limit = 3; // read after the next update
  a.release();
  a.release();
  assert.equal(samples.length, 1);
  assert.ok(samples[0].rtt >= 10, `rtt ${samples[0].rtt}`);
  assert.equal(samples[0].inflight, 1);
  assert.equal(samples[0].dropped, false);
  // Raised to 3: both waiters are admitted at once.
  assert.equal(limiter.limit, 3);
  assert.equal(limiter.active, 3);
  assert.equal(limiter.stats().limit, 3);
  const [c, d] = await Promise.all(waiting);
  algorithm.limit = 1; // lowered: holders keep their permits
  b.release();
  assert.equal(limiter.active, 2);
  assert.equal(samples[1].inflight, 2);
  c.release();
  d.release();
  assert.equal(samples.length, 4);
  assert.equal(limiter.active, 0);
});

test("Limiter tells the algorithm when run() fails and takes a number to go static", async () => {
  const { algorithm, samples } = scripted(4);
  const limiter = new Limiter({ limit: algorithm });
  await assert.rejects(limiter.run(() => Promise.reject(new Error("x"))));
  await limiter.run(() => "fine");
  assert.deepEqual(samples.map((s) => s.dropped), [true, false]);
  limiter.limit = 7;
  algorithm.limit = 1;
  limiter.tryAcquire()!.release();
  assert.equal(samples.length, 2);
  assert.equal(limiter.limit, 7);
  limiter.limit = algorithm;
  assert.equal(limiter.limit, 1);
});

test("Limiter keeps counting right when an algorithm misbehaves", () => {
  const bad: LimitAlgorithm = { limit: 0.5, update() {} };
  const limiter = new Limiter({ limit: bad });
  assert.equal(limiter.limit, 1);
  const nan = { limit: 3, update() {} };
  limiter.limit = nan;
  nan.limit = NaN;
  limiter.tryAcquire()!.release();
  assert.equal(limiter.limit, 1);
  assert.equal(limiter.active, 0);
});

test("Limiter keeps the last good limit and serves on when an algorithm's update throws", async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void errors.push(args);
  try {
    let calls = 0;
    const broken: LimitAlgorithm = {
      get limit() {
        return calls < 3 ? 4 : 2;
      },
      update() {
        if (++calls >= 3) throw new Error("bug in the algorithm");
      },
    };
    const limiter = new Limiter({ limit: broken, queue: 100 });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) => limiter.run(() => tick().then(() => i)),
      ),
    );
    assert.equal(results.length, 20);
    await tick();
    assert.equal(limiter.active, 0);
    assert.equal(limiter.limit, 4, "the last good limit");
    assert.equal(errors.length, 1, "reported once");
  } finally {
    console.error = original;
  }
});

test("Limiter listens once to a signal that many waiters share, and aborts them all", async () => {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const controller = new AbortController();
  let listeners = 0;
  const add = controller.signal.addEventListener.bind(controller.signal);
  controller.signal.addEventListener = ((
    ...args: Parameters<AbortSignal["addEventListener"]>
  ) => {
    listeners++;
    add(...args);
  }) as AbortSignal["addEventListener"];
  const held = limiter.tryAcquire()!;
  const waits = Array.from(
    { length: 1000 },
    () => limiter.acquire({ signal: controller.signal }),
  );
  assert.equal(listeners, 1);
  held.release();
  (await waits[0]).release();
  (await waits[1]).release();
  controller.abort(new Error("batch cancelled"));
  // The third waiter holds the permit the second released.
  const outcomes = await Promise.allSettled(waits.slice(3));
  assert.ok(outcomes.every((o) => o.status === "rejected"));
  assert.equal(limiter.stats().aborted, 997);
  assert.deepEqual([limiter.active, limiter.queued], [1, 0]);
});

test("Limiter keeps a static limit that an algorithm's update switched to", () => {
  const limiter: Limiter = new Limiter({ limit: 1 });
  const algorithm: LimitAlgorithm = {
    limit: 50,
    update() {
      limiter.limit = 3;
    },
  };
  limiter.limit = algorithm;
  limiter.tryAcquire()!.release();
  assert.equal(limiter.limit, 3);
});

test("Limiter grants no waiter whose shared signal aborted, even one a leaving waiter held back", async () => {
  const limiter = new Limiter({ limit: 2, queue: 10 });
  limiter.tryAcquire();
  const controller = new AbortController();
  const wide = limiter.acquire({ weight: 2, signal: controller.signal });
  const narrow = limiter.acquire({ weight: 1, signal: controller.signal });
  controller.abort(new Error("gone"));
  const outcomes = await Promise.allSettled([wide, narrow]);
  assert.deepEqual(outcomes.map((o) => o.status), ["rejected", "rejected"]);
  assert.equal(limiter.active, 1);
  assert.equal(limiter.stats().aborted, 2);
});

test("Limiter.run() releases once and rejects when fn returns a promise it cannot adopt", async () => {
  const boom = new Error("constructor getter");
  const unadoptable = () => {
    const promise = Promise.resolve(1);
    Object.defineProperty(promise, "constructor", {
      get() {
        throw boom;
      },
    });
    return promise;
  };
  const limiter = new Limiter({ limit: 1, queue: 1 });
  await assert.rejects(limiter.run(unadoptable), boom);
  assert.equal(limiter.active, 0);
  const held = limiter.tryAcquire()!;
  const queued = limiter.run(unadoptable);
  held.release();
  await assert.rejects(queued, boom);
  assert.equal(limiter.active, 0);
});
