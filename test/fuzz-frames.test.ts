/**
 * Fuzz: the RPC side of the one port given malformed input. Over raw h2c
 * (node:http2 with prior knowledge): gRPC requests whose length-prefixed
 * frames have random compressed flags, length prefixes longer or shorter
 * than the data (0xFFFFFFFF too), garbage or mangled protobuf, frames cut
 * short, odd grpc-encoding/grpc-timeout headers; Connect unary and streaming
 * with garbage JSON and broken envelopes. Over raw HTTP/1.1 sockets: Connect
 * and gRPC-Web with the same bodies, and broken HTTP framing. Every case ends
 * in a gRPC status / Connect error (or the stream is reset cleanly, or for
 * broken HTTP/1.1 framing Node's 400 and a closed connection), never a hang,
 * never a dead HTTP/2 session, never INTERNAL/UNKNOWN; afterwards the gateway
 * still serves.
 *
 * Long mode: FUZZ_RUNS=<n> runs n cases per property (see test/support/fuzz.ts),
 * e.g. `FUZZ_RUNS=100000 npx vitest run test/fuzz-frames.test.ts`.
 */
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import fc from "fast-check";
import * as http2 from "node:http2";
import * as net from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompleteRequestSchema, Role, StreamRequestSchema } from "../gen/switchyard/v1/chat_pb.ts";
import { EmbedRequestSchema } from "../gen/switchyard/v1/embeddings_pb.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { count, early, jsonish, params, report, timeoutFor, toJsonText, withDeadline } from "./support/fuzz.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

const KEY = "sk-gateway-fuzz-frames-0123456789";
let standin: OpenAIStandin;
let gw: TestGateway;
let session: http2.ClientHttp2Session;
const statuses = new Map<string, number>();

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    server: { maxBodyBytes: 64 * 1024 },
    providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini", "text-embedding-3-small"] })],
  });
  session = await connect();
});

afterAll(async () => {
  report("fuzz-frames");
  console.log(`  outcomes:\n${[...statuses].sort().map(([k, n]) => `    ${k}: ${n}`).join("\n")}`);
  session?.close();
  await gw?.close();
  await standin?.close();
});

function tally(k: string): void {
  statuses.set(k, (statuses.get(k) ?? 0) + 1);
}

/** GOAWAY codes other than NO_ERROR, and session errors: a case that costs the shared connection its life. */
const sessionErrors: string[] = [];

async function connect(): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(gw.url);
  s.on("error", (err) => sessionErrors.push(`session error: ${err.message}`));
  // The server's idle close is a GOAWAY with NO_ERROR; anything else means a stream's fault took the connection down.
  s.on("goaway", (code) => void (code !== http2.constants.NGHTTP2_NO_ERROR && sessionErrors.push(`GOAWAY ${code}`)));
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  return s;
}

// ---------------------------------------------------------------------------
// Messages

const METHODS = [
  { path: "/switchyard.v1.ChatService/Complete", streaming: false },
  { path: "/switchyard.v1.ChatService/Stream", streaming: true },
  { path: "/switchyard.v1.EmbeddingsService/Embed", streaming: false },
  { path: "/switchyard.v1.ModelService/ListModels", streaming: false },
  { path: "/grpc.health.v1.Health/Check", streaming: false },
  { path: "/switchyard.v1.NoSuchService/Nope", streaming: false },
] as const;

const chatRequest = { model: "gpt-4o-mini", messages: [{ role: Role.USER, content: [{ part: { case: "text" as const, value: "hello frames" } }] }] };
const VALID_PROTO: Record<string, Uint8Array> = {
  "/switchyard.v1.ChatService/Complete": toBinary(CompleteRequestSchema, create(CompleteRequestSchema, { request: chatRequest })),
  "/switchyard.v1.ChatService/Stream": toBinary(StreamRequestSchema, create(StreamRequestSchema, { request: chatRequest, includeUsage: true })),
  "/switchyard.v1.EmbeddingsService/Embed": toBinary(EmbedRequestSchema, create(EmbedRequestSchema, { model: "text-embedding-3-small", input: ["a", "b"] })),
};
const VALID_JSON: Record<string, string> = {
  "/switchyard.v1.ChatService/Complete": toJsonString(CompleteRequestSchema, create(CompleteRequestSchema, { request: chatRequest })),
  "/switchyard.v1.ChatService/Stream": toJsonString(StreamRequestSchema, create(StreamRequestSchema, { request: chatRequest, includeUsage: true })),
  "/switchyard.v1.EmbeddingsService/Embed": toJsonString(EmbedRequestSchema, create(EmbedRequestSchema, { model: "text-embedding-3-small", input: ["a", "b"] })),
};

