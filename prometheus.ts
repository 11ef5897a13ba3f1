/**
 * Prometheus metrics for floodgate, with no dependency: `prometheus(targets)`
 * is a fetch handler that serves the text exposition format 0.0.4.
 *
 * @example
 * ```ts
 * import { throttle } from "@floodgate/floodgate";
 * import { prometheus } from "@floodgate/floodgate/prometheus";
 *
 * const app = throttle((_request: Request) => new Response("hello"));
 * const metrics = prometheus(app);
 * export default {
 *   fetch: (request: Request) =>
 *     new URL(request.url).pathname === "/metrics"
 *       ? metrics(request)
 *       : app(request),
 * };
 * ```
 *
 * @module
 */
export {
  type MetricsHandler,
  type MetricsTarget,
  type NamedTarget,
  prometheus,
  type PrometheusTargets,
} from "./src/prometheus.ts";
