/**
 * OpenTelemetry metrics for floodgate: `instrument(target, { meter, name })`
 * records requests by result, the load and the wait and hold times.
 * `@opentelemetry/api` is a peer dependency that only this entry point needs.
 *
 * @example
 * ```ts
 * import { metrics } from "@opentelemetry/api";
 * import { throttle } from "@floodgate/floodgate";
 * import { instrument } from "@floodgate/floodgate/otel";
 *
 * const app = throttle((_request: Request) => new Response("hello"));
 * instrument(app, { meter: metrics.getMeter("my-app"), name: "app" });
 * export default { fetch: app };
 * ```
 *
 * @module
 */
export {
  instrument,
  type InstrumentOptions,
  type MetricsTarget,
} from "./src/otel.ts";
