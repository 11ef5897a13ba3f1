/**
 * A throttled fetch handler on Bun.serve, with a limit per client:
 *
 *   PORT=8000 bun examples/bun.js
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once for each client
 * address and the rest get a 503. `/ws` upgrades to an echoing WebSocket
 * through the throttled handler (it returns `undefined` after
 * `server.upgrade()`, and the slot frees then). `/stats` bypasses the gate
 * and reports it. examples/tsconfig.json points "floodgate" at the source.
 * Bun's own types check it: see examples/bun_check.jsonc.
 */
import { throttle } from "floodgate";

/** @typedef {import("bun").Server<undefined>} Server */

const gate = throttle(handler, {
  limit: 2,
  release: "body",
  // The handler's second argument reaches `key`: Bun's server, which knows
  // the client's address.
  key: (request, server) => server.requestIP(request)?.address ?? "",
  skip: (request) => new URL(request.url).pathname === "/stats",
});

/**
 * @param {Request} request
 * @param {Server} server
 * @returns {Promise<Response | undefined>}
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
