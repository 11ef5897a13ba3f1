/**
 * HTTP overhead: req/s and server CPU per request of each mode of
 * bench/_http_server.ts relative to the raw server, at 64 connections
 * (bench/_http_round.ts measures a round). A mode's ratio to raw is taken
 * within each round; the rounds go on until the median ratio of `throttled`
 * to `raw` is known to within 3% (its 95% confidence interval), or a cap.
 */
import { median } from "../../scripts/_stats.ts";
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
  width,
} from "../_rounds.ts";
import { type Section, table } from "../_section.ts";
import { barChart } from "../_svg.ts";

/** Measured in every round: the ratio that decides when to stop, and the noise. */
const HEADLINE = ["raw", "throttled", "prioritized", "raw-again"];
/** Measured in the first rounds only. */
const OTHERS = [
  "keyed",
  "queued",
  "rejecting",
  "small-body",
  "stream-raw",
  "stream-body",
];
const MODES = [...HEADLINE, ...OTHERS];
/** Also measured at the same time as raw, every round. */
const SAME_TIME = ["throttled", "prioritized", "raw-again"];
const CONNECTIONS = 64;
const TARGET_WIDTH = 0.03;

const isStream = (mode: string) => mode.startsWith("stream");
const baseOf = (mode: string) => isStream(mode) ? "stream-raw" : "raw";
/** Streams are compared by bytes, the rest by requests. */
const throughput = (mode: string) => (m: Measured) =>
  isStream(mode) ? m.bytesPerSecond : m.perSecond;

interface ModeResult {
  /** Medians over the rounds. */
  perSecond: number;
  bytesPerSecond: number;
  cpuPerRequestUs: number;
  p50: number;
  p99: number;
  peakRssMiB: number;
  /** Throughput over the base's, round by round. */
  throughputRatio: Spread;
  cpuRatio: Spread;
}

interface RuntimeResult {
  rounds: number;
  /** The rounds that measured every mode. */
  roundsOfAll: number;
  /** The server's share of its CPU while measured, median and lowest. */
  cpuShare: { median: number; lowest: number };
  modes: Record<string, ModeResult>;
  /** Ratios to raw loaded at the same time, on the same CPU. */
  sameTime: Record<string, { throughputRatio: Spread; cpuRatio: Spread }>;
}

export async function httpOverhead(setup: Setup): Promise<Section> {
  const plan = setup.full
    ? { slices: 3, roundsOfAll: 5, minRounds: 8, maxRounds: 16 }
    : { slices: 2, roundsOfAll: 3, minRounds: 5, maxRounds: 6 };
  const result = {} as Record<Runtime, RuntimeResult>;
  for (const runtime of RUNTIMES) {
    const samples: Samples<Measured> = {};
    const sameTime: Array<Record<string, { throughput: number; cpu: number }>> =
      [];
    let rounds = 0;
    while (rounds < plan.maxRounds) {
      const modes = rounds < plan.roundsOfAll ? MODES : HEADLINE;
      const measured = await measureRound(setup, {
        runtime,
        modes,
        connections: CONNECTIONS,
        slices: plan.slices,
        backward: rounds % 2 === 1,
        sameTime: { base: "raw", modes: SAME_TIME },
      });
      for (const mode of modes) {
        (samples[mode] ??= [])[rounds] = measured.measured[mode];
      }
      sameTime.push(measured.sameTime);
      console.error(
        `bench: http ${runtime} round ${rounds + 1}: ${
          modes.map((mode) =>
            `${mode} ${measured.measured[mode].perSecond.toFixed(0)}`
          ).join(", ")
        } req/s; at the same time as raw: ${
          SAME_TIME.map((mode) =>
            `${mode} ${measured.sameTime[mode].throughput.toFixed(2)}`
          ).join(", ")
        }`,
      );
      rounds++;
      const headline = spread(
        ratios(samples, "throttled", "raw", (m) => m.perSecond),
      );
      if (rounds >= plan.minRounds && width(headline) < TARGET_WIDTH) break;
    }
    result[runtime] = summarize(samples, rounds, plan.roundsOfAll);
    result[runtime].sameTime = Object.fromEntries(
      SAME_TIME.map((mode) => [mode, {
        throughputRatio: spread(sameTime.map((r) => r[mode].throughput)),
        cpuRatio: spread(sameTime.map((r) => r[mode].cpu)),
      }]),
    );
  }

  if (setup.full) {
    await Deno.writeTextFile(
      `${setup.results}/throughput.svg`,
      barChart(
        "Throttled req/s over raw req/s (hello world, limit not reached)",
        "x raw",
        RUNTIMES.flatMap((r) =>
          ["throttled", "prioritized", "keyed", "queued"].map((mode) => {
            const { median, low, high } = result[r].modes[mode].throughputRatio;
            return { label: `${r} ${mode}`, value: median, low, high };
          })
        ),
        1,
      ),
    );
  }
  return {
    key: "http",
    json: result,
    markdown: markdown(result, plan),
  };
}