/** A message body: the valid one, mangled (bytes flipped, cut, inserted), or any bytes. */
function payload(path: string, json: boolean): fc.Arbitrary<Uint8Array> {
  const valid = json ? new TextEncoder().encode(VALID_JSON[path] ?? "{}") : (VALID_PROTO[path] ?? new Uint8Array());
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(valid) },
    {
      weight: 4,
      arbitrary: fc.array(fc.tuple(fc.nat(), fc.nat(255), fc.constantFrom("flip", "cut", "insert", "delete")), { minLength: 1, maxLength: 4 }).map((edits) => {
        let b = Buffer.from(valid);
        for (const [at, v, op] of edits) {
          const i = b.length === 0 ? 0 : at % b.length;
          if (op === "flip" && b.length > 0) b[i] = v;
          else if (op === "cut") b = b.subarray(0, i);
          else if (op === "insert") b = Buffer.concat([b.subarray(0, i), Buffer.from([v]), b.subarray(i)]);
          else b = Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]);
        }
        return new Uint8Array(b);
      }),
    },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: json ? 2 : 0, arbitrary: jsonish.map((v) => new TextEncoder().encode(toJsonText(v))) },
  );
}

/** One length-prefixed frame (gRPC, gRPC-Web, Connect streaming envelopes): flag, declared length, data. */
interface Frame {
  flag: number;
  /** The length prefix written; "exact" writes the data's length. */
  length: number | "exact" | "longer" | "shorter";
  data: Uint8Array;
}

function frameBytes(f: Frame): Buffer {
  const declared = f.length === "exact" ? f.data.length : f.length === "longer" ? f.data.length + 7 : f.length === "shorter" ? Math.max(0, f.data.length - 3) : f.length;
  const head = Buffer.alloc(5);
  head[0] = f.flag;
  head.writeUInt32BE(declared >>> 0, 1);
  return Buffer.concat([head, f.data]);
}

function frames(path: string, json: boolean): fc.Arbitrary<{ frames: Frame[]; cutAt: number | undefined }> {
  const frame = fc.record({
    flag: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom(1, 2, 0x80, 0x81, 0x02, 0xff) }, { weight: 1, arbitrary: fc.nat(255) }),
    length: fc.oneof({ weight: 4, arbitrary: fc.constant("exact" as const) }, { weight: 3, arbitrary: fc.constantFrom("longer" as const, "shorter" as const, 0, 1, 0xffff_ffff, 0x7fff_ffff, 0x0100_0000, 64 * 1024 + 1) }, { weight: 1, arbitrary: fc.nat() }),
    data: payload(path, json),
  });
  return fc.record({
    frames: fc.array(frame, { minLength: 0, maxLength: 3 }),
    // Sometimes the body ends inside the frames.
    cutAt: fc.option(fc.nat(), { nil: undefined }),
  });
}

function body(fs: { frames: Frame[]; cutAt: number | undefined }): Buffer {
  const b = Buffer.concat(fs.frames.map(frameBytes));
  return fs.cutAt === undefined || b.length === 0 ? b : b.subarray(0, fs.cutAt % b.length);
}

const grpcHeaders = fc.record({
  contentType: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("application/grpc", "application/grpc+proto") },
    { weight: 1, arbitrary: fc.constantFrom("application/grpc+json", "application/grpc; charset=utf-8", "application/grpc+nope") },
  ),
  encoding: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(undefined, "identity", "gzip") },
    { weight: 1, arbitrary: fc.constantFrom("br", "deflate", "snappy", "") },
  ),
  timeout: fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom("1S", "100m", "0n", "99999999H", "abc", "-1S", "1", "5u") }),
  auth: fc.constantFrom(true, true, true, false),
  /** With grpc-encoding gzip: the frames' data is gzipped (else sent as it is, a compressed flag then lying). */
  gzipData: fc.boolean(),
});

