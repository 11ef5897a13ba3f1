import { type WaitNode, WaitQueue } from "./_queue.ts";

/** What the line needs to know of a waiter (see WaitNode). */
export interface Queued extends WaitNode {
  priority: number;
  weight: number;
  flowName: string | undefined;
  /** The flow it waits in, while it waits. */
  flow: Flow | undefined;
}

/** The waiters of one flow at one priority, in arrival order. */
class Flow implements WaitNode {
  prev: WaitNode | undefined = undefined;
  next: WaitNode | undefined = undefined;
  queued = false;
  readonly waiters = new WaitQueue<Queued>();
  readonly name: string | undefined;
  /** Their weight. */
  weight = 0;
  /** Deficit round-robin: the weight it may still be granted this turn. */
  deficit = 0;

  constructor(name: string | undefined) {
    this.name = name;
  }
}

/** The waiters of one priority: backlogged flows in a ring. */
class Level {
  /** Flows in the order in which they last became backlogged. */
  readonly ring = new WaitQueue<Flow>();
  /** The flow of waiters that named none, kept out of the map. */
  shared: Flow | undefined = undefined;
  /** The named flows, made on first use. */
  flows: Map<string, Flow> | undefined = undefined;
  /** The flow whose turn it is, once it got its quantum. */
  current: Flow | undefined = undefined;
  size = 0;
  weight = 0;
  /**
   * The quantum of a turn: the largest weight queued since the level was
   * last empty, so that every turn can grant its flow's first waiter.
   */
  quantum = 1;
}

/** The lowest set bit of a non-zero mask, as an index. */
const lowestBit = (mask: number) => 31 - Math.clz32(mask & -mask);
/** The highest set bit of a non-zero mask, as an index. */
const highestBit = (mask: number) => 31 - Math.clz32(mask);

/**
 * The waiters of a limiter in grant order: the most urgent priority first;
 * within one priority, flows take turns by deficit round-robin; within one
 * flow, oldest or newest first. Pushing, removing and finding the first
 * waiter are O(1): eight priorities, a bit mask of the non-empty ones, and
 * a ring of flows each. A flow or priority with nobody waiting is dropped,
 * so a million flows that came and went leave nothing behind.
 */
export class WaitLine<T extends Queued> {
  readonly #levels: Array<Level | undefined> = [];
  /** Bit `p` is set while priority `p` has waiters. */
  #mask = 0;
  size = 0;

