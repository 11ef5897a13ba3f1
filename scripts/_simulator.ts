import type { LimitAlgorithm } from "../mod.ts";

/**
 * A deterministic model of a server behind an adaptive limit, on a virtual
 * clock. The server has `capacity` C: while at most C requests run, each takes
 * its base service time (with seeded jitter); beyond C they share it
 * (processor sharing), so each takes longer in proportion. Clients keep a
 * fixed number of requests outstanding; those over the limit wait in a queue.
 */
export interface Phase {
  capacity: number;
  completions: number;
}

export interface Completion {
  /** Virtual time of the completion, ms. */
  time: number;
  /** Grant to release, ms. */
  rtt: number;
  /** The algorithm's limit right after this sample. */
  limit: number;
  /** The capacity in force. */
  capacity: number;
}

interface Job {
  tag: number;
  granted: number;
  inflight: number;
}

/** A small seeded generator (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A binary min-heap of jobs by finishing tag. */
class Heap {
  items: Job[] = [];
  get size(): number {
    return this.items.length;
  }
  push(job: Job): void {
    const a = this.items;
    a.push(job);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent].tag <= a[i].tag) break;
      [a[parent], a[i]] = [a[i], a[parent]];
      i = parent;
    }
  }
  pop(): Job {
    const a = this.items;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l].tag < a[m].tag) m = l;
        if (r < a.length && a[r].tag < a[m].tag) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i], a[m]];
        i = m;
      }
    }
    return top;
  }
}

export function simulate(
  algorithm: LimitAlgorithm,
  phases: Phase[],
  { base = 10, jitter = 0.05, clients = 10 * phases[0].capacity, seed = 1 } =
    {},
): Completion[] {
  const rand = random(seed);
  const running = new Heap();
  const out: Completion[] = [];
  let waiting = clients;
  let now = 0;
  let work = 0; // virtual work done by each running job since time 0
  const admit = () => {
    while (waiting > 0 && running.size < algorithm.limit) {
      waiting--;
      const cost = base * (1 + jitter * (2 * rand() - 1));
      running.push({
        tag: work + cost,
        granted: now,
        inflight: running.size + 1,
      });
    }
  };
  for (const phase of phases) {
    const capacity = phase.capacity;
    for (let done = 0; done < phase.completions;) {
      admit();
      const rate = Math.min(1, capacity / running.size);
      const job = running.pop();
      now += (job.tag - work) / rate;
      work = job.tag;
      algorithm.update({
        rtt: now - job.granted,
        inflight: job.inflight,
        dropped: false,
      });
      out.push({
        time: now,
        rtt: now - job.granted,
        limit: algorithm.limit,
        capacity,
      });
      waiting++;
      done++;
    }
  }
  return out;
}
