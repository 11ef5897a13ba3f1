import { test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { type AsyncLimiter, Limiter, RejectedError, throttle } from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";
import { deferred } from "./_helpers.ts";

/** An async limiter backed by a local one, that can be made unreachable. */
function remoteOf(local: Limiter) {
  const state = { down: false, acquired: 0 };
  const limiter: AsyncLimiter = {
    async acquire(options) {
      await Promise.resolve();
      if (state.down) throw new RejectedError("unavailable");
      state.acquired++;
      return local.acquire(options);
    },
    stats: () => local.stats(),
    close: () => local.close(),
  };
  return { limiter, state };
}

const request = () => new Request("http://localhost/");

test("throttle() awaits an async limiter and releases when the handler returns", async () => {
  const local = new Limiter({ limit: 1, queue: 1 });
  const { limiter, state } = remoteOf(local);
  const held = deferred();
  const fetch = throttle(async () => {
    await held.promise;
    return new Response("ok");
  }, { limiter });
  const first = fetch(request());
  const second = fetch(request());
  const third = await fetch(request());
  assert.equal(third.status, 503);
  assert.equal(third.headers.get("retry-after"), "1");
  assert.equal(fetch.stats().active, 1);
  assert.equal(fetch.stats().queued, 1);
  held.resolve();
  assert.equal((await first).status, 200);
  assert.equal(await (await second).text(), "ok");
  assert.equal(state.acquired, 3);
  assert.deepEqual(
    { active: local.active, admitted: local.stats().admitted, keys: 0 },
    { active: 0, admitted: 2, keys: fetch.stats().keys },
  );
});

test("throttle() answers an unreachable async limiter with 503, or the custom reject", async () => {
  const { limiter, state } = remoteOf(new Limiter({ limit: 1 }));
  state.down = true;
  const plain = throttle(() => new Response("ok"), { limiter });
  assert.equal((await plain(request())).status, 503);
  const reasons: string[] = [];
  const custom = throttle(() => new Response("ok"), {
    limiter,
    reject: (_request, info) => {
      reasons.push(info.reason);
      return new Response("down", { status: 502 });
    },
  });
  assert.equal((await custom(request())).status, 502);
  assert.deepEqual(reasons, ["unavailable"]);
});

test("throttle() on an async limiter frees the slot when the handler throws, and skip bypasses it", async () => {
  const local = new Limiter({ limit: 1 });
  const { limiter, state } = remoteOf(local);
  const fetch = throttle(() => {
    throw new Error("boom");
  }, { limiter, skip: (r) => r.url.endsWith("/health") });
  await assert.rejects(Promise.resolve(fetch(request())), /boom/);
  assert.equal(local.active, 0);
  await assert.rejects(
    Promise.resolve(fetch(new Request("http://localhost/health"))),
    /boom/,
  );
  assert.equal(state.acquired, 1);
});

test("throttle() on an async limiter holds the slot until the body is read with release: body", async () => {
  const local = new Limiter({ limit: 1 });
  const { limiter } = remoteOf(local);
  const fetch = throttle(() => new Response("streamed"), {
    limiter,
    release: "body",
  });
  const response = await fetch(request());
  assert.equal(local.active, 1);
  assert.equal(await response.text(), "streamed");
  assert.equal(local.active, 0);
});

test("throttle() on an async limiter answers 499 when the client leaves while queued, and close() closes it", async () => {
  const local = new Limiter({ limit: 1, queue: 1 });
  const { limiter } = remoteOf(local);
  const held = deferred();
  const fetch = throttle(async () => {
    await held.promise;
    return new Response("ok");
  }, { limiter });
  const first = fetch(request());
  const controller = new AbortController();
  const waiting = fetch(
    new Request("http://localhost/", { signal: controller.signal }),
  );
  await new Promise((resolve) => setTimeout(resolve, 10));
  controller.abort();
  assert.equal((await waiting).status, 499);
  const closed = fetch.close();
  held.resolve();
  await first;
  await closed;
  assert.equal((await fetch(request())).status, 503);
  assert.equal(local.stats().rejected, 1);
});

test("the Hono middleware accepts an async limiter", async () => {
  const { limiter, state } = remoteOf(new Limiter({ limit: 1 }));
  const app = new Hono();
  app.use(honoThrottle({ limiter }));
  app.get("/", (c) => c.text("hono"));
  const response = await app.fetch(request());
  assert.equal(await response.text(), "hono");
  assert.equal(state.acquired, 1);
  state.down = true;
  assert.equal((await app.fetch(request())).status, 503);
});
