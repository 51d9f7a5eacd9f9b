import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as tls from "node:tls";
import type { NodeHandler, NodeRequest, NodeResponse } from "./node-http.ts";

/**
 * One TCP port for HTTP/1.1 and HTTP/2, cleartext or TLS. Node's
 * `http2.createServer({ allowHTTP1 })` only does this over TLS (ALPN), so the
 * first bytes of each connection are read here: HTTP/2 with prior knowledge
 * (gRPC clients, grpcurl -plaintext, mesh sidecars) always opens with the
 * connection preface, which no HTTP/1 request line can start with.
 */
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** How long a new connection may take to send its first bytes. */
const SNIFF_TIMEOUT_MS = 10_000;
/** The longest a caller may take to send a whole HTTP/1.1 request, body included (a large upload on a slow link fits). */
const REQUEST_TIMEOUT_MS = 300_000;
/** An HTTP/2 connection with no stream open for this long is closed (as keep-alive does for HTTP/1.1). */
const H2_IDLE_MS = 65_000;

/** connect-node's handler type, which serves both Node HTTP APIs. */
export type RequestHandler = NodeHandler;

export interface OnePortOptions {
  host: string;
  port: number;
  /** Streams one HTTP/2 connection may have open at once. */
  maxConcurrentStreams?: number;
  /** Serve TLS instead of cleartext: HTTP/2 and HTTP/1.1 offered by ALPN, client certificates optional. */
  tls?: TlsOptions | undefined;
}

export interface TlsOptions {
  /** PEM certificate chain and private key. */
  cert: Buffer;
  key: Buffer;
  /** PEM CA bundle that client certificates must chain to; with it, clients without a valid certificate are refused. */
  clientCa?: Buffer | undefined;
}

/**
 * How long a request still open when the grace ends gets to write its last
 * words (a stream's error event, an RPC's status) before its socket is cut.
 */
const FLUSH_MS = 1_000;

/** The steps of a graceful stop; see {@link OnePortServer.close}. */
export interface CloseOptions {
  /**
   * Keep accepting for this long first, so load balancers see /readyz fail
   * before connections are refused. Counted inside `graceMs`. Default 0.
   */
  drainDelayMs?: number;
  /**
   * Called once when the grace ends with connections still open: requests
   * still running should end now with an explicit error in their protocol.
   * They get up to a second to write it before their sockets are destroyed.
   */
  onDeadline?: () => void;
}

export interface OnePortServer {
  readonly port: number;
  readonly host: string;
  /**
   * Graceful stop, `graceMs` in all from the call: HTTP/1.1 answers say
   * `connection: close` from now on; after `drainDelayMs` the listener
   * closes (new connections are refused), idle keep-alive connections are
   * closed and HTTP/2 sessions get GOAWAY; in-flight requests and streams
   * may finish until the grace ends; then `onDeadline` runs, and whatever is
   * left after a short flush is destroyed. Idempotent: a second call waits
   * for the first.
   */
  close(graceMs: number, options?: CloseOptions): Promise<void>;
}

export async function listenOnePort(requestHandler: RequestHandler, options: OnePortOptions): Promise<OnePortServer> {
  const handler = withUsableDeadlines(requestHandler);
  let draining = false;
  // While draining, each HTTP/1.1 answer closes its connection, so keep-alive clients reconnect (elsewhere, once refused).
  const h1Handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (draining && !res.headersSent) res.setHeader("connection", "close");
    (handler as http.RequestListener)(req, res);
  };
  // Above the idle timeout of common load balancers (60 s), so they never reuse a socket we just closed.
  // requestTimeout bounds receiving a request (headers and body), not answering it: a caller that stops
  // sending mid-body gets 408 instead of holding a socket for ever; streamed answers are not affected.
  const h1 = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: REQUEST_TIMEOUT_MS }, h1Handler);
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

  const accept = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    // Over TLS too: ALPN says which protocol the client chose, and its first bytes say the same.
    sniff(socket, (isH2) => (isH2 ? h2 : h1).emit("connection", socket));
  };
  const t = options.tls;
  const server: net.Server = t === undefined
    ? net.createServer({ noDelay: true, keepAlive: true }, accept)
    : tls.createServer({
        noDelay: true,
        keepAlive: true,
        cert: t.cert,
        key: t.key,
        ALPNProtocols: ["h2", "http/1.1"],
        minVersion: "TLSv1.2",
        // A client that never finishes its handshake is dropped, as one that never speaks is.
        handshakeTimeout: SNIFF_TIMEOUT_MS,
        ...(t.clientCa === undefined ? {} : { ca: t.clientCa, requestCert: true, rejectUnauthorized: true }),
      }, accept);
  // A failed handshake (no client certificate, a scanner) ends that connection only.
  server.on("tlsClientError", (_err: Error, socket: tls.TLSSocket) => socket.destroy());

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

  /** Resolves once no socket is left, or at `until` (ms since the epoch); closes idle keep-alive connections meanwhile. */
  async function settle(until: number): Promise<void> {
    while (sockets.size > 0 && Date.now() < until) {
      h1.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  let closing: Promise<void> | undefined;
  async function drain(graceMs: number, o: CloseOptions): Promise<void> {
    draining = true;
    const deadline = Date.now() + graceMs;
    const delay = Math.min(o.drainDelayMs ?? 0, graceMs);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    server.close();
    h1.closeIdleConnections();
    for (const s of sessions) s.close(); // GOAWAY: running streams may finish
    await settle(deadline);
    if (sockets.size > 0 && o.onDeadline !== undefined) {
      o.onDeadline();
      await settle(Date.now() + FLUSH_MS);
    }
    for (const s of sockets) s.destroy();
  }

  return {
    port: address.port,
    host: options.host,
    close(graceMs, o = {}) {
      closing ??= drain(graceMs, o);
      return closing;
    },
  };
}

/** The longest delay a Node timer takes (about 24.8 days); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;
const GRPC_TIMEOUT_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * RPC deadlines longer than a Node timer can hold are dropped before the RPC
 * library sees them. connect-node arms a timer with the caller's
 * `grpc-timeout` (up to 8 digits of hours) or `connect-timeout-ms` (up to 10
 * digits), and Node fires any timer over 2^31-1 ms after 1 ms: a client
 * asking for a deadline a month away (valid by both specs) had every call
 * canceled at once. A deadline that far out means the same as none here
 * (the provider's own timeouts bound every call), so the header goes.
 */
function withUsableDeadlines(handler: RequestHandler): RequestHandler {
  return (req: NodeRequest, res: NodeResponse) => {
    const grpc = req.headers["grpc-timeout"];
    if (typeof grpc === "string") {
      const m = /^(\d{1,8})([HMSmun])$/.exec(grpc);
      if (m !== null && Number(m[1]) * GRPC_TIMEOUT_UNIT_MS[m[2]!]! > MAX_TIMER_MS) delete req.headers["grpc-timeout"];
    }
    const connect = req.headers["connect-timeout-ms"];
    if (typeof connect === "string" && /^\d{1,10}$/.test(connect) && Number(connect) > MAX_TIMER_MS) delete req.headers["connect-timeout-ms"];
    handler(req, res);
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
