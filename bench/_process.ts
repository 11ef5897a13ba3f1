/** Starting and stopping the servers of a benchmark, as child processes. */
import { freePort } from "../tests/_server.ts";

export interface Child {
  url: string;
  stop(): Promise<void>;
}

/** Runs `deno run -A script` with `env` and PORT, and waits for `path`. */
export async function startDeno(
  script: string,
  env: Record<string, string>,
  path = "/",
): Promise<Child> {
  const port = await freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script],
    env: { ...env, PORT: String(port) },
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 20_000;
  while (true) {
    try {
      const response = await fetch(url + path);
      await response.arrayBuffer();
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`${script} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return {
    url,
    stop: async () => {
      try {
        child.kill();
      } catch {
        // already gone
      }
      await child.status;
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[
    Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
  ];
}
