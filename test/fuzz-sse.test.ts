/**
 * Fuzz: the gateway's stream readers given real provider streams (recorded
 * from the stand-ins: OpenAI and Anthropic SSE, Gemini's SSE, Bedrock's
 * binary event stream) split at every byte boundary, one byte at a time, and
 * in random pieces: the canonical chunks are always the same. Then broken
 * streams (garbage lines, missing data, invalid JSON, invalid UTF-8, huge
 * lines, truncation, corrupt binary frames): each ends in a GatewayError of
 * the provider (or a clean end when what is missing was not needed), never
 * another exception and never a hang. A cut stream is never a clean end.
 * Last, broken streams from a provider through the whole gateway: the caller
 * gets its protocol's error and the gateway keeps serving.
 *
 * Long mode: FUZZ_RUNS=<n> runs n cases per random property (see
 * test/support/fuzz.ts), e.g. `FUZZ_RUNS=100000 npx vitest run test/fuzz-sse.test.ts`.
 */
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import fc from "fast-check";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { Readable } from "node:stream";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { ChatRequestSchema, type ChatChunk } from "../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../server/errors/errors.ts";
import { anthropicChunks } from "../server/providers/anthropic/stream.ts";
import { createSigner } from "../server/providers/bedrock/auth.ts";
import { converseChunks } from "../server/providers/bedrock/stream.ts";
import { geminiChunks } from "../server/providers/gemini/stream.ts";
import { createOpenAIProvider } from "../server/providers/openai/adapter.ts";
import { streamError } from "../server/providers/openai/errors.ts";
import { readSse } from "../server/providers/shared/sse.ts";
import { decodeChatChunk } from "../server/wire/openai/chat-response.ts";
import { isRecord } from "../server/wire/openai/json.ts";
import type { OpenStream } from "../server/providers/shared/upstream.ts";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { DEFAULT_CREDENTIALS, startBedrockStandin, type BedrockStandin } from "./standins/bedrock.ts";
import { startGeminiStandin, type GeminiStandin } from "./standins/gemini.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { count, params, report, sseEvents, timeoutFor, withDeadline } from "./support/fuzz.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

type Kind = "openai" | "anthropic" | "gemini" | "bedrock";

interface Recording {
  name: string;
  kind: Kind;
  bytes: Uint8Array;
  /** Bytes after the event that completes the stream (a cut there loses nothing needed). */
  slack: number;
}

const recordings: Recording[] = [];
let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gemini: GeminiStandin;
let bedrock: BedrockStandin;

const tools = [{ type: "function", function: { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] } } }];

async function record(name: string, kind: Kind, url: string, headers: Record<string, string>, body: unknown): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const res = await request(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: bytes });
  const got = new Uint8Array(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`recording ${name}: ${res.statusCode} ${new TextDecoder().decode(got)}`);
  recordings.push({ name, kind, bytes: got, slack: slackOf(kind, got) });
}

async function recordBedrock(name: string, body: unknown): Promise<void> {
  const url = `${bedrock.url}/model/${encodeURIComponent("anthropic.claude-3-5-sonnet-20240620-v1:0")}/converse-stream`;
  const bytes = new TextEncoder().encode(JSON.stringify(body));
  const headers = { "content-type": "application/json", accept: "application/vnd.amazon.eventstream" };
  const signed = await createSigner("bedrock", "us-east-1", [DEFAULT_CREDENTIALS])({ method: "POST", url, headers, body: bytes });
  const res = await request(url, { method: "POST", headers: signed, body: bytes });
  const got = new Uint8Array(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`recording ${name}: ${res.statusCode} ${new TextDecoder().decode(got)}`);
  recordings.push({ name, kind: "bedrock", bytes: got, slack: 0 });
}

