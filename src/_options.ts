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
      return Array.isArray(value) ? "an array" : "an object";
    default:
      return String(value);
  }
}

function fail(
  ErrorType: typeof TypeError | typeof RangeError,
  name: string,
  expected: string,
  value: unknown,
): never {
  throw new ErrorType(
    `floodgate: option "${name}" must be ${expected}, got ${show(value)}`,
  );
}

/**
 * Checks that `options` is an options object with no names outside `known`
 * (a misspelt option would otherwise be ignored without a word).
 */
export function checkOptionsObject(
  options: unknown,
  known: ReadonlySet<string>,
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
    if (!known.has(name)) {
      throw new TypeError(`floodgate: unknown option ${show(name)}`);
    }
  }
  return options as Record<string, unknown>;
}

/**
 * An integer >= `min`, or Infinity when `infinite` is true; `undefined` gives
 * `fallback`, or is a TypeError when there is none.
 */
export function checkInteger(
  name: string,
  value: unknown,
  fallback: number | undefined,
  min: number,
  infinite = true,
): number {
  if (value === undefined && fallback !== undefined) return fallback;
  const expected = `an integer >= ${min}${infinite ? " or Infinity" : ""}`;
  if (typeof value !== "number") fail(TypeError, name, expected, value);
  if (
    value === Infinity ? !infinite : !(Number.isInteger(value) && value >= min)
  ) {
    fail(RangeError, name, expected, value);
  }
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

/** A number in [min, max] (`open` excludes min); `undefined` gives `fallback`. */
export function checkNumber(
  name: string,
  value: unknown,
  fallback: number,
  min: number,
  max: number,
  open = false,
): number {
  if (value === undefined) return fallback;
  const expected = `a number ${open ? ">" : ">="} ${min} and <= ${max}`;
  if (typeof value !== "number") fail(TypeError, name, expected, value);
  if (!((open ? value > min : value >= min) && value <= max)) {
    fail(RangeError, name, expected, value);
  }
  return value;
}

/** One of the strings in `choices`. */
export function checkChoice<T extends string>(
  name: string,
  value: unknown,
  choices: readonly T[],
): T {
  if (value === undefined) return choices[0];
  if (!choices.includes(value as T)) {
    fail(TypeError, name, choices.map(show).join(" or "), value);
  }
  return value as T;
}

/** A boolean. */
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
