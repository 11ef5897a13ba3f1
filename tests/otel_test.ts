import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { Limiter, throttle } from "../mod.ts";
import { instrument } from "../otel.ts";
import { freePort, runtime, startProcess } from "./_server.ts";

/** A real MeterProvider whose metrics are read on demand from memory. */
function sdk() {
  const exporter = new InMemoryMetricExporter(
    AggregationTemporality.CUMULATIVE,
  );
  const reader = new PeriodicExportingMetricReader({
    exporter,
    // Exported only when the test flushes.
    exportIntervalMillis: 3_600_000,
  });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    meter: provider.getMeter("floodgate-test"),
    /** Every metric as collected now. */
    async collect(): Promise<MetricData[]> {
      exporter.reset();
      await reader.forceFlush();
      return exporter.getMetrics().flatMap((resource) =>
        resource.scopeMetrics.flatMap((scope) => scope.metrics)
      );
    },
    shutdown: () => provider.shutdown(),
  };
}

function metric(metrics: MetricData[], name: string): MetricData {
  const found = metrics.find((m) => m.descriptor.name === name);
  assert.ok(found, `no metric ${name}`);
  return found;
}

/** The value of the one point of `name` whose attributes include `attributes`. */
function point(
  metrics: MetricData[],
  name: string,
  attributes: Record<string, string | number>,
): unknown {
  const points = (metric(metrics, name).dataPoints as Array<
    { attributes: Record<string, unknown>; value: unknown }
  >).filter((p) =>
    Object.keys(p.attributes).length === Object.keys(attributes).length &&
    Object.entries(attributes).every(([k, v]) => p.attributes[k] === v)
  );
  assert.equal(points.length, 1, `${name} ${JSON.stringify(attributes)}`);
  return points[0].value;
}

interface HistogramValue {
  count: number;
  sum: number;
  buckets: { boundaries: number[]; counts: number[] };
}

test("instrument() counts every result exactly, with the gauges, units and histograms of the contract", async () => {
  const { meter, collect, shutdown } = sdk();
  // Only the caller with a deadline times out: the others may wait as long
  // as a busy machine makes them.
  const limiter = new Limiter({ limit: 1, queue: 2 });
  const stop = instrument(limiter, { meter, name: "jobs" });
  const held = limiter.tryAcquire()!;
  await assert.rejects(limiter.acquire({ deadline: 30 }), {
    reason: "timeout",
  });
  const controller = new AbortController();
  const aborted = limiter.acquire({ signal: controller.signal });
  // Long enough that its wait is more than 0 on any clock.
  await new Promise((resolve) => setTimeout(resolve, 5));
  controller.abort();
  await assert.rejects(aborted);
  const granted = limiter.acquire();
  const second = limiter.acquire();
  assert.equal(limiter.tryAcquire(), undefined);
  await assert.rejects(limiter.acquire(), { reason: "full" });

  let metrics = await collect();
  const jobs = { "floodgate.name": "jobs" };
  assert.equal(point(metrics, "floodgate.active", jobs), 1);
  assert.equal(point(metrics, "floodgate.queued", jobs), 2);
  assert.equal(point(metrics, "floodgate.limit", jobs), 1);
  assert.equal(
    metric(metrics, "floodgate.active").dataPointType,
    DataPointType.GAUGE,
  );

  held.release();
  (await granted).release();
  (await second).release();
  await limiter.close();
  await assert.rejects(limiter.acquire(), { reason: "closed" });

  metrics = await collect();
  const requests = metric(metrics, "floodgate.requests");
  assert.equal(requests.dataPointType, DataPointType.SUM);
  assert.equal(requests.descriptor.unit, "{request}");
  const count = (result: string) =>
    point(metrics, "floodgate.requests", {
      ...jobs,
      "floodgate.result": result,
    });
  assert.deepEqual(
    ["admitted", "full", "timeout", "closed", "aborted"].map(count),
    [3, 2, 1, 1, 1],
  );
  assert.equal(point(metrics, "floodgate.active", jobs), 0);
  assert.equal(point(metrics, "floodgate.queued", jobs), 0);

  for (const name of ["floodgate.wait.duration", "floodgate.hold.duration"]) {
    const histogram = metric(metrics, name);
    assert.equal(histogram.dataPointType, DataPointType.HISTOGRAM);
    assert.equal(histogram.descriptor.unit, "s");
  }
  // The default priority is no attribute.
  const wait = point(
    metrics,
    "floodgate.wait.duration",
    jobs,
  ) as HistogramValue;
  // Only the four that queued (timed out, aborted, granted twice): the four
  // decided at once are counted by floodgate.requests alone.
  assert.equal(wait.count, 4);
  assert.deepEqual(
    wait.buckets.boundaries,
    [
      0.001,
      0.0025,
      0.005,
      0.01,
      0.025,
      0.05,
      0.1,
      0.25,
      0.5,
      1,
      2.5,
      5,
      10,
      30,
      60,
    ],
  );
  // The timed-out waiter waited 30 ms or more: in seconds, not ms.
  assert.ok(wait.sum >= 0.025 && wait.sum < 60, `sum ${wait.sum}`);
  const hold = point(
    metrics,
    "floodgate.hold.duration",
    jobs,
  ) as HistogramValue;
  assert.equal(hold.count, 3);

  stop();
  await shutdown();
});

