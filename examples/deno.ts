/**
 * A throttled fetch handler for `deno serve`, with a limit per client:
 *
 *   deno serve --allow-net --host 127.0.0.1 --port 8000 examples/deno.ts
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once for each client
 * address and the rest get a 503. `/ws` upgrades to an echoing WebSocket (its
 * slot frees once the upgrade response is returned). `/stats` bypasses the
 * gate and reports it.
 *
 * With a `queue`, start Deno with `--unstable-no-legacy-abort` (or put
 * `"unstable": ["no-legacy-abort"]` in deno.json): a waiting client that
 * disconnects then leaves the queue without Deno's warning about
 * `request.signal`.
 */
import { throttle } from "@floodgate/floodgate";

const gate = throttle(handler, {
  limit: 2,
  release: "body",
  // The handler's second argument reaches `key`: Deno's info on the
  // connection. A Unix socket has no client address, so all share one key.
  key: (_request, info) =>
    info.remoteAddr.transport === "tcp" ? info.remoteAddr.hostname : "",
  skip: (request) => new URL(request.url).pathname === "/stats",
});

async function handler(
  request: Request,
  _info: Deno.ServeHandlerInfo,
): Promise<Response> {
  const url = new URL(request.url);
  if (url.pathname === "/stats") return Response.json(gate.stats());
  if (url.pathname === "/ws") {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send(event.data);
    return response;
  }
  const work = Number(url.searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Deno after ${work} ms\n`);
}

export default { fetch: gate } satisfies Deno.ServeDefaultExport;
