// A body that nobody reads or cancels (a Response dropped by its caller, or
// one a server throws away) would hold its slot forever; the registry frees
// it when the garbage collector reclaims the stream. Workers on a
// compatibility date before 2025-05-05 have no FinalizationRegistry: there
// the module still loads, and such a body keeps its slot.
const unread = typeof FinalizationRegistry === "function"
  ? new FinalizationRegistry<() => void>((release) => release())
  : undefined;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | undefined)?.then ===
    "function";
}

/** What Deno passes after the request. */
interface DenoServeInfo {
  completed?: unknown;
}

/** What `@hono/node-server` passes after the request. */
interface NodeBindings {
  incoming?: unknown;
  outgoing?: {
    once?: unknown;
    destroyed?: unknown;
    writableFinished?: unknown;
  };
}

/**
 * The server's own word that a response was delivered (or failed), where it
 * gives one with the argument after the request: Deno's `info.completed`,
 * and the "close" event of Node's response in `@hono/node-server`'s
 * `{ incoming, outgoing }`. With it, a slot waits for delivery instead of for
 * a re-wrapped body, which costs a stream per response. Both are recognised
 * by their whole shape, so that a Worker's binding named `outgoing` or
 * `completed` is not mistaken for them.
 */
export function deliveredBy(server: unknown): PromiseLike<unknown> | undefined {
  if (typeof server !== "object" || server === null) return undefined;
  // `in`, because Deno's `remoteAddr` getter throws once an upgraded
  // request is closed.
  const { completed } = server as DenoServeInfo;
  if (isThenable(completed) && "remoteAddr" in server) return completed;
  const { incoming, outgoing } = server as NodeBindings;
  const once = outgoing?.once;
  if (
    typeof incoming !== "object" || typeof once !== "function" ||
    typeof outgoing!.writableFinished !== "boolean"
  ) {
    return undefined;
  }
  // A client that left before the handler returned closed the response
  // already: "close" will not come again.
  if (outgoing!.destroyed === true || outgoing!.writableFinished === true) {
    return Promise.resolve();
  }
  return new Promise((resolve) => once.call(outgoing, "close", resolve));
}

/**
 * Calls `release` once the response the handler returned is delivered, and
 * returns what to send in its place: the same response, or one whose body
 * streams the original and releases when that ends, errors or is cancelled.
 * Whatever cannot hold a slot (no Response, a 101 upgrade, a HEAD request,
 * no body, a body already used or locked) releases at once, and so does a
 * response whose getters throw (the error is passed on).
 */
export function releaseAfterBody<R>(
  response: R,
  request: { method: string; delivered: PromiseLike<unknown> | undefined },
  release: () => void,
): R {
  let released = false;
  const releaseOnce = () => {
    if (released) return;
    released = true;
    release();
  };
  try {
    return holdUntilSent(response, request, releaseOnce);
  } catch (error) {
    releaseOnce();
    throw error;
  }
}

function holdUntilSent<R>(
  response: R,
  request: { method: string; delivered: PromiseLike<unknown> | undefined },
  release: () => void,
): R {
  if (
    !(response instanceof Response) || response.status === 101 ||
    request.method === "HEAD"
  ) {
    release();
    return response;
  }
  // Checked before the body: on Node, reading `body` alone makes
  // @hono/node-server build the full Response it otherwise avoids.
  if (request.delivered !== undefined) {
    request.delivered.then(release, release);
    return response;
  }
  // Bun fills in the implicit Content-Type of a Blob, FormData or
  // URLSearchParams body when the headers are read, and loses it once the
  // body was read first: headers first.
  const headers = response.headers;
  const body = response.body;
  if (body === null || body.locked || response.bodyUsed) {
    release();
    return response;
  }
  return rewrap(response, { headers, body }, release) as R;
}

/**
 * A Response with the same status, status text and headers whose body
 * streams `body` and calls `release` (idempotent: it may be called again
 * after the body ended, on collection) when it ends, errors or is cancelled,
 * or when the new body is garbage collected unread.
 */
function rewrap(
  response: Response,
  parts: { headers: Headers; body: ReadableStream<Uint8Array> },
  release: () => void,
): Response {
  const { headers, body } = parts;
  const reader = body.getReader();
  // The registry's token must not lead back to the new body (through the
  // reader and a pending read, say), or the body could never be collected.
  const token = {};
  const finish = () => {
    unread?.unregister(token);
    release();
  };
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const chunk = await reader.read();
        if (chunk.done) {
          finish();
          controller.close();
        } else {
          controller.enqueue(chunk.value);
        }
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  unread?.register(stream, release, token);
  return new Response(stream, {
    status: response.status,
    statusText: response.statusText,
    headers,
  });
}
