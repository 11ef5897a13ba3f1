/**
 * Rules P1-P7 of the contract (who gets the capacity: priority, flows,
 * weight), one group of tests a rule, and the `priority`, `flow`, `weight`
 * and `deadline` callbacks of throttle(). The rules together are checked
 * against a model in tests/limiter_property_test.ts; the targets they serve
 * are measured in tests/fairness_test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  type AcquireOptions,
  type LimitAlgorithm,
  Limiter,
  type Permit,
  RejectedError,
  throttle,
  type ThrottleOptions,
} from "../mod.ts";
import { Hono } from "hono";
import { throttle as honoThrottle } from "../hono.ts";
import { deferred, settledHeap, tick } from "./_helpers.ts";
import { random } from "../scripts/_simulator.ts";

const MiB = 2 ** 20;

/** Lets the reactions of every settled promise run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await undefined;
}

/** Acquisitions that note the order in which they are granted. */
function recorder(limiter: Limiter) {
  const granted: string[] = [];
  const permits = new Map<string, Permit>();
  const outcomes = new Map<string, unknown>();
  const acquire = (name: string, options?: AcquireOptions) =>
    limiter.acquire(options).then((permit) => {
      granted.push(name);
      permits.set(name, permit);
    }, (error) => void outcomes.set(name, error));
  /** Releases permits in grant order until `count` more were granted. */
  const serve = async () => {
    for (let done = 0; done < granted.length; done++) {
      permits.get(granted[done])!.release();
      await flush();
    }
  };
  return { granted, permits, outcomes, acquire, serve };
}

const isFull = (error: unknown) =>
  error instanceof RejectedError && error.reason === "full";

// P1 --------------------------------------------------------------------

test("P1: with headroom 0.3 and limit 100, priority 7 stops at 70 held, priority 3 at 87, priority 0 uses all 100", () => {
  const limiter = new Limiter({ limit: 100, headroom: 0.3 });
  const fill = (priority: number) => {
    let n = 0;
    while (limiter.tryAcquire({ priority })) n++;
    return limiter.active;
  };
  assert.equal(fill(7), 70);
  assert.equal(fill(3), 87);
  assert.equal(fill(4), 87); // floor(100 * (1 - 0.3 * 4 / 7)) = 82 < 87
  assert.equal(fill(0), 100);
});

test("P1: the default priority is 3, and every ceiling is at least 1", () => {
  const limiter = new Limiter({ limit: 10, headroom: 0.3 });
  while (limiter.tryAcquire()) { /* fill */ }
  assert.equal(limiter.active, 8); // floor(10 * (1 - 0.3 * 3 / 7))
  const tiny = new Limiter({ limit: 1, headroom: 0.99 });
  assert.ok(tiny.tryAcquire({ priority: 7 }));
  assert.equal(tiny.tryAcquire({ priority: 0 }), undefined);
});

test("P1: a weight above the ceiling is clamped to it, so wide work still runs alone", () => {
  const limiter = new Limiter({ limit: 10, headroom: 0.3, queue: 1 });
  const batch = limiter.tryAcquire({ priority: 7, weight: 50 })!;
  assert.equal(limiter.active, 7); // the ceiling of priority 7
  assert.equal(limiter.tryAcquire({ priority: 7 }), undefined);
  assert.ok(limiter.tryAcquire({ priority: 0, weight: 3 }));
  assert.equal(limiter.active, 10);
  batch.release();
  assert.equal(limiter.active, 3);
  const urgent = limiter.tryAcquire({ priority: 0, weight: 50 });
  assert.equal(urgent, undefined); // 3 + 10 > 10: it needs the whole limit
});

test("P1: an infinite limit has infinite ceilings and takes any weight", () => {
  const limiter = new Limiter({ limit: Infinity, headroom: 0.9 });
  for (let i = 0; i < 1000; i++) {
    assert.ok(limiter.tryAcquire({ priority: 7, weight: 1000 }));
  }
  assert.equal(limiter.active, 1_000_000);
});