// ---------------------------------------------------------------------------
// Exchanges

interface H2Answer {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  data: Buffer;
  rstCode: number | undefined;
}

/**
 * One exchange on the shared session. The property checks after each case
 * that the session is still open (a case must never cost the other streams
 * their connection); a session the server closed for being idle (65 s, e.g.
 * during a long run of another property) is simply opened again.
 */
async function h2(headers: http2.OutgoingHttpHeaders, data: Buffer): Promise<H2Answer> {
  if (session.destroyed || session.closed) session = await connect();
  return withDeadline(15_000, `h2 ${String(headers[":path"])}`, () => new Promise<H2Answer>((resolve) => {
    const req = session.request({ ":method": "POST", ...headers });
    const out: H2Answer = { status: undefined, headers: {}, trailers: {}, data: Buffer.alloc(0), rstCode: undefined };
    const chunks: Buffer[] = [];
    req.on("response", (h) => {
      out.headers = h;
      out.status = Number(h[":status"]);
    });
    req.on("trailers", (t) => (out.trailers = t));
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", () => {}); // a reset stream: seen as rstCode on close
    req.on("close", () => {
      out.data = Buffer.concat(chunks);
      out.rstCode = req.rstCode;
      resolve(out);
    });
    req.end(data);
  }));
}

/**
 * INTERNAL answers that are the RPC library's, by design, not a gateway
 * fault: a compressed frame without a grpc-encoding to read it with, or whose
 * compressed bytes do not decompress (the gRPC spec asks for INTERNAL; grpc-go
 * answers the same), and a message that is
 * not valid protobuf (connect-es reports "parse binary: ..." as INTERNAL,
 * where connect-go says INVALID_ARGUMENT; JSON that does not parse is
 * INVALID_ARGUMENT in both). The server keeps serving either way.
 */
function explainedInternal(message: string): boolean {
  return /compressed envelope|^decompression failed|^parse binary: /.test(message);
}

/** What is wrong with a gRPC answer, or undefined. */
function grpcProblem(a: H2Answer): string | undefined {
  if (a.status === undefined) {
    // No response at all: only a clean reset is acceptable.
    tally(`grpc reset ${a.rstCode}`);
    return a.rstCode !== undefined && a.rstCode !== http2.constants.NGHTTP2_INTERNAL_ERROR ? undefined : `no response, rst ${a.rstCode}`;
  }
  const status = a.trailers["grpc-status"] ?? a.headers["grpc-status"];
  tally(`grpc http ${a.status} grpc-status ${String(status)}${status === "12" ? " " + String(a.trailers["grpc-message"] ?? a.headers["grpc-message"]).slice(0, 60) : ""}`);
  if (a.status !== 200) return a.status >= 400 && a.status < 500 ? undefined : `HTTP ${a.status}`;
  if (status === undefined) return a.rstCode ? undefined : "no grpc-status";
  const message = decodeURIComponent(String(a.trailers["grpc-message"] ?? a.headers["grpc-message"] ?? ""));
  if (status === "13" && explainedInternal(message)) return undefined;
  if (status === "13" || status === "2") return `grpc-status ${status}: ${message}`;
  return undefined;
}

