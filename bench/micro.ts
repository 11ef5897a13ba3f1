/**
 * Microbenchmark of the counting primitive: the time one acquire + release
 * adds to an async no-op when nothing waits, and the time per task when
 * 1,000 tasks share 8 permits; floodgate's Limiter against a bare counter and
 * the well-known promise limiters. The contended case also runs with
 * `priority`, `flow` and `weight` set on every task (16 flows, 3
 * priorities), against p-queue with priorities.
 *
 * Every case runs in one process, in interleaved rounds (the order reverses
 * each round): each round times a batch of calls of every case, so that a
 * pause of the machine or a collection falls on every case alike and the
 * ratio of two cases can be taken within each round. Prints one JSON object:
 * per case the nanoseconds per operation (per task, when contended), round by
 * round; and a summary of the ratios on stderr.
 *
 * Runs on Deno and Bun as it is (`deno run -A bench/micro.ts`,
 * `bun bench/micro.ts`) and on Node from the npm build (bench/run.ts --only
 * micro). $ROUNDS changes the number of rounds.
 */
import pLimit from "p-limit";
import { Sema } from "async-sema";
import PQueue from "p-queue";
import { Limiter } from "../mod.ts";
import { formatSpread, ratios, type Samples, spread } from "./_rounds.ts";

const noop = async () => {};
const yielding = async () => {
  await null;
};

let counter = 0;
const limiter = new Limiter({ limit: 8, queue: Infinity });
const plimit = pLimit(8);
const sema = new Sema(8);
const queue = new PQueue({ concurrency: 8 });

/** One call each, awaited before the next: nothing ever waits. */
const uncontended: Record<string, () => Promise<unknown>> = {
  "no limiter": () => noop(),
  "bare counter": async () => {
    counter++;
    try {
      await noop();
    } finally {
      counter--;
    }
  },
  "floodgate tryAcquire": async () => {
    const permit = limiter.tryAcquire()!;
    try {
      await noop();
    } finally {
      permit.release();
    }
  },
  "floodgate run": () => limiter.run(noop),
  "p-limit": () => plimit(noop),
  "async-sema": async () => {
    await sema.acquire();
    try {
      await noop();
    } finally {
      sema.release();
    }
  },
  "p-queue": () => queue.add(noop),
};

const TASKS = 1000;
const FLOWS = Array.from({ length: 16 }, (_, i) => `tenant-${i}`);
const PRIORITIES = [0, 3, 7];
/** One call each: 1,000 tasks sharing 8 permits, all at once. */
const contended: Record<string, () => Promise<unknown>> = {
  "floodgate run": () => {
    const l = new Limiter({ limit: 8, queue: Infinity });
    return Promise.all(Array.from({ length: TASKS }, () => l.run(yielding)));
  },
  "p-limit": () => {
    const l = pLimit(8);
    return Promise.all(Array.from({ length: TASKS }, () => l(yielding)));
  },
  "async-sema": () => {
    const s = new Sema(8);
    return Promise.all(Array.from({ length: TASKS }, async () => {
      await s.acquire();
      try {
        await yielding();
      } finally {
        s.release();
      }
    }));
  },
  "p-queue": () => {
    const q = new PQueue({ concurrency: 8 });
    return Promise.all(Array.from({ length: TASKS }, () => q.add(yielding)));
  },
  "floodgate run, 16 flows, 3 priorities": () => {
    const l = new Limiter({ limit: 8, queue: Infinity });
    return Promise.all(
      Array.from({ length: TASKS }, (_, i) =>
        l.run(yielding, {
          priority: PRIORITIES[i % 3],
          flow: FLOWS[i % 16],
          weight: 1,
        })),
    );
  },
  "p-queue, 3 priorities": () => {
    const q = new PQueue({ concurrency: 8 });
    return Promise.all(
      Array.from({ length: TASKS }, (_, i) =>
        // p-queue runs the highest number first.
        q.add(yielding, { priority: 7 - PRIORITIES[i % 3] })),
    );
  },
};

const env = (globalThis as {
  process?: { env: Record<string, string | undefined> };
}).process?.env ?? {};
const rounds = Number(env.ROUNDS ?? 40);
/** About how long one batch of a case takes, ms. */
const BATCH_MS = 15;

/** ms for `calls` calls of `fn`, each awaited before the next. */
async function time(fn: () => Promise<unknown>, calls: number) {
  const started = performance.now();
  for (let i = 0; i < calls; i++) await fn();
  return performance.now() - started;
}

/** How many calls of `fn` take about BATCH_MS, once warm. */
async function calibrate(fn: () => Promise<unknown>): Promise<number> {
  await time(fn, 10);
  let calls = 1;
  for (;;) {
    const ms = await time(fn, calls);
    if (ms >= BATCH_MS / 4) {
      return Math.max(1, Math.round(calls * BATCH_MS / ms));
    }
    calls *= 4;
  }
}

const cases = [
  ...Object.entries(uncontended).map(([name, fn]) => ({
    part: "uncontended" as const,
    name,
    fn,
    per: 1,
  })),
  ...Object.entries(contended).map(([name, fn]) => ({
    part: "contended" as const,
    name,
    fn,
    per: TASKS,
  })),
];
const batches = [];
for (const c of cases) batches.push(await calibrate(c.fn));
const samples = {
  uncontended: {} as Samples<number>,
  contended: {} as Samples<number>,
};
// Two rounds of warm-up, not recorded.
for (let round = -2; round < rounds; round++) {
  const order = cases.map((_, i) => i);
  if (round % 2 !== 0) order.reverse();
  for (const i of order) {
    const { part, name, fn, per } = cases[i];
    const ns = (await time(fn, batches[i])) * 1e6 / batches[i] / per;
    if (round >= 0) (samples[part][name] ??= []).push(ns);
  }
}

const PRIORITIZED = "floodgate run, 16 flows, 3 priorities";
const summary = [
  [PRIORITIZED, "floodgate run"],
  ["p-queue, 3 priorities", PRIORITIZED],
  ["p-queue", "floodgate run"],
].map(([name, base]) =>
  `${name} / ${base}: ${
    formatSpread(spread(ratios(samples.contended, name, base, (ns) => ns)))
  }`
);
console.error(summary.join("\n"));
console.log(JSON.stringify({ rounds, batches, ...samples }));
