/**
 * Everything the benchmarks need before the first measurement, in one place:
 * the npm build with the bench programs transpiled beside it (Node runs
 * those, from a copy of its own, so that a build started meanwhile does not
 * pull it away), wrk (and nginx for the full set) from Debian where missing,
 * and Bun.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { output, repoRoot } from "../scripts/_process.ts";
import { transpileBesideBuild } from "../scripts/_transpile.ts";

/** A runtime the benchmarks run on. */
export type Runtime = "deno" | "bun" | "node";

/** The runtimes, in the order of every table. */
export const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];

/** What the suites run with; disposing of it removes the Node copy. */
export interface Setup extends AsyncDisposable {
  /** The full set (`--full`), or the quick one. */
  full: boolean;
  root: string;
  /** Where results are written. */
  results: string;
  /** The Bun executable. */
  bun: string;
  /** The npm build and the transpiled programs, for Node. */
  nodeBuild: string;
  versions: Record<Runtime, string>;
  /** Two CPUs or more: servers run on CPU 1, load generators on CPU 0. */
  pin: boolean;
  /** Rounds of the metrics suite (`--rounds`), instead of its default. */
  rounds?: number;
}

/** The programs that run on every runtime; Node runs them transpiled. */
const PROGRAMS = [
  "bench/_http_server.ts",
  "bench/_deadline_server.ts",
  "bench/rejection_micro.ts",
  "bench/micro.ts",
  "bench/memory.ts",
  "bench/wrapper_call.ts",
  "bench/metrics_memory.ts",
  "bench/metrics_micro.ts",
  "bench/redis_fleet.ts",
];

/**
 * Builds, transpiles and installs what the suites of this set need, and
 * describes the machine they run on.
 */
export async function ensure(full: boolean): Promise<Setup> {
  const root = repoRoot();
  await ensureBinary("wrk", "wrk");
  if (full) await ensureBinary("nginx", "nginx-light");
  const nodeBuild = await buildForNode(root);
  const bun = (await output("npx", [
    "-y",
    "bun@1",
    "-e",
    "console.log(process.execPath)",
  ])).trim();
  const results = join(root, "bench", "results");
  await Deno.mkdir(results, { recursive: true });
  return {
    full,
    root,
    results,
    bun,
    nodeBuild,
    versions: {
      deno: Deno.version.deno,
      bun: (await output(bun, ["--version"])).trim(),
      node: (await output("node", ["--version"])).trim().replace(/^v/, ""),
    },
    pin: navigator.hardwareConcurrency >= 2,
    [Symbol.asyncDispose]: () => Deno.remove(nodeBuild, { recursive: true }),
  };
}

/**
 * Emits the npm build, transpiles the programs beside it and copies the lot
 * to a directory of its own (with a link to node_modules), where the copy is
 * whole: another build may empty npm/ at any moment.
 */
async function buildForNode(root: string): Promise<string> {
  for (let attempt = 1;; attempt++) {
    const copy = await Deno.makeTempDir({ prefix: "floodgate-bench-" });
    try {
      await output(Deno.execPath(), [
        "run",
        "-A",
        "scripts/build_npm.ts",
        "--emit",
      ]);
      const done = new Set<string>();
      for (const program of PROGRAMS) {
        await transpileWithImports(root, program, done);
      }
      await output("cp", ["-R", `${join(root, "npm")}/.`, copy]);
      for (const file of [...done, "mod.ts"]) {
        const js = join(copy, file.replace(/\.ts$/, ".js"));
        if (!existsSync(js)) throw new Error(`${js} is missing`);
      }
      await Deno.symlink(
        join(root, "node_modules"),
        join(copy, "node_modules"),
      );
      return copy;
    } catch (error) {
      await Deno.remove(copy, { recursive: true });
      if (attempt === 3) throw error;
      console.error(`bench: the npm build changed under us (${error}); again`);
    }
  }
}

/**
 * Transpiles `file` beside the npm build and, the same way, the local files
 * it imports that the build did not emit.
 */
async function transpileWithImports(
  root: string,
  file: string,
  done: Set<string>,
): Promise<void> {
  if (done.has(file)) return;
  done.add(file);
  await transpileBesideBuild(root, file);
  const source = await Deno.readTextFile(join(root, file));
  for (const [, specifier] of source.matchAll(/from "(\.\.?\/[^"]+\.ts)"/g)) {
    const imported = join(file, "..", specifier);
    const built = join(root, "npm", imported.replace(/\.ts$/, ".js"));
    if (!done.has(imported) && !existsSync(built)) {
      await transpileWithImports(root, imported, done);
    }
  }
}

/** Installs the Debian package `pkg` when `binary` is not on the PATH. */
export async function ensureBinary(binary: string, pkg: string): Promise<void> {
  const found = await output("sh", ["-c", `command -v ${binary} || true`]);
  if (found.trim() !== "") return;
  console.error(
    `bench: ${binary} is missing; installing the Debian package ${pkg}`,
  );
  await output("sh", [
    "-c",
    `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg} >&2`,
  ]);
}
