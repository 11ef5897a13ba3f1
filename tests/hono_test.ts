import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Hono } from "hono";
import { routePath } from "hono/route";
import { streamSSE } from "hono/streaming";
import { throttle } from "../hono.ts";
import { deferred, scripted, tick } from "./_helpers.ts";
import { runtime, serve, until } from "./_server.ts";

/** A route whose answers wait for the test. */
function heldRoute() {
  const pending: Array<() => void> = [];
  return {
    pending,
    route: async (c: { text(text: string): Response }) => {
      const gate = deferred();
      pending.push(gate.resolve);
      await gate.promise;
      return c.text("served");
    },
    releaseAll() {
      for (const release of pending.splice(0)) release();
    },
  };
}

test("hono throttle() answers 503 with Retry-After once the limit is reached", async () => {
  const held = heldRoute();
  const gate = throttle({ limit: 1, retryAfter: 2 });
  const app = new Hono().use(gate).get("/", held.route);
  const first = app.request("/");
  await until("the route running", () => held.pending.length === 1);
  const second = await app.request("/");
  assert.equal(second.status, 503);
  assert.equal(second.headers.get("retry-after"), "2");
  held.releaseAll();
  assert.equal(await (await first).text(), "served");
  const stats = gate.stats();
  assert.deepEqual([stats.active, stats.admitted, stats.rejected], [0, 1, 1]);
});

test("hono throttle() keeps a limit per route with routePath(c, -1)", async () => {
  const held = heldRoute();
  const keys: string[] = [];
  const gate = throttle({
    limit: 1,
    key: (c) => {
      keys.push(routePath(c, -1));
      return routePath(c, -1);
    },
  });
  const app = new Hono().use(gate)
    .get("/posts/:id", held.route)
    .get("/users/:id", held.route);
  const post = app.request("/posts/1");
  const user = app.request("/users/1");
  await until("both routes running", () => held.pending.length === 2);
  assert.equal((await app.request("/posts/2")).status, 503);
  assert.equal(gate.stats().keys, 2);
  held.releaseAll();
  await Promise.all([post, user]);
  assert.deepEqual(keys, ["/posts/:id", "/users/:id", "/posts/:id"]);
  assert.equal(gate.stats().keys, 0);
});

test("hono throttle() on one route limits that route only", async () => {
  const held = heldRoute();
  const app = new Hono()
    .post("/upload", throttle({ limit: 1 }), held.route)
    .get("/", (c) => c.text("free"));
  const upload = app.request("/upload", { method: "POST" });
  await until("the upload running", () => held.pending.length === 1);
  assert.equal((await app.request("/upload", { method: "POST" })).status, 503);
  assert.equal(await (await app.request("/")).text(), "free");
  held.releaseAll();
  assert.equal((await upload).status, 200);
});

test("hono throttle() hands the Context to key, skip and reject", async () => {
  const held = heldRoute();
  const seen: string[] = [];
  const app = new Hono();
  app.use(throttle({
    limit: 1,
    key: (c) => c.req.header("x-tenant") ?? "none",
    skip: (c) => c.req.path === "/health",
    reject: (c, info) => {
      seen.push(`${c.req.path} ${info.reason} ${info.key}`);
      return c.json({ busy: info.key }, 429);
    },
  }));
  app.get("/health", (c) => c.text("up"));
  app.get("/work", held.route);
  const headers = { "x-tenant": "acme" };
  const first = app.request("/work", { headers });
  await until("the route running", () => held.pending.length === 1);
  const busy = await app.request("/work", { headers });
  assert.equal(busy.status, 429);
  assert.deepEqual(await busy.json(), { busy: "acme" });
  const other = app.request("/work", { headers: { "x-tenant": "other" } });
  await until("the other tenant running", () => held.pending.length === 2);
  assert.equal(await (await app.request("/health", { headers })).text(), "up");
  held.releaseAll();
  assert.equal((await other).status, 200);
  assert.equal((await first).status, 200);
  assert.deepEqual(seen, ["/work full acme"]);
});

test("hono throttle() lets route errors reach onError unchanged and frees the slot", async () => {
  const failure = new Error("route broke");
  const caught: unknown[] = [];
  const gate = throttle({ limit: 1 });
  const app = new Hono()
    .use(gate)
    .get("/", () => {
      throw failure;
    })
    .onError((error, c) => {
      caught.push(error);
      return c.text("handled", 500);
    });
  for (let i = 0; i < 3; i++) {
    assert.equal((await app.request("/")).status, 500);
  }
  assert.deepEqual(caught, [failure, failure, failure]);
  assert.equal(gate.stats().active, 0);
  assert.equal(gate.stats().rejected, 0);
});

test("hono throttle() with release body holds the slot while streamSSE runs", async () => {
  const step = deferred();
  const gate = throttle({ limit: 1, release: "body" });
  const app = new Hono().use(gate).get(
    "/events",
    (c) =>
      streamSSE(c, async (stream) => {
        await stream.writeSSE({ data: "one" });
        await step.promise;
        await stream.writeSSE({ data: "two" });
      }),
  );
  const response = await app.request("/events");
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  const text = response.text();
  await tick();
  assert.equal(gate.stats().active, 1);
  assert.equal((await app.request("/events")).status, 503);
  step.resolve();
  assert.match(await text, /data: one\n\ndata: two\n\n/);
  await until("the slot freed", () => gate.stats().active === 0);
});

