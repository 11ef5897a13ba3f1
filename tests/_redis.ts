/**
 * A Redis of the tests' own: Debian's redis-server on a free loopback port,
 * persistence off, stopped (by its PID) when done; a TCP proxy that delays
 * traffic; and the child processes (Deno, Bun, Node) that share a limit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Socket } from "node:net";
import { join } from "node:path";
import process from "node:process";
import { freePort, output, repoRoot } from "../scripts/_process.ts";

/** A redis-server started by {@linkcode startRedis}. */
export interface RedisServer {
  port: number;
  url: string;
  /** Stops it (SIGKILL: nothing to save) and waits for its exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port, empty. */
  start(): Promise<void>;
}

async function untilAnswers(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection(port, "127.0.0.1");
      socket.once("data", (data) => {
        socket.destroy();
        resolve(String(data).startsWith("+PONG"));
      });
      socket.once("error", () => resolve(false));
      socket.once("connect", () => socket.write("PING\r\n"));
    });
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`redis-server on ${port} did not answer`);
}

/** Starts redis-server on a free loopback port, persistence off. */
export async function startRedis(): Promise<RedisServer> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startOn(await freePort());
    } catch (error) {
      if (attempt === 3) throw error;
    }
  }
}

async function startOn(port: number): Promise<RedisServer> {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--loglevel",
        "warning",
      ], { stdio: "ignore" });
      const it = child;
      exited = new Promise((resolve) => it.once("exit", () => resolve()));
      await untilAnswers(port);
      // Another process may have taken the port between freePort() and the
      // start (ours then exits): its redis-server must not be the one tested.
      const info = await command(port, "INFO", "server");
      if (!info.includes(`process_id:${it.pid}\r\n`)) {
        await server.stop();
        throw new Error(`port ${port} is another redis-server's`);
      }
    },
    async stop() {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
      await exited;
    },
  };
  await server.start();
  return server;
}

/** Whether `reply` is one whole reply (a bulk string may come in chunks). */
function whole(reply: string): boolean {
  if (!reply.endsWith("\r\n")) return false;
  if (!reply.startsWith("$")) return true;
  const header = reply.indexOf("\r\n");
  const length = Number(reply.slice(1, header));
  return length < 0 || Buffer.byteLength(reply) >= header + length + 4;
}

