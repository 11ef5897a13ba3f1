import type { Context, Env, MiddlewareHandler, Next } from "hono";
import { type Adapter, gate } from "./_gate.ts";
import type { ThrottleControls, ThrottleOptions } from "./throttle.ts";

/**
 * Options for the Hono middleware: those of the fetch wrapper's `throttle`,
 * with `key`, `skip`, `reject`, `priority`, `flow`, `weight` and `deadline`
 * receiving the Hono `Context`.
 *
 * @example Options kept apart from the middleware
 * ```ts
 * import type { HonoThrottleOptions } from "@floodgate/floodgate/hono";
 *
 * const options: HonoThrottleOptions = {
 *   limit: 8,
 *   key: (c) => c.req.header("x-tenant") ?? "anonymous",
 *   reject: (c, info) => c.json({ error: "busy", retry: info.reason }, 503),
 * };
 * ```
 */
export type HonoThrottleOptions<E extends Env = Env> = ThrottleOptions<
  [],
  Context<E>
>;

/**
 * A Hono middleware with the controls of a throttled handler.
 *
 * @example Reporting the gate and closing it on shutdown
 * ```ts
 * import { Hono } from "hono";
 * import { throttle, type ThrottleMiddleware } from "@floodgate/floodgate/hono";
 *
 * const gate: ThrottleMiddleware = throttle({ limit: 10 });
 * const app = new Hono().use(gate).get("/", (c) => c.text("hello"));
 * await app.request("/");
 * console.log(gate.stats().admitted); // 1
 * await gate.close();
 * ```
 */
export type ThrottleMiddleware<E extends Env = Env> =
  & MiddlewareHandler<E>
  & ThrottleControls;

/** The arguments the gate passes to the route: Hono's own. */
type RouteArguments = [Context, Next];

// A route that threw was answered by onError: for an adaptive limit that is
// a drop. Hono's env is what the server passed after the request.
const hono: Adapter<Context, RouteArguments> = {
  subject: (_request, [c]) => c,
  outcome: ([c]) => c.error === undefined ? "done" : "dropped",
  server: ([c]) => c.env,
  callbackArguments: () => [] as unknown as RouteArguments,
};

/**
 * Releases the slot held by `wrapped` (the route's answer, re-wrapped to
 * release when its body ends) if an outer middleware replaces it with a
 * response that does not stream it, such as a custom error page: nobody
 * would read that body, and the slot would wait for the garbage collector.
 */
function cancelWhenReplaced(c: Context, wrapped: Response): void {
  let owner: object | null = c;
  let accessor: PropertyDescriptor | undefined;
  while (owner !== null && accessor === undefined) {
    accessor = Object.getOwnPropertyDescriptor(owner, "res");
    owner = Object.getPrototypeOf(owner);
  }
  if (accessor?.get === undefined || accessor.set === undefined) return;
  const { get, set } = accessor;
  Object.defineProperty(c, "res", {
    configurable: true,
    get,
    set(value: Response | undefined) {
      const body = wrapped.body;
      set.call(c, value);
      // Clearing `c.res` before setting it is Hono's idiom for a replacement
      // that keeps the body: only a new Response that does not carry the
      // body leaves it unread.
      if (
        value !== undefined && value !== wrapped && body !== null &&
        !body.locked && !wrapped.bodyUsed && value.body !== body
      ) {
        body.cancel().catch(() => {});
      }
    },
  });
}

/** Calls the rest of the chain; the route's answer is `c.res`. */
async function runRoute(
  _request: Request,
  c: Context,
  next: Next,
): Promise<Response> {
  await next();
  return c.res;
}

/**
 * Creates a Hono middleware that caps how many requests run the handlers
 * after it at once: at most `limit`, at most `queue` waiting, and every other
 * request gets a 503 with `Retry-After` (or what `reject` returns).
 *
 * Errors thrown by the route reach Hono's `onError` unchanged and free the
 * slot. With `release: "body"`, a streamed response (`stream()`,
 * `streamSSE()`) holds its slot until the stream ends. Inside `app.use()`,
 * `routePath(c, -1)` from `hono/route` is the matched route, so
 * `key: (c) => routePath(c, -1)` gives every route a limit of its own.
 *
 * @example One limit for the whole app
 * ```ts
 * import { Hono } from "hono";
 * import { throttle } from "@floodgate/floodgate/hono";
 *
 * const app = new Hono();
 * app.use(throttle({ limit: 100, queue: 50 }));
 * app.get("/", (c) => c.text("hello"));
 * export default app;
 * ```
 *
 * @example A limit per route, and a tighter one for uploads
 * ```ts
 * import { Hono } from "hono";
 * import { routePath } from "hono/route";
 * import { throttle } from "@floodgate/floodgate/hono";
 *
 * const app = new Hono();
 * app.use(throttle({ limit: 20, key: (c) => routePath(c, -1) }));
 * app.post("/upload", throttle({ limit: 4 }), (c) => c.text("stored"));
 * app.get("/posts/:id", (c) => c.text(c.req.param("id")));
 * const response = await app.request("/posts/7");
 * console.log(await response.text()); // "7"
 * ```
 *
 * @param options The limit, the queue and how requests are turned away.
 * @returns The middleware, with `stats()` and `close()`.
 * @throws {TypeError} If an option has the wrong type, is unknown, or
 * `limiter` is combined with `key` or a limiter option.
 * @throws {RangeError} If a number is out of range.
 */
export function throttle<E extends Env = Env>(
  options?: HonoThrottleOptions<E>,
): ThrottleMiddleware<E> {
  if (typeof options === "function") {
    throw new TypeError(
      'floodgate/hono: throttle(options) makes a Hono middleware and takes no handler; to wrap a fetch handler use throttle(handler, options) from "floodgate"',
    );
  }
  const gated = gate(runRoute, options, hono);
  // Marks the contexts inside this middleware: the same instance mounted
  // twice on a route (app.use() and the route itself) passes the second
  // time instead of waiting for the slot the request already holds.
  const inside = Symbol("floodgate: inside");
  const middleware: MiddlewareHandler<E> = async function throttle(c, next) {
    if (c instanceof Request) {
      throw new TypeError(
        'floodgate/hono: this is a Hono middleware, for app.use(...); to throttle a fetch handler use throttle(handler, options) from "floodgate"',
      );
    }
    const marked = c as Context & { [inside]?: true };
    if (marked[inside]) return await next();
    marked[inside] = true;
    let ran = false;
    const response = await gated(c.req.raw, c as Context, () => {
      ran = true;
      return next();
    });
    // Not admitted: the rejection becomes the answer.
    if (!ran) return response;
    // Admitted with release "body": the route's answer, re-wrapped. Clearing
    // c.res first stops Hono from merging the old headers in a second time.
    if (response !== c.res) {
      c.res = undefined;
      c.res = response;
      cancelWhenReplaced(c, response);
    }
  };
  return Object.assign(middleware, {
    stats: gated.stats,
    close: gated.close,
    observe: gated.observe,
  });
}
