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
        const ns = result[r].contended[name];
        return name.startsWith("floodgate")
          ? ns.toFixed(0)
          : `${ns.toFixed(0)} (floodgate ${
            (ns / result[r].contended["floodgate run"]).toFixed(2)
          } x faster)`;
      }),
    ]);
  }
  return {
    key: "micro",
    json: result,
    markdown: [
      "## Microbenchmark (ns)",
      "",
      `Uncontended: time one acquire + release adds to an async no-op, and that time over what a bare counter adds. Contended: time per task, 1,000 tasks sharing 8 permits, and how many times faster floodgate is. Medians of ${ROUNDS} interleaved rounds.`,
      "",
      ...table(["", ...RUNTIMES], rows),
    ],
  };
}
