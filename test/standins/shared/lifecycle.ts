/**
 * Server scaffolding every provider stand-in shares: a loopback HTTP server,
 * per-request exchanges that know when their client left, the count of such
 * client aborts (with waiters), and an idempotent `close()`.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** One request being answered. */
export interface Exchange {
  readonly res: ServerResponse;
  /** Aborted when the client leaves or the stand-in closes: stops waits and writes. */
  readonly gone: AbortController;
  /** The stand-in destroyed the socket on purpose (e.g. a cut stream): not a client abort. */
  cutByServer: boolean;
}

/**
 * Tracks a stand-in's open exchanges and client aborts, and owns its server.
 * An exchange counts as aborted when its response closes unfinished, not cut
 * by the stand-in, and not because the stand-in is closing.
 */
export class StandinLifecycle {
  readonly #label: string;
  readonly #open = new Set<Exchange>();
  readonly #waiters = new Set<() => void>();
  #aborted = 0;
  #closing = false;
  #closed: Promise<void> | undefined;
  #server: Server | undefined;

  /** `label` prefixes error messages, e.g. "bedrock stand-in". */
  constructor(label = "stand-in") {
    this.#label = label;
  }

  /** Requests whose client closed the connection before the response finished (live count). */
  get aborted(): number {
    return this.#aborted;
  }

  /** Starts tracking the exchange of `req`/`res`; `extra` fields are merged into it. */
  open<T extends object = object>(req: IncomingMessage, res: ServerResponse, extra?: T): Exchange & T {
    const x: Exchange & T = Object.assign({ res, gone: new AbortController(), cutByServer: false }, extra);
    this.#open.add(x);
    res.once("close", () => {
      this.#open.delete(x);
      if (!res.writableFinished && !x.cutByServer && !this.#closing) {
        this.#aborted++;
        for (const wake of this.#waiters) wake();
      }
      x.gone.abort();
    });
    req.on("error", () => x.gone.abort());
    return x;
  }

  /** Resolves once `aborted >= count`; rejects after `timeoutMs` (default 5000). */
  waitForAborted(count: number, timeoutMs = 5000): Promise<void> {
    if (this.#aborted >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`${this.#label}: aborted is ${this.#aborted} after ${timeoutMs} ms, expected >= ${count}`));
      }, timeoutMs);
      const check = (): void => {
        if (this.#aborted < count) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      this.#waiters.add(check);
    });
  }

  /**
   * Serves `handle` on 127.0.0.1 (keep-alive, no Nagle) and resolves with the
   * port once listening. A handler that throws answers 500 with the stack, so
   * a stand-in bug surfaces in the test instead of hanging it.
   */
  async listen(handle: (req: IncomingMessage, res: ServerResponse) => Promise<void>, opts: { port?: number; keepAliveTimeout?: number } = {}): Promise<number> {
    const server = createServer({ keepAlive: true, noDelay: true }, (req, res) => {
      handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`stand-in failure: ${err instanceof Error ? err.stack : String(err)}`);
      });
    });
    if (opts.keepAliveTimeout !== undefined) server.keepAliveTimeout = opts.keepAliveTimeout;
    this.#server = server;
    server.listen(opts.port ?? 0, "127.0.0.1");
    await once(server, "listening");
    return (server.address() as AddressInfo).port;
  }

  /** Ends every open exchange (not counted as aborts), stops listening and drops all connections. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      for (const x of this.#open) x.gone.abort();
      const server = this.#server;
      if (!server) return;
      const done = once(server, "close");
      server.close();
      server.closeAllConnections();
      await done;
    })();
    return this.#closed;
  }
}

/** Waits `ms`; false when the client left or the stand-in closed meanwhile. */
export async function pause(x: Exchange, ms: number): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal: x.gone.signal });
  } catch {
    return false;
  }
  return !x.res.destroyed;
}

/** Writes and waits until the data was handed to the socket, or the exchange ended (client left, stand-in closed). */
export function write(x: Exchange, data: string | Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const signal = x.gone.signal;
    if (signal.aborted) return resolve();
    const done = (): void => {
      signal.removeEventListener("abort", done);
      resolve();
    };
    signal.addEventListener("abort", done, { once: true });
    x.res.write(data, done);
  });
}

/** Destroys the socket on purpose: the client sees a dead connection, and it is not counted as a client abort. */
export function cutConnection(x: Exchange): void {
  x.cutByServer = true;
  x.res.socket?.destroy();
}

/** The whole request body; undefined when the client aborted it. */
export async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  try {
    for await (const part of req) parts.push(part as Buffer);
  } catch {
    return undefined;
  }
  return Buffer.concat(parts);
}
