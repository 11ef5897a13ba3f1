import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import {
  type AdmittedEvent,
  Limiter,
  type Observer,
  type Permit,
  type RejectedEvent,
  type ReleasedEvent,
  throttle,
} from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";
import { deferred, tick } from "./_helpers.ts";

type Event =
  | ["admitted", AdmittedEvent]
  | ["rejected", RejectedEvent]
  | ["released", ReleasedEvent];

/** An observer that records every event in order. */
function recorder() {
  const events: Event[] = [];
  const observer: Observer = {
    admitted: (event) => void events.push(["admitted", event]),
    rejected: (event) => void events.push(["rejected", event]),
    released: (event) => void events.push(["released", event]),
  };
  const count = (name: string, reason?: string) =>
    events.filter(([n, e]) =>
      n === name &&
      (reason === undefined || (e as RejectedEvent).reason === reason)
    ).length;
  return { events, observer, count };
}

/** Replaces console.error while `fn` runs; returns what it received. */
async function capturingErrors(fn: () => unknown): Promise<unknown[][]> {
  const calls: unknown[][] = [];
  const original = console.error;
  console.error = (...data: unknown[]) => void calls.push(data);
  try {
    await fn();
  } finally {
    console.error = original;
  }
  return calls;
}

test("Limiter.observe() reports admitted, rejected and released with their figures", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const { events, observer } = recorder();
  limiter.observe(observer);
  const held = limiter.tryAcquire()!;
  assert.equal(limiter.tryAcquire(), undefined);
  const waiting = limiter.acquire({ priority: 1 });
  await assert.rejects(limiter.acquire(), { reason: "full" });
  await new Promise((resolve) => setTimeout(resolve, 30));
  held.release();
  const permit = await waiting;
  permit.release();
  assert.deepEqual(
    events.map(([name, e]) => [name, (e as RejectedEvent).reason]),
    [
      ["admitted", undefined],
      ["rejected", "full"],
      ["rejected", "full"],
      ["released", undefined],
      ["admitted", undefined],
      ["released", undefined],
    ],
  );
  const [, first] = events[0] as ["admitted", AdmittedEvent];
  assert.deepEqual(first, { wait: 0, priority: 3, weight: 1 });
  assert.deepEqual(events[1][1], { reason: "full", wait: 0, priority: 3 });
  const [, freed] = events[3] as ["released", ReleasedEvent];
  assert.ok(freed.hold >= 25, `hold ${freed.hold}`);
  assert.equal(freed.dropped, false);
  assert.equal(freed.weight, 1);
  const [, second] = events[4] as ["admitted", AdmittedEvent];
  assert.ok(second.wait >= 25, `wait ${second.wait}`);
  assert.equal(second.priority, 1);
  assert.equal("key" in second, false);
});

test("Limiter.observe() added while callers wait times their wait from then on", async () => {
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const held = limiter.tryAcquire()!;
  const granted = limiter.acquire({ flow: "a" });
  const aborting = new AbortController();
  const aborted = limiter.acquire({ signal: aborting.signal });
  await new Promise((resolve) => setTimeout(resolve, 30));
  const { events, observer } = recorder();
  const observedFrom = performance.now();
  limiter.observe(observer);
  aborting.abort();
  await assert.rejects(aborted);
  held.release();
  (await granted).release();
  const observedFor = performance.now() - observedFrom;
  const waits = events.flatMap(([name, e]) =>
    name === "released" ? [] : [(e as AdmittedEvent | RejectedEvent).wait]
  );
  assert.equal(waits.length, 2);
  for (const wait of waits) {
    // Measured from the observe() call, not from when they queued, 30 ms
    // earlier; not measured at all would be NaN.
    assert.ok(wait >= 0 && wait <= observedFor, `wait ${wait}`);
  }
});

