/**
 * One round of the HTTP overhead suite: a fresh server per mode, measured
 * in turn in 1 s slices, in an order and its reverse (raw, throttled, ...,
 * throttled, raw), so that a drift of the machine within the round falls on
 * every mode alike; then pairs of servers loaded at the same time, which
 * share the server CPU and every disturbance of it.
 */
import type { Process } from "../scripts/_process.ts";
import { median } from "../scripts/_stats.ts";
import type { Runtime, Setup } from "./_ensure.ts";
import { type Measured, measureRunning, startServer } from "./_http_measure.ts";
import { wrk } from "./_wrk.ts";

/** Options for {@linkcode measureRound}. */
export interface RoundOptions {
  runtime: Runtime;
  modes: readonly string[];
  connections: number;
  /** 1 s slices per mode. */
  slices: number;
  /** Start from the last mode. */
  backward: boolean;
  /**
   * Modes also measured at the same time as `base` (2 s each pair); their
   * ratios to it are the round's `sameTime`.
   */
  sameTime?: { base: string; modes: readonly string[] };
}

/** What a round measured. */
export interface Round {
  measured: Record<string, Measured>;
  /** Ratios to the same-time base: requests per second, CPU per request. */
  sameTime: Record<string, { throughput: number; cpu: number }>;
}

export async function measureRound(
  setup: Setup,
  options: RoundOptions,
): Promise<Round> {
  const { runtime, modes, connections } = options;
  const servers = new Map<string, Process>();
  const target = (mode: string) => {
    const { pid, url } = servers.get(mode)!;
    return { pid, url: `${url}/` };
  };
  try {
    for (const mode of modes) {
      servers.set(mode, await startServer(setup, { runtime, mode }));
    }
    // All at once: 2 s of load shared by the servers is thousands of
    // requests each, enough for the JIT.
    await Promise.all(
      modes.map((mode) =>
        wrk(setup, target(mode).url, { connections, seconds: 2 })
      ),
    );
    const there = options.backward ? [...modes].reverse() : [...modes];
    const order: string[] = [];
    for (let i = 0; i < options.slices; i++) {
      order.push(...(i % 2 === 0 ? there : [...there].reverse()));
    }
    const slices: Record<string, Measured[]> = {};
    for (const mode of order) {
      (slices[mode] ??= []).push(
        await measureRunning(setup, target(mode), { connections, seconds: 1 }),
      );
    }
    const sameTime: Round["sameTime"] = {};
    for (const mode of options.sameTime?.modes ?? []) {
      const base = options.sameTime!.base;
      const [a, b] = await Promise.all(
        [base, mode].map((m) =>
          measureRunning(setup, target(m), { connections, seconds: 2 })
        ),
      );
      sameTime[mode] = {
        throughput: b.perSecond / a.perSecond,
        cpu: b.cpuPerRequestUs / a.cpuPerRequestUs,
      };
    }
    return {
      measured: Object.fromEntries(
        modes.map((mode) => [mode, combine(slices[mode])]),
      ),
      sameTime,
    };
  } finally {
    await Promise.all([...servers.values()].map((server) => server.stop()));
  }
}

/** The slices of one mode as one measurement: totals over their time. */
function combine(slices: Measured[]): Measured {
  const sum = (pick: (m: Measured) => number) =>
    slices.reduce((total, m) => total + pick(m), 0);
  const seconds = (m: Measured) => m.requests / m.perSecond;
  const requests = sum((m) => m.requests);
  const time = sum(seconds);
  return {
    requests,
    perSecond: requests / time,
    bytesPerSecond: sum((m) => m.bytesPerSecond * seconds(m)) / time,
    non2xx: sum((m) => m.non2xx),
    p50: median(slices.map((m) => m.p50)),
    p99: median(slices.map((m) => m.p99)),
    cpuPerRequestUs: sum((m) => m.cpuPerRequestUs * m.requests) / requests,
    peakRssMiB: Math.max(...slices.map((m) => m.peakRssMiB)),
    cpuShare: sum((m) => m.cpuShare * seconds(m)) / time,
  };
}
