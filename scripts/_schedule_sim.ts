/**
 * A deterministic virtual-time simulation of who gets the capacity: the real
 * `Limiter` under a fake clock, fed open-loop arrivals (seeded) from a set of
 * clients, each granted request holding its permit for a fixed time of
 * virtual time. While it runs, `setTimeout`, `clearTimeout` and
 * `performance.now` are replaced by the fake clock's (so queueTimeout,
 * deadlines and the measured hold times run on it too); they are restored
 * when it returns. For the fairness tests and bench/fairness_sim.ts.
 */
import { Limiter, type LimiterOptions, RejectedError } from "../mod.ts";
import { percentile } from "./_stats.ts";
import { random } from "./_simulator.ts";

/** One source of requests. */
export interface ClientSpec {
  name: string;
  /** Requests it offers a second (open loop: whatever happens to them). */
  rate: number;
  /** @default {undefined: the limiter's default, 3} */
  priority?: number;
  /** @default {undefined: 1} */
  weight?: number;
  /** The flow its requests name when the scenario uses flows. */
  flow?: string;
}

export interface Scenario {
  limiter: LimiterOptions;
  /** How long every granted request holds its permit, ms. */
  hold: number;
  /** How long the clients send, ms of virtual time. */
  duration: number;
  clients: ClientSpec[];
  /** Whether each request names its client (or its `flow`) as its flow. */
  flows: boolean;
  /**
   * `"poisson"`: exponential gaps between a client's requests; `"even"`:
   * equal gaps, each client starting at a random phase.
   *
   * @default {"poisson"}
   */
  arrivals?: "poisson" | "even";
  /** @default {1} */
  seed?: number;
}

/** What one client got. */
export interface ClientFigures {
  name: string;
  offered: number;
  /** Requests granted a permit. */
  served: number;
  /** Turned away as "full" (at once or evicted later). */
  rejected: number;
  /** Turned away as "timeout". */
  timedOut: number;
  /** served / offered. */
  goodput: number;
  /** Arrival to grant, ms, of every served request. */
  waits: number[];
  p99Wait: number;
  maxWait: number;
}

export interface SimResult {
  clients: ClientFigures[];
  /** By client name. */
  byName: Record<string, ClientFigures>;
  /**
   * Capacity used while clients sent: the weight of the holds completed by
   * the end of `duration`, over `limit * duration / hold`.
   */
  utilisation: number;
  /** The most `active` seen after any event. */
  maxActive: number;
}

interface Event {
  at: number;
  /** Ties break in scheduling order. */
  seq: number;
  fn: () => void;
}

