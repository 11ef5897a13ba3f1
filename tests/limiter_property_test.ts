/**
 * Model-based property tests of Limiter with fast-check: random programs of
 * acquire (with no signal, a live one or an aborted one), tryAcquire,
 * release (double releases included), abort, the passing of time (a fake
 * clock drives queueTimeout), limit changes and close, run against the
 * Limiter and a plain reference model in lockstep. The permits are released
 * at random points after they were granted, which is how the interleavings
 * of the callers' promise continuations are explored. After every step the
 * two must agree on every count and every caller's outcome, and the rules of
 * the contract are checked directly.
 *
 * A failure prints the seed and the shrunk program; FC_SEED=<seed> replays it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { Limiter, type Permit, RejectedError } from "../mod.ts";

const seed = Number(process.env.FC_SEED ?? 20261126);
const numRuns = Number(process.env.FC_RUNS ?? 1000);

type Op =
  | { kind: "acquire"; signal: "none" | "live" | "aborted" }
  | { kind: "tryAcquire" }
  | { kind: "release"; pick: number }
  | { kind: "abort"; pick: number }
  | { kind: "time"; ms: number }
  | { kind: "limit"; value: number }
  | { kind: "close" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("acquire" as const),
      signal: fc.constantFrom(
        "none" as const,
        "live" as const,
        "aborted" as const,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("tryAcquire" as const) }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("release" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("abort" as const),
      pick: fc.nat(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      ms: fc.integer({ min: 0, max: 15 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("limit" as const),
      value: fc.integer({ min: 1, max: 6 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("close" as const) }) },
);

const config = fc.record({
  limit: fc.integer({ min: 1, max: 4 }),
  queue: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constant(Infinity)),
  queueTimeout: fc.oneof(
    fc.integer({ min: 0, max: 20 }),
    fc.constant(Infinity),
  ),
  order: fc.constantFrom("fifo" as const, "lifo" as const),
});

/** A clock whose timers fire only when the test moves time forward. */
class FakeClock {
  now = 0;
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
  advance(ms: number): void {
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
    }
    this.now = target;
  }
}

type Outcome =
  | { state: "pending" }
  | { state: "granted" }
  | { state: "rejected"; reason: string }
  | { state: "aborted" }
  | { state: "none" }; // tryAcquire that returned undefined

interface ModelWaiter {
  id: number;
  deadline: number;
  controller?: AbortController;
}

/** The contract, written as plainly as possible. */
class Model {
  active = 0;
  queue: ModelWaiter[] = [];
  closed = false;
  closedIdle = false;
  admitted = 0;
  rejected = 0;
  timedOut = 0;
  aborted = 0;
  outcomes = new Map<number, Outcome>();
  granted = new Set<number>();
  released = new Set<number>();
  /** Holders from before a lowering may exceed the limit until they leave. */
  excess = 0;

  constructor(
    public limit: number,
    readonly queueSize: number,
    readonly queueTimeout: number,
    readonly lifo: boolean,
    readonly dryRun: boolean,
  ) {}

  #grant(id: number, overLimit = false): void {
    if (!overLimit) {
      assert.ok(this.active < this.limit, "granted over the limit");
    }
    this.active++;
    this.admitted++;
    this.granted.add(id);
    this.outcomes.set(id, { state: "granted" });
  }

  #idle(): void {
    if (this.closed && this.active === 0) this.closedIdle = true;
  }

  acquire(id: number, now: number, controller?: AbortController): void {
    if (this.closed) {
      this.rejected++;
      this.outcomes.set(id, { state: "rejected", reason: "closed" });
    } else if (controller?.signal.aborted) {
      this.aborted++;
      this.outcomes.set(id, { state: "aborted" });
    } else if (this.active < this.limit && this.queue.length === 0) {
      this.#grant(id);
    } else if (this.dryRun) {
      this.rejected++;
      this.#grant(id, true);
    } else if (this.queue.length >= this.queueSize) {
      this.rejected++;
      this.outcomes.set(id, { state: "rejected", reason: "full" });
    } else {
      this.queue.push({ id, deadline: now + this.queueTimeout, controller });
      this.outcomes.set(id, { state: "pending" });
    }
  }

  tryAcquire(id: number): void {
    if (!this.closed && this.active < this.limit && this.queue.length === 0) {
      this.#grant(id);
    } else if (this.dryRun && !this.closed) {
      this.rejected++;
      this.#grant(id, true);
    } else {
      this.rejected++;
      this.outcomes.set(id, { state: "none" });
    }
  }

  release(id: number): void {
    if (this.released.has(id)) return;
    this.released.add(id);
    this.active--;
    this.#drain();
    this.#idle();
  }

  #drain(): void {
    while (this.queue.length > 0 && this.active < this.limit) {
      const waiter = this.lifo ? this.queue.pop()! : this.queue.shift()!;
      this.#grant(waiter.id);
    }
  }

  abort(controller: AbortController): void {
    const index = this.queue.findIndex((w) => w.controller === controller);
    if (index >= 0) {
      const [waiter] = this.queue.splice(index, 1);
      this.aborted++;
      this.outcomes.set(waiter.id, { state: "aborted" });
    }
  }

  time(now: number): void {
    // Timers fire in deadline order, ties in the order they were set.
    const due = this.queue.filter((w) => w.deadline <= now)
      .sort((a, b) => a.deadline - b.deadline || a.id - b.id);
    for (const waiter of due) {
      this.queue.splice(this.queue.indexOf(waiter), 1);
      this.timedOut++;
      this.outcomes.set(waiter.id, { state: "rejected", reason: "timeout" });
    }
  }

  setLimit(value: number): void {
    this.limit = value;
    this.#drain();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.queue.splice(0)) {
      this.rejected++;
      this.outcomes.set(waiter.id, { state: "rejected", reason: "closed" });
    }
    this.#idle();
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

