import { test } from "node:test";
import { connect } from "node:net";
import assert from "node:assert/strict";
import { throttle } from "../mod.ts";
import { type Deferred, deferred } from "./_helpers.ts";
import { runtime, serve, until } from "./_server.ts";

/** A handler whose answers wait for the test, tracking how many run at once. */
function heldHandler() {
  const pending: Array<Deferred<void>> = [];
  const calls: string[] = [];
  let running = 0;
  let peak = 0;
  return {
    pending,
    calls,
    get running() {
      return running;
    },
    get peak() {
      return peak;
    },
    handler: async (request: Request) => {
      calls.push(new URL(request.url).pathname);
      peak = Math.max(peak, ++running);
      const gate = deferred();
      pending.push(gate);
      await gate.promise;
      running--;
      return new Response("served");
    },
    /** Lets the oldest running handler answer. */
    releaseOne() {
      pending.shift()!.resolve();
    },
  };
}

async function withServer(
  handler: (request: Request) => unknown,
  body: (url: string) => Promise<void>,
) {
  const server = await serve(handler);
  try {
    await body(server.url);
  } finally {
    await server.close();
  }
}

test(`${runtime} server: the limit holds under concurrent requests`, async () => {
  const held = heldHandler();
  const handler = throttle(held.handler, { limit: 4, queue: 40 });
  await withServer(handler, async (url) => {
    const answers = Array.from({ length: 24 }, (_, i) => fetch(`${url}/${i}`));
    for (let served = 0; served < 24; served++) {
      await until("a running handler", () => held.pending.length > 0);
      assert.ok(held.running <= 4);
      held.releaseOne();
    }
    const responses = await Promise.all(answers);
    assert.deepEqual(responses.map((r) => r.status), Array(24).fill(200));
    await Promise.all(responses.map((r) => r.text()));
    assert.equal(held.peak, 4);
    assert.equal(handler.stats().active, 0);
  });
});

test(`${runtime} server: overflow gets a fast 503 with Retry-After`, async () => {
  const held = heldHandler();
  const handler = throttle(held.handler, { limit: 2, retryAfter: 3 });
  await withServer(handler, async (url) => {
    const running = [fetch(url), fetch(url)];
    await until("two running handlers", () => held.running === 2);
    const rejected = await Promise.all(
      Array.from({ length: 5 }, () => fetch(url)),
    );
    for (const response of rejected) {
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "3");
      await response.text();
    }
    held.releaseOne();
    held.releaseOne();
    for (const r of await Promise.all(running)) {
      assert.equal(await r.text(), "served");
    }
    assert.equal(handler.stats().rejected, 5);
  });
});

test(`${runtime} server: the queue admits waiting requests in arrival order`, async () => {
  const held = heldHandler();
  const handler = throttle(held.handler, { limit: 1, queue: 3 });
  await withServer(handler, async (url) => {
    const answers = [fetch(`${url}/first`)];
    await until("the first handler", () => held.running === 1);
    for (const name of ["a", "b", "c"]) {
      const queuedBefore = handler.stats().queued;
      answers.push(fetch(`${url}/${name}`));
      await until(
        `${name} queued`,
        () => handler.stats().queued > queuedBefore,
      );
    }
    const overflow = await fetch(`${url}/overflow`);
    assert.equal(overflow.status, 503);
    await overflow.text();
    for (let i = 0; i < 4; i++) {
      await until("a running handler", () => held.pending.length === 1);
      held.releaseOne();
    }
    for (const r of await Promise.all(answers)) await r.text();
    assert.deepEqual(held.calls, ["/first", "/a", "/b", "/c"]);
  });
});

test(`${runtime} server: a client that disconnects while queued leaves the queue and its handler never runs`, async () => {
  const held = heldHandler();
  const handler = throttle(held.handler, { limit: 1, queue: 1 });
  await withServer(handler, async (url) => {
    const first = fetch(`${url}/first`);
    await until("the first handler", () => held.running === 1);
    const controller = new AbortController();
    const gone = fetch(`${url}/gone`, { signal: controller.signal }).catch(
      (error) => error,
    );
    await until(
      "the second request queued",
      () => handler.stats().queued === 1,
    );
    controller.abort();
    await gone;
    await until("the queue slot freed", () => handler.stats().queued === 0);
    assert.equal(handler.stats().aborted, 1);
    // The freed queue slot takes a new request.
    const next = fetch(`${url}/next`);
    await until("the next request queued", () => handler.stats().queued === 1);
    held.releaseOne();
    await until("the next handler", () => held.pending.length === 1);
    held.releaseOne();
    assert.equal((await first).status, 200);
    assert.equal(await (await next).text(), "served");
    assert.deepEqual(held.calls, ["/first", "/next"]);
  });
});

test(`${runtime} server: by default the slot frees when the handler returns, while the body still streams`, async () => {
  let push!: ReadableStreamDefaultController<Uint8Array>;
  const handler = throttle(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({ start: (c) => void (push = c) }),
      ),
    { limit: 1 },
  );
  await withServer(handler, async (url) => {
    const response = await (async () => {
      const answer = fetch(url);
      await until("the stream started", () => push !== undefined);
      push.enqueue(new TextEncoder().encode("first"));
      return await answer;
    })();
    assert.equal(handler.stats().active, 0);
    push.enqueue(new TextEncoder().encode(" last"));
    push.close();
    assert.equal(await response.text(), "first last");
  });
});