test("P1: queue and queued count waiters, not weight", async () => {
  const limiter = new Limiter({ limit: 4, queue: 2 });
  const held = limiter.tryAcquire({ weight: 4 })!;
  const a = limiter.acquire({ weight: 3 });
  const b = limiter.acquire({ weight: 3 });
  assert.equal(limiter.queued, 2);
  await assert.rejects(limiter.acquire(), isFull);
  held.release();
  (await a).release();
  (await b).release();
  assert.equal(limiter.active, 0);
});

// P2 --------------------------------------------------------------------

test("P2: the most urgent waiter is granted first", async () => {
  const limiter = new Limiter({ limit: 1, queue: 10 });
  const { granted, acquire, serve } = recorder(limiter);
  await acquire("holder");
  for (const priority of [7, 3, 0, 5]) acquire(`p${priority}`, { priority });
  await serve();
  assert.deepEqual(granted, ["holder", "p0", "p3", "p5", "p7"]);
});

test("P2: flows of one priority take turns, in the order in which they became backlogged", async () => {
  const limiter = new Limiter({ limit: 1, queue: 10 });
  const { granted, acquire, serve } = recorder(limiter);
  await acquire("holder");
  for (const name of ["a1", "a2", "a3", "b1", "b2", "c1"]) {
    acquire(name, { flow: name[0] });
  }
  await serve();
  assert.deepEqual(granted, ["holder", "a1", "b1", "c1", "a2", "b2", "a3"]);
});

test("P2: a flow whose last waiter leaves drops out of the turn and rejoins at the back", async () => {
  const limiter = new Limiter({ limit: 1, queue: 10 });
  const { granted, acquire, serve } = recorder(limiter);
  await acquire("holder");
  const controller = new AbortController();
  acquire("a1", { flow: "a" });
  acquire("b1", { flow: "b", signal: controller.signal });
  acquire("c1", { flow: "c" });
  controller.abort();
  await flush();
  acquire("b2", { flow: "b" });
  await serve();
  assert.deepEqual(granted, ["holder", "a1", "c1", "b2"]);
});

for (const order of ["fifo", "lifo"] as const) {
  test(`P2: within one flow, ${order} decides`, async () => {
    const limiter = new Limiter({ limit: 1, queue: 10, order });
    const { granted, acquire, serve } = recorder(limiter);
    await acquire("holder");
    for (const name of ["a1", "a2", "a3", "b1"]) {
      acquire(name, { flow: name[0] });
    }
    await serve();
    assert.deepEqual(
      granted,
      order === "fifo"
        ? ["holder", "a1", "b1", "a2", "a3"]
        : ["holder", "a3", "b1", "a2", "a1"],
    );
  });
}

test("P2: while two flows stay backlogged, the weight granted to them differs by at most 3 times the largest weight queued", async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rand = random(seed);
    const limiter = new Limiter({ limit: 16, queue: Infinity });
    const grants: Array<{ flow: string; weight: number }> = [];
    const permits: Permit[] = [];
    const holder = limiter.tryAcquire({ weight: 16 })!;
    const left = { a: 0, b: 0 };
    const ask = (flow: "a" | "b", weight: number) => {
      left[flow]++;
      limiter.acquire({ flow, weight }).then((permit) => {
        grants.push({ flow, weight: Math.min(weight, 16) });
        permits.push(permit);
      }, () => {}); // closed at the end
    };
    // Flow a asks for narrow work, flow b for a mix up to weight 8.
    for (let i = 0; i < 300; i++) ask("a", rand() < 0.9 ? 1 : 2);
    for (let i = 0; i < 100; i++) ask("b", 1 + Math.floor(rand() * 8));
    holder.release();
    await flush();
    // Release in grant order, one at a time, while both are backlogged.
    let difference = 0;
    let lowest = 0;
    let highest = 0;
    let seen = 0;
    let next = 0;
    while (left.a > 0 && left.b > 0) {
      for (; seen < grants.length && left.a > 0 && left.b > 0; seen++) {
        const { flow, weight } = grants[seen];
        left[flow as "a" | "b"]--;
        difference += flow === "a" ? weight : -weight;
        lowest = Math.min(lowest, difference);
        highest = Math.max(highest, difference);
      }
      if (next === permits.length) break;
      permits[next++].release();
      await flush();
    }
    assert.ok(
      highest - lowest <= 3 * 8,
      `seed ${seed}: the difference moved over ${highest - lowest}`,
    );
    assert.ok(grants.length > 50, `seed ${seed}: only ${grants.length}`);
    void limiter.close();
  }
});

