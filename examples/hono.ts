/**
 * The Hono app of examples/hono_app.mjs as a module that Deno and Bun serve
 * as it is:
 *
 *   deno serve --no-config --import-map=examples/import_map.json --allow-net --allow-env --host 127.0.0.1 --port 8000 examples/hono.ts
 *   PORT=8000 bun examples/hono.ts
 *
 * On Deno, examples/import_map.json brings in Hono alone instead of the
 * repository's development dependencies; on Bun, examples/tsconfig.json points
 * "floodgate" at the source and Bun installs Hono.
 */
import process from "node:process";
import { app } from "./hono_app.mjs";

export default {
  fetch: app.fetch,
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 8000),
};
