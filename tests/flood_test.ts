/**
 * A flood: 10,000 connections opened to one server and then 10,000 requests
 * sent at once, against `limit: 64, queue: 0`. Every connection must get a
 * 200 or a 503 with Retry-After; none may hang or be reset; the server must
 * stay up with bounded memory. The requests are written by hand over TCP so
 * that the client itself neither pools nor limits connections.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import process from "node:process";
import { freePort, runtime, startProcess } from "./_server.ts";

const CONNECTIONS = 10_000;
const MiB = 2 ** 20;

const serverArgs = (file: string) =>
  runtime === "deno" ? ["run", "--allow-net", "--allow-env", file] : [file];

interface Answer {
  status: number;
  retryAfter: string | undefined;
}

/** Reads one response from a socket that the server closes after it. */
function answerOf(socket: Socket): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let text = "";
    socket.setEncoding("latin1");
    socket.on("data", (chunk) => text += chunk);
    socket.once("error", reject);
    socket.once("close", () => {
      const status = Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
      if (!status) {
        return reject(
          new Error(`no response: ${JSON.stringify(text.slice(0, 80))}`),
        );
      }
      resolve({
        status,
        retryAfter: text.match(/\r\nretry-after: *(\d+)/i)?.[1],
      });
    });
  });
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

test(`${runtime}: a flood of 10,000 concurrent connections gets only 200s and 503s with Retry-After`, async () => {
  const file = new URL(
    `./_flood_server${import.meta.url.endsWith(".ts") ? ".ts" : ".js"}`,
    import.meta.url,
  ).pathname;
  const port = await freePort();
  const server = await startProcess(
    process.execPath,
    serverArgs(file),
    port,
    "/stats",
  );
  try {
    const sockets: Socket[] = [];
    // Connect in batches so that the listen backlog never overflows.
    for (let i = 0; i < CONNECTIONS; i += 500) {
      const batch = Math.min(500, CONNECTIONS - i);
      sockets.push(
        ...await Promise.all(Array.from({ length: batch }, () => open(port))),
      );
    }
    const started = Date.now();
    const answers = sockets.map((socket) => {
      const answer = answerOf(socket);
      socket.write(
        "GET / HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n",
      );
      return answer;
    });
    const settled = await Promise.allSettled(answers);
    const seconds = (Date.now() - started) / 1000;
    const failures = settled.filter((s) => s.status === "rejected");
    const counts = new Map<number, number>();
    let withoutRetryAfter = 0;
    for (const s of settled) {
      if (s.status !== "fulfilled") continue;
      counts.set(s.value.status, (counts.get(s.value.status) ?? 0) + 1);
      const retryAfter = Number(s.value.retryAfter);
      if (s.value.status === 503 && !(retryAfter >= 1 && retryAfter <= 60)) {
        withoutRetryAfter++;
      }
    }
    const stats = await (await fetch(`${server.url}/stats`)).json();
    console.log(
      `reliability: ${runtime} flood: ${CONNECTIONS} connections in ${
        seconds.toFixed(1)
      } s: ${
        [...counts].sort().map(([s, n]) => `${s}: ${n}`).join(", ")
      }, ${failures.length} failed, server peak RSS ${
        (stats.peakRss / MiB).toFixed(0)
      } MiB, admitted ${stats.admitted}, rejected ${stats.rejected}`,
    );
    assert.deepEqual(
      failures.map((f) => String((f as PromiseRejectedResult).reason)).slice(
        0,
        5,
      ),
      [],
    );
    assert.deepEqual([...counts.keys()].sort(), [200, 503]);
    assert.equal((counts.get(200) ?? 0) + (counts.get(503) ?? 0), CONNECTIONS);
    assert.equal(withoutRetryAfter, 0);
    assert.equal(stats.active, 0);
    assert.equal(stats.admitted, counts.get(200));
    assert.ok(stats.peakRss < 1024 * MiB, `peak RSS ${stats.peakRss}`);
  } finally {
    await server.stop();
  }
});