// P3 --------------------------------------------------------------------

/** A limit of 4 with 3 held and a wide waiter (weight 4) first in line. */
function wideFirst(queueTimeout = Infinity) {
  const limiter = new Limiter({ limit: 4, queue: 10, queueTimeout });
  const held = [0, 1, 2].map(() => limiter.tryAcquire()!);
  const controller = new AbortController();
  const wide = limiter.acquire({ weight: 4, signal: controller.signal });
  const narrow = limiter.acquire();
  return { limiter, held, controller, wide, narrow };
}

test("P3: a wide first waiter is not overtaken by narrow ones that would fit", async () => {
  const { limiter, held, wide, narrow } = wideFirst();
  assert.equal(limiter.active, 3);
  assert.equal(limiter.tryAcquire(), undefined, "tryAcquire overtook");
  held[0].release();
  held[1].release();
  await flush();
  assert.equal(limiter.active, 1);
  assert.equal(limiter.queued, 2, "the narrow waiter overtook");
  held[2].release();
  const permit = await wide;
  assert.equal(limiter.active, 4);
  assert.equal(limiter.queued, 1);
  permit.release();
  (await narrow).release();
  assert.equal(limiter.active, 0);
});

test("P3: when the wide first waiter aborts, the next one is granted at once if it fits", async () => {
  const { limiter, controller, wide, narrow } = wideFirst();
  controller.abort();
  await assert.rejects(wide);
  await narrow;
  assert.equal(limiter.active, 4);
  assert.equal(limiter.queued, 0);
});

test("P3: when the wide first waiter times out, the next one is granted at once if it fits", async () => {
  const { limiter, wide, narrow } = wideFirst(10);
  // The narrow waiter times out too, later, unless it is granted first.
  const late = deferred<string>();
  narrow.then(() => late.resolve("granted"), () => late.resolve("dropped"));
  await assert.rejects(
    wide,
    (error) => error instanceof RejectedError && error.reason === "timeout",
  );
  await flush();
  assert.equal(await late.promise, "granted");
  assert.equal(limiter.active, 4);
});

test("P3: when the wide first waiter is evicted, the next one is granted at once if it fits", async () => {
  // With lifo the newest waiter of a flow is first in line, and the newest
  // is also the one a full queue evicts.
  const limiter = new Limiter({ limit: 4, queue: 2, order: "lifo" });
  const held = [0, 1, 2, 3].map(() => limiter.tryAcquire()!);
  const narrow = limiter.acquire({ priority: 5 });
  const wide = limiter.acquire({ priority: 5, weight: 4 });
  held[0].release();
  await flush();
  assert.equal(limiter.queued, 2, "the narrow waiter overtook");
  const urgent = limiter.acquire({ priority: 0, weight: 4 });
  await assert.rejects(wide, isFull);
  await narrow;
  assert.equal(limiter.active, 4);
  assert.equal(limiter.queued, 1);
  void urgent.catch(() => {});
  void limiter.close(); // the waiters left fail
});

