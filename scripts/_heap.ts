/** The heap after a full collection, on Deno, Bun and Node: for tests and benchmarks. */
import process from "node:process";

/** The runtime's way to force a full garbage collection. */
export function collector(): () => void {
  const g = globalThis as {
    gc?: () => void;
    Bun?: { gc(full: boolean): void };
  };
  if (g.Bun) return () => g.Bun!.gc(true);
  if (typeof g.gc === "function") return g.gc;
  throw new Error(
    "run with --expose-gc (Node) or --v8-flags=--expose-gc (Deno)",
  );
}

/** Heap bytes in use after full collections and turns of the event loop. */
export async function settledHeap(): Promise<number> {
  const collect = collector();
  for (let i = 0; i < 3; i++) {
    collect();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return process.memoryUsage().heapUsed;
}
