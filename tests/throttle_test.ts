import { test } from "node:test";
import assert from "node:assert/strict";
import { aimd, Limiter, type RejectInfo, throttle } from "../mod.ts";
import { collector, deferred, scripted, settled, tick } from "./_helpers.ts";

const url = "http://localhost/";
const ok = () => new Response("ok");
// Streaming routes name their type.
const typed: ResponseInit = { headers: { "content-type": "text/plain" } };

function request(init?: RequestInit, path = "") {
  return new Request(url + path, init);
}

/** A handler that answers only when released, counting its calls. */
function gatedHandler() {
  const gates: Array<() => void> = [];
  let calls = 0;
  const handler = (req: Request) => {
    calls++;
    const { promise, resolve } = deferred<Response>();
    gates.push(() =>
      resolve(new Response(`done ${new URL(req.url).pathname}`))
    );
    return promise;
  };
  return {
    handler,
    get calls() {
      return calls;
    },
    /** Answers the oldest request still waiting for an answer. */
    next() {
      gates.shift()!();
    },
  };
}

test("throttle() returns the handler's own Response and promise untouched", async () => {
  const response = new Response("hi");
  const sync = throttle(() => response);
  assert.equal(sync(request()), response);
  assert.equal(sync.stats().active, 0);
  const promise = Promise.resolve(response);
  const later = throttle(() => promise);
  assert.equal(later(request()), promise);
  assert.equal(later.stats().active, 1);
  await tick();
  assert.equal(later.stats().active, 0);
});

test("throttle() passes every argument after the request through", () => {
  const info = { remoteAddr: "x" };
  const ctx = { waitUntil() {} };
  const seen: unknown[] = [];
  const handler = throttle((req: Request, a: object, b: object) => {
    seen.push(req, a, b);
    return new Response();
  });
  const req = request();
  handler(req, info, ctx);
  assert.deepEqual(seen, [req, info, ctx]);
  assert.equal(seen[1], info);
});

test("throttle() answers 503 with Retry-After once limit is reached", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 2 });
  const first = handler(request());
  const second = handler(request());
  const third = await handler(request());
  assert.equal(third.status, 503);
  assert.equal(third.headers.get("retry-after"), "1");
  assert.match(await third.text(), /Service Unavailable/);
  assert.equal(slow.calls, 2);
  slow.next();
  slow.next();
  assert.equal((await first).status, 200);
  assert.equal((await second).status, 200);
  const stats = handler.stats();
  assert.deepEqual([stats.active, stats.admitted, stats.rejected], [0, 2, 1]);
});

test("throttle() without a queue turns requests away without reading their signal", async () => {
  // Reading request.signal makes Deno warn about its legacy behaviour.
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 1 });
  const first = handler(request());
  let reads = 0;
  const watched = request();
  Object.defineProperty(watched, "signal", {
    get() {
      reads++;
      return new AbortController().signal;
    },
  });
  assert.equal((await handler(watched)).status, 503);
  assert.equal(reads, 0);
  slow.next();
  assert.equal((await first).status, 200);
});

test("throttle() uses retryAfter in the default rejection", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 1, retryAfter: 7 });
  handler(request());
  const rejected = await handler(request());
  assert.equal(rejected.headers.get("retry-after"), "7");
  slow.next();
});

test("throttle() queues up to queue requests and runs them in order", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 1, queue: 2 });
  const answers = ["a", "b", "c"].map((p) => handler(request({}, p)));
  const overflow = await handler(request({}, "d"));
  assert.equal(overflow.status, 503);
  assert.equal(handler.stats().queued, 2);
  for (let i = 0; i < 3; i++) {
    await tick();
    assert.equal(slow.calls, i + 1);
    slow.next();
  }
  const bodies = await Promise.all(answers.map(async (a) => (await a).text()));
  assert.deepEqual(bodies, ["done /a", "done /b", "done /c"]);
  assert.equal(handler.stats().active, 0);
});