/** Sends one command on a connection of its own (for checks beside a client). */
export function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(port, "127.0.0.1");
    const parts = [`*${args.length}\r\n`];
    for (const arg of args) {
      parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`);
    }
    let reply = "";
    socket.on("data", (data) => {
      reply += data;
      if (whole(reply)) {
        socket.destroy();
        resolve(reply.trim());
      }
    });
    socket.once("error", reject);
    socket.once("connect", () => socket.write(parts.join("")));
  });
}

/** A TCP proxy to `port` that holds every chunk `delay` ms each way. */
export async function delayProxy(
  port: number,
  delay: { ms: number },
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const pipe = (from: Socket, to: Socket) => {
    // Chunks keep their order when the delay changes.
    let last = 0;
    const later = (action: () => void) => {
      last = Math.max(last, Date.now() + delay.ms);
      setTimeout(action, last - Date.now());
    };
    from.on("data", (chunk) => later(() => to.destroyed || to.write(chunk)));
    from.on("close", () => later(() => to.destroy()));
    from.on("error", () => to.destroy());
  };
  const server = createServer((client) => {
    const upstream = createConnection(port, "127.0.0.1");
    sockets.add(client).add(upstream);
    pipe(client, upstream);
    pipe(upstream, client);
  });
  const listening = await freePort();
  await new Promise<void>((resolve) =>
    server.listen(listening, "127.0.0.1", resolve)
  );
  return {
    port: listening,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A runtime that runs a worker process. */
export type Runtime = "deno" | "bun" | "node";

const executables = new Map<Runtime, Promise<string>>();

/** The executable of `runtime` (the one running the test where it is that one). */
function executable(runtime: Runtime): Promise<string> {
  const self = typeof (globalThis as { Deno?: unknown }).Deno === "object"
    ? "deno"
    : typeof (globalThis as { Bun?: unknown }).Bun === "object"
    ? "bun"
    : "node";
  if (runtime === self) return Promise.resolve(process.execPath);
  if (!executables.has(runtime)) {
    executables.set(
      runtime,
      runtime === "node" ? Promise.resolve("node") : output("npx", [
        "-y",
        ...(runtime === "deno" ? ["deno@2", "eval"] : ["bun@1", "-e"]),
        "console.log(process.execPath)",
      ]).then((path) => path.trim()),
    );
  }
  return executables.get(runtime)!;
}

let transpiled: Promise<string> | undefined;

/**
 * The worker as Node runs it: transpiled into node_modules (whence it finds
 * `floodgate/redis`, the npm build, and the clients).
 */
function nodeWorker(): Promise<string> {
  transpiled ??= (async () => {
    const { default: ts } = await import("typescript");
    const root = repoRoot();
    const source = await import("node:fs/promises").then((fs) =>
      fs.readFile(join(root, "tests", "_redis_worker.ts"), "utf8")
    );
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: {
        target: ts.ScriptTarget.ES2022,
        module: ts.ModuleKind.ESNext,
      },
    });
    const directory = join(root, "node_modules", ".floodgate-tests");
    mkdirSync(directory, { recursive: true });
    const file = join(directory, `_redis_worker_${process.pid}.mjs`);
    writeFileSync(file, outputText);
    return file;
  })();
  return transpiled;
}

/** Removes the worker transpiled for Node, if any. */
export async function removeNodeWorker(): Promise<void> {
  if (transpiled === undefined) return;
  rmSync(await transpiled, { force: true });
  transpiled = undefined;
}

/** A worker process: its lines of output, and its PID to signal. */
export interface Worker {
  pid: number;
  child: ChildProcess;
  /** Resolves with the first line of output that starts with `prefix`. */
  line(prefix: string): Promise<string>;
  /** Resolves with the exit code once it exited. */
  exited: Promise<number | null>;
  output(): string;
}

/** Starts `tests/_redis_worker.ts` on `runtime` with `env`. */
export async function startWorker(
  runtime: Runtime,
  env: Record<string, string>,
): Promise<Worker> {
  const bin = await executable(runtime);
  const root = repoRoot();
  const args = runtime === "deno"
    ? ["run", "-A", join(root, "tests", "_redis_worker.ts")]
    : runtime === "bun"
    ? [join(root, "tests", "_redis_worker.ts")]
    : [await nodeWorker()];
  const child = spawn(bin, args, {
    cwd: root,
    env: { ...process.env, ...env, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  const waiting: Array<{ prefix: string; resolve(line: string): void }> = [];
  const seen: string[] = [];
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    text += chunk;
    const lines = text.split("\n");
    text = lines.pop()!;
    for (const line of lines) {
      seen.push(line);
      for (const w of waiting.splice(0)) {
        if (line.startsWith(w.prefix)) w.resolve(line);
        else waiting.push(w);
      }
    }
  });
  let errors = "";
  child.stderr!.setEncoding("utf8").on("data", (chunk) => errors += chunk);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code))
  );
  return {
    pid: child.pid!,
    child,
    exited,
    output: () => seen.join("\n") + "\n" + errors,
    line(prefix) {
      const found = seen.find((line) => line.startsWith(prefix));
      if (found !== undefined) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiting.push({ prefix, resolve });
        exited.then(() =>
          setTimeout(
            () =>
              reject(
                new Error(
                  `${runtime} worker exited before "${prefix}":\n${
                    seen.join("\n")
                  }\n${errors}`,
                ),
              ),
            100,
          )
        );
      });
    },
  };
}