  /** Whether anyone waits at `priority` or a more urgent one. */
  hasWaitersAtOrAbove(priority: number): boolean {
    return (this.#mask & ((2 << priority) - 1)) !== 0;
  }

  push(waiter: T): void {
    const p = waiter.priority;
    let level = this.#levels[p];
    if (level === undefined) {
      level = this.#levels[p] = new Level();
      this.#mask |= 1 << p;
    }
    const name = waiter.flowName;
    let flow = name === undefined ? level.shared : level.flows?.get(name);
    if (flow === undefined) {
      flow = new Flow(name);
      if (name === undefined) level.shared = flow;
      else (level.flows ??= new Map()).set(name, flow);
      level.ring.push(flow);
    }
    flow.waiters.push(waiter);
    waiter.flow = flow;
    flow.weight += waiter.weight;
    level.size++;
    level.weight += waiter.weight;
    if (waiter.weight > level.quantum) level.quantum = waiter.weight;
    this.size++;
  }

  /**
   * The waiter to grant next, left in place. Settles whose turn it is: a
   * flow whose deficit cannot cover its first waiter passes the turn on.
   */
  first(newest: boolean): T | undefined {
    if (this.#mask === 0) return undefined;
    const level = this.#levels[lowestBit(this.#mask)]!;
    let flow = level.current;
    if (flow === undefined || flow.deficit < headOf(flow, newest).weight) {
      if (flow !== undefined) {
        // Its turn is over: to the back of the ring, keeping its deficit.
        level.ring.remove(flow);
        level.ring.push(flow);
      }
      flow = level.current = level.ring.oldest!;
      flow.deficit += level.quantum;
    }
    return headOf(flow, newest) as T;
  }

  /** Takes `waiter`, found by `first()`, out to be granted. */
  take(waiter: T): void {
    waiter.flow!.deficit -= waiter.weight;
    this.remove(waiter);
  }

  /** Takes `waiter` out of the line; does nothing if it is not in it. */
  remove(waiter: T): void {
    const flow = waiter.flow;
    if (flow === undefined) return;
    waiter.flow = undefined;
    flow.waiters.remove(waiter);
    flow.weight -= waiter.weight;
    const p = waiter.priority;
    const level = this.#levels[p]!;
    level.size--;
    level.weight -= waiter.weight;
    this.size--;
    if (flow.waiters.size !== 0) return;
    level.ring.remove(flow);
    if (flow.name === undefined) level.shared = undefined;
    else level.flows!.delete(flow.name);
    if (level.current === flow) level.current = undefined;
    if (level.size !== 0) return;
    this.#levels[p] = undefined;
    this.#mask &= ~(1 << p);
  }

  /**
   * Who a full line gives up for a newcomer (P4): the newest waiter of the
   * longest flow of the least urgent priority, if that is less urgent than
   * the newcomer; else, at the newcomer's priority, the newest of a flow
   * with at least two more waiters than the newcomer's own. `undefined`
   * when the newcomer is the one to turn away.
   */
  evictionFor(priority: number, flowName: string | undefined): T | undefined {
    if (this.#mask === 0) return undefined;
    const least = highestBit(this.#mask);
    if (least > priority) {
      return longestFlowOf(this.#levels[least]!).waiters.newest as T;
    }
    const level = this.#levels[priority];
    if (level === undefined) return undefined;
    const longest = longestFlowOf(level);
    const own = flowOf(level, flowName)?.waiters.size ?? 0;
    return longest.waiters.size >= own + 2
      ? longest.waiters.newest as T
      : undefined;
  }

  /**
   * About how much weight would be granted before a newcomer: everything
   * queued more urgently, and at its own priority what the turns of the
   * other flows grant until its own flow reaches it.
   */
  weightAhead(
    priority: number,
    flowName: string | undefined,
    newest: boolean,
  ): number {
    const ahead = priority === 0 ? 0 : this.weightAtOrAbove(priority - 1);
    const level = this.#levels[priority];
    if (level === undefined) return ahead;
    const own = flowOf(level, flowName);
    const inFlow = newest || own === undefined ? 0 : own.weight;
    const others = level.ring.size - (own === undefined ? 0 : 1);
    return ahead +
      Math.min(level.weight, inFlow + others * Math.max(inFlow, 1));
  }

  /** The weight queued at `priority` or more urgently. */
  weightAtOrAbove(priority: number): number {
    let weight = 0;
    for (let mask = this.#mask & ((2 << priority) - 1); mask !== 0;) {
      const p = lowestBit(mask);
      weight += this.#levels[p]!.weight;
      mask &= ~(1 << p);
    }
    return weight;
  }

  /** The oldest waiter of the flow a full line would evict from first. */
  oldestOfLeastUrgent(): T | undefined {
    if (this.#mask === 0) return undefined;
    const level = this.#levels[highestBit(this.#mask)]!;
    return longestFlowOf(level).waiters.oldest as T;
  }

  /** Every waiter, left in place, in no particular order. */
  *all(): Generator<T> {
    for (const level of this.#levels) {
      if (level === undefined) continue;
      for (let f = level.ring.oldest; f; f = f.next as Flow | undefined) {
        for (let w = f.waiters.oldest; w; w = w.next as Queued | undefined) {
          yield w as T;
        }
      }
    }
  }

  /** Takes every waiter out, most urgent first. */
  *drain(): Generator<T> {
    for (let w = this.first(false); w !== undefined; w = this.first(false)) {
      this.remove(w);
      yield w;
    }
  }
}

function flowOf(level: Level, name: string | undefined): Flow | undefined {
  return name === undefined ? level.shared : level.flows?.get(name);
}

function headOf(flow: Flow, newest: boolean): Queued {
  return (newest ? flow.waiters.newest : flow.waiters.oldest)!;
}

/** Scans the flows of one priority: only on the way to a full line's eviction. */
function longestFlowOf(level: Level): Flow {
  let longest = level.ring.oldest!;
  for (let f = longest.next as Flow | undefined; f; f = f.next as Flow) {
    if (f.waiters.size > longest.waiters.size) longest = f;
  }
  return longest;
}