test("throttle() drops a queued request whose client disconnects and never calls its handler", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 1, queue: 1 });
  handler(request());
  const controller = new AbortController();
  const queued = handler(request({ signal: controller.signal }));
  assert.equal(handler.stats().queued, 1);
  controller.abort();
  assert.equal(handler.stats().queued, 0);
  assert.equal((await queued).status, 499);
  // The freed queue slot takes the next request.
  const next = handler(request());
  assert.equal(handler.stats().queued, 1);
  slow.next();
  await tick();
  slow.next();
  assert.equal((await next).status, 200);
  assert.equal(slow.calls, 2);
  assert.equal(handler.stats().aborted, 1);
});

test("throttle() rejects a queued request with 503 after queueTimeout", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, {
    limit: 1,
    queue: 1,
    queueTimeout: 10,
  });
  handler(request());
  const queued = await handler(request());
  assert.equal(queued.status, 503);
  assert.equal(handler.stats().timedOut, 1);
  assert.equal(slow.calls, 1);
  slow.next();
});

test("throttle() frees the slot when the handler throws and rethrows the error", async () => {
  const failure = new Error("boom");
  const sync = throttle(() => {
    throw failure;
  }, { limit: 1 });
  assert.throws(() => sync(request()), (e) => e === failure);
  assert.equal(sync.stats().active, 0);
  const async = throttle(() => Promise.reject(failure), { limit: 1 });
  await assert.rejects(Promise.resolve(async(request())), (e) => e === failure);
  assert.equal(async.stats().active, 0);
  const body = throttle(() => Promise.reject(failure), {
    limit: 1,
    release: "body",
  });
  await assert.rejects(Promise.resolve(body(request())), (e) => e === failure);
  assert.equal(body.stats().active, 0);
});

test("throttle() builds rejections with reject and tells it why", async () => {
  const slow = gatedHandler();
  const infos: RejectInfo[] = [];
  const handler = throttle(slow.handler, {
    limit: 1,
    key: () => "tenant-a",
    reject: (req, info) => {
      assert.ok(req instanceof Request);
      infos.push(info);
      return new Response("busy", { status: 429 });
    },
  });
  handler(request());
  const rejected = await handler(request());
  assert.equal(rejected.status, 429);
  assert.deepEqual(infos, [{
    reason: "full",
    limit: 1,
    active: 1,
    queued: 0,
    retryAfter: 1,
    key: "tenant-a",
  }]);
  slow.next();
});

test("throttle() fails only the request whose reject callback misbehaves", async () => {
  const slow = gatedHandler();
  let mode = "throw";
  const handler = throttle(slow.handler, {
    limit: 1,
    reject: () => {
      if (mode === "throw") throw new Error("reject broke");
      if (mode === "async") {
        return Promise.resolve("nope" as unknown as Response);
      }
      return 42 as unknown as Response;
    },
  });
  handler(request());
  assert.throws(() => handler(request()), /reject broke/);
  mode = "wrong";
  assert.throws(
    () => handler(request()),
    /option "reject" must return a Response, got 42/,
  );
  mode = "async";
  await assert.rejects(
    Promise.resolve(handler(request())),
    /must return a Response, got "nope"/,
  );
  slow.next();
  await tick();
  assert.equal(handler.stats().active, 0);
});

test("throttle() lets skipped requests bypass the gate", async () => {
  const slow = gatedHandler();
  const handler = throttle((req: Request) => {
    if (req.url.endsWith("/health")) return new Response("up");
    return slow.handler(req);
  }, { limit: 1, skip: (req) => req.url.endsWith("/health") });
  handler(request());
  const health = await handler(request({}, "health"));
  assert.equal(await health.text(), "up");
  assert.equal((await handler(request())).status, 503);
  assert.equal(handler.stats().admitted, 1);
  slow.next();
});

test("throttle() keeps an independent limit per key and forgets idle keys", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, {
    limit: 1,
    key: (req) => new URL(req.url).pathname,
  });
  const a = handler(request({}, "a"));
  const b = handler(request({}, "b"));
  assert.equal((await handler(request({}, "a"))).status, 503);
  assert.equal(handler.stats().keys, 2);
  assert.equal(handler.stats().active, 2);
  slow.next();
  await a;
  assert.equal(handler.stats().keys, 1);
  slow.next();
  await b;
  await tick();
  assert.deepEqual(handler.stats(), {
    limit: 1,
    active: 0,
    queued: 0,
    admitted: 2,
    rejected: 1,
    timedOut: 0,
    aborted: 0,
    keys: 0,
  });
});

