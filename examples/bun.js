/**
 * A throttled fetch handler on Bun.serve:
 *
 *   PORT=8000 bun examples/bun.js
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once and the rest get a
 * 503. `/ws` upgrades to an echoing WebSocket through the throttled handler
 * (it returns `undefined` after `server.upgrade()`, and the slot frees then).
 * `/stats` bypasses the gate and reports it.
 */
import { throttle } from "floodgate";

const gate = throttle(handler, {
  limit: 2,
  release: "body",
  skip: (request) => new URL(request.url).pathname === "/stats",
});

/**
 * @param {Request} request
 * @param {import("bun").Server} server
 */
async function handler(request, server) {
  const url = new URL(request.url);
  if (url.pathname === "/stats") return Response.json(gate.stats());
  if (url.pathname === "/ws") {
    if (server.upgrade(request)) return undefined;
    return new Response("expected a WebSocket upgrade", { status: 400 });
  }
  const work = Number(url.searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Bun after ${work} ms\n`);
}

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
  fetch: gate,
  websocket: {
    message(socket, message) {
      socket.send(message);
    },
  },
});
