/**
 * One limit for a fleet (RedisLimiter) against redis-semaphore, on a
 * redis-server of the suite's own (persistence off), processes of Deno:
 *
 * 1. hand-off latency across processes: two processes alternate on a limit
 *    of 1; each grant is timed from the release in the other process;
 * 2. uncontended acquire + release from 4 processes (3 interleaved rounds of
 *    3 s, the median), and the Redis commands each acquisition costs (from
 *    INFO commandstats, commands run inside scripts included);
 * 3. exactness under contention: 100,000 acquisitions from 4 processes of
 *    16 acquirers each on a limit of 8, an independent counter checked inside;
 * 4. two throttled HTTP servers sharing a fleet limit, on Deno, Bun and
 *    Node, under an open-loop overload of 3x their ceiling and under a
 *    flood, each grant timed from the release it follows; and the same pair
 *    with the limit split in-process, without Redis.
 *
 * `redisHttp` (`--only redis_http`) runs the fourth alone, three times.
 */
import { spawn } from "node:child_process";
import { freePort, repoRoot } from "../../scripts/_process.ts";
import { command, startRedis } from "../../tests/_redis.ts";
import { type Command, programCommand } from "../_command.ts";
import {
  ensureBinary,
  type Runtime,
  RUNTIMES,
  type Setup,
} from "../_ensure.ts";
import { type Section, table } from "../_section.ts";

/** Runs a program (on Deno, unless `program` says how); its last line. */
function run(
  program: string | Command,
  env: Record<string, string>,
  onLine?: (line: string) => void,
): Promise<string> {
  const [command, args] = typeof program === "string"
    ? [Deno.execPath(), ["run", "-A", program]]
    : program;
  const child = spawn(command, args, {
    cwd: repoRoot(),
    env: { ...Deno.env.toObject(), ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
    for (const line of chunk.split("\n")) if (line) onLine?.(line);
  });
  return new Promise((resolve, reject) =>
    child.once(
      "exit",
      (code) =>
        code === 0 ? resolve(out.trim().split("\n").pop()!) : reject(
          new Error(`${[command, ...args].join(" ")} exited with ${code}`),
        ),
    )
  );
}

const FLEET = "bench/redis_fleet.ts";
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const ms = (value: number) => value.toFixed(2);
/** Open-loop overload of the HTTP pair: 3x its ceiling of 400 req/s. */
const OVERLOAD = 1200;
const share = (run: { goodput: number; ceiling: number }) =>
  `${run.goodput.toFixed(0)} req/s (${
    (run.goodput / run.ceiling * 100).toFixed(0)
  }%)`;

async function commandCalls(port: number): Promise<Record<string, number>> {
  const info = await command(port, "INFO", "commandstats");
  const calls: Record<string, number> = {};
  for (const [, name, count] of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g)) {
    calls[name] = Number(count);
  }
  return calls;
}

async function handoff(port: number, lib: string) {
  const env = {
    REDIS_PORT: String(port),
    NAME: `handoff-${lib}`,
    LIB: lib,
    MODE: "handoff",
    ROUNDS: "150",
    // Held longer than the pause, paused longer than redis-semaphore's 10 ms
    // between polls: every release finds the other process waiting, and a
    // polling waiter gets its chance before the releaser comes back.
    HOLD_MS: "20",
    PAUSE_MS: "15",
  };
  const results = await Promise.all([run(FLEET, env), run(FLEET, env)]);
  const [a, b] = results.map((line) => JSON.parse(line));
  // A grant counts when its process started waiting before the other
  // process released: the time from that release to the grant.
  const releases = [
    ...a.releases.map((t: number) => ({ t, who: 0 })),
    ...b.releases.map((t: number) => ({ t, who: 1 })),
  ].sort((x, y) => x.t - y.t);
  const latencies: number[] = [];
  for (const [who, run] of [a, b].entries()) {
    run.grants.forEach((granted: number, i: number) => {
      const before = releases.filter((r) => r.t < granted).pop();
      if (before === undefined || before.who === who) return;
      if (run.starts[i] < before.t) latencies.push(granted - before.t);
    });
  }
  latencies.sort((x, y) => x - y);
  return {
    samples: latencies.length,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
  };
}

