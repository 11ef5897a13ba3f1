/**
 * Microbenchmark of the counting primitive, with mitata: the time one
 * acquire + release adds to an async no-op when nothing waits, and the time
 * per task when 1,000 tasks share 8 permits; floodgate's Limiter against a
 * bare counter and the well-known promise limiters, in one run. The
 * contended case also runs with `priority`, `flow` and `weight` set on every
 * task (16 flows, 3 priorities), against p-queue with priorities. Prints one
 * JSON line: nanoseconds per operation, medians.
 *
 * Runs on Deno and Bun as it is (`deno run -A bench/micro.ts`,
 * `bun bench/micro.ts`) and on Node from the npm build (bench/run.ts).
 */
import { measure } from "mitata";
import pLimit from "p-limit";
import { Sema } from "async-sema";
import PQueue from "p-queue";
import { Limiter } from "../mod.ts";

const noop = async () => {};
const yielding = async () => {
  await null;
};

async function ns(fn: () => unknown): Promise<number> {
  const stats = await measure(fn, { min_cpu_time: 300 * 1e6 });
  return stats.p50;
}

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
let counter = 0;
const limiter = new Limiter({ limit: 8, queue: Infinity });
const plimit = pLimit(8);
const sema = new Sema(8);
const queue = new PQueue({ concurrency: 8 });

const TASKS = 1000;
const FLOWS = Array.from({ length: 16 }, (_, i) => `tenant-${i}`);
const PRIORITIES = [0, 3, 7];
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

const result: Record<string, Record<string, number>> = {
  uncontended: {},
  contended: {},
};
for (const [name, fn] of Object.entries(uncontended)) {
  result.uncontended[name] = await ns(fn);
}
for (const [name, fn] of Object.entries(contended)) {
  result.contended[name] = (await ns(fn)) / TASKS;
}
console.log(JSON.stringify(result));
