import { show } from "./_options.ts";

/**
 * What `RedisLimiter` needs of a Redis client: a way to send one command,
 * and (for waking waiters without polling) a way to subscribe to a channel
 * on a connection of its own. Pass an object of this shape as `redis` to use
 * a client that is not recognised.
 */
export interface RedisAdapter {
  /**
   * Sends one command, e.g. `["EVALSHA", sha, "4", ...]`, and resolves with
   * the reply (integers as numbers, arrays as arrays, errors as rejections
   * whose message starts with the Redis error code, e.g. `NOSCRIPT`).
   */
  send(args: string[]): Promise<unknown>;
  /**
   * Calls `listener` with every message published on `channel`, received on
   * a connection other than the one `send` uses. Resolves once subscribed,
   * with a function that unsubscribes and closes that connection. Without
   * it, waiters learn of their grant only when their lease is renewed
   * (every third of `lease`). `signal` aborts when the limiter gives up
   * waiting (after its `timeout`): the connection opened for it is then to
   * be closed, and the promise may reject.
   */
  subscribe?(
    channel: string,
    listener: (message: string) => void,
    signal?: AbortSignal,
  ): Promise<() => Promise<void>>;
}

interface NodeRedisLike {
  sendCommand(args: string[]): Promise<unknown>;
  duplicate(): NodeRedisLike;
  connect(): Promise<unknown>;
  subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<unknown>;
  on(event: "error", listener: (error: unknown) => void): unknown;
  close?(): Promise<unknown>;
  quit?(): Promise<unknown>;
  destroy?(): unknown;
  disconnect?(): unknown;
}

interface IORedisLike {
  call(command: string, ...args: string[]): Promise<unknown>;
  duplicate(): IORedisLike;
  subscribe(channel: string): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  disconnect(): void;
}

interface BunRedisLike {
  send(command: string, args: string[]): Promise<unknown>;
  duplicate(): BunRedisLike | Promise<BunRedisLike>;
  subscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<unknown>;
  unsubscribe(
    channel: string,
    listener: (message: string) => void,
  ): Promise<unknown>;
  onconnect: (() => void) | null;
  close(): void;
}

const ignore = () => {};

/**
 * Subscribes on `subscriber` (opened by `open`) and resolves with `stop`;
 * stops it when `signal` aborts first or subscribing fails, so that no
 * connection is left reconnecting.
 */
async function subscribed(
  open: () => Promise<unknown>,
  stop: () => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<() => Promise<void>> {
  let stopped: Promise<void> | undefined;
  const once = () => stopped ??= stop().catch(ignore);
  signal?.addEventListener("abort", once, { once: true });
  try {
    await open();
  } catch (error) {
    await once();
    throw error;
  } finally {
    signal?.removeEventListener("abort", once);
  }
  if (signal?.aborted) {
    await once();
    throw signal.reason;
  }
  return once;
}

function nodeRedis(client: NodeRedisLike): RedisAdapter {
  return {
    send: (args) => client.sendCommand(args),
    subscribe(channel, listener, signal) {
      const subscriber = client.duplicate();
      // Errors surface through the commands that fail; an unhandled "error"
      // event would end the process.
      subscriber.on("error", ignore);
      return subscribed(async () => {
        await subscriber.connect();
        await subscriber.subscribe(channel, listener);
      }, async () => {
        // node-redis 5 and later close(); 4 quit().
        if (typeof subscriber.destroy === "function") subscriber.destroy();
        else if (typeof subscriber.disconnect === "function") {
          await subscriber.disconnect();
        } else await (subscriber.close ?? subscriber.quit)!.call(subscriber);
      }, signal);
    },
  };
}

function ioredis(client: IORedisLike): RedisAdapter {
  return {
    send: ([command, ...args]) => client.call(command, ...args),
    subscribe(channel, listener, signal) {
      const subscriber = client.duplicate();
      subscriber.on("error", ignore);
      subscriber.on("message", (from: never, message: never) => {
        if (from === channel) listener(message);
      });
      return subscribed(
        () => subscriber.subscribe(channel),
        () => Promise.resolve(subscriber.disconnect()),
        signal,
      );
    },
  };
}

function bunRedis(client: BunRedisLike): RedisAdapter {
  return {
    send: ([command, ...args]) => client.send(command, args),
    async subscribe(channel, listener, signal) {
      const subscriber = await client.duplicate();
      const subscription = await subscribed(
        () => subscriber.subscribe(channel, listener),
        () => Promise.resolve(subscriber.close()),
        signal,
      );
      // Bun's client reconnects without subscribing again (node-redis and
      // ioredis do): subscribe again on each reconnection, the listener
      // once (Bun would call it once per subscribe).
      subscriber.onconnect = () => {
        subscriber.unsubscribe(channel, listener).catch(ignore)
          .then(() => subscriber.subscribe(channel, listener))
          .catch(ignore);
      };
      return subscription;
    },
  };
}

function has(value: object, ...methods: string[]): boolean {
  return methods.every((method) =>
    typeof (value as Record<string, unknown>)[method] === "function"
  );
}

/**
 * The adapter for `client`: node-redis (`sendCommand`), ioredis (`call`),
 * Bun's `RedisClient` (`send(command, args)`), or an adapter already.
 */
export function adapterOf(client: unknown): RedisAdapter {
  if (typeof client === "object" && client !== null) {
    // ioredis has a sendCommand too, of another shape: `call` tells it.
    if (has(client, "call", "duplicate", "subscribe")) {
      return ioredis(client as IORedisLike);
    }
    if (has(client, "sendCommand", "duplicate", "subscribe", "connect")) {
      return nodeRedis(client as NodeRedisLike);
    }
    const bun = (globalThis as { Bun?: { RedisClient?: unknown } }).Bun;
    if (
      typeof bun?.RedisClient === "function" &&
      client instanceof (bun.RedisClient as new () => object)
    ) {
      return bunRedis(client as BunRedisLike);
    }
    if (has(client, "send")) {
      const { subscribe } = client as RedisAdapter;
      if (subscribe !== undefined && typeof subscribe !== "function") {
        throw new TypeError(
          `floodgate: option "redis" has a subscribe that is not a function, got ${
            show(subscribe)
          }`,
        );
      }
      return client as RedisAdapter;
    }
  }
  throw new TypeError(
    `floodgate: option "redis" must be a node-redis, ioredis or Bun RedisClient client, or an object with send(args), got ${
      show(client)
    }`,
  );
}
