/**
 * A throttled app with a Prometheus `/metrics` route, for `deno serve`:
 *
 *   deno serve --allow-net --host 127.0.0.1 --port 8000 examples/metrics_deno.ts
 *
 * Its gate has a queue, so Deno 2 prints a one-time warning about
 * `request.signal` on the first request that could queue; start Deno with
 * `--unstable-no-legacy-abort` (or put `"unstable": ["no-legacy-abort"]` in
 * deno.json) to keep a waiting client that disconnects detected without it.
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once, 2 more wait, and
 * the rest get a 503. `/metrics` bypasses the gate and serves its metrics.
 */
import { throttle } from "@floodgate/floodgate";
import { prometheus } from "@floodgate/floodgate/prometheus";

const app = throttle(async (request: Request) => {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Deno after ${work} ms\n`);
}, { limit: 2, queue: 2 });
const metrics = prometheus([{ name: "app", target: app }]);

export default {
  fetch: (request) =>
    new URL(request.url).pathname === "/metrics"
      ? metrics(request)
      : app(request),
} satisfies Deno.ServeDefaultExport;
