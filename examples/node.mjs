// @ts-check
/**
 * A throttled fetch handler on Node.js behind @hono/node-server:
 *
 *   PORT=8000 node examples/node.mjs
 *
 * From a clone of this repository, `deno task build:npm --emit` first builds
 * the npm package that "floodgate" resolves to and installs @hono/node-server;
 * elsewhere, install the tarball that README.md's Install section builds
 * (floodgate is not on npm yet) and `npm install @hono/node-server`.
 *
 * `/?work=MS` takes MS milliseconds; at most 2 run at once and the rest get a
 * 503. `/stats` bypasses the gate and reports it.
 */
import { serve } from "@hono/node-server";
import { throttle } from "floodgate";

const gate = throttle(handler, {
  limit: 2,
  skip: (request) => new URL(request.url).pathname === "/stats",
});

/**
 * @param {Request} request
 * @returns {Promise<Response>}
 */
async function handler(request) {
  const url = new URL(request.url);
  if (url.pathname === "/stats") return Response.json(gate.stats());
  const work = Number(url.searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from Node.js after ${work} ms\n`);
}

serve({
  fetch: gate,
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
});
