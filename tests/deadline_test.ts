/**
 * Deadlines, predictive rejection, the standing-queue rules of
 * `order: "adaptive"` and the automatic Retry-After (DESIGN.md, D1-D5).
 * Time runs on a fake clock (`performance.now`, `setTimeout`), so hold times
 * are exact and every prediction is checked against its formula:
 * expected wait = (capacity to free) * hold time / active.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { Limiter, type Permit, RejectedError, throttle } from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";
import type { RejectInfo } from "../mod.ts";

const realSetTimeout = globalThis.setTimeout;

/** Lets pending promise callbacks run, whatever the fake clock says. */
function flush(): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, 0));
}

/** A clock whose timers fire only when the test moves time forward. */
class FakeClock {
  now = 1000;
  #timers = new Map<number, { at: number; fn: () => void }>();
  #next = 1;
  setTimeout = (fn: () => void, ms = 0): number => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, fn });
    return id;
  };
  clearTimeout = (id: number): void => {
    this.#timers.delete(id);
  };
  /** Moves time on by `ms`, firing the timers due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.now + ms;
    while (true) {
      let due: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= target && (!due || entry[1].at < due[1].at)) {
          due = entry;
        }
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
      await flush();
    }
    this.now = target;
    await flush();
  }
}

/** Runs `body` with the fake clock in place of the real one. */
async function onFakeClock(
  body: (clock: FakeClock) => Promise<void> | void,
): Promise<void> {
  const clock = new FakeClock();
  const saved = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
  };
  const realNow = performance.now;
  Object.assign(globalThis, {
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  performance.now = () => clock.now;
  try {
    await body(clock);
  } finally {
    Object.assign(globalThis, saved);
    performance.now = realNow;
  }
}

/** Replaces Math.random with a constant while `body` runs. */
async function withRandom(
  value: number,
  body: () => Promise<void> | void,
): Promise<void> {
  const real = Math.random;
  Math.random = () => value;
  try {
    await body();
  } finally {
    Math.random = real;
  }
}

/** Teaches `limiter` a hold time of exactly `ms` (its first measurement). */
async function teachHold(
  limiter: Limiter,
  clock: FakeClock,
  ms: number,
): Promise<void> {
  const permit = limiter.tryAcquire();
  assert.ok(permit, "teachHold needs a free permit");
  await clock.advance(ms);
  permit.release();
}

/** What became of a promise so far. */
function watch<T>(promise: Promise<T>) {
  const state: { value?: T; error?: unknown; settled: boolean } = {
    settled: false,
  };
  promise.then(
    (value) => Object.assign(state, { value, settled: true }),
    (error) => Object.assign(state, { error, settled: true }),
  );
  return state;
}

function isRejection(error: unknown, reason: string): boolean {
  return error instanceof RejectedError && error.reason === reason;
}

function hold(limiter: Limiter, count: number): Permit[] {
  return Array.from({ length: count }, () => {
    const permit = limiter.tryAcquire();
    assert.ok(permit);
    return permit;
  });
}

// D1: the budget

test("Limiter predicts nothing before a permit was released, and the deadline still bounds the wait", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: 10 });
    hold(limiter, 1);
    // No hold time yet: an hour-long hold would not get it rejected at once.
    const waiter = watch(limiter.acquire({ deadline: 10 }));
    await flush();
    assert.equal(waiter.settled, false);
    assert.equal(limiter.queued, 1);
    await clock.advance(9);
    assert.equal(waiter.settled, false);
    await clock.advance(1);
    assert.ok(isRejection(waiter.error, "timeout"));
    assert.deepEqual(
      {
        timedOut: limiter.stats().timedOut,
        rejected: limiter.stats().rejected,
      },
      { timedOut: 1, rejected: 0 },
    );
  });
});

test("Limiter's wait budget is min(queueTimeout, deadline - hold time)", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: 10, queueTimeout: 100 });
    await teachHold(limiter, clock, 40);
    hold(limiter, 1);
    // The deadline leaves 960 ms: queueTimeout (100) is the budget.
    const far = watch(limiter.acquire({ deadline: 1000 }));
    await clock.advance(99);
    assert.equal(far.settled, false);
    await clock.advance(1);
    assert.ok(isRejection(far.error, "timeout"));
    // The deadline leaves 90 - 40 = 50 ms: that is the budget, not 90.
    const near = watch(limiter.acquire({ deadline: 90 }));
    await clock.advance(49);
    assert.equal(near.settled, false);
    await clock.advance(1);
    assert.ok(isRejection(near.error, "timeout"));
    assert.equal(limiter.stats().timedOut, 2);
  });
});