test("P3: less urgent waiters never block more urgent newcomers", async () => {
  const limiter = new Limiter({ limit: 3, queue: 10 });
  limiter.tryAcquire()!;
  const batch = limiter.acquire({ priority: 7, weight: 3 });
  void batch.catch(() => {});
  assert.equal(limiter.queued, 1);
  assert.equal(
    limiter.tryAcquire({ priority: 7 }),
    undefined,
    "overtook a waiter of its own priority",
  );
  assert.ok(limiter.tryAcquire({ priority: 6 }));
  await limiter.acquire({ priority: 0 });
  assert.equal(limiter.active, 3);
  assert.equal(limiter.queued, 1);
  void limiter.close(); // the waiters left fail
});

// P4 --------------------------------------------------------------------

test("P4: a full queue evicts the newest waiter of the longest flow of the least urgent priority, counted in rejected", async () => {
  const limiter = new Limiter({ limit: 1, queue: 4 });
  const { acquire, outcomes } = recorder(limiter);
  await acquire("holder");
  acquire("a1", { priority: 7, flow: "a" });
  acquire("a2", { priority: 7, flow: "a" });
  acquire("b1", { priority: 7, flow: "b" });
  acquire("c1", { priority: 5, flow: "c" });
  const before = limiter.stats().rejected;
  acquire("new1", { priority: 3 });
  await flush();
  assert.deepEqual([...outcomes.keys()], ["a2"]);
  assert.ok(isFull(outcomes.get("a2")));
  assert.equal(limiter.queued, 4);
  assert.equal(limiter.stats().rejected, before + 1);
  // Priority 7 is emptied before priority 5 loses anyone.
  acquire("new2", { priority: 3 });
  acquire("new3", { priority: 3 });
  await flush();
  assert.deepEqual(new Set(outcomes.keys()), new Set(["a2", "a1", "b1"]));
  acquire("new4", { priority: 3 });
  await flush();
  assert.ok(isFull(outcomes.get("c1")));
  assert.equal(limiter.stats().rejected, before + 4);
  void limiter.close(); // the waiters left fail
});

test("P4: at its own priority, a newcomer evicts from a flow with at least two more waiters than its own, else it is rejected", async () => {
  const limiter = new Limiter({ limit: 1, queue: 3 });
  const { acquire, outcomes } = recorder(limiter);
  await acquire("holder");
  for (const name of ["h1", "h2", "h3"]) acquire(name, { flow: "heavy" });
  acquire("l1", { flow: "light" }); // heavy 3 >= 0 + 2: h3 goes
  await flush();
  assert.deepEqual([...outcomes.keys()], ["h3"]);
  acquire("l2", { flow: "light" }); // heavy 2 < 1 + 2: l2 is turned away
  acquire("h4", { flow: "heavy" }); // its own flow is the longest
  acquire("x1", { flow: "x", priority: 7 }); // less urgent: turned away
  await flush();
  for (const name of ["h3", "l2", "h4", "x1"]) {
    assert.ok(isFull(outcomes.get(name)), name);
  }
  assert.equal(limiter.queued, 3);
  assert.equal(limiter.stats().rejected, 4);
  void limiter.close(); // the waiters left fail
});

test("P4: a more urgent waiter is never evicted for a less urgent newcomer", async () => {
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const { acquire, outcomes } = recorder(limiter);
  await acquire("holder");
  acquire("u1", { priority: 0, flow: "u" });
  acquire("u2", { priority: 0, flow: "u" });
  acquire("b1", { priority: 1, flow: "b" });
  await flush();
  assert.deepEqual([...outcomes.keys()], ["b1"]);
  assert.equal(limiter.queued, 2);
  void limiter.close(); // the waiters left fail
});

// P5 --------------------------------------------------------------------