test("throttle() forgets each of 100,000 distinct keys once it is idle", async () => {
  const handler = throttle(
    (req: Request) =>
      req.url.endsWith("0") ? Promise.resolve(new Response()) : new Response(),
    { limit: 1, key: (req) => req.url },
  );
  const pending = [];
  for (let i = 0; i < 100_000; i++) {
    const answer = handler(request({}, String(i)));
    if (answer instanceof Promise) pending.push(answer);
  }
  assert.ok(handler.stats().keys > 0);
  await Promise.all(pending);
  const stats = handler.stats();
  assert.equal(stats.keys, 0);
  assert.equal(stats.admitted, 100_000);
});

test("throttle() hands key and skip the handler's arguments after the request", async () => {
  const keys: string[] = [];
  type Info = { remoteAddr: { hostname: string } };
  const slow = gatedHandler();
  const handler = throttle((req: Request, _info: Info) => slow.handler(req), {
    limit: 1,
    key: (_req, info) => {
      keys.push(info.remoteAddr.hostname);
      return info.remoteAddr.hostname;
    },
    skip: (_req, info) => info.remoteAddr.hostname === "127.0.0.2",
  });
  const client = (hostname: string) => ({ remoteAddr: { hostname } });
  const first = handler(request(), client("127.0.0.1"));
  assert.equal((await handler(request(), client("127.0.0.1"))).status, 503);
  const other = handler(request(), client("127.0.0.3"));
  handler(request(), client("127.0.0.2"));
  assert.deepEqual(keys, ["127.0.0.1", "127.0.0.1", "127.0.0.3"]);
  assert.equal(slow.calls, 3);
  slow.next();
  slow.next();
  slow.next();
  await Promise.all([first, other]);
  assert.equal(handler.stats().keys, 0);
});

test("throttle() fails only the request whose skip does not return a boolean", async () => {
  const handler = throttle(() => new Response(), {
    skip: (req) => (req.url.endsWith("bad") ? "yes" : false) as boolean,
  });
  assert.throws(
    () => handler(request({}, "bad")),
    /option "skip" must return a boolean, got "yes"/,
  );
  assert.equal((await handler(request())).status, 200);
  assert.equal(handler.stats().active, 0);
});

test("throttle() fails only the request whose key is not a string", async () => {
  const handler = throttle(() => new Response(), {
    key: (req) => (req.url.endsWith("bad") ? 5 : "ok") as string,
  });
  assert.throws(
    () => handler(request({}, "bad")),
    /option "key" must return a string, got 5/,
  );
  assert.equal((await handler(request())).status, 200);
  assert.equal(handler.stats().keys, 0);
});

test("throttle() shares one limiter between handlers", async () => {
  const limiter = new Limiter({ limit: 1 });
  const slow = gatedHandler();
  const one = throttle(slow.handler, { limiter });
  const two = throttle(() => new Response("two"), { limiter });
  one(request());
  assert.equal((await two(request())).status, 503);
  slow.next();
  await tick();
  assert.equal((await two(request())).status, 200);
  assert.equal(limiter.stats().admitted, 2);
});

test("throttle().close() rejects later requests and waits for running ones", async () => {
  const slow = gatedHandler();
  const handler = throttle(slow.handler, { limit: 1, queue: 1 });
  const running = handler(request());
  const queued = handler(request());
  const closed = handler.close();
  assert.equal((await queued).status, 503);
  assert.equal((await handler(request())).status, 503);
  assert.equal(await settled(closed), false);
  slow.next();
  assert.equal((await running).status, 200);
  assert.equal(await settled(closed), true);
});

