/**
 * A property test of throttle() with fast-check's scheduler: random limits,
 * queues and clients that give up, with every order of completions the
 * scheduler tries. The limit must hold and every request must end as exactly
 * one of served, rejected or aborted, with counters that agree.
 *
 * A failure prints the seed and the shrunk case; FC_SEED=<seed> replays it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import fc from "fast-check";
import { throttle } from "../mod.ts";

const seed = Number(process.env.FC_SEED ?? 20261126);
const numRuns = Number(process.env.FC_RUNS ?? 1000);

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

test("throttle() keeps its limit under every order of completions fast-check's scheduler tries (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.scheduler(),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 3 }),
      fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }),
      async (s, limit, queue, aborts) => {
        let running = 0;
        let peak = 0;
        let calls = 0;
        const handler = throttle(async () => {
          calls++;
          peak = Math.max(peak, ++running);
          // The scheduler decides when each handler's work completes.
          await s.schedule(Promise.resolve(), "work");
          running--;
          return new Response("ok");
        }, { limit, queue });
        const answers = aborts.map((abort) => {
          const controller = new AbortController();
          // ... and when each client that gives up does so.
          if (abort) {
            s.schedule(Promise.resolve(), "abort").then(() =>
              controller.abort()
            );
          }
          return Promise.resolve(
            handler(new Request("http://x/", { signal: controller.signal })),
          );
        });
        // Work scheduled by requests admitted late is scheduled late too.
        do {
          await s.waitAll();
          await flush();
        } while (s.count() > 0);
        const statuses = (await Promise.all(answers)).map((r) => r.status);
        const stats = handler.stats();
        assert.ok(peak <= limit, `peak ${peak} over limit ${limit}`);
        assert.ok(statuses.every((x) => x === 200 || x === 503 || x === 499));
        assert.equal(statuses.filter((x) => x === 200).length, calls);
        assert.equal(stats.admitted, calls);
        assert.equal(statuses.filter((x) => x === 499).length, stats.aborted);
        assert.equal(
          stats.admitted + stats.rejected + stats.aborted,
          aborts.length,
        );
        assert.equal(stats.active, 0);
        assert.equal(stats.queued, 0);
      },
    ),
    { numRuns, seed },
  );
});
