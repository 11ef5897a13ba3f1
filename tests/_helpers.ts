import type { LimitSample } from "../mod.ts";

/** A promise with its resolve and reject exposed. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(reason: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (reason: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Lets every pending promise callback and timer due now run. */
export function tick(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Whether `promise` has settled, without waiting for it. */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => done = true, () => done = true);
  await tick();
  return done;
}

export { collector, settledHeap } from "../scripts/_heap.ts";

/** An algorithm that records its samples and returns a scripted limit. */
export function scripted(limit: number) {
  const samples: LimitSample[] = [];
  const algorithm = {
    limit,
    update(sample: LimitSample) {
      samples.push(sample);
    },
  };
  return { algorithm, samples };
}
