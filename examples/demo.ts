/**
 * A burst of concurrent requests against a handler that needs a downstream
 * resource with room for 8 calls at once (a database pool, say), first
 * behind `throttle({ limit: 8, queue: 16 })`, then unprotected, with what
 * each server went through.
 *
 * Usage: deno task demo
 *
 * The task runs it with `--unstable-no-legacy-abort`: a queued request
 * listens to `request.signal`, and Deno's default (legacy) signal would print
 * a warning about it.
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
  // A progress bar on a terminal; a log gets the final line only.
  const live = Deno.stderr.isTerminal();
  const progress = (final = false) => {
    if (!live && !final) return;
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

/** What one server went through, in numbers. */
function summary(run: Awaited<ReturnType<typeof burst>>) {
  const served = run.outcomes.filter((o) => o.status === 200);
  const rejected = run.outcomes.filter((o) => o.status === 503);
  return {
    atOnce: served.filter((o) => !o.queued).length,
    queued: served.filter((o) => o.queued).length,
    rejected: rejected.length,
    peak: run.peak,
    p50: percentile(served.map((o) => o.ms), 50),
    p99: percentile(served.map((o) => o.ms), 99),
    p99Rejected: percentile(rejected.map((o) => o.ms), 99),
    rssMiB: run.peakRss / 2 ** 20,
  };
}

const a = summary(throttled);
const b = summary(raw);
const ms = (n: number) => Number.isNaN(n) ? "-" : `${n.toFixed(0)} ms`;
const mib = (n: number) => `${n.toFixed(0)} MiB`;
const rows: Array<[string, string, string]> = [
  ["served at once", String(a.atOnce), String(b.atOnce)],
  ["queued, then served", String(a.queued), String(b.queued)],
  ["rejected with 503", String(a.rejected), String(b.rejected)],
  ["handlers running at once (peak)", String(a.peak), String(b.peak)],
  ["p50 latency, served", ms(a.p50), ms(b.p50)],
  ["p99 latency, served", ms(a.p99), ms(b.p99)],
  ["p99 latency, 503", ms(a.p99Rejected), ms(b.p99Rejected)],
  ["peak RSS", mib(a.rssMiB), mib(b.rssMiB)],
];

console.log(
  `\n${BURST} concurrent requests; each handler makes a ${SERVICE_MS} ms downstream call that serves ${LIMIT} at once; limit ${LIMIT}, queue ${QUEUE}\n`,
);
const header = ["", "throttled", "unthrottled"];
const widths = [0, 1, 2].map((i) =>
  Math.max(...[header, ...rows].map((r) => r[i].length))
);
const line = (r: string[]) =>
  `| ${
    r.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(
      " | ",
    )
  } |`;
console.log(line(header));
console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
for (const r of rows) console.log(line(r));

/** "3.2x lower" or "1.4x higher": how `mine` compares with `theirs`. */
function compare(mine: number, theirs: number): string {
  const ratio = mine / theirs;
  if (!Number.isFinite(ratio) || Math.abs(ratio - 1) < 0.05) {
    return "about the same";
  }
  return ratio < 1
    ? `${(1 / ratio).toFixed(1)}x lower`
    : `${ratio.toFixed(1)}x higher`;
}

const turnedAway = a.rejected === 0
  ? "no request was turned away"
  : `${a.rejected} of ${BURST} requests were turned away with a 503 (p99 ${
    ms(a.p99Rejected)
  })`;
console.log(
  `\nWith the throttle, at most ${a.peak} handlers ran at once (${b.peak} without it), ` +
    `the p99 latency of served requests was ${compare(a.p99, b.p99)} ` +
    `(${ms(a.p99)} against ${ms(b.p99)}), peak memory was ${
      compare(a.rssMiB, b.rssMiB)
    }; ${a.queued} waited in the queue and were served, and ${turnedAway}.`,
);

if (a.peak > LIMIT) {
  console.error(`\nthe limit did not hold: ${a.peak} handlers ran at once`);
  Deno.exit(1);
}
