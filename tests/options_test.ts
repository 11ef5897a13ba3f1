import { test } from "node:test";
import assert from "node:assert/strict";
import { Limiter, throttle } from "../mod.ts";

const ok = () => new Response("ok");

type Case = [
  option: string,
  value: unknown,
  error: typeof TypeError | typeof RangeError,
  message: string,
];

// Each bad value, the error it must raise and the exact message.
const limiterCases: Case[] = [
  [
    "limit",
    0,
    RangeError,
    'option "limit" must be an integer >= 1 or Infinity, got 0',
  ],
  ["limit", -1, RangeError, "got -1"],
  ["limit", 1.5, RangeError, "got 1.5"],
  ["limit", NaN, RangeError, "got NaN"],
  ["limit", -Infinity, RangeError, "got -Infinity"],
  [
    "limit",
    "10",
    TypeError,
    'option "limit" must be an integer >= 1 or Infinity, got "10"',
  ],
  ["limit", null, TypeError, "got null"],
  [
    "queue",
    -1,
    RangeError,
    'option "queue" must be an integer >= 0 or Infinity, got -1',
  ],
  ["queue", 0.5, RangeError, "got 0.5"],
  ["queue", true, TypeError, "got true"],
  [
    "queueTimeout",
    -5,
    RangeError,
    'option "queueTimeout" must be a number of milliseconds >= 0 or Infinity, got -5',
  ],
  ["queueTimeout", NaN, RangeError, "got NaN"],
  ["queueTimeout", "1s", TypeError, 'got "1s"'],
  [
    "order",
    "random",
    TypeError,
    'option "order" must be "fifo" or "lifo" or "adaptive", got "random"',
  ],
  ["order", 1, TypeError, "got 1"],
  ["dryRun", "yes", TypeError, 'option "dryRun" must be a boolean, got "yes"'],
  ["dryRun", 1, TypeError, "got 1"],
];

const throttleCases: Case[] = [
  ["key", "path", TypeError, 'option "key" must be a function, got "path"'],
  ["skip", true, TypeError, 'option "skip" must be a function, got true'],
  [
    "reject",
    {},
    TypeError,
    'option "reject" must be a function, got an object',
  ],
  [
    "release",
    "stream",
    TypeError,
    'option "release" must be "response" or "body", got "stream"',
  ],
  [
    "retryAfter",
    -1,
    RangeError,
    'option "retryAfter" must be an integer from 0 to 9007199254740991, got -1',
  ],
  ["retryAfter", 1.5, RangeError, "got 1.5"],
  ["retryAfter", Infinity, RangeError, "got Infinity"],
  ["retryAfter", "1", TypeError, 'got "1"'],
  [
    "limiter",
    {},
    TypeError,
    'option "limiter" must be a Limiter, got an object',
  ],
];

for (const [option, value, error, message] of limiterCases) {
  test(`new Limiter() and throttle() reject ${option}: ${String(value)} with ${error.name}`, () => {
    const check = (e: unknown) =>
      e instanceof error && e.message.startsWith("floodgate: ") &&
      e.message.includes(message);
    assert.throws(() => new Limiter({ [option]: value }), check);
    assert.throws(() => throttle(ok, { [option]: value }), check);
  });
}

for (const [option, value, error, message] of throttleCases) {
  test(`throttle() rejects ${option}: ${String(value)} with ${error.name}`, () => {
    assert.throws(
      () => throttle(ok, { [option]: value }),
      (e) => e instanceof error && e.message.includes(message),
    );
  });
}

test("throttle() rejects limiter combined with key or a limiter option", () => {
  const limiter = new Limiter();
  for (const extra of [{ key: () => "k" }, { limit: 5 }, { dryRun: false }]) {
    assert.throws(
      () => throttle(ok, { limiter, ...extra } as never),
      (e) =>
        e instanceof TypeError &&
        e.message.includes('"limiter" cannot be combined with'),
    );
  }
  assert.doesNotThrow(() => throttle(ok, { limiter, skip: () => false }));
});

test("new Limiter() and throttle() reject unknown options and non-objects", () => {
  // deno-lint-ignore no-explicit-any
  const untyped = (o: unknown) => o as any;
  assert.throws(
    () => new Limiter(untyped({ limt: 5 })),
    /floodgate: unknown option "limt"/,
  );
  assert.throws(
    () => throttle(ok, untyped({ queueTimout: 5 })),
    /unknown option "queueTimout"/,
  );
  for (const bad of [5, "x", null, [1]]) {
    assert.throws(() => new Limiter(untyped(bad)), TypeError);
    assert.throws(() => throttle(ok, untyped(bad)), TypeError);
  }
  assert.throws(
    () => throttle(untyped("handler")),
    /the handler must be a function, got "handler"/,
  );
});

test("new Limiter() accepts every valid value and undefined for defaults", () => {
  const limiter = new Limiter({
    limit: Infinity,
    queue: Infinity,
    queueTimeout: 0.5,
    order: "lifo",
    dryRun: true,
  });
  assert.equal(limiter.limit, Infinity);
  assert.equal(new Limiter({ limit: undefined }).limit, 100);
  assert.doesNotThrow(() =>
    throttle(ok, { release: "body", retryAfter: 0, queueTimeout: 0 })
  );
});

test("Limiter.limit rejects a bad value on assignment and keeps the old one", () => {
  const limiter = new Limiter({ limit: 4 });
  assert.throws(() => limiter.limit = 0, RangeError);
  assert.throws(() => limiter.limit = 2.5, RangeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => limiter.limit = undefined as any, TypeError);
  assert.equal(limiter.limit, 4);
});

test("throttle() rejects a retryAfter that Retry-After cannot carry as digits", () => {
  for (const retryAfter of [1e21, Number.MAX_SAFE_INTEGER + 1, Infinity]) {
    assert.throws(() => throttle(ok, { retryAfter }), RangeError);
  }
  assert.doesNotThrow(() => throttle(ok, { retryAfter: 86_400 }));
});

test("unknown options list the valid ones and suggest the closest", () => {
  assert.throws(
    () => new Limiter({ concurrency: 4 } as never),
    /unknown option "concurrency"; did you mean "limit"\?.*"queueTimeout"/,
  );
  assert.throws(
    () => throttle(ok, { queueTimout: 4 } as never),
    /unknown option "queueTimout"; did you mean "queueTimeout"\?/,
  );
});

test("the types refuse limiter together with key or a limiter option", () => {
  const limiter = new Limiter();
  // @ts-expect-error: a shared limiter carries its own options
  assert.throws(() => throttle(ok, { limiter, key: () => "k" }), TypeError);
  // @ts-expect-error: a shared limiter carries its own limit
  assert.throws(() => throttle(ok, { limiter, limit: 3 }), TypeError);
});
