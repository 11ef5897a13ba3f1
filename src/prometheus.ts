import {
  isMetricsTarget,
  LATENCY_BUCKETS,
  type MetricsTarget,
  RESULTS,
} from "./_metrics.ts";
import type {
  AdmittedEvent,
  RejectedEvent,
  ReleasedEvent,
} from "./_observe.ts";
import { show } from "./_options.ts";

export type { MetricsTarget };

/** A target with the value of its `name` label. */
export interface NamedTarget {
  /** The `name` label of its series. */
  name: string;
  /** The limiter, throttled handler or middleware to report. */
  target: MetricsTarget;
}

/**
 * What {@linkcode prometheus} reports: one target (named `"default"`), or an
 * array of targets and `{ name, target }` pairs.
 */
export type PrometheusTargets =
  | MetricsTarget
  | ReadonlyArray<MetricsTarget | NamedTarget>;

/** A fetch handler that answers with the metrics. */
export type MetricsHandler = (request: Request) => Response;

/** A histogram of seconds with {@linkcode LATENCY_BUCKETS}. */
class Histogram {
  /** Observations per bucket (not cumulative); the last is `+Inf`. */
  readonly counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }
}

/** The counters and histograms of one target, fed by its events. */
class Series {
  readonly name: string;
  readonly target: MetricsTarget;
  /** Requests by result; a reason beyond the five gets a result of its own. */
  readonly requests: Record<string, number> = Object.fromEntries(
    RESULTS.map((r) => [r, 0]),
  );
  readonly wait = new Histogram();
  readonly hold = new Histogram();

  constructor(name: string, target: MetricsTarget) {
    this.name = name;
    this.target = target;
    target.observe({
      admitted: (event: AdmittedEvent) => {
        this.requests.admitted++;
        this.wait.observe(event.wait / 1000);
      },
      rejected: (event: RejectedEvent) => {
        this.requests[event.reason] = (this.requests[event.reason] ?? 0) + 1;
        this.wait.observe(event.wait / 1000);
      },
      released: (event: ReleasedEvent) => this.hold.observe(event.hold / 1000),
    });
  }
}

/** A label value, escaped as the text format requires. */
function escape(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => c === "\n" ? "\\n" : `\\${c}`);
}

/** A sample value in the text format. */
function number(value: number): string {
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function checkTargets(targets: unknown): Series[] {
  const list = Array.isArray(targets) ? targets : [targets];
  const names = new Set<string>();
  return list.map((item: unknown) => {
    let name = "default";
    let target = item;
    if (!isMetricsTarget(item)) {
      const named = item as Partial<NamedTarget> | null;
      if (typeof named?.name !== "string") {
        throw new TypeError(
          `floodgate/prometheus: a target must be a Limiter, a throttled handler, a middleware or a { name, target } pair, got ${
            show(item)
          }`,
        );
      }
      name = named.name;
      target = named.target;
      if (!isMetricsTarget(target)) {
        throw new TypeError(
          `floodgate/prometheus: target "${name}" must be a Limiter, a throttled handler or a middleware, got ${
            show(target)
          }`,
        );
      }
    }
    // What the response will carry: a lone surrogate becomes U+FFFD.
    name = new TextDecoder().decode(new TextEncoder().encode(name));
    if (names.has(name)) {
      throw new TypeError(
        `floodgate/prometheus: two targets are named ${show(name)}`,
      );
    }
    names.add(name);
    return new Series(name, target as MetricsTarget);
  });
}

function histogram(
  lines: string[],
  family: string,
  help: string,
  series: Series[],
  pick: (s: Series) => Histogram,
): void {
  lines.push(`# HELP ${family} ${help}`, `# TYPE ${family} histogram`);
  for (const s of series) {
    const h = pick(s);
    const name = `name="${escape(s.name)}"`;
    let cumulative = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      cumulative += h.counts[i];
      lines.push(
        `${family}_bucket{${name},le="${LATENCY_BUCKETS[i]}"} ${cumulative}`,
      );
    }
    lines.push(
      `${family}_bucket{${name},le="+Inf"} ${h.count}`,
      `${family}_sum{${name}} ${number(h.sum)}`,
      `${family}_count{${name}} ${h.count}`,
    );
  }
}