// D2: predictive rejection

test("Limiter rejects at once a caller whose expected wait is well above its budget, and queues one well below", async () => {
  const L = 4, H = 20;
  for (const ahead of [0, 3, 10]) {
    await onFakeClock(async (clock) => {
      const limiter = new Limiter({ limit: L, queue: Infinity });
      await teachHold(limiter, clock, H);
      hold(limiter, L);
      for (let i = 0; i < ahead; i++) limiter.acquire().catch(() => {});
      const expected = (ahead + 1) * H / L;

      // Budget = deadline - H; expected wait 2x the budget: turned away.
      const short = watch(limiter.acquire({ deadline: H + expected / 2 }));
      await flush();
      assert.ok(
        isRejection(short.error, "timeout"),
        `${ahead} ahead: expected wait ${expected} ms, budget ${
          expected / 2
        } ms`,
      );
      assert.equal(limiter.stats().timedOut, 1);
      assert.equal(limiter.stats().rejected, 0);
      assert.equal(limiter.queued, ahead);

      // The same through queueTimeout alone.
      const byTimeout = new Limiter({
        limit: L,
        queue: Infinity,
        queueTimeout: expected / 2,
      });
      await teachHold(byTimeout, clock, H);
      hold(byTimeout, L);
      for (let i = 0; i < ahead; i++) byTimeout.acquire().catch(() => {});
      const viaTimeout = watch(byTimeout.acquire());
      await flush();
      assert.ok(isRejection(viaTimeout.error, "timeout"));

      // Expected wait 0.4x the budget: it queues.
      const long = watch(limiter.acquire({ deadline: H + expected * 2.5 }));
      await flush();
      assert.equal(long.settled, false, `${ahead} ahead: queued`);
      assert.equal(limiter.queued, ahead + 1);
      assert.equal(limiter.stats().timedOut, 1);
    });
  }
});

test("Limiter counts the weight queued ahead of a caller in its expected wait", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 4, queue: Infinity });
    await teachHold(limiter, clock, 20);
    hold(limiter, 4);
    limiter.acquire({ weight: 3 }).catch(() => {});
    // (3 + 1) * 20 / 4 = 20 ms expected; a budget of 12 is too short.
    const short = watch(limiter.acquire({ deadline: 20 + 12 }));
    await flush();
    assert.ok(isRejection(short.error, "timeout"));
    // A budget of 45 is long enough.
    const long = watch(limiter.acquire({ deadline: 20 + 45 }));
    await flush();
    assert.equal(long.settled, false);
  });
});

test("Limiter's predictions follow the hold time as it changes", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: Infinity });
    await teachHold(limiter, clock, 10);
    // Each later timed hold moves the estimate a tenth of the way: 10 -> 19.
    await teachHold(limiter, clock, 100);
    hold(limiter, 1);
    // Expected wait 19 ms, budget 200 - 19 = 181: queued.
    const ok = watch(limiter.acquire({ deadline: 200 }));
    // Expected wait 38 ms (one ahead), budget 50 - 19 = 31: rejected.
    const late = watch(limiter.acquire({ deadline: 50 }));
    await flush();
    assert.equal(ok.settled, false);
    assert.ok(isRejection(late.error, "timeout"));
  });
});

test("Limiter.tryAcquire() checks deadline and grants whenever capacity is free", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1 });
    await teachHold(limiter, clock, 50);
    const permit = limiter.tryAcquire({ deadline: 0 });
    assert.ok(permit);
    assert.equal(limiter.tryAcquire({ deadline: 1000 }), undefined);
    assert.throws(() => limiter.tryAcquire({ deadline: -1 }), RangeError);
  });
});