function markdown(
  result: Record<Runtime, RuntimeResult>,
  plan: { slices: number; maxRounds: number },
): string[] {
  const throughputCell = (r: Runtime, mode: string) => {
    const m = result[r].modes[mode];
    const absolute = isStream(mode)
      ? `${(m.bytesPerSecond / 2 ** 20).toFixed(0)} MiB/s`
      : m.perSecond.toFixed(0);
    return `${absolute} · ${formatSpread(m.throughputRatio)}`;
  };
  const cpuCell = (r: Runtime, mode: string) => {
    const m = result[r].modes[mode];
    return `${m.cpuPerRequestUs.toFixed(1)} µs · ${formatSpread(m.cpuRatio)}`;
  };
  const rounds = RUNTIMES.map((r) => {
    const { rounds, roundsOfAll, cpuShare } = result[r];
    return `${r} ${rounds} rounds (every mode in the first ${roundsOfAll}), server CPU share ${
      cpuShare.median.toFixed(2)
    } (lowest ${cpuShare.lowest.toFixed(2)})`;
  }).join("; ");
  return [
    `## HTTP overhead (${CONNECTIONS} connections)`,
    "",
    `Each cell: the median over rounds, then the median of the per-round ratios to the raw server serving \`new Response("hello")\` (for the streams, bytes per second relative to the raw stream) and, in brackets, that median's 95% confidence interval. Each round starts a fresh server per mode, warms them up, then measures ${plan.slices} slices of 1 s per mode in an order and its reverse (raw, throttled, ..., throttled, raw), starting from the other end the next round; the rounds go on until the interval of \`throttled\` is narrower than ${
      TARGET_WIDTH * 100
    }% or ${plan.maxRounds} rounds. Servers get the handler as a user passes it: \`Deno.serve(handler)\`, \`Bun.serve({ fetch: handler })\`, \`serve({ fetch: handler })\` of @hono/node-server. \`prioritized\` sets \`priority\`, \`flow\` and \`weight\` callbacks on every request. \`raw-again\` is the raw server measured a second time: its distance from 1.00 is the noise of the run. The server CPU share is the server's CPU time over the time measured: well below 1, the load generator (or something else on the machine) set the pace, not the server, and CPU per request is the figure to read.`,
    "",
    rounds + ".",
    "",
    ...table(
      ["req/s · x raw", ...RUNTIMES],
      MODES.map((mode) => [
        mode,
        ...RUNTIMES.map((r) => throughputCell(r, mode)),
      ]),
    ),
    "",
    ...table(
      ["CPU per request · x raw", ...RUNTIMES],
      MODES.map((mode) => [mode, ...RUNTIMES.map((r) => cpuCell(r, mode))]),
    ),
    "",
    "The same ratios with both servers loaded at the same time (2 s a round, each by its own wrk), sharing the server CPU: a disturbance of the machine then falls on both alike, which the measurements in turn above cannot promise. When the load generators set the pace, the req/s ratio tends to 1 whatever the servers cost; CPU per request still tells.",
    "",
    ...table(
      ["at the same time as raw", ...RUNTIMES],
      SAME_TIME.flatMap((mode) => [
        [
          `${mode}: req/s`,
          ...RUNTIMES.map((r) =>
            formatSpread(result[r].sameTime[mode].throughputRatio)
          ),
        ],
        [
          `${mode}: CPU per request`,
          ...RUNTIMES.map((r) =>
            formatSpread(result[r].sameTime[mode].cpuRatio)
          ),
        ],
      ]),
    ),
  ];
}

function summarize(
  samples: Samples<Measured>,
  rounds: number,
  roundsOfAll: number,
): RuntimeResult {
  const shares = MODES.flatMap((mode) =>
    values(samples, mode, (m) => m.cpuShare)
  );
  return {
    rounds,
    roundsOfAll: Math.min(rounds, roundsOfAll),
    cpuShare: { median: median(shares), lowest: Math.min(...shares) },
    modes: Object.fromEntries(MODES.map((mode) => {
      const pick = (key: keyof Measured) =>
        median(values(samples, mode, (m) => m[key]));
      return [mode, {
        perSecond: pick("perSecond"),
        bytesPerSecond: pick("bytesPerSecond"),
        cpuPerRequestUs: pick("cpuPerRequestUs"),
        p50: pick("p50"),
        p99: pick("p99"),
        peakRssMiB: pick("peakRssMiB"),
        throughputRatio: spread(
          ratios(samples, mode, baseOf(mode), throughput(mode)),
        ),
        cpuRatio: spread(
          ratios(samples, mode, baseOf(mode), (m) => m.cpuPerRequestUs),
        ),
      }];
    })),
    sameTime: {},
  };
}
