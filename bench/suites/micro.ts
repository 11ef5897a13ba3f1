/**
 * The microbenchmark of the counting primitive (bench/micro.ts) on every
 * runtime, 3 interleaved rounds, on the server CPU.
 */
import { output } from "../../scripts/_process.ts";
import { median } from "../../scripts/_stats.ts";
import { pinned, programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import { interleave } from "../_rounds.ts";
import { type Section, table } from "../_section.ts";

const ROUNDS = 3;
/** The contended case with priority, flow and weight on every task. */
const PRIORITIZED = "floodgate run, 16 flows, 3 priorities";

interface Micro {
  uncontended: Record<string, number>;
  contended: Record<string, number>;
}

export async function micro(setup: Setup): Promise<Section> {
  const { samples } = await interleave<Micro>({
    modes: () => RUNTIMES,
    measure: async (runtime) =>
      JSON.parse(
        await output(
          ...pinned(
            setup,
            "server",
            programCommand(setup, runtime as Runtime, "micro"),
          ),
        ),
      ),
    enough: (_, rounds) => rounds >= ROUNDS,
    maxRounds: ROUNDS,
  });
  const result = Object.fromEntries(RUNTIMES.map((runtime) => {
    const all = samples[runtime] as Micro[];
    const medians = (part: keyof Micro) =>
      Object.fromEntries(
        Object.keys(all[0][part]).map((name) => [
          name,
          median(all.map((r) => r[part][name])),
        ]),
      );
    return [runtime, {
      uncontended: medians("uncontended"),
      contended: medians("contended"),
    }];
  })) as Record<Runtime, Micro>;

  const added = (runtime: Runtime, name: string) =>
    result[runtime].uncontended[name] -
    result[runtime].uncontended["no limiter"];
  const rows = Object.keys(result.deno.uncontended)
    .filter((name) => name !== "no limiter")
    .map((name) => [
      `uncontended: ${name}`,
      ...RUNTIMES.map((r) =>
        `${added(r, name).toFixed(0)} (${
          (added(r, name) / added(r, "bare counter")).toFixed(2)
        } x bare)`
      ),
    ]);
  for (const name of Object.keys(result.deno.contended)) {
    rows.push([
      `contended: ${name}`,
      ...RUNTIMES.map((r) => {
        const contended = result[r].contended;
        const ns = contended[name];
        // The case with priorities compares like with like.
        const ours = name.includes("priorities")
          ? contended[PRIORITIZED]
          : contended["floodgate run"];
        if (name === PRIORITIZED) {
          return `${ns.toFixed(0)} (${
            (ns / contended["floodgate run"]).toFixed(2)
          } x plain)`;
        }
        return name.startsWith("floodgate")
          ? ns.toFixed(0)
          : `${ns.toFixed(0)} (floodgate ${(ns / ours).toFixed(2)} x faster)`;
      }),
    ]);
  }
  return {
    key: "micro",
    json: result,
    markdown: [
      "## Microbenchmark (ns)",
      "",
      `Uncontended: time one acquire + release adds to an async no-op, and that time over what a bare counter adds. Contended: time per task, 1,000 tasks sharing 8 permits, and how many times faster floodgate is; with 16 flows and 3 priorities, \`priority\`, \`flow\` and \`weight\` are set on every task, the time is also given over the plain limiter's, and p-queue runs with priorities. Medians of ${ROUNDS} interleaved rounds.`,
      "",
      ...table(["", ...RUNTIMES], rows),
    ],
  };
}
