// A body that nobody reads or cancels (a Response dropped by its caller, or
// one a server throws away) would hold its slot forever; the registry frees
// it when the garbage collector reclaims the stream.
const unread = new FinalizationRegistry<() => void>((free) => free());

/**
 * Returns a Response with the same status, status text and headers whose body
 * streams `response`'s body and calls `free` once, when that body ends,
 * errors or is cancelled, or when the new body is garbage collected unread.
 */
export function releaseWithBody(
  response: Response,
  free: () => void,
): Response {
  const reader = response.body!.getReader();
  // What the registry holds must not lead back to the new body (through the
  // reader and a pending read, say), or the body could never be collected.
  const once = { freed: false };
  const release = () => {
    if (once.freed) return;
    once.freed = true;
    free();
  };
  const finish = () => {
    unread.unregister(once);
    release();
  };
  const body = new ReadableStream<Uint8Array>({
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
  unread.register(body, release, once);
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
}
