// One process helper for the tests and the benchmarks.
export {
  freePort,
  type Process,
  repoRoot,
  startProcess,
} from "../scripts/_process.ts";

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
  condition: () => boolean | Promise<boolean>,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
