/**
 * Model-based property tests of Limiter with fast-check: random programs of
 * acquire (with no signal, a live one or an aborted one; with or without
 * priority, flow, weight and deadline), tryAcquire, release (double releases
 * included), abort, the passing of time (a fake clock drives queueTimeout,
 * deadlines and the measured hold times), limit changes and close, with and
 * without headroom, run against the
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

/** What an acquisition asks for; `undefined` fields are left out. */
interface AskOp {
  priority?: number;
  flow?: string;
  weight?: number;
  deadline?: number;
}

type Op =
  | { kind: "acquire"; signal: "none" | "live" | "aborted"; ask: AskOp }
  | { kind: "tryAcquire"; ask: AskOp }
  | { kind: "release"; pick: number }
  | { kind: "abort"; pick: number }
  | { kind: "time"; ms: number }
  | { kind: "limit"; value: number }
  | { kind: "close" };

/** Mostly plain acquisitions, some with priority, flow, weight, deadline. */
const ask: fc.Arbitrary<AskOp> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({}) },
  {
    weight: 4,
    arbitrary: fc.record({
      priority: fc.constantFrom(0, 3, 7),
      flow: fc.constantFrom("a", "b", "c"),
      weight: fc.constantFrom(1, 1, 2, 3),
      deadline: fc.integer({ min: 0, max: 30 }),
    }, { requiredKeys: [] }),
  },
);

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
      ask,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("tryAcquire" as const), ask }),
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
  headroom: fc.constantFrom(0, 0, 0.3, 0.6),
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
  priority: number;
  flow: string | undefined;
  weight: number;
  /** When its queueTimeout or deadline budget runs out. */
  expires: number;
  /** When its caller stops wanting the work. */
  deadlineAt: number;
  controller?: AbortController;
}

interface ModelFlow {
  name: string | undefined;
  waiters: ModelWaiter[];
  deficit: number;
}

interface ModelLevel {
  /** Flows in the order in which they last became backlogged. */
  ring: ModelFlow[];
  current: ModelFlow | undefined;
  quantum: number;
}

const HOLD_SMOOTHING = 0.1;

/** The contract, written as plainly as possible. */
class Model {
  active = 0;
  levels = new Map<number, ModelLevel>();
  closed = false;
  closedIdle = false;
  admitted = 0;
  rejected = 0;
  timedOut = 0;
  aborted = 0;
  outcomes = new Map<number, Outcome>();
  granted = new Set<number>();
  released = new Set<number>();
  /** What each granted permit holds, and when it was granted if timed. */
  holds = new Map<number, { weight: number; grantedAt?: number }>();
  holdTime: number | undefined = undefined;

  constructor(
    public limit: number,
    readonly queueSize: number,
    readonly queueTimeout: number,
    readonly lifo: boolean,
    readonly dryRun: boolean,
    readonly headroom: number,
  ) {}

  get waiters(): ModelWaiter[] {
    return [...this.levels.values()].flatMap((l) =>
      l.ring.flatMap((f) => f.waiters)
    );
  }

  ceiling(priority: number): number {
    if (this.headroom === 0 || this.limit === Infinity) return this.limit;
    return Math.max(
      1,
      Math.floor(this.limit * (1 - this.headroom * priority / 7)),
    );
  }

  taken(priority: number, weight: number): number {
    return Math.min(weight, this.ceiling(priority));
  }

  fits(priority: number, weight: number): boolean {
    return this.active + this.taken(priority, weight) <=
      this.ceiling(priority);
  }

  waitsAtOrAbove(priority: number): boolean {
    return [...this.levels.keys()].some((p) => p <= priority);
  }

