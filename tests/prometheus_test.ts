import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Hono } from "hono";
import parse from "parse-prometheus-text-format";
import { Limiter, throttle } from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";
import { prometheus } from "../prometheus.ts";
import { deferred } from "./_helpers.ts";
import { freePort, repoRoot, runtime, startProcess } from "./_server.ts";

interface Family {
  name: string;
  type: string;
  metrics: Array<{
    value?: string;
    labels?: Record<string, string>;
    buckets?: Record<string, string>;
  }>;
}

async function scrape(handler: (request: Request) => Response) {
  const response = handler(new Request("http://localhost/metrics"));
  assert.equal(
    response.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  const text = await response.text();
  return { text, families: parse(text) as Family[] };
}

/** The value of the series of `family` whose labels include `labels`. */
function value(
  families: Family[],
  family: string,
  labels: Record<string, string>,
): number {
  const found = families.find((f) => f.name === family);
  assert.ok(found, `no family ${family}`);
  const series = found.metrics.filter((m) =>
    Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)
  );
  assert.equal(series.length, 1, `${family} ${JSON.stringify(labels)}`);
  return Number(series[0].value);
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
function promtool(text: string): Promise<{ code: number; said: string }> {
  const child = spawn("promtool", ["check", "metrics"], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let said = "";
  child.stdout.on("data", (chunk) => said += chunk);
  child.stderr.on("data", (chunk) => said += chunk);
  child.stdin.end(text);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code: code ?? -1, said }));
  });
}

test("prometheus() counts every result exactly and reports the gauges and histograms", async () => {
  // Only the caller with a deadline times out: the others may wait as long
  // as a busy machine makes them.
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const metrics = prometheus([{ name: "jobs", target: limiter }]);
  const held = limiter.tryAcquire()!; // admitted
  const timedOut = limiter.acquire({ deadline: 30 }); // timeout after 30 ms
  await assert.rejects(timedOut, { reason: "timeout" });
  const controller = new AbortController();
  const aborted = limiter.acquire({ signal: controller.signal });
  controller.abort(); // aborted
  await assert.rejects(aborted);
  const granted = limiter.acquire(); // admitted once held is released
  const second = limiter.acquire();
  assert.equal(limiter.tryAcquire(), undefined); // full
  await assert.rejects(limiter.acquire(), { reason: "full" }); // full

  let { families } = await scrape(metrics);
  assert.equal(value(families, "floodgate_active", { name: "jobs" }), 1);
  assert.equal(value(families, "floodgate_queued", { name: "jobs" }), 2);
  assert.equal(value(families, "floodgate_limit", { name: "jobs" }), 1);

  held.release();
  (await granted).release();
  (await second).release();
  await limiter.close();
  await assert.rejects(limiter.acquire(), { reason: "closed" }); // closed

  ({ families } = await scrape(metrics));
  const requests = (result: string) =>
    value(families, "floodgate_requests_total", { name: "jobs", result });
  assert.deepEqual(
    ["admitted", "full", "timeout", "closed", "aborted"].map(requests),
    [3, 2, 1, 1, 1],
  );
  const stats = limiter.stats();
  assert.equal(requests("admitted"), stats.admitted);
  assert.equal(requests("full") + requests("closed"), stats.rejected);
  assert.equal(value(families, "floodgate_active", { name: "jobs" }), 0);
  assert.equal(value(families, "floodgate_queued", { name: "jobs" }), 0);

  const wait = families.find((f) => f.name === "floodgate_wait_seconds")!;
  assert.equal(wait.type, "HISTOGRAM");
  const buckets = wait.metrics[0].buckets!;
  // Every request decided is in the wait histogram; the timed-out one waited
  // at least 30 ms, so it is above the 25 ms bucket.
  assert.equal(Number(buckets["+Inf"]), 8);
  assert.ok(Number(buckets["0.025"]) <= 7);
  assert.equal(Object.keys(buckets).length, 16);
  const hold = families.find((f) => f.name === "floodgate_hold_seconds")!;
  assert.equal(Number(hold.metrics[0].buckets!["+Inf"]), 3);
});

test("prometheus() output passes promtool check metrics", async () => {
  const limiter = new Limiter({ limit: Infinity });
  const gate = deferred<void>();
  const keyed = throttle(async () => {
    await gate.promise;
    return new Response("ok");
  }, { limit: 1, key: (request) => new URL(request.url).pathname });
  const middleware = honoThrottle({ limit: 3 });
  const app = new Hono().use(middleware).get("/", (c) => c.text("ok"));
  const metrics = prometheus([
    limiter,
    { name: 'keyed "api"\\\n', target: keyed },
    { name: "hono", target: middleware },
  ]);
  limiter.tryAcquire();
  const pending = [keyed(new Request("http://localhost/a"))];
  await keyed(new Request("http://localhost/a"));
  await app.request("/");
  gate.resolve();
  await Promise.all(pending);
  const { text, families } = await scrape(metrics);
  assert.match(text, /floodgate_limit\{name="default"\} \+Inf/);
  assert.match(text, /name="keyed \\"api\\"\\\\\\n",result="full"\} 1/);
  assert.equal(
    value(families, "floodgate_requests_total", {
      name: "hono",
      result: "admitted",
    }),
    1,
  );
  const { code, said } = await promtool(text);
  assert.equal(said, "");
  assert.equal(code, 0);
  // promtool can fail: a counter without _total is reported.
  const broken = await promtool("# TYPE requests counter\nrequests 1\n");
  assert.notEqual(broken.said, "");
});

