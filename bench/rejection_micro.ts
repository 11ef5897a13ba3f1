/**
 * What one rejection costs in-process, with mitata (no HTTP noise): a
 * throttled handler called with a request that is turned away, as "full"
 * (today's rejection) and by prediction ("timeout"), and the same for
 * `Limiter.acquire()`. Prints one JSON line: nanoseconds per rejection,
 * medians. $CASE picks one case.
 *
 * Runs on Deno and Bun as it is (`deno run -A bench/rejection_micro.ts`,
 * `bun bench/rejection_micro.ts`) and on Node from the npm build
 * (bench/run.ts --only rejection_cost).
 */
import { measure } from "mitata";
import { Limiter, throttle } from "../mod.ts";

const handler = () => new Response("never");
const request = new Request("http://localhost/");
const ignore = () => {};

/** Its only permit held: every caller is turned away as "full". */
function full(): Limiter {
  const limiter = new Limiter({ limit: 1 });
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

const fullHandler = throttle(handler, { limiter: full() });
const fixedHandler = throttle(handler, { limiter: full(), retryAfter: 1 });
const fullWithCallback = throttle(handler, {
  limiter: full(),
  deadline: () => 0,
});
const predictedHandler = throttle(handler, {
  limiter: predicting(),
  deadline: () => 0,
});
const fullLimiter = full();
const predictingLimiter = predicting();

const cases: Record<string, () => unknown> = {
  'throttle: "full"': () => fullHandler(request),
  'throttle: "full", retryAfter 1': () => fixedHandler(request),
  'throttle: "full", with a deadline callback': () => fullWithCallback(request),
  'throttle: "timeout" by prediction': () => predictedHandler(request),
  'Limiter.acquire(): "full"': () => fullLimiter.acquire().catch(ignore),
  'Limiter.acquire(): "timeout" by prediction': () =>
    predictingLimiter.acquire({ deadline: 0 }).catch(ignore),
};

/** $CASE picks one case (a fresh process per case avoids order effects). */
const picked = (globalThis as {
  process?: { env: Record<string, string | undefined> };
}).process?.env.CASE;
const result: Record<string, number> = {};
for (const [name, fn] of Object.entries(cases)) {
  if (picked !== undefined && name !== picked) continue;
  // Every case must be the rejection it claims to be.
  const response = await fn();
  if (response instanceof Response && response.status !== 503) {
    throw new Error(`${name}: got ${response.status}`);
  }
  result[name] = (await measure(fn, { min_cpu_time: 300 * 1e6 })).p50;
}
const stats = predictingLimiter.stats();
if (stats.rejected !== 0) throw new Error("a prediction was counted as full");
console.log(JSON.stringify(result));
