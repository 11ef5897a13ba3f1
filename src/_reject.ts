/**
 * Builds the default rejection: 503, `Retry-After: retryAfter` and a short
 * plain-text body. The init is made once, so a flood of rejections costs
 * less than serving a real response.
 */
export function defaultRejection(retryAfter: number): () => Response {
  const init: ResponseInit = {
    status: 503,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "retry-after": String(retryAfter),
    },
  };
  return () => new Response("Service Unavailable: server at capacity\n", init);
}
