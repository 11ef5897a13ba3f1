import { test } from "node:test";
import assert from "node:assert/strict";
import { aimd, gradient, throttle, vegas } from "../mod.ts";
import {
  type Completion,
  type Phase,
  simulate,
} from "../scripts/_simulator.ts";

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
