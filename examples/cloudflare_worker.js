// @ts-check
/**
 * A Cloudflare Worker whose fetch handler is throttled:
 *
 *   npx -y wrangler dev --ip 127.0.0.1 examples/cloudflare_worker.js
 *
 * Wrangler's current release needs Node.js 22.12 or later; on Node.js 20 the
 * last release that runs is 4.86, whose workerd knows compatibility dates up
 * to 2026-05-03:
 *
 *   npx -y wrangler@4.86 dev --compatibility-date 2026-05-01 --ip 127.0.0.1 \
 *     examples/cloudflare_worker.js
 *
 * Without wrangler, the `workerd` npm package's binary serves it (`workerd
 * serve config.capnp`) from a config that embeds this file, the npm build's
 * mod.js as the module "floodgate" and its src/*.js under their own names:
 * `startWorker()` in tests/runtime_test.ts writes one.
 *
 * `/?work=MS` takes MS milliseconds; one request runs at a time per isolate
 * and the rest get a 503. Wrangler's bundler follows examples/tsconfig.json to
 * the source; elsewhere, install the tarball that README.md's Install
 * section builds (floodgate is not on npm yet).
 */
import { throttle } from "floodgate";

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from a Worker after ${work} ms\n`);
}

export default { fetch: throttle(handler, { limit: 1 }) };
