/**
 * An open-loop load generator for the fairness benchmark: one heavy client
 * at 2,000 req/s and nine light ones at 40 req/s each (3x what a limit of 8
 * serves with 10 ms handlers), each request naming its client in the
 * `x-client` header, Poisson arrivals, whatever the answers. Warms up for
 * the first second, then measures. Prints one JSON line: per client, the
 * requests sent, answered 200, answered 503, failed, and the latency of
 * the 200s (p50, p99, ms).
 *
 * Usage: deno run -A bench/fairness_load.ts <url> [seconds]
 */
import { percentile } from "../scripts/_stats.ts";
import { random } from "../scripts/_simulator.ts";

const url = Deno.args[0];
const seconds = Number(Deno.args[1] ?? 10);
const WARM_UP = 1000;

const clients = [
  { name: "heavy", rate: 2000 },
  ...Array.from({ length: 9 }, (_, i) => ({ name: `light${i + 1}`, rate: 40 })),
];

interface Tally {
  sent: number;
  ok: number;
  rejected: number;
  failed: number;
  latencies: number[];
}

const tallies: Record<string, Tally> = Object.fromEntries(
  clients.map((c) => [c.name, {
    sent: 0,
    ok: 0,
    rejected: 0,
    failed: 0,
    latencies: [],
  }]),
);
const pending = new Set<Promise<void>>();
const rand = random(7);
const gap = (rate: number) => -Math.log(1 - rand()) * 1000 / rate;
const target = new URL(url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** More connections than this means the client, not the server, is stuck. */
const MOST_CONNECTIONS = 1024;

/**
 * One keep-alive HTTP/1.1 connection, one request at a time: raw bytes, so
 * that the generator costs far less CPU than fetch() and keeps its pace.
 */
class Connection {
  readonly #conn: Deno.Conn;
  readonly #buffer = new Uint8Array(64 * 1024);
  #text = "";

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Sends a GET naming `client`; resolves with the status. */
  async get(client: string): Promise<number> {
    await this.#conn.write(encoder.encode(
      `GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nx-client: ${client}\r\n\r\n`,
    ));
    while (true) {
      const status = this.#take();
      if (status !== undefined) return status;
      const n = await this.#conn.read(this.#buffer);
      if (n === null) throw new Error("connection closed");
      this.#text += decoder.decode(this.#buffer.subarray(0, n));
    }
  }

  /** One whole response off the front of what was read, if there is one. */
  #take(): number | undefined {
    const headEnd = this.#text.indexOf("\r\n\r\n");
    if (headEnd === -1) return undefined;
    const head = this.#text.slice(0, headEnd).toLowerCase();
    const status = Number(head.slice(9, 12));
    const length = /content-length: *(\d+)/.exec(head);
    let end: number;
    if (length) {
      end = headEnd + 4 + Number(length[1]);
      if (this.#text.length < end) return undefined;
    } else if (head.includes("transfer-encoding: chunked")) {
      const last = this.#text.indexOf("0\r\n\r\n", headEnd + 4);
      if (last === -1) return undefined;
      end = last + 5;
    } else end = headEnd + 4;
    this.#text = this.#text.slice(end);
    return status;
  }

  close(): void {
    this.#conn.close();
  }
}

const idle: Connection[] = [];
let connections = 0;

async function send(
  name: string,
  due: number,
  counted: boolean,
): Promise<void> {
  const tally = tallies[name];
  if (counted) tally.sent++;
  let connection = idle.pop();
  try {
    if (connection === undefined) {
      if (connections >= MOST_CONNECTIONS) throw new Error("too many");
      connections++;
      connection = new Connection(
        await Deno.connect({
          hostname: target.hostname,
          port: Number(target.port),
        }),
      );
    }
    const status = await connection.get(name);
    idle.push(connection);
    if (!counted) return;
    if (status === 200) {
      tally.ok++;
      // From when it was due: a late send counts against the latency.
      tally.latencies.push(performance.now() - due);
    } else if (status === 503) tally.rejected++;
    else tally.failed++;
  } catch {
    if (connection !== undefined) {
      connections--;
      connection.close();
    }
    if (counted) tally.failed++;
  }
}

const start = performance.now();
const end = start + WARM_UP + seconds * 1000;
const next = clients.map((c) => start + gap(c.rate));
while (true) {
  const now = performance.now();
  if (now >= end) break;
  clients.forEach((client, i) => {
    while (next[i] <= now) {
      const counted = next[i] >= start + WARM_UP;
      const request = send(client.name, next[i], counted);
      pending.add(request);
      request.finally(() => pending.delete(request));
      next[i] += gap(client.rate);
    }
  });
  await new Promise((resolve) => setTimeout(resolve, 1));
}
await Promise.all(pending);
for (const connection of idle) connection.close();

console.log(JSON.stringify(
  Object.fromEntries(
    Object.entries(tallies).map(([name, t]) => [name, {
      sent: t.sent,
      ok: t.ok,
      rejected: t.rejected,
      failed: t.failed,
      p50: percentile(t.latencies, 50),
      p99: percentile(t.latencies, 99),
    }]),
  ),
));
