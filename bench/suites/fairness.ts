/**
 * Fairness over HTTP: a server of each runtime runs a 10 ms handler behind
 * throttle({ limit: 8, queue: 64 }), with and without `flow` (the client's
 * `x-client` header), loaded by bench/fairness_load.ts with one heavy client
 * at 2,000 req/s and nine light ones at 40 req/s (3x the capacity). Reports
 * the light clients' goodput and p99 latency side by side, and draws them in
 * bench/results/fairness.svg.
 */
import { output } from "../../scripts/_process.ts";
import { median } from "../../scripts/_stats.ts";
import { pinned } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import { startServer } from "../_http_measure.ts";
import { type Section, table } from "../_section.ts";
import { type Bar, barChart } from "../_svg.ts";

const MODES = ["fair-none", "fair-flow"] as const;
type Mode = typeof MODES[number];
const LABEL: Record<Mode, string> = {
  "fair-none": "no flow",
  "fair-flow": "flow",
};
/** What limit 8 with 10 ms handlers serves at most, req/s. */
const CAPACITY = 800;

interface ClientTally {
  sent: number;
  ok: number;
  rejected: number;
  failed: number;
  p50: number;
  p99: number;
}

interface Figures {
  /** The worst light client's share of its requests answered 200. */
  lightGoodput: number;
  /** The worst light client's p99 latency of its 200s, ms. */
  lightP99: number;
  /** The median light client's p99 latency, ms. */
  lightP99Median: number;
  /** The median light client's p50 latency, ms. */
  lightP50Median: number;
  heavyGoodput: number;
  /** 200s a second over CAPACITY. */
  served: number;
  failed: number;
  clients: Record<string, ClientTally>;
}

export async function fairness(setup: Setup): Promise<Section> {
  const seconds = setup.full ? 20 : 10;
  const result = {} as Record<Runtime, Record<Mode, Figures>>;
  for (const runtime of RUNTIMES) {
    result[runtime] = {} as Record<Mode, Figures>;
    for (const mode of MODES) {
      const server = await startServer(setup, { runtime, mode });
      try {
        const [command, args] = pinned(setup, "load", [Deno.execPath(), [
          "run",
          "-A",
          "bench/fairness_load.ts",
          `${server.url}/`,
          String(seconds),
        ]]);
        const clients: Record<string, ClientTally> = JSON.parse(
          await output(command, args),
        );
        result[runtime][mode] = summarize(clients, seconds);
        console.error(
          `bench: fairness ${runtime} ${mode}: light goodput >= ${
            result[runtime][mode].lightGoodput.toFixed(3)
          }, light p99 <= ${result[runtime][mode].lightP99.toFixed(1)} ms`,
        );
      } finally {
        await server.stop();
      }
    }
  }
  await Deno.writeTextFile(`${setup.results}/fairness.svg`, chart(result));

  const rows = (pick: (f: Figures) => string) =>
    RUNTIMES.flatMap((r) => MODES.map((m) => pick(result[r][m])));
  return {
    key: "fairness",
    json: result,
    markdown: [
      "## Fairness over HTTP",
      "",
      `A 10 ms handler behind \`throttle({ limit: 8, queue: 64 })\`, without and with \`flow: (request) => request.headers.get("x-client")\`; bench/fairness_load.ts sends, open loop with Poisson arrivals over keep-alive connections, 2,000 req/s from one heavy client and 40 req/s from each of nine light ones (3x the ${CAPACITY} req/s that 8 slots of 10 ms serve) for ${seconds} s after 1 s of warm-up. Latency is from when a request was due to its answer, so it includes the 10 ms of work. Served: 200s a second over ${CAPACITY}; failed: requests that got no answer (the generator gives up beyond 1,024 open connections, when the server falls behind before the gate). Chart: bench/results/fairness.svg.`,
      "",
      ...table(
        [
          "",
          ...RUNTIMES.flatMap((r) => MODES.map((m) => `${r}, ${LABEL[m]}`)),
        ],
        [
          [
            "light goodput (worst client)",
            ...rows((f) => pct(f.lightGoodput)),
          ],
          [
            "light p99 latency (worst client)",
            ...rows((f) => `${f.lightP99.toFixed(1)} ms`),
          ],
          [
            "light p99 latency (median client)",
            ...rows((f) => `${f.lightP99Median.toFixed(1)} ms`),
          ],
          [
            "light p50 latency (median client)",
            ...rows((f) => `${f.lightP50Median.toFixed(1)} ms`),
          ],
          ["heavy goodput", ...rows((f) => pct(f.heavyGoodput))],
          ["served / capacity", ...rows((f) => pct(f.served))],
          ["failed requests", ...rows((f) => String(f.failed))],
        ],
      ),
    ],
  };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function summarize(
  clients: Record<string, ClientTally>,
  seconds: number,
): Figures {
  const lights = Object.entries(clients)
    .filter(([name]) => name.startsWith("light"))
    .map(([, tally]) => tally);
  const all = Object.values(clients);
  return {
    lightGoodput: Math.min(...lights.map((t) => t.ok / t.sent)),
    lightP99: Math.max(...lights.map((t) => t.p99)),
    lightP99Median: median(lights.map((t) => t.p99)),
    lightP50Median: median(lights.map((t) => t.p50)),
    heavyGoodput: clients.heavy.ok / clients.heavy.sent,
    served: all.reduce((sum, t) => sum + t.ok, 0) / seconds / CAPACITY,
    failed: all.reduce((sum, t) => sum + t.failed, 0),
    clients,
  };
}

/** Two bar charts side by side: p99 latency, and goodput. */
function chart(result: Record<Runtime, Record<Mode, Figures>>): string {
  const bars = (pick: (f: Figures) => number): Bar[] =>
    RUNTIMES.flatMap((r) =>
      MODES.map((m) => ({
        label: `${r} ${LABEL[m]}`,
        value: pick(result[r][m]),
      }))
    );
  const latency = barChart(
    "Light clients' p99 latency (worst of nine), ms",
    "ms",
    bars((f) => f.lightP99),
  );
  const goodput = barChart(
    "Light clients' goodput (worst of nine)",
    "share of demand served",
    bars((f) => f.lightGoodput),
    0.95,
  );
  const inner = (svg: string, x: number) =>
    svg.replace("<svg ", `<svg x="${x}" `);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="1440" height="360">`,
    inner(latency, 0),
    inner(goodput, 720),
    "</svg>",
    "",
  ].join("\n");
}