/** Bytes after the final event of an SSE stream: [DONE], message_stop, or Gemini's last event. */
function slackOf(kind: Kind, bytes: Uint8Array): number {
  const text = Buffer.from(bytes).toString("latin1");
  let end = text.length;
  if (kind === "openai") end = text.lastIndexOf("data: [DONE]") + "data: [DONE]\n\n".length;
  if (kind === "anthropic") {
    const at = text.lastIndexOf("event: message_stop");
    end = text.indexOf("\n\n", at) + 2;
  }
  // The blank line that ends the last event: in "\r\n\r\n" the lone "\r" already is one (SSE ends lines with CR, LF or CRLF).
  if (kind === "gemini") end = text.trimEnd().length + (text.slice(text.trimEnd().length).startsWith("\r\n\r") ? 3 : 2);
  return Math.max(0, text.length - end);
}

beforeAll(async () => {
  [openai, anthropic, gemini, bedrock] = await Promise.all([startOpenAIStandin({ obfuscation: false }), startAnthropicStandin(), startGeminiStandin(), startBedrockStandin()]);
  const oa = { authorization: "Bearer sk-test" };
  await record("openai text", "openai", `${openai.url}/chat/completions`, oa, { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "Grüße 😀 世界" }] });
  await record("openai tool call", "openai", `${openai.url}/chat/completions`, oa, { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, tools, tool_choice: "required", messages: [{ role: "user", content: "Weather in Zürich?" }] });
  const an = { "x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01" };
  await record("anthropic text", "anthropic", `${anthropic.url}/v1/messages`, an, { model: "claude-sonnet-4-5", max_tokens: 200, stream: true, messages: [{ role: "user", content: "Héllo ✓ 😀" }] });
  await record("anthropic tool use", "anthropic", `${anthropic.url}/v1/messages`, an, {
    model: "claude-sonnet-4-5", max_tokens: 200, stream: true, tool_choice: { type: "any" },
    tools: [{ name: "get_weather", description: "Weather", input_schema: tools[0]!.function.parameters }], messages: [{ role: "user", content: "Weather in Zürich?" }],
  });
  const gm = { "x-goog-api-key": "gemini-test-key" };
  await record("gemini text", "gemini", `${gemini.url}/models/gemini-2.0-flash:streamGenerateContent?alt=sse`, gm, { contents: [{ role: "user", parts: [{ text: "Ça va? 😀 日本" }] }] });
  await record("gemini function call", "gemini", `${gemini.url}/models/gemini-2.0-flash:streamGenerateContent?alt=sse`, gm, {
    contents: [{ role: "user", parts: [{ text: "Weather in Zürich?" }] }],
    tools: [{ functionDeclarations: [{ name: "get_weather", description: "Weather", parameters: { type: "OBJECT", properties: { location: { type: "STRING" } } } }] }],
    toolConfig: { functionCallingConfig: { mode: "ANY" } },
  });
  await recordBedrock("bedrock text", { messages: [{ role: "user", content: [{ text: "Grüße 😀 world" }] }], inferenceConfig: { maxTokens: 100 } });
  await recordBedrock("bedrock tool use", {
    messages: [{ role: "user", content: [{ text: "Weather in Zürich?" }] }],
    toolConfig: { tools: [{ toolSpec: { name: "get_weather", description: "Weather", inputSchema: { json: tools[0]!.function.parameters } } }], toolChoice: { any: {} } },
  });
}, 60_000);

afterAll(async () => {
  report("fuzz-sse");
  await Promise.all([openai?.close(), anthropic?.close(), gemini?.close(), bedrock?.close(), gw?.close(), upstream?.close()]);
});

// ---------------------------------------------------------------------------
// Feeding bytes to the readers

/** A body that delivers exactly these pieces, one read each (as a socket would). */
function bodyOf(pieces: readonly Uint8Array[]): Readable {
  async function* gen(): AsyncGenerator<Buffer> {
    for (const p of pieces) if (p.length > 0) yield Buffer.from(p);
  }
  return Readable.from(gen(), { objectMode: false, highWaterMark: 1 });
}

