import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/**
 * Starts a real HTTP server of the runtime running the tests on 127.0.0.1 and
 * a free port: Deno.serve, Bun.serve, or on Node `@hono/node-server`.
 */

// deno-lint-ignore no-explicit-any
type Handler = (request: Request, ...rest: any[]) => unknown;

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

interface BunServer {
  port: number;
  stop(closeActiveConnections?: boolean): Promise<void> | void;
}

/** The runtime running the tests. */
export const runtime: "deno" | "bun" | "node" = "Bun" in globalThis
  ? "bun"
  : "Deno" in globalThis
  ? "deno"
  : "node";

export async function serve(
  handler: Handler,
  port = 0,
): Promise<TestServer> {
  if (runtime === "bun") {
    const { Bun } = globalThis as unknown as {
      Bun: { serve(options: object): BunServer };
    };
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port,
      fetch: handler,
    });
    return {
      url: `http://127.0.0.1:${server.port}`,
      close: async () => await server.stop(true),
    };
  }
  if (runtime === "deno") {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port, onListen() {} },
      handler as Deno.ServeHandler,
    );
    return {
      url: `http://127.0.0.1:${server.addr.port}`,
      close: () => server.shutdown(),
    };
  }
  const { serve } = await import("@hono/node-server");
  const { promise, resolve } = resolvers<number>();
  const server = serve(
    // deno-lint-ignore no-explicit-any
    { fetch: handler as any, hostname: "127.0.0.1", port },
    (info) => resolve(info.port),
  );
  const listening = await promise;
  return {
    url: `http://127.0.0.1:${listening}`,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        (server as unknown as { closeAllConnections?(): void })
          .closeAllConnections?.();
      }),
  };
}

/** `Promise.withResolvers`, which Node 20 lacks. */
function resolvers<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => resolve = res);
  return { promise, resolve };
}

/** Waits until `condition()` holds, failing after `ms` with `what`. */
export async function until(
  what: string,
  condition: () => boolean,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** The repository root (tests also run from the npm build's `npm/tests`). */
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

export interface Process {
  pid: number;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts a server process listening on `port` (also given to it as $PORT,
 * with `env`) and waits until `path` answers. It is stopped by its PID.
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
    await exited;
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