test("Limiter rejects a bad deadline synchronously, naming it", () => {
  const limiter = new Limiter({ limit: 1, queue: 1 });
  const named = (type: typeof Error) => (error: unknown) =>
    error instanceof type && /"deadline"/.test((error as Error).message);
  for (const bad of [-1, NaN]) {
    assert.throws(() => limiter.acquire({ deadline: bad }), named(RangeError));
    assert.throws(
      () => limiter.tryAcquire({ deadline: bad }),
      named(RangeError),
    );
    assert.throws(
      () => limiter.run(() => 1, { deadline: bad }),
      named(RangeError),
    );
  }
  assert.throws(
    () => limiter.acquire({ deadline: "5" as unknown as number }),
    named(TypeError),
  );
  assert.ok(limiter.tryAcquire({ deadline: Infinity }));
  assert.equal(limiter.stats().admitted, 1);
});

// D3: never granted too late

test("Limiter lets a waiter go, instead of granting it, once the time left cannot cover the hold time", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: 10 });
    await teachHold(limiter, clock, 30);
    const [held] = hold(limiter, 1); // timed: it fills the limit
    await clock.advance(970);
    // Expected wait 30, budget 70 - 30 = 40: it queues.
    const doomed = watch(limiter.acquire({ deadline: 70 }));
    const patient = watch(limiter.acquire());
    await clock.advance(20);
    assert.equal(doomed.settled, false);
    // The slow hold raises the estimate to 30 + (990 - 30) / 10 = 126 ms:
    // 50 ms before its deadline, the first waiter could not finish in time.
    held.release();
    await flush();
    assert.ok(isRejection(doomed.error, "timeout"));
    assert.ok(patient.value, "the waiter behind it gets the permit");
    const stats = limiter.stats();
    assert.equal(stats.timedOut, 1);
    assert.equal(stats.active, 1);
    assert.equal(stats.queued, 0);
  });
});

test("Limiter reads the clock again after observers ran, before it grants the next waiter", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 2, queue: 10 });
    await teachHold(limiter, clock, 30);
    const wide = limiter.tryAcquire({ weight: 2 })!;
    const first = watch(limiter.acquire());
    // Expected wait 30 of a budget of 100 - 30: it queues.
    const late = watch(limiter.acquire({ deadline: 100 }));
    // A slow observer: 80 ms pass while the first waiter is admitted.
    limiter.observe({ admitted: () => void (clock.now += 80) });
    wide.release(); // both slots come back in one pass
    await flush();
    assert.ok(first.value);
    assert.ok(isRejection(late.error, "timeout"));
    assert.equal(limiter.stats().timedOut, 1);
  });
});

test("Limiter grants a waiter whose deadline still covers the hold time", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: 10 });
    await teachHold(limiter, clock, 30);
    const [held] = hold(limiter, 1);
    const waiter = watch(limiter.acquire({ deadline: 100 }));
    await clock.advance(30);
    held.release(); // hold 30: the estimate stays 30
    await flush();
    assert.ok(waiter.value);
    assert.equal(limiter.stats().timedOut, 0);
  });
});

// D4: adaptive order

test('Limiter with order "adaptive" serves FIFO while the queue empties within interval', async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({
      limit: 1,
      queue: 10,
      order: "adaptive",
      target: 5,
      interval: 100,
    });
    const [first] = hold(limiter, 1);
    const granted: string[] = [];
    const waiters = ["a", "b", "c"].map((name) =>
      limiter.acquire().then((permit) => {
        granted.push(name);
        return permit;
      })
    );
    await clock.advance(50);
    // Waited 50 ms, far beyond target, but the queue is not standing.
    first.release();
    await flush();
    (await waiters[0]).release();
    await flush();
    assert.deepEqual(granted, ["a", "b"]);
    assert.equal(limiter.stats().timedOut, 0);
  });
});

