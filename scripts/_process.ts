/**
 * Child processes for the tests and the benchmarks, on Deno, Bun and Node
 * alike: commands run to completion, servers started on a free port and
 * stopped by their PID.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The repository root (this file also runs from the npm build's `npm/scripts`). */
export function repoRoot(): string {
  const here = fileURLToPath(new URL("..", import.meta.url));
  return existsSync(join(here, "deno.json")) ? here : join(here, "..");
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Options for {@linkcode output}. */
export interface OutputOptions {
  /** Defaults to the repository root. */
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
}

/**
 * Runs a command to its end and returns what it wrote to stdout; its stderr
 * passes through. Rejects when it exits with anything but 0.
 */
export function output(
  command: string,
  args: string[],
  options: OutputOptions = {},
): Promise<string> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? repoRoot(),
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk) => stdout += chunk);
  return new Promise((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code, signal) => {
      if (code === 0) resolve(stdout);
      else {
        reject(
          new Error(
            `${command} ${args.join(" ")} failed (${signal ?? `exit ${code}`})`,
          ),
        );
      }
    });
  });
}

/** A server started by {@linkcode startProcess}. */
export interface Process {
  pid: number;
  /** `http://127.0.0.1:<port>`, without a trailing slash. */
  url: string;
  /** What it wrote to stdout and stderr so far. */
  output(): string;
  /** Stops it (SIGTERM) and waits for its exit. */
  stop(): Promise<void>;
}

/**
 * Starts a server process listening on `port` (also given to it as $PORT,
 * with `env`) in the repository root, and waits until `path` answers. It is
 * stopped by its PID.
 */
export async function startProcess(
  command: string,
  args: string[],
  port: number,
  path = "/",
  env: Record<string, string> = {},
): Promise<Process> {
  const child = spawn(command, args, {
    cwd: repoRoot(),
    env: { ...process.env, ...env, PORT: String(port), NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk) => output += chunk);
  child.stderr!.on("data", (chunk) => output += chunk);
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => resolve())
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill();
    // A server that shuts down gracefully may wait for a half-open socket.
    const stubborn = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(stubborn);
  };
  const deadline = Date.now() + 30_000;
  while (true) {
    if (child.exitCode !== null) {
      throw new Error(`${command} ${args.join(" ")} exited:\n${output}`);
    }
    try {
      await (await fetch(url + path)).arrayBuffer();
      break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `${command} ${args.join(" ")} did not answer:\n${output}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { pid: child.pid!, url, output: () => output, stop };
}
