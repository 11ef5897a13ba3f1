/**
 * Bad input, fuzzed with fast-check: every option with arbitrary values, and
 * callbacks that throw or return arbitrary values. Creation either succeeds
 * or throws a TypeError or RangeError that names the option; a misbehaving
 * callback fails only its own request, with a clear error, and leaks nothing.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { aimd, gradient, Limiter, throttle, vegas } from "../mod.ts";
import { throttle as honoThrottle } from "../hono.ts";

const seed = Number(process.env.FC_SEED ?? 20261126);
const numRuns = Number(process.env.FC_RUNS ?? 1000);
const ok = () => new Response("ok");

/** Asserts that `create` succeeds or fails cleanly, naming `option`. */
function createsOrNames(create: () => unknown, option?: string): void {
  try {
    create();
  } catch (error) {
    assert.ok(
      error instanceof TypeError || error instanceof RangeError,
      `not a TypeError or RangeError: ${error}`,
    );
    assert.match(error.message, /^floodgate: /);
    if (option !== undefined) {
      assert.ok(
        error.message.includes(`"${option}"`),
        `message does not name "${option}": ${error.message}`,
      );
    }
  }
}

const creators: Record<string, [string[], (options: never) => unknown]> = {
  "new Limiter()": [
    ["limit", "queue", "queueTimeout", "order", "dryRun"],
    (o) => new Limiter(o),
  ],
  "throttle()": [
    [
      "limit",
      "queue",
      "queueTimeout",
      "order",
      "dryRun",
      "limiter",
      "key",
      "skip",
      "release",
      "reject",
      "retryAfter",
    ],
    (o) => throttle(ok, o),
  ],
  "hono throttle()": [
    ["limit", "queue", "release", "retryAfter", "key"],
    (o) => honoThrottle(o),
  ],
  "aimd()": [
    ["initial", "min", "max", "backoff", "tolerance", "increase"],
    (o) => aimd(o),
  ],
  "vegas()": [["initial", "min", "max", "alpha", "beta"], (o) => vegas(o)],
  "gradient()": [
    ["initial", "min", "max", "tolerance", "queue", "smoothing"],
    (o) => gradient(o),
  ],
};

for (const [name, [options, create]] of Object.entries(creators)) {
  test(`${name} takes any value of any option or names the option it rejects (property)`, () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...options),
        fc.anything(),
        (option, value) => {
          createsOrNames(() => create({ [option]: value } as never), option);
        },
      ),
      { numRuns, seed },
    );
  });

  test(`${name} takes any options value or fails with a floodgate TypeError or RangeError (property)`, () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        createsOrNames(() => create(value as never));
      }),
      { numRuns, seed },
    );
  });
}

test("throttle() fails only the request whose callbacks misbehave, and leaks nothing (property)", async () => {
  const behaviour = fc.oneof(
    fc.record({ throws: fc.constant(true as const) }),
    fc.record({ returns: fc.anything() }),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("key", "skip", "reject"),
      behaviour,
      async (option, act) => {
        const thrown = new Error("callback broke");
        const callback = () => {
          if ("throws" in act) throw thrown;
          return act.returns;
        };
        let release!: () => void;
        const busy = new Promise<void>((resolve) => release = resolve);
        // limit 1 and a request holding the slot, so reject is reached.
        const handler = throttle(async (request: Request) => {
          if (request.url.endsWith("/hold")) await busy;
          return new Response("ok");
        }, { limit: 1, [option]: callback } as never);
        const holder = option === "reject"
          ? handler(new Request("http://x/hold"))
          : undefined;
        let outcome: unknown;
        try {
          outcome = await handler(new Request("http://x/"));
        } catch (error) {
          outcome = error;
        }
        if ("throws" in act) {
          assert.equal(outcome, thrown);
        } else if (outcome instanceof Error) {
          assert.ok(outcome instanceof TypeError, String(outcome));
          assert.ok(outcome.message.includes(`"${option}"`), outcome.message);
        } else {
          assert.ok(outcome instanceof Response);
        }
        release();
        await holder;
        const stats = handler.stats();
        assert.equal(stats.active, 0);
        assert.equal(stats.queued, 0);
        assert.equal(stats.keys, 0);
      },
    ),
    { numRuns, seed },
  );
});