test('Limiter with order "adaptive" serves LIFO and lets waiters older than target go once the queue stands', async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({
      limit: 1,
      queue: 10,
      order: "adaptive",
      target: 5,
      interval: 100,
    });
    const [first] = hold(limiter, 1);
    const a = watch(limiter.acquire());
    await clock.advance(50);
    const b = watch(limiter.acquire());
    await clock.advance(100); // not empty for 150 ms: standing
    const c = watch(limiter.acquire());
    await clock.advance(2);
    const d = watch(limiter.acquire());
    await clock.advance(1);
    first.release();
    await flush();
    // The newest goes first.
    assert.ok(d.value);
    assert.equal(c.settled, false);
    await clock.advance(10);
    d.value!.release();
    await flush();
    // The rest waited longer than target: let go, none granted.
    for (const w of [a, b, c]) assert.ok(isRejection(w.error, "timeout"));
    assert.deepEqual(
      { active: limiter.active, queued: limiter.queued },
      { active: 0, queued: 0 },
    );
    assert.equal(limiter.stats().timedOut, 3);

    // Once it emptied, FIFO again, and waiting beyond target is allowed.
    const [again] = hold(limiter, 1);
    const order: string[] = [];
    for (const name of ["e", "f"]) {
      limiter.acquire().then((p) => {
        order.push(name);
        p.release();
      });
    }
    await clock.advance(20);
    again.release();
    await flush();
    assert.deepEqual(order, ["e", "f"]);
    assert.equal(limiter.stats().timedOut, 3);
  });
});

test('Limiter with order "adaptive" makes room in a full, standing queue by letting a stale waiter go', async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({
      limit: 1,
      queue: 2,
      order: "adaptive",
      target: 5,
      interval: 100,
    });
    hold(limiter, 1);
    const a = watch(limiter.acquire());
    await clock.advance(150);
    const b = watch(limiter.acquire());
    await clock.advance(3);
    const c = watch(limiter.acquire());
    await flush();
    assert.ok(isRejection(a.error, "timeout"), "the stale one is let go");
    assert.equal(b.settled, false);
    assert.equal(c.settled, false);
    assert.equal(limiter.queued, 2);
    assert.deepEqual(
      {
        rejected: limiter.stats().rejected,
        timedOut: limiter.stats().timedOut,
      },
      { rejected: 0, timedOut: 1 },
    );
  });
});

test('Limiter with order "fifo" keeps waiters a standing queue would let go', async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({ limit: 1, queue: 2, target: 5 });
    const [first] = hold(limiter, 1);
    const a = watch(limiter.acquire());
    await clock.advance(500);
    first.release();
    await flush();
    assert.ok(a.value);
  });
});

test("Limiter under dryRun predicts and drops nothing", async () => {
  await onFakeClock(async (clock) => {
    const limiter = new Limiter({
      limit: 1,
      queue: 1,
      order: "adaptive",
      target: 5,
      interval: 10,
      dryRun: true,
    });
    await teachHold(limiter, clock, 50);
    hold(limiter, 1);
    const permits: Permit[] = [];
    for (let i = 0; i < 3; i++) {
      permits.push(await limiter.acquire({ deadline: 1 }));
      await clock.advance(100);
    }
    assert.ok(limiter.tryAcquire({ deadline: 0 }));
    const stats = limiter.stats();
    assert.equal(stats.active, 5);
    assert.equal(stats.timedOut, 0);
    assert.equal(stats.rejected, 4);
  });
});

// D5: Retry-After

/** A throttled handler whose responses the test releases one by one. */
function heldHandler() {
  const pending: Array<() => void> = [];
  const handler = () =>
    new Promise<Response>((resolve) =>
      pending.push(() => resolve(new Response("ok")))
    );
  return { handler, pending };
}

const get = (headers: Record<string, string> = {}) =>
  new Request("http://localhost/", { headers });

test('throttle() with retryAfter "auto" sends 1 before any slot was released', async () => {
  await onFakeClock(async () => {
    const { handler } = heldHandler();
    let info: RejectInfo | undefined;
    const plain = throttle(handler, { limit: 1 });
    const custom = throttle(handler, {
      limit: 1,
      reject: (_, i) => {
        info = i;
        return new Response(null, { status: 429 });
      },
    });
    plain(get());
    custom(get());
    const response = await plain(get());
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "1");
    await custom(get());
    assert.equal(info?.retryAfter, 1);
  });
});