test("throttle().close() with key closes every key and rejects new ones", async () => {
  const slow = gatedHandler();
  const reasons: string[] = [];
  const handler = throttle(slow.handler, {
    key: (req) => req.url,
    reject: (_req, info) => {
      reasons.push(info.reason);
      return new Response(null, { status: 503 });
    },
  });
  handler(request({}, "a"));
  const closed = handler.close();
  assert.equal((await handler(request({}, "a"))).status, 503);
  assert.equal((await handler(request({}, "new"))).status, 503);
  assert.deepEqual(reasons, ["closed", "closed"]);
  slow.next();
  await closed;
  assert.equal(handler.stats().rejected, 2);
});

test("throttle() frees the slot when the handler returns by default, even if the body streams", async () => {
  const body = new ReadableStream({ pull() {} });
  const handler = throttle(() => new Response(body), { limit: 1 });
  const response = await handler(request());
  assert.equal(response.body, body);
  assert.equal(handler.stats().active, 0);
});

function streamed() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  return { body, controller };
}

test("throttle() with release body holds the slot until the body is read to the end", async () => {
  const { body, controller } = streamed();
  const handler = throttle(() => new Response(body, typed), {
    limit: 1,
    release: "body",
  });
  const response = await handler(request());
  const text = response.text();
  controller.enqueue(new TextEncoder().encode("part "));
  await tick();
  assert.equal(handler.stats().active, 1);
  assert.equal((await handler(request())).status, 503);
  controller.enqueue(new TextEncoder().encode("end"));
  controller.close();
  assert.equal(await text, "part end");
  assert.equal(handler.stats().active, 0);
});

test("throttle() with release body frees the slot when the body is cancelled or errors", async () => {
  const handler = throttle(() => new Response(streamed().body, typed), {
    limit: 1,
    release: "body",
  });
  const cancelled = await handler(request());
  assert.equal(handler.stats().active, 1);
  await cancelled.body!.cancel();
  assert.equal(handler.stats().active, 0);

  const failing = streamed();
  const erroring = throttle(() => new Response(failing.body, typed), {
    limit: 1,
    release: "body",
  });
  const response = await erroring(request());
  const read = response.text();
  failing.controller.error(new Error("upstream broke"));
  await assert.rejects(read, /upstream broke/);
  assert.equal(erroring.stats().active, 0);
});

test("throttle() with release body keeps status, status text and every header", async () => {
  const headers = new Headers([["x-one", "1"], ["content-type", "text/csv"]]);
  headers.append("set-cookie", "a=1; Path=/");
  headers.append("set-cookie", "b=2; Path=/");
  const handler = throttle(
    () => new Response("a,b", { status: 201, statusText: "Made", headers }),
    { release: "body" },
  );
  const response = await handler(request());
  assert.equal(response.status, 201);
  assert.equal(response.statusText, "Made");
  assert.equal(response.headers.get("x-one"), "1");
  assert.equal(response.headers.get("content-type"), "text/csv");
  assert.deepEqual(response.headers.getSetCookie(), [
    "a=1; Path=/",
    "b=2; Path=/",
  ]);
  assert.equal(await response.text(), "a,b");
});

test("throttle() with release body waits for Deno's info.completed instead of re-wrapping the body", async () => {
  const response = new Response(streamed().body);
  const handler = throttle(
    (_request: Request, _info: Info) => response,
    { limit: 1, release: "body" },
  );
  type Info = { completed: Promise<void>; remoteAddr: object };
  const remoteAddr = { transport: "tcp", hostname: "127.0.0.1", port: 1 };
  const delivered = deferred();
  assert.equal(
    await handler(request(), { completed: delivered.promise, remoteAddr }),
    response,
  );
  assert.equal(handler.stats().active, 1);
  delivered.resolve();
  await tick();
  assert.equal(handler.stats().active, 0);
  const failed = deferred();
  await handler(request(), { completed: failed.promise, remoteAddr });
  failed.reject(new Error("client went away"));
  await tick();
  assert.equal(handler.stats().active, 0);
});

