/**
 * The server under test of bench/adaptive.ts: each request makes one call to
 * the downstream at $DOWNSTREAM, behind `throttle` with the limit named by
 * $LIMIT ("none", a number, "aimd", "vegas" or "gradient"). `/stats`
 * bypasses the gate. Listens on 127.0.0.1:$PORT; exits after $LIFETIME s.
 */
import process from "node:process";
import {
  aimd,
  gradient,
  type LimitAlgorithm,
  throttle,
  vegas,
} from "../mod.ts";

const downstream = process.env.DOWNSTREAM!;
const spec = process.env.LIMIT ?? "none";
const capacity = Number(process.env.CAPACITY ?? 16);
const algorithms: Record<string, () => LimitAlgorithm> = {
  aimd: () => aimd({ min: 1, max: 10 * capacity }),
  vegas: () => vegas({ min: 1, max: 10 * capacity }),
  gradient: () => gradient({ min: 1, max: 10 * capacity }),
};
const limit = spec === "none" ? Infinity : algorithms[spec]?.() ?? Number(spec);

const gate = throttle(async () => {
  const response = await fetch(downstream);
  return new Response(await response.text());
}, { limit, skip: (request) => request.url.endsWith("/stats") });

Deno.serve(
  { hostname: "127.0.0.1", port: Number(process.env.PORT), onListen() {} },
  (request) =>
    request.url.endsWith("/stats")
      ? Response.json(gate.stats())
      : gate(request),
);
setTimeout(() => Deno.exit(0), Number(process.env.LIFETIME ?? 300) * 1000);