  #grant(
    id: number,
    priority: number,
    weight: number,
    now: number,
    from: "now" | "queue" | "dryRun",
  ): void {
    const taken = this.taken(priority, weight);
    if (from !== "dryRun") {
      assert.ok(this.fits(priority, weight), "granted over the ceiling");
    }
    this.active += taken;
    this.admitted++;
    this.granted.add(id);
    this.outcomes.set(id, { state: "granted" });
    const timed = from === "queue" || taken !== 1 ||
      this.holdTime === undefined || this.active >= this.ceiling(7);
    this.holds.set(id, { weight: taken, grantedAt: timed ? now : undefined });
  }

  #idle(): void {
    if (this.closed && this.active === 0) this.closedIdle = true;
  }

  budget(deadline: number): number {
    if (deadline === Infinity) return this.queueTimeout;
    return Math.min(deadline - (this.holdTime ?? 0), this.queueTimeout);
  }

  /** D2's estimate, with the weight ahead as the limiter counts it. */
  expectedWait(priority: number, flow: string | undefined, weight: number) {
    let ahead = 0;
    for (const [p, level] of this.levels) {
      if (p < priority) {
        ahead += level.ring.reduce((sum, f) => sum + weightOf(f), 0);
      }
    }
    const level = this.levels.get(priority);
    if (level !== undefined) {
      const own = level.ring.find((f) => f.name === flow);
      const inFlow = this.lifo || own === undefined ? 0 : weightOf(own);
      const others = level.ring.length - (own === undefined ? 0 : 1);
      const levelWeight = level.ring.reduce((sum, f) => sum + weightOf(f), 0);
      ahead += Math.min(levelWeight, inFlow + others * Math.max(inFlow, 1));
    }
    const ceiling = this.ceiling(priority);
    const needed = this.active + ahead + this.taken(priority, weight) -
      ceiling;
    if (needed <= 0) return 0;
    return needed * this.holdTime! / Math.max(this.active, 1);
  }

  /** P4: who a full queue gives up for a newcomer. */
  evictionFor(priority: number, flow: string | undefined) {
    if (this.levels.size === 0) return undefined;
    const least = Math.max(...this.levels.keys());
    const longest = (level: ModelLevel) =>
      level.ring.reduce((a, b) => b.waiters.length > a.waiters.length ? b : a);
    if (least > priority) {
      return longest(this.levels.get(least)!).waiters.at(-1);
    }
    const level = this.levels.get(priority);
    if (level === undefined) return undefined;
    const own = level.ring.find((f) => f.name === flow)?.waiters.length ?? 0;
    const candidate = longest(level);
    return candidate.waiters.length >= own + 2
      ? candidate.waiters.at(-1)
      : undefined;
  }

  acquire(
    id: number,
    now: number,
    ask: Required<Omit<AskOp, "flow">> & { flow: string | undefined },
    controller?: AbortController,
  ): void {
    const { priority, flow, weight, deadline } = ask;
    if (this.closed) {
      this.rejected++;
      this.outcomes.set(id, { state: "rejected", reason: "closed" });
    } else if (controller?.signal.aborted) {
      this.aborted++;
      this.outcomes.set(id, { state: "aborted" });
    } else if (this.fits(priority, weight) && !this.waitsAtOrAbove(priority)) {
      this.#grant(id, priority, weight, now, "now");
    } else if (this.dryRun) {
      this.rejected++;
      this.#grant(id, priority, weight, now, "dryRun");
    } else {
      let evicted: ModelWaiter | undefined;
      if (this.waiters.length >= this.queueSize) {
        evicted = this.evictionFor(priority, flow);
        if (evicted === undefined) {
          this.rejected++;
          this.outcomes.set(id, { state: "rejected", reason: "full" });
          return;
        }
      }
      const budget = this.budget(deadline);
      if (
        budget !== Infinity && this.holdTime !== undefined &&
        this.expectedWait(priority, flow, weight) > budget
      ) {
        this.timedOut++;
        this.outcomes.set(id, { state: "rejected", reason: "timeout" });
        return;
      }
      if (evicted !== undefined) {
        this.#remove(evicted);
        this.rejected++;
        this.outcomes.set(evicted.id, { state: "rejected", reason: "full" });
        this.#drain(now);
      }
      this.#push({
        id,
        priority,
        flow,
        weight,
        expires: now + Math.max(0, budget),
        deadlineAt: now + deadline,
        controller,
      });
      this.outcomes.set(id, { state: "pending" });
      // First in line now and fits: lifo behind a wide waiter, or after
      // the eviction.
      this.#drain(now);
    }
  }

  tryAcquire(
    id: number,
    now: number,
    ask: Required<Omit<AskOp, "flow">> & { flow: string | undefined },
  ): void {
    const { priority, weight } = ask;
    if (
      !this.closed && this.fits(priority, weight) &&
      !this.waitsAtOrAbove(priority)
    ) {
      this.#grant(id, priority, weight, now, "now");
    } else if (this.dryRun && !this.closed) {
      this.rejected++;
      this.#grant(id, priority, weight, now, "dryRun");
    } else {
      this.rejected++;
      this.outcomes.set(id, { state: "none" });
    }
  }

  release(id: number, now: number): void {
    if (this.released.has(id)) return;
    this.released.add(id);
    const hold = this.holds.get(id)!;
    if (hold.grantedAt !== undefined) {
      const rtt = now - hold.grantedAt;
      this.holdTime = this.holdTime === undefined
        ? rtt
        : this.holdTime + (rtt - this.holdTime) * HOLD_SMOOTHING;
    }
    this.active -= hold.weight;
    this.#drain(now);
    this.#idle();
  }

  #push(waiter: ModelWaiter): void {
    let level = this.levels.get(waiter.priority);
    if (level === undefined) {
      level = { ring: [], current: undefined, quantum: 1 };
      this.levels.set(waiter.priority, level);
    }
    let flow = level.ring.find((f) => f.name === waiter.flow);
    if (flow === undefined) {
      flow = { name: waiter.flow, waiters: [], deficit: 0 };
      level.ring.push(flow);
    }
    flow.waiters.push(waiter);
    level.quantum = Math.max(level.quantum, waiter.weight);
  }

  /** Deficit round-robin between the flows of the most urgent priority. */
  #first(): ModelWaiter | undefined {
    if (this.levels.size === 0) return undefined;
    const level = this.levels.get(Math.min(...this.levels.keys()))!;
    const head = (f: ModelFlow) => this.lifo ? f.waiters.at(-1)! : f.waiters[0];
    let flow = level.current;
    if (flow === undefined || flow.deficit < head(flow).weight) {
      if (flow !== undefined) {
        level.ring.splice(level.ring.indexOf(flow), 1);
        level.ring.push(flow);
      }
      flow = level.current = level.ring[0];
      flow.deficit += level.quantum;
    }
    return head(flow);
  }

  #remove(waiter: ModelWaiter): void {
    const level = this.levels.get(waiter.priority)!;
    const flow = level.ring.find((f) => f.name === waiter.flow)!;
    flow.waiters.splice(flow.waiters.indexOf(waiter), 1);
    if (flow.waiters.length !== 0) return;
    level.ring.splice(level.ring.indexOf(flow), 1);
    if (level.current === flow) level.current = undefined;
    if (level.ring.length === 0) this.levels.delete(waiter.priority);
  }

  #drain(now: number): void {
    for (let waiter = this.#first(); waiter; waiter = this.#first()) {
      if (now + (this.holdTime ?? 0) > waiter.deadlineAt) {
        this.#remove(waiter);
        this.timedOut++;
        this.outcomes.set(waiter.id, { state: "rejected", reason: "timeout" });
        continue;
      }
      if (!this.fits(waiter.priority, waiter.weight)) return;
      const level = this.levels.get(waiter.priority)!;
      level.current!.deficit -= waiter.weight;
      this.#remove(waiter);
      this.#grant(waiter.id, waiter.priority, waiter.weight, now, "queue");
    }
  }

  abort(controller: AbortController, now: number): void {
    for (const waiter of this.waiters) {
      if (waiter.controller !== controller) continue;
      this.#remove(waiter);
      this.aborted++;
      this.outcomes.set(waiter.id, { state: "aborted" });
      this.#drain(now);
    }
  }

  /** Timers fire in expiry order, ties in the order they were set. */
  time(to: number): void {
    while (true) {
      const [due] = this.waiters.filter((w) => w.expires <= to)
        .sort((a, b) => a.expires - b.expires || a.id - b.id);
      if (due === undefined) return;
      this.#remove(due);
      this.timedOut++;
      this.outcomes.set(due.id, { state: "rejected", reason: "timeout" });
      this.#drain(due.expires);
    }
  }

  setLimit(value: number, now: number): void {
    this.limit = value;
    this.#drain(now);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters) {
      this.#remove(waiter);
      this.rejected++;
      this.outcomes.set(waiter.id, { state: "rejected", reason: "closed" });
    }
    this.#idle();
  }
}