/** What is wrong with a Connect answer (unary JSON error, or a streaming end message), or undefined. */
function connectProblem(status: number, contentType: string, data: Buffer, streaming: boolean, path: string): string | undefined {
  // An unknown method is not an RPC: the REST bridge's 404, which Connect clients read as UNIMPLEMENTED by its status.
  if (path.includes("NoSuchService")) return status === 404 ? undefined : `unknown method answered ${status}`;
  if (streaming && status === 200) {
    // Envelopes; the last (flag 0x02) is the end-stream message, with {"error":{code,message}} on failure.
    let o = 0;
    let end: unknown;
    while (o + 5 <= data.length) {
      const flag = data[o]!;
      const len = data.readUInt32BE(o + 1);
      const msg = data.subarray(o + 5, o + 5 + len);
      if (flag & 0x02) end = JSON.parse(msg.toString("utf8"));
      o += 5 + len;
    }
    if (end === undefined) return "no end-stream message";
    const err = (end as { error?: { code?: string; message?: string } }).error;
    tally(`connect stream ${err?.code ?? "ok"}`);
    if (err && err.code === "internal" && explainedInternal(err.message ?? "")) return undefined;
    if (err && (err.code === "internal" || err.code === "unknown")) return `end-stream error ${err.code}: ${err.message}`;
    return undefined;
  }
  tally(`connect ${status}`);
  if (status === 200) return undefined;
  if (status === 500 && explainedInternal(String((safeJson(data) as { message?: unknown } | undefined)?.message ?? ""))) return undefined;
  if (status >= 500 && status !== 503 && status !== 502 && status !== 504) return `HTTP ${status}: ${data.toString("utf8").slice(0, 200)}`;
  if (!contentType.startsWith("application/json")) return status >= 400 && status < 500 ? undefined : `content-type ${contentType}`;
  let e: { code?: unknown; message?: unknown };
  try {
    e = JSON.parse(data.toString("utf8"));
  } catch {
    return `error body is not JSON: ${data.toString("utf8").slice(0, 200)}`;
  }
  if (typeof e.code !== "string") return "error without a code";
  if (e.code === "internal" || e.code === "unknown") return `error ${e.code}: ${String(e.message)}`;
  return undefined;
}

function safeJson(b: Buffer): unknown {
  try {
    return JSON.parse(b.toString("utf8"));
  } catch {
    return undefined;
  }
}

function fail(p: string | undefined, what: string): void {
  if (p === undefined) return;
  early(what.split(" ")[0] ?? "frames", `${p}\n  ${what}`);
  throw new Error(`${p}\n  ${what}`);
}

const auth = { authorization: `Bearer ${KEY}` };

// ---------------------------------------------------------------------------

describe("gRPC over h2c", () => {
  it("malformed frames, flags and length prefixes get a gRPC status or a clean reset", async () => {
    const arb = fc.constantFrom(...METHODS).chain((m) => fc.tuple(fc.constant(m), grpcHeaders, frames(m.path, false)));
    await fc.assert(fc.asyncProperty(arb, async ([m, h, fs]) => {
      count("grpc frames over h2c");
      const headers: http2.OutgoingHttpHeaders = { ":path": m.path, "content-type": h.contentType, te: "trailers", ...(h.auth ? auth : {}) };
      if (h.encoding !== undefined) headers["grpc-encoding"] = h.encoding;
      if (h.timeout !== undefined) headers["grpc-timeout"] = h.timeout;
      const data = body(h.encoding === "gzip" && h.gzipData ? { ...fs, frames: fs.frames.map((f) => ({ ...f, data: gzipSync(f.data) })) } : fs);
      const a = await h2(headers, data);
      fail(grpcProblem(a) ?? (sessionErrors.length > 0 ? `the case cost the HTTP/2 session its connection: ${sessionErrors.join(", ")}` : undefined), `${m.path} ${JSON.stringify(h)} body ${data.toString("hex").slice(0, 200)}`);
    }), params(400, 25));
    expect(sessionErrors).toEqual([]);
  }, timeoutFor(400, 25));

  it("a valid call still works on the same session", async () => {
    const a = await h2({ ":path": "/switchyard.v1.ChatService/Complete", "content-type": "application/grpc", te: "trailers", ...auth }, frameBytes({ flag: 0, length: "exact", data: VALID_PROTO["/switchyard.v1.ChatService/Complete"]! }));
    expect(a.status).toBe(200);
    expect(a.trailers["grpc-status"]).toBe("0");
    expect(a.data.toString("latin1")).toContain("echo: hello frames");
  });
});

