/**
 * A burst of concurrent requests against a handler that needs a downstream
 * resource with room for 8 calls at once (a database pool, say), first
 * behind `throttle({ limit: 8, queue: 16 })`, then unprotected, with what
 * each server went through.
 *
 * Usage: deno task demo
 */
import { Limiter, throttle } from "../mod.ts";

const BURST = 400;
const SERVICE_MS = 100;
const LIMIT = 8;
const QUEUE = 16;

interface Outcome {
  status: number;
  ms: number;
  queued: boolean;
}

/**
 * A handler that holds 256 KiB while it runs and makes one SERVICE_MS call
 * to a downstream with room for LIMIT calls (more wait in its pool).
 */
function slowHandler() {
  const load = { running: 0, peak: 0 };
  const pool = new Limiter({ limit: LIMIT, queue: Infinity });
  const handler = async (_request: Request) => {
    load.peak = Math.max(load.peak, ++load.running);
    const buffer = new Uint8Array(256 * 1024).fill(1);
    await pool.run(() =>
      new Promise((resolve) => setTimeout(resolve, SERVICE_MS))
    );
    load.running--;
    return new Response(`served ${buffer[0]}\n`);
  };
  return { load, handler };
}

async function burst(label: string, throttled: boolean) {
  const { load, handler } = slowHandler();
  const gate = throttle(handler, { limit: LIMIT, queue: QUEUE });
  const waited = new Set<number>();
  let peakRss = Deno.memoryUsage().rss;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => {
      if (!throttled) return handler(request);
      const before = gate.stats().queued;
      const answer = gate(request);
      if (gate.stats().queued > before) {
        waited.add(Number(new URL(request.url).searchParams.get("id")));
      }
      return answer;
    },
  );
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, Deno.memoryUsage().rss);
  }, 5);
  const url = `http://127.0.0.1:${server.addr.port}/`;
  let done = 0;
  const progress = (final = false) => {
    const width = 40;
    const filled = Math.round((done / BURST) * width);
    const bar = "#".repeat(filled) + ".".repeat(width - filled);
    Deno.stderr.writeSync(
      new TextEncoder().encode(
        `\r${label.padEnd(12)} [${bar}] ${done}/${BURST}${final ? "\n" : ""}`,
      ),
    );
  };
  const outcomes = await Promise.all(
    Array.from({ length: BURST }, async (_, id): Promise<Outcome> => {
      const start = performance.now();
      const response = await fetch(`${url}?id=${id}`);
      await response.arrayBuffer();
      done++;
      if (done % 20 === 0) progress();
      return {
        status: response.status,
        ms: performance.now() - start,
        queued: waited.has(id),
      };
    }),
  );
  progress(true);
  clearInterval(sampler);
  await server.shutdown();
  return { outcomes, peak: load.peak, peakRss, stats: gate.stats() };
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
  ];
}

const throttled = await burst("throttled", true);
const raw = await burst("unthrottled", false);

const rows: Array<[string, string, string]> = [];
const row = (name: string, a: unknown, b: unknown) =>
  rows.push([name, String(a), String(b)]);
const served = (r: typeof raw) => r.outcomes.filter((o) => o.status === 200);
const ms = (n: number) => `${n.toFixed(0)} ms`;
row(
  "served at once",
  served(throttled).filter((o) => !o.queued).length,
  served(raw).length,
);
row("queued, then served", served(throttled).filter((o) => o.queued).length, 0);
row(
  "rejected with 503",
  throttled.outcomes.filter((o) => o.status === 503).length,
  0,
);
row("handlers running at once (peak)", throttled.peak, raw.peak);
row(
  "p50 latency, served",
  ms(percentile(served(throttled).map((o) => o.ms), 50)),
  ms(percentile(served(raw).map((o) => o.ms), 50)),
);
row(
  "p99 latency, served",
  ms(percentile(served(throttled).map((o) => o.ms), 99)),
  ms(percentile(served(raw).map((o) => o.ms), 99)),
);
row(
  "p99 latency, 503",
  ms(percentile(
    throttled.outcomes.filter((o) => o.status === 503).map((o) => o.ms),
    99,
  )),
  "-",
);
row(
  "peak RSS",
  `${(throttled.peakRss / 2 ** 20).toFixed(0)} MiB`,
  `${(raw.peakRss / 2 ** 20).toFixed(0)} MiB`,
);

console.log(
  `\n${BURST} concurrent requests; each handler makes a ${SERVICE_MS} ms downstream call that serves ${LIMIT} at once; limit ${LIMIT}, queue ${QUEUE}\n`,
);
const widths = [0, 1, 2].map((i) =>
  Math.max(
    ...[["", "throttled", "unthrottled"], ...rows].map((r) => r[i].length),
  )
);
const line = (r: string[]) =>
  `| ${
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(
      " | ",
    )
  } |`;
console.log(line(["", "throttled", "unthrottled"]));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));

if (throttled.peak > LIMIT) {
  console.error(
    `\nthe limit did not hold: ${throttled.peak} handlers ran at once`,
  );
  Deno.exit(1);
}
