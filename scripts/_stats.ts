/** Summaries of measured samples, for the tests and the benchmarks. */

/**
 * The value below which `p` percent of `values` fall (nearest rank, no
 * interpolation); `NaN` for no values. `values` need not be sorted.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))
  ];
}

/** The middle value (the upper one of an even count); `NaN` for none. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/**
 * A distribution-free confidence interval for the median of `values`: the
 * k-th smallest and k-th largest value, with k the largest rank for which
 * the chance that the median lies outside is at most 1 - `confidence`
 * (binomial, p = 1/2). With fewer than 6 values that chance is above 5%
 * even for the minimum and maximum, which are returned then.
 */
export function medianInterval(
  values: readonly number[],
  confidence = 0.95,
): [number, number] {
  const n = values.length;
  if (n === 0) return [NaN, NaN];
  const sorted = [...values].sort((a, b) => a - b);
  // P(X < k) for X ~ Binomial(n, 1/2), summed until it exceeds the tail.
  const tail = (1 - confidence) / 2;
  let k = 1;
  let below = 0;
  let term = 0.5 ** n; // P(X = 0)
  while (k < n / 2) {
    below += term; // now P(X <= k - 1)
    term *= (n - (k - 1)) / k; // P(X = k)
    if (below + term > tail) break;
    k++;
  }
  return [sorted[k - 1], sorted[n - k]];
}
