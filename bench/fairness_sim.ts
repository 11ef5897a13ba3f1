/**
 * Who gets the capacity, measured on the real Limiter in virtual time
 * (scripts/_schedule_sim.ts, the engine of tests/fairness_test.ts): issue
 * 10's fairness, priority and weight scenarios, each with and without the
 * option that serves it, with Poisson and with evenly spaced arrivals, over
 * several seeds (the worst seed is shown). Every granted request holds its
 * permit 10 ms; 10 s of virtual time a run.
 *
 * Usage: deno run bench/fairness_sim.ts   (prints markdown tables)
 */
import {
  type ClientFigures,
  fairnessScenario,
  priorityScenario,
  type Scenario,
  type SimResult,
  simulate,
  weightScenario,
} from "../scripts/_schedule_sim.ts";

const SEEDS = [1, 2, 3, 4, 5];
const HOLD = 10;

async function worstOver(
  make: (seed: number) => Scenario,
  figure: (result: SimResult) => Record<string, number>,
  worse: Record<string, "min" | "max">,
): Promise<Record<string, number>> {
  const all: Record<string, number>[] = [];
  for (const seed of SEEDS) all.push(figure(await simulate(make(seed))));
  return Object.fromEntries(
    Object.entries(worse).map(([name, how]) => [
      name,
      Math[how](...all.map((f) => f[name])),
    ]),
  );
}

const pick = (result: SimResult, prefix: string) =>
  result.clients.filter((c) => c.name.startsWith(prefix));
const min = (cs: ClientFigures[], f: (c: ClientFigures) => number) =>
  Math.min(...cs.map(f));
const max = (cs: ClientFigures[], f: (c: ClientFigures) => number) =>
  Math.max(...cs.map(f));
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const ms = (x: number) => `${x.toFixed(1)} ms`;

const out: string[] = [
  "## Fairness: limit 8, queue 64, hold 10 ms; one client at 2,000 req/s, nine at 40 req/s (3x capacity)",
  "",
  "Target with `flow`: each light client's goodput >= 95% of its demand, its p99 wait <= 20 ms, the limit >= 98% used.",
  "",
  "| arrivals | flow | light goodput (worst) | light p99 wait (worst) | heavy goodput | limit used (worst) |",
  "| --- | --- | --- | --- | --- | --- |",
];
for (const arrivals of ["poisson", "even"] as const) {
  for (const flows of [true, false]) {
    const r = await worstOver(
      (seed) => fairnessScenario(flows, { seed, arrivals }),
      (result) => ({
        goodput: min(pick(result, "light"), (c) => c.goodput),
        p99: max(pick(result, "light"), (c) => c.p99Wait),
        heavy: result.byName.heavy.goodput,
        used: result.utilisation,
      }),
      { goodput: "min", p99: "max", heavy: "min", used: "min" },
    );
    out.push(
      `| ${arrivals} | ${flows ? "client" : "none"} | ${pct(r.goodput)} | ${
        ms(r.p99)
      } | ${pct(r.heavy)} | ${pct(r.used)} |`,
    );
  }
}

out.push(
  "",
  "## Priority: limit 8, headroom 0.25, hold 10 ms; 3x overload, 30% priority 0, 70% priority 7",
  "",
  "Target: priority 0 served >= 99% of its demand with p99 wait <= 20 ms; >= 99% of the rejections on priority 7. The last rows offer priority 0's traffic alone (no priority 7 at all): what a limit of 8 can do for it at best.",
  "",
  "| arrivals | queue | priority 0 goodput (worst) | priority 0 p99 wait (worst) | rejections on priority 7 (worst) | priority 7 goodput |",
  "| --- | --- | --- | --- | --- | --- |",
);
for (const arrivals of ["poisson", "even"] as const) {
  for (const queue of [32, 0]) {
    const r = await worstOver(
      (seed) => priorityScenario(queue, { seed, arrivals }),
      (result) => {
        const { urgent, batch } = result.byName;
        const lost = (c: ClientFigures) => c.rejected + c.timedOut;
        return {
          goodput: urgent.goodput,
          p99: urgent.p99Wait,
          share: lost(batch) / (lost(batch) + lost(urgent)),
          batch: batch.goodput,
        };
      },
      { goodput: "min", p99: "max", share: "min", batch: "min" },
    );
    out.push(
      `| ${arrivals} | ${queue} | ${pct(r.goodput)} | ${ms(r.p99)} | ${
        pct(r.share)
      } | ${pct(r.batch)} |`,
    );
  }
}
for (const queue of [32, 0]) {
  const r = await worstOver(
    (seed) => {
      const scenario = priorityScenario(queue, { seed });
      return { ...scenario, clients: scenario.clients.slice(0, 1) };
    },
    (result) => ({
      goodput: result.byName.urgent.goodput,
      p99: result.byName.urgent.p99Wait,
    }),
    { goodput: "min", p99: "max" },
  );
  out.push(
    `| poisson, priority 0 alone | ${queue} | ${pct(r.goodput)} | ${
      ms(r.p99)
    } | - | - |`,
  );
}