/** An OpenStream over the pieces; an exception the reader did not map itself becomes "internal", which the properties refuse. */
function openStream(pieces: readonly Uint8Array[], contentType: string): OpenStream & { released: boolean | undefined } {
  const s = {
    headers: { "content-type": contentType },
    body: bodyOf(pieces),
    released: undefined as boolean | undefined,
    release(completed: boolean) {
      s.released ??= completed;
    },
    failure: (err: unknown) => new GatewayError("internal", `the stream reader let an exception through: ${String((err as Error)?.stack ?? err)}`),
  };
  return s;
}

/**
 * The OpenAI provider's reading of a stream, as its adapter does it
 * (providers/openai/adapter.ts `chunks`, not exported): the shared SSE reader,
 * [DONE], JSON, in-stream errors, the chunk decoder. The adapter itself reads
 * the recordings over HTTP below.
 */
async function* openaiChunks(stream: OpenStream): AsyncGenerator<ChatChunk> {
  for await (const e of readSse(stream.body)) {
    if (e.data === "[DONE]") return;
    let payload: unknown;
    try {
      payload = JSON.parse(e.data);
    } catch (err) {
      throw new GatewayError("upstream_error", "invalid stream event", { cause: err });
    }
    if (e.event === "error" || (isRecord(payload) && payload["error"] !== undefined && payload["choices"] === undefined)) throw streamError("p", payload);
    yield decodeChatChunk(payload);
  }
  throw new GatewayError("upstream_error", "ended before [DONE]");
}

type Outcome = { ok: true; chunks: unknown[] } | { ok: false; error: GatewayError };

/** Runs a recording's reader over the pieces, with a deadline: chunks, or the GatewayError it ended with. */
async function read(kind: Kind, pieces: readonly Uint8Array[]): Promise<Outcome> {
  const stream = openStream(pieces, kind === "bedrock" ? "application/vnd.amazon.eventstream" : "text/event-stream");
  const it: AsyncIterable<unknown> =
    kind === "openai" ? openaiChunks(stream)
    : kind === "anthropic" ? anthropicChunks("p", stream)
    : kind === "gemini" ? geminiChunks("p", "gemini-2.0-flash", stream)
    : converseChunks("p", "m", stream);
  return withDeadline(10_000, `reading a ${kind} stream`, async () => {
    const chunks: unknown[] = [];
    try {
      for await (const c of it) chunks.push(normalize(c));
    } catch (err) {
      if (!(err instanceof GatewayError)) throw new Error(`a ${kind} stream threw ${String((err as Error)?.stack ?? err)}`);
      if (err.code === "internal") throw err;
      if (stream.released === true) throw new Error("a failed stream was released as complete");
      return { ok: false, error: err };
    }
    return { ok: true, chunks };
  });
}

/** Chunks without what differs between runs (Bedrock's made-up id, the creation second). */
function normalize(c: unknown): unknown {
  if (typeof c === "object" && c !== null && (c as ChatChunk).$typeName === "switchyard.v1.ChatChunk") return { ...(c as ChatChunk), id: "", created: 0n };
  return c;
}

/** The pieces of `bytes` cut at the given offsets. */
function cut(bytes: Uint8Array, at: readonly number[]): Uint8Array[] {
  const points = [...new Set(at.map((n) => Math.min(bytes.length, Math.max(0, n))))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    out.push(bytes.subarray(from, p));
    from = p;
  }
  out.push(bytes.subarray(from));
  return out;
}

const references = new Map<string, Outcome>();
async function reference(r: Recording): Promise<unknown[]> {
  let ref = references.get(r.name);
  if (ref === undefined) {
    ref = await read(r.kind, [r.bytes]);
    references.set(r.name, ref);
  }
  if (!ref.ok) throw new Error(`the recording '${r.name}' does not read cleanly: ${ref.error.message}`);
  return ref.chunks;
}

// ---------------------------------------------------------------------------

