/** HTTP load from wrk, one thread on the load CPU. */
import { output } from "../scripts/_process.ts";
import { pinned } from "./_command.ts";
import type { Setup } from "./_ensure.ts";

/** What wrk reports of one run. */
export interface Load {
  requests: number;
  perSecond: number;
  bytesPerSecond: number;
  /** Responses other than 2xx and 3xx. */
  non2xx: number;
  /** Latency percentiles over all responses, in ms. */
  p50: number;
  p99: number;
}

const UNITS: Record<string, number> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  B: 1,
  KB: 1024,
  MB: 2 ** 20,
  GB: 2 ** 30,
};

/** How hard and how long to load a server. */
export interface Shape {
  /** Open connections, each with one request at a time. */
  connections: number;
  /** Whole seconds. */
  seconds: number;
}

/** Loads `url` as `shape` says. */
export async function wrk(
  setup: Setup,
  url: string,
  { connections, seconds }: Shape,
): Promise<Load> {
  const text = await output(
    ...pinned(setup, "load", ["wrk", [
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "--latency",
      url,
    ]]),
  );
  const number = (pattern: RegExp) => {
    const match = text.match(pattern);
    return match ? Number(match[1]) * (UNITS[match[2]] ?? 1) : NaN;
  };
  return {
    requests: number(/(\d+) requests in/),
    perSecond: number(/Requests\/sec:\s+([\d.]+)/),
    bytesPerSecond: number(/Transfer\/sec:\s+([\d.]+)(\w+)/),
    non2xx: number(/Non-2xx or 3xx responses: (\d+)/) || 0,
    p50: number(/50%\s+([\d.]+)(\w+)/),
    p99: number(/99%\s+([\d.]+)(\w+)/),
  };
}
