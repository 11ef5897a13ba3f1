/**
 * The benchmarks, on Deno, Bun and Node in one run, with ratios against the
 * raw runtime and the well-known peers. Servers run pinned to CPU 1 and wrk
 * to CPU 0 (where the machine has two); modes are measured in interleaved
 * rounds whose order reverses each round, and server CPU comes from /proc.
 *
 *   deno task bench        the quick set: microbenchmark, memory, argument
 *                          forwarding, HTTP overhead, overload at 1,024
 *                          connections, metrics overhead
 *   deno task bench:full   all of it: more rounds, overload from 64 to 4,096
 *                          connections, the nginx comparison, fairness over
 *                          HTTP and the charts
 *
 * Writes bench/results/bench.json and bench.md (bench_full.* and the SVG
 * charts for the full set). `--rounds <n>` sets the rounds of the metrics
 * suite (5, or 8 for the full set). `--only <suite>` runs one suite and prints its
 * table without writing anything, except the suites of deadlines
 * (bench/suites/deadlines.ts), which run only alone and write
 * bench/results/<suite>.json and .md. bench/_ensure.ts builds and installs
 * what the suites need.
 */
import { ensure, RUNTIMES } from "./_ensure.ts";
import type { Section, Suite } from "./_section.ts";
import {
  deadlineGoodput,
  rejectionCost,
  retryAfter,
  standingQueue,
} from "./suites/deadlines.ts";
import { fairness } from "./suites/fairness.ts";
import { httpOverhead } from "./suites/http_overhead.ts";
import { memory } from "./suites/memory.ts";
import { metrics } from "./suites/metrics.ts";
import { micro } from "./suites/micro.ts";
import { nginx } from "./suites/nginx.ts";
import { overload } from "./suites/overload.ts";
import { redis, redisHttp } from "./suites/redis.ts";
import { wrapperCall } from "./suites/wrapper_call.ts";

const full = Deno.args.includes("--full");
const only = Deno.args.includes("--only")
  ? Deno.args[Deno.args.indexOf("--only") + 1]
  : undefined;
const rounds = Deno.args.includes("--rounds")
  ? Number(Deno.args[Deno.args.indexOf("--rounds") + 1])
  : undefined;
if (rounds !== undefined && !(Number.isInteger(rounds) && rounds >= 1)) {
  console.error("bench: --rounds takes a whole number >= 1");
  Deno.exit(2);
}
const suites: Record<string, Suite> = {
  micro,
  memory,
  wrapper_call: wrapperCall,
  http_overhead: httpOverhead,
  overload,
  metrics,
  ...(full ? { nginx } : {}),
  // Its own task (deno task bench:fairness), and part of the full set.
  ...(full || only === "fairness" ? { fairness } : {}),
};
/** Run only with `--only`, and written to results of their own. */
const standalone: Record<string, Suite> = {
  // They need a redis-server (installed where missing).
  redis,
  redis_http: redisHttp,
  deadline_goodput: deadlineGoodput,
  rejection_cost: rejectionCost,
  standing_queue: standingQueue,
  retry_after: retryAfter,
};
if (only !== undefined && only in standalone) suites[only] = standalone[only];
if (only !== undefined && !(only in suites)) {
  console.error(
    `bench: --only takes one of ${
      [...Object.keys(suites), ...Object.keys(standalone)].join(", ")
    }`,
  );
  Deno.exit(2);
}

const started = performance.now();
const loadBefore = await loadAverage();
await using setup = await ensure(full);
setup.rounds = rounds;
const sections: Section[] = [];
const seconds: Record<string, number> = {};
for (const [name, suite] of Object.entries(suites)) {
  if (only !== undefined && name !== only) continue;
  const suiteStarted = performance.now();
  sections.push(await suite(setup));
  seconds[name] = Math.round((performance.now() - suiteStarted) / 1000);
  console.error(`bench: ${name} took ${seconds[name]} s`);
}
const total = Math.round((performance.now() - started) / 1000);
const loadAfter = await loadAverage();

const date = new Date().toISOString().slice(0, 10);
const machine =
  `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores${
    setup.pin ? ", servers on CPU 1, load generators on CPU 0" : ""
  }`;
const report = {
  date,
  machine,
  versions: setup.versions,
  seconds: { total, ...seconds },
  loadAverage: { before: loadBefore, after: loadAfter },
  ...Object.fromEntries(sections.map((s) => [s.key, s.json])),
};
const command =
  (only === undefined
    ? `deno task bench${full ? ":full" : ""}`
    : `deno run -A bench/run.ts${full ? " --full" : ""} --only ${only}`) +
  (rounds === undefined ? "" : ` --rounds ${rounds}`);
const versions = RUNTIMES.map((r) =>
  `${r[0].toUpperCase()}${r.slice(1)} ${setup.versions[r]}`
).join(", ");
const md = [
  "# Benchmark results",
  "",
  `${date}; ${machine}; ${versions}. Command: \`${command}\`; ${total} s; load average (1 min) ${loadBefore} before, ${loadAfter} after.`,
  ...sections.flatMap((s) => ["", ...s.markdown]),
].join("\n") + "\n";

if (only === undefined) {
  const name = full ? "bench_full" : "bench";
  await Deno.writeTextFile(
    `${setup.results}/${name}.json`,
    JSON.stringify(report, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${setup.results}/${name}.md`, md);
} else if (only in standalone) {
  await Deno.writeTextFile(
    `${setup.results}/${only}.json`,
    JSON.stringify(report, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${setup.results}/${only}.md`, md);
}
console.log(md);

/** The 1-minute load average: how busy the machine was besides us. */
async function loadAverage(): Promise<number> {
  const text = await Deno.readTextFile("/proc/loadavg").catch(() => "NaN");
  return Number(text.split(" ")[0]);
}