describe("real streams, any chunking", () => {
  it("recordings read cleanly and say something", async () => {
    expect(recordings.length).toBe(8);
    for (const r of recordings) {
      const chunks = await reference(r);
      expect(chunks.length, r.name).toBeGreaterThanOrEqual(2);
    }
    console.log(`  recordings: ${recordings.map((r) => `${r.name} ${r.bytes.length} bytes`).join(", ")}`);
  });

  it("one byte at a time", async () => {
    for (const r of recordings) {
      count("one byte at a time");
      const pieces = Array.from({ length: r.bytes.length }, (_, i) => r.bytes.subarray(i, i + 1));
      expect(await read(r.kind, pieces), r.name).toEqual({ ok: true, chunks: await reference(r) });
    }
  });

  it("split in two at every byte boundary", async () => {
    for (const r of recordings) {
      const want = { ok: true, chunks: await reference(r) };
      for (let i = 1; i < r.bytes.length; i++) {
        count("split at every byte");
        const got = await read(r.kind, [r.bytes.subarray(0, i), r.bytes.subarray(i)]);
        if (JSON.stringify(got, big) !== JSON.stringify(want, big)) expect(got, `${r.name} split at ${i}`).toEqual(want);
      }
    }
  }, 120_000);

  it("random chunkings", async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...recordings), fc.array(fc.nat(), { maxLength: 40 }), async (r, offsets) => {
      count("random chunkings");
      const got = await read(r.kind, cut(r.bytes, offsets.map((n) => n % (r.bytes.length + 1))));
      expect(got).toEqual({ ok: true, chunks: await reference(r) });
    }), params(300, 5));
  }, timeoutFor(300, 5));
});

function big(_: string, v: unknown): unknown {
  return typeof v === "bigint" ? v.toString() : v;
}

// ---------------------------------------------------------------------------
// Broken streams

const garbage = fc.constantFrom(
  "garbage\n", "garbage line without newline", ":comment\n", ": ping\n\n", "event: weird\n", "event: error\n", "data: {not json\n\n", "data:\n\n", "data: \n\n",
  "data: null\n\n", "data: 42\n\n", "data: []\n\n", 'data: "s"\n\n', 'data: {"error":{"message":"boom","type":"server_error"}}\n\n', "retry: x\n", "retry: 5\n", "id: 7\n", "id\n",
  "\r\n", "\n", "\r", "\n\n\n", "data: [DONE]\n\n", "event: message_stop\ndata: {}\n\n", 'event: content_block_delta\ndata: {"type":"content_block_delta","index":9,"delta":{"type":"input_json_delta","partial_json":"{"}}\n\n',
  'data: {"candidates":[{"content":{"parts":[{"functionCall":{"args":{}}}]}}]}\r\n\r\n', 'data: {"candidates":"x"}\r\n\r\n', 'data: {"usageMetadata":{"promptTokenCount":-1}}\r\n\r\n',
  'data: {"choices":[{"index":-1,"delta":{}}]}\n\n', 'data: {"choices":[{"delta":{"tool_calls":[{"index":1e10}]}}]}\n\n', 'data: {"created":1e300,"choices":[]}\n\n',
  '{"error":{"code":500,"message":"bare","status":"INTERNAL"}}\n', "\u0000\u0001\u0002", "data: \ud800\n\n",
  'event: content_block_start\ndata: {"type":"content_block_start","index":{"toString":null,"valueOf":null},"content_block":{"type":"tool_use","id":{"toString":null},"name":"f"}}\n\n',
  'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":{"toString":null},"function":{"name":{"valueOf":null}}}]}}]}\n\n',
  `data: {"choices":[{"index":0,"delta":{},"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}],"type":"message_delta","candidates":[{"x":${"[".repeat(20_000)}${"]".repeat(20_000)}}]}\n\n`,
);

