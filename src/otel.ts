import {
  type Attributes,
  type BatchObservableCallback,
  type Meter,
  metrics,
} from "@opentelemetry/api";
import {
  isMetricsTarget,
  LATENCY_BUCKETS,
  type MetricsTarget,
} from "./_metrics.ts";
import { checkOptionsObject, show } from "./_options.ts";

export type { MetricsTarget };

/** Options for {@linkcode instrument}. */
export interface InstrumentOptions {
  /**
   * The meter that makes the instruments.
   *
   * @default {metrics.getMeter("floodgate") of the global MeterProvider}
   */
  meter?: Meter;
  /**
   * The value of the `floodgate.name` attribute, to tell targets apart.
   *
   * @default {"default"}
   */
  name?: string;
}

/** Attributes of one target and priority, made once and reused. */
function attributeSets(name: string) {
  const byPriority: Attributes[] = [];
  const byResult = new Map<string, Attributes>();
  return {
    priority(priority: number): Attributes {
      return byPriority[priority] ??= {
        "floodgate.name": name,
        "floodgate.priority": priority,
      };
    },
    result(result: string, priority: number): Attributes {
      const id = `${result}/${priority}`;
      let attributes = byResult.get(id);
      if (attributes === undefined) {
        attributes = {
          "floodgate.name": name,
          "floodgate.result": result,
          "floodgate.priority": priority,
        };
        byResult.set(id, attributes);
      }
      return attributes;
    },
  };
}

/**
 * Records the events and load of `target` with OpenTelemetry metrics:
 *
 * - `floodgate.requests`, a counter of requests decided, with attribute
 *   `floodgate.result`: `admitted`, `full`, `timeout`, `closed` or
 *   `aborted`;
 * - `floodgate.active`, `floodgate.queued` and `floodgate.limit`, observable
 *   gauges (an infinite limit is not reported);
 * - `floodgate.wait.duration` (every request decided, 0 for those decided at
 *   once) and `floodgate.hold.duration` (every permit given back),
 *   histograms in seconds, with buckets from 1 ms to 60 s advised.
 *
 * Every measurement has attribute `floodgate.name`; those of an event also
 * `floodgate.priority` (0-7, 3 where none was given). Keys are never
 * attributes: their number is unbounded.
 *
 * @example With the SDK's Prometheus exporter
 * ```ts
 * import { MeterProvider } from "@opentelemetry/sdk-metrics";
 * import { throttle } from "@floodgate/floodgate";
 * import { instrument } from "@floodgate/floodgate/otel";
 *
 * const provider = new MeterProvider();
 * const app = throttle((_request: Request) => new Response("hello"));
 * const stop = instrument(app, {
 *   meter: provider.getMeter("my-app"),
 *   name: "app",
 * });
 * await app(new Request("http://localhost/"));
 * stop();
 * ```
 *
 * @param target A `Limiter`, a throttled handler or a Hono middleware.
 * @param options The `meter` and the `name` attribute.
 * @returns A function that stops recording.
 * @throws {TypeError} If `target` has no `observe()` and `stats()`, or an
 * option has the wrong type.
 */
export function instrument(
  target: MetricsTarget,
  options?: InstrumentOptions,
): () => void {
  if (!isMetricsTarget(target)) {
    throw new TypeError(
      `floodgate/otel: instrument() takes a Limiter, a throttled handler or a middleware, got ${
        show(target)
      }`,
    );
  }
  const given = checkOptionsObject(options, ["meter", "name"]);
  const name = given.name ?? "default";
  if (typeof name !== "string") {
    throw new TypeError(
      `floodgate: option "name" must be a string, got ${show(name)}`,
    );
  }
  const meter = (given.meter ?? metrics.getMeter("floodgate")) as Meter;
  if (typeof (meter as Partial<Meter> | null)?.createCounter !== "function") {
    throw new TypeError(
      `floodgate: option "meter" must be an OpenTelemetry Meter, got ${
        show(meter)
      }`,
    );
  }

  const requests = meter.createCounter("floodgate.requests", {
    description: "Requests the gate decided on, by result.",
    unit: "{request}",
  });
  const advice = { explicitBucketBoundaries: [...LATENCY_BUCKETS] };
  const wait = meter.createHistogram("floodgate.wait.duration", {
    description: "Time in the queue of every request decided.",
    unit: "s",
    advice,
  });
  const hold = meter.createHistogram("floodgate.hold.duration", {
    description: "Time from grant to release of every permit given back.",
    unit: "s",
    advice,
  });
  const active = meter.createObservableGauge("floodgate.active", {
    description: "Capacity held now.",
    unit: "{permit}",
  });
  const queued = meter.createObservableGauge("floodgate.queued", {
    description: "Callers waiting now.",
    unit: "{request}",
  });
  const limit = meter.createObservableGauge("floodgate.limit", {
    description: "The current limit.",
    unit: "{permit}",
  });

  const sets = attributeSets(name);
  const plain: Attributes = { "floodgate.name": name };
  const observe: BatchObservableCallback = (result) => {
    const stats = target.stats();
    result.observe(active, stats.active, plain);
    result.observe(queued, stats.queued, plain);
    if (stats.limit !== Infinity) result.observe(limit, stats.limit, plain);
  };
  const gauges = [active, queued, limit];
  meter.addBatchObservableCallback(observe, gauges);
  const unobserve = target.observe({
    admitted(event) {
      const attributes = sets.priority(event.priority);
      requests.add(1, sets.result("admitted", event.priority));
      wait.record(event.wait / 1000, attributes);
    },
    rejected(event) {
      requests.add(1, sets.result(event.reason, event.priority));
      wait.record(event.wait / 1000, sets.priority(event.priority));
    },
    released(event) {
      hold.record(event.hold / 1000, sets.priority(event.priority));
    },
  });
  let stopped = false;
  return function stop() {
    if (stopped) return;
    stopped = true;
    unobserve();
    meter.removeBatchObservableCallback(observe, gauges);
  };
}
