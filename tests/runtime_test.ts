import { test } from "node:test";
import assert from "node:assert/strict";
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  rm,
  writeFile,
} from "node:fs/promises";
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
}

async function stats(url: string): Promise<Stats> {
  return await (await fetch(`${url}/stats`)).json();
}

/** Fires `count` concurrent requests that each work `ms` and returns the statuses. */
async function burst(url: string, count: number, ms: number) {
  const responses = await Promise.all(
    Array.from({ length: count }, () => fetch(`${url}/?work=${ms}`)),
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

test(`${runtime}: the Workers example runs the npm build in workerd`, async () => {
  const build = join(root, "npm");
  const dir = await mkdtemp(join(tmpdir(), "floodgate-workerd-"));
  try {
    // The worker imports "floodgate"; the build's own imports are relative.
    const modules = [`(name = "worker.js", esModule = embed "worker.js")`];
    await copyFile(
      join(root, "examples", "cloudflare_worker.js"),
      join(dir, "worker.js"),
    );
    await copyFile(join(build, "mod.js"), join(dir, "mod.js"));
    modules.push(`(name = "floodgate", esModule = embed "mod.js")`);
    await mkdir(join(dir, "src"));
    for (const file of await readdir(join(build, "src"))) {
      if (!file.endsWith(".js")) continue;
      await copyFile(join(build, "src", file), join(dir, "src", file));
      modules.push(`(name = "src/${file}", esModule = embed "src/${file}")`);
    }
    const port = await freePort();
    await writeFile(
      join(dir, "config.capnp"),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [${modules.join(",\n    ")}],
  compatibilityDate = "2026-11-01",
);
`,
    );
    const server = await startProcess(
      await workerdBinary(),
      ["serve", join(dir, "config.capnp")],
      port,
      "/?work=0",
    );
    try {
      assert.deepEqual(await burst(server.url, 2, 1000), [200, 503]);
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
