/**
 * The Hono middleware: `app.use(throttle({ limit: 100 }))` caps how many
 * requests the handlers after it run at once. Hono is a peer dependency that
 * only this entry point needs.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * import { throttle } from "@floodgate/floodgate/hono";
 *
 * const app = new Hono();
 * app.use(throttle({ limit: 100 }));
 * app.get("/", (c) => c.text("hello"));
 * export default app;
 * ```
 *
 * @module
 */
export {
  type HonoThrottleOptions,
  throttle,
  type ThrottleMiddleware,
} from "./src/hono.ts";