test('throttle() with retryAfter "auto" sends the expected wait, spread by up to +50%, in whole seconds', async () => {
  await onFakeClock(async (clock) => {
    const { handler, pending } = heldHandler();
    const infos: RejectInfo[] = [];
    const fetch = throttle(handler, {
      limit: 2,
      queue: 4,
      reject: (_, info) => {
        infos.push(info);
        return new Response(null, { status: 503 });
      },
    });
    // One hold of 1,000 ms measured.
    const first = fetch(get());
    await clock.advance(1000);
    pending.shift()!();
    await first;
    // 2 held and 4 queued: a newcomer needs 2 + 4 + 1 - 2 = 5 slots freed,
    // at 2 per 1,000 ms: 2,500 ms, spread to 2.5-3.75 s, so 3 or 4.
    for (let i = 0; i < 6; i++) fetch(get());
    await flush();
    await withRandom(0, async () => {
      await fetch(get());
    });
    await withRandom(0.9999, async () => {
      await fetch(get());
    });
    assert.deepEqual(infos.map((i) => i.retryAfter), [3, 4]);
    assert.deepEqual(infos.map((i) => i.reason), ["full", "full"]);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      infos.length = 0;
      await fetch(get());
      seen.add(infos[0].retryAfter);
    }
    assert.deepEqual([...seen].sort(), [3, 4]);
  });
});

test('throttle() with retryAfter "auto" counts only the waiters as urgent as the rejected request', async () => {
  await onFakeClock(async (clock) => {
    const { handler, pending } = heldHandler();
    const infos: RejectInfo[] = [];
    const fetch = throttle(handler, {
      limit: 2,
      queue: 10,
      priority: (request) => Number(request.headers.get("x-priority") ?? 3),
      deadline: (request) => fromHeader(request.headers.get("x-deadline")),
      reject: (_, info) => {
        infos.push(info);
        return new Response(null, { status: 503 });
      },
    });
    const first = fetch(get());
    await clock.advance(1000);
    pending.shift()!();
    await first;
    fetch(get());
    fetch(get());
    for (let i = 0; i < 4; i++) fetch(get({ "x-priority": "7" }));
    await flush();
    await withRandom(0, async () => {
      // Turned away by prediction (a deadline shorter than the hold).
      await fetch(get({ "x-priority": "7", "x-deadline": "10" }));
      await fetch(get({ "x-priority": "0", "x-deadline": "10" }));
    });
    assert.deepEqual(infos.map((i) => i.reason), ["timeout", "timeout"]);
    // Priority 7: 2 held + 4 queued + itself - limit 2 = 5 slots to free at
    // 2 a second (2.5 s, 3 rounded up); priority 0 waits for 1 (0.5 s, 1).
    assert.deepEqual(infos.map((i) => i.retryAfter), [3, 1]);
  });
});

test('throttle() with retryAfter "auto" keeps Retry-After within 1-60', async () => {
  for (const [holdMs, expected] of [[100_000, 60], [1, 1]]) {
    await onFakeClock(async (clock) => {
      const { handler, pending } = heldHandler();
      const fetch = throttle(handler, { limit: 1 });
      const first = fetch(get());
      await clock.advance(holdMs);
      pending.shift()!();
      await first;
      fetch(get());
      await withRandom(0.9999, async () => {
        const response = await fetch(get());
        assert.equal(response.headers.get("retry-after"), String(expected));
      });
    });
  }
});

test("throttle() with a number for retryAfter sends that number, and tells reject", async () => {
  await onFakeClock(async (clock) => {
    for (const seconds of [0, 7]) {
      const { handler, pending } = heldHandler();
      const fetch = throttle(handler, { limit: 1, retryAfter: seconds });
      let info: RejectInfo | undefined;
      const custom = throttle(handler, {
        limit: 1,
        retryAfter: seconds,
        reject: (_, i) => {
          info = i;
          return new Response(null, { status: 503 });
        },
      });
      const first = fetch(get());
      await clock.advance(5000);
      pending.shift()!();
      await first;
      fetch(get());
      custom(get());
      const response = await fetch(get());
      assert.equal(response.headers.get("retry-after"), String(seconds));
      await custom(get());
      assert.equal(info?.retryAfter, seconds);
    }
  });
});

// throttle() and the Hono middleware: the deadline callback

const fromHeader = (value: string | null | undefined) =>
  value == null ? undefined : Number(value);

