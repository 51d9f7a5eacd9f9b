import type { ServerResponse } from "node:http";
import type { Res } from "./http.ts";

/**
 * Server-sent events to the caller. Each write waits for the socket to drain
 * when its buffer is full, so a slow reader slows the upstream read instead
 * of growing the gateway's memory.
 */
export function startSse(res: Res, headers: Record<string, string>): void {
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no", // nginx and friends: do not buffer the stream
    ...headers,
  });
  // Send headers now: the caller's time to first byte should not wait for the first chunk.
  (res as ServerResponse).flushHeaders?.();
}

/** Writes one `data:` event; resolves when it is safe to write the next. */
export function writeEvent(res: Res, json: string): Promise<void> | undefined {
  if (res.write(`data: ${json}\n\n`)) return undefined;
  return new Promise((resolve) => {
    const done = (): void => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
  });
}
