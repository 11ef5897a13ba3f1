/**
 * What one rejection costs in-process (no HTTP): a throttled handler called
 * with a request that it turns away, as "full" and by prediction
 * ("timeout"), and the same for `Limiter.acquire()`. All cases run in one
 * process, in interleaved rounds (the order reverses each round): each round
 * times a batch of calls of every case, so that a pause of the machine or a
 * collection hits every case alike, and the ratio of two cases is taken
 * within each round. Prints one JSON object: per case the median
 * nanoseconds per call, per comparison the ratios round by round.
 *
 * Runs on Deno and Bun as it is (`deno run -A bench/rejection_micro.ts`,
 * `bun bench/rejection_micro.ts`) and on Node from the npm build
 * (bench/run.ts --only rejection_cost). $ROUNDS and $BATCH change the shape.
 */
import { Limiter, throttle } from "../mod.ts";

const handler = () => new Response("never");
const request = new Request("http://localhost/");
const ignore = () => {};

/**
 * Its only permit held: every caller is turned away as "full". With
 * `measured`, after one hold was measured, so that `"auto"` estimates the
 * wait as it does on a server that has been running.
 */
function full(measured: boolean): Limiter {
  const limiter = new Limiter({ limit: 1 });
  if (measured) limiter.tryAcquire()!.release();
  limiter.tryAcquire();
  return limiter;
}

/**
 * Its only permit held after one hold was measured, with a queue: a caller
 * with `deadline: 0` is turned away by prediction.
 */
function predicting(): Limiter {
  const limiter = new Limiter({ limit: 1, queue: 100 });
  limiter.tryAcquire()!.release();
  limiter.tryAcquire();
  return limiter;
}

const noDeadline = () => undefined;
const zero = () => 0;
const predictingLimiter = predicting();
const fullLimiter = full(true);

/** Each case: one rejected call. */
const CASES: Record<string, () => unknown> = {};
function add(name: string, fn: () => unknown): void {
  CASES[name] = fn;
}
{
  const h = throttle(handler, { limiter: full(false), retryAfter: 1 });
  add('throttle: "full", retryAfter 1', () => h(request));
}
{
  const h = throttle(handler, { limiter: full(true) });
  add('throttle: "full", "auto"', () => h(request));
}
{
  const h = throttle(handler, { limiter: full(true), deadline: noDeadline });
  add('throttle: "full", "auto", deadline callback', () => h(request));
}
{
  const h = throttle(handler, { limiter: predicting(), deadline: zero });
  add('throttle: "timeout" by prediction, "auto"', () => h(request));
}
{
  const h = throttle(handler, {
    limiter: predicting(),
    deadline: zero,
    retryAfter: 1,
  });
  add('throttle: "timeout" by prediction, retryAfter 1', () => h(request));
}
add('Limiter.acquire(): "full"', () => fullLimiter.acquire().catch(ignore));
add(
  'Limiter.acquire(): "timeout" by prediction',
  () => predictingLimiter.acquire({ deadline: 0 }).catch(ignore),
);

/** [case, baseline]: the ratios reported. */
const COMPARED: Array<[string, string]> = [
  [
    'throttle: "timeout" by prediction, "auto"',
    'throttle: "full", "auto", deadline callback',
  ],
  ['throttle: "timeout" by prediction, "auto"', 'throttle: "full", "auto"'],
  [
    'throttle: "timeout" by prediction, retryAfter 1',
    'throttle: "full", retryAfter 1',
  ],
  ['throttle: "full", "auto"', 'throttle: "full", retryAfter 1'],
  ['Limiter.acquire(): "timeout" by prediction', 'Limiter.acquire(): "full"'],
];

const env = (globalThis as {
  process?: { env: Record<string, string | undefined> };
}).process?.env ?? {};
const rounds = Number(env.ROUNDS ?? 40);
const batch = Number(env.BATCH ?? 20_000);

/** ns per call of one batch of `fn`; promises are awaited together. */
async function time(fn: () => unknown): Promise<number> {
  const pending: unknown[] = [];
  const started = performance.now();
  for (let i = 0; i < batch; i++) {
    const result = fn();
    if (result instanceof Promise) pending.push(result);
  }
  if (pending.length) await Promise.all(pending);
  return (performance.now() - started) * 1e6 / batch;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const names = Object.keys(CASES);
// Every case must be the rejection it claims to be.
for (const name of names) {
  const response = await CASES[name]();
  if (response instanceof Response && response.status !== 503) {
    throw new Error(`${name}: got ${response.status}`);
  }
}
const samples: Record<string, number[]> = {};
for (const name of names) samples[name] = [];
// Warm-up: two rounds, not recorded.
for (let round = -2; round < rounds; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  for (const name of order) {
    const ns = await time(CASES[name]);
    if (round >= 0) samples[name].push(ns);
  }
}
if (predictingLimiter.stats().rejected !== 0) {
  throw new Error("a prediction was counted as full");
}
console.log(JSON.stringify({
  rounds,
  batch,
  cases: Object.fromEntries(names.map((n) => [n, median(samples[n])])),
  ratios: Object.fromEntries(
    COMPARED.map(([name, base]) => [
      `${name} / ${base}`,
      samples[name].map((ns, i) => ns / samples[base][i]),
    ]),
  ),
}));
