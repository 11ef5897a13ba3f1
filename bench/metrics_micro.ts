/**
 * What an observer costs per request, in process, as CPU time: a throttled
 * handler that returns a ready Response, called in a loop, without an observer,
 * with an empty one, with one whose methods do nothing, with prometheus()
 * and with instrument() into a real MeterProvider of
 * @opentelemetry/sdk-metrics; and, for scale, the bare SDK: the
 * Histogram.record call instrument() makes per request below the limit, with
 * the same attribute, and the two calls with two attributes it made before. Prints one JSON line: nanoseconds per call, medians.
 *
 * Runs on Deno and Bun as it is (`deno run -A bench/metrics_micro.ts`,
 * `bun bench/metrics_micro.ts`) and on Node from the npm build (bench/run.ts).
 */
import process from "node:process";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { throttle } from "../mod.ts";
import { prometheus } from "../prometheus.ts";
import { instrument } from "../otel.ts";
import { LATENCY_BUCKETS } from "../src/_metrics.ts";

// One response for every call: what is measured is the gate, not the
// runtime's Response constructor (about 15 µs on Node).
const response = new Response("hello");
const hello = () => response;
const request = new Request("http://localhost/");

function meter() {
  const reader = new PeriodicExportingMetricReader({
    exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
    exportIntervalMillis: 3_600_000,
  });
  return new MeterProvider({ readers: [reader] }).getMeter("bench");
}

function throttled(attach?: (gate: ReturnType<typeof throttle>) => void) {
  const gate = throttle(hello, { limit: 1000 });
  attach?.(gate);
  return () => gate(request);
}

const noop = () => {};
const sdkMeter = meter();
const advice = { explicitBucketBoundaries: [...LATENCY_BUCKETS] };
const wait = sdkMeter.createHistogram("w", { unit: "s", advice });
const hold = sdkMeter.createHistogram("h", { unit: "s", advice });
const one = { "floodgate.name": "default" };
const two = { "floodgate.name": "default", "floodgate.priority": 3 };

const cases: Record<string, () => unknown> = {
  "throttled, no observer": throttled(),
  "throttled + empty observer": throttled((gate) => gate.observe({})),
  "throttled + observer of no-ops": throttled((gate) =>
    gate.observe({ admitted: noop, rejected: noop, released: noop })
  ),
  "throttled + prometheus()": throttled((gate) => prometheus(gate)),
  "throttled + instrument() (sdk-metrics)": throttled((gate) =>
    instrument(gate, { meter: meter() })
  ),
  // What instrument() records per request below the limit: the hold, with
  // floodgate.name alone (a wait of 0 is only counted).
  "SDK alone: 1 Histogram.record, 1 attribute": () => {
    hold.record(0.00002, one);
  },
  // What it recorded before: the wait and the hold, with the priority too.
  "SDK alone: 2 Histogram.record, 2 attributes": () => {
    wait.record(0, two);
    hold.record(0.00002, two);
  },
};

/**
 * CPU time per call, ns: process CPU (so that time the scheduler gives to
 * other programs on a busy machine does not count), over rounds that visit
 * every case in turn; the median round.
 */
const CALLS = 200_000;
const ROUNDS = 15;
const perCall: Record<string, number[]> = {};
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, fn] of Object.entries(cases)) {
    const start = process.cpuUsage();
    for (let i = 0; i < CALLS; i++) fn();
    const used = process.cpuUsage(start);
    (perCall[name] ??= []).push((used.user + used.system) * 1000 / CALLS);
  }
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
console.log(JSON.stringify(
  Object.fromEntries(
    Object.entries(perCall).map(([name, ns]) => [name, Math.round(median(ns))]),
  ),
));
