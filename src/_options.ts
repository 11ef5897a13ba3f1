/** Describes `value` for an error message without ever throwing. */
export function show(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Object.is(value, -0) ? "-0" : String(value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    case "function":
      return "a function";
    case "object":
      if (value === null) return "null";
      if (value instanceof Promise) return "a Promise";
      return Array.isArray(value) ? "an array" : "an object";
    default:
      return String(value);
  }
}

/** Throws the error of an option that got a bad value. */
export function fail(
  ErrorType: typeof TypeError | typeof RangeError,
  name: string,
  expected: string,
  value: unknown,
): never {
  throw new ErrorType(
    `floodgate: option "${name}" must be ${expected}, got ${show(value)}`,
  );
}

/** Names other libraries give to an option of ours. */
const ALIASES: Record<string, string> = {
  concurrency: "limit",
  maxConcurrent: "limit",
  maxConcurrency: "limit",
  max: "limit",
  timeout: "queueTimeout",
  maxQueue: "queue",
  queueSize: "queue",
  queueLimit: "queue",
  shouldSkip: "skip",
  keyGenerator: "key",
  handler: "reject",
  onRejected: "reject",
};

/** The edit distance between two short strings. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length];
}

/** The known name `name` was most likely meant to be, if any is close. */
function closest(name: string, known: readonly string[]): string | undefined {
  const alias = ALIASES[name];
  if (alias !== undefined && known.includes(alias)) return alias;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const candidate of known) {
    const d = distance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

/**
 * Checks that `options` is an options object with no names outside `known`
 * (a misspelt option would otherwise be ignored without a word).
 */
export function checkOptionsObject(
  options: unknown,
  known: readonly string[],
): Record<string, unknown> {
  if (options === undefined) return {};
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new TypeError(
      `floodgate: options must be an object, got ${show(options)}`,
    );
  }
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue;
    const guess = closest(name, known);
    throw new TypeError(
      `floodgate: unknown option ${show(name)}${
        guess === undefined ? "." : `; did you mean ${show(guess)}?`
      } Valid options: ${known.map(show).join(", ")}`,
    );
  }
  return options as Record<string, unknown>;
}

/** What {@linkcode checkInteger} accepts. */
export interface IntegerRange {
  /** The smallest value. */
  min: number;
  /** The largest value, if not `Infinity` or unbounded. */
  max?: number;
  /** Whether `Infinity` is accepted. */
  infinite?: boolean;
  /** What `undefined` stands for; without it, `undefined` is a TypeError. */
  fallback?: number;
}

/** An integer in the range, or Infinity where accepted. */
export function checkInteger(
  name: string,
  value: unknown,
  range: IntegerRange,
): number {
  const { min, max, infinite = false, fallback } = range;
  if (value === undefined && fallback !== undefined) return fallback;
  const expected = max === undefined
    ? `an integer >= ${min}${infinite ? " or Infinity" : ""}`
    : `an integer from ${min} to ${max}`;
  if (typeof value !== "number") fail(TypeError, name, expected, value);
  const valid = value === Infinity
    ? infinite
    : Number.isInteger(value) && value >= min &&
      (max === undefined || value <= max);
  if (!valid) fail(RangeError, name, expected, value);
  return value;
}

/** A number of milliseconds >= 0, or Infinity. */
export function checkDuration(
  name: string,
  value: unknown,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  const expected = "a number of milliseconds >= 0 or Infinity";
  if (typeof value !== "number") fail(TypeError, name, expected, value);
  if (!(value >= 0)) fail(RangeError, name, expected, value);
  return value;
}

/** What {@linkcode checkNumber} accepts. */
export interface NumberRange {
  /** What `undefined` stands for. */
  fallback: number;
  /** The smallest value accepted. */
  min?: number;
  /** The value every accepted one must be greater than. */
  above?: number;
  /** The largest value accepted. */
  max?: number;
  /** The value every accepted one must be less than. */
  below?: number;
}

/** A number within the range; `undefined` gives the fallback. */
export function checkNumber(
  name: string,
  value: unknown,
  range: NumberRange,
): number {
  if (value === undefined) return range.fallback;
  const { min, above, max, below } = range;
  const bounds = [
    min !== undefined && `>= ${min}`,
    above !== undefined && `> ${above}`,
    max !== undefined && max !== Infinity && `<= ${max}`,
    below !== undefined && `< ${below}`,
  ].filter(Boolean);
  const expected = `a number ${bounds.join(" and ")}`;
  if (typeof value !== "number") fail(TypeError, name, expected, value);
  const valid = !Number.isNaN(value) &&
    (min === undefined || value >= min) &&
    (above === undefined || value > above) &&
    (max === undefined || value <= max) &&
    (below === undefined || value < below);
  if (!valid) fail(RangeError, name, expected, value);
  return value;
}

/** One of `choices`; `undefined` gives the first. */
export function checkChoice<T extends string>(
  name: string,
  value: unknown,
  choices: { choices: readonly T[] },
): T {
  const allowed = choices.choices;
  if (value === undefined) return allowed[0];
  if (!allowed.includes(value as T)) {
    fail(TypeError, name, allowed.map(show).join(" or "), value);
  }
  return value as T;
}

/** A boolean; `undefined` is `false`. */
export function checkBoolean(name: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") fail(TypeError, name, "a boolean", value);
  return value;
}

/** A function, or undefined. */
export function checkFunction<T>(name: string, value: unknown): T | undefined {
  if (value !== undefined && typeof value !== "function") {
    fail(TypeError, name, "a function", value);
  }
  return value as T | undefined;
}
