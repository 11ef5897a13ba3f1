/**
 * A Cloudflare Worker whose fetch handler is throttled. Deploy it with
 * wrangler after `npm install floodgate`. `/?work=MS` takes MS milliseconds;
 * one request runs at a time per isolate and the rest get a 503.
 */
import { throttle } from "floodgate";

/** @param {Request} request */
async function handler(request) {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 10);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response(`hello from a Worker after ${work} ms\n`);
}

export default { fetch: throttle(handler, { limit: 1 }) };