out.push(
  "",
  "## Weights: limit 16, hold 10 ms; weight-1 and weight-8 requests",
  "",
  "Target: no weight-8 request waits more than the longest weight-1 wait plus 8 holds (80 ms); `active` never exceeds 16. Mixed: four tenants each send 600 req/s of weight 1 and 25 req/s of weight 8 (2x capacity). Separate: weight 1 and weight 8 come from different flows (four at 600 req/s of weight 1, two at 100 req/s of weight 8; 2.5x capacity).",
  "",
  "With separate flows and a full queue, P4 keeps every flow at about the same number of waiters (Q / F each), and P2 grants every flow the same weight per turn, which is 8 requests of weight 1 or one of weight 8. A weight-8 waiter then waits about Q * W * H / L and a weight-1 waiter Q * H / L: the gap is Q * (W - 1) * H / L = 64 * 7 * 10 / 16 = 280 ms at queue 64, within 8 holds only for a queue of at most 8 * L / (W - 1) = 18. The last rows run the separate clients with queue 16.",
  "",
  "| clients | queue | flow | longest weight-1 wait | longest weight-8 wait | weight-8 goodput | most active |",
  "| --- | --- | --- | --- | --- | --- | --- |",
);
const separate = (flows: boolean, seed: number, queue: number): Scenario => ({
  ...weightScenario(flows, { seed, queue }),
  clients: [
    ...[1, 2, 3, 4].map((i) => ({ name: `n${i}.narrow`, rate: 600 })),
    ...[1, 2].map((i) => ({ name: `w${i}.wide`, rate: 100, weight: 8 })),
  ],
});
for (
  const [clients, queue] of [["mixed", 64], ["separate", 64], [
    "separate",
    16,
  ]] as const
) {
  for (const flows of [true, false]) {
    const r = await worstOver(
      (seed) =>
        clients === "mixed"
          ? weightScenario(flows, { seed, queue })
          : separate(flows, seed, queue),
      (result) => {
        const narrow = result.clients.filter((c) => c.name.endsWith("narrow"));
        const wide = result.clients.filter((c) => c.name.endsWith("wide"));
        return {
          narrow: max(narrow, (c) => c.maxWait),
          wide: max(wide, (c) => c.maxWait),
          excess: max(wide, (c) => c.maxWait) - max(narrow, (c) => c.maxWait),
          goodput: min(wide, (c) => c.goodput),
          active: result.maxActive,
        };
      },
      {
        narrow: "max",
        wide: "max",
        excess: "max",
        goodput: "min",
        active: "max",
      },
    );
    out.push(
      `| ${clients} | ${queue} | ${flows ? "client" : "none"} | ${
        ms(r.narrow)
      } | ${ms(r.wide)} (${
        r.excess <= 8 * HOLD ? "within" : "beyond"
      } +80 ms) | ${pct(r.goodput)} | ${r.active} |`,
    );
  }
}

console.log(
  [
    `# Who gets the capacity, in virtual time`,
    "",
    `Command: \`deno run bench/fairness_sim.ts\`. Worst of seeds ${
      SEEDS.join(", ")
    }; 10 s of virtual time each.`,
    "",
    ...out,
  ].join("\n"),
);