test("P5: a million distinct flows that queued and left leave the heap at its baseline", async () => {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const noop = () => {};
  // Small batches: waiters that die young keep the collector's work (and
  // the test's time) small.
  const BATCH = 1000;
  const batch = async (from: number) => {
    const holder = limiter.tryAcquire()!;
    const runs = [];
    for (let i = from; i < from + BATCH; i++) {
      runs.push(limiter.run(noop, { flow: `flow-${i}`, priority: i % 8 }));
    }
    holder.release();
    await Promise.all(runs);
  };
  for (let from = 0; from < 20_000; from += BATCH) await batch(from); // warm up
  const before = await settledHeap();
  let most = 0;
  for (let from = 20_000; from < 1_020_000; from += BATCH) {
    const done = batch(from);
    most = Math.max(most, limiter.queued);
    await done;
  }
  const after = await settledHeap();
  console.log(
    `P5: 1,000,000 distinct flows, up to ${most} queued at once; heap ${
      ((after - before) / MiB).toFixed(2)
    } MiB over baseline`,
  );
  assert.equal(most, BATCH - 1);
  assert.equal(limiter.queued, 0);
  // And the holders, one a batch.
  assert.equal(limiter.stats().admitted, 1_020_000 + 1_020_000 / BATCH);
  // A flow left behind would cost far more than 4 bytes each.
  assert.ok(after - before < 4 * MiB, `heap grew ${after - before} bytes`);
});

// P6 --------------------------------------------------------------------

test("P6: dryRun admits everything, evicts no one and counts the would-be rejections", () => {
  const limiter = new Limiter({
    limit: 2,
    queue: 1,
    headroom: 0.5,
    dryRun: true,
  });
  const permits = [];
  for (const priority of [7, 7, 7, 0, 0, 3]) {
    const permit = limiter.tryAcquire({ priority, flow: `f${priority}` });
    assert.ok(permit, `priority ${priority} was not admitted`);
    permits.push(permit);
  }
  // Priority 7's ceiling is 1: its 2nd and 3rd, and everything after the
  // limit of 2 was reached, would have waited or been rejected.
  const stats = limiter.stats();
  assert.equal(stats.active, 6);
  assert.equal(stats.queued, 0);
  assert.equal(stats.admitted, 6);
  assert.equal(stats.rejected, 5);
});

test("P6: with dryRun, acquire never waits, whatever its priority or weight", async () => {
  const limiter = new Limiter({ limit: 2, queue: 0, dryRun: true });
  for (const [priority, weight] of [[7, 2], [0, 5], [3, 1]]) {
    await limiter.acquire({ priority, weight, flow: "x" });
  }
  assert.equal(limiter.active, 5); // weights clamp to the limit: 2 + 2 + 1
  assert.equal(limiter.stats().rejected, 2);
});

// P7 --------------------------------------------------------------------

test("P7: an adaptive limit moves the ceilings with it, and a waiter that now fits is admitted", async () => {
  const algorithm: { limit: number; next: number } & LimitAlgorithm = {
    limit: 10,
    next: 20,
    update() {
      this.limit = this.next;
    },
  };
  const limiter = new Limiter({ limit: algorithm, headroom: 0.5, queue: 5 });
  const batch = [];
  for (let p; (p = limiter.tryAcquire({ priority: 7 }));) batch.push(p);
  assert.equal(batch.length, 5); // floor(10 * (1 - 0.5))
  const waiting = limiter.acquire({ priority: 7 });
  batch[0].release(); // the algorithm raises the limit to 20
  await waiting;
  for (let p; (p = limiter.tryAcquire({ priority: 7 }));) batch.push(p);
  assert.equal(limiter.active, 10); // floor(20 * (1 - 0.5))
  algorithm.next = 4;
  batch[1].release(); // down to 4: priority 7's ceiling is 2
  assert.equal(limiter.limit, 4);
  assert.equal(limiter.tryAcquire({ priority: 7 }), undefined);
  assert.equal(limiter.tryAcquire({ priority: 0 }), undefined);
});

// throttle() callbacks ---------------------------------------------------

const request = (query = "") => new Request(`http://x/${query}`);
const param = (name: string) => (r: Request) =>
  new URL(r.url).searchParams.get(name);

