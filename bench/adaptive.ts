/**
 * Adaptive limits on real servers: a frontend whose every request calls a
 * downstream that serves C calls at once (beyond that, calls wait: latency
 * grows), flooded by 8 x C client connections. Compares no limit, a static
 * limit of 10 x C, a static limit of C (the oracle, which knows C), and
 * aimd(), vegas() and gradient(), which do not. A client that gets a 503
 * waits 10 ms before its next request.
 *
 * Writes bench/results/adaptive.{json,md} and adaptive_limit.svg.
 *
 * Usage: deno run -A bench/adaptive.ts
 */
import { lineChart } from "./_svg.ts";
import { freePort, type Process, startProcess } from "../scripts/_process.ts";
import { percentile } from "../scripts/_stats.ts";

const C = 16;
const BASE_MS = 20;
const CONNECTIONS = 8 * C;
const WARMUP_MS = 2000;
const MEASURE_MS = 8000;
const configs = [
  "none",
  String(10 * C),
  String(C),
  "aimd",
  "vegas",
  "gradient",
];
const label = (spec: string) =>
  spec === "none"
    ? "no limit"
    : spec === String(C)
    ? `static ${C} (oracle)`
    : /^\d+$/.test(spec)
    ? `static ${spec}`
    : `${spec}()`;

const here = new URL(".", import.meta.url).pathname;

/** Runs `deno run -A script` with `env` and waits until `path` answers. */
async function startDeno(
  script: string,
  env: Record<string, string>,
  path = "/",
): Promise<Process> {
  const port = await freePort();
  return await startProcess(
    Deno.execPath(),
    ["run", "-A", script],
    port,
    path,
    env,
  );
}
const lifetime = String(
  Math.ceil((configs.length * (WARMUP_MS + MEASURE_MS + 3000)) / 1000) + 60,
);
const downstream = await startDeno(`${here}_downstream.ts`, {
  CAPACITY: String(C),
  BASE_MS: String(BASE_MS),
  LIFETIME: lifetime,
});

interface Row {
  config: string;
  goodput: number;
  rejectedPerSecond: number;
  p50: number;
  p99: number;
  finalLimit: number;
  limits: Array<[number, number]>;
}
const rows: Row[] = [];
try {
  for (const spec of configs) {
    const frontend = await startDeno(`${here}_frontend.ts`, {
      DOWNSTREAM: downstream.url,
      LIMIT: spec,
      CAPACITY: String(C),
      LIFETIME: lifetime,
    }, "/stats");
    const start = performance.now();
    const measureFrom = start + WARMUP_MS;
    const end = measureFrom + MEASURE_MS;
    const latencies: number[] = [];
    let rejected = 0;
    const limits: Array<[number, number]> = [];
    const sampler = setInterval(async () => {
      const stats = await (await fetch(`${frontend.url}/stats`)).json();
      limits.push([
        (performance.now() - start) / 1000,
        stats.limit === null ? NaN : stats.limit,
      ]);
    }, 100);
    await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const response = await fetch(frontend.url);
        await response.arrayBuffer();
        const t1 = performance.now();
        if (t0 < measureFrom) continue;
        if (response.status === 200) latencies.push(t1 - t0);
        else {
          rejected++;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      }
    }));
    clearInterval(sampler);
    const stats = await (await fetch(`${frontend.url}/stats`)).json();
    await frontend.stop();
    latencies.sort((a, b) => a - b);
    rows.push({
      config: label(spec),
      goodput: latencies.length / (MEASURE_MS / 1000),
      rejectedPerSecond: rejected / (MEASURE_MS / 1000),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      finalLimit: stats.limit ?? Infinity,
      limits,
    });
    console.error(`${label(spec)}: ${latencies.length} served`);
  }
} finally {
  await downstream.stop();
}

const oracle = rows.find((r) => r.config.includes("oracle"))!;
const table = [
  `| limit | goodput (req/s) | vs oracle | p50 (ms) | p99 (ms) | p99 vs oracle | 503/s | final limit |`,
  `| --- | --- | --- | --- | --- | --- | --- | --- |`,
  ...rows.map((r) =>
    `| ${r.config} | ${r.goodput.toFixed(0)} | ${
      (r.goodput / oracle.goodput).toFixed(2)
    } | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${
      (r.p99 / oracle.p99).toFixed(2)
    } | ${r.rejectedPerSecond.toFixed(0)} | ${r.finalLimit} |`
  ),
].join("\n");
const machine =
  `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores, Deno ${Deno.version.deno}`;
const header =
  `Downstream capacity C = ${C} calls of ${BASE_MS} ms; ${CONNECTIONS} client connections; ${
    MEASURE_MS / 1000
  } s measured after ${WARMUP_MS / 1000} s warm-up; ${
    new Date().toISOString().slice(0, 10)
  }, ${machine}.`;
const results = new URL("./results/", import.meta.url);
await Deno.mkdir(results, { recursive: true });
await Deno.writeTextFile(
  new URL("adaptive.md", results),
  `${header}\n\n${table}\n`,
);
await Deno.writeTextFile(
  new URL("adaptive.json", results),
  JSON.stringify(
    { capacity: C, baseMs: BASE_MS, connections: CONNECTIONS, machine, rows },
    null,
    2,
  ) + "\n",
);
const chartRows = rows.filter((r) =>
  r.config.endsWith("()") || r.config.includes("oracle")
);
await Deno.writeTextFile(
  new URL("adaptive_limit.svg", results),
  lineChart(
    `Limit over time, downstream capacity ${C}, ${CONNECTIONS} connections`,
    "seconds",
    "limit",
    chartRows.map((r) => ({
      name: r.config,
      points: r.limits.filter(([, y]) => Number.isFinite(y)),
      dashed: r.config.includes("oracle"),
    })),
  ),
);
console.log(header + "\n\n" + table);
