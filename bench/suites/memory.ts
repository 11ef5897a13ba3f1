/** Heap bytes per waiter and per key (bench/memory.ts) on every runtime. */
import { output } from "../../scripts/_process.ts";
import { programCommand } from "../_command.ts";
import { type Runtime, RUNTIMES, type Setup } from "../_ensure.ts";
import { type Section, table } from "../_section.ts";

const ROWS: Array<[key: string, label: string]> = [
  ["waiter", "per queued waiter"],
  ["waiterWithSignal", "per queued waiter with an AbortSignal (the listener)"],
  ["key", "per live key"],
  [
    "millionFlows",
    "over the baseline after 1,000,000 distinct flows queued and left",
  ],
  [
    "releasedWaiterKeepsNothing",
    "a released waiter keeps its limiter alive through the caller's signal",
  ],
];

export async function memory(setup: Setup): Promise<Section> {
  const result = {} as Record<Runtime, Record<string, number | boolean>>;
  for (const runtime of RUNTIMES) {
    result[runtime] = JSON.parse(
      await output(
        ...programCommand(setup, runtime, "memory", { exposeGc: true }),
      ),
    );
  }
  return {
    key: "memory",
    json: result,
    markdown: [
      "## Memory (heap bytes)",
      "",
      ...table(
        ["", ...RUNTIMES],
        ROWS.map(([key, label]) => [
          label,
          ...RUNTIMES.map((r) => {
            const value = result[r][key];
            return typeof value === "boolean"
              ? (value ? "no" : "YES")
              : value.toFixed(0);
          }),
        ]),
      ),
    ],
  };
}
