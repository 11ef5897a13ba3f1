import { test } from "node:test";
import assert from "node:assert/strict";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from "node:fs/promises";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort, repoRoot, runtime, startProcess } from "./_server.ts";

const root = repoRoot();

/** How this runtime starts each kind of example. */
const examples = {
  deno: {
    fetch: (
      port: number,
    ) => [
      "serve",
      "--allow-net",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "examples/deno.ts",
    ],
    hono: (
      port: number,
    ) => [
      "serve",
      "--no-config",
      "--import-map=examples/import_map.json",
      "--allow-net",
      "--allow-env",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "examples/hono.ts",
    ],
  },
  bun: { fetch: () => ["examples/bun.js"], hono: () => ["examples/hono.ts"] },
  node: {
    fetch: () => ["examples/node.mjs"],
    hono: () => ["examples/node_hono.mjs"],
  },
}[runtime];

interface Stats {
  active: number;
  admitted: number;
  rejected: number;
  timedOut: number;
  aborted: number;
}

async function stats(url: string): Promise<Stats> {
  return await (await fetch(`${url}/stats`)).json();
}

/**
 * Checks that a queued Worker is idle and that its observer's events agree
 * with its stats (an offer withdrawn in workerd counts as aborted in both).
 */
async function assertIdleAndReported(url: string) {
  const after = await stats(url) as Stats & {
    queued: number;
    events: { admitted: number; rejected: number; released: number };
  };
  assert.deepEqual([after.active, after.queued], [0, 0]);
  assert.deepEqual(after.events, {
    admitted: after.admitted,
    rejected: after.rejected + after.timedOut + after.aborted,
    released: after.admitted,
  });
}

/** Fires `count` concurrent requests that each work `ms` and returns the statuses. */
async function burst(url: string, count: number, ms: number) {
  const responses = await Promise.all(
    // A wedged server fails the test instead of hanging it.
    Array.from(
      { length: count },
      () =>
        fetch(`${url}/?work=${ms}`, { signal: AbortSignal.timeout(10_000) }),
    ),
  );
  for (const response of responses.filter((r) => r.status === 503)) {
    assert.equal(response.headers.get("retry-after"), "1");
  }
  await Promise.all(responses.map((r) => r.text()));
  return responses.map((r) => r.status).sort();
}

/** Opens a WebSocket, checks that it echoes, and returns it still open. */
async function echo(url: string): Promise<WebSocket> {
  const socket = new WebSocket(`${url.replace("http", "ws")}/ws`);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error("WebSocket failed"));
    setTimeout(() => reject(new Error("WebSocket never opened")), 10_000);
  });
  const reply = new Promise((resolve) =>
    socket.onmessage = (e) => resolve(e.data)
  );
  socket.send("ping");
  assert.equal(await reply, "ping");
  return socket;
}

/** Starts this runtime's example of `kind` and waits for its /stats. */
async function startExample(kind: "fetch" | "hono") {
  const port = await freePort();
  return startProcess(process.execPath, examples[kind](port), port, "/stats");
}

test(`${runtime}: the fetch-handler example keeps its limit`, async () => {
  const server = await startExample("fetch");
  try {
    assert.deepEqual(await burst(server.url, 3, 1500), [200, 200, 503]);
    if (runtime !== "node") {
      // The upgrade passes through untouched and frees its slot at once.
      const socket = await echo(server.url);
      assert.equal((await stats(server.url)).active, 0);
      socket.close();
    }
    const after = await stats(server.url);
    assert.equal(after.active, 0);
    assert.equal(after.rejected, 1);
  } finally {
    await server.stop();
  }
});