/** A broken copy of a recording: garbage put in, bytes dropped or changed, a cut. */
const broken = fc.record({
  r: fc.constant(null).chain(() => fc.constantFrom(...recordings)),
  edits: fc.array(fc.oneof(
    fc.record({ op: fc.constant("insert" as const), at: fc.nat(), what: garbage.map((s) => new TextEncoder().encode(s)) }),
    fc.record({ op: fc.constant("insert" as const), at: fc.nat(), what: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ op: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
    fc.record({ op: fc.constant("flip" as const), at: fc.nat(), to: fc.constantFrom(0x00, 0xff, 0xc3, 0x0a, 0x0d, 0x3a, 0x7b, 0x22) }),
    fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  ), { minLength: 1, maxLength: 3 }),
  chunking: fc.array(fc.nat(), { maxLength: 8 }),
});

function applyEdits(bytes: Uint8Array, edits: readonly BrokenEdit[]): Uint8Array {
  let b = Buffer.from(bytes);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + 1);
    if (e.op === "insert") b = Buffer.concat([b.subarray(0, at), Buffer.from(e.what), b.subarray(at)]);
    else if (e.op === "delete") b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.n)]);
    else if (e.op === "flip") {
      if (at < b.length) b[at] = e.to;
    } else b = b.subarray(0, at);
  }
  return new Uint8Array(b);
}
type BrokenEdit = { op: "insert"; at: number; what: Uint8Array } | { op: "delete"; at: number; n: number } | { op: "flip"; at: number; to: number } | { op: "cut"; at: number };