describe("Connect", () => {
  it("unary and streaming over h2c with garbage JSON, protobuf and envelopes get a Connect error", async () => {
    const arb = fc.constantFrom(...METHODS).chain((m) => fc.tuple(
      fc.constant(m),
      fc.boolean(),
      fc.boolean(),
      m.streaming ? frames(m.path, true).map(body) : payload(m.path, true).map((b) => Buffer.from(b)),
    ));
    await fc.assert(fc.asyncProperty(arb, async ([m, json, withAuth, data]) => {
      count("connect over h2c");
      const contentType = m.streaming ? (json ? "application/connect+json" : "application/connect+proto") : json ? "application/json" : "application/proto";
      const a = await h2({ ":path": m.path, "content-type": contentType, "connect-protocol-version": "1", ...(withAuth ? auth : {}) }, json || m.streaming ? data : Buffer.from(data));
      if (a.status === undefined) {
        tally(`connect reset ${a.rstCode}`);
        fail(a.rstCode === http2.constants.NGHTTP2_INTERNAL_ERROR ? "reset with INTERNAL_ERROR" : undefined, m.path);
        return;
      }
      fail(connectProblem(a.status, String(a.headers["content-type"] ?? ""), a.data, m.streaming, m.path) ?? (sessionErrors.length > 0 ? `the case cost the HTTP/2 session its connection: ${sessionErrors.join(", ")}` : undefined), `${m.path} ${contentType} body ${data.toString("utf8").slice(0, 200)}`);
    }), params(400, 25));
    expect(sessionErrors).toEqual([]);
  }, timeoutFor(400, 25));
});

// ---------------------------------------------------------------------------
// Raw HTTP/1.1

/**
 * Writes raw bytes on a new connection and reads until the answer is whole or
 * the server closes. With `halfCloseAfterMs`, the client then ends its side
 * (for a body that never arrives whole, which the server would wait for).
 */
function rawHttp1(bytes: Buffer, halfCloseAfterMs?: number): Promise<Buffer> {
  return withDeadline(15_000, "raw HTTP/1.1 exchange", () => new Promise<Buffer>((resolve, reject) => {
    const sock = net.connect(gw.port, "127.0.0.1");
    const got: Buffer[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    sock.on("data", (d) => {
      got.push(d);
      if (complete(Buffer.concat(got))) sock.destroy();
    });
    sock.on("error", (err) => ((err as NodeJS.ErrnoException).code === "ECONNRESET" ? undefined : reject(err)));
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got));
    });
    sock.on("connect", () => {
      sock.write(bytes);
      if (halfCloseAfterMs !== undefined) timer = setTimeout(() => sock.end(), halfCloseAfterMs);
    });
  }));
}

/** Whether an HTTP/1.1 answer is complete (by content-length, or the chunked terminator). */
function complete(b: Buffer): boolean {
  const head = b.indexOf("\r\n\r\n");
  if (head < 0) return false;
  const h = b.subarray(0, head).toString("latin1").toLowerCase();
  const len = /\r\ncontent-length: *(\d+)/.exec(h);
  if (len) return b.length >= head + 4 + Number(len[1]);
  if (/transfer-encoding: *chunked/.test(h)) return b.subarray(head).includes("\r\n0\r\n\r\n");
  return false;
}

