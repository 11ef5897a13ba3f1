/**
 * What forwarding a fetch handler's arguments costs, in nanoseconds per call,
 * for the wrapper form named by $FORM (one form a process, so that no form
 * shapes the JIT's view of another):
 *
 *   direct     the handler itself, no wrapper
 *   rest       (request, ...rest) => handler(request, ...rest), as throttle() does
 *   rest-on    the same, but the rest array is handed to an inner function first
 *   fixed      (request, a, b) => handler(request, a, b)
 *   counted    fixed parameters, but the handler gets as many arguments as the
 *              wrapper got (a switch on arguments.length)
 *   counted-2  the same with two parameters, (request, a): the count servers pass
 *   apply      handler.apply(this, arguments)
 *
 * The caller passes two arguments (the request and Deno's `info`, Bun's
 * `server` or Node's bindings). Two call sites: "inlined" is a loop the JIT
 * may inline the wrapper into; "server" is a site that has seen many callees,
 * so the wrapper is called, not inlined, as when a server calls the handler
 * from native code. Prints one JSON line: medians of 9 batches.
 *
 * FORM=rest deno run bench/wrapper_call.ts | bun bench/wrapper_call.ts |
 * node npm/bench/wrapper_call.js (transpiled by bench/_ensure.ts)
 */
// deno-lint-ignore-file no-explicit-any
import process from "node:process";

type Fetch = (request: any, ...rest: any[]) => unknown;

function handler(request: unknown, _info?: unknown): unknown {
  return request;
}
const call = handler as Fetch;

function inner(request: unknown, rest: unknown[]): unknown {
  return call(request, ...rest);
}

const forms: Record<string, Fetch> = {
  direct: handler,
  rest: function rest(request: unknown, ...rest: unknown[]) {
    return call(request, ...rest);
  },
  "rest-on": function restOn(request: unknown, ...rest: unknown[]) {
    return inner(request, rest);
  },
  fixed: function fixed(request: unknown, a?: unknown, b?: unknown) {
    return call(request, a, b);
  },
  counted: function counted(request: unknown, a?: unknown, b?: unknown) {
    switch (arguments.length) {
      case 1:
        return call(request);
      case 2:
        return call(request, a);
      case 3:
        return call(request, a, b);
      default:
        return call.apply(undefined, arguments as any);
    }
  },
  "counted-2": function counted2(request: unknown, a?: unknown) {
    switch (arguments.length) {
      case 1:
        return call(request);
      case 2:
        return call(request, a);
      default:
        return call.apply(undefined, arguments as any);
    }
  },
  apply: function apply(this: unknown) {
    return call.apply(this, arguments as any);
  },
};

const CALLS = 1_000_000;
const BATCHES = 9;
const request = { url: "http://localhost/" };
const info = { remoteAddr: "127.0.0.1" };

function inlinedSite(fn: Fetch, n: number): number {
  let wrong = 0;
  for (let i = 0; i < n; i++) if (fn(request, info) !== request) wrong++;
  return wrong;
}

function serverSite(fn: Fetch, n: number): number {
  let wrong = 0;
  for (let i = 0; i < n; i++) if (fn(request, info) !== request) wrong++;
  return wrong;
}

function nsPerCall(site: typeof inlinedSite, fn: Fetch): number {
  site(fn, CALLS); // warm-up
  const samples: number[] = [];
  for (let batch = 0; batch < BATCHES; batch++) {
    const start = performance.now();
    if (site(fn, CALLS) !== 0) throw new Error("the wrapper lost its result");
    samples.push(((performance.now() - start) * 1e6) / CALLS);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(BATCHES / 2)];
}

const name = process.env.FORM ?? "rest";
const form = forms[name];
if (!form) throw new Error(`unknown FORM ${name}`);
// More callees than any engine inlines at one site.
for (let i = 0; i < 16; i++) {
  serverSite(new Function("request", `return request ?? ${i};`) as Fetch, 1e4);
}
console.log(JSON.stringify({
  form: name,
  inlined: nsPerCall(inlinedSite, form),
  server: nsPerCall(serverSite, form),
}));
