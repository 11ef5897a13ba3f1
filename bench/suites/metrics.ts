/**
 * What metrics cost: hello-world req/s and server CPU per request with
 * prometheus() and instrument() attached, relative to the raw server and to
 * the throttled one without observers, in the rounds of the HTTP overhead
 * suite (bench/_http_round.ts); the CPU an observer costs per call in
 * process, beside the bare OpenTelemetry SDK's (bench/metrics_micro.ts); and
 * the memory of a scrape target under one million distinct keys
 * (bench/metrics_memory.ts).
 */
import { output } from "../../scripts/_process.ts";
import { pinned, programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import type { Measured } from "../_http_measure.ts";
import { measureRound } from "../_http_round.ts";
import {
  formatSpread,
  ratios,
  type Samples,
  type Spread,
  spread,
  values,
} from "../_rounds.ts";
import { median } from "../../scripts/_stats.ts";
import { type Section, table } from "../_section.ts";

const MODES = ["raw", "throttled", "prometheus", "otel", "raw-again"];
const OBSERVED = ["throttled", "prometheus", "otel", "raw-again"];
const CONNECTIONS = 64;

interface RuntimeResult {
  rounds: number;
  perSecond: Record<string, number>;
  /** req/s over raw's, round by round. */
  throughputRatio: Record<string, Spread>;
  /** CPU per request over raw's. */
  cpuRatio: Record<string, Spread>;
  /** req/s over throttled's, without observers. */
  overThrottled: Record<string, Spread>;
  /** Ratios to raw loaded at the same time, on the same CPU. */
  sameTime: Record<string, { throughputRatio: Spread; cpuRatio: Spread }>;
  /** ns of CPU per call in process, by case (bench/metrics_micro.ts). */
  micro: Record<string, number>;
  memory: {
    keys: number;
    heapGrowth: number;
    scrapeBefore: number;
    scrapeAfter: number;
  };
}

export async function metrics(setup: Setup): Promise<Section> {
  const rounds = setup.rounds ?? (setup.full ? 8 : 5);
  const result = {} as Record<Runtime, RuntimeResult>;
  for (const runtime of RUNTIMES) {
    const samples: Samples<Measured> = {};
    const sameTime: Array<Record<string, { throughput: number; cpu: number }>> =
      [];
    for (let round = 0; round < rounds; round++) {
      const measured = await measureRound(setup, {
        runtime,
        modes: MODES,
        connections: CONNECTIONS,
        slices: 2,
        backward: round % 2 === 1,
        sameTime: { base: "raw", modes: OBSERVED },
      });
      for (const mode of MODES) {
        (samples[mode] ??= [])[round] = measured.measured[mode];
      }
      sameTime.push(measured.sameTime);
      console.error(
        `bench: metrics ${runtime} round ${round + 1}: ${
          MODES.map((mode) =>
            `${mode} ${measured.measured[mode].perSecond.toFixed(0)}`
          ).join(", ")
        } req/s; at the same time as raw: ${
          OBSERVED.map((mode) =>
            `${mode} ${measured.sameTime[mode].throughput.toFixed(2)}`
          ).join(", ")
        }`,
      );
    }
    const micro = JSON.parse(
      await output(
        ...pinned(
          setup,
          "server",
          programCommand(setup, runtime, "metrics_micro"),
        ),
      ),
    );
    console.error(
      `bench: metrics ${runtime} in process: ${JSON.stringify(micro)}`,
    );
    const memory = JSON.parse(
      await output(
        ...programCommand(setup, runtime, "metrics_memory", { exposeGc: true }),
      ),
    );
    const byMode = (f: (mode: string) => Spread) =>
      Object.fromEntries(OBSERVED.map((mode) => [mode, f(mode)]));
    result[runtime] = {
      rounds,
      perSecond: Object.fromEntries(
        MODES.map((mode) => [
          mode,
          median(values(samples, mode, (m) => m.perSecond)),
        ]),
      ),
      throughputRatio: byMode((mode) =>
        spread(ratios(samples, mode, "raw", (m) => m.perSecond))
      ),
      cpuRatio: byMode((mode) =>
        spread(ratios(samples, mode, "raw", (m) => m.cpuPerRequestUs))
      ),
      overThrottled: byMode((mode) =>
        spread(ratios(samples, mode, "throttled", (m) => m.perSecond))
      ),
      sameTime: Object.fromEntries(
        OBSERVED.map((mode) => [mode, {
          throughputRatio: spread(sameTime.map((r) => r[mode].throughput)),
          cpuRatio: spread(sameTime.map((r) => r[mode].cpu)),
        }]),
      ),
      micro,
      memory,
    };
  }
  return { key: "metrics", json: result, markdown: markdown(result) };
}

function markdown(result: Record<Runtime, RuntimeResult>): string[] {
  const label: Record<string, string> = {
    throttled: "throttled, no observer",
    prometheus: "throttled + prometheus()",
    otel: "throttled + instrument() (sdk-metrics)",
    "raw-again": "raw again (the noise)",
  };
  return [
    `## Metrics overhead (${CONNECTIONS} connections)`,
    "",
    `Hello world, the limit never reached. Each cell: the median req/s over ${result.deno.rounds} rounds, then the median of the per-round ratios to the raw server and its 95% confidence interval. A round starts a fresh server per mode and measures each in 2 slices of 1 s, in an order and its reverse.`,
    "",
    ...table(
      ["req/s · x raw", ...RUNTIMES],
      OBSERVED.map((mode) => [
        label[mode],
        ...RUNTIMES.map((r) =>
          `${result[r].perSecond[mode].toFixed(0)} · ${
            formatSpread(result[r].throughputRatio[mode])
          }`
        ),
      ]),
    ),
    "",
    ...table(
      ["CPU per request · x raw", ...RUNTIMES],
      OBSERVED.map((mode) => [
        label[mode],
        ...RUNTIMES.map((r) => formatSpread(result[r].cpuRatio[mode])),
      ]),
    ),
    "",
    ...table(
      ["req/s · x throttled without observer", ...RUNTIMES],
      ["prometheus", "otel"].map((mode) => [
        label[mode],
        ...RUNTIMES.map((r) => formatSpread(result[r].overThrottled[mode])),
      ]),
    ),
    "",
    "The same ratios with each server loaded at the same time as raw (2 s a round, each by its own wrk), sharing the server CPU, so that a disturbance of the machine falls on both alike: the figures to read on a busy machine.",
    "",
    ...table(
      ["at the same time as raw", ...RUNTIMES],
      OBSERVED.flatMap((mode) => [
        [
          `${label[mode]}: req/s`,
          ...RUNTIMES.map((r) =>
            formatSpread(result[r].sameTime[mode].throughputRatio)
          ),
        ],
        [
          `${label[mode]}: CPU per request`,
          ...RUNTIMES.map((r) =>
            formatSpread(result[r].sameTime[mode].cpuRatio)
          ),
        ],
      ]),
    ),
    "",
    "In process (bench/metrics_micro.ts): ns of CPU per call of a throttled handler that returns a ready Response (no HTTP, no Response made), median of 15 rounds of 200,000 calls; beside it, the bare SDK: the one `Histogram.record` call instrument() makes per request below the limit (the hold, with `floodgate.name` alone), and the two calls with two attributes (wait and hold, name and priority) it made before it left out a wait of 0 and the default priority. An observer's cost is its row minus `throttled, no observer`; the empty observer's is what any observer costs (the event objects and the two clock reads that time the hold).",
    "",
    ...table(
      ["ns of CPU per call", ...RUNTIMES],
      Object.keys(result.deno.micro).map((name) => [
        name,
        ...RUNTIMES.map((r) => String(result[r].micro[name])),
      ]),
    ),
    "",
    "One million distinct keys through a keyed handler observed by both (bench/metrics_memory.ts): heap growth after them, and the size of a scrape before and after.",
    "",
    ...table(
      ["1,000,000 keys", ...RUNTIMES],
      [
        [
          "heap growth",
          ...RUNTIMES.map((r) =>
            `${(result[r].memory.heapGrowth / 1024).toFixed(0)} KiB`
          ),
        ],
        [
          "scrape bytes before → after",
          ...RUNTIMES.map((r) =>
            `${result[r].memory.scrapeBefore} → ${result[r].memory.scrapeAfter}`
          ),
        ],
      ],
    ),
  ];
}
