/**
 * A small load generator for what wrk cannot express: clients with a
 * patience, and clients that honour `Retry-After`. Runs on Deno; takes one
 * JSON argument (see {@linkcode Plan}) and prints its results as JSON.
 *
 *   open        requests arrive at `rate` a second (Poisson), whatever the
 *               server does; each client gives up after `patience` ms. It
 *               sends `x-sent-at` and `x-patience` (so the server can count
 *               the work done for clients gone), and with `sendDeadline`
 *               also `x-request-timeout: <patience>`. A client that gives
 *               up keeps its connection open (as a proxy that does not pass
 *               cancellation on would): the server cannot see it left.
 *   population  `clients` clients in a loop: a request; after a 2xx a
 *               think time (exponential, mean `think` ms); after a 503 they
 *               wait what `Retry-After` says and try again (a retry).
 *               Counted second by second.
 */

/** What to do. */
export type Plan =
  & { url: string; seconds: number }
  & (
    | { kind: "open"; rate: number; patience: number; sendDeadline: boolean }
    | { kind: "population"; clients: number; think: number }
  );

/** What an open-loop run saw. */
export interface OpenResult {
  sent: number;
  /** 2xx responses that arrived within the client's patience. */
  good: number;
  /** 2xx responses that arrived after it. */
  late: number;
  /** 503 responses that arrived within the patience. */
  rejected: number;
  errors: number;
}

/** One second of a population run. */
export interface Second {
  attempts: number;
  successes: number;
  rejections: number;
  /** Attempts that followed a 503. */
  retries: number;
}

/** What a population run saw. */
export interface PopulationResult {
  seconds: Second[];
  errors: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function open(
  plan: Extract<Plan, { kind: "open" }>,
): Promise<OpenResult> {
  const result: OpenResult = {
    sent: 0,
    good: 0,
    late: 0,
    rejected: 0,
    errors: 0,
  };
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const end = started + plan.seconds * 1000;
  let next = started;
  const one = async () => {
    const sent = performance.now();
    const headers: Record<string, string> = {
      "x-sent-at": String(Date.now()),
      "x-patience": String(plan.patience),
    };
    if (plan.sendDeadline) headers["x-request-timeout"] = String(plan.patience);
    try {
      const response = await fetch(plan.url, { headers });
      await response.arrayBuffer();
      const inTime = performance.now() - sent <= plan.patience;
      if (response.status === 200) inTime ? result.good++ : result.late++;
      else if (inTime) result.rejected++;
    } catch {
      result.errors++;
    }
  };
  while (performance.now() < end) {
    const now = performance.now();
    while (next <= now) {
      result.sent++;
      const p = one();
      inFlight.add(p);
      p.finally(() => inFlight.delete(p));
      next += -Math.log(1 - Math.random()) * 1000 / plan.rate;
    }
    await sleep(Math.max(1, next - performance.now()));
  }
  await Promise.all(inFlight);
  return result;
}

async function population(
  plan: Extract<Plan, { kind: "population" }>,
): Promise<PopulationResult> {
  const seconds: Second[] = Array.from(
    { length: plan.seconds },
    () => ({ attempts: 0, successes: 0, rejections: 0, retries: 0 }),
  );
  let errors = 0;
  const started = performance.now();
  const end = started + plan.seconds * 1000;
  const at = () => seconds[Math.floor((performance.now() - started) / 1000)];
  const think = () => -Math.log(1 - Math.random()) * plan.think;
  const client = async () => {
    await sleep(Math.random() * plan.think);
    let retry = false;
    while (performance.now() < end) {
      const second = at();
      second.attempts++;
      if (retry) second.retries++;
      try {
        const response = await fetch(plan.url);
        await response.arrayBuffer();
        if (performance.now() >= end) break;
        if (response.status === 200) {
          at().successes++;
          retry = false;
          await sleep(think());
        } else {
          at().rejections++;
          retry = true;
          const wait = Number(response.headers.get("retry-after") ?? 1);
          await sleep(wait * 1000);
        }
      } catch {
        errors++;
        await sleep(100);
      }
    }
  };
  await Promise.all(Array.from({ length: plan.clients }, client));
  return { seconds, errors };
}

if (import.meta.main) {
  const plan = JSON.parse(Deno.args[0]) as Plan;
  const result = plan.kind === "open"
    ? await open(plan)
    : await population(plan);
  console.log(JSON.stringify(result));
}
