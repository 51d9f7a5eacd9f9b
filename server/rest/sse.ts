import { ServerResponse } from "node:http";
import type { Res } from "./http.ts";

/**
 * Server-sent events to the caller. Each write waits for the socket to drain
 * when its buffer is full, so a slow reader slows the upstream read instead
 * of growing the gateway's memory.
 */
/**
 * A caller whose connection has taken nothing for this long is gone or stuck:
 * the stream is cut so it does not hold an upstream request (and its
 * accounting) forever. Longer than any provider's idle gap, so a quiet
 * provider ends the stream with an error event first.
 */
const STALLED_CALLER_MS = 120_000;

export function startSse(res: Res, headers: Record<string, string>): void {
  res.setTimeout(STALLED_CALLER_MS, () => res.destroy());
  res.writeHead(200, {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no", // nginx and friends: do not buffer the stream
    ...headers,
  });
  // Headers go out with the first event, in one packet: streams start only
  // once the first chunk is in hand (until then, errors are plain HTTP errors).
}

/** Writes one `data:` event; resolves when it is safe to write the next. */
export function writeEvent(res: Res, json: string): Promise<void> | undefined {
  return writeFrame(res, `data: ${json}\n\n`);
}

/**
 * Writes raw SSE bytes (whole frames, possibly with `event:` lines);
 * resolves when it is safe to write the next: the socket drained or closed.
 */
export function writeFrame(res: Res, frame: string | Uint8Array): Promise<void> | undefined {
  // A caller already gone: its "close" has fired and no "drain" will come, so waiting would hang
  // the handler (and the request's reservation) for ever. The loop sees the abort and stops.
  if (res.destroyed || res.writableEnded) return undefined;
  if (res.write(frame)) return undefined;
  if (res.destroyed) return undefined;
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

/** Writes a stream's last frame and ends the response with it, in one write: the caller has every byte at once. */
export function endWithFrame(res: Res, frame: string): void {
  if (res.destroyed || res.writableEnded) return;
  res.end(frame);
}

/**
 * Sends what was written so far now. Node corks an HTTP/1.1 response's
 * socket at its first write in a tick and sends at the tick's end, after
 * whatever else the tick does (such as the upstream chunks that came in the
 * same read); the first events need not wait for those (issue 13). HTTP/2
 * streams share their session's socket, which is left as it is.
 */
export function sendNow(res: Res): void {
  if (res instanceof ServerResponse && res.socket?.writableCorked) res.socket.uncork();
}
