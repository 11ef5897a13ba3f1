/**
 * The microbenchmark of the counting primitive (bench/micro.ts) on every
 * runtime, on the server CPU: one process per runtime, whose interleaved
 * rounds give each ratio round by round, reported as a median with its 95%
 * confidence interval.
 */
import { output } from "../../scripts/_process.ts";
import { median } from "../../scripts/_stats.ts";
import { pinned, programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import {
  formatSpread,
  ratios,
  type Samples,
  type Spread,
  spread,
  values,
} from "../_rounds.ts";
import { type Section, table } from "../_section.ts";

/** The contended case with priority, flow and weight on every task. */
const PRIORITIZED = "floodgate run, 16 flows, 3 priorities";
const PLAIN = "floodgate run";

/** What bench/micro.ts prints: ns per operation, round by round. */
interface Micro {
  rounds: number;
  uncontended: Samples<number>;
  contended: Samples<number>;
}

interface Result {
  rounds: number;
  /** ns one acquire + release adds to an async no-op, medians. */
  uncontended: Record<string, number>;
  /** ns per task, medians. */
  contended: Record<string, number>;
  /**
   * Per contended case, its time over the floodgate case it compares with
   * (for floodgate's with priorities, the plain one's), round by round.
   */
  ratios: Record<string, Spread>;
}

/** The floodgate case that `name` is compared with. */
function baseOf(name: string): string {
  if (name === PRIORITIZED) return PLAIN;
  return name.includes("priorities") ? PRIORITIZED : PLAIN;
}

export async function micro(setup: Setup): Promise<Section> {
  const result = {} as Record<Runtime, Result>;
  for (const runtime of RUNTIMES) {
    const m = JSON.parse(
      await output(
        ...pinned(setup, "server", programCommand(setup, runtime, "micro")),
      ),
    ) as Micro;
    const at = (part: Samples<number>, name: string) =>
      median(values(part, name, (ns) => ns));
    const bare = at(m.uncontended, "no limiter");
    result[runtime] = {
      rounds: m.rounds,
      uncontended: Object.fromEntries(
        Object.keys(m.uncontended).filter((name) => name !== "no limiter")
          .map((name) => [name, at(m.uncontended, name) - bare]),
      ),
      contended: Object.fromEntries(
        Object.keys(m.contended).map((name) => [name, at(m.contended, name)]),
      ),
      ratios: Object.fromEntries(
        Object.keys(m.contended).filter((name) => name !== PLAIN).map((
          name,
        ) => [
          name,
          spread(ratios(m.contended, name, baseOf(name), (ns) => ns)),
        ]),
      ),
    };
    for (const [name, s] of Object.entries(result[runtime].ratios)) {
      console.error(
        `bench: micro ${runtime} ${name} / ${baseOf(name)}: ${formatSpread(s)}`,
      );
    }
  }

  const rows = Object.keys(result.deno.uncontended).map((name) => [
    `uncontended: ${name}`,
    ...RUNTIMES.map((r) => {
      const added = result[r].uncontended;
      return `${added[name].toFixed(0)} (${
        (added[name] / added["bare counter"]).toFixed(2)
      } x bare)`;
    }),
  ]);
  for (const name of Object.keys(result.deno.contended)) {
    rows.push([
      `contended: ${name}`,
      ...RUNTIMES.map((r) => {
        const ns = result[r].contended[name].toFixed(0);
        if (name === PLAIN) return ns;
        const ratio = formatSpread(result[r].ratios[name]);
        return name === PRIORITIZED
          ? `${ns} (${ratio} x plain)`
          : `${ns} (floodgate ${ratio} x faster)`;
      }),
    ]);
  }
  const rounds = RUNTIMES.map((r) => result[r].rounds).join(", ");
  return {
    key: "micro",
    json: result,
    markdown: [
      "## Microbenchmark (ns)",
      "",
      `Uncontended: time one acquire + release adds to an async no-op, and that time over what a bare counter adds. Contended: time per task, 1,000 tasks sharing 8 permits, and how many times faster floodgate is; with 16 flows and 3 priorities, \`priority\`, \`flow\` and \`weight\` are set on every task, the time is also given over the plain limiter's, and p-queue runs with priorities. One process per runtime runs every case in interleaved rounds (${rounds} on ${
        RUNTIMES.join(", ")
      }; the order reverses each round), a batch of about 15 ms of each case a round: times are medians over the rounds; ratios are the medians of the per-round ratios, with their 95% confidence interval in brackets.`,
      "",
      ...table(["", ...RUNTIMES], rows),
    ],
  };
}