test("throttle() grants by the priority its callback gives each request", async () => {
  const gate = deferred();
  const served: string[] = [];
  const handler = throttle(async (r: Request) => {
    served.push(new URL(r.url).pathname);
    if (served.length === 1) await gate.promise;
    return new Response();
  }, {
    limit: 1,
    queue: 10,
    priority: (r) => Number(param("u")(r) ?? 3),
    flow: (r) => param("flow")(r) ?? "none",
  });
  const answers = [
    handler(request("first")),
    handler(request("batch1?u=7&flow=a")),
    handler(request("batch2?u=7&flow=a")),
    handler(request("batch3?u=7&flow=b")),
    handler(request("checkout?u=0")),
  ];
  await tick();
  gate.resolve();
  await Promise.all(answers);
  assert.deepEqual(served, [
    "/first",
    "/checkout",
    "/batch1",
    "/batch3",
    "/batch2",
  ]);
});

test("throttle() weighs each request by its weight callback", async () => {
  const gate = deferred();
  let running = 0;
  let most = 0;
  const handler = throttle(async () => {
    most = Math.max(most, ++running);
    await gate.promise;
    running--;
    return new Response();
  }, {
    limit: 4,
    queue: 10,
    weight: (r) => Number(param("w")(r) ?? 1),
  });
  const answers = [
    handler(request("?w=2")),
    handler(request("?w=2")),
    handler(request("?w=1")),
  ];
  await tick();
  assert.equal(handler.stats().active, 4);
  assert.equal(handler.stats().queued, 1);
  gate.resolve();
  await Promise.all(answers);
  assert.equal(most, 2);
});

for (
  const [option, value, error] of [
    ["priority", 8, RangeError],
    ["priority", 1.5, RangeError],
    ["priority", "0", TypeError],
    ["flow", 42, TypeError],
    ["weight", 0, RangeError],
    ["weight", NaN, RangeError],
    ["deadline", -1, RangeError],
    ["deadline", "soon", TypeError],
  ] as const
) {
  test(
    `throttle(): a ${option} callback returning ${
      typeof value === "string" ? JSON.stringify(value) : String(value)
    } fails only that request, with a ${error.name} naming it`,
    async () => {
      const options = {
        limit: 1,
        queue: 1,
        [option]: (r: Request) => r.url.endsWith("bad") ? value : undefined,
      } as ThrottleOptions;
      const handler = throttle(() => new Response("ok"), options);
      assert.throws(
        () => handler(request("bad")),
        (thrown) =>
          thrown instanceof error &&
          (thrown as Error).message.includes(`"${option}"`),
      );
      const answer = await handler(request("good"));
      assert.equal(await answer.text(), "ok");
      const stats = handler.stats();
      assert.equal(stats.active, 0);
      assert.equal(stats.admitted, 1);
    },
  );
}

test("the Hono middleware gives the priority and flow callbacks the Context, so a route can decide", async () => {
  const gate = deferred();
  const served: string[] = [];
  const limit = honoThrottle({
    limit: 1,
    queue: 10,
    priority: (c) => c.req.path.startsWith("/checkout") ? 0 : 7,
    flow: (c) => c.req.header("x-client") ?? "anonymous",
  });
  const app = new Hono().use(limit).get("/*", async (c) => {
    served.push(`${c.req.path} ${c.req.header("x-client") ?? ""}`.trim());
    if (served.length === 1) await gate.promise;
    return c.text("ok");
  });
  const as = (client: string) => ({ headers: { "x-client": client } });
  const answers = [
    app.request("/first"),
    app.request("/batch", as("a")),
    app.request("/batch", as("a")),
    app.request("/batch", as("b")),
    app.request("/checkout"),
  ];
  await tick();
  gate.resolve();
  for (const answer of await Promise.all(answers)) {
    assert.equal(answer.status, 200);
  }
  assert.deepEqual(served, [
    "/first",
    "/checkout",
    "/batch a",
    "/batch b",
    "/batch a",
  ]);
});