test(`${runtime} server: with release body a streaming body holds its slot until it ends`, async () => {
  const streams: Array<ReadableStreamDefaultController<Uint8Array>> = [];
  const handler = throttle(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({ start: (c) => void streams.push(c) }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    { limit: 1, release: "body" },
  );
  await withServer(handler, async (url) => {
    const answer = fetch(url);
    await until("the stream started", () => streams.length === 1);
    streams[0].enqueue(new TextEncoder().encode("data: 1\n\n"));
    const response = await answer;
    assert.equal(response.headers.get("content-type"), "text/event-stream");
    const reader = response.body!.getReader();
    assert.match(
      new TextDecoder().decode((await reader.read()).value),
      /data: 1/,
    );
    assert.equal(handler.stats().active, 1);
    const busy = await fetch(url);
    assert.equal(busy.status, 503);
    await busy.text();
    streams[0].enqueue(new TextEncoder().encode("data: 2\n\n"));
    streams[0].close();
    while (!(await reader.read()).done);
    await until(
      "the slot freed at the end",
      () => handler.stats().active === 0,
    );
  });
});

test(`${runtime} server: with release body a client that stops reading frees the slot`, async () => {
  let cancelled = false;
  const handler = throttle(
    () =>
      new Response(
        new ReadableStream<Uint8Array>({
          pull: (c) => c.enqueue(new Uint8Array(1024)),
          cancel: () => void (cancelled = true),
        }),
        { headers: { "content-type": "application/octet-stream" } },
      ),
    { limit: 1, release: "body" },
  );
  await withServer(handler, async (url) => {
    const controller = new AbortController();
    const response = await fetch(url, { signal: controller.signal });
    const reader = response.body!.getReader();
    await reader.read();
    assert.equal(handler.stats().active, 1);
    controller.abort();
    await reader.read().catch(() => {});
    await until(
      "the slot freed on disconnect",
      () => handler.stats().active === 0,
    );
    await until("the body cancelled", () => cancelled);
  });
});

test(`${runtime} server: with release body HEAD and 204 responses never hold a slot`, async () => {
  const handler = throttle(
    (request: Request) =>
      new URL(request.url).pathname === "/empty"
        ? new Response(null, { status: 204 })
        : new Response("a body that a HEAD response never sends"),
    { limit: 1, release: "body" },
  );
  await withServer(handler, async (url) => {
    for (let i = 0; i < 5; i++) {
      const head = await fetch(url, { method: "HEAD" });
      assert.equal(head.status, 200);
      await head.arrayBuffer();
      const empty = await fetch(`${url}/empty`);
      assert.equal(empty.status, 204);
      await empty.arrayBuffer();
    }
    await until("no slot held", () => handler.stats().active === 0);
    assert.equal(handler.stats().rejected, 0);
  });
});

test(`${runtime} server: with release body every body kind reaches the client with the Content-Type it has unthrottled`, async () => {
  const form = new FormData();
  form.set("field", "value");
  const bodies: Record<string, () => BodyInit> = {
    string: () => "text",
    bytes: () => new Uint8Array([1, 2]),
    blob: () => new Blob(["a { }"], { type: "text/css" }),
    form: () => form,
    search: () => new URLSearchParams({ a: "1" }),
  };
  const kind = (request: Request) => new URL(request.url).pathname.slice(1);
  const plain = (request: Request) => new Response(bodies[kind(request)]());
  const gated = throttle(plain, { limit: 1, release: "body" });
  const types = async (handler: (request: Request) => unknown) => {
    const seen: Record<string, string | null> = {};
    await withServer(handler, async (url) => {
      for (const name of Object.keys(bodies)) {
        const response = await fetch(`${url}/${name}`);
        await response.arrayBuffer();
        seen[name] = response.headers.get("content-type")
          ?.replace(/boundary=.*/, "boundary") ?? null;
      }
    });
    return seen;
  };
  const expected = await types(plain);
  const gatedTypes = await types(gated);
  // Bun types a string body only when it sends it, not in the Response's
  // headers, and a re-wrapped body cannot keep what it never saw: compared
  // are the kinds whose Content-Type the Response itself carries.
  const compared = Object.keys(bodies).filter((name) =>
    new Response(bodies[name]()).headers.has("content-type")
  );
  for (const name of compared) {
    assert.equal(gatedTypes[name], expected[name], name);
  }
  assert.ok(compared.includes("blob") && compared.includes("form"));
  assert.equal(gated.stats().active, 0);
});

test(`${runtime} server: with release body a client that left before the gate was reached costs no slot`, async () => {
  const typed = { "content-type": "text/plain" };
  const gated = throttle(() => new Response("hello", { headers: typed }), {
    limit: 1,
    release: "body",
  });
  // A lookup before the gate (authentication, say) during which the client
  // leaves.
  const handler = async (request: Request, ...rest: unknown[]) => {
    await new Promise((resolve) => setTimeout(resolve, 150));
    return gated(request, ...rest as []);
  };
  await withServer(handler, async (url) => {
    const { port } = new URL(url);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), "127.0.0.1", () => {
        socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        setTimeout(() => socket.destroy(), 30);
      });
      socket.on("error", () => {});
      socket.on("close", () => resolve());
    });
    await until("the handler ran", () => gated.stats().admitted === 1);
    await until("the slot freed", () => gated.stats().active === 0);
    const next = await fetch(url);
    assert.equal(await next.text(), "hello");
  });
});
