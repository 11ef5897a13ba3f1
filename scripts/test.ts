/**
 * Checks everything: formatting, lint, types, docs, the JSR package, then the
 * same test files on Deno, Bun and Node (the npm build), and the npm tarball.
 * Prints each runtime's count of passed tests and fails if any runtime ran
 * fewer tests than the others.
 *
 * Usage: deno task test
 */
const BUN = "bun@1";

interface Step {
  name: string;
  command: string;
  args: string[];
  /** Which runtime's test counts this step prints. */
  runtime?: "deno" | "bun" | "node";
}

const deno = Deno.execPath();
const steps: Step[] = [
  {
    name: "install npm dependencies",
    command: deno,
    // workerd's install script only checks its binary; allowed, it prints
    // nothing.
    args: ["install", "--frozen", "--allow-scripts=npm:workerd"],
  },
  {
    // The metrics tests check their output with promtool and let a real
    // Prometheus scrape an example; the fleet tests start a redis-server of
    // their own. CI machines start clean, as bench/_ensure.ts knows for wrk.
    name: "Debian's prometheus and redis-server where missing",
    command: "sh",
    args: [
      "-c",
      "command -v promtool >/dev/null && command -v prometheus >/dev/null && command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus redis-server >&2; }",
    ],
  },
  { name: "format", command: deno, args: ["fmt", "--check"] },
  { name: "lint", command: deno, args: ["lint"] },
  { name: "type-check", command: deno, args: ["check", "."] },
  {
    name: "docs type-check (code blocks of README.md and docs/)",
    command: deno,
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      "scripts/check_docs.ts",
    ],
  },
  {
    name: "type-check the Bun example against Bun's types",
    command: deno,
    args: [
      "check",
      "--config",
      "examples/bun_check.jsonc",
      "examples/bun.js",
      "examples/metrics_bun.js",
    ],
  },
  {
    name: "doc lint",
    command: deno,
    args: ["run", "--allow-run", "--allow-read", "scripts/doc_lint.ts"],
  },
  {
    name: "doc examples",
    command: deno,
    args: [
      "test",
      "--doc",
      "--allow-all",
      "mod.ts",
      "hono.ts",
      "otel.ts",
      "prometheus.ts",
      "redis.ts",
      "src/",
    ],
  },
  {
    name: "JSR package",
    command: deno,
    args: ["publish", "--dry-run", "--allow-dirty"],
  },
  {
    name: "npm build (Bun, Node and workerd tests import it)",
    command: deno,
    args: ["run", "--allow-all", "scripts/build_npm.ts", "--emit"],
  },
  {
    name: "tests on Deno",
    command: deno,
    // As the README advises Deno apps: request.signal aborts only when the
    // client leaves, and Deno prints no warning about it.
    args: [
      "test",
      "--allow-all",
      "--unstable-no-legacy-abort",
      "--v8-flags=--expose-gc",
      "tests/",
    ],
    runtime: "deno",
  },
  {
    name: "tests on Bun",
    command: "npx",
    args: ["-y", BUN, "test", "--timeout", "60000", "tests/"],
    runtime: "bun",
  },
  {
    name: "tests on Node (npm build) and the tarball",
    command: deno,
    args: ["run", "--allow-all", "scripts/build_npm.ts"],
    runtime: "node",
  },
];

const patterns = {
  deno: [/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/],
  bun: [/^\s*(\d+) pass$/m, /^\s*(\d+) fail$/m],
  node: [/^ℹ pass (\d+)$/m, /^ℹ fail (\d+)$/m],
};

function count(runtime: keyof typeof patterns, output: string) {
  const [first, second] = patterns[runtime];
  const a = output.match(first);
  if (!a) return undefined;
  if (second === undefined) {
    return { passed: Number(a[1]), failed: Number(a[2]) };
  }
  const b = output.match(second);
  return { passed: Number(a[1]), failed: b ? Number(b[1]) : NaN };
}

const env = { NO_COLOR: "1", FORCE_COLOR: "0" };
const results: Array<{ runtime: string; passed: number; failed: number }> = [];
const started = Date.now();
for (const step of steps) {
  console.log(`\n=== ${step.name}`);
  // The flood test holds 10,000 sockets: raise the soft limit on open files
  // to the hard one first.
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"',
      step.command,
      ...step.args,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Bun reports on stderr, Deno and Node on stdout: keep both, pass both on.
  let output = "";
  const tee = async (
    from: ReadableStream<Uint8Array>,
    to: typeof Deno.stdout,
  ) => {
    const decoder = new TextDecoder();
    for await (const chunk of from) {
      await to.write(chunk);
      output += decoder.decode(chunk, { stream: true });
    }
  };
  await Promise.all([
    tee(child.stdout, Deno.stdout),
    tee(child.stderr, Deno.stderr),
  ]);
  // Counts are read from the text without colour codes.
  // deno-lint-ignore no-control-regex
  output = output.replace(/\x1b\[[0-9;]*m/g, "");
  const status = await child.status;
  if (step.runtime) {
    const counted = count(step.runtime, output);
    if (counted === undefined) {
      console.error(`test: could not read the test count of ${step.runtime}`);
      Deno.exit(1);
    }
    results.push({ runtime: step.runtime, ...counted });
  }
  if (!status.success) {
    console.error(`test: step "${step.name}" failed (exit ${status.code})`);
    Deno.exit(status.code || 1);
  }
}

console.log("\n=== summary");
for (const r of results) {
  console.log(
    `${r.runtime.padEnd(5)} ${
      String(r.passed).padStart(4)
    } passed, ${r.failed} failed`,
  );
}
const counts = new Set(results.map((r) => r.passed));
if (counts.size !== 1) {
  console.error("test: the runtimes ran different numbers of tests");
  Deno.exit(1);
}
const passed = results.reduce((sum, r) => sum + r.passed, 0);
const failed = results.reduce((sum, r) => sum + r.failed, 0);
console.log(`(${Math.round((Date.now() - started) / 1000)} s)`);
console.log(`${passed} passed, ${failed} failed`);
if (failed !== 0) Deno.exit(1);