function parseHttp1(b: Buffer): { status: number; headers: Record<string, string>; body: Buffer } | undefined {
  const head = b.indexOf("\r\n\r\n");
  if (head < 0) return undefined;
  const lines = b.subarray(0, head).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.1 (\d{3})/.exec(lines[0]!);
  if (!m) return undefined;
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let rest = b.subarray(head + 4);
  if (headers["transfer-encoding"] === "chunked") {
    const parts: Buffer[] = [];
    while (rest.length > 0) {
      const eol = rest.indexOf("\r\n");
      const size = parseInt(rest.subarray(0, eol).toString("latin1"), 16);
      if (!(size > 0)) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    rest = Buffer.concat(parts);
  }
  return { status: Number(m[1]), headers, body: rest };
}

describe("raw HTTP/1.1", () => {
  it("Connect and gRPC-Web bodies, and broken HTTP framing: an error answer or Node's 400, and the server keeps serving", async () => {
    const framing = fc.constantFrom("content-length", "chunked", "chunked-bad-size", "length-too-long", "length-too-short", "no-length", "both");
    const arb = fc.constantFrom(...METHODS).chain((m) => fc.tuple(
      fc.constant(m),
      fc.constantFrom("connect", "grpc-web"),
      fc.boolean(),
      framing,
      m.streaming ? frames(m.path, true).map(body) : payload(m.path, true).map((b) => Buffer.from(b)),
      frames(m.path, false).map(body),
      fc.array(fc.nat(), { maxLength: 3 }),
    ));
    await fc.assert(fc.asyncProperty(arb, async ([m, protocol, json, framing, connectBody, webBody, chunkAt]) => {
      count("raw HTTP/1.1");
      const data = protocol === "connect" ? connectBody : webBody;
      const contentType = protocol === "grpc-web" ? (json ? "application/grpc-web+json" : "application/grpc-web+proto") : m.streaming ? "application/connect+json" : "application/json";
      const head = [`POST ${m.path} HTTP/1.1`, "host: fuzz", `content-type: ${contentType}`, `authorization: Bearer ${KEY}`, "connect-protocol-version: 1", "x-grpc-web: 1", "connection: close"];
      let payloadBytes: Buffer;
      switch (framing) {
        case "content-length": head.push(`content-length: ${data.length}`); payloadBytes = data; break;
        case "length-too-long": head.push(`content-length: ${data.length + 10}`); payloadBytes = data; break;
        case "length-too-short": head.push(`content-length: ${Math.max(0, data.length - 2)}`); payloadBytes = data; break;
        case "no-length": payloadBytes = data; break;
        case "both": head.push(`content-length: ${data.length}`, "transfer-encoding: chunked"); payloadBytes = data; break;
        default: {
          head.push("transfer-encoding: chunked");
          const points = [...new Set(chunkAt.map((n) => (data.length === 0 ? 0 : n % data.length)))].sort((a, b) => a - b);
          const parts: Buffer[] = [];
          let from = 0;
          for (const p of [...points, data.length]) {
            const piece = data.subarray(from, p);
            from = p;
            if (piece.length === 0) continue;
            const size = framing === "chunked-bad-size" && parts.length === 0 ? "zz" : piece.length.toString(16);
            parts.push(Buffer.from(`${size}\r\n`), piece, Buffer.from("\r\n"));
          }
          parts.push(Buffer.from("0\r\n\r\n"));
          payloadBytes = Buffer.concat(parts);
        }
      }
      // A declared length longer than the body: the server waits for the rest (as it should), until the client gives up.
      const answer = await rawHttp1(Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), payloadBytes]), framing === "length-too-long" ? 100 : undefined);
      const r = parseHttp1(answer);
      if (r === undefined) {
        // Nothing back: only for a body that never arrives whole (the client gave up) or broken framing.
        tally(`http1 closed (${framing})`);
        fail(["length-too-long", "chunked-bad-size", "both"].includes(framing) ? undefined : `no answer: ${answer.toString("latin1").slice(0, 200)}`, `${m.path} ${protocol} ${framing}`);
        return;
      }
      tally(`http1 ${protocol} ${r.status}`);
      if (r.status === 400 && r.headers["content-type"] === undefined) return; // Node's own answer to framing it cannot parse
      if (protocol === "connect") {
        fail(connectProblem(r.status, r.headers["content-type"] ?? "", r.body, m.streaming && r.status === 200, m.path), `${m.path} ${framing} ${data.toString("utf8").slice(0, 200)}`);
        return;
      }
      // gRPC-Web: the status is in the headers (trailers-only) or in a trailer frame (flag 0x80) at the end of the body.
      let status: string | undefined = r.headers["grpc-status"];
      const at = r.body.lastIndexOf(Buffer.from("grpc-status:"));
      if (status === undefined && at >= 0) status = /grpc-status: *(\d+)/.exec(r.body.subarray(at).toString("latin1"))?.[1];
      const message = decodeURIComponent(/grpc-message: *([^\r\n]*)/.exec(r.body.toString("latin1"))?.[1] ?? r.headers["grpc-message"] ?? "");
      fail(
        r.status !== 200 && r.status < 500 ? undefined
        : status === undefined ? `no grpc-status (HTTP ${r.status})`
        : (status === "13" && !explainedInternal(message)) || status === "2" ? `grpc-status ${status}: ${message}`
        : undefined,
        `${m.path} ${framing}`,
      );
    }), params(300, 30));
  }, timeoutFor(300, 30));
});

