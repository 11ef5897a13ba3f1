/**
 * A throttled app with a Prometheus `/metrics` route on Bun.serve:
 *
 *   PORT=8000 bun examples/metrics_bun.js
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once, 2 more wait, and
 * the rest get a 503. `/metrics` bypasses the gate and serves its metrics.
 */
import { throttle } from "floodgate";
import { prometheus } from "floodgate/prometheus";

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Bun after ${work} ms\n`);
}

const app = throttle(handler, { limit: 2, queue: 2 });
const metrics = prometheus([{ name: "app", target: app }]);

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
  routes: { "/metrics": metrics },
  fetch: app,
});
