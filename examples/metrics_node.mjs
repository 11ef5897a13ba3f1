// @ts-check
/**
 * A throttled app with a Prometheus `/metrics` route on Node.js behind
 * @hono/node-server:
 *
 *   PORT=8000 node examples/metrics_node.mjs
 *
 * From a clone of this repository, `deno task build:npm --emit` first builds
 * the npm package that "floodgate" resolves to; elsewhere, install the
 * tarball that README.md's Install section builds (floodgate is not on npm
 * yet) and `npm install @hono/node-server`.
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once, 2 more wait, and
 * the rest get a 503. `/metrics` bypasses the gate and serves its metrics.
 */
import { serve } from "@hono/node-server";
import { throttle } from "floodgate";
import { prometheus } from "floodgate/prometheus";

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Node.js after ${work} ms\n`);
}

const app = throttle(handler, { limit: 2, queue: 2 });
const metrics = prometheus([{ name: "app", target: app }]);

serve({
  fetch: (request) =>
    new URL(request.url).pathname === "/metrics"
      ? metrics(request)
      : app(request),
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
});