test(`${runtime}: the Hono example keeps a limit per route and holds SSE slots`, async () => {
  const server = await startExample("hono");
  try {
    assert.deepEqual(await burst(server.url, 3, 1500), [200, 200, 503]);
    const events = await fetch(`${server.url}/events`);
    const text = events.text();
    const during = await stats(server.url);
    assert.equal(during.active, 1);
    assert.match(
      await text,
      /data: tick 1\n\ndata: tick 2\n\ndata: tick 3\n\n/,
    );
    const deadline = Date.now() + 5000;
    while ((await stats(server.url)).active !== 0) {
      assert.ok(Date.now() < deadline, "the SSE slot was never freed");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await server.stop();
  }
});

/**
 * The workerd binary that the `workerd` npm package brought in through its
 * platform package (Deno's node_modules keeps it under `.deno/`).
 */
async function workerdBinary(): Promise<string> {
  const platform = `${process.platform}-${
    process.arch === "x64" ? "64" : process.arch
  }`;
  const store = join(root, "node_modules", ".deno");
  const folder = (await readdir(store)).find((name) =>
    name.startsWith(`@cloudflare+workerd-${platform}@`)
  );
  assert.ok(folder, `no workerd binary for ${platform} in ${store}`);
  return join(
    store,
    folder,
    "node_modules",
    "@cloudflare",
    `workerd-${platform}`,
    "bin",
    "workerd",
  );
}

/**
 * Starts `worker` (an ES module's source, which imports "floodgate") in
 * workerd with the npm build, and returns its URL and a stop function.
 */
async function startWorker(
  worker: string,
  options: { flags?: string[]; compatibilityDate?: string } = {},
) {
  const build = join(root, "npm");
  const dir = await mkdtemp(join(tmpdir(), "floodgate-workerd-"));
  // The worker imports "floodgate"; the build's own imports are relative.
  const modules = [`(name = "worker.js", esModule = embed "worker.js")`];
  await writeFile(join(dir, "worker.js"), worker);
  await copyFile(join(build, "mod.js"), join(dir, "mod.js"));
  modules.push(`(name = "floodgate", esModule = embed "mod.js")`);
  await mkdir(join(dir, "src"));
  for (const file of await readdir(join(build, "src"))) {
    if (!file.endsWith(".js")) continue;
    await copyFile(join(build, "src", file), join(dir, "src", file));
    modules.push(`(name = "src/${file}", esModule = embed "src/${file}")`);
  }
  const port = await freePort();
  const flags = (options.flags ?? []).map((flag) => `"${flag}"`).join(", ");
  await writeFile(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(",\n    ")}],
  compatibilityDate = "${options.compatibilityDate ?? "2026-11-01"}",
  compatibilityFlags = [${flags}],
);
`,
  );
  try {
    const server = await startProcess(
      await workerdBinary(),
      ["serve", join(dir, "config.capnp")],
      port,
      "/?work=0",
    );
    return {
      url: server.url,
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

test(`${runtime}: the Workers example runs the npm build in workerd`, async () => {
  const worker = await startWorker(
    await readFile(join(root, "examples", "cloudflare_worker.js"), "utf8"),
  );
  try {
    assert.deepEqual(await burst(worker.url, 2, 1000), [200, 503]);
  } finally {
    await worker.stop();
  }
});

/** A Worker whose requests take `?work=` ms, behind a queue. */
function queuedWorker(options: string): string {
  return `import { throttle } from "floodgate";
