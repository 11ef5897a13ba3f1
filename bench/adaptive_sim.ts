/**
 * Convergence of the adaptive limits on the simulated server of the test
 * suite (scripts/_simulator.ts): for each algorithm and capacity C, how many
 * completions until the limit settles in [0.7 C, 1.5 C] (and stays: at least
 * 90 of every following 100 values in the band), after start-up, after C
 * halves and after it doubles back; then the steady state's coefficient of
 * variation, goodput (share of C / base) and mean latency (multiples of base).
 *
 * Usage: deno run bench/adaptive_sim.ts   (prints a markdown table)
 */
import { aimd, gradient, vegas } from "../mod.ts";
import { type Completion, simulate } from "../scripts/_simulator.ts";

const BASE = 10;

function settledAfter(phase: Completion[], capacity: number): number {
  const inBand = phase.map((c) =>
    c.limit >= 0.7 * capacity && c.limit <= 1.5 * capacity ? 1 : 0
  );
  // The first index from which every window of 100 holds >= 90 in band.
  let settled = phase.length;
  for (let start = phase.length - 100; start >= 0; start--) {
    let sum = 0;
    for (let i = start; i < start + 100; i++) sum += inBand[i];
    if (sum < 90) break;
    settled = start;
  }
  return settled;
}

const rows = [
  "| algorithm | C | settled after (start / halved / doubled back), completions | CV | goodput | latency |",
  "| --- | --- | --- | --- | --- | --- |",
];
for (const [name, factory] of Object.entries({ aimd, vegas, gradient })) {
  for (const capacity of [4, 32, 256]) {
    const length = 2000 + Math.max(1000, 20 * capacity);
    const caps = [capacity, capacity / 2, capacity];
    const out = simulate(
      factory({ min: 1, max: 10 * capacity }),
      caps.map((c) => ({ capacity: c, completions: length })),
      { base: BASE, jitter: 0.05, clients: 10 * capacity, seed: 7 },
    );
    const phases = caps.map((_, i) => out.slice(i * length, (i + 1) * length));
    const settled = phases.map((p, i) => settledAfter(p, caps[i]));
    const steady = phases[0].slice(2000);
    const limits = steady.map((c) => c.limit);
    const mean = limits.reduce((a, b) => a + b, 0) / limits.length;
    const cv = Math.sqrt(
      limits.reduce((a, b) => a + (b - mean) ** 2, 0) / limits.length,
    ) / mean;
    const goodput = steady.length /
      (steady.at(-1)!.time - phases[0][1999].time) / (capacity / BASE);
    const latency = steady.reduce((a, c) => a + c.rtt, 0) / steady.length /
      BASE;
    rows.push(
      `| ${name} | ${capacity} | ${settled.join(" / ")} | ${cv.toFixed(2)} | ${
        (goodput * 100).toFixed(0)
      }% | ${latency.toFixed(2)} x |`,
    );
  }
}
console.log(rows.join("\n"));