describe("broken streams", () => {
  it("garbage, missing bytes, invalid JSON and UTF-8, cuts: a GatewayError or a clean end, never another exception or a hang", async () => {
    await fc.assert(fc.asyncProperty(broken, async ({ r, edits, chunking }) => {
      count("broken stream");
      const bytes = applyEdits(r.bytes, edits);
      await read(r.kind, cut(bytes, chunking.map((n) => n % (bytes.length + 1))));
    }), params(600, 5));
  }, timeoutFor(600, 5));

  it("a stream cut before its last event is an upstream error, never a clean end", async () => {
    await fc.assert(fc.asyncProperty(fc.constantFrom(...recordings), fc.nat(), fc.array(fc.nat(), { maxLength: 6 }), async (r, n, chunking) => {
      count("cut stream");
      const at = n % (r.bytes.length - r.slack);
      const bytes = r.bytes.subarray(0, at);
      const got = await read(r.kind, cut(bytes, chunking.map((k) => k % (bytes.length + 1))));
      expect(got.ok, `${r.name} cut at ${at} of ${r.bytes.length}`).toBe(false);
      if (!got.ok) expect(got.error.code).toBe("upstream_error");
    }), params(300, 5));
  }, timeoutFor(300, 5));

  it("huge lines and huge frames end cleanly", async () => {
    const huge = "x".repeat(4 * 1024 * 1024);
    for (const r of recordings) {
      count("huge line");
      if (r.kind === "bedrock") {
        // A prelude claiming more than Bedrock's 16 MiB message limit, and one claiming 16 MiB that never comes.
        const codec = new EventStreamCodec(toUtf8, fromUtf8);
        const frame = codec.encode({ headers: { ":message-type": { type: "string", value: "event" }, ":event-type": { type: "string", value: "contentBlockDelta" } }, body: fromUtf8(JSON.stringify({ delta: { text: huge }, contentBlockIndex: 0 })) });
        for (const bytes of [Buffer.concat([r.bytes.subarray(0, 100), Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.alloc(64)]), Buffer.concat([Buffer.from([0x01, 0x00, 0x00, 0x00]), Buffer.alloc(1024)]), Buffer.from(frame)]) {
          const got = await read(r.kind, cut(bytes, [1, 7, 100, 65_536]));
          expect(got.ok, r.name).toBe(false);
        }
        continue;
      }
      // A data line of 4 MiB, whole and cut short; and one that never ends.
      const text = Buffer.from(r.bytes).toString("utf8");
      const first = text.indexOf("\n\n") + 2;
      const withHuge = `${text.slice(0, first)}data: ${huge}\n\n${text.slice(first)}`;
      const gotWhole = await read(r.kind, [new TextEncoder().encode(withHuge)]);
      expect(gotWhole.ok, `${r.name}: a data line that is not JSON`).toBe(false);
      const gotCut = await read(r.kind, cut(new TextEncoder().encode(`${text.slice(0, first)}data: ${huge}`), [first, first + 1000]));
      expect(gotCut.ok, `${r.name}: a line that never ends`).toBe(false);
    }
  }, 60_000);

  it("corrupt binary frames: wrong lengths, CRCs and headers are upstream errors", async () => {
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const frames = fc.record({
      r: fc.constantFrom(...recordings.filter((x) => x.kind === "bedrock")),
      frame: fc.integer({ min: 0, max: 30 }),
      field: fc.constantFrom("total" as const, "headers" as const, "preludeCrc" as const, "crc" as const, "headerType" as const, "body" as const),
      value: fc.oneof(fc.constantFrom(0, 1, 15, 16, 0xffff_ffff, 0x0100_0000, 0x7fff_ffff), fc.nat()),
    });
    await fc.assert(fc.asyncProperty(frames, async ({ r, frame, field, value }) => {
      count("corrupt frame");
      // Find frame boundaries from the preludes.
      const b = Buffer.from(r.bytes);
      const starts: number[] = [];
      for (let o = 0; o < b.length; o += b.readUInt32BE(o)) starts.push(o);
      const start = starts[frame % starts.length]!;
      const total = b.readUInt32BE(start);
      const copy = Buffer.from(b);
      switch (field) {
        case "total": copy.writeUInt32BE(value >>> 0, start); break;
        case "headers": copy.writeUInt32BE(value >>> 0, start + 4); break;
        case "preludeCrc": copy.writeUInt32BE((copy.readUInt32BE(start + 8) ^ (value | 1)) >>> 0, start + 8); break;
        case "crc": copy.writeUInt32BE((copy.readUInt32BE(start + total - 4) ^ (value | 1)) >>> 0, start + total - 4); break;
        case "headerType": copy[start + 12 + 1 + copy[start + 12]!] = value & 0xff; break;
        case "body": copy[start + total - 5] = (copy[start + total - 5]! ^ ((value % 255) + 1)) & 0xff; break;
      }
      if (copy.equals(b)) return; // the value it had: nothing broken
      const got = await read("bedrock", [copy]);
      // Any change to a frame breaks a CRC: the stream fails (a changed header type may still decode, then fail its CRC).
      expect(got.ok, `${field} of frame ${frame % starts.length} set from ${value}`).toBe(false);
      void codec;
    }), params(300, 5));
  }, timeoutFor(300, 5));
});

// ---------------------------------------------------------------------------
// Through the gateway

let upstream: { url: string; serve(bytes: Uint8Array, pieces: number[], contentType?: string): void; close(): Promise<void> } | undefined;
let gw: TestGateway | undefined;

