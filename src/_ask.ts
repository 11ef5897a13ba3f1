import { checkDuration, checkInteger, show } from "./_options.ts";

/** What one acquisition asks for, checked. */
export interface Ask {
  /** 0 (most urgent) to 7. */
  readonly priority: number;
  /** Whose work it is; `undefined` is the one shared flow. */
  readonly flow: string | undefined;
  /** How many slots it occupies, >= 1. */
  readonly weight: number;
  /** Ms from now after which the work is no longer wanted. */
  readonly deadline: number;
}

/** What an acquisition with none of the options asks for. */
export const PLAIN: Ask = Object.freeze({
  priority: 3,
  flow: undefined,
  weight: 1,
  deadline: Infinity,
});

/** The options of one acquisition that decide its place and budget. */
export interface AskOptions {
  priority?: number;
  flow?: string;
  weight?: number;
  deadline?: number;
}

export function checkPriority(name: string, value: unknown): number {
  return checkInteger(name, value, { min: 0, max: 7, fallback: 3 });
}

export function checkFlow(name: string, value: unknown): string | undefined {
  if (value === undefined || typeof value === "string") return value;
  throw new TypeError(
    `floodgate: option "${name}" must be a string, got ${show(value)}`,
  );
}

export function checkWeight(name: string, value: unknown): number {
  return checkInteger(name, value, { min: 1, fallback: 1 });
}

export function checkDeadline(name: string, value: unknown): number {
  return checkDuration(name, value, Infinity);
}

/**
 * The ask of `acquire`, `tryAcquire` or `run` options; {@linkcode PLAIN}
 * when none of its fields is set, so that the common call allocates nothing.
 * The common values pass a plain test; the checks run only to explain a bad
 * one.
 */
export function askOf(options: AskOptions | undefined): Ask {
  if (options === undefined) return PLAIN;
  let { priority, flow, weight, deadline } = options;
  if (
    priority === undefined && flow === undefined && weight === undefined &&
    deadline === undefined
  ) return PLAIN;
  if (priority === undefined) priority = 3;
  else if (!(Number.isInteger(priority) && priority >= 0 && priority <= 7)) {
    priority = checkPriority("priority", priority);
  }
  if (flow !== undefined && typeof flow !== "string") {
    flow = checkFlow("flow", flow);
  }
  if (weight === undefined) weight = 1;
  else if (!(Number.isInteger(weight) && weight >= 1)) {
    weight = checkWeight("weight", weight);
  }
  if (deadline === undefined) deadline = Infinity;
  else if (!(typeof deadline === "number" && deadline >= 0)) {
    deadline = checkDeadline("deadline", deadline);
  }
  return { priority, flow, weight, deadline };
}
