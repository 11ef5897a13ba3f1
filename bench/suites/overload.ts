/**
 * Overload: a 50 ms handler with a 16 KiB body, raw and throttled at limit 64
 * with no queue, under 1,024 connections (the quick set) or 64 to 4,096 (the
 * full set, which also draws the charts). Medians of 3 interleaved rounds.
 */
import { median } from "../../scripts/_stats.ts";
import { measure, type Measured } from "../_http_measure.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import { interleave, values } from "../_rounds.ts";
import { type Section, table } from "../_section.ts";
import { lineChart } from "../_svg.ts";

const ROUNDS = 3;
const MODES = ["slow-raw", "slow-throttled"];
/** 64 slots of 50 ms. */
const CEILING = 1280;

type Medians = Record<keyof Measured, number>;

export async function overload(setup: Setup): Promise<Section> {
  const concurrencies = setup.full ? [64, 256, 1024, 4096] : [1024];
  const seconds = setup.full ? 4 : 3;
  const result = {} as Record<Runtime, Record<number, Record<string, Medians>>>;
  for (const runtime of RUNTIMES) {
    result[runtime] = {};
    for (const connections of concurrencies) {
      const { samples } = await interleave<Measured>({
        modes: () => MODES,
        measure: (mode) =>
          measure(setup, { runtime, mode }, { connections, seconds }),
        enough: (_, rounds) => rounds >= ROUNDS,
        maxRounds: ROUNDS,
        progress: (mode, round, m) =>
          console.error(
            `bench: overload ${runtime} ${mode} c=${connections} round ${
              round + 1
            }: ${m.perSecond.toFixed(0)} req/s`,
          ),
      });
      result[runtime][connections] = Object.fromEntries(MODES.map((mode) => {
        const first = samples[mode][0]!;
        return [
          mode,
          Object.fromEntries(
            Object.keys(first).map((key) => [
              key,
              median(values(samples, mode, (m) => m[key as keyof Measured])),
            ]),
          ) as Medians,
        ];
      }));
    }
  }

  if (setup.full) await charts(setup, result, concurrencies);
  const goodput = (m: Medians) => m.perSecond * (1 - m.non2xx / m.requests);
  const rows = RUNTIMES.flatMap((runtime) =>
    concurrencies.map((c) => {
      const raw = result[runtime][c]["slow-raw"];
      const throttled = result[runtime][c]["slow-throttled"];
      return [
        runtime,
        String(c),
        goodput(raw).toFixed(0),
        `${goodput(throttled).toFixed(0)} (${
          (goodput(throttled) / CEILING).toFixed(2)
        })`,
        (throttled.perSecond - goodput(throttled)).toFixed(0),
        `${raw.peakRssMiB.toFixed(0)} MiB`,
        `${throttled.peakRssMiB.toFixed(0)} MiB (${
          (throttled.peakRssMiB / raw.peakRssMiB).toFixed(2)
        })`,
        `${raw.p99.toFixed(0)} ms`,
        `${throttled.p99.toFixed(0)} ms`,
      ];
    })
  );
  return {
    key: "overload",
    json: result,
    markdown: [
      "## Overload: 50 ms handler, 16 KiB body, throttled at limit 64, queue 0",
      "",
      `Goodput is 2xx responses per second (the ceiling is 64 / 50 ms = 1,280 req/s); latency is over all responses, 503s included (wrk does not split them). Medians of ${ROUNDS} interleaved rounds, ${seconds} s each.`,
      "",
      ...table([
        "runtime",
        "connections",
        "raw goodput",
        "throttled goodput (x ceiling)",
        "503/s",
        "raw peak RSS",
        "throttled peak RSS (x raw)",
        "raw p99",
        "throttled p99",
      ], rows),
    ],
  };
}

async function charts(
  setup: Setup,
  result: Record<Runtime, Record<number, Record<string, Medians>>>,
  concurrencies: number[],
): Promise<void> {
  const kinds = [
    ["peakRssMiB", "peak RSS (MiB)", "overload_rss.svg"],
    ["p99", "p99 latency (ms)", "overload_p99.svg"],
  ] as const;
  for (const [key, label, file] of kinds) {
    const points = (r: Runtime, mode: string) =>
      concurrencies.map((c) =>
        [c, result[r][c][mode][key]] as [number, number]
      );
    await Deno.writeTextFile(
      `${setup.results}/${file}`,
      lineChart(
        `Overload: ${label} against client connections`,
        "connections",
        label,
        RUNTIMES.flatMap((r) => [
          { name: `${r} raw`, points: points(r, "slow-raw"), dashed: true },
          { name: `${r} throttled`, points: points(r, "slow-throttled") },
        ]),
        { logX: true },
      ),
    );
  }
}
