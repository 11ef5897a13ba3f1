/**
 * The server of the HTTP benchmarks, for Deno, Bun and Node alike. $MODE
 * picks the handler, $PORT the port on 127.0.0.1; it exits by itself after
 * $LIFETIME seconds.
 *
 *   raw            new Response("hello")
 *   raw-again      the same, measured as a mode of its own: the noise floor
 *   throttled      the same behind throttle() with the limit never reached
 *   keyed          ... with key: the path
 *   queued         ... with queue: 100
 *   rejecting      ... behind a limiter whose only permit is held: every request gets the 503
 *   small-body     ... with release: "body"
 *   stream-raw     1 MiB streamed in 16 KiB chunks
 *   stream-body    the same behind throttle() with release: "body"
 *   slow-raw       50 ms of waiting, then 16 KiB
 *   slow-throttled the same behind throttle({ limit: 64 })
 *   prometheus     throttled, observed by prometheus() (never scraped: the
 *                  cost is the counting on each request)
 *   otel           throttled, recorded by instrument() into a real
 *                  MeterProvider of @opentelemetry/sdk-metrics
 *   prioritized    hello behind throttle() with priority, flow and weight
 *                  callbacks on every request (they read nothing of the
 *                  request, which costs what it costs without floodgate),
 *                  the limit never reached
 *   fair-none      10 ms of waiting behind throttle({ limit: 8, queue: 64 })
 *   fair-flow      the same with flow: the x-client header
 *
 * The handler goes to the server as it is, as a user passes it:
 * `Deno.serve(handler)`, `Bun.serve({ fetch: handler })` and, on Node,
 * `serve({ fetch: handler })` of @hono/node-server.
 */
import process from "node:process";
import { Limiter, throttle } from "../mod.ts";
import { prometheus } from "../prometheus.ts";
import { instrument } from "../otel.ts";

const hello = () => new Response("hello");
const chunk = new Uint8Array(16 * 1024).fill(97);
const stream = () =>
  new Response(
    new ReadableStream({
      start(controller) {
        for (let i = 0; i < 64; i++) controller.enqueue(chunk);
        controller.close();
      },
    }),
  );
const slow = async () => {
  const body = new Uint8Array(16 * 1024).fill(98); // held while it waits
  await new Promise((resolve) => setTimeout(resolve, 50));
  return new Response(body);
};
const tenMs = async () => {
  await new Promise((resolve) => setTimeout(resolve, 10));
  return new Response("done");
};
const held = new Limiter({ limit: 1 });
const FLOWS = Array.from({ length: 8 }, (_, i) => `tenant-${i}`);
let served = 0;
held.tryAcquire();

type Handler = (
  request: Request,
  ...rest: unknown[]
) => Response | Promise<Response>;

const handlers: Record<string, Handler> = {
  "raw": hello,
  "raw-again": hello,
  "throttled": throttle(hello, { limit: 1000 }),
  "keyed": throttle(hello, {
    limit: 1000,
    key: (request) => new URL(request.url).pathname,
  }),
  "queued": throttle(hello, { limit: 1000, queue: 100 }),
  "rejecting": throttle(hello, { limiter: held }),
  "small-body": throttle(hello, { limit: 1000, release: "body" }),
  "stream-raw": stream,
  "stream-body": throttle(stream, { limit: 1000, release: "body" }),
  "slow-raw": slow,
  "slow-throttled": throttle(slow, { limit: 64 }),
  "prioritized": throttle(hello, {
    limit: 1000,
    priority: () => (served = (served + 1) & 7),
    flow: () => FLOWS[served],
    weight: () => 1 + (served & 1),
  }),
  "fair-none": throttle(tenMs, { limit: 8, queue: 64 }),
  "fair-flow": throttle(tenMs, {
    limit: 8,
    queue: 64,
    flow: (request) => request.headers.get("x-client") ?? "anonymous",
  }),
};
if (process.env.MODE === "prometheus") {
  const observed = throttle(hello, { limit: 1000 });
  prometheus(observed);
  handlers.prometheus = observed;
}
if (process.env.MODE === "otel") {
  const sdk = await import("@opentelemetry/sdk-metrics");
  const reader = new sdk.PeriodicExportingMetricReader({
    exporter: new sdk.InMemoryMetricExporter(
      sdk.AggregationTemporality.CUMULATIVE,
    ),
    exportIntervalMillis: 3_600_000,
  });
  const provider = new sdk.MeterProvider({ readers: [reader] });
  const observed = throttle(hello, { limit: 1000 });
  instrument(observed, { meter: provider.getMeter("bench") });
  handlers.otel = observed;
}
const handler = handlers[process.env.MODE ?? "raw"];
if (!handler) throw new Error(`unknown MODE ${process.env.MODE}`);
const hostname = "127.0.0.1";
const port = Number(process.env.PORT);
const { Bun } = globalThis as unknown as {
  Bun?: {
    serve(options: { hostname: string; port: number; fetch: Handler }): unknown;
  };
};
if (Bun) Bun.serve({ hostname, port, fetch: handler });
else if ("Deno" in globalThis) {
  Deno.serve({ hostname, port, onListen() {} }, handler);
} else {
  const { serve } = await import("@hono/node-server");
  serve({ fetch: handler, hostname, port });
}
setTimeout(() => process.exit(0), Number(process.env.LIFETIME ?? 60) * 1000);
