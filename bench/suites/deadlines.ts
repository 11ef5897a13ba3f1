/**
 * When to turn a request away (DESIGN.md, D1-D5), measured on Deno, Bun and
 * Node with bench/_deadline_server.ts:
 *
 *   deadline_goodput  a 25 ms handler at limit 4, queue 200, offered 3x its
 *                     capacity by clients that give up after 150 ms: goodput
 *                     with `deadline` against a plain FIFO queue
 *   rejection_cost    server CPU per rejection: predicted ("timeout")
 *                     against "full", and "auto" Retry-After against a fixed
 *                     one on the rejection path and on the fast path
 *   standing_queue    a 50 ms handler at limit 64, queue 256, under 1,024
 *                     connections: `order: "adaptive"` against FIFO, plus
 *                     other `target`/`interval` values on Deno
 *   retry_after       a population of clients that honour Retry-After at 3x
 *                     the capacity: "auto" against a fixed 1 s, over time
 *
 * Each runs alone (`deno task bench --only <suite>`) and writes
 * bench/results/<suite>.json and .md (and its SVG charts).
 */
import { median } from "../../scripts/_stats.ts";
import { output, type Process } from "../../scripts/_process.ts";
import { pinned, programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import {
  patientClient,
  resetServer,
  type ServerStats,
  serverStats,
  startDeadlineServer,
} from "../_deadline_run.ts";
import { measureRunning } from "../_http_measure.ts";
import type { OpenResult, PopulationResult } from "../_patient_client.ts";
import {
  formatSpread,
  interleave,
  ratios,
  type Spread,
  spread,
  values,
} from "../_rounds.ts";
import { type Section, table } from "../_section.ts";
import { barChart, lineChart } from "../_svg.ts";
import { wrk } from "../_wrk.ts";

/** Runs `body` with a fresh server, and stops it. */
async function withServer<T>(
  setup: Setup,
  runtime: Runtime,
  env: Record<string, string>,
  body: (server: Process) => Promise<T>,
): Promise<T> {
  const server = await startDeadlineServer(setup, runtime, env);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const fixed = (x: number, digits = 0) => x.toFixed(digits);

// Target 1 -----------------------------------------------------------------

const GOODPUT_SERVER = { HOLD: "25", LIMIT: "4", QUEUE: "200" };
/** 4 slots of 25 ms. */
const GOODPUT_CEILING = 160;
const PATIENCE = 150;
const GOODPUT_SECONDS = 8;
const GOODPUT_MODES: Record<string, Record<string, string>> = {
  "fifo": GOODPUT_SERVER,
  "deadline": { ...GOODPUT_SERVER, DEADLINE: "header" },
  "deadline+adaptive": {
    ...GOODPUT_SERVER,
    DEADLINE: "header",
    ORDER: "adaptive",
  },
};

interface GoodputSample {
  goodput: number;
  lateShare: number;
  lateRuns: number;
  runs: number;
  client: OpenResult;
}

/** Target 1: goodput under deadlines. */
export async function deadlineGoodput(setup: Setup): Promise<Section> {
  const rounds = 2;
  const result = {} as Record<Runtime, Record<string, GoodputSample>>;
  for (const runtime of RUNTIMES) {
    const { samples } = await interleave<GoodputSample>({
      modes: () => Object.keys(GOODPUT_MODES),
      measure: (mode) =>
        withServer(setup, runtime, GOODPUT_MODES[mode], async (server) => {
          const client = await patientClient<OpenResult>(setup, {
            kind: "open",
            url: `${server.url}/`,
            seconds: GOODPUT_SECONDS,
            rate: 3 * GOODPUT_CEILING,
            patience: PATIENCE,
            sendDeadline: true,
          });
          const stats = await serverStats(server);
          return {
            goodput: client.good / GOODPUT_SECONDS,
            lateShare: stats.runs ? stats.lateRuns / stats.runs : 0,
            lateRuns: stats.lateRuns,
            runs: stats.runs,
            client,
          };
        }),
      enough: (_, n) => n >= rounds,
      maxRounds: rounds,
      progress: (mode, round, s) =>
        console.error(
          `bench: deadline_goodput ${runtime} ${mode} round ${round + 1}: ${
            fixed(s.goodput)
          } good/s, ${pct(s.lateShare)} late runs`,
        ),
    });
    result[runtime] = Object.fromEntries(
      Object.keys(GOODPUT_MODES).map((mode) => {
        const pick = (f: (s: GoodputSample) => number) =>
          median(values(samples, mode, f));
        const last = samples[mode].at(-1)!;
        return [mode, {
          goodput: pick((s) => s.goodput),
          lateShare: pick((s) => s.lateShare),
          lateRuns: pick((s) => s.lateRuns),
          runs: pick((s) => s.runs),
          client: last.client,
        }];
      }),
    );
  }
  await Deno.writeTextFile(
    `${setup.results}/deadline_goodput.svg`,
    goodputChart(result),
  );
  const rows = RUNTIMES.map((runtime) => {
    const r = result[runtime];
    const fifo = r["fifo"], deadline = r["deadline"];
    const both = r["deadline+adaptive"];
    return [
      runtime,
      `${fixed(fifo.goodput)} (${fixed(fifo.goodput / GOODPUT_CEILING, 2)})`,
      `${fixed(deadline.goodput)} (${
        fixed(deadline.goodput / GOODPUT_CEILING, 2)
      })`,
      `${fixed(deadline.goodput / Math.max(fifo.goodput, 1e-9), 1)}x`,
      pct(fifo.lateShare),
      pct(deadline.lateShare),
      `${fixed(both.goodput)} (${fixed(both.goodput / GOODPUT_CEILING, 2)})`,
      pct(both.lateShare),
    ];
  });
  return {
    key: "deadline_goodput",
    json: result,
    markdown: [
      "## Goodput under deadlines: 25 ms handler, limit 4, queue 200, 3x offered, 150 ms patience",
      "",
      `Open-loop Poisson arrivals at ${
        3 * GOODPUT_CEILING
      } req/s (3x the ceiling of 4 / 25 ms = ${GOODPUT_CEILING} req/s) for ${GOODPUT_SECONDS} s from bench/_patient_client.ts; each client wants its answer within ${PATIENCE} ms and sends \`x-request-timeout: ${PATIENCE}\`; a client that gives up keeps its connection (as a proxy that does not pass cancellation on), so the server cannot see it leave. Goodput: 200s that arrived within the patience, per second (x ceiling). Late runs: handler runs that started after their client had given up, as a share of all runs. \`deadline\` reads the header with the \`deadline\` option. Medians of ${rounds} interleaved rounds.`,
      "",
      ...table([
        "runtime",
        "plain FIFO goodput",
        "deadline goodput",
        "deadline / FIFO",
        "FIFO late runs",
        "deadline late runs",
        "deadline + adaptive goodput",
        "deadline + adaptive late runs",
      ], rows),
    ],
  };
}

/** The in-process cost of each case, and the ratios compared. */
interface MicroResult {
  rounds: number;
  batch: number;
  /** ns per rejection, medians over the rounds. */
  cases: Record<string, number>;
  /** "<case> / <baseline>", round by round. */
  ratios: Record<string, number[]>;
}

/** bench/rejection_micro.ts on every runtime, on the server CPU. */
async function rejectionMicro(
  setup: Setup,
): Promise<Record<Runtime, MicroResult>> {
  const result = {} as Record<Runtime, MicroResult>;
  for (const runtime of RUNTIMES) {
    const [command, args] = pinned(
      setup,
      "server",
      programCommand(setup, runtime, "rejection_micro"),
    );
    result[runtime] = JSON.parse(await output(command, args)) as MicroResult;
    for (const [name, r] of Object.entries(result[runtime].ratios)) {
      console.error(
        `bench: rejection_cost ${runtime} in-process ${name}: ${
          formatSpread(spread(r))
        }`,
      );
    }
  }
  return result;
}

/** Goodput as a share of the ceiling, by runtime and mode. */
export function goodputChart(
  result: Record<Runtime, Record<string, { goodput: number }>>,
): string {
  return barChart(
    "Goodput within 150 ms patience, x ceiling (25 ms, limit 4, queue 200, 3x)",
    "goodput / ceiling",
    RUNTIMES.flatMap((runtime) =>
      Object.keys(GOODPUT_MODES).map((mode) => ({
        label: `${runtime} ${mode.replace("deadline+adaptive", "+adaptive")}`,
        value: result[runtime][mode].goodput / GOODPUT_CEILING,
      }))
    ),
    1,
  );
}

// Target 2 and 5 -------------------------------------------------------------

const COST_MODES: Record<string, Record<string, string>> = {
  "full": { MODE: "full" },
  "predicted": { MODE: "predicted" },
  "full-fixed": { MODE: "full", RETRY_AFTER: "1" },
  "fast-auto": { LIMIT: "100000", HOLD: "0" },
  "fast-fixed": { LIMIT: "100000", HOLD: "0", RETRY_AFTER: "1" },
};
const COMPARED: Array<[string, string, string]> = [
  ["predicted", "full", 'rejection by prediction ("timeout") / "full"'],
  ["full", "full-fixed", '"full" rejection: "auto" / retryAfter: 1'],
  [
    "fast-auto",
    "fast-fixed",
    'fast path (limit never reached): "auto" / retryAfter: 1',
  ],
];

interface CostSample {
  cpuPerRequestUs: number;
  perSecond: number;
  non2xx: number;
  requests: number;
}

/** Target 2 (and 5's "auto"): the CPU a rejection costs. */
export async function rejectionCost(setup: Setup): Promise<Section> {
  const rounds = 4;
  const connections = 64, seconds = 3;
  const result = {} as Record<
    Runtime,
    Record<string, { cpuPerRequestUs: number; ratio?: Spread }>
  >;
  for (const runtime of RUNTIMES) {
    const { samples } = await interleave<CostSample>({
      modes: () => Object.keys(COST_MODES),
      measure: (mode) =>
        withServer(setup, runtime, COST_MODES[mode], async (server) => {
          const url = `${server.url}/`;
          await wrk(setup, url, { connections, seconds: 1 });
          const m = await measureRunning(setup, { pid: server.pid, url }, {
            connections,
            seconds,
          });
          return m;
        }),
      enough: (_, n) => n >= rounds,
      maxRounds: rounds,
      progress: (mode, round, s) =>
        console.error(
          `bench: rejection_cost ${runtime} ${mode} round ${round + 1}: ${
            fixed(s.cpuPerRequestUs, 1)
          } us/request, ${
            fixed(s.perSecond)
          } req/s, ${s.non2xx} non-2xx of ${s.requests}`,
        ),
    });
    result[runtime] = Object.fromEntries(
      Object.keys(COST_MODES).map((mode) => [mode, {
        cpuPerRequestUs: median(
          values(samples, mode, (s) => s.cpuPerRequestUs),
        ),
      }]),
    );
    for (const [mode, base] of COMPARED) {
      result[runtime][mode].ratio = spread(
        ratios(samples, mode, base, (s) => s.cpuPerRequestUs),
      );
    }
  }
  const micro = await rejectionMicro(setup);
  const rows = RUNTIMES.flatMap((runtime) =>
    COMPARED.map(([mode, base, what]) => [
      runtime,
      what,
      `${fixed(result[runtime][mode].cpuPerRequestUs, 1)} us`,
      `${fixed(result[runtime][base].cpuPerRequestUs, 1)} us`,
      formatSpread(result[runtime][mode].ratio!),
    ])
  );
  const microRows = RUNTIMES.flatMap((runtime) =>
    Object.entries(micro[runtime].ratios).map(([name, r]) => {
      const [caseName, base] = name.split(" / ");
      const cases = micro[runtime].cases;
      return [
        runtime,
        caseName,
        base,
        `${fixed(cases[caseName])} / ${fixed(cases[base])} ns`,
        formatSpread(spread(r)),
      ];
    })
  );
  return {
    key: "rejection_cost",
    json: { http: result, inProcess: micro },
    markdown: [
      "## What a rejection costs: server CPU per request",
      "",
      `wrk, ${connections} connections, ${seconds} s after 1 s of warm-up, a fresh server per measurement; CPU from /proc. "full": the only permit is held (after one hold was timed, as for "predicted") and there is no queue; "predicted": the only permit is held with a measured hold time, queue 100, and every request has \`deadline: 0\`, so each is turned away by prediction; "fast": limit 100,000, never reached (a 0 ms timer in the handler). The ratio is taken within each of ${rounds} interleaved rounds: median [min, max].`,
      "",
      ...table([
        "runtime",
        "comparison",
        "CPU/request",
        "baseline CPU/request",
        "ratio",
      ], rows),
      "",
      `In-process (bench/rejection_micro.ts, no HTTP): nanoseconds per rejected call, every case in one process on the server CPU, ${micro.deno.rounds} interleaved rounds of ${micro.deno.batch} calls per case (the order reverses each round), medians; the ratio to the baseline within each round: median [95% confidence interval of the median]. "full" limiters have timed one hold, so that \`"auto"\` estimates the wait as on a running server.`,
      "",
      ...table([
        "runtime",
        "case",
        "baseline",
        "ns/rejection: case / baseline",
        "ratio",
      ], microRows),
    ],
  };
}

// Target 3 -----------------------------------------------------------------

const STANDING_SERVER = { HOLD: "50", LIMIT: "64", QUEUE: "256" };
/** 64 slots of 50 ms. */
const STANDING_CEILING = 1280;
const STANDING_MODES: Record<string, Record<string, string>> = {
  "fifo": STANDING_SERVER,
  "adaptive": { ...STANDING_SERVER, ORDER: "adaptive" },
};
/**
 * The overload scenario's 1,024 connections, and 384 (the 320 that the
 * slots and the queue hold, and 64 more), where the 503s that wrk sends
 * back at once do not saturate the server's CPU.
 */
const STANDING_CONNECTIONS = [1024, 384] as const;
/** Other target/interval values, on Deno only, one round each. */
const VARIANTS: Array<[target: number, interval: number]> = [
  [1, 100],
  [20, 100],
  [50, 100],
  [5, 20],
  [5, 500],
];

interface StandingSample {
  goodput: number;
  p50: number;
  p99: number;
  /** How long the served requests waited in the queue, ms. */
  waitP50: number;
  waitP99: number;
  /** The handler's own time (its 50 ms timer, as late as it fires), ms. */
  holdP50: number;
  holdP99: number;
  wrkP99: number;
  timedOut: number;
}

async function standingRun(
  setup: Setup,
  runtime: Runtime,
  env: Record<string, string>,
  seconds: number,
  connections: number,
): Promise<StandingSample> {
  return await withServer(setup, runtime, env, async (server) => {
    const url = `${server.url}/`;
    await wrk(setup, url, { connections, seconds: 1 });
    await resetServer(server);
    const load = await wrk(setup, url, { connections, seconds });
    const stats: ServerStats = await serverStats(server);
    return {
      goodput: stats.served / seconds,
      p50: stats.p50,
      p99: stats.p99,
      waitP50: stats.waitP50,
      waitP99: stats.waitP99,
      holdP50: stats.holdP50,
      holdP99: stats.holdP99,
      wrkP99: load.p99,
      timedOut: stats.limiter.timedOut,
    };
  });
}

type StandingResult = Record<
  number,
  Record<Runtime, Record<string, StandingSample>>
>;

/** Target 3: standing queues. */
export async function standingQueue(setup: Setup): Promise<Section> {
  const rounds = 2, seconds = 4;
  const result = {} as StandingResult;
  for (const connections of STANDING_CONNECTIONS) {
    result[connections] = {} as Record<
      Runtime,
      Record<string, StandingSample>
    >;
    for (const runtime of RUNTIMES) {
      const { samples } = await interleave<StandingSample>({
        modes: () => Object.keys(STANDING_MODES),
        measure: (mode) =>
          standingRun(
            setup,
            runtime,
            STANDING_MODES[mode],
            seconds,
            connections,
          ),
        enough: (_, n) => n >= rounds,
        maxRounds: rounds,
        progress: (mode, round, s) =>
          console.error(
            `bench: standing_queue ${connections} ${runtime} ${mode} round ${
              round + 1
            }: ${fixed(s.goodput)} served/s, p99 ${fixed(s.p99)} ms, wait p99 ${
              fixed(s.waitP99)
            } ms, hold p50/p99 ${fixed(s.holdP50)}/${fixed(s.holdP99)} ms`,
          ),
      });
      result[connections][runtime] = Object.fromEntries(
        Object.keys(STANDING_MODES).map((mode) => {
          const pick = (f: (s: StandingSample) => number) =>
            median(values(samples, mode, f));
          const sample: StandingSample = {
            goodput: pick((s) => s.goodput),
            p50: pick((s) => s.p50),
            p99: pick((s) => s.p99),
            waitP50: pick((s) => s.waitP50),
            waitP99: pick((s) => s.waitP99),
            holdP50: pick((s) => s.holdP50),
            holdP99: pick((s) => s.holdP99),
            wrkP99: pick((s) => s.wrkP99),
            timedOut: pick((s) => s.timedOut),
          };
          return [mode, sample];
        }),
      );
    }
  }
  const variants: Record<string, StandingSample> = {};
  for (const [target, interval] of VARIANTS) {
    const name = `target ${target}, interval ${interval}`;
    variants[name] = await standingRun(
      setup,
      "deno",
      {
        ...STANDING_SERVER,
        ORDER: "adaptive",
        TARGET: String(target),
        INTERVAL: String(interval),
      },
      seconds,
      1024,
    );
    console.error(
      `bench: standing_queue deno adaptive ${name}: ${
        fixed(variants[name].goodput)
      } served/s, p99 ${fixed(variants[name].p99)} ms`,
    );
  }
  await Deno.writeTextFile(
    `${setup.results}/standing_queue.svg`,
    standingChart(result),
  );
  const rows = STANDING_CONNECTIONS.flatMap((connections) =>
    RUNTIMES.map((runtime) => {
      const fifo = result[connections][runtime]["fifo"];
      const adaptive = result[connections][runtime]["adaptive"];
      return [
        String(connections),
        runtime,
        `${fixed(fifo.goodput)} (${fixed(fifo.goodput / STANDING_CEILING, 2)})`,
        `${fixed(adaptive.goodput)} (${
          fixed(adaptive.goodput / fifo.goodput, 3)
        })`,
        `${fixed(fifo.p50)} / ${fixed(fifo.p99)} ms`,
        `${fixed(adaptive.p50)} / ${fixed(adaptive.p99)} ms (${
          fixed(adaptive.p99 / 50, 2)
        }x)`,
        `${fixed(fifo.waitP99)} / ${fixed(adaptive.waitP50, 1)} / ${
          fixed(adaptive.waitP99, 1)
        } ms`,
        `${fixed(fifo.holdP50)} / ${fixed(fifo.holdP99)} ms`,
        `${fixed(adaptive.holdP50)} / ${fixed(adaptive.holdP99)} ms`,
        `${fixed(fifo.wrkP99)} / ${fixed(adaptive.wrkP99)} ms`,
      ];
    })
  );
  const variantRows = [
    ["target 5, interval 100 (default)", result[1024].deno["adaptive"]],
    ...Object.entries(variants),
  ].map(([name, s]) => {
    const sample = s as StandingSample;
    return [
      name as string,
      `${fixed(sample.goodput)} (${
        fixed(sample.goodput / result[1024].deno["fifo"].goodput, 3)
      })`,
      `${fixed(sample.p50)} / ${fixed(sample.p99)} ms`,
      `${fixed(sample.waitP99, 1)} ms`,
      `${fixed(sample.holdP50)} / ${fixed(sample.holdP99)} ms`,
    ];
  });
  return {
    key: "standing_queue",
    json: { result, variants },
    markdown: [
      "## Standing queues: 50 ms handler, limit 64, queue 256",
      "",
      `wrk, 1,024 connections (the overload scenario) and 384, ${seconds} s after 1 s of warm-up, a fresh server per measurement. Goodput: 200s per second (x the ceiling of 64 / 50 ms = ${STANDING_CEILING} for FIFO, x FIFO's for adaptive). Latency of the served requests is measured in the server, from the call of the throttled handler to its response (wrk mixes 503s into its own figures; its p99 over all responses is in the last column); the time a request spent before it reached the server (in the kernel's accept queue, or unread on its connection) is not in it. Of that latency, the wait in floodgate's queue comes from the limiter's \`admitted\` events, and the handler's own time (its 50 ms timer, which fires late when the server's CPU is saturated) is measured inside the handler. Default \`target\` 5 ms, \`interval\` 100 ms. Medians of ${rounds} interleaved rounds.`,
      "",
      ...table([
        "connections",
        "runtime",
        "FIFO goodput (x ceiling)",
        "adaptive goodput (x FIFO)",
        "FIFO served p50 / p99",
        "adaptive served p50 / p99 (p99 / 50 ms)",
        "wait in the queue: FIFO p99 / adaptive p50 / p99",
        "handler's own time, FIFO: p50 / p99",
        "handler's own time, adaptive: p50 / p99",
        "wrk p99, all responses: FIFO / adaptive",
      ], rows),
      "",
      "Other `target` and `interval` values (Deno, 1,024 connections, one round each):",
      "",
      ...table(
        [
          "adaptive",
          "goodput (x FIFO)",
          "served p50 / p99",
          "wait p99",
          "handler's own time p50 / p99",
        ],
        variantRows,
      ),
    ],
  };
}

/** The p99 of served requests over the hold time, by runtime and order. */
export function standingChart(result: StandingResult): string {
  return barChart(
    "Served p99 / hold time (50 ms, limit 64, queue 256)",
    "p99 / 50 ms",
    STANDING_CONNECTIONS.flatMap((connections) =>
      RUNTIMES.flatMap((runtime) =>
        Object.keys(STANDING_MODES).map((mode) => ({
          label: `${runtime} ${mode}, ${connections}`,
          value: result[connections][runtime][mode].p99 / 50,
        }))
      )
    ),
    2,
  );
}

// Target 4 -----------------------------------------------------------------

/**
 * Two servers: the one of deadline_goodput (its full queue drains in
 * 1.25 s), and a slower one whose full queue drains in 4 s. Each is offered
 * 3x its ceiling by clients whose think time and hold add up to `cycle` ms.
 */
const RETRY_SCENARIOS = {
  "25 ms, limit 4, queue 200": {
    server: { HOLD: "25", LIMIT: "4", QUEUE: "200" },
    hold: 25,
    ceiling: 160,
    cycle: 1025,
    seconds: 24,
    settle: 6,
  },
  "100 ms, limit 4, queue 160": {
    server: { HOLD: "100", LIMIT: "4", QUEUE: "160" },
    hold: 100,
    ceiling: 40,
    cycle: 3000,
    seconds: 32,
    settle: 10,
  },
};
type Scenario = (typeof RETRY_SCENARIOS)[keyof typeof RETRY_SCENARIOS];
const RETRY_MODES = { "auto": "auto", "fixed 1 s": "1" };

/** 3x the ceiling when nobody waits: clients / cycle. */
const clientsOf = (s: Scenario) => Math.round(3 * s.ceiling * s.cycle / 1000);

interface RetrySummary {
  goodput: number;
  rejectedShare: number;
  retriesPerSecond: number;
  attemptsPerSecond: number;
  errors: number;
}

function summarise(run: PopulationResult, settle: number): RetrySummary {
  const steady = run.seconds.slice(settle);
  const sum = (f: (s: PopulationResult["seconds"][number]) => number) =>
    steady.reduce((total, s) => total + f(s), 0);
  const attempts = sum((s) => s.attempts);
  return {
    goodput: sum((s) => s.successes) / steady.length,
    rejectedShare: sum((s) => s.rejections) / attempts,
    retriesPerSecond: sum((s) => s.retries) / steady.length,
    attemptsPerSecond: attempts / steady.length,
    errors: run.errors,
  };
}

/** Target 4: Retry-After that works. */
export async function retryAfter(setup: Setup): Promise<Section> {
  const json: Record<string, Record<string, Record<string, RetrySummary>>> = {};
  const markdown: string[] = [
    "## Retry-After that works: clients that honour it, 3x overload",
    "",
    "Clients of bench/_patient_client.ts, each in a loop: a request; after a 200 a think time (exponential); after a 503 a wait of what Retry-After says, then the same request again (a retry). The population offers 3x the server's ceiling when nobody waits. The first seconds of a run, while the queue fills, are left out of the figures. Charts: bench/results/retry_after_<runtime>_<n>.svg (n = 1, 2 for the scenarios below; dashed: the fixed 1 s).",
  ];
  let n = 0;
  for (const [name, scenario] of Object.entries(RETRY_SCENARIOS)) {
    n++;
    const clients = clientsOf(scenario);
    json[name] = {};
    const rows: string[][] = [];
    for (const runtime of RUNTIMES) {
      const runs: Record<string, PopulationResult> = {};
      const summaries: Record<string, RetrySummary> = {};
      for (const [mode, value] of Object.entries(RETRY_MODES)) {
        const env = { ...scenario.server, RETRY_AFTER: value };
        runs[mode] = await withServer(
          setup,
          runtime,
          env,
          (server) =>
            patientClient<PopulationResult>(setup, {
              kind: "population",
              url: `${server.url}/`,
              seconds: scenario.seconds,
              clients,
              think: scenario.cycle - scenario.hold,
            }),
        );
        const summary = summaries[mode] = summarise(
          runs[mode],
          scenario.settle,
        );
        console.error(
          `bench: retry_after ${name} ${runtime} ${mode}: ${
            fixed(summary.goodput)
          } good/s, ${pct(summary.rejectedShare)} rejected, ${
            fixed(summary.retriesPerSecond)
          } retries/s`,
        );
      }
      json[name][runtime] = summaries;
      const series = Object.entries(runs).flatMap(([mode, run], i) =>
        (["successes", "rejections", "retries"] as const).map((kind) => ({
          name: `${mode}: ${
            { successes: "200/s", rejections: "503/s", retries: "retries/s" }[
              kind
            ]
          }`,
          points: run.seconds.map((s, t) =>
            [t + 1, s[kind]] as [number, number]
          ),
          dashed: i === 1,
        }))
      );
      await Deno.writeTextFile(
        `${setup.results}/retry_after_${runtime}_${n}.svg`,
        lineChart(
          `Retry-After on ${runtime}: ${name}, ${clients} clients`,
          "second",
          "per second",
          series,
        ),
      );
      const auto = summaries["auto"], one = summaries["fixed 1 s"];
      rows.push([
        runtime,
        `${fixed(auto.goodput)} (${fixed(auto.goodput / scenario.ceiling, 2)})`,
        `${fixed(one.goodput)} (${fixed(one.goodput / scenario.ceiling, 2)})`,
        `${pct(auto.rejectedShare)} / ${pct(one.rejectedShare)} (${
          fixed(auto.rejectedShare / one.rejectedShare, 2)
        })`,
        `${fixed(auto.retriesPerSecond)} / ${fixed(one.retriesPerSecond)} (${
          fixed(auto.retriesPerSecond / one.retriesPerSecond, 2)
        })`,
        `${fixed(auto.attemptsPerSecond)} / ${fixed(one.attemptsPerSecond)}`,
      ]);
    }
    const drain = Number(scenario.server.QUEUE) * scenario.hold /
      Number(scenario.server.LIMIT) / 1000;
    markdown.push(
      "",
      `### ${n}. ${name}: ceiling ${scenario.ceiling} req/s, a full queue drains in ${drain} s`,
      "",
      `${clients} clients, mean think time ${
        scenario.cycle - scenario.hold
      } ms; ${scenario.seconds} s a run, the first ${scenario.settle} s left out.`,
      "",
      ...table([
        "runtime",
        '"auto" goodput (x ceiling)',
        "1 s goodput (x ceiling)",
        'rejected share: "auto" / 1 s (ratio)',
        'retries/s: "auto" / 1 s (ratio)',
        'attempts/s: "auto" / 1 s',
      ], rows),
    );
  }
  return { key: "retry_after", json, markdown };
}