describe("the protocol sniffer and HTTP/2 framing", () => {
  it("garbage after (part of) the HTTP/2 preface, or instead of it: the connection ends or waits, the server keeps serving", async () => {
    const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const start = fc.oneof(
      fc.constant(Buffer.concat([PREFACE, SETTINGS])),
      fc.constant(PREFACE),
      fc.nat(PREFACE.length - 1).map((n) => PREFACE.subarray(0, n + 1)),
      fc.constant(Buffer.from("GET /healthz HTTP/1.1\r\nhost: x\r\n")),
      fc.constant(Buffer.alloc(0)),
    );
    // HTTP/2 frames with random type, flags, stream id and a length that may lie, or plain garbage.
    const frame = fc.tuple(fc.nat(0xffffff), fc.nat(255), fc.nat(255), fc.nat(), fc.uint8Array({ maxLength: 32 })).map(([len, type, flags, stream, payload]) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(len % 3 === 0 ? payload.length : len, 0, 3);
      h[3] = type % 12;
      h[4] = flags;
      h.writeUInt32BE(stream & 0x7fff_ffff, 5);
      return Buffer.concat([h, payload]);
    });
    const tail = fc.oneof(fc.array(frame, { maxLength: 4 }).map((fs) => Buffer.concat(fs)), fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)));
    await fc.assert(fc.asyncProperty(start, tail, async (head, rest) => {
      count("raw bytes at the sniffer");
      const bytes = Buffer.concat([head, rest]);
      await withDeadline(5_000, "a raw connection", () => new Promise<void>((resolve) => {
        const sock = net.connect(gw.port, "127.0.0.1");
        // The server answers, closes, or (an incomplete preface, a request half sent) waits for more: the client leaves.
        const timer = setTimeout(() => sock.destroy(), 50);
        sock.on("data", () => {});
        sock.on("error", () => {});
        sock.on("close", () => {
          clearTimeout(timer);
          resolve();
        });
        sock.on("connect", () => sock.write(bytes));
      }));
      tally("raw sniffer case");
    }), params(150, 60));
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const a = await h2({ ":path": "/switchyard.v1.ChatService/Complete", "content-type": "application/grpc", te: "trailers", ...auth }, frameBytes({ flag: 0, length: "exact", data: VALID_PROTO["/switchyard.v1.ChatService/Complete"]! }));
    expect(a.trailers["grpc-status"]).toBe("0");
  }, timeoutFor(150, 60));
});

describe("found by fuzzing", () => {
  // A deadline longer than a Node timer holds (2^31-1 ms, about 24.8 days) made connect-node's timer fire
  // after 1 ms: every call with such a deadline was canceled at once. server/transport/one-port.ts drops it.
  for (const timeout of ["99999999H", "2562047H", "2500000S"]) {
    it(`a gRPC call with grpc-timeout ${timeout} is served`, async () => {
      const a = await h2({ ":path": "/switchyard.v1.ChatService/Complete", "content-type": "application/grpc", te: "trailers", "grpc-timeout": timeout, ...auth }, frameBytes({ flag: 0, length: "exact", data: VALID_PROTO["/switchyard.v1.ChatService/Complete"]! }));
      expect(a.trailers["grpc-status"]).toBe("0");
    });
  }
  it("a Connect call with connect-timeout-ms 9999999999 is served; a short deadline still applies", async () => {
    const call = (ms: string) => fetch(`${gw.url}/switchyard.v1.ChatService/Complete`, { method: "POST", headers: { "content-type": "application/json", "connect-timeout-ms": ms, ...auth }, body: VALID_JSON["/switchyard.v1.ChatService/Complete"] });
    expect((await call("9999999999")).status).toBe(200);
    expect((await call("2147483648")).status).toBe(200);
    standin.setBehavior({ kind: "delay", ms: 500 });
    try {
      const slow = await call("50");
      expect(slow.status).not.toBe(200);
    } finally {
      standin.setBehavior(null);
    }
  });
});

describe("afterwards", () => {
  it("keeps serving REST, Connect and gRPC", async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${gw.url}/switchyard.v1.ChatService/Complete`, { method: "POST", headers: { "content-type": "application/json", ...auth }, body: VALID_JSON["/switchyard.v1.ChatService/Complete"] });
    expect(res.status).toBe(200);
    expect(JSON.stringify(await res.json())).toContain("echo: hello frames");
    const fresh = session;
    session = await connect();
    fresh.close();
    const a = await h2({ ":path": "/switchyard.v1.ChatService/Stream", "content-type": "application/grpc", te: "trailers", ...auth }, frameBytes({ flag: 0, length: "exact", data: VALID_PROTO["/switchyard.v1.ChatService/Stream"]! }));
    expect(a.trailers["grpc-status"]).toBe("0");
  });
});
