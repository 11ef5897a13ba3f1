/**
 * One measurement of the deadline benchmarks: a fresh bench/_deadline_server.ts
 * on the server CPU, loaded by wrk or by bench/_patient_client.ts on the load
 * CPU, and what the server counted meanwhile.
 */
import {
  freePort,
  output,
  type Process,
  startProcess,
} from "../scripts/_process.ts";
import { pinned, programCommand } from "./_command.ts";
import type { Runtime, Setup } from "./_ensure.ts";
import type { Plan } from "./_patient_client.ts";

/** What bench/_deadline_server.ts counted. */
export interface ServerStats {
  runs: number;
  lateRuns: number;
  served: number;
  rejected: number;
  /** Of the served requests' time in the server, ms. */
  p50: number;
  p99: number;
  /** Of the handler's own time, ms. */
  holdP50: number;
  holdP99: number;
  /** Of the served requests' wait in the queue (0: granted at once), ms. */
  waitP50: number;
  waitP99: number;
  /** Waiters let go with "timeout" after they waited. */
  dropped: number;
  limiter: { timedOut: number; rejected: number; admitted: number };
}

/** Starts bench/_deadline_server.ts with `env` on the server CPU. */
export async function startDeadlineServer(
  setup: Setup,
  runtime: Runtime,
  env: Record<string, string>,
): Promise<Process> {
  const [command, args] = pinned(
    setup,
    "server",
    programCommand(setup, runtime, "_deadline_server"),
  );
  return await startProcess(command, args, await freePort(), "/stats", {
    LIFETIME: "600",
    ...env,
  });
}

/** What the server counted since its last reset. */
export async function serverStats(server: Process): Promise<ServerStats> {
  return await (await fetch(`${server.url}/stats`)).json();
}

/** Clears the server's counters. */
export async function resetServer(server: Process): Promise<void> {
  await (await fetch(`${server.url}/reset`)).arrayBuffer();
}

/** Runs bench/_patient_client.ts with `plan` on the load CPU. */
export async function patientClient<T>(
  setup: Setup,
  plan: Plan,
): Promise<T> {
  const text = await output(
    ...pinned(setup, "load", [Deno.execPath(), [
      "run",
      "-A",
      "bench/_patient_client.ts",
      JSON.stringify(plan),
    ]]),
  );
  return JSON.parse(text) as T;
}
