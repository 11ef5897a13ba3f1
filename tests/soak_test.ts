/**
 * Soaks: a million distinct keys, and 50,000 requests of every kind of fault
 * against a real server of the runtime under test. Each prints its figures
 * on a line starting "reliability:".
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { throttle } from "../mod.ts";
import { settledHeap } from "./_helpers.ts";
import { runtime, serve, until } from "./_server.ts";

const MiB = 2 ** 20;

test(`${runtime}: a million distinct keys are all forgotten and memory returns to its baseline`, async () => {
  const handler = throttle(
    (request: Request) =>
      request.url.endsWith("1")
        ? Promise.resolve(new Response())
        : new Response(),
    { limit: 2, queue: 1, key: (request) => request.url },
  );
  const batch = async (from: number, count: number) => {
    const pending = [];
    for (let i = from; i < from + count; i++) {
      const answer = handler(new Request(`http://x/${i}`));
      if (answer instanceof Promise) pending.push(answer);
    }
    await Promise.all(pending);
  };
  await batch(0, 20_000); // warm up
  const before = await settledHeap();
  let peakKeys = 0;
  for (let from = 20_000; from < 1_020_000; from += 20_000) {
    const done = batch(from, 20_000);
    peakKeys = Math.max(peakKeys, handler.stats().keys);
    await done;
  }
  const after = await settledHeap();
  const stats = handler.stats();
  console.log(
    `reliability: ${runtime} keys: 1,000,000 distinct keys, peak ${peakKeys} live, ${stats.keys} live at the end, heap ${
      ((after - before) / MiB).toFixed(1)
    } MiB over baseline`,
  );
  assert.equal(stats.keys, 0);
  assert.equal(stats.admitted, 1_020_000);
  assert.ok(peakKeys > 0);
  assert.ok(after - before < 8 * MiB, `heap grew ${after - before} bytes`);
});

/** The kinds of request the soak mixes, one in turn. */
const kinds = [
  "sync",
  "async",
  "throw",
  "reject",
  "abort-queued",
  "abort-body",
  "cancel-body",
  "head",
  "no-content",
  "not-modified",
  "stream",
  "key-throws",
  "key-not-string",
  "reject-throws",
] as const;
type Kind = typeof kinds[number];

const encoder = new TextEncoder();

function slowBody(chunks: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (sent++ === chunks) controller.close();
      else controller.enqueue(encoder.encode(`chunk ${sent}\n`));
    },
  });
}

test(`${runtime}: 50,000 requests of every kind of fault leave nothing active, queued or leaked`, async () => {
  const TOTAL = 50_000;
  const CLIENTS = 48;
  let called = 0;
  let finished = 0;
  const throttled = throttle(async (request: Request) => {
    called++;
    const kind = new URL(request.url).pathname.slice(1) as Kind;
    try {
      if (kind === "throw") throw new Error("handler failed");
      if (kind === "reject") {
        return await Promise.reject(new Error("handler rejected"));
      }
      if (kind === "async" || kind === "abort-queued") {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (kind === "no-content") return new Response(null, { status: 204 });
      if (kind === "not-modified") return new Response(null, { status: 304 });
      if (kind === "abort-body" || kind === "cancel-body") {
        return new Response(slowBody(1000));
      }
      if (kind === "stream") return new Response(slowBody(3));
      return new Response(`answer to ${kind}`);
    } finally {
      finished++;
    }
  }, {
    // Two keys of 4 running and 4 waiting, for 48 clients: every path of
    // the gate is taken, rejections and queue exits included.
    limit: 4,
    queue: 4,
    release: "body",
    key: (request) => {
      const kind = new URL(request.url).pathname.slice(1);
      if (kind === "key-throws") throw new Error("key failed");
      if (kind === "key-not-string") return 42 as unknown as string;
      return kind.length % 2 === 0 ? "even" : "odd";
    },
    reject: (request) => {
      if (request.url.endsWith("reject-throws")) {
        throw new Error("reject failed");
      }
      return new Response("busy", {
        status: 503,
        headers: { "retry-after": "1" },
      });
    },
  });
  // Errors thrown by the gate or the handler become a 500 here, outside the
  // gate, as a server's error handler would.
  const server = await serve((request: Request) => {
    try {
      const answer = throttled(request);
      return answer instanceof Promise
        ? answer.catch(() => new Response("failed", { status: 500 }))
        : answer;
    } catch {
      return new Response("failed", { status: 500 });
    }
  });

  const statuses = new Map<number, number>();
  let ownAborts = 0;
  let settled = 0;
  const unexpected: string[] = [];

  /** One request; it must end in an answer or in the client's own abort. */
  async function one(kind: Kind): Promise<void> {
    const controller = new AbortController();
    try {
      if (kind === "abort-queued") setTimeout(() => controller.abort(), 1);
      const response = await fetch(`${server.url}/${kind}`, {
        method: kind === "head" ? "HEAD" : "GET",
        signal: controller.signal,
      });
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 503) {
        assert.equal(response.headers.get("retry-after"), "1");
      }
      if ((kind === "abort-body" || kind === "cancel-body") && response.body) {
        const reader = response.body.getReader();
        await reader.read();
        if (kind === "abort-body") controller.abort();
        else await reader.cancel();
        await reader.read().catch(() => {});
      } else {
        await response.arrayBuffer();
      }
      settled++;
    } catch (error) {
      if (controller.signal.aborted) {
        ownAborts++;
        settled++;
      } else {
        unexpected.push(`${kind}: ${error}`);
      }
    }
  }

  async function run(total: number): Promise<void> {
    let sent = 0;
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (sent < total) await one(kinds[sent++ % kinds.length]);
    }));
    await until(
      "every slot freed",
      () => throttled.stats().active === 0,
      20_000,
    );
  }

  try {
    await run(2_000); // warm-up: connection pools, compiled code
    const heapBefore = await settledHeap();
    statuses.clear();
    settled = ownAborts = 0;
    const before = throttled.stats();
    await run(TOTAL);
    const heapAfter = await settledHeap();
    const stats = throttled.stats();
    const answered = [...statuses.values()].reduce((a, b) => a + b, 0);
    console.log(
      `reliability: ${runtime} soak: ${TOTAL} requests, ${answered} answered (${
        [...statuses].sort().map(([s, n]) => `${s}: ${n}`).join(", ")
      }), ${ownAborts} ended by their own abort, ${
        stats.admitted - before.admitted
      } admitted, ${stats.rejected - before.rejected} rejected, ${
        stats.aborted - before.aborted
      } left the queue, heap ${
        ((heapAfter - heapBefore) / MiB).toFixed(1)
      } MiB over baseline`,
    );
    assert.deepEqual(unexpected, []);
    assert.equal(settled, TOTAL);
    assert.equal(stats.active, 0);
    assert.equal(stats.queued, 0);
    assert.equal(stats.keys, 0);
    assert.equal(stats.admitted, called);
    assert.equal(finished, called);
    assert.ok(
      heapAfter - heapBefore < 16 * MiB,
      `heap grew ${heapAfter - heapBefore} bytes`,
    );
  } finally {
    await server.close();
  }
});
