/**
 * floodgate in process against nginx's `limit_conn` in front of the raw Deno
 * server (nginx on the server CPU), at 64 connections. Medians of 3
 * interleaved rounds; CPU per request counts the server and the proxy (nginx
 * runs as one process, without a master, so that its PID has all its CPU).
 */
import {
  freePort,
  type Process,
  startProcess,
} from "../../scripts/_process.ts";
import { median } from "../../scripts/_stats.ts";
import { pinned } from "../_command.ts";
import type { Setup } from "../_ensure.ts";
import {
  type Measured,
  measureRunning,
  startServer,
} from "../_http_measure.ts";
import { interleave, values } from "../_rounds.ts";
import { type Section, table } from "../_section.ts";
import { wrk } from "../_wrk.ts";

const ROUNDS = 3;
const SHAPE = { connections: 64, seconds: 4 };
const SETUPS = ["deno raw", "deno throttled", "nginx limit_conn + deno raw"];

export async function nginx(setup: Setup): Promise<Section> {
  const { samples } = await interleave<Measured>({
    modes: () => SETUPS,
    measure: (name) => measureSetup(setup, name),
    enough: (_, rounds) => rounds >= ROUNDS,
    maxRounds: ROUNDS,
  });
  const result = Object.fromEntries(SETUPS.map((name) => {
    const pick = (key: keyof Measured) =>
      median(values(samples, name, (m) => m[key]));
    return [name, {
      perSecond: pick("perSecond"),
      p50: pick("p50"),
      p99: pick("p99"),
      cpuPerRequestUs: pick("cpuPerRequestUs"),
    }];
  }));
  return {
    key: "nginx",
    json: result,
    markdown: [
      `## floodgate in process against nginx \`limit_conn\` in front (Deno backend, ${SHAPE.connections} connections, medians of ${ROUNDS} interleaved rounds)`,
      "",
      ...table(
        ["setup", "req/s", "p50", "p99", "CPU per request (server + proxy)"],
        Object.entries(result).map(([name, m]) => [
          name,
          m.perSecond.toFixed(0),
          `${m.p50.toFixed(2)} ms`,
          `${m.p99.toFixed(2)} ms`,
          `${m.cpuPerRequestUs.toFixed(1)} µs`,
        ]),
      ),
    ],
  };
}

async function measureSetup(setup: Setup, name: string): Promise<Measured> {
  const server = await startServer(setup, {
    runtime: "deno",
    mode: name === "deno throttled" ? "throttled" : "raw",
  });
  const proxy = name.startsWith("nginx")
    ? await startNginx(setup, server)
    : undefined;
  try {
    const url = `${(proxy ?? server).url}/`;
    await wrk(setup, url, { ...SHAPE, seconds: 1 });
    return await measureRunning(setup, {
      pid: server.pid,
      url,
      cpuOf: proxy ? [server.pid, proxy.pid] : [server.pid],
    }, SHAPE);
  } finally {
    await proxy?.stop();
    await server.stop();
  }
}

/** nginx with `limit_conn server 1000` in front of `backend`. */
async function startNginx(setup: Setup, backend: Process): Promise<Process> {
  const port = await freePort();
  const dir = await Deno.makeTempDir({ prefix: "floodgate-nginx-" });
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    // One process, so that its PID's CPU time is all of nginx's.
    `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log stderr error;
events { worker_connections 4096; }
http {
  access_log off;
  limit_conn_zone $server_name zone=server:1m;
  upstream backend { server ${new URL(backend.url).host}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    limit_conn server 1000;
    limit_conn_status 503;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const [command, args] = pinned(setup, "server", [
    "nginx",
    ["-p", dir, "-c", `${dir}/nginx.conf`],
  ]);
  const proxy = await startProcess(command, args, port);
  return {
    ...proxy,
    stop: async () => {
      await proxy.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