test("Limiter.observe() sees every reason, and the events agree with stats()", async () => {
  const limiter = new Limiter({ limit: 1, queue: 3, queueTimeout: 20 });
  const { observer, count, events } = recorder();
  limiter.observe(observer);
  const held = limiter.tryAcquire()!;
  const timedOut = limiter.acquire();
  const controller = new AbortController();
  const aborted = limiter.acquire({ signal: controller.signal });
  const alreadyAborted = limiter.acquire({ signal: AbortSignal.abort() });
  controller.abort();
  await assert.rejects(aborted);
  await assert.rejects(alreadyAborted);
  await assert.rejects(timedOut, { reason: "timeout" });
  const closedWhileWaiting = limiter.acquire();
  const closing = limiter.close();
  await assert.rejects(closedWhileWaiting, { reason: "closed" });
  await assert.rejects(limiter.acquire(), { reason: "closed" });
  assert.equal(limiter.tryAcquire(), undefined);
  held.release();
  await closing;

  const stats = limiter.stats();
  assert.equal(count("admitted"), stats.admitted);
  assert.equal(
    count("rejected", "full") + count("rejected", "closed"),
    stats.rejected,
  );
  assert.equal(count("rejected", "timeout"), stats.timedOut);
  assert.equal(count("rejected", "aborted"), stats.aborted);
  assert.equal(count("released"), 1);
  assert.deepEqual(
    [stats.admitted, stats.rejected, stats.timedOut, stats.aborted],
    [1, 3, 1, 2],
  );
  const timeout = events.find(([n, e]) =>
    n === "rejected" && (e as RejectedEvent).reason === "timeout"
  )![1] as RejectedEvent;
  assert.ok(timeout.wait >= 15, `wait ${timeout.wait}`);
  const instant = events.find(([n, e]) =>
    n === "rejected" && (e as RejectedEvent).reason === "aborted"
  )![1] as RejectedEvent;
  assert.equal(instant.wait, 0);
});

test("Limiter.observe() reports the weight held and a job that failed as dropped", async () => {
  const limiter = new Limiter({ limit: 4 });
  const { events, observer } = recorder();
  limiter.observe(observer);
  await limiter.run(() => "ok", { weight: 3, priority: 6 });
  await assert.rejects(limiter.run(() => Promise.reject(new Error("boom"))));
  assert.deepEqual(events.map(([n]) => n), [
    "admitted",
    "released",
    "admitted",
    "released",
  ]);
  assert.equal((events[0][1] as AdmittedEvent).weight, 3);
  assert.equal((events[0][1] as AdmittedEvent).priority, 6);
  assert.equal((events[1][1] as ReleasedEvent).weight, 3);
  assert.equal((events[1][1] as ReleasedEvent).priority, 6);
  assert.equal((events[1][1] as ReleasedEvent).dropped, false);
  assert.equal((events[3][1] as ReleasedEvent).dropped, true);
});

test("Limiter.observe() under dryRun reports a would-be rejection and the grant", () => {
  const limiter = new Limiter({ limit: 1, dryRun: true });
  const { events, observer } = recorder();
  limiter.observe(observer);
  limiter.tryAcquire();
  limiter.tryAcquire();
  assert.deepEqual(events.map(([n]) => n), [
    "admitted",
    "rejected",
    "admitted",
  ]);
  const stats = limiter.stats();
  assert.deepEqual([stats.admitted, stats.rejected], [2, 1]);
});

test("an observer that throws is reported once and the next observers still get the event", async () => {
  const limiter = new Limiter({ limit: 1 });
  const boom = new Error("observer bug");
  const later = recorder();
  limiter.observe({
    admitted() {
      throw boom;
    },
    released() {
      throw boom;
    },
  });
  limiter.observe(later.observer);
  const errors = await capturingErrors(async () => {
    for (let i = 0; i < 3; i++) {
      assert.equal(await limiter.run(() => i), i);
    }
  });
  assert.equal(errors.length, 1);
  assert.equal(errors[0][1], boom);
  assert.equal(later.count("admitted"), 3);
  assert.equal(later.count("released"), 3);
  assert.equal(limiter.active, 0);
  assert.equal(limiter.stats().admitted, 3);
});

test("an observer whose method getter or proxy throws breaks nothing and leaks no capacity", async () => {
  const boom = new Error("getter bug");
  let armed = false;
  const getter = {
    get admitted() {
      if (armed) throw boom;
      return undefined;
    },
  };
  const proxy = new Proxy({}, {
    get() {
      if (armed) throw boom;
      return undefined;
    },
  });
  for (const bad of [getter, proxy]) {
    armed = false;
    const limiter = new Limiter({ limit: 1 });
    const fetch = throttle(() => new Response("ok"), { limit: 1 });
    const later = recorder();
    limiter.observe(bad as Observer);
    limiter.observe(later.observer);
    fetch.observe(bad as Observer);
    fetch.observe(later.observer);
    armed = true;
    const errors = await capturingErrors(async () => {
      for (let i = 0; i < 3; i++) {
        const permit = limiter.tryAcquire();
        assert.ok(permit);
        permit.release();
        assert.equal(await limiter.run(() => i), i);
        assert.equal((await fetch(new Request("http://x/"))).status, 200);
      }
    });
    assert.ok(errors.length >= 1);
    assert.ok(errors.every((call) => call[1] === boom));
    assert.equal(limiter.active, 0);
    assert.equal(fetch.stats().active, 0);
    assert.equal(later.count("admitted"), 9);
    assert.equal(later.count("released"), 9);
    assert.equal(limiter.stats().admitted, 6);
  }
});

