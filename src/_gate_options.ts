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
  /** Whether the slot waits for the response body. */
  byBody: boolean;
  /** The user's `reject`, checked; `undefined` for the default. */
  reject: Reject<S> | undefined;
  /** The default rejection. */
  overloaded: () => Response;
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
  const retryAfter = checkInteger("retryAfter", given.retryAfter, {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    fallback: 1,
  });
  const common = {
    keyOf,
    skip,
    byBody,
    reject: reject === undefined ? undefined : checkedReject(reject),
    overloaded: defaultRejection({ retryAfter }),
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
