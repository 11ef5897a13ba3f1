// @ts-check
/**
 * A Hono app with a limit per route and a server-sent events route that
 * holds its slot while it streams. examples/hono.ts serves it on Deno and
 * Bun, examples/node_hono.mjs on Node.js.
 */
import { Hono } from "hono";
import { routePath } from "hono/route";
import { streamSSE } from "hono/streaming";
import { throttle } from "floodgate/hono";

const gate = throttle({
  limit: 2,
  release: "body",
  key: (c) => routePath(c, -1),
  skip: (c) => c.req.path === "/stats",
});

export const app = new Hono();
app.use(gate);
app.get("/stats", (c) => c.json(gate.stats()));
app.get("/", async (c) => {
  const work = Number(c.req.query("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return c.text(`hello from Hono after ${work} ms\n`);
});
app.get("/events", (c) =>
  streamSSE(c, async (stream) => {
    for (let i = 1; i <= 3; i++) {
      await stream.writeSSE({ data: `tick ${i}` });
      await stream.sleep(100);
    }
  }));