test("throttle() with release body waits for the close of Node's response under @hono/node-server", async () => {
  const listeners: Array<() => void> = [];
  const outgoing = {
    destroyed: false,
    writableFinished: false,
    once: (event: string, fn: () => void) =>
      event === "close" && listeners.push(fn),
  };
  const bindings = { incoming: {}, outgoing };
  const response = new Response(streamed().body);
  const handler = throttle(
    (_request: Request, _env: typeof bindings) => response,
    { limit: 1, release: "body" },
  );
  assert.equal(await handler(request(), bindings), response);
  assert.equal(handler.stats().active, 1);
  assert.equal(listeners.length, 1);
  listeners[0]();
  await tick();
  assert.equal(handler.stats().active, 0);
  // A response already closed (the client left before the handler was
  // called) will not close again: the slot frees at once.
  outgoing.destroyed = true;
  assert.equal(await handler(request(), bindings), response);
  await tick();
  assert.equal(handler.stats().active, 0);
  assert.equal(listeners.length, 1);
});

test("throttle() with release body frees at once for HEAD, null bodies and no Response", async () => {
  const { body } = streamed();
  const results: Array<Response | undefined> = [
    new Response(body),
    new Response(null, { status: 204 }),
    new Response(null, { status: 304 }),
    undefined,
  ];
  const handler = throttle(
    (req: Request) => results[Number(new URL(req.url).searchParams.get("i"))],
    { limit: 1, release: "body" },
  );
  const head = await handler(request({ method: "HEAD" }, "?i=0"));
  assert.equal(head!.body, body);
  assert.equal(handler.stats().active, 0);
  for (const i of [1, 2, 3]) {
    const response = await handler(request({}, `?i=${i}`));
    assert.equal(response, results[i]);
    assert.equal(handler.stats().active, 0);
  }
});

