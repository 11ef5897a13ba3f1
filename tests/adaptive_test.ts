import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  aimd,
  gradient,
  type LimitAlgorithm,
  Limiter,
  type LimitSample,
  throttle,
  vegas,
} from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";
import { type Completion, type Phase, simulate } from "./_simulator.ts";
import { tick } from "./_helpers.ts";

const BASE = 10; // ms of service time

/** Figures of one phase of a simulation. */
function judge(completions: Completion[], capacity: number) {
  const settle = completions.slice(1900, 2000);
  const inBand =
    settle.filter((c) => c.limit >= 0.7 * capacity && c.limit <= 1.5 * capacity)
      .length;
  const steady = completions.slice(2000);
  const limits = steady.map((c) => c.limit);
  const mean = limits.reduce((a, b) => a + b, 0) / limits.length;
  const variance = limits.reduce((a, b) => a + (b - mean) ** 2, 0) /
    limits.length;
  const elapsed = steady.at(-1)!.time - completions[1999].time;
  return {
    inBand,
    cv: Math.sqrt(variance) / mean,
    goodput: steady.length / elapsed / (capacity / BASE),
    latency: steady.reduce((a, c) => a + c.rtt, 0) / steady.length / BASE,
  };
}

/** The limit every 50 completions, for a failure message. */
function trajectory(completions: Completion[]): string {
  return completions.filter((_, i) => i % 50 === 0)
    .map((c) => `${c.capacity}:${c.limit}`).join(" ");
}

const factories = { aimd, vegas, gradient };

for (const [name, factory] of Object.entries(factories)) {
  for (const capacity of [4, 32, 256]) {
    test(`${name}() settles near capacity ${capacity}, after it halves and after it doubles back`, () => {
      // Each phase: 2,000 completions to settle, then a steady stretch long
      // enough to span many service times.
      const length = 2000 + Math.max(1000, 20 * capacity);
      const phases: Phase[] = [capacity, capacity / 2, capacity].map((c) => ({
        capacity: c,
        completions: length,
      }));
      const out = simulate(factory({ min: 1, max: 10 * capacity }), phases, {
        base: BASE,
        jitter: 0.05,
        clients: 10 * capacity,
        seed: 7,
      });
      phases.forEach((phase, i) => {
        const figures = judge(
          out.slice(i * length, (i + 1) * length),
          phase.capacity,
        );
        const where = `phase ${i + 1} (capacity ${phase.capacity}): ${
          JSON.stringify(figures)
        }\ntrajectory (capacity:limit): ${trajectory(out)}`;
        assert.ok(figures.inBand >= 90, `did not settle; ${where}`);
        assert.ok(figures.cv <= 0.25, `limit unsteady; ${where}`);
        assert.ok(figures.goodput >= 0.85, `goodput too low; ${where}`);
        assert.ok(figures.latency <= 2, `latency too high; ${where}`);
      });
    });
  }
}

/** An algorithm that records its samples and returns a scripted limit. */
function scripted(limit: number) {
  const samples: LimitSample[] = [];
  const algorithm = {
    limit,
    update(sample: LimitSample) {
      samples.push(sample);
    },
  };
  return { algorithm, samples };
}

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

test("throttle() with an adaptive limit counts a handler that throws as dropped", async () => {
  const { algorithm, samples } = scripted(10);
  const handler = throttle((request: Request) => {
    if (request.url.endsWith("/throw")) throw new Error("sync");
    if (request.url.endsWith("/reject")) {
      return Promise.reject(new Error("async"));
    }
    return Promise.resolve(new Response("ok"));
  }, { limit: algorithm });
  assert.throws(() => handler(new Request("http://x/throw")));
  await assert.rejects(
    Promise.resolve(handler(new Request("http://x/reject"))),
  );
  await handler(new Request("http://x/fine"));
  await tick();
  assert.deepEqual(samples.map((s) => s.dropped), [true, true, false]);
  assert.equal(handler.stats().active, 0);
});

test("Hono throttle() with an adaptive limit counts a route that threw as dropped", async () => {
  const { algorithm, samples } = scripted(10);
  const app = new Hono()
    .use(honoThrottle({ limit: algorithm }))
    .get("/fail", () => {
      throw new Error("route");
    })
    .get("/", (c) => c.text("ok"))
    .onError((_error, c) => c.text("handled", 500));
  assert.equal((await app.request("/fail")).status, 500);
  assert.equal((await app.request("/")).status, 200);
  assert.deepEqual(samples.map((s) => s.dropped), [true, false]);
});

