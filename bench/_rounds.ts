/**
 * Interleaved rounds: every mode is measured once a round, in forward order
 * in even rounds and backward in odd ones, so that a drift of the machine
 * (another process, a warming CPU) falls on every mode alike and a mode's
 * ratio to another is taken within one round.
 */
import { median, medianInterval, percentile } from "../scripts/_stats.ts";

/** Samples by mode, indexed by round; a mode left out of a round has a hole. */
export type Samples<T> = Record<string, Array<T | undefined>>;

/** Options for {@linkcode interleave}. */
export interface InterleaveOptions<T> {
  /** The modes of round `round` (from 0). */
  modes(round: number): readonly string[];
  measure(mode: string, round: number): Promise<T>;
  /** Whether the rounds so far suffice; asked after each round. */
  enough(samples: Samples<T>, rounds: number): boolean;
  /** Stop here even if not `enough`. */
  maxRounds: number;
  /** Printed to stderr after each measurement, with the sample. */
  progress?(mode: string, round: number, sample: T): void;
}

/** Measures round after round until `enough` says so or `maxRounds`. */
export async function interleave<T>(
  options: InterleaveOptions<T>,
): Promise<{ samples: Samples<T>; rounds: number }> {
  const samples: Samples<T> = {};
  let round = 0;
  while (round < options.maxRounds) {
    const modes = options.modes(round);
    const order = round % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of order) {
      const sample = await options.measure(mode, round);
      (samples[mode] ??= [])[round] = sample;
      options.progress?.(mode, round, sample);
    }
    round++;
    if (options.enough(samples, round)) break;
  }
  return { samples, rounds: round };
}

/** The values of `mode` over the rounds that measured it. */
export function values<T>(
  samples: Samples<T>,
  mode: string,
  pick: (sample: T) => number,
): number[] {
  return (samples[mode] ?? []).flatMap((s) => s === undefined ? [] : [pick(s)]);
}

/** `mode` over `base`, round by round, for the rounds that measured both. */
export function ratios<T>(
  samples: Samples<T>,
  mode: string,
  base: string,
  pick: (sample: T) => number,
): number[] {
  const out: number[] = [];
  (samples[mode] ?? []).forEach((sample, round) => {
    const reference = samples[base]?.[round];
    if (sample !== undefined && reference !== undefined) {
      out.push(pick(sample) / pick(reference));
    }
  });
  return out;
}

/** A median with its 95% confidence interval and the per-round values. */
export interface Spread {
  median: number;
  /** The 95% confidence interval of the median (distribution-free). */
  low: number;
  high: number;
  /** The middle half of the per-round values. */
  q1: number;
  q3: number;
  rounds: number[];
}

/** The median of `rounds`, how sure it is, and how they spread. */
export function spread(rounds: number[]): Spread {
  const [low, high] = medianInterval(rounds);
  return {
    median: median(rounds),
    low,
    high,
    q1: percentile(rounds, 25),
    q3: percentile(rounds, 75),
    rounds,
  };
}

/** The width of the median's interval, relative to the median. */
export function width({ median, low, high }: Spread): number {
  return (high - low) / median;
}

/** `1.02 [0.99–1.04]` */
export function formatSpread(s: Spread): string {
  return `${s.median.toFixed(2)} [${s.low.toFixed(2)}–${s.high.toFixed(2)}]`;
}