/** A binary min-heap of events by time, then by scheduling order. */
class Agenda {
  readonly #items: Event[] = [];
  get size(): number {
    return this.#items.length;
  }
  peek(): Event | undefined {
    return this.#items[0];
  }
  push(event: Event): void {
    const a = this.#items;
    a.push(event);
    for (let i = a.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (!before(a[i], a[parent])) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }
  pop(): Event {
    const a = this.#items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

function before(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}

/** Virtual time, and the timers of the code under test on it. */
class VirtualClock {
  now = 0;
  readonly agenda = new Agenda();
  readonly #cancelled = new Set<number>();
  #seq = 0;

  at(at: number, fn: () => void): number {
    const seq = ++this.#seq;
    this.agenda.push({ at, seq, fn });
    return seq;
  }

  setTimeout = (fn: () => void, ms = 0): number =>
    this.at(this.now + Math.max(0, ms), fn);

  clearTimeout = (id: number): void => {
    this.#cancelled.add(id);
  };

  /** Runs every event due at the earliest pending time; false when none is. */
  step(): boolean {
    const first = this.agenda.peek();
    if (first === undefined) return false;
    this.now = first.at;
    while (this.agenda.peek()?.at === this.now) {
      const event = this.agenda.pop();
      if (this.#cancelled.delete(event.seq)) continue;
      event.fn();
    }
    return true;
  }
}

/** Lets the promise reactions of everything done at this instant run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 2; i++) await undefined;
}

/**
 * Runs `scenario` and returns what each client got. Throws if the limiter
 * and the simulation ever disagree on the capacity held.
 */
export async function simulate(scenario: Scenario): Promise<SimResult> {
  const clock = new VirtualClock();
  const real = {
    setTimeout: globalThis.setTimeout,
    clearTimeout: globalThis.clearTimeout,
    now: performance.now,
    stackTraceLimit: Error.stackTraceLimit,
  };
  // Most requests of an overload are turned away, each with an error whose
  // stack nobody reads: without it the simulation runs several times faster.
  Error.stackTraceLimit = 0;
  Object.assign(globalThis, {
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
  });
  performance.now = () => clock.now;
  try {
    return await run(scenario, clock);
  } finally {
    Object.assign(globalThis, {
      setTimeout: real.setTimeout,
      clearTimeout: real.clearTimeout,
    });
    performance.now = real.now;
    Error.stackTraceLimit = real.stackTraceLimit;
  }
}

async function run(
  scenario: Scenario,
  clock: VirtualClock,
): Promise<SimResult> {
  const { hold, duration, clients, flows } = scenario;
  const limiter = new Limiter(scenario.limiter);
  const limit = limiter.limit;
  const rand = random(scenario.seed ?? 1);
  const figures: ClientFigures[] = clients.map(({ name }) => ({
    name,
    offered: 0,
    served: 0,
    rejected: 0,
    timedOut: 0,
    goodput: 0,
    waits: [],
    p99Wait: NaN,
    maxWait: NaN,
  }));
  let held = 0;
  let usedInWindow = 0;
  let maxActive = 0;

  const send = (index: number) => {
    const client = clients[index];
    const mine = figures[index];
    const arrived = clock.now;
    const weight = client.weight ?? 1;
    mine.offered++;
    limiter.acquire({
      priority: client.priority,
      weight: client.weight,
      flow: flows ? client.flow ?? client.name : undefined,
    }).then((permit) => {
      mine.served++;
      mine.waits.push(clock.now - arrived);
      const taken = Math.min(weight, limit);
      held += taken;
      clock.setTimeout(() => {
        held -= taken;
        if (clock.now <= duration) usedInWindow += taken;
        permit.release();
      }, hold);
    }, (error) => {
      if (!(error instanceof RejectedError)) throw error;
      if (error.reason === "timeout") mine.timedOut++;
      else mine.rejected++;
    });
  };

  clients.forEach((client, index) => {
    if (client.rate <= 0) return;
    const gap = 1000 / client.rate;
    const even = scenario.arrivals === "even";
    const next = (at: number) => {
      if (at >= duration) return;
      clock.at(at, () => {
        send(index);
        next(at + (even ? gap : -Math.log(1 - rand()) * gap));
      });
    };
    next(even ? rand() * gap : -Math.log(1 - rand()) * gap);
  });

  while (clock.step()) {
    await settle();
    // Checked after every instant: the grants the simulation saw are the
    // capacity the limiter holds (so no reaction ran late), within limit.
    if (held !== limiter.active) {
      throw new Error(
        `simulation out of step at ${clock.now} ms: held ${held}, active ${limiter.active}`,
      );
    }
    if (limiter.active > maxActive) maxActive = limiter.active;
  }

  for (const f of figures) {
    f.goodput = f.offered === 0 ? 1 : f.served / f.offered;
    f.p99Wait = percentile(f.waits, 99);
    f.maxWait = f.waits.reduce((a, b) => a > b ? a : b, NaN);
  }
  return {
    clients: figures,
    byName: Object.fromEntries(figures.map((f) => [f.name, f])),
    utilisation: usedInWindow / (limit * duration / hold),
    maxActive,
  };
}

/** The fairness scenario of issue 10: one heavy client, nine light ones. */
export function fairnessScenario(
  flows: boolean,
  options: { duration?: number; seed?: number; arrivals?: "poisson" | "even" } =
    {},
): Scenario {
  return {
    limiter: { limit: 8, queue: 64 },
    hold: 10,
    duration: options.duration ?? 10_000,
    clients: [
      { name: "heavy", rate: 2000 },
      ...Array.from({ length: 9 }, (_, i) => ({
        name: `light${i + 1}`,
        rate: 40,
      })),
    ],
    flows,
    arrivals: options.arrivals,
    seed: options.seed,
  };
}

/**
 * The priority scenario of issue 10: 3x overload, 30% at priority 0 and 70%
 * at priority 7, `headroom: 0.25`.
 */
export function priorityScenario(
  queue: number,
  options: { duration?: number; seed?: number; arrivals?: "poisson" | "even" } =
    {},
): Scenario {
  const capacity = 8 * 1000 / 10;
  return {
    limiter: { limit: 8, queue, headroom: 0.25 },
    hold: 10,
    duration: options.duration ?? 10_000,
    clients: [
      { name: "urgent", rate: 0.3 * 3 * capacity, priority: 0 },
      { name: "batch", rate: 0.7 * 3 * capacity, priority: 7 },
    ],
    flows: false,
    arrivals: options.arrivals,
    seed: options.seed,
  };
}

/**
 * The weight scenario of issue 10 at limit 16: four tenants, each sending
 * weight-1 requests and weight-8 ones, 2x the capacity in total.
 */
export function weightScenario(
  flows: boolean,
  options: { duration?: number; seed?: number; queue?: number } = {},
): Scenario {
  return {
    limiter: { limit: 16, queue: options.queue ?? 64 },
    hold: 10,
    duration: options.duration ?? 10_000,
    clients: ["a", "b", "c", "d"].flatMap((tenant) => [
      { name: `${tenant}.narrow`, flow: tenant, rate: 600 },
      { name: `${tenant}.wide`, flow: tenant, rate: 25, weight: 8 },
    ]),
    flows,
    seed: options.seed,
  };
}