type Lib = "floodgate" | "semaphore";
type Rate = Awaited<ReturnType<typeof throughput>>;

async function throughput(port: number, lib: string) {
  const before = await commandCalls(port);
  const env = {
    REDIS_PORT: String(port),
    NAME: `throughput-${lib}`,
    LIB: lib,
    LIMIT: "1000000",
    MODE: "throughput",
    CONCURRENCY: "8",
    SECONDS: "3",
  };
  const results = await Promise.all(
    Array.from({ length: 4 }, () => run(FLEET, env)),
  );
  const after = await commandCalls(port);
  const count = results.reduce((sum, line) => sum + JSON.parse(line).count, 0);
  const delta = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
  const all = Object.keys(after).reduce((sum, name) => sum + delta(name), 0) -
    2; // the two INFO commands
  return {
    perSecond: Math.round(count / 3),
    commandsPerAcquisition: all / count,
    scriptCallsPerAcquisition: (delta("evalsha") + delta("eval")) / count,
  };
}

async function exactness(port: number) {
  const env = {
    REDIS_PORT: String(port),
    NAME: "exact",
    LIMIT: "8",
    MODE: "exact",
    COUNT: "25000",
    CONCURRENCY: "16",
    CLIENT: "ioredis",
  };
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 4 }, () => run("tests/_redis_worker.ts", env)),
  );
  const parsed = results.map((line) => JSON.parse(line.slice(5)));
  return {
    acquisitions: parsed.reduce((sum, r) => sum + r.acquired, 0),
    violations: parsed.reduce((sum, r) => sum + r.violations, 0),
    most: Math.max(...parsed.map((r) => r.most)),
    seconds: (Date.now() - started) / 1000,
  };
}

/**
 * The hand-off in the fleet's pair: each grant timed from the release it
 * follows (grants and releases of both servers in one timeline, paired in
 * order, since a freed permit goes to the oldest waiter), the holds, and
 * the round trips of the servers' PINGs.
 */
function handoffs(
  stats: Array<
    { grants: number[]; releases: number[]; holds: number[]; pings: number[] }
  >,
  from: number,
  until: number,
) {
  const within = (t: number) => t >= from && t < until;
  const sorted = (key: "grants" | "releases") =>
    stats.flatMap((s) => s[key]).filter(within).sort((x, y) => x - y);
  const [grants, releases] = [sorted("grants"), sorted("releases")];
  const gaps: number[] = [];
  let next = 0;
  for (const granted of grants) {
    if (next >= releases.length || releases[next] > granted) continue;
    gaps.push(granted - releases[next++]);
  }
  gaps.sort((x, y) => x - y);
  const holds = stats.flatMap((s) => s.holds);
  const pings = stats.flatMap((s) => s.pings).sort((x, y) => x - y);
  const mean = (values: number[]) =>
    values.reduce((sum, value) => sum + value, 0) / values.length;
  return {
    gapMean: mean(gaps),
    gapP50: percentile(gaps, 0.5),
    gapP90: percentile(gaps, 0.9),
    holdMean: mean(holds),
    pingMean: mean(pings),
    pingP50: percentile(pings, 0.5),
  };
}

/**
 * Loads the pair: with `rate`, requests arrive open-loop at `rate` per
 * second (Poisson, alternating between the servers, whatever the answers);
 * without it, 32 connections send back to back (a flood: every 503 comes
 * back at once and is sent again).
 */
