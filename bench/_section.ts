/** What a suite adds to the results, and the markdown tables in it. */
import type { Setup } from "./_ensure.ts";

/** One suite's part of bench.json and bench.md. */
export interface Section {
  /** Its key in bench.json. */
  key: string;
  json: unknown;
  /** Its markdown, from its `##` heading on. */
  markdown: string[];
}

/** A suite: measures on every runtime and reports. */
export type Suite = (setup: Setup) => Promise<Section>;

/** A markdown table. */
export function table(header: readonly string[], rows: string[][]): string[] {
  return [
    `| ${header.join(" | ")} |`,
    `|${" --- |".repeat(header.length)}`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
}
