// @ts-check
/**
 * A throttled app (on Node.js, Bun or Deno, behind @hono/node-server)
 * recorded with OpenTelemetry, and the SDK's Prometheus exporter serving the
 * metrics on a port of its own:
 *
 *   PORT=8000 METRICS_PORT=9464 node examples/otel.mjs
 *   PORT=8000 METRICS_PORT=9464 bun examples/otel.mjs
 *   PORT=8000 METRICS_PORT=9464 deno run --allow-net --allow-env \
 *     --allow-read --allow-sys examples/otel.mjs
 *
 * From a clone of this repository, `deno task build:npm --emit` first installs
 * the dependencies and builds the npm package that "floodgate" resolves to on
 * Node.js (Deno reads the source through deno.json, Bun through
 * examples/tsconfig.json); elsewhere, install the tarball that README.md's
 * Install section builds (floodgate is not on npm yet) and `npm install
 * @hono/node-server @opentelemetry/api @opentelemetry/sdk-metrics
 * @opentelemetry/exporter-prometheus`.
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once, 2 more wait, and
 * the rest get a 503. `http://127.0.0.1:9464/metrics` serves the metrics
 * (`floodgate_requests_total`, `floodgate_wait_duration`, ...).
 */
import { serve } from "@hono/node-server";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import { throttle } from "floodgate";
import { instrument } from "floodgate/otel";

const exporter = new PrometheusExporter({
  host: "127.0.0.1",
  port: Number(process.env.METRICS_PORT ?? 9464),
});
const provider = new MeterProvider({ readers: [exporter] });

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello after ${work} ms\n`);
}

const app = throttle(handler, { limit: 2, queue: 2 });
instrument(app, { meter: provider.getMeter("example"), name: "app" });

serve({
  fetch: app,
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
});