test("dryRun with an adaptive limit reports the would-be limit and rejections, enforcing nothing", async () => {
  const algorithm = aimd({ min: 1, initial: 4, max: 100 });
  const handler = throttle(async () => {
    await new Promise((resolve) => setTimeout(resolve, 2));
    return new Response("ok");
  }, { limit: algorithm, dryRun: true });
  // The limit is 4 from the start: of 5 at once, 1 would be rejected, but
  // all are served.
  const burst = () =>
    Promise.all(
      Array.from({ length: 5 }, () => handler(new Request("http://x/"))),
    );
  assert.ok((await burst()).every((r) => r.status === 200));
  let stats = handler.stats();
  assert.deepEqual([stats.limit, stats.admitted, stats.rejected], [4, 5, 1]);
  assert.ok((await burst()).every((r) => r.status === 200));
  stats = handler.stats();
  // Shadow mode: the limit shown is the one the algorithm would enforce.
  assert.equal(stats.limit, algorithm.limit);
  assert.deepEqual([stats.admitted, stats.active], [10, 0]);
  assert.equal(stats.active, 0);
});

test("aimd(), vegas() and gradient() check their options when created", () => {
  for (const factory of Object.values(factories)) {
    assert.throws(() => factory({ min: 0 }), RangeError);
    assert.throws(() => factory({ max: 1.5 }), RangeError);
    assert.throws(() => factory({ initial: 50, max: 10 }), RangeError);
    assert.throws(() => factory({ initial: 2, min: 5 }), RangeError);
    assert.throws(() => factory({ min: "1" as never }), TypeError);
    assert.throws(() => factory({ colour: 1 } as never), TypeError);
    assert.equal(factory({ min: 3 }).limit, 20);
    assert.equal(factory({ min: 30 }).limit, 30);
  }
  assert.throws(
    () => aimd({ backoff: 1 }),
    /"backoff" must be a number > 0 and < 1, got 1/,
  );
  assert.throws(() => aimd({ backoff: 0 }), RangeError);
  assert.throws(() => aimd({ tolerance: 0.5 }), RangeError);
  assert.throws(() => aimd({ increase: 0 }), RangeError);
  assert.throws(() => vegas({ alpha: 0 }), RangeError);
  assert.throws(() => vegas({ alpha: 0.3, beta: 0.2 }), RangeError);
  assert.throws(() => gradient({ smoothing: 0 }), RangeError);
  assert.throws(() => gradient({ queue: 2 }), RangeError);
  assert.throws(() => gradient({ tolerance: NaN }), RangeError);
});

test("aimd(), vegas() and gradient() start at initial and hold it through a burst", async () => {
  for (const make of [aimd, vegas, gradient]) {
    assert.equal(make({ initial: 7 }).limit, 7);
    assert.equal(make().limit, 20);
    const gates: Array<() => void> = [];
    const fetch = throttle(
      () =>
        new Promise<Response>((resolve) =>
          gates.push(() => resolve(new Response("ok")))
        ),
      { limit: make() },
    );
    const burst = Array.from(
      { length: 20 },
      () => fetch(new Request("http://localhost/")),
    );
    assert.equal(fetch.stats().active, 20);
    for (const open of gates) open();
    const statuses = (await Promise.all(burst)).map((r) => r.status);
    assert.deepEqual(new Set(statuses), new Set([200]));
  }
});

test("aimd(), vegas() and gradient() stay finite and steady when the clock does not move", () => {
  for (const make of [aimd, vegas, gradient]) {
    const algorithm = make({ initial: 10 });
    for (let i = 0; i < 100; i++) {
      algorithm.update({ rtt: 0, inflight: algorithm.limit, dropped: false });
    }
    assert.ok(
      Number.isInteger(algorithm.limit),
      `${make.name}: ${algorithm.limit}`,
    );
    assert.ok(algorithm.limit >= 10, `${make.name} fell to ${algorithm.limit}`);
    const before = algorithm.limit;
    // A steady latency measured later is not congestion.
    for (let i = 0; i < 500; i++) {
      algorithm.update({
        rtt: i % 2 === 0 ? 0 : 3,
        inflight: algorithm.limit,
        dropped: false,
      });
    }
    assert.ok(
      algorithm.limit >= before,
      `${make.name} fell from ${before} to ${algorithm.limit}`,
    );
  }
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
