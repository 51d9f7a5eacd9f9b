import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type { NodeHandler } from "./node-http.ts";

/**
 * One TCP port for HTTP/1.1 and cleartext HTTP/2. Node's
 * `http2.createServer({ allowHTTP1 })` only does this over TLS (ALPN), so the
 * first bytes of each connection are read here: HTTP/2 with prior knowledge
 * (gRPC clients, grpcurl -plaintext, mesh sidecars) always opens with the
 * connection preface, which no HTTP/1 request line can start with.
 */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a new connection may take to send its first bytes. */
const SNIFF_TIMEOUT_MS = 10_000;
/** An HTTP/2 connection with no stream open for this long is closed (as keep-alive does for HTTP/1.1). */
const H2_IDLE_MS = 65_000;

/** connect-node's handler type, which serves both Node HTTP APIs. */
export type RequestHandler = NodeHandler;

export interface OnePortOptions {
  host: string;
  port: number;
  /** Streams one HTTP/2 connection may have open at once. */
  maxConcurrentStreams?: number;
}

export interface OnePortServer {
  readonly port: number;
  readonly host: string;
  /**
   * Stops accepting connections, lets in-flight requests finish for up to
   * `graceMs`, then closes whatever is left.
   */
  close(graceMs: number): Promise<void>;
}

export async function listenOnePort(handler: RequestHandler, options: OnePortOptions): Promise<OnePortServer> {
  // Above the idle timeout of common load balancers (60 s), so they never reuse a socket we just closed.
  const h1 = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 0 }, handler as http.RequestListener);
  const h2 = http2.createServer(
    { settings: { initialWindowSize: 1 << 20, maxConcurrentStreams: options.maxConcurrentStreams ?? 1000 } },
    handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.setTimeout(H2_IDLE_MS, () => s.close());
    s.once("close", () => sessions.delete(s));
  });

  const server = net.createServer({ noDelay: true, keepAlive: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    sniff(socket, (isH2) => (isH2 ? h2 : h1).emit("connection", socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  // node:http starts its connection bookkeeping on "listening": without it,
  // headersTimeout/requestTimeout (slow-client protection) and
  // closeIdleConnections() do nothing for sockets handed over by hand.
  h1.emit("listening");

  return {
    port: address.port,
    host: options.host,
    async close(graceMs) {
      server.close();
      h1.closeIdleConnections();
      for (const s of sessions) s.close(); // GOAWAY: running streams may finish
      const deadline = Date.now() + graceMs;
      while (sockets.size > 0 && Date.now() < deadline) {
        h1.closeIdleConnections();
        await new Promise((r) => setTimeout(r, 25));
      }
      for (const s of sockets) s.destroy();
    },
  };
}

/**
 * Reads until the bytes tell the protocols apart, then puts them back and
 * hands the socket over (paused-mode reads, as the HTTP servers expect).
 */
function sniff(socket: net.Socket, dispatch: (isH2: boolean) => void): void {
  let head: Buffer | undefined;
  // A client that connects and says nothing (or half a preface) is dropped, not held forever.
  socket.setTimeout(SNIFF_TIMEOUT_MS, () => socket.destroy());
  const onReadable = (): void => {
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) return;
    head = head === undefined ? chunk : Buffer.concat([head, chunk]);
    const n = Math.min(head.length, PREFACE.length);
    const matches = head.subarray(0, n).equals(PREFACE.subarray(0, n));
    if (matches && head.length < PREFACE.length) return; // could still be HTTP/2: wait for more
    socket.off("readable", onReadable);
    socket.setTimeout(0);
    socket.unshift(head);
    dispatch(matches);
  };
  socket.on("readable", onReadable);
}
