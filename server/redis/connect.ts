import type { Redis } from "ioredis";

/**
 * A Redis connection as every shared store here wants it: calls fail fast
 * instead of queueing while disconnected (a request must never hang on
 * Redis, and a queued write that ran late could hold money nobody owns),
 * a command cut off by a dropped connection is not re-sent, and the
 * connection keeps retrying in the background. Resolves after the first
 * attempt, connected or not: callers see failures per call, and their
 * healthy() says whether the connection is up.
 */
export async function connectRedis(url: string, commandTimeoutMs: number): Promise<Redis> {
  // Loaded on first use: a gateway on embedded defaults never pays for ioredis at start.
  const { Redis } = await import("ioredis");
  const redis = new Redis(url, {
    lazyConnect: true,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(1000, commandTimeoutMs * 2),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  });
  // Failures surface on each call; without a listener ioredis would print every reconnect error.
  redis.on("error", () => undefined);
  await redis.connect().catch(() => undefined);
  return redis;
}