test("hono throttle() with release body keeps headers and frees HEAD at once", async () => {
  const gate = throttle({ limit: 1, release: "body" });
  const app = new Hono().use(gate).get("/", (c) => {
    c.header("set-cookie", "a=1", { append: true });
    c.header("set-cookie", "b=2", { append: true });
    c.header("x-route", "yes");
    c.header("content-type", "application/octet-stream");
    return c.body(new ReadableStream({ pull() {} }), 202);
  });
  const head = await app.request("/", { method: "HEAD" });
  assert.equal(gate.stats().active, 0);
  assert.equal(head.status, 202);
  const get = await app.request("/");
  assert.equal(get.status, 202);
  assert.equal(get.headers.get("x-route"), "yes");
  assert.deepEqual(get.headers.getSetCookie(), ["a=1", "b=2"]);
  assert.equal(gate.stats().active, 1);
  await get.body!.cancel();
  assert.equal(gate.stats().active, 0);
});

test("hono throttle().close() rejects later requests", async () => {
  const gate = throttle();
  const app = new Hono().use(gate).get("/", (c) => c.text("ok"));
  assert.equal((await app.request("/")).status, 200);
  await gate.close();
  assert.equal((await app.request("/")).status, 503);
  assert.equal(gate.stats().rejected, 1);
});

test("hono throttle() checks its options when it is created", () => {
  assert.throws(() => throttle({ limit: 0 }), RangeError);
  assert.throws(() => throttle({ key: "path" as never }), TypeError);
});

test(`${runtime} server: a Hono app keeps its limit`, async () => {
  const held = heldRoute();
  const gate = throttle({ limit: 2 });
  const app = new Hono().use(gate).get("/", held.route);
  const server = await serve(app.fetch);
  try {
    const running = [fetch(server.url), fetch(server.url)];
    await until("two routes running", () => held.pending.length === 2);
    const busy = await fetch(server.url);
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "1");
    await busy.text();
    held.releaseAll();
    for (const r of await Promise.all(running)) {
      assert.equal(await r.text(), "served");
    }
  } finally {
    await server.close();
  }
});

test("importing the core module never loads Hono", async () => {
  // Follow every relative import from the entry point; none may name hono.
  const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
  const seen = new Set<string>();
  const queue = [new URL(`../mod${ext}`, import.meta.url).href];
  while (queue.length > 0) {
    const url = queue.pop()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const source = await readFile(new URL(url), "utf8");
    const imports = source.matchAll(
      /^(?:import|export)\b[^;]*?from\s*["']([^"']+)["']/gms,
    );
    for (const [, specifier] of imports) {
      assert.ok(specifier.startsWith("."), `${url} imports ${specifier}`);
      queue.push(new URL(specifier, url).href);
    }
  }
  assert.ok(seen.size >= 5, `followed only ${seen.size} modules`);
});

test("hono throttle() with release body frees the slot when an outer middleware replaces the response", async () => {
  const gate = throttle({ limit: 1, release: "body" });
  const app = new Hono()
    .use(async (c, next) => {
      await next();
      if (c.res.status === 404) {
        c.res = new Response("custom 404", { status: 404 });
      }
    })
    .use(gate)
    .get("/", (c) => c.text("ok"));
  for (let i = 0; i < 3; i++) {
    const response = await app.request("/missing");
    assert.equal(response.status, 404);
    assert.equal(await response.text(), "custom 404");
    assert.equal(gate.stats().active, 0);
  }
  const kept = new Hono()
    .use(async (c, next) => {
      await next();
      c.res = new Response(c.res.body, c.res);
      c.res.headers.set("x-outer", "1");
    })
    .use(throttle({ limit: 1, release: "body" }))
    .get("/", (c) => c.text("streamed through"));
  const response = await kept.request("/");
  assert.equal(response.headers.get("x-outer"), "1");
  assert.equal(await response.text(), "streamed through");
});

test("hono throttle() explains its use when given a handler or called as a fetch handler", async () => {
  assert.throws(
    () => throttle((() => new Response()) as never),
    /middleware.*throttle\(handler/,
  );
  const middleware = throttle();
  await assert.rejects(
    async () =>
      await middleware(
        new Request("http://localhost/") as never,
        (() => {}) as never,
      ),
    /app\.use\(/,
  );
});

test("Hono throttle() with an adaptive limit counts a route that threw as dropped", async () => {
  const { algorithm, samples } = scripted(10);
  const app = new Hono()
    .use(throttle({ limit: algorithm }))
    .get("/fail", () => {
      throw new Error("route");
    })
    .get("/", (c) => c.text("ok"))
    .onError((_error, c) => c.text("handled", 500));
  assert.equal((await app.request("/fail")).status, 500);
  assert.equal((await app.request("/")).status, 200);
  assert.deepEqual(samples.map((s) => s.dropped), [true, false]);
});

test("hono throttle() with release body lets an outer middleware clear c.res and set it again with the same body", async () => {
  const gate = throttle({ limit: 1, release: "body" });
  const app = new Hono()
    .use(async (c, next) => {
      await next();
      const response = c.res;
      c.res = undefined;
      c.res = new Response(response.body, response);
    })
    .use(gate)
    .get("/", (c) => c.text("kept"));
  const response = await app.request("/");
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "kept");
  assert.equal(gate.stats().active, 0);
});

test("hono throttle() mounted twice on a route takes one slot, not a wait for its own", async () => {
  const gate = throttle({ limit: 1, queue: 1 });
  const app = new Hono()
    .use("/api/*", gate)
    .get("/api/x", gate, (c) => c.text("once"));
  const response = await app.request("/api/x");
  assert.equal(await response.text(), "once");
  const stats = gate.stats();
  assert.deepEqual([stats.admitted, stats.active, stats.queued], [1, 0, 0]);
});
