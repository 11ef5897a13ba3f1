// @ts-check
/**
 * A Cloudflare Worker whose fetch handler is throttled:
 *
 *   npx wrangler dev --compatibility-date 2026-11-01 examples/cloudflare_worker.js
 *
 * `/?work=MS` takes MS milliseconds; one request runs at a time per isolate
 * and the rest get a 503. Wrangler's bundler follows examples/tsconfig.json to
 * the source; elsewhere, `npm install floodgate`.
 */
import { throttle } from "floodgate";

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from a Worker after ${work} ms\n`);
}

export default { fetch: throttle(handler, { limit: 1 }) };
