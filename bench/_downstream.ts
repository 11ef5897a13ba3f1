/**
 * A downstream service for bench/adaptive.ts: it serves CAPACITY calls at
 * once, each taking BASE_MS; more calls wait their turn, so latency grows
 * with the load beyond CAPACITY. Listens on 127.0.0.1:$PORT; exits after
 * $LIFETIME seconds.
 */
import process from "node:process";
import { Limiter } from "../mod.ts";

const capacity = Number(process.env.CAPACITY ?? 16);
const base = Number(process.env.BASE_MS ?? 20);
const workers = new Limiter({ limit: capacity, queue: Infinity });

Deno.serve(
  { hostname: "127.0.0.1", port: Number(process.env.PORT), onListen() {} },
  () =>
    workers.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, base));
      return new Response("data");
    }),
);
setTimeout(() => Deno.exit(0), Number(process.env.LIFETIME ?? 300) * 1000);
