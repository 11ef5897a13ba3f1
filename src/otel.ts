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

/** The priority of a request that gave none; it is not an attribute. */
const DEFAULT_PRIORITY = 3;

/**
 * The attributes of each priority, made once: `floodgate.name`, plus
 * `floodgate.priority` where the priority is not the default (every
 * attribute costs a record its share of the SDK's hashing).
 */
function attributesByPriority(name: string): (priority: number) => Attributes {
  const made: Attributes[] = [];
  return (priority) =>
    made[priority] ??= priority === DEFAULT_PRIORITY
      ? { "floodgate.name": name }
      : { "floodgate.name": name, "floodgate.priority": priority };
}

/**
 * Requests counted by result and priority, between collections. The counter
 * is reported when metrics are collected: a request costs an increment, not
 * a call into the SDK, which hashes the attributes on every call.
 */
class Tally {
  readonly #attributes: (priority: number) => Attributes;
  /** Counts by result, each by priority. */
  readonly #counts = new Map<string, number[]>();
  /** The counts of `admitted`, the common result, at hand. */
  readonly admitted: number[];
  /** The attributes of each count, by result, made once. */
  readonly #made = new Map<string, Attributes[]>();

  /** `attributes` gives those of a priority, without the result. */
  constructor(attributes: (priority: number) => Attributes) {
    this.#attributes = attributes;
    this.admitted = this.of("admitted");
  }

  /** The counts of `result` by priority. */
  of(result: string): number[] {
    let counts = this.#counts.get(result);
    if (counts === undefined) {
      this.#counts.set(result, counts = new Array<number>(8).fill(0));
    }
    return counts;
  }

  /** Every count since `instrument()`, with its attributes. */
  *entries(): Iterable<{ attributes: Attributes; n: number }> {
    for (const [result, counts] of this.#counts) {
      let made = this.#made.get(result);
      if (made === undefined) this.#made.set(result, made = []);
      for (let priority = 0; priority < counts.length; priority++) {
        const n = counts[priority];
        if (n === 0) continue;
        const attributes = made[priority] ??= {
          ...this.#attributes(priority),
          "floodgate.result": result,
        };
        yield { attributes, n };
      }
    }
  }
}

/** The names recorded now on each meter. */
const recording = new WeakMap<Meter, Set<string>>();

/**
 * Records the events and load of `target` with OpenTelemetry metrics:
 *
 * - `floodgate.requests`, a counter of requests decided (asynchronous:
 *   counted in place and reported at each collection), with attribute
 *   `floodgate.result`: `admitted`, `full`, `timeout`, `closed` or
 *   `aborted`;
 * - `floodgate.active`, `floodgate.queued` and `floodgate.limit`, observable
 *   gauges (an infinite limit is not reported);
 * - `floodgate.wait.duration` (the time in the queue of every request that
 *   queued, admitted or turned away after its wait; a request decided at
 *   once is only counted) and `floodgate.hold.duration` (every permit given
 *   back), histograms in seconds, with buckets from 1 ms to 60 s advised.
 *
 * Every measurement has attribute `floodgate.name`; those of an event also
 * `floodgate.priority` (0-7) where it is not the default, 3. Keys are never
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
 * @throws {TypeError} If `target` has no `observe()` and `stats()`, an
 * option has the wrong type, or another target is recorded under `name` on
 * `meter` (until its `stop()`).
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

  // The SDK keeps one value per series and collection: two targets read
  // under one name would leave only the last one's figures.
  let names = recording.get(meter);
  if (names === undefined) recording.set(meter, names = new Set());
  if (names.has(name)) {
    throw new TypeError(
      `floodgate/otel: a target is recorded as ${
        show(name)
      } on this meter already; give each its own name`,
    );
  }
  names.add(name);

  const requests = meter.createObservableCounter("floodgate.requests", {
    description: "Requests the gate decided on, by result.",
    unit: "{request}",
  });
  const advice = { explicitBucketBoundaries: [...LATENCY_BUCKETS] };
  const wait = meter.createHistogram("floodgate.wait.duration", {
    description: "Time in the queue of every request that queued.",
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

  const attributes = attributesByPriority(name);
  const tally = new Tally(attributes);
  const admitted = tally.admitted;
  const plain: Attributes = { "floodgate.name": name };
  const observe: BatchObservableCallback = (result) => {
    for (const { attributes, n } of tally.entries()) {
      result.observe(requests, n, attributes);
    }
    const stats = target.stats();
    result.observe(active, stats.active, plain);
    result.observe(queued, stats.queued, plain);
    if (stats.limit !== Infinity) result.observe(limit, stats.limit, plain);
  };
  const gauges = [requests, active, queued, limit];
  meter.addBatchObservableCallback(observe, gauges);
  const unobserve = target.observe({
    // A decision made at once waited 0 and is in the counter already: the
    // wait histogram takes only the requests that queued, so that a request
    // below the limit costs one record into the SDK, not two.
    admitted(event) {
      admitted[event.priority]++;
      if (event.wait !== 0) {
        wait.record(event.wait / 1000, attributes(event.priority));
      }
    },
    rejected(event) {
      tally.of(event.reason)[event.priority]++;
      if (event.wait !== 0) {
        wait.record(event.wait / 1000, attributes(event.priority));
      }
    },
    released(event) {
      hold.record(event.hold / 1000, attributes(event.priority));
    },
  });
  let stopped = false;
  return function stop() {
    if (stopped) return;
    stopped = true;
    unobserve();
    meter.removeBatchObservableCallback(observe, gauges);
    names.delete(name);
  };
}
