/**
 * Builds the npm package into `npm/` and proves it works on Node:
 *
 * 1. emits ESM `.js` and `.d.ts` for every export of deno.json with the
 *    TypeScript compiler, and a package.json generated from deno.json;
 * 2. runs the test suite under Node against the built files;
 * 3. packs the tarball, installs it into a scratch project and checks that
 *    `import`, `require` (Node >= 20.19) and a TypeScript consumer work;
 * 4. runs publint and @arethetypeswrong/cli on the tarball.
 *
 * With `--emit` it stops after step 1. Either way it links
 * `node_modules/floodgate` to the build, so that examples and tests that
 * import "floodgate" on Bun and Node run the npm package.
 *
 * Usage: deno task build:npm [--emit]
 */
import ts from "typescript";
import { basename, join, resolve } from "node:path";
import { run } from "./_run.ts";
import { transpileBesideBuild } from "./_transpile.ts";

const root = resolve(import.meta.dirname!, "..");
const out = join(root, "npm");
const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
const exportsMap: Record<string, string> = config.exports;

const compilerOptions: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  lib: [
    "lib.es2022.d.ts",
    "lib.dom.d.ts",
    "lib.dom.iterable.d.ts",
    "lib.esnext.disposable.d.ts",
  ],
  types: [],
  strict: true,
  declaration: true,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  skipLibCheck: true,
  outDir: out,
  rootDir: root,
  newLine: ts.NewLineKind.LineFeed,
};

function fail(message: string): never {
  console.error(`build_npm: ${message}`);
  Deno.exit(1);
}

function report(diagnostics: readonly ts.Diagnostic[]): void {
  if (diagnostics.length === 0) return;
  fail(ts.formatDiagnosticsWithColorAndContext(diagnostics, {
    getCanonicalFileName: (f) => f,
    getCurrentDirectory: () => root,
    getNewLine: () => "\n",
  }));
}

// 1. Emit the package.
await Deno.remove(out, { recursive: true }).catch(() => {});
const entries = Object.values(exportsMap).map((path) => join(root, path));
const program = ts.createProgram(entries, compilerOptions);
report(ts.getPreEmitDiagnostics(program));
report(program.emit().diagnostics);

// Declarations keep the `.ts` of relative imports; Node needs `.js`. Those
// that name Symbol.dispose bring the lib that declares it, so that a
// consumer whose own lib lacks it (no @types/node, an older target) still
// type-checks.
for await (const file of walk(out)) {
  if (!file.endsWith(".d.ts")) continue;
  let text = (await Deno.readTextFile(file)).replace(
    /(from\s+["']\.{1,2}\/[^"']*)\.ts(["'])/g,
    "$1.js$2",
  );
  if (text.includes("Symbol.dispose")) {
    text = `/// <reference lib="esnext.disposable" />\n${text}`;
  }
  await Deno.writeTextFile(file, text);
}

const packageExports: Record<string, { types: string; default: string }> = {};
for (const [subpath, path] of Object.entries(exportsMap)) {
  const js = path.replace(/\.ts$/, ".js");
  const types = path.replace(/\.ts$/, ".d.ts");
  for (const file of [js, types]) {
    await Deno.stat(join(out, file)).catch(() =>
      fail(`export ${subpath} was not emitted: ${file} is missing`)
    );
  }
  packageExports[subpath] = { types, default: js };
}
const honoRange = config.imports.hono.replace(/^npm:hono@/, "");
// Only floodgate/otel needs it; the application brings its own copy.
const otelRange = config.imports["@opentelemetry/api"].replace(
  /^npm:@opentelemetry\/api@/,
  "",
);
const packageJson = {
  name: config.name.split("/").pop(),
  version: config.version,
  description:
    "Caps how many requests a fetch handler runs at once: a bounded queue, then a fast 503 with Retry-After.",
  license: config.license,
  keywords: [
    "concurrency",
    "limit",
    "throttle",
    "load-shedding",
    "fetch",
    "hono",
    "deno",
    "bun",
    "cloudflare-workers",
    "opentelemetry",
    "prometheus",
  ],
  type: "module",
  exports: packageExports,
  files: ["*.js", "*.d.ts", "src/"],
  sideEffects: false,
  engines: { node: ">=20" },
  peerDependencies: { hono: honoRange, "@opentelemetry/api": otelRange },
  peerDependenciesMeta: {
    hono: { optional: true },
    "@opentelemetry/api": { optional: true },
  },
};
await Deno.writeTextFile(
  join(out, "package.json"),
  JSON.stringify(packageJson, null, 2) + "\n",
);
for (const file of ["README.md", "LICENSE"]) {
  await Deno.copyFile(join(root, file), join(out, file));
}
// deno.json and package.json must export the same subpaths.
const denoSubpaths = Object.keys(exportsMap).sort().join();
const npmSubpaths = Object.keys(packageJson.exports).sort().join();
if (denoSubpaths !== npmSubpaths) {
  fail(
    `exports differ: deno.json ${denoSubpaths}, package.json ${npmSubpaths}`,
  );
}
const link = join(root, "node_modules", packageJson.name);
await Deno.remove(link).catch(() => {});
await Deno.symlink("../npm", link);
console.log(
  `build_npm: emitted ${packageJson.name}@${packageJson.version} (${npmSubpaths})`,
);
if (Deno.args.includes("--emit")) Deno.exit(0);