function weightOf(flow: ModelFlow): number {
  return flow.waiters.reduce((sum, w) => sum + w.weight, 0);
}

/** An ask with the defaults filled in, for the model. */
function asked(ask: AskOp) {
  return {
    priority: ask.priority ?? 3,
    flow: ask.flow,
    weight: ask.weight ?? 1,
    deadline: ask.deadline ?? Infinity,
  };
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
    headroom: number;
  },
  dryRun: boolean,
  ops: Op[],
): Promise<void> {
  const clock = new FakeClock();
  const realSetTimeout = globalThis.setTimeout;
  const realClearTimeout = globalThis.clearTimeout;
  const realNow = performance.now;
  Object.assign(globalThis, {
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  // Hold times and deadlines run on the same fake clock.
  performance.now = () => clock.now;
  try {
    const limiter = new Limiter({ ...settings, dryRun });
    const model = new Model(
      settings.limit,
      settings.queue,
      settings.queueTimeout,
      settings.order === "lifo",
      dryRun,
      settings.headroom,
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
          model.acquire(id, clock.now, asked(step.ask), controller);
          limiter.acquire({ signal: controller?.signal, ...step.ask }).then(
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
          const permit = limiter.tryAcquire(step.ask);
          if (permit) permits.set(id, permit);
          outcomes.set(id, { state: permit ? "granted" : "none" });
          model.tryAcquire(id, clock.now, asked(step.ask));
          break;
        }
        case "release": {
          const held = [...model.granted].sort((a, b) => a - b);
          if (held.length === 0) break;
          const target = held[step.pick % held.length];
          permits.get(target)!.release();
          model.release(target, clock.now);
          break;
        }
        case "abort": {
          if (controllers.length === 0) break;
          const controller = controllers[step.pick % controllers.length];
          if (controller.signal.aborted) break;
          model.abort(controller, clock.now);
          controller.abort(new Error("gone"));
          break;
        }
        case "time":
          clock.advance(step.ms);
          model.time(clock.now);
          break;
        case "limit":
          limiter.limit = step.value;
          model.setLimit(step.value, clock.now);
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
        queued: model.waiters.length,
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
      let held = 0;
      for (const [id, hold] of model.holds) {
        if (!model.released.has(id)) held += hold.weight;
      }
      assert.equal(held, stats.active);
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
    performance.now = realNow;
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
