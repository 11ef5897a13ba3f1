import { type Ask, askFrom } from "./_ask.ts";
import {
  checkChoice,
  checkFunction,
  checkInteger,
  checkOptionsObject,
  show,
} from "./_options.ts";
import { KeyedSlots } from "./_keyed.ts";
import { type AsyncLimiter, isAsyncLimiter } from "./async_limiter.ts";
import { checkedReject, defaultRejection, type Reject } from "./_reject.ts";
import { Slots } from "./_slots.ts";
import {
  checkLimiterOptions,
  Limiter,
  LIMITER_OPTION_NAMES,
  type LimiterOptions,
  slotsOf,
} from "./limiter.ts";

const THROTTLE_OPTION_NAMES: readonly string[] = [
  ...LIMITER_OPTION_NAMES,
  "limiter",
  "key",
  "skip",
  "release",
  "reject",
  "retryAfter",
  "priority",
  "flow",
  "weight",
  "deadline",
];

/** The options of a gate, checked: what `throttled()` works with. */
export interface GateConfig<S, A extends unknown[]> {
  /** The slots every request uses; `undefined` with `key`. */
  shared: Slots | undefined;
  /** The slots of each key; `undefined` without `key`. */
  keyed: KeyedSlots | undefined;
  /** A limiter outside the process (`RedisLimiter`); the gate awaits it. */
  remote?: AsyncLimiter;
  keyOf: ((subject: S, ...rest: A) => string) | undefined;
  skip: ((subject: S, ...rest: A) => boolean) | undefined;
  /** What a request asks for; `undefined` when no callback is set. */
  askOf: ((subject: S, rest: A) => Ask) | undefined;
  /** Whether the slot waits for the response body. */
  byBody: boolean;
  /** The user's `reject`, checked; `undefined` for the default. */
  reject: Reject<S> | undefined;
  /** The `Retry-After` of rejections, or `"auto"` to estimate it. */
  retryAfter: number | "auto";
  /** The default rejection, with `Retry-After` in seconds. */
  overloaded: (retryAfter: number) => Response;
}

/** Whole seconds that `Retry-After` can carry as digits, or `"auto"`. */
function checkRetryAfter(value: unknown): number | "auto" {
  if (value === undefined || value === "auto") return "auto";
  if (typeof value !== "number") {
    throw new TypeError(
      `floodgate: option "retryAfter" must be "auto" or an integer >= 0, got ${
        show(value)
      }`,
    );
  }
  return checkInteger("retryAfter", value, {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
  });
}

/** The check of an option, applied to what its callback returned. */
function checkReturned<T>(
  check: (name: string, value: unknown) => T,
  name: string,
  value: unknown,
): T {
  try {
    return check(name, value);
  } catch (error) {
    const { constructor, message } = error as Error;
    throw new (constructor as typeof TypeError)(
      message.replace(" must be ", " must return "),
    );
  }
}

type Callback<S, A extends unknown[]> = (subject: S, ...rest: A) => unknown;

/**
 * The function that turns a request into what it asks for, from the
 * `priority`, `flow`, `weight` and `deadline` callbacks; `undefined` when
 * none is set. A bad value fails only the request that got it.
 */
function checkAskCallbacks<S, A extends unknown[]>(
  given: Record<string, unknown>,
): ((subject: S, rest: A) => Ask) | undefined {
  const priority = checkSynchronous<Callback<S, A>>("priority", given.priority);
  const flow = checkSynchronous<Callback<S, A>>("flow", given.flow);
  const weight = checkSynchronous<Callback<S, A>>("weight", given.weight);
  const deadline = checkSynchronous<Callback<S, A>>("deadline", given.deadline);
  if (!priority && !flow && !weight && !deadline) return undefined;
  // The arguments after the subject come as they are, an array, so that a
  // request makes none of its own.
  return (subject, rest) =>
    askFrom(
      priority && call(priority, subject, rest),
      flow && call(flow, subject, rest),
      weight && call(weight, subject, rest),
      deadline && call(deadline, subject, rest),
      checkReturned,
    );
}

/**
 * Calls a per-request callback with the subject and the arguments after it,
 * without a spread for the short lists that servers pass: on Bun a spread
 * call costs about a fifth of an in-process rejection.
 */
export function call<S, A extends unknown[]>(
  callback: (subject: S, ...rest: A) => unknown,
  subject: S,
  rest: A,
): unknown {
  const fn = callback as unknown as (...args: unknown[]) => unknown;
  switch (rest.length) {
    case 0:
      return fn(subject);
    case 1:
      return fn(subject, rest[0]);
    case 2:
      return fn(subject, rest[0], rest[1]);
    default:
      return fn(subject, ...rest);
  }
}

/** An async function would answer with a promise, which a gate cannot wait for. */
function checkSynchronous<T>(name: string, value: unknown): T | undefined {
  const fn = checkFunction<T>(name, value);
  if (fn?.constructor.name === "AsyncFunction") {
    throw new TypeError(
      `floodgate: option "${name}" must be synchronous, got an async function`,
    );
  }
  return fn;
}

/**
 * Checks the options of `throttle()` or the Hono middleware, all at once and
 * before any request.
 */
export function checkGateOptions<S, A extends unknown[]>(
  options: unknown,
): GateConfig<S, A> {
  const given = checkOptionsObject(options, THROTTLE_OPTION_NAMES);
  const keyOf = checkSynchronous<GateConfig<S, A>["keyOf"]>("key", given.key);
  const skip = checkSynchronous<GateConfig<S, A>["skip"]>("skip", given.skip);
  const reject = checkFunction<Reject<S>>("reject", given.reject);
  const byBody = checkChoice("release", given.release, {
    choices: ["response", "body"],
  }) === "body";
  const retryAfter = checkRetryAfter(given.retryAfter);
  const common = {
    keyOf,
    skip,
    askOf: checkAskCallbacks<S, A>(given),
    byBody,
    reject: reject === undefined ? undefined : checkedReject(reject),
    retryAfter,
    overloaded: defaultRejection(),
  };

  if (given.limiter !== undefined) {
    const remote = given.limiter instanceof Limiter
      ? undefined
      : isAsyncLimiter(given.limiter)
      ? given.limiter
      : false;
    if (remote === false) {
      throw new TypeError(
        `floodgate: option "limiter" must be a Limiter, got ${
          show(given.limiter)
        }`,
      );
    }
    const conflict = LIMITER_OPTION_NAMES.find((name) =>
      given[name] !== undefined
    ) ??
      (keyOf !== undefined ? "key" : undefined);
    if (conflict !== undefined) {
      throw new TypeError(
        `floodgate: option "limiter" cannot be combined with "${conflict}"; set it on the Limiter`,
      );
    }
    if (remote !== undefined) {
      return { ...common, shared: undefined, keyed: undefined, remote };
    }
    return {
      ...common,
      shared: slotsOf(given.limiter as Limiter),
      keyed: undefined,
    };
  }
  const config = checkLimiterOptions(given as LimiterOptions);
  return keyOf === undefined
    ? { ...common, shared: new Slots(config), keyed: undefined }
    : { ...common, shared: undefined, keyed: new KeyedSlots(config) };
}
