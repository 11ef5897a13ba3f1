/**
 * Heap bytes per queued waiter (with and without an AbortSignal) and per
 * live key, what a million distinct flows that queued and left leave on the
 * heap, and a check that a waiter keeps nothing alive that its caller
 * does not hold: once granted and released, a limiter whose caller kept
 * only the AbortSignal must be collectable. Prints one JSON line.
 *
 * deno run -A --v8-flags=--expose-gc bench/memory.ts | bun bench/memory.ts |
 * node --expose-gc npm/bench/memory.js (transpiled by bench/_ensure.ts)
 */
import process from "node:process";
import { Limiter, throttle } from "../mod.ts";
import { settledHeap } from "../scripts/_heap.ts";

const N = 100_000;

async function perWaiter(withSignal: boolean): Promise<number> {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const held = limiter.tryAcquire()!;
  const signals = withSignal
    ? Array.from({ length: N }, () => new AbortController().signal)
    : [];
  const before = await settledHeap();
  const waits = Array.from(
    { length: N },
    (_, i) => limiter.acquire(withSignal ? { signal: signals[i] } : undefined),
  );
  const after = await settledHeap();
  // Handled before they reject: on Deno, handling 100,000 promises after
  // they rejected takes minutes, growing with the square of their number.
  const settled = Promise.allSettled(waits);
  limiter.close();
  await settled;
  held.release();
  return (after - before) / N;
}

async function perKey(): Promise<number> {
  let release!: () => void;
  const gate = new Promise<Response>((resolve) =>
    release = () => resolve(new Response())
  );
  const handler = throttle(() => gate, { key: (request) => request.url });
  const requests = Array.from(
    { length: N },
    (_, i) => new Request(`http://x/${i}`),
  );
  const before = await settledHeap();
  const answers = requests.map((request) => handler(request));
  const after = await settledHeap();
  if (handler.stats().keys !== N) throw new Error("keys were not live");
  release();
  await Promise.all(answers);
  return (after - before) / N;
}

/**
 * Heap bytes over the baseline after a million distinct flows (over eight
 * priorities) queued behind a held permit and were served, 1,000 at a time.
 */
async function afterMillionFlows(): Promise<number> {
  const limiter = new Limiter({ limit: 1, queue: Infinity });
  const noop = () => {};
  const batch = async (from: number) => {
    const holder = limiter.tryAcquire()!;
    const runs = [];
    for (let i = from; i < from + 1000; i++) {
      runs.push(limiter.run(noop, { flow: `flow-${i}`, priority: i % 8 }));
    }
    holder.release();
    await Promise.all(runs);
  };
  for (let from = 0; from < 20_000; from += 1000) await batch(from);
  const before = await settledHeap();
  for (let from = 20_000; from < 1_020_000; from += 1000) await batch(from);
  return (await settledHeap()) - before;
}

/** Whether a released waiter's limiter can be collected while its signal lives. */
async function nothingKeptAlive(): Promise<boolean> {
  const controller = new AbortController();
  let collected = false;
  const registry = new FinalizationRegistry(() => collected = true);
  await (async () => {
    const limiter = new Limiter({ limit: 1, queue: 1, queueTimeout: 60_000 });
    registry.register(limiter, "limiter");
    const first = limiter.tryAcquire()!;
    const waiting = limiter.acquire({ signal: controller.signal });
    first.release();
    (await waiting).release();
  })();
  for (let i = 0; i < 20 && !collected; i++) await settledHeap();
  return collected && !controller.signal.aborted;
}

console.log(JSON.stringify({
  waiter: await perWaiter(false),
  waiterWithSignal: await perWaiter(true),
  key: await perKey(),
  millionFlows: await afterMillionFlows(),
  releasedWaiterKeepsNothing: await nothingKeptAlive(),
  heapUsed: process.memoryUsage().heapUsed,
}));
