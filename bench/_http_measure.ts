/** One HTTP measurement: a fresh server process under wrk. */
import { freePort, type Process, startProcess } from "../scripts/_process.ts";
import { pinned, programCommand } from "./_command.ts";
import type { Runtime, Setup } from "./_ensure.ts";
import { cpuMs, peakRssMiB } from "./_usage.ts";
import { type Load, type Shape, wrk } from "./_wrk.ts";

/** wrk's figures and the server's own. */
export interface Measured extends Load {
  cpuPerRequestUs: number;
  peakRssMiB: number;
  /**
   * The server's CPU time over the time measured: near 1 when it had its
   * CPU to itself and was the bottleneck; less when something else ran.
   */
  cpuShare: number;
}

/** A server of bench/_http_server.ts: which runtime, which $MODE. */
export interface ServerSpec {
  runtime: Runtime;
  mode: string;
}

/** A running process to measure. */
export interface Target {
  pid: number;
  url: string;
  /** Whose CPU time counts: the server alone by default. */
  cpuOf?: readonly number[];
}

/** Starts bench/_http_server.ts on the server CPU. */
export async function startServer(
  setup: Setup,
  { runtime, mode }: ServerSpec,
): Promise<Process> {
  const [command, args] = pinned(
    setup,
    "server",
    programCommand(setup, runtime, "_http_server"),
  );
  return await startProcess(command, args, await freePort(), "/", {
    MODE: mode,
    LIFETIME: "900",
  });
}

/** wrk against a running `target`, with the CPU time it used meanwhile. */
export async function measureRunning(
  setup: Setup,
  { pid, url, cpuOf = [pid] }: Target,
  shape: Shape,
): Promise<Measured> {
  const cpu = async () =>
    (await Promise.all(cpuOf.map(cpuMs))).reduce((a, b) => a + b, 0);
  const before = await cpu();
  const started = performance.now();
  const result = await wrk(setup, url, shape);
  const elapsed = performance.now() - started;
  const used = (await cpu()) - before;
  return {
    ...result,
    cpuPerRequestUs: (used * 1000) / result.requests,
    peakRssMiB: await peakRssMiB(pid),
    cpuShare: used / elapsed,
  };
}

/** A fresh server, warmed up for a second, then measured as `shape` says. */
export async function measure(
  setup: Setup,
  spec: ServerSpec,
  shape: Shape,
): Promise<Measured> {
  const server = await startServer(setup, spec);
  const url = `${server.url}/`;
  try {
    await wrk(setup, url, { ...shape, seconds: 1 });
    return await measureRunning(setup, { pid: server.pid, url }, shape);
  } finally {
    await server.stop();
  }
}