async function overload(
  setup: Setup,
  port: number,
  { runtime = "deno", split = false, times = false, rate }: {
    runtime?: Runtime;
    split?: boolean;
    times?: boolean;
    rate?: number;
  } = {},
) {
  const limit = 8;
  const hold = 20;
  const seconds = 6;
  const connections = 32;
  const ports = [await freePort(), await freePort()];
  let listening = 0;
  const ready = Promise.withResolvers<void>();
  const servers = ports.map((serverPort) =>
    run(programCommand(setup, runtime, "redis_fleet"), {
      REDIS_PORT: String(port),
      NAME: "overload",
      LIMIT: String(limit),
      MODE: "server",
      QUEUE: "16",
      LOCAL_LIMIT: "12",
      PORT: String(serverPort),
      HOLD_MS: String(hold),
      SECONDS: String(seconds + 3),
      SPLIT: split ? "1" : "0",
      TIMES: times ? "1" : "0",
    }, (line) => {
      if (line === "listening" && ++listening === 2) ready.resolve();
    })
  );
  await ready.promise;
  const counts = { ok: 0, rejected: 0, retryAfter: 0, other: 0 };
  const measureFrom = Date.now() + 1000;
  const until = measureFrom + seconds * 1000;
  /** Sends one request; counts its answer if it came in the window. */
  const send = async (i: number) => {
    const response = await fetch(`http://127.0.0.1:${ports[i % 2]}/`);
    await response.arrayBuffer();
    const now = Date.now();
    if (now < measureFrom || now >= until) return;
    if (response.status === 200) counts.ok++;
    else if (response.status === 503) {
      counts.rejected++;
      if (response.headers.get("retry-after") !== null) counts.retryAfter++;
    } else counts.other++;
  };
  if (rate === undefined) {
    await Promise.all(Array.from({ length: connections }, async (_, i) => {
      while (Date.now() < until) await send(i);
    }));
  } else {
    const sent: Promise<void>[] = [];
    const started = performance.now();
    let next = 0;
    for (let i = 0; Date.now() < until; i++) {
      next += -Math.log(1 - Math.random()) * 1000 / rate;
      const due = started + next - performance.now();
      if (due > 1) await new Promise((resolve) => setTimeout(resolve, due));
      sent.push(send(i));
    }
    await Promise.all(sent);
  }
  const stats = (await Promise.all(servers)).map((line) => JSON.parse(line));
  const ceiling = limit * 1000 / hold;
  return {
    ceiling,
    load: rate === undefined
      ? `${connections} connections back to back`
      : `${rate} req/s open-loop`,
    goodput: counts.ok / seconds,
    ...counts,
    fleetRejected: stats.reduce((sum, s) => sum + s.fleet.rejected, 0),
    ...(times ? { handoff: handoffs(stats, measureFrom, until) } : {}),
  };
}

/** The fleet suite: see the module's documentation. */
export async function redis(setup: Setup): Promise<Section> {
  await ensureBinary("redis-server", "redis-server");
  const server = await startRedis();
  try {
    const handoffs = {
      floodgate: await handoff(server.port, "floodgate"),
      semaphore: await handoff(server.port, "semaphore"),
    };
    // Interleaved rounds, order reversed each round, the median kept: the
    // machine's load moves between runs.
    const rounds: Record<Lib, Rate[]> = { floodgate: [], semaphore: [] };
    for (let round = 0; round < 3; round++) {
      const order: Lib[] = round % 2 === 0
        ? ["floodgate", "semaphore"]
        : ["semaphore", "floodgate"];
      for (const lib of order) {
        rounds[lib].push(await throughput(server.port, lib));
      }
    }
    const median = (lib: Lib) =>
      rounds[lib].sort((x, y) => x.perSecond - y.perSecond)[1];
    const rates = {
      floodgate: median("floodgate"),
      semaphore: median("semaphore"),
    };
    const exact = await exactness(server.port);
    const http = await pair(setup, server.port, 1);
    const json = { handoffs, rates, exact, http: http.json };
    const markdown = [
      "## One limit for a fleet (RedisLimiter vs redis-semaphore)",
      "",
      "Processes of Deno on one redis-server (loopback, persistence off); clients on ioredis. Command: `deno run -A bench/run.ts --only redis`.",
      "",
      ...table(
        [
          "",
          "hand-off samples",
          "hand-off p50 (ms)",
          "hand-off p99 (ms)",
          "uncontended acquire+release /s (4 processes, median of 3)",
          "Redis commands per acquisition",
          "script calls per acquisition",
        ],
        (["floodgate", "semaphore"] as const).map((lib) => [
          lib === "floodgate" ? "RedisLimiter" : "redis-semaphore 5.8",
          String(handoffs[lib].samples),
          ms(handoffs[lib].p50),
          ms(handoffs[lib].p99),
          String(rates[lib].perSecond),
          rates[lib].commandsPerAcquisition.toFixed(2),
          rates[lib].scriptCallsPerAcquisition.toFixed(2),
        ]),
      ),
      "",
      `Hand-off p50 ratio (redis-semaphore / RedisLimiter): ${
        (handoffs.semaphore.p50 / handoffs.floodgate.p50).toFixed(1)
      }x; throughput ratio (RedisLimiter / redis-semaphore): ${
        (rates.floodgate.perSecond / rates.semaphore.perSecond).toFixed(2)
      }x.`,
      "",
      `Exactness: ${exact.acquisitions} acquisitions (4 processes x 16 acquirers, limit 8), ${exact.violations} violations, at most ${exact.most} holders seen at once, ${
        exact.seconds.toFixed(1)
      } s.`,
      "",
      ...http.markdown,
    ];
    return { key: "redis", json, markdown };
  } finally {
    await server.stop();
  }
}

