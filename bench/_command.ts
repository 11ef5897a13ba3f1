/** The command lines of the benchmark programs on each runtime. */
import type { Runtime, Setup } from "./_ensure.ts";

/** A command and its arguments. */
export type Command = [command: string, args: string[]];

/** Options for {@linkcode programCommand}. */
export interface ProgramOptions {
  /** Expose the collector (`gc()`) to the program. */
  exposeGc?: boolean;
}

/**
 * How `runtime` runs `bench/<name>.ts`: Deno and Bun run the source, Node
 * its transpiled copy beside the npm build's.
 */
export function programCommand(
  setup: Setup,
  runtime: Runtime,
  name: string,
  { exposeGc = false }: ProgramOptions = {},
): Command {
  if (runtime === "deno") {
    return [Deno.execPath(), [
      "run",
      "-A",
      ...(exposeGc ? ["--v8-flags=--expose-gc"] : []),
      `bench/${name}.ts`,
    ]];
  }
  if (runtime === "bun") return [setup.bun, [`bench/${name}.ts`]];
  return ["node", [
    ...(exposeGc ? ["--expose-gc"] : []),
    `${setup.nodeBuild}/bench/${name}.js`,
  ]];
}

/** CPU 1 runs the program under test, CPU 0 what loads it. */
export type Cpu = "server" | "load";

/**
 * `command` bound to one CPU with taskset, where the machine has two, so
 * that the server and its load generator do not compete.
 */
export function pinned(
  setup: Setup,
  cpu: Cpu,
  [command, args]: Command,
): Command {
  if (!setup.pin) return [command, args];
  return ["taskset", ["-c", cpu === "server" ? "1" : "0", command, ...args]];
}
