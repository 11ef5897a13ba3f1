/** Starting and stopping the servers of a benchmark, as child processes. */
import { freePort, type Process, startProcess } from "../tests/_server.ts";

/** Runs `deno run -A script` with `env` and waits until `path` answers. */
export async function startDeno(
  script: string,
  env: Record<string, string>,
  path = "/",
): Promise<Process> {
  const port = await freePort();
  return startProcess(Deno.execPath(), ["run", "-A", script], port, path, env);
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[
    Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
  ];
}