test("an observer whose error the console cannot print breaks nothing and leaks no capacity", () => {
  const limiter = new Limiter({ limit: 1 });
  const later = recorder();
  limiter.observe({
    admitted() {
      throw new Error("observer bug");
    },
  });
  limiter.observe(later.observer);
  const original = console.error;
  // As a runtime's console does with an error whose stack getter throws.
  console.error = () => {
    throw new Error("cannot print it");
  };
  try {
    for (let i = 0; i < 2; i++) {
      const permit = limiter.tryAcquire();
      assert.ok(permit);
      permit.release();
    }
  } finally {
    console.error = original;
  }
  assert.equal(limiter.active, 0);
  assert.equal(later.count("admitted"), 2);
  assert.equal(later.count("released"), 2);
});

test("observe() returns a function that removes the observer, once", () => {
  const limiter = new Limiter({ limit: 2 });
  const a = recorder();
  const b = recorder();
  const stopA = limiter.observe(a.observer);
  limiter.observe(b.observer);
  limiter.tryAcquire()?.release();
  stopA();
  stopA();
  limiter.tryAcquire()?.release();
  assert.equal(a.count("admitted"), 1);
  assert.equal(b.count("admitted"), 2);
});

test("a permit granted while observed reports its release after the observer left", () => {
  const limiter = new Limiter({ limit: 1 });
  const { observer, count } = recorder();
  const stop = limiter.observe(observer);
  const permit = limiter.tryAcquire()!;
  stop();
  permit.release();
  assert.equal(limiter.active, 0);
  assert.equal(count("released"), 0);
  assert.ok(limiter.tryAcquire());
});

test("an observer added while permits are held gets only the releases of the permits it saw granted", () => {
  const limiter = new Limiter({ limit: 3 });
  const a = recorder();
  const b = recorder();
  const c = recorder();
  limiter.observe(a.observer);
  const first = limiter.tryAcquire()!;
  limiter.observe(b.observer);
  // Added inside an event: the permit of that event is not its.
  let added = false;
  limiter.observe({
    admitted() {
      if (!added) limiter.observe(c.observer);
      added = true;
    },
  });
  const second = limiter.tryAcquire()!;
  const third = limiter.tryAcquire()!;
  first.release();
  second.release();
  third.release();
  assert.deepEqual(
    [a, b, c].map((r) => [r.count("admitted"), r.count("released")]),
    [[3, 3], [2, 2], [1, 1]],
  );
});

test("observe() rejects what is not an observer", () => {
  const limiter = new Limiter();
  assert.throws(() => limiter.observe(null as never), TypeError);
  assert.throws(() => limiter.observe((() => {}) as never), TypeError);
  assert.throws(
    () => limiter.observe({ admitted: 1 } as never),
    /observer "admitted" must be a function, got 1/,
  );
});

test("throttle().observe() reports with the key, over every key, and after a key is forgotten", async () => {
  const gate = deferred<void>();
  const fetch = throttle(async () => {
    await gate.promise;
    return new Response("ok");
  }, { limit: 1, key: (request) => new URL(request.url).pathname });
  const { events, observer, count } = recorder();
  fetch.observe(observer);
  const a = fetch(new Request("http://localhost/a"));
  const b = fetch(new Request("http://localhost/b"));
  const rejected = await fetch(new Request("http://localhost/a"));
  assert.equal(rejected.status, 503);
  gate.resolve();
  await Promise.all([a, b]);
  assert.equal(fetch.stats().keys, 0);
  // A new limiter for a key seen before reports too.
  await fetch(new Request("http://localhost/a"));
  assert.deepEqual(
    events.map(([n, e]) => [n, e.key]),
    [
      ["admitted", "/a"],
      ["admitted", "/b"],
      ["rejected", "/a"],
      ["released", "/a"],
      ["released", "/b"],
      ["admitted", "/a"],
      ["released", "/a"],
    ],
  );
  assert.equal(count("admitted"), fetch.stats().admitted);
  await fetch.close();
  await fetch(new Request("http://localhost/c"));
  assert.deepEqual(events.at(-1), [
    "rejected",
    { reason: "closed", wait: 0, priority: 3, key: "/c" },
  ]);
});