/** A provider that answers every chat request with the bytes it was given, in the pieces it was given. */
async function startScriptedUpstream(): Promise<NonNullable<typeof upstream>> {
  let next: { bytes: Uint8Array; pieces: number[]; contentType: string } = { bytes: new Uint8Array(), pieces: [], contentType: "text/event-stream" };
  const sockets = new Set<import("node:net").Socket>();
  const server = http.createServer(async (req, res) => {
    for await (const _ of req);
    const { bytes, pieces, contentType } = next;
    res.writeHead(200, { "content-type": contentType });
    res.flushHeaders();
    for (const p of cut(bytes, pieces)) {
      if (p.length === 0) continue;
      await new Promise<void>((r) => res.write(p, () => r()));
    }
    res.end();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    serve(bytes, pieces, contentType = "text/event-stream") {
      next = { bytes, pieces, contentType };
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** The scripted provider and a gateway in front of it, made once for the tests that need them. */
async function ensureGateway(): Promise<void> {
  upstream ??= await startScriptedUpstream();
  gw ??= await startTestGateway({ providers: [openaiProvider(upstream.url, { models: ["gpt-4o-mini"], timeouts: { firstByteMs: 5000, idleMs: 5000 } })] });
}

describe("broken provider streams through the gateway", () => {
  beforeAll(ensureGateway);

  it("OpenAI and Anthropic callers get their protocol's error (or the answer), and the gateway keeps serving", async () => {
    await ensureGateway();
    const openaiRecordings = recordings.filter((r) => r.kind === "openai");
    await fc.assert(fc.asyncProperty(
      fc.record({ r: fc.constantFrom(...openaiRecordings), edits: broken.map((b) => b.edits), chunking: fc.array(fc.nat(), { maxLength: 6 }), caller: fc.constantFrom("openai" as const, "anthropic" as const) }),
      async ({ r, edits, chunking, caller }) => {
        count("broken stream through the gateway");
        const bytes = applyEdits(r.bytes, edits);
        upstream!.serve(bytes, chunking.map((n) => n % (bytes.length + 1)));
        const path = caller === "openai" ? "/v1/chat/completions" : "/v1/messages";
        const body = caller === "openai"
          ? { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "x" }] }
          : { model: "gpt-4o-mini", stream: true, max_tokens: 100, messages: [{ role: "user", content: "x" }] };
        const { status, text } = await withDeadline(15_000, "a streamed request", async (signal) => {
          const res = await fetch(`${gw!.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal });
          return { status: res.status, text: await res.text() };
        });
        if (status !== 200) {
          // Failed before the first chunk: an ordinary error answer in the caller's shape.
          const e = JSON.parse(text);
          if (caller === "openai") expect(e.error.type).toEqual(expect.any(String));
          else expect(e).toMatchObject({ type: "error", error: { type: expect.any(String) } });
          expect(status).toBeGreaterThanOrEqual(400);
          expect(status).not.toBe(500);
          return;
        }
        const events = sseEvents(text);
        const last = events.at(-1);
        if (caller === "openai") expect(last?.data === "[DONE]" || /^\{"error":/.test(last?.data ?? ""), text.slice(-300)).toBe(true);
        else expect(last?.event === "message_stop" || last?.event === "error", text.slice(-300)).toBe(true);
        expect(text).not.toMatch(/internal gateway error/);
      },
    ), params(150, 30));
    expect((await fetch(`${gw!.url}/healthz`)).status).toBe(200);
    upstream!.serve(recordings.find((r) => r.name === "openai text")!.bytes, []);
    const ok = await fetch(`${gw!.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "x" }] }) });
    expect((await ok.text()).trimEnd().endsWith("data: [DONE]")).toBe(true);
  }, timeoutFor(150, 30));

  it("the OpenAI adapter reads a real stream in random pieces over HTTP the same way", async () => {
    const provider = createOpenAIProvider({
      id: "p", baseUrl: upstream!.url, keys: ["k"], models: [], headers: {},
      timeouts: { connectMs: 5000, firstByteMs: 5000, idleMs: 5000, totalMs: 30_000 }, maxConnections: 4,
    });
    const req = create(ChatRequestSchema, { model: "gpt-4o-mini", messages: [{ role: 3, content: [{ part: { case: "text", value: "x" } }] }] });
    const readAll = async (): Promise<unknown[]> => {
      const out: unknown[] = [];
      for await (const c of await provider.chatStream(req, { signal: new AbortController().signal, requestId: "r" })) out.push(normalize(c));
      return out;
    };
    try {
      for (const r of recordings.filter((x) => x.kind === "openai")) {
        upstream!.serve(r.bytes, []);
        const want = await readAll();
        expect(want.length).toBeGreaterThan(2);
        await fc.assert(fc.asyncProperty(fc.array(fc.nat(), { maxLength: 30 }), async (offsets) => {
          count("openai adapter, random pieces over HTTP");
          upstream!.serve(r.bytes, offsets.map((n) => n % (r.bytes.length + 1)));
          expect(await withDeadline(10_000, "openai adapter", () => readAll())).toEqual(want);
        }), params(40, 30));
      }
    } finally {
      await provider.close();
    }
  }, 2 * timeoutFor(40, 30));
});

describe("found by fuzzing", () => {
  beforeAll(ensureGateway);
  // A provider's JSON nested thousands of levels deep overflowed the stack when the answer was encoded
  // for the caller: a 500 (or an "internal" error event). Now an upstream error (502), like any unusable answer.
  const deep = "[".repeat(20_000) + "]".repeat(20_000);
  const chat = (stream: boolean) => JSON.stringify({ model: "gpt-4o-mini", stream, max_tokens: 5, messages: [{ role: "user", content: "x" }] });
  const call = async (path: string, body: string) => {
    const res = await fetch(`${gw!.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body });
    return { status: res.status, text: await res.text() };
  };

  it("a deeply nested JSON answer is a 502 for OpenAI and Anthropic callers", async () => {
    upstream!.serve(new TextEncoder().encode(`{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","x":${deep}}]}`), [], "application/json");
    const o = await call("/v1/chat/completions", chat(false));
    expect(o.status).toBe(502);
    expect(JSON.parse(o.text).error.message).toMatch(/nested more than 256 levels deep/);
    const a = await call("/v1/messages", chat(false));
    expect(a.status).toBe(502);
    expect(JSON.parse(a.text)).toMatchObject({ type: "error", error: { type: "api_error" } });
  });

  it("a deeply nested stream event ends the stream with an upstream error", async () => {
    const events = `data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}\n\ndata: {"id":"x","choices":[{"index":0,"delta":{},"x":${deep}}]}\n\ndata: [DONE]\n\n`;
    upstream!.serve(new TextEncoder().encode(events), []);
    const o = await call("/v1/chat/completions", chat(true));
    const last = sseEvents(o.text).at(-1)!;
    expect(JSON.parse(last.data).error).toMatchObject({ type: "upstream_error" });
    expect(last.data).toMatch(/nested more than 256 levels deep/);
  });

  it("a stream event with an index Number() cannot convert is an upstream error, not an exception (was a TypeError)", async () => {
    const text = 'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\nevent: content_block_start\ndata: {"type":"content_block_start","index":{"toString":null,"valueOf":null},"content_block":{"type":"tool_use","id":"t","name":"f"}}\n\n';
    const got = await read("anthropic", [new TextEncoder().encode(text)]);
    expect(got.ok).toBe(false);
    if (!got.ok) expect(got.error.code).toBe("upstream_error");
  });

  it("each provider's stream reader refuses a deeply nested event", async () => {
    const cases: [Kind, string][] = [
      ["anthropic", `event: message_start\ndata: {"type":"message_start","message":{"id":"m","x":${deep}}}\n\n`],
      ["gemini", `data: {"candidates":[{"content":{"parts":[{"text":"x"}]},"x":${deep}}]}\r\n\r\n`],
    ];
    for (const [kind, text] of cases) {
      const got = await read(kind, [new TextEncoder().encode(text)]);
      expect(got.ok, kind).toBe(false);
      if (!got.ok) expect(got.error.message).toMatch(/nested more than 256 levels deep/);
    }
    const codec = new EventStreamCodec(toUtf8, fromUtf8);
    const frame = codec.encode({ headers: { ":message-type": { type: "string", value: "event" }, ":event-type": { type: "string", value: "messageStart" } }, body: fromUtf8(`{"role":"assistant","x":${deep}}`) });
    const got = await read("bedrock", [frame]);
    expect(got.ok).toBe(false);
    if (!got.ok) expect(got.error.message).toMatch(/nested more than 256 levels deep/);
  });
});