test("prometheus() never makes a label of a key", async () => {
  const fetch = throttle(() => new Response("ok"), {
    limit: 1,
    key: (request) => new URL(request.url).pathname,
  });
  const metrics = prometheus(fetch);
  const before = (await scrape(metrics)).text.split("\n").length;
  for (let i = 0; i < 1000; i++) {
    await fetch(new Request(`http://localhost/key-${i}`));
  }
  const { text, families } = await scrape(metrics);
  assert.equal(text.split("\n").length, before);
  assert.doesNotMatch(text, /key-/);
  assert.equal(
    value(families, "floodgate_requests_total", {
      name: "default",
      result: "admitted",
    }),
    1000,
  );
});

test("prometheus() rejects what it cannot report, at creation", () => {
  assert.throws(() => prometheus({} as never), TypeError);
  assert.throws(
    () => prometheus([{ name: "x", target: {} }] as never),
    /target "x" must be a Limiter/,
  );
  const limiter = new Limiter();
  assert.throws(
    () => prometheus([limiter, limiter]),
    /two targets are named "default"/,
  );
  // Names that differ only in lone surrogates are the same once sent: each
  // becomes U+FFFD in UTF-8, and the series would be written twice.
  assert.throws(
    () =>
      prometheus([
        { name: "a\uD800", target: new Limiter() },
        { name: "a\uDC00", target: new Limiter() },
      ]),
    /two targets are named/,
  );
});

test("prometheus() answers HEAD with the headers only", async () => {
  const metrics = prometheus(new Limiter());
  const response = metrics(
    new Request("http://localhost/", { method: "HEAD" }),
  );
  assert.equal(response.status, 200);
  assert.equal(await response.text(), "");
});

/** How this runtime starts its metrics example on `port`. */
const example = {
  deno: (port: number) => [
    "serve",
    "--allow-net",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "examples/metrics_deno.ts",
  ],
  bun: () => ["examples/metrics_bun.js"],
  node: () => ["examples/metrics_node.mjs"],
}[runtime];

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** Polls Prometheus's query API until `check` accepts the result. */
async function query(
  url: string,
  expression: string,
  check: (samples: Sample[]) => boolean,
): Promise<Sample[]> {
  const deadline = Date.now() + 30_000;
  let last: unknown;
  while (Date.now() < deadline) {
    const response = await fetch(
      `${url}/api/v1/query?query=${encodeURIComponent(expression)}`,
    );
    // 503 until the server is ready.
    const body = response.ok ? await response.json() : await response.text();
    last = body;
    if (body.status === "success" && check(body.data.result)) {
      return body.data.result;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  assert.fail(
    `Prometheus never answered ${expression} as expected: ${
      JSON.stringify(last)
    }`,
  );
}

test(`${runtime}: a real Prometheus scrapes the metrics example`, async () => {
  const appPort = await freePort();
  const app = await startProcess(
    process.execPath,
    example(appPort),
    appPort,
    "/metrics",
  );
  const dir = await mkdtemp(join(tmpdir(), "floodgate-prometheus-"));
  let server: Awaited<ReturnType<typeof startProcess>> | undefined;
  try {
    // Limit 2, queue 2: of 5 at once, 4 are admitted and 1 is turned away.
    const statuses = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          fetch(`${app.url}/?work=300`, { signal: AbortSignal.timeout(10_000) })
            .then(async (r) => (await r.text(), r.status)),
      ),
    );
    assert.deepEqual(statuses.sort(), [200, 200, 200, 200, 503]);
    await writeFile(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        "  - job_name: floodgate",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${appPort}"]`,
        "",
      ].join("\n"),
    );
    const port = await freePort();
    server = await startProcess(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      port,
      "/-/ready",
    );
    const samples = await query(
      server.url,
      'floodgate_requests_total{job="floodgate",name="app"}',
      (result) => result.length === 5,
    );
    const byResult = Object.fromEntries(
      samples.map((s) => [s.metric.result, Number(s.value[1])]),
    );
    assert.deepEqual(byResult, {
      admitted: 4,
      full: 1,
      timeout: 0,
      closed: 0,
      aborted: 0,
    });
    const waits = await query(
      server.url,
      'floodgate_wait_seconds_count{name="app"}',
      (result) => result.length === 1,
    );
    assert.equal(Number(waits[0].value[1]), 5);

    // Every query of the Grafana dashboard is valid PromQL over these
    // families; those without a rate have data already.
    const dashboard = JSON.parse(
      await readFile(join(repoRoot(), "docs/grafana_dashboard.json"), "utf8"),
    );
    const expressions: string[] = dashboard.panels.flatMap((
      panel: { targets: Array<{ expr: string }> },
    ) => panel.targets.map((t) => t.expr));
    assert.equal(expressions.length, 11);
    const queryUrl = `${server.url}/api/v1/query?query=`;
    for (const expression of expressions) {
      const families = expression.match(/floodgate_[a-z_]+/g)!;
      for (const family of families) {
        assert.match(
          family,
          /^floodgate_(requests_total|active|queued|limit|(wait|hold)_seconds_bucket)$/,
        );
      }
      const concrete = expression
        .replaceAll("$__rate_interval", "1m")
        .replaceAll("$name", "app");
      const response: Response = await fetch(
        queryUrl + encodeURIComponent(concrete),
      );
      const body: { status: string; error?: string; data: { result: [] } } =
        await response.json();
      assert.equal(body.status, "success", `${concrete}: ${body.error}`);
      if (!expression.includes("rate(")) {
        assert.equal(body.data.result.length, 1, concrete);
      }
    }
  } finally {
    await server?.stop();
    await app.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