async function runProgram(
  settings: {
    limit: number;
    queue: number;
    queueTimeout: number;
    order: "fifo" | "lifo";
  },
  dryRun: boolean,
  ops: Op[],
): Promise<void> {
  const clock = new FakeClock();
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  Object.assign(globalThis, {
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  try {
    const limiter = new Limiter({ ...settings, dryRun });
    const model = new Model(
      settings.limit,
      settings.queue,
      settings.queueTimeout,
      settings.order === "lifo",
      dryRun,
    );
    const outcomes = new Map<number, Outcome>();
    const permits = new Map<number, Permit>();
    const controllers: AbortController[] = [];
    const reasons = new Map<number, unknown>();
    let closeResolved = false;
    let next = 0;

    for (const step of ops) {
      const id = next++;
      switch (step.kind) {
        case "acquire": {
          let controller: AbortController | undefined;
          if (step.signal !== "none") {
            controller = new AbortController();
            controllers.push(controller);
            if (step.signal === "aborted") {
              controller.abort(new Error(`abort ${id}`));
            }
          }
          outcomes.set(id, { state: "pending" });
          reasons.set(id, controller?.signal);
          model.acquire(id, clock.now, controller);
          limiter.acquire({ signal: controller?.signal }).then(
            (permit) => {
              permits.set(id, permit);
              outcomes.set(id, { state: "granted" });
            },
            (error) => {
              if (error instanceof RejectedError) {
                outcomes.set(id, { state: "rejected", reason: error.reason });
              } else {
                assert.equal(error, (reasons.get(id) as AbortSignal).reason);
                outcomes.set(id, { state: "aborted" });
              }
            },
          );
          break;
        }
        case "tryAcquire": {
          const permit = limiter.tryAcquire();
          if (permit) permits.set(id, permit);
          outcomes.set(id, { state: permit ? "granted" : "none" });
          model.tryAcquire(id);
          break;
        }
        case "release": {
          const held = [...model.granted].sort((a, b) => a - b);
          if (held.length === 0) break;
          const target = held[step.pick % held.length];
          permits.get(target)!.release();
          model.release(target);
          break;
        }
        case "abort": {
          if (controllers.length === 0) break;
          const controller = controllers[step.pick % controllers.length];
          if (controller.signal.aborted) break;
          model.abort(controller);
          controller.abort(new Error("gone"));
          break;
        }
        case "time":
          clock.advance(step.ms);
          model.time(clock.now);
          break;
        case "limit":
          limiter.limit = step.value;
          model.setLimit(step.value);
          break;
        case "close":
          limiter.close().then(() => closeResolved = true);
          model.close();
          break;
      }
      await flush();

      // The limiter agrees with the model on every figure ...
      const stats = limiter.stats();
      assert.deepEqual(stats, {
        limit: model.limit,
        active: model.active,
        queued: model.queue.length,
        admitted: model.admitted,
        rejected: model.rejected,
        timedOut: model.timedOut,
        aborted: model.aborted,
      });
      // ... and on what every caller got.
      for (const [key, outcome] of model.outcomes) {
        assert.deepEqual(outcomes.get(key), outcome, `caller ${key}`);
      }
      // The rules, checked directly.
      assert.ok(stats.queued <= settings.queue, "queue over its size");
      assert.equal(stats.admitted - model.released.size, stats.active);
      if (stats.queued > 0) {
        assert.ok(stats.active >= stats.limit, "a waiter was overtaken");
      }
      assert.equal(
        closeResolved,
        model.closedIdle,
        "close() resolved at the wrong time",
      );
    }
  } finally {
    Object.assign(globalThis, {
      setTimeout: realSetTimeout,
      clearTimeout: realClearTimeout,
    });
  }
}

test("Limiter matches the model over random programs (property, fifo and lifo)", async () => {
  await fc.assert(
    fc.asyncProperty(
      config,
      fc.array(op, { maxLength: 60, size: "max" }),
      (settings, ops) => runProgram(settings, false, ops),
    ),
    { numRuns, seed },
  );
});

test("Limiter with dryRun matches the model over random programs (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      config,
      fc.array(op, { maxLength: 60, size: "max" }),
      (settings, ops) => runProgram(settings, true, ops),
    ),
    { numRuns, seed },
  );
});