// 2. The test suite on Node, against the built files.
const testsOut = join(out, "tests");
const testFiles: string[] = [];
for await (const entry of Deno.readDir(join(root, "tests"))) {
  if (!entry.name.endsWith(".ts")) continue;
  const target = await transpileBesideBuild(root, join("tests", entry.name));
  if (entry.name.endsWith("_test.ts")) testFiles.push(target);
}
// The helpers the tests share with the benchmarks.
for (
  const shared of [
    "scripts/_heap.ts",
    "scripts/_process.ts",
    "scripts/_simulator.ts",
    "scripts/_schedule_sim.ts",
    "scripts/_stats.ts",
  ]
) {
  await transpileBesideBuild(root, shared);
}
await run("node", [
  "--expose-gc",
  "--test",
  "--test-reporter=spec",
  ...testFiles.sort(),
], { cwd: root });
await Deno.remove(testsOut, { recursive: true });
await Deno.remove(join(out, "scripts"), { recursive: true });

// 3. Pack, install into a scratch project, use it as a consumer would.
const scratch = await Deno.makeTempDir({ prefix: "floodgate-consumer-" });
try {
  const packed = await run("npm", [
    "pack",
    "--silent",
    "--pack-destination",
    scratch,
  ], {
    cwd: out,
    capture: true,
  });
  const tarball = join(scratch, packed.trim().split("\n").pop()!);
  console.log(`build_npm: packed ${basename(tarball)}`);
  await Deno.writeTextFile(
    join(scratch, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  await run(
    "npm",
    ["install", "--no-audit", "--no-fund", "--silent", tarball],
    {
      cwd: scratch,
    },
  );
  await Deno.writeTextFile(
    join(scratch, "esm.mjs"),
    `import { throttle, Limiter, RejectedError } from "floodgate";
const fetch = throttle(() => new Response("ok"), { limit: 1 });
const response = await fetch(new Request("http://localhost/"));
if ((await response.text()) !== "ok") throw new Error("import: wrong answer");
if (!(new RejectedError("full") instanceof Error)) throw new Error("import: RejectedError");
if (new Limiter({ limit: 3 }).limit !== 3) throw new Error("import: Limiter");
await import("floodgate/hono");
const { prometheus } = await import("floodgate/prometheus");
const metrics = await prometheus(new Limiter())(new Request("http://localhost/metrics")).text();
if (!metrics.includes("floodgate_requests_total")) throw new Error("import: prometheus");
console.log("import works");
`,
  );
  await Deno.writeTextFile(
    join(scratch, "cjs.cjs"),
    `const { throttle } = require("floodgate");
if (typeof throttle !== "function") throw new Error("require: no throttle");
console.log("require works");
`,
  );
  await Deno.writeTextFile(
    join(scratch, "consumer.ts"),
    `import { Limiter, throttle, type ThrottleStats } from "floodgate";
const handler = throttle((request: Request) => new Response(request.url), {
  limit: 10,
  key: (request) => new URL(request.url).pathname,
});
const stats: ThrottleStats = handler.stats();
const limiter = new Limiter();
const permit = limiter.tryAcquire();
permit?.[Symbol.dispose]();
// @ts-expect-error: a shared limiter carries its own options
throttle(() => new Response(), { limiter, limit: 3 });
export { handler, stats };
`,
  );
  await run("node", ["esm.mjs"], { cwd: scratch });
  await run("node", ["cjs.cjs"], { cwd: scratch });
  const consumer = ts.createProgram([join(scratch, "consumer.ts")], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    // No @types/node and no lib beyond ES2022 and the DOM: the package's
    // declarations must bring what else they need.
    lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
    types: [],
    strict: true,
    skipLibCheck: false,
    noEmit: true,
  });
  report(ts.getPreEmitDiagnostics(consumer));
  console.log("build_npm: a TypeScript consumer type-checks");

  // 4. Packaging lints.
  await run("npx", ["-y", "publint@0.3.25", "run", "--strict", out], {
    cwd: scratch,
  });
  await run("npx", [
    "-y",
    "@arethetypeswrong/cli@0.18.5",
    "--profile",
    "esm-only",
    tarball,
  ], {
    cwd: scratch,
  });
} finally {
  await Deno.remove(scratch, { recursive: true });
}
console.log("build_npm: done");

async function* walk(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) yield* walk(path);
    else yield path;
  }
}
