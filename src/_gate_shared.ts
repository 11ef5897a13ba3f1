import { show } from "./_options.ts";

/**
 * What both gates (`_gate.ts` and `_gate_async.ts`) share; a module of its
 * own, since the synchronous gate imports the asynchronous one.
 */

/**
 * The answer to a waiting client that disconnected, which nobody reads
 * (nginx logs the same situation as 499).
 */
export const CLIENT_CLOSED: ResponseInit = {
  status: 499,
  statusText: "Client Closed Request",
};

/** `key` must return a string and `skip` a boolean, synchronously. */
export function checkCallbackResult(
  name: "key" | "skip",
  value: unknown,
): void {
  const type = typeof value;
  const expected = name === "key" ? "string" : "boolean";
  if (type === expected) return;
  const when = value instanceof Promise ? " synchronously" : "";
  throw new TypeError(
    `floodgate: option "${name}" must return a ${expected}${when}, got ${
      show(value)
    }`,
  );
}