test("throttle().observe() reports a handler that throws as dropped, and a client that left as aborted", async () => {
  const fetch = throttle((request: Request) => {
    if (request.url.endsWith("/throw")) throw new Error("handler bug");
    return new Promise<Response>(() => {});
  }, { limit: 1, queue: 1 });
  const { events, observer } = recorder();
  fetch.observe(observer);
  assert.throws(() => fetch(new Request("http://localhost/throw")));
  fetch(new Request("http://localhost/hang"));
  const controller = new AbortController();
  const queued = fetch(
    new Request("http://localhost/q", { signal: controller.signal }),
  );
  controller.abort();
  assert.equal((await queued).status, 499);
  assert.deepEqual(events.map(([n]) => n), [
    "admitted",
    "released",
    "admitted",
    "rejected",
  ]);
  assert.equal((events[1][1] as ReleasedEvent).dropped, true);
  assert.equal((events[3][1] as RejectedEvent).reason, "aborted");
  const stats = fetch.stats();
  assert.deepEqual([stats.admitted, stats.aborted], [2, 1]);
});

test("throttle() with a shared limiter reports through the limiter's observers", async () => {
  const limiter = new Limiter({ limit: 5 });
  const fetch = throttle(() => new Response("ok"), { limiter });
  const viaHandler = recorder();
  const viaLimiter = recorder();
  fetch.observe(viaHandler.observer);
  limiter.observe(viaLimiter.observer);
  await fetch(new Request("http://localhost/"));
  limiter.tryAcquire()?.release();
  assert.equal(viaHandler.count("admitted"), 2);
  assert.equal(viaLimiter.count("released"), 2);
});

test("the Hono middleware's observe() reports with the key and the priority", async () => {
  const gate = honoThrottle({
    limit: 1,
    key: (c) => c.req.path,
    priority: (c) => c.req.header("x-priority") === "urgent" ? 0 : 5,
  });
  const app = new Hono().use(gate).get("/*", async (c) => {
    await tick();
    return c.text("ok");
  });
  const { events, observer } = recorder();
  const stop = gate.observe(observer);
  const first = app.request("/x", { headers: { "x-priority": "urgent" } });
  const second = await app.request("/x");
  assert.equal(second.status, 503);
  assert.equal((await first).status, 200);
  stop();
  await app.request("/x");
  assert.deepEqual(events.map(([n, e]) => [n, e.key, e.priority]), [
    ["admitted", "/x", 0],
    ["rejected", "/x", 5],
    ["released", "/x", 0],
  ]);
});

test("an observer that queues a caller when told of an eviction never takes the queue past its bound", async () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const permit = limiter.tryAcquire()!;
  let again = true;
  const settled: Promise<unknown>[] = [];
  limiter.observe({
    rejected(event) {
      if (again && event.reason === "full") {
        again = false;
        settled.push(limiter.acquire().catch((e) => e.reason));
      }
    },
  });
  settled.push(limiter.acquire({ priority: 7 }).catch((e) => e.reason));
  settled.push(limiter.acquire({ priority: 0 }).catch((e) => e.reason));
  assert.equal(limiter.queued, 1);
  permit.release();
  const outcomes = await Promise.all(settled);
  for (const outcome of outcomes) (outcome as Permit).release?.();
  assert.deepEqual(
    outcomes.map((o) => typeof o === "string" ? o : "granted").sort(),
    ["full", "full", "granted"],
  );
  assert.equal(limiter.active, 0);
});

test("acquire() and run() check their signal before it is needed", () => {
  const limiter = new Limiter({ limit: 1 });
  for (const signal of [{}, null, "abort"]) {
    assert.throws(
      () => limiter.acquire({ signal } as never),
      (e) => e instanceof TypeError && /"signal"/.test(e.message),
    );
    assert.throws(
      () => limiter.run(() => {}, { signal } as never),
      (e) => e instanceof TypeError && /"signal"/.test(e.message),
    );
  }
  assert.equal(limiter.active, 0);
});
