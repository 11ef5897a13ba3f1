/**
 * The memory of a scrape target under one million distinct keys: a keyed
 * throttled handler observed by prometheus() and by instrument() (into a
 * real MeterProvider), sent 1,000,000 requests with a key each. Keys are
 * forgotten when idle and never become labels or attributes, so the heap
 * after them and the size of a scrape must stay flat. Prints one JSON line.
 *
 * deno run -A --v8-flags=--expose-gc bench/metrics_memory.ts |
 * bun bench/metrics_memory.ts | node --expose-gc npm/bench/metrics_memory.js
 */
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import { throttle } from "../mod.ts";
import { instrument } from "../otel.ts";
import { prometheus } from "../prometheus.ts";
import { settledHeap } from "../scripts/_heap.ts";

const KEYS = 1_000_000;

const reader = new PeriodicExportingMetricReader({
  exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
  exportIntervalMillis: 3_600_000,
});
const provider = new MeterProvider({ readers: [reader] });
const handler = throttle(() => new Response("ok"), {
  limit: 1,
  key: (request) => request.url,
});
const metrics = prometheus(handler);
instrument(handler, { meter: provider.getMeter("bench") });

const scrapeBytes = async () =>
  (await metrics(new Request("http://x/metrics")).text()).length;

// Warm up, so that what is measured is growth, not the first allocations.
for (let i = 0; i < 10_000; i++) await handler(new Request(`http://x/w${i}`));
await reader.forceFlush();
const heapBefore = await settledHeap();
const scrapeBefore = await scrapeBytes();
const started = performance.now();
for (let i = 0; i < KEYS; i++) await handler(new Request(`http://x/${i}`));
const seconds = (performance.now() - started) / 1000;
await reader.forceFlush();
const heapAfter = await settledHeap();
const scrapeAfter = await scrapeBytes();
const stats = handler.stats();
if (stats.admitted !== KEYS + 10_000 || stats.keys !== 0) {
  throw new Error(`unexpected stats ${JSON.stringify(stats)}`);
}
console.log(JSON.stringify({
  keys: KEYS,
  heapBefore,
  heapAfter,
  heapGrowth: heapAfter - heapBefore,
  scrapeBefore,
  scrapeAfter,
  seconds,
}));
