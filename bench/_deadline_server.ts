/**
 * The server of the deadline benchmarks (bench/suites/deadline.ts), for Deno,
 * Bun and Node alike: a handler that holds its slot for $HOLD ms behind
 * `throttle()`, configured from the environment, which also counts what the
 * clients cannot see. It exits by itself after $LIFETIME seconds.
 *
 *   $HOLD, $LIMIT, $QUEUE   the handler's time (ms) and the gate's sizes
 *   $ORDER                  "fifo" (default) or "adaptive"; $TARGET, $INTERVAL
 *   $RETRY_AFTER            "auto" (default) or whole seconds
 *   $DEADLINE               "header": `deadline` from `x-request-timeout`
 *   $MODE                   "serve" (default); "full": every request is
 *                           rejected as "full" (a permit held after a hold
 *                           time was measured, no queue);
 *                           "predicted": every request is rejected by
 *                           prediction (a permit held with a measured hold
 *                           time, a queue, and a deadline it cannot meet)
 *
 * GET /stats answers, since the last GET /reset: the handler's runs, the
 * runs that started after their client had given up (the client sends
 * `x-sent-at`, its `Date.now()`, and `x-patience`, ms), the served (2xx) and
 * rejected responses, and the percentiles of the served requests' time in
 * the server (from the call of the throttled handler to its response), of
 * their wait in the queue (from the limiter's `admitted` events) and of the
 * handler's own time.
 */
import process from "node:process";
import { Limiter, throttle, type ThrottleOptions } from "../mod.ts";
import { percentile } from "../scripts/_stats.ts";

const env = process.env;
const hold = Number(env.HOLD ?? 25);
const mode = env.MODE ?? "serve";
const retryAfter = env.RETRY_AFTER === undefined || env.RETRY_AFTER === "auto"
  ? "auto" as const
  : Number(env.RETRY_AFTER);

let runs = 0;
let lateRuns = 0;
let served = 0;
let rejected = 0;
let latencies: number[] = [];
/** How long the handler itself took: the hold time, timer lateness included. */
let holds: number[] = [];
/** How long the served requests waited in the queue, ms (0: at once). */
let waits: number[] = [];
/** How many waiters were let go with "timeout" after they waited. */
let dropped = 0;

const body = new Uint8Array(1024).fill(97);
async function handler(request: Request): Promise<Response> {
  runs++;
  const sentAt = request.headers.get("x-sent-at");
  const patience = request.headers.get("x-patience");
  if (
    sentAt !== null && patience !== null &&
    Date.now() - Number(sentAt) > Number(patience)
  ) lateRuns++;
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, hold));
  holds.push(performance.now() - started);
  return new Response(body);
}

const deadlineFromHeader = (request: Request) => {
  const value = request.headers.get("x-request-timeout");
  return value === null ? undefined : Number(value);
};

function options(): ThrottleOptions {
  if (mode === "full") {
    // A hold time is measured, as on a server that has been running, so
    // that "auto" estimates the wait as it does for "predicted".
    const limiter = new Limiter({ limit: 1 });
    limiter.tryAcquire()!.release();
    limiter.tryAcquire();
    return { limiter, retryAfter };
  }
  if (mode === "predicted") {
    // A hold time is measured (the first hold is timed), then the only
    // permit is held for good: a caller with deadline 0 is predicted late.
    const limiter = new Limiter({ limit: 1, queue: 100 });
    limiter.tryAcquire()!.release();
    limiter.tryAcquire();
    return { limiter, retryAfter, deadline: () => 0 };
  }
  return {
    limit: Number(env.LIMIT ?? 4),
    queue: Number(env.QUEUE ?? 0),
    order: (env.ORDER ?? "fifo") as "fifo" | "adaptive",
    ...(env.TARGET ? { target: Number(env.TARGET) } : {}),
    ...(env.INTERVAL ? { interval: Number(env.INTERVAL) } : {}),
    retryAfter,
    ...(env.DEADLINE === "header" ? { deadline: deadlineFromHeader } : {}),
  };
}

const throttled = throttle(handler, options());
throttled.observe({
  admitted: ({ wait }) => void waits.push(wait),
  rejected: ({ reason, wait }) => {
    if (reason === "timeout" && wait > 0) dropped++;
  },
});

function record(response: Response, started: number): void {
  if (response.status === 200) {
    served++;
    latencies.push(performance.now() - started);
  } else rejected++;
}

function stats(): Response {
  const sorted = latencies;
  return Response.json({
    runs,
    lateRuns,
    served,
    rejected,
    p50: sorted.length ? percentile(sorted, 50) : 0,
    p99: sorted.length ? percentile(sorted, 99) : 0,
    holdP50: holds.length ? percentile(holds, 50) : 0,
    holdP99: holds.length ? percentile(holds, 99) : 0,
    waitP50: waits.length ? percentile(waits, 50) : 0,
    waitP99: waits.length ? percentile(waits, 99) : 0,
    dropped,
    limiter: throttled.stats(),
  });
}

function serve(request: Request): Response | Promise<Response> {
  const path = request.url.slice(request.url.indexOf("/", 8));
  if (path === "/stats") return stats();
  if (path === "/reset") {
    runs =
      lateRuns =
      served =
      rejected =
        0;
    latencies = [];
    holds = [];
    waits = [];
    dropped = 0;
    return new Response("reset");
  }
  const started = performance.now();
  const result = throttled(request);
  if (result instanceof Response) {
    record(result, started);
    return result;
  }
  return result.then((response) => {
    record(response, started);
    return response;
  });
}

const hostname = "127.0.0.1";
const port = Number(env.PORT);
const { Bun } = globalThis as unknown as {
  Bun?: {
    serve(options: {
      hostname: string;
      port: number;
      fetch: typeof serve;
    }): unknown;
  };
};
if (Bun) Bun.serve({ hostname, port, fetch: serve });
else if ("Deno" in globalThis) {
  Deno.serve({ hostname, port, onListen() {} }, serve);
} else {
  const { serve: nodeServe } = await import("@hono/node-server");
  nodeServe({ fetch: serve, hostname, port });
}
setTimeout(() => process.exit(0), Number(env.LIFETIME ?? 120) * 1000);
