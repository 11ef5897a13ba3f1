// @ts-check
/**
 * The Hono app of examples/hono_app.mjs on Node.js, behind @hono/node-server:
 *
 *   PORT=8000 node examples/node_hono.mjs
 *
 * From a clone of this repository, `deno task build:npm --emit` first builds
 * the npm package that "floodgate" resolves to and installs the rest;
 * elsewhere, install the tarball that README.md's Install section builds
 * (floodgate is not on npm yet) and `npm install hono @hono/node-server`.
 */
import { serve } from "@hono/node-server";
import { app } from "./hono_app.mjs";

serve({
  fetch: app.fetch,
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
});