/** The text exposition format of `series`. */
function exposition(series: Series[]): string {
  const lines: string[] = [
    "# HELP floodgate_requests_total Requests the gate decided on, by result.",
    "# TYPE floodgate_requests_total counter",
  ];
  for (const s of series) {
    for (const [result, count] of Object.entries(s.requests)) {
      lines.push(
        `floodgate_requests_total{name="${
          escape(s.name)
        }",result="${result}"} ${count}`,
      );
    }
  }
  const stats = series.map((s) => s.target.stats());
  const gauges = [
    ["floodgate_active", "Capacity held now.", "active"],
    ["floodgate_queued", "Callers waiting now.", "queued"],
    ["floodgate_limit", "The current limit.", "limit"],
  ] as const;
  for (const [family, help, field] of gauges) {
    lines.push(`# HELP ${family} ${help}`, `# TYPE ${family} gauge`);
    series.forEach((s, i) =>
      lines.push(
        `${family}{name="${escape(s.name)}"} ${number(stats[i][field])}`,
      )
    );
  }
  histogram(
    lines,
    "floodgate_wait_seconds",
    "Time in the queue of every request decided, 0 for those decided at once.",
    series,
    (s) => s.wait,
  );
  histogram(
    lines,
    "floodgate_hold_seconds",
    "Time from grant to release of every permit given back.",
    series,
    (s) => s.hold,
  );
  return lines.join("\n") + "\n";
}

const HEADERS = {
  "content-type": "text/plain; version=0.0.4; charset=utf-8",
  "cache-control": "no-store",
};

/**
 * Makes a fetch handler that answers every request with the metrics of
 * `targets` in the Prometheus text exposition format 0.0.4, for a
 * `/metrics` route. It starts observing at once: counters count from here.
 *
 * Families, each with a `name` label: `floodgate_requests_total` (counter,
 * label `result`: `admitted`, `full`, `timeout`, `closed`, `aborted`),
 * `floodgate_active`, `floodgate_queued`, `floodgate_limit` (gauges),
 * `floodgate_wait_seconds` and `floodgate_hold_seconds` (histograms with
 * buckets from 1 ms to 60 s). Keys never become labels: a keyed gate is one
 * series, summed over its keys.
 *
 * @example A /metrics route beside the throttled app
 * ```ts
 * import { throttle } from "@floodgate/floodgate";
 * import { prometheus } from "@floodgate/floodgate/prometheus";
 *
 * const app = throttle((_request: Request) => new Response("hello"), {
 *   limit: 100,
 * });
 * const metrics = prometheus([{ name: "app", target: app }]);
 * const fetch = (request: Request) =>
 *   new URL(request.url).pathname === "/metrics"
 *     ? metrics(request)
 *     : app(request);
 * await fetch(new Request("http://localhost/"));
 * const response = await fetch(new Request("http://localhost/metrics"));
 * const text = await response.text();
 * console.log(text.includes('floodgate_requests_total{name="app",result="admitted"} 1')); // true
 * ```
 *
 * @param targets A limiter, throttled handler or middleware, or an array of
 * them and `{ name, target }` pairs; the name becomes the `name` label
 * (`"default"` for a target given without one).
 * @returns The fetch handler.
 * @throws {TypeError} If a target has no `observe()` and `stats()`, or two
 * have the same name.
 */
export function prometheus(targets: PrometheusTargets): MetricsHandler {
  const series = checkTargets(targets);
  return function metrics(request: Request): Response {
    const body = request.method === "HEAD" ? null : exposition(series);
    return new Response(body, { headers: HEADERS });
  };
}