type Pair = Awaited<ReturnType<typeof overload>>;

/**
 * The HTTP pair on each runtime under each load: `rounds` runs of the fleet
 * (each grant timed from the release it follows), then one split
 * in-process, the reference without Redis.
 */
async function pair(setup: Setup, port: number, rounds: number) {
  const json = [];
  const rows = [];
  for (const runtime of RUNTIMES) {
    for (const rate of [OVERLOAD, undefined]) {
      const runs: Pair[] = [];
      for (let i = 0; i < rounds; i++) {
        runs.push(await overload(setup, port, { runtime, times: true, rate }));
      }
      const split = await overload(setup, port, { runtime, split: true, rate });
      json.push({ runtime, runs, split });
      const each = (f: (run: Pair) => string) => runs.map(f).join(", ");
      rows.push([
        runtime,
        runs[0].load,
        each((run) => share(run)),
        each((run) => ms(run.handoff!.gapMean)),
        each((run) => ms(run.handoff!.holdMean)),
        each((run) => ms(run.handoff!.pingMean)),
        each((run) =>
          `${run.retryAfter}/${run.rejected} (${run.fleetRejected} fleet)`
        ),
        share(split),
      ]);
    }
  }
  return {
    json,
    markdown: [
      `Two throttled servers, one fleet limit of 8 (fleet queue 16) behind a local limit of 12 each, handler 20 ms of waiting: a ceiling of ${
        json[0].split.ceiling
      } req/s. The load comes from one process with fetch: ${OVERLOAD} req/s open-loop (3x the ceiling, Poisson arrivals, alternating between the servers) or 32 connections sending back to back (every 503 comes back at once and is sent again). Goodput per run as a share of the ceiling; the time from each release to the next grant (the two servers' events in one timeline), the mean hold from grant to release, and the round trip of a PING each server sends every 10 ms, means in ms; the 503s with Retry-After over all 503s (those from the fleet limit). Split in-process: the same servers with the limit and queue halved in each, no Redis.`,
      "",
      ...table(
        [
          "servers",
          "load",
          "goodput",
          "release to grant (ms)",
          "hold (ms)",
          "PING (ms)",
          "503 with Retry-After",
          "split in-process",
        ],
        rows,
      ),
    ],
  };
}

/** The HTTP pair alone: three runs of each runtime under each load. */
export async function redisHttp(setup: Setup): Promise<Section> {
  await ensureBinary("redis-server", "redis-server");
  const server = await startRedis();
  try {
    const { json, markdown } = await pair(setup, server.port, 3);
    return {
      key: "redis_http",
      json,
      markdown: ["## Two throttled servers, one fleet limit", "", ...markdown],
    };
  } finally {
    await server.stop();
  }
}