const fetch = throttle(async (request) => {
  const work = Number(new URL(request.url).searchParams.get("work") ?? 50);
  await new Promise((resolve) => setTimeout(resolve, work));
  return new Response("ok");
}, ${options});
const events = { admitted: 0, rejected: 0, released: 0 };
fetch.observe({
  admitted() { events.admitted++; },
  rejected() { events.rejected++; },
  released() { events.released++; },
});
export default {
  fetch(request, env, ctx) {
    if (new URL(request.url).pathname === "/stats") {
      return Response.json({ ...fetch.stats(), events });
    }
    return fetch(request, env, ctx);
  },
};
`;
}

/** A Worker whose requests run through a Limiter's run(), behind a queue. */
const runWorker = `import { Limiter } from "floodgate";
const limiter = new Limiter({ limit: 1, queue: 10 });
export default {
  async fetch(request) {
    if (new URL(request.url).pathname === "/stats") {
      return Response.json(limiter.stats());
    }
    const work = Number(new URL(request.url).searchParams.get("work") ?? 50);
    return await limiter.run(async () => {
      await new Promise((resolve) => setTimeout(resolve, work));
      return new Response("ok");
    });
  },
};
`;

test(`${runtime}: a Worker whose queued jobs go through Limiter.run() serves them all in workerd`, async () => {
  const worker = await startWorker(runWorker);
  try {
    for (let round = 0; round < 2; round++) {
      assert.deepEqual(await burst(worker.url, 3, 50), [200, 200, 200]);
      const after = await stats(worker.url) as Stats & { queued: number };
      assert.deepEqual([after.active, after.queued], [0, 0]);
    }
  } finally {
    await worker.stop();
  }
});

// Compatibility dates: workerd defines FinalizationRegistry (and WeakRef)
// only from 2025-05-05 on, and before 2024-10-14 it runs the continuation of
// a promise resolved from another request in that request's context (a
// waiter granted by someone else's release would hang) unless
// handle_cross_request_promise_resolution is set.
for (
  const [name, options, flags, compatibilityDate] of [
    ["a queue", "{ limit: 1, queue: 10 }", [], undefined],
    [
      "a queue and queueTimeout",
      "{ limit: 1, queue: 10, queueTimeout: 5000 }",
      [],
      undefined,
    ],
    ["a queue and request.signal", "{ limit: 1, queue: 10 }", [
      "enable_request_signal",
    ], undefined],
    [
      "a queue, on a date before FinalizationRegistry,",
      '{ limit: 1, queue: 10, release: "body" }',
      [],
      "2025-05-04",
    ],
    [
      "a queue, on a date before 2024-10-14 with handle_cross_request_promise_resolution,",
      '{ limit: 1, queue: 10, release: "body" }',
      ["handle_cross_request_promise_resolution"],
      "2024-09-23",
    ],
  ] as const
) {
  test(`${runtime}: a Worker with ${name} serves every queued request in workerd and frees every slot`, async () => {
    const worker = await startWorker(queuedWorker(options), {
      flags: [...flags],
      compatibilityDate,
    });
    try {
      for (let round = 0; round < 2; round++) {
        const statuses = await burst(worker.url, 3, 50);
        assert.deepEqual(statuses, [200, 200, 200], `round ${round + 1}`);
        await assertIdleAndReported(worker.url);
      }
    } finally {
      await worker.stop();
    }
  });
}

test(`${runtime}: a Worker with a queue loses no slot to a queued client that leaves, in workerd`, async () => {
  const worker = await startWorker(queuedWorker("{ limit: 1, queue: 10 }"));
  try {
    const first = fetch(`${worker.url}/?work=600`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const client = new AbortController();
    const leaving = fetch(`${worker.url}/?work=50`, { signal: client.signal })
      .catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    client.abort();
    await leaving;
    assert.equal((await first).status, 200);
    await (await first).text().catch(() => "");
    // Whether workerd saw the client leave or not, the next requests are all
    // served (an offer to a request that died is withdrawn by them), and then
    // nothing is held.
    assert.deepEqual(await burst(worker.url, 3, 50), [200, 200, 200]);
    await assertIdleAndReported(worker.url);
  } finally {
    await worker.stop();
  }
});

/**
 * Sends one request for `path` on a raw socket from a Node process and resets
 * the connection (TCP RST) after `ms`: a client that leaves abruptly, which
 * ends the request's context in workerd.
 */
async function resetAfter(url: string, path: string, ms: number) {
  const { port } = new URL(url);
  const script = `
const net = require("node:net");
const socket = net.connect(${port}, "127.0.0.1", () => {
  socket.write("GET ${path} HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n");
  setTimeout(() => socket.resetAndDestroy(), ${ms});
});
socket.on("error", () => {});
socket.on("close", () => process.exit(0));`;
  const child = spawn("node", ["-e", script], { stdio: "inherit" });
  await new Promise((resolve) => child.on("exit", resolve));
}

test(`${runtime}: a Worker with a queue gets back the slot of a queued client that resets its connection, in workerd`, async () => {
  const worker = await startWorker(queuedWorker("{ limit: 1, queue: 10 }"));
  try {
    const first = fetch(`${worker.url}/?work=1000`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const leaving = resetAfter(worker.url, "/?work=50", 300);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const behind = fetch(`${worker.url}/?work=50`);
    await leaving;
    const statuses = [(await first).status, (await behind).status];
    await Promise.all([first, behind].map(async (r) => (await r).text()));
    assert.deepEqual(statuses, [200, 200]);
    assert.deepEqual(await burst(worker.url, 3, 50), [200, 200, 200]);
    await assertIdleAndReported(worker.url);
  } finally {
    await worker.stop();
  }
});