test("instrument() records the priority of each request and no key", async () => {
  const { meter, collect, shutdown } = sdk();
  const fetch = throttle(() => new Response("ok"), {
    limit: 2,
    key: (request) => new URL(request.url).pathname,
    priority: (request) =>
      request.headers.get("x-urgent") ? 0 : request.method === "HEAD" ? 3 : 5,
  });
  instrument(fetch, { meter, name: "api" });
  await fetch(
    new Request("http://localhost/a", { headers: { "x-urgent": "1" } }),
  );
  await fetch(new Request("http://localhost/b"));
  await fetch(new Request("http://localhost/c"));
  await fetch(new Request("http://localhost/d", { method: "HEAD" }));
  const metrics = await collect();
  const api = { "floodgate.name": "api", "floodgate.result": "admitted" };
  assert.equal(
    point(metrics, "floodgate.requests", { ...api, "floodgate.priority": 0 }),
    1,
  );
  assert.equal(
    point(metrics, "floodgate.requests", { ...api, "floodgate.priority": 5 }),
    2,
  );
  // The default priority, given or not, is no attribute: one key less for
  // the SDK to hash on every record.
  assert.equal(point(metrics, "floodgate.requests", api), 1);
  assert.equal(
    (point(metrics, "floodgate.hold.duration", {
      "floodgate.name": "api",
    }) as HistogramValue).count,
    1,
  );
  for (const m of metrics) {
    for (const p of m.dataPoints as Array<{ attributes: object }>) {
      assert.deepEqual(
        Object.keys(p.attributes).filter((k) => !k.startsWith("floodgate.")),
        [],
      );
      assert.equal(JSON.stringify(p.attributes).includes('"/'), false);
    }
  }
  await shutdown();
});

test("instrument()'s stop function stops the counting and the gauges", async () => {
  const { meter, collect, shutdown } = sdk();
  const limiter = new Limiter({ limit: 1 });
  const stop = instrument(limiter, { meter });
  limiter.tryAcquire()?.release();
  const before = await collect();
  assert.equal(
    point(before, "floodgate.requests", {
      "floodgate.name": "default",
      "floodgate.result": "admitted",
    }),
    1,
  );
  const hold = { "floodgate.name": "default" };
  assert.equal(
    (point(before, "floodgate.hold.duration", hold) as HistogramValue).count,
    1,
  );
  stop();
  stop();
  limiter.tryAcquire()?.release();
  const held = limiter.tryAcquire();
  const after = await collect();
  assert.ok(held);
  // The SDK keeps the last values it read; none is read again.
  assert.equal(
    point(after, "floodgate.requests", {
      "floodgate.name": "default",
      "floodgate.result": "admitted",
    }),
    1,
  );
  assert.equal(limiter.active, 1);
  assert.equal(
    point(after, "floodgate.active", { "floodgate.name": "default" }),
    0,
  );
  held.release();
  assert.equal(
    (point(after, "floodgate.hold.duration", hold) as HistogramValue).count,
    1,
  );
  await shutdown();
});

test("instrument() refuses a second target under a name recorded already on the meter", async () => {
  const { meter, collect, shutdown } = sdk();
  const a = new Limiter({ limit: 5 });
  const b = new Limiter({ limit: 7 });
  const stopA = instrument(a, { meter });
  // The SDK keeps one value per series and collection: both under "default"
  // would report one limiter's figures as if they were all.
  assert.throws(
    () => instrument(b, { meter }),
    (e) => e instanceof TypeError && /"default"/.test(e.message),
  );
  const stopB = instrument(b, { meter, name: "b" });
  a.tryAcquire();
  b.tryAcquire();
  b.tryAcquire();
  const metrics = await collect();
  assert.equal(
    point(metrics, "floodgate.limit", { "floodgate.name": "default" }),
    5,
  );
  assert.equal(
    point(metrics, "floodgate.active", { "floodgate.name": "b" }),
    2,
  );
  // Stopped, the name is free again.
  stopA();
  instrument(b, { meter })();
  stopB();
  await shutdown();
});

test("instrument() uses the global meter by default and checks its input", () => {
  const limiter = new Limiter();
  // Without a global MeterProvider, the API's no-op meter records nothing.
  instrument(limiter)();
  assert.throws(() => instrument({} as never), TypeError);
  assert.throws(
    () => instrument(limiter, { name: 7 } as never),
    /option "name" must be a string, got 7/,
  );
  assert.throws(
    () => instrument(limiter, { meter: {} } as never),
    /option "meter" must be an OpenTelemetry Meter/,
  );
  assert.throws(
    () => instrument(limiter, { metre: 1 } as never),
    /unknown option "metre"/,
  );
});

test(`${runtime}: the OpenTelemetry example serves its metrics through the SDK's Prometheus exporter`, async () => {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = runtime === "deno"
    ? [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-sys",
      "examples/otel.mjs",
    ]
    : ["examples/otel.mjs"];
  const app = await startProcess(process.execPath, args, port, "/?work=1", {
    METRICS_PORT: String(metricsPort),
  });
  try {
    const statuses = await Promise.all(
      Array.from(
        { length: 5 },
        () =>
          fetch(`${app.url}/?work=300`, { signal: AbortSignal.timeout(10_000) })
            .then(async (r) => (await r.text(), r.status)),
      ),
    );
    assert.deepEqual(statuses.sort(), [200, 200, 200, 200, 503]);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`))
      .text();
    const line = (result: string) =>
      new RegExp(
        `^floodgate_requests_total\\{floodgate_name="app",floodgate_result="${result}"[^}]*\\} (\\d+)$`,
        "m",
      );
    // The readiness probe counts too.
    assert.equal(text.match(line("admitted"))?.[1], "5");
    assert.equal(text.match(line("full"))?.[1], "1");
    assert.match(text, /^# UNIT floodgate_wait_duration s$/m);
  } finally {
    await app.stop();
  }
});
