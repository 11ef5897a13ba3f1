import { checkDuration, checkInteger, show } from "./_options.ts";

/** What one acquisition asks for, checked. */
export interface Ask {
  /** 0 (most urgent) to 7. */
  readonly priority: number;
  /** Whose work it is; `undefined` is the one shared flow. */
  readonly flow: string | undefined;
  /** How many slots it occupies, >= 1. */
  readonly weight: number;
  /**
   * Ms from now after which the work is no longer wanted; `undefined` for
   * none. Not `Infinity`: V8 boxes a field that only ever holds numbers, an
   * allocation an ask.
   */
  readonly deadline: number | undefined;
}

/** What an acquisition with none of the options asks for. */
export const PLAIN: Ask = Object.freeze({
  priority: 3,
  flow: undefined,
  weight: 1,
  deadline: undefined,
});

/** The options of one acquisition that decide its place and budget. */
export interface AskOptions {
  priority?: number;
  flow?: string;
  weight?: number;
  deadline?: number;
}

/** Checks one option's value: the default for `undefined`, or throws. */
export type Check = <T>(
  check: (name: string, value: unknown) => T,
  name: string,
  value: unknown,
) => T;

const checkOption: Check = (check, name, value) => check(name, value);

function checkPriority(name: string, value: unknown): number {
  return checkInteger(name, value, { min: 0, max: 7, fallback: 3 });
}

function checkFlow(name: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  throw new TypeError(
    `floodgate: option "${name}" must be a string, got ${show(value)}`,
  );
}

function checkWeight(name: string, value: unknown): number {
  return checkInteger(name, value, { min: 1, fallback: 1 });
}

function checkDeadline(name: string, value: unknown): number {
  return checkDuration(name, value, Infinity);
}

/**
 * The ask made of four values, each `undefined` where not given. The common
 * values pass a plain test; `check` runs only to default or explain another
 * (the options' own check, or one that words it for a callback's result).
 */
export function askFrom(
  priority: unknown,
  flow: unknown,
  weight: unknown,
  deadline: unknown,
  check: Check = checkOption,
): Ask {
  if (priority === undefined) priority = 3;
  else if (
    !(Number.isInteger(priority) && (priority as number) >= 0 &&
      (priority as number) <= 7)
  ) priority = check(checkPriority, "priority", priority);
  if (flow !== undefined && typeof flow !== "string") {
    flow = check(checkFlow, "flow", flow);
  }
  if (weight === undefined) weight = 1;
  else if (!(Number.isInteger(weight) && (weight as number) >= 1)) {
    weight = check(checkWeight, "weight", weight);
  }
  if (
    deadline !== undefined && !(typeof deadline === "number" && deadline >= 0)
  ) deadline = check(checkDeadline, "deadline", deadline);
  if (deadline === Infinity) deadline = undefined;
  return {
    priority: priority as number,
    flow: flow as string | undefined,
    weight: weight as number,
    deadline: deadline as number | undefined,
  };
}

/**
 * The ask of `acquire`, `tryAcquire` or `run` options; {@linkcode PLAIN}
 * when none of its fields is set, so that the common call allocates nothing.
 */
export function askOf(options: AskOptions | undefined): Ask {
  if (options === undefined) return PLAIN;
  const { priority, flow, weight, deadline } = options;
  if (
    priority === undefined && flow === undefined && weight === undefined &&
    deadline === undefined
  ) return PLAIN;
  return askFrom(priority, flow, weight, deadline);
}
