import {
  type Attributes,
  type BatchObservableCallback,
  type Histogram,
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

/** What the targets recorded under one name on one meter share. */
interface Group {
  readonly tally: Tally;
  readonly wait: Histogram;
  readonly hold: Histogram;
  readonly attributes: (priority: number) => Attributes;
  /** The targets recorded now; the gauges report their sum. */
  readonly targets: MetricsTarget[];
  /** Stops reading the gauges and the counter, once no target is left. */
  close(): void;
}

/**
 * The groups of each meter, by name. The SDK keeps one value per series and
 * collection, so two callbacks that observed the same series would leave
 * only the last one's: the targets of one name are read by one callback,
 * which reports their sum (as a keyed gate sums its keys).
 */
const groups = new WeakMap<Meter, Map<string, Group>>();

function groupOf(meter: Meter, name: string): Group {
  let byName = groups.get(meter);
  if (byName === undefined) groups.set(meter, byName = new Map());
  const found = byName.get(name);
  if (found !== undefined) return found;

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
  const targets: MetricsTarget[] = [];
  const plain: Attributes = { "floodgate.name": name };
  const observe: BatchObservableCallback = (result) => {
    for (const { attributes, n } of tally.entries()) {
      result.observe(requests, n, attributes);
    }
    let held = 0, waiting = 0, most = 0;
    for (const target of targets) {
      const stats = target.stats();
      held += stats.active;
      waiting += stats.queued;
      most += stats.limit;
    }
    result.observe(active, held, plain);
    result.observe(queued, waiting, plain);
    if (most !== Infinity) result.observe(limit, most, plain);
  };
  const gauges = [requests, active, queued, limit];
  meter.addBatchObservableCallback(observe, gauges);
  const group: Group = {
    tally,
    wait,
    hold,
    attributes,
    targets,
    close() {
      byName.delete(name);
      meter.removeBatchObservableCallback(observe, gauges);
    },
  };
  byName.set(name, group);
  return group;
}

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
 * attributes: their number is unbounded. Targets recorded under the same
 * name on the same meter are reported as one: their counts, `active`,
 * `queued` and `limit` summed.
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

  const group = groupOf(meter, name);
  const { tally, wait, hold, attributes } = group;
  const admitted = tally.admitted;
  let unobserve: () => void;
  try {
    unobserve = target.observe({
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
  } catch (error) {
    // A target that cannot be observed leaves no callback behind.
    if (group.targets.length === 0) group.close();
    throw error;
  }
  group.targets.push(target);
  let stopped = false;
  return function stop() {
    if (stopped) return;
    stopped = true;
    unobserve();
    group.targets.splice(group.targets.indexOf(target), 1);
    if (group.targets.length === 0) group.close();
  };
}