test("throttle() turns a request away at once when its deadline cannot be met", async () => {
  await onFakeClock(async (clock) => {
    const pending: Array<() => void> = [];
    const handler = (_request: Request, _info: string) =>
      new Promise<Response>((resolve) =>
        pending.push(() => resolve(new Response("ok")))
      );
    const reasons: string[] = [];
    const calls: unknown[][] = [];
    const fetch = throttle(handler, {
      limit: 1,
      queue: 10,
      deadline: (request, ...rest) => {
        calls.push(rest);
        return fromHeader(request.headers.get("x-request-timeout"));
      },
      reject: (_, info) => {
        reasons.push(info.reason);
        return new Response(null, { status: 503 });
      },
    });
    const first = fetch(get(), "info");
    await clock.advance(100);
    pending.shift()!();
    await first;
    assert.deepEqual(calls[0], ["info"]);
    fetch(get(), "info");
    // Expected wait 100 ms; 150 - 100 leaves a budget of 50: rejected.
    const late = await fetch(get({ "x-request-timeout": "150" }), "info");
    assert.equal(late.status, 503);
    assert.deepEqual(reasons, ["timeout"]);
    // 400 - 100 leaves 300: it waits, and is served.
    const waiting = fetch(get({ "x-request-timeout": "400" }), "info");
    await clock.advance(100);
    pending.shift()!();
    await flush();
    pending.shift()!();
    assert.equal((await waiting).status, 200);
    assert.equal(fetch.stats().timedOut, 1);
  });
});

test("throttle() fails only the request whose deadline callback returns a bad value", async () => {
  const fetch = throttle(() => new Response("ok"), {
    limit: 1,
    deadline: (request) => {
      const value = request.headers.get("x-deadline");
      return value === null ? undefined : JSON.parse(value);
    },
  });
  const named = (type: typeof Error) => (error: unknown) =>
    error instanceof type && /deadline/.test((error as Error).message);
  assert.throws(() => fetch(get({ "x-deadline": "-5" })), named(RangeError));
  assert.throws(() => fetch(get({ "x-deadline": '"5"' })), named(TypeError));
  assert.equal((await fetch(get())).status, 200);
  assert.equal((await fetch(get({ "x-deadline": "5" }))).status, 200);
  assert.equal(fetch.stats().active, 0);
  assert.equal(fetch.stats().admitted, 2);
});

test("Hono middleware takes deadline from the Context and turns away a request that cannot be served in time", async () => {
  await onFakeClock(async (clock) => {
    const { handler, pending } = heldHandler();
    const middleware = honoThrottle({
      limit: 1,
      queue: 10,
      deadline: (c) => fromHeader(c.req.header("x-request-timeout")),
    });
    const app = new Hono();
    app.use(middleware);
    app.get("/", () => handler());
    app.onError((error, c) => c.text(error.name, 500));
    const first = app.request("/");
    await clock.advance(100);
    pending.shift()!();
    assert.equal((await first).status, 200);
    const busy = app.request("/");
    await flush();
    const late = await app.request("/", {
      headers: { "x-request-timeout": "150" },
    });
    assert.equal(late.status, 503);
    // Expected wait 100 ms, the minimum the default can send is 1 s.
    assert.equal(late.headers.get("retry-after"), "1");
    assert.equal(middleware.stats().timedOut, 1);
    const bad = await app.request("/", {
      headers: { "x-request-timeout": "-1" },
    });
    assert.equal(bad.status, 500);
    assert.equal(await bad.text(), "RangeError");
    pending.shift()!();
    assert.equal((await busy).status, 200);
  });
});

test("throttle() evicts no waiter for a request whose client left before it reached the gate", async () => {
  const { handler, pending } = heldHandler();
  const fetch = throttle(handler, {
    limit: 1,
    queue: 1,
    priority: (request) => Number(request.headers.get("x-priority") ?? 3),
  });
  const first = fetch(get());
  const waiting = fetch(get({ "x-priority": "7" }));
  await flush();
  const controller = new AbortController();
  controller.abort();
  const gone = await fetch(
    new Request("http://localhost/", {
      headers: { "x-priority": "0" },
      signal: controller.signal,
    }),
  );
  assert.equal(gone.status, 499);
  // Nobody took its place: the waiter keeps its place in the queue.
  assert.deepEqual(
    { queued: fetch.stats().queued, rejected: fetch.stats().rejected },
    { queued: 1, rejected: 0 },
  );
  pending.shift()!();
  await first;
  await flush();
  pending.shift()!();
  assert.equal((await waiting).status, 200);
});