test("throttle() with release body frees the slot of a body nobody reads once it is collected", async () => {
  const gc = collector();
  const handler = throttle(() => new Response(streamed().body, typed), {
    limit: 1,
    release: "body",
  });
  await handler(request()); // dropped unread
  assert.equal(handler.stats().active, 1);
  for (let i = 0; i < 50 && handler.stats().active !== 0; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(handler.stats().active, 0);
});

test("throttle() with release body frees the slot of a response whose body was already used or locked", async () => {
  const cached = new Response("cached");
  const locked = new Response("locked");
  locked.body!.getReader();
  for (const response of [cached, locked]) {
    const fetch = throttle(() => response, { limit: 1, release: "body" });
    for (let i = 0; i < 3; i++) {
      const answer = await fetch(request());
      await answer.text().catch(() => {});
      assert.equal(fetch.stats().active, 0);
    }
    await fetch.close();
  }
});

test("throttle() with release body keeps the implicit Content-Type of Blob, FormData and URLSearchParams bodies", async () => {
  const form = new FormData();
  form.set("field", "value");
  const bodies: Array<[BodyInit, RegExp]> = [
    [new Blob(["a { }"], { type: "text/css" }), /^text\/css/],
    [form, /^multipart\/form-data; boundary=/],
    [new URLSearchParams({ a: "1" }), /^application\/x-www-form-urlencoded/],
  ];
  for (const [body, type] of bodies) {
    const fetch = throttle(() => new Response(body), { release: "body" });
    const response = await fetch(request());
    assert.match(response.headers.get("content-type") ?? "", type);
    await response.arrayBuffer();
    assert.equal(fetch.stats().active, 0);
  }
});

test("throttle() releases exactly once for a handler's thenable that calls back twice", async () => {
  const answer = new Response("ok");
  const twice = {
    then(
      onFulfilled: (value: Response) => unknown,
      onRejected: (reason: unknown) => unknown,
    ) {
      onFulfilled(answer);
      onFulfilled(answer);
      onRejected(new Error("late"));
    },
  } as unknown as Promise<Response>;
  for (
    const options of [{ limit: 1 }, { limit: 1, release: "body" as const }, {
      limit: 1,
      key: () => "k",
    }]
  ) {
    const fetch = throttle(() => twice, options);
    for (let i = 0; i < 3; i++) {
      await (await fetch(request())).text().catch(() => "");
    }
    await tick();
    assert.equal(fetch.stats().active, 0);
    const held = deferred<Response>();
    const calls = { count: 0 };
    const guard = throttle(() => {
      calls.count++;
      return calls.count === 1 ? held.promise : twice;
    }, options);
    guard(request());
    assert.equal(
      (await guard(request())).status,
      503,
      "the limit must still hold",
    );
    held.resolve(new Response("done"));
  }
});

test("throttle() with key counts each request once when a waiter leaves as the holder releases", async () => {
  const answer = deferred<Response>();
  const fetch = throttle(() => answer.promise, {
    limit: 1,
    queue: 1,
    key: () => "k",
  });
  const first = fetch(request());
  const client = new AbortController();
  const second = fetch(request({ signal: client.signal }));
  answer.resolve(new Response("first"));
  client.abort();
  await first;
  assert.equal((await second).status, 499);
  await tick();
  const stats = fetch.stats();
  assert.deepEqual(
    [stats.admitted, stats.aborted, stats.active, stats.keys],
    [1, 1, 0, 0],
  );
});

test("throttle() with key keeps a newer limiter of the same key when an older one retires late", async () => {
  const gates: Array<(response: Response) => void> = [];
  const fetch = throttle(() => {
    const { promise, resolve } = deferred<Response>();
    gates.push(resolve);
    return promise;
  }, { limit: 1, queue: 1, key: () => "k" });
  const first = fetch(request());
  const client = new AbortController();
  const second = fetch(request({ signal: client.signal }));
  gates[0](new Response("first"));
  client.abort();
  // Runs before the aborted waiter's rejection is handled.
  queueMicrotask(() => void fetch(request()));
  await first;
  await second;
  await tick();
  assert.equal(fetch.stats().keys, 1, "the newest limiter of the key is live");
  assert.equal(fetch.stats().active, 1);
  gates[1](new Response("third"));
  await tick();
  assert.deepEqual(
    [fetch.stats().admitted, fetch.stats().aborted, fetch.stats().keys],
    [2, 1, 0],
  );
});

test("throttle() says that key and skip must be synchronous when they return a promise", () => {
  assert.throws(
    // deno-lint-ignore require-await
    () => throttle(ok, { key: async () => "k" } as never),
    /"key" must be synchronous, got an async function/,
  );
  const promisedKey = throttle(
    ok,
    { key: () => Promise.resolve("k") } as never,
  );
  assert.throws(
    () => promisedKey(request()),
    /"key" must return a string synchronously, got a Promise/,
  );
  const promisedSkip = throttle(
    ok,
    { skip: () => Promise.resolve(false) } as never,
  );
  assert.throws(
    () => promisedSkip(request()),
    /"skip" must return a boolean synchronously, got a Promise/,
  );
});

test("throttle() given a Hono app points to app.fetch and the Hono middleware", () => {
  const app = { fetch: ok, request: ok, use: () => app };
  assert.throws(
    () => throttle(app as never),
    (error: unknown) =>
      error instanceof TypeError && /app\.fetch/.test(error.message) &&
      /floodgate\/hono/.test(error.message),
  );
});

test("throttle() with an adaptive limit counts a handler that throws as dropped", async () => {
  const { algorithm, samples } = scripted(10);
  const handler = throttle((request: Request) => {
    if (request.url.endsWith("/throw")) throw new Error("sync");
    if (request.url.endsWith("/reject")) {
      return Promise.reject(new Error("async"));
    }
    return Promise.resolve(new Response("ok"));
  }, { limit: algorithm });
  assert.throws(() => handler(new Request("http://x/throw")));
  await assert.rejects(
    Promise.resolve(handler(new Request("http://x/reject"))),
  );
  await handler(new Request("http://x/fine"));
  await tick();
  assert.deepEqual(samples.map((s) => s.dropped), [true, true, false]);
  assert.equal(handler.stats().active, 0);
});

test("dryRun with an adaptive limit reports the would-be limit and rejections, enforcing nothing", async () => {
  const algorithm = aimd({ min: 1, initial: 4, max: 100 });
  const handler = throttle(async () => {
    await new Promise((resolve) => setTimeout(resolve, 2));
    return new Response("ok");
  }, { limit: algorithm, dryRun: true });
  // The limit is 4 from the start: of 5 at once, 1 would be rejected, but
  // all are served.
  const burst = () =>
    Promise.all(
      Array.from({ length: 5 }, () => handler(new Request("http://x/"))),
    );
  assert.ok((await burst()).every((r) => r.status === 200));
  let stats = handler.stats();
  assert.deepEqual([stats.limit, stats.admitted, stats.rejected], [4, 5, 1]);
  assert.ok((await burst()).every((r) => r.status === 200));
  stats = handler.stats();
  // Shadow mode: the limit shown is the one the algorithm would enforce.
  assert.equal(stats.limit, algorithm.limit);
  assert.deepEqual([stats.admitted, stats.active], [10, 0]);
  assert.equal(stats.active, 0);
});

test("throttle() frees the slot when the response's own getters throw, or it is a revoked proxy", async () => {
  class Broken extends Response {
    override get headers(): Headers {
      throw new Error("broken headers");
    }
  }
  const broken = throttle(() => new Broken("x"), { limit: 1, release: "body" });
  assert.throws(() => broken(request()), /broken headers/);
  assert.equal(broken.stats().active, 0);
  const later = throttle(() => Promise.resolve(new Broken("x")), {
    limit: 1,
    release: "body",
  });
  await assert.rejects(Promise.resolve(later(request())), /broken headers/);
  assert.equal(later.stats().active, 0);
  for (const release of ["response", "body"] as const) {
    const revoked = throttle(() => {
      const { proxy, revoke } = Proxy.revocable(new Response("x"), {});
      revoke();
      return proxy;
    }, { limit: 1, release });
    assert.throws(() => revoked(request()), TypeError);
    assert.equal(revoked.stats().active, 0, release);
  }
});

test("throttle() with release body is not fooled by arguments shaped like a server's", async () => {
  const lookalikes = [
    { outgoing: { once() {} } },
    { completed: new Promise(() => {}) },
  ];
  for (const env of lookalikes) {
    const fetch = throttle(
      (_request: Request, _env: unknown) => new Response("x", typed),
      { limit: 1, release: "body" },
    );
    const response = await fetch(request(), env);
    assert.equal(fetch.stats().active, 1, "held while the body is unread");
    assert.equal(await response.text(), "x");
    assert.equal(fetch.stats().active, 0);
  }
});

test("throttle() hands the server a lazy thenable's result without running it twice", async () => {
  let runs = 0;
  const lazy = {
    then(resolve: (value: Response) => void) {
      runs++;
      resolve(new Response("lazy"));
    },
  } as unknown as Promise<Response>;
  const fetch = throttle(() => lazy, { limit: 1 });
  const answer = await fetch(request());
  assert.equal(await answer.text(), "lazy");
  await tick();
  assert.equal(runs, 1);
  assert.equal(fetch.stats().active, 0);
});

test("throttle() with key reports a throwing algorithm once, however many keys use it", async () => {
  const errors: unknown[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void errors.push(args);
  try {
    const broken = {
      limit: 2,
      update() {
        throw new Error("bug in the algorithm");
      },
    };
    const fetch = throttle(() => new Response("ok"), {
      limit: broken,
      key: (request) => new URL(request.url).pathname,
    });
    for (let i = 0; i < 50; i++) {
      assert.equal(
        (await fetch(request(undefined, String(i % 3)))).status,
        200,
      );
    }
    assert.equal(errors.length, 1);
    assert.equal(fetch.stats().keys, 0);
  } finally {
    console.error = original;
  }
});

test("throttle() with release body reads nothing of Deno's info that throws after an upgrade", async () => {
  const delivered = deferred();
  const info = {
    completed: delivered.promise,
    get remoteAddr(): never {
      throw new TypeError("Request closed");
    },
  };
  const fetch = throttle(
    (_request: Request, _info: typeof info) => new Response("x", typed),
    { limit: 1, release: "body" },
  );
  await fetch(request(), info);
  assert.equal(fetch.stats().active, 1);
  delivered.resolve();
  await tick();
  assert.equal(fetch.stats().active, 0);
});
