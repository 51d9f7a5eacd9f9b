/**
 * Property tests of every translator: OpenAI and Anthropic request JSON <->
 * the canonical ChatRequest, canonical requests -> each provider's body
 * (OpenAI, Anthropic, Gemini, Bedrock), provider answers -> canonical ->
 * OpenAI / Anthropic JSON, and streams (OpenAI chunks, Anthropic events).
 * Each round trip compares only what both formats can carry; where a format
 * is lossy the test says so next to the normalisation it does.
 *
 * Long mode: FUZZ_RUNS=<n> runs n cases per property (see test/support/fuzz.ts),
 * e.g. `FUZZ_RUNS=100000 npx vitest run test/fuzz-translate.test.ts`.
 */
import { create, toBinary, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, describe, expect, it, vi } from "vitest";
import {
  ChatChunkSchema,
  ChatCompletionSchema,
  ChatRequestSchema,
  FinishReason,
  MessageSchema,
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatChunk,
  type ChatCompletion,
  type ChatRequest,
  type ContentPart,
  type Message,
} from "../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../server/errors/errors.ts";
import { fromConverseResponse } from "../server/providers/bedrock/from-bedrock.ts";
import { toConverseRequest } from "../server/providers/bedrock/to-bedrock.ts";
import { toChatCompletion } from "../server/providers/gemini/from-gemini.ts";
import { toGeminiRequest } from "../server/providers/gemini/to-gemini.ts";
import { decodeMessagesRequest } from "../server/wire/anthropic/request-decode.ts";
import { encodeMessagesRequest } from "../server/wire/anthropic/request-encode.ts";
import { decodeMessagesResponse, encodeMessagesResponse } from "../server/wire/anthropic/response.ts";
import { createStreamDecoder } from "../server/wire/anthropic/stream-decode.ts";
import { createStreamEncoder } from "../server/wire/anthropic/stream-encode.ts";
import { decodeChatRequest, encodeChatRequest } from "../server/wire/openai/chat-request.ts";
import { decodeChatChunk, decodeChatCompletion, encodeChatChunk, encodeChatCompletion } from "../server/wire/openai/chat-response.ts";
import { encodeResponse, echoRequest } from "../server/wire/openai/responses-response.ts";
import { chatRequest, count, jsonish, params, report, sseEvents, timeoutFor } from "./support/fuzz.ts";

const summary: string[] = [];
afterAll(() => {
  report("fuzz-translate");
  console.log(summary.join("\n"));
});
// Each case takes well under a millisecond; long mode needs the time.
vi.setConfig({ testTimeout: timeoutFor(600, 2) });

// ---------------------------------------------------------------------------
// Canonical values

/** Mostly absent: fields some providers refuse, so most requests still encode. */
function rarely<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
}
function maybe<T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> {
  return fc.option(arb, { nil: undefined });
}

const text = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: "grapheme", maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "\n", "{}", '{"a":1}', "[DONE]", "__proto__", "😀", "\u0000") },
);
const toolName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/);
const callId = fc.stringMatching(/^call_[a-zA-Z0-9]{1,10}$/);
/** A JSON value of the kind tool arguments hold. */
const argValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: "small" }, fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.constant(null), fc.array(tie("v"), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), tie("v"), { maxKeys: 3 })),
})).v;
const argsObject = fc.dictionary(fc.string({ maxLength: 6 }).filter((k) => k !== "__proto__"), argValue, { maxKeys: 3 });
const schema = fc.constantFrom<JsonObject>(
  { type: "object", properties: {} },
  { type: "object", properties: { location: { type: "string", description: "city" } }, required: ["location"] },
  { type: "object", properties: { n: { type: "integer" }, tags: { type: "array", items: { type: "string" } } } },
);
const imageUrl = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("image/png", "image/jpeg", "image/gif", "image/webp").chain((t) => fc.base64String({ minLength: 4, maxLength: 24 }).map((b) => `data:${t};base64,${b}`)) },
  { weight: 1, arbitrary: fc.constant("https://example.invalid/cat.png") },
);

function textPart(value: string): ContentPart {
  return { $typeName: "switchyard.v1.ContentPart", part: { case: "text", value } };
}
function msg(role: Role, content: ContentPart[], more: MessageInitShape<typeof MessageSchema> = {}): Message {
  return create(MessageSchema, { role, content, ...more });
}

type Step =
  | { kind: "system" | "developer"; text: string }
  | { kind: "user"; parts: ({ t: "text"; text: string } | { t: "image"; url: string })[]; asText: boolean; name: string }
  | { kind: "assistant"; text: string | undefined; calls: { id: string; name: string; args: Record<string, unknown> | "" }[]; reasoning: string; refusal: string | undefined }
  | { kind: "results"; texts: string[] };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constantFrom("system" as const, "developer" as const), text }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("user" as const),
      parts: fc.array(fc.oneof({ weight: 4, arbitrary: fc.record({ t: fc.constant("text" as const), text }) }, { weight: 1, arbitrary: fc.record({ t: fc.constant("image" as const), url: imageUrl }) }), { minLength: 1, maxLength: 3 }),
      asText: fc.boolean(),
      name: fc.oneof(fc.constant(""), toolName),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("assistant" as const),
      text: maybe(text),
      calls: fc.array(fc.record({ id: callId, name: toolName, args: fc.oneof({ weight: 5, arbitrary: argsObject }, { weight: 1, arbitrary: fc.constant("" as const) }) }), { maxLength: 2 }),
      reasoning: fc.oneof({ weight: 3, arbitrary: fc.constant("") }, { weight: 1, arbitrary: text }),
      refusal: rarely(text),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("results" as const), texts: fc.array(fc.oneof(text, argsObject.map((o) => JSON.stringify(o))), { minLength: 2, maxLength: 2 }) }) },
);

/** Steps -> messages; tool results answer the calls of the last assistant message that made some, in order. */
function messagesOf(steps: Step[]): Message[] {
  const out: Message[] = [];
  let pending: { id: string }[] = [];
  for (const s of steps) {
    switch (s.kind) {
      case "system":
      case "developer":
        out.push(msg(s.kind === "system" ? Role.SYSTEM : Role.DEVELOPER, [textPart(s.text)], { contentIsText: true }));
        break;
      case "user": {
        const asText = s.asText && s.parts.length === 1 && s.parts[0]!.t === "text";
        out.push(msg(Role.USER, s.parts.map((p) => (p.t === "text" ? textPart(p.text) : { $typeName: "switchyard.v1.ContentPart", part: { case: "imageUrl", value: { $typeName: "switchyard.v1.ImageUrl", url: p.url, detail: "" } } })), { contentIsText: asText, name: s.name }));
        break;
      }
      case "assistant":
        out.push(msg(Role.ASSISTANT, s.text === undefined ? [] : [textPart(s.text)], {
          contentIsText: s.text !== undefined,
          toolCalls: s.calls.map((c) => ({ $typeName: "switchyard.v1.ToolCall", id: c.id, function: { $typeName: "switchyard.v1.FunctionCall", name: c.name, arguments: c.args === "" ? "" : JSON.stringify(c.args) } })),
          reasoningContent: s.reasoning,
          refusal: s.refusal,
        }));
        if (s.calls.length > 0) pending = s.calls;
        break;
      case "results":
        pending.forEach((c, i) => out.push(msg(Role.TOOL, [textPart(s.texts[i % s.texts.length]!)], { contentIsText: true, toolCallId: c.id })));
        pending = [];
        break;
    }
  }
  // Every request has something to answer (the pipeline refuses one without, before any provider).
  if (out.every(isSystem)) out.push(msg(Role.USER, [textPart("hi")], { contentIsText: true }));
  return out;
}

const extraValue = fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean(), fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }));

/** Canonical chat requests as the decoders (or an RPC caller) make them. */
const canonicalRequest: fc.Arbitrary<ChatRequest> = fc.record({
  model: fc.constantFrom("m", "gpt-4o-mini", "claude-sonnet-4-5", "amazon.nova-pro-v1:0"),
  steps: fc.array(step, { minLength: 1, maxLength: 6 }),
  tools: fc.array(fc.record({ name: toolName, description: fc.oneof(fc.constant(""), text), parameters: maybe(schema), strict: rarely(fc.boolean()) }), { maxLength: 2 }),
  toolChoice: maybe(fc.oneof(fc.constantFrom(ToolChoice_Mode.NONE, ToolChoice_Mode.AUTO, ToolChoice_Mode.REQUIRED).map((m) => ({ case: "mode" as const, value: m })), toolName.map((f) => ({ case: "function" as const, value: f })))),
  parallelToolCalls: rarely(fc.boolean()),
  temperature: maybe(fc.integer({ min: 0, max: 200 }).map((n) => n / 100)),
  topP: maybe(fc.integer({ min: 0, max: 100 }).map((n) => n / 100)),
  topK: rarely(fc.integer({ min: 1, max: 500 })),
  maxTokens: maybe(fc.integer({ min: 1, max: 100_000 })),
  maxCompletionTokens: rarely(fc.integer({ min: 1, max: 100_000 })),
  stop: fc.array(text, { maxLength: 2 }),
  seed: rarely(fc.maxSafeInteger().map((n) => BigInt(n))),
  n: rarely(fc.integer({ min: 1, max: 4 })),
  presencePenalty: rarely(fc.integer({ min: -200, max: 200 }).map((n) => n / 100)),
  frequencyPenalty: rarely(fc.integer({ min: -200, max: 200 }).map((n) => n / 100)),
  user: fc.oneof(fc.constant(""), fc.string({ maxLength: 10 })),
  metadata: fc.oneof({ weight: 5, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(fc.stringMatching(/^[a-z]{1,6}$/), fc.string({ maxLength: 6 }), { maxKeys: 2 }) }),
  responseFormat: rarely(fc.oneof(
    fc.constantFrom(ResponseFormat_Type.TEXT, ResponseFormat_Type.JSON_OBJECT).map((type) => ({ type })),
    fc.record({ name: toolName, description: fc.oneof(fc.constant(""), text), schema: maybe(schema), strict: maybe(fc.boolean()) }).map((s) => ({ type: ResponseFormat_Type.JSON_SCHEMA, jsonSchema: s })),
  )),
  extraFormat: fc.constantFrom("", "openai", "anthropic"),
  extra: rarely(fc.dictionary(fc.constantFrom("service_tier", "store", "x_custom", "thinking"), extraValue, { minKeys: 1, maxKeys: 2 })),
}).map((r) => create(ChatRequestSchema, {
  ...r,
  messages: messagesOf(r.steps),
  tools: r.tools.map((t) => ({ function: t })),
  // A named tool choice mostly names one of the tools.
  toolChoice: r.toolChoice === undefined ? undefined : { choice: r.toolChoice.case === "function" && r.tools.length > 0 && r.toolChoice.value.length % 4 !== 0 ? { case: "function" as const, value: r.tools[0]!.name } : r.toolChoice },
  responseFormat: r.responseFormat,
  extra: r.extra as JsonObject | undefined,
}));

// ---------------------------------------------------------------------------
// Helpers

/** A refusal from a translator: a GatewayError of the caller's kind, naming the field. */
function expectRefusal(err: unknown): void {
  if (!(err instanceof GatewayError)) throw err;
  expect(["invalid_request", "unsupported"]).toContain(err.code);
  expect(err.param, `no param for: ${err.message}`).toEqual(expect.any(String));
}

/** Throws unless `v` is plain JSON that survives JSON.stringify unchanged: no undefined in arrays, no NaN/Infinity, no bigint. */
function assertJson(v: unknown, path = "body"): void {
  if (v === null || typeof v === "string" || typeof v === "boolean") return;
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`${path}: ${v}`);
    return;
  }
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      if (x === undefined) throw new Error(`${path}[${i}]: undefined`);
      assertJson(x, `${path}[${i}]`);
    });
    return;
  }
  if (typeof v === "object") {
    for (const [k, x] of Object.entries(v)) if (x !== undefined) assertJson(x, `${path}.${k}`);
    return;
  }
  throw new Error(`${path}: a ${typeof v}`);
}

function textOf(m: Message): string {
  let s = "";
  for (const c of m.content) if (c.part.case === "text") s += c.part.value;
  return s;
}
function parseArgs(args: string): unknown {
  return args.trim() === "" ? {} : JSON.parse(args);
}
const isSystem = (m: Message): boolean => m.role === Role.SYSTEM || m.role === Role.DEVELOPER;

/** Tracks how many cases of a property went all the way through (not refused), so a generator that only makes refusals is noticed. */
function through(name: string): { ok(): void; refused(err: unknown): void; check(min: number): void } {
  let ok = 0;
  let refused = 0;
  const why = new Map<string, number>();
  return {
    ok: () => void (ok++, count(name)),
    refused(err) {
      refused++;
      count(name);
      const k = (err as Error).message.replace(/\[\d+\]/g, "[i]").replace(/'[^']*'/g, "'…'");
      why.set(k, (why.get(k) ?? 0) + 1);
    },
    check(min) {
      const reasons = [...why].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, n]) => `\n  ${n} ${k}`).join("");
      summary.push(`  ${name}: ${ok} translated, ${refused} refused (cleanly)`);
      expect(ok / Math.max(1, ok + refused), `${name}: ${ok} translated, ${refused} refused:${reasons}`).toBeGreaterThanOrEqual(min);
    },
  };
}

// ---------------------------------------------------------------------------
// Requests

describe("requests", () => {
  it("OpenAI JSON -> canonical -> OpenAI JSON -> canonical is the identity on the canonical request", () => {
    const t = through("openai request json round trip");
    fc.assert(fc.property(chatRequest, (body) => {
      let first: ChatRequest;
      try {
        first = decodeChatRequest(JSON.parse(JSON.stringify(body))).request;
      } catch (err) {
        // The generator makes some invalid requests (e.g. a tool choice naming no function); refused cleanly.
        expectRefusal(err);
        t.refused(err);
        return;
      }
      const wire = encodeChatRequest(first, first.model, { stream: false, includeUsage: false });
      assertJson(wire);
      const second = decodeChatRequest(JSON.parse(JSON.stringify(wire))).request;
      // Lossy: `fallbacks` is the gateway's own field and never sent to a provider.
      expect(second).toEqual({ ...first, fallbacks: [] });
      t.ok();
    }), params(400));
    t.check(0.5);
  });

  it("canonical -> OpenAI body -> canonical keeps everything Chat Completions carries", () => {
    const t = through("canonical -> openai body");
    fc.assert(fc.property(canonicalRequest, (req) => {
      const stream = { stream: true, includeUsage: true };
      let wire;
      try {
        wire = encodeChatRequest(req, "provider-model", stream);
      } catch (err) {
        expectRefusal(err);
        t.refused(err);
        return;
      }
      assertJson(wire);
      expect(wire["model"]).toBe("provider-model");
      expect(wire["stream"]).toBe(true);
      expect(wire["stream_options"]).toEqual({ include_usage: true });
      const back = decodeChatRequest(JSON.parse(JSON.stringify(wire))).request;
      expect(back).toEqual({ ...openaiView(req), model: "provider-model" });
      t.ok();
    }), params(400));
    t.check(0.9);
  });

  it("Anthropic JSON -> canonical -> Anthropic JSON keeps the conversation", () => {
    const t = through("anthropic request json round trip");
    fc.assert(fc.property(anthropicRequestJson, (body) => {
      let first: ChatRequest;
      try {
        first = decodeMessagesRequest(body).request;
      } catch (err) {
        expectRefusal(err);
        t.refused(err);
        return;
      }
      const wire = encodeMessagesRequest(first, first.model, { stream: false, defaultMaxTokens: 4096 });
      assertJson(wire);
      // Anthropic -> Anthropic is native: the caller's original blocks and fields go through as sent.
      // Lossy: empty text blocks are dropped (Anthropic refuses them); within a turn, text comes before tool calls.
      expect(runs(flatAnthropic(wire))).toEqual(runs(flatAnthropic(body)));
      expect(wire["max_tokens"]).toBe(body["max_tokens"]);
      for (const k of ["temperature", "top_p", "top_k", "tool_choice", "metadata", "thinking"]) expect(wire[k]).toEqual(body[k]);
      expect(wire["stop_sequences"] ?? []).toEqual(body["stop_sequences"] ?? []);
      const second = decodeMessagesRequest(JSON.parse(JSON.stringify(wire))).request;
      expect(runs(flatCanonical(second))).toEqual(runs(flatCanonical(first)));
      t.ok();
    }), params(300));
    t.check(0.5);
  });

  it("canonical -> Anthropic body -> canonical keeps what Anthropic carries", () => {
    const t = through("canonical -> anthropic body");
    fc.assert(fc.property(canonicalRequest, (req) => {
      let wire;
      try {
        wire = encodeMessagesRequest(req, "claude", { stream: false, defaultMaxTokens: 1234 });
      } catch (err) {
        expectRefusal(err);
        t.refused(err);
        return;
      }
      assertJson(wire);
      const turns = wire["messages"] as { role: string; content: unknown }[];
      // Anthropic wants user and assistant turns to alternate: same-role messages are merged.
      for (let i = 1; i < turns.length; i++) expect(turns[i]!.role).not.toBe(turns[i - 1]!.role);
      expect(wire["max_tokens"]).toBe(req.maxTokens ?? req.maxCompletionTokens ?? 1234);
      const back = decodeMessagesRequest(JSON.parse(JSON.stringify(wire))).request;
      // Lossy: message names, image detail and request reasoning are not carried; all system and
      // developer messages become one system prompt; parallel_tool_calls true is Anthropic's default.
      // Same-role messages are merged into one turn, where text comes before tool calls.
      expect(runs(flatCanonical(back))).toEqual(runs(flatCanonical(req, { anthropic: true })));
      expect(back.tools.map((x) => x.function?.name)).toEqual(req.tools.map((x) => x.function?.name));
      expect(back.temperature).toBe(req.temperature);
      expect(back.topP).toBe(req.topP);
      expect(back.topK).toBe(req.topK);
      expect(back.stop).toEqual(req.stop);
      expect(back.user).toBe(req.user);
      t.ok();
    }), params(400));
    t.check(0.3);
  });

  it("canonical -> Gemini body: alternating turns, every message carried, typed fields in generationConfig", () => {
    const t = through("canonical -> gemini body");
    fc.assert(fc.property(canonicalRequest, (req) => {
      let body;
      try {
        body = toGeminiRequest(req);
      } catch (err) {
        expectRefusal(err);
        t.refused(err);
        return;
      }
      assertJson(body);
      const contents = body.contents;
      for (let i = 0; i < contents.length; i++) {
        expect(contents[i]!.parts.length).toBeGreaterThan(0);
        if (i > 0) expect(contents[i]!.role).not.toBe(contents[i - 1]!.role);
      }
      expect(flatGemini(body)).toEqual(expectedGemini(req));
      const gen = (body.generationConfig ?? {}) as Record<string, unknown>;
      expect(gen["temperature"]).toBe(req.temperature);
      expect(gen["topP"]).toBe(req.topP);
      expect(gen["topK"]).toBe(req.topK);
      expect(gen["maxOutputTokens"]).toBe(req.maxCompletionTokens ?? req.maxTokens);
      expect(gen["stopSequences"] ?? []).toEqual(req.stop);
      expect(gen["candidateCount"]).toBe(req.n);
      expect(gen["seed"]).toBe(req.seed === undefined ? undefined : Number(req.seed));
      expect((body.tools?.[0]?.functionDeclarations ?? []).map((f) => f.name)).toEqual(req.tools.map((x) => x.function?.name));
      t.ok();
    }), params(400));
    t.check(0.3);
  });

  it("canonical -> Bedrock Converse body: alternating turns, no blank blocks, every message carried", () => {
    const t = through("canonical -> bedrock body");
    fc.assert(fc.property(canonicalRequest, (req) => {
      let body;
      try {
        body = toConverseRequest(req);
      } catch (err) {
        expectRefusal(err);
        t.refused(err);
        return;
      }
      assertJson(body);
      for (let i = 0; i < body.messages.length; i++) {
        expect(body.messages[i]!.content.length).toBeGreaterThan(0);
        if (i > 0) expect(body.messages[i]!.role).not.toBe(body.messages[i - 1]!.role);
      }
      expect(flatBedrock(body)).toEqual(expectedBedrock(req));
      const ic = body.inferenceConfig ?? {};
      expect(ic.temperature).toBe(req.temperature);
      expect(ic.topP).toBe(req.topP);
      expect(ic.maxTokens).toBe(req.maxCompletionTokens ?? req.maxTokens);
      expect(ic.stopSequences ?? []).toEqual(req.stop);
      expect(body.requestMetadata ?? {}).toEqual(req.metadata);
      t.ok();
    }), params(400));
    t.check(0.3);
  });
});

/** What a canonical request looks like after a trip through OpenAI's Chat Completions JSON. */
function openaiView(req: ChatRequest): ChatRequest {
  return create(ChatRequestSchema, {
    ...req,
    // Lossy: top_k is not a Chat Completions parameter; `fallbacks` stays in the gateway.
    topK: undefined,
    fallbacks: [],
    extraFormat: "openai",
    // extra: the encoder sends a foreign format's hints nowhere (ignorable keys) or refuses the request.
    extra: req.extraFormat === "anthropic" ? undefined : req.extra,
    messages: req.messages.map((m) => {
      const single = m.contentIsText && m.content.length === 1 && m.content[0]!.part.case === "text";
      const empty = m.content.length === 0;
      return create(MessageSchema, {
        ...m,
        // An empty non-assistant message is sent as "" (OpenAI requires content there).
        content: empty && m.role !== Role.ASSISTANT ? [textPart("")] : m.content,
        contentIsText: single || (empty && m.role !== Role.ASSISTANT),
        // Lossy: reasoning is not sent back to Chat Completions models.
        reasoningContent: "",
      });
    }),
    responseFormat: req.responseFormat?.type === ResponseFormat_Type.UNSPECIFIED ? undefined : req.responseFormat,
  });
}

type Flat = [unknown, string, unknown];

/**
 * A conversation as a list of (role, kind, payload) in order, ignoring message
 * boundaries (Anthropic merges same-role turns); system text as one item.
 */
function flatCanonical(req: ChatRequest, o: { anthropic?: boolean } = {}): { system: string; items: Flat[] } {
  const system = req.messages.filter(isSystem).map(textOf);
  const items: Flat[] = [];
  for (const m of req.messages) {
    if (isSystem(m)) continue;
    if (m.role === Role.TOOL) {
      items.push(["user", "tool_result", [m.toolCallId, textOf(m)]]);
      continue;
    }
    const role = m.role === Role.ASSISTANT ? "assistant" : "user";
    const before = items.length;
    for (const c of m.content) {
      if (c.part.case === "text") {
        // The encoder drops empty text blocks Anthropic would refuse.
        if (o.anthropic && c.part.value === "" && (m.role === Role.ASSISTANT || m.content.length > 1)) continue;
        items.push([role, "text", c.part.value]);
      } else if (c.part.case === "imageUrl") items.push([role, "image", c.part.value.url.replace(/^data:([^;]+)/, (_, t: string) => `data:${t.toLowerCase()}`)]);
    }
    if (o.anthropic && m.refusal && items.length === before) items.push([role, "text", m.refusal]);
    for (const t of m.toolCalls) items.push([role, "tool_use", [t.id, t.function?.name, parseArgs(t.function?.arguments ?? "")]]);
    if (o.anthropic && items.length === before && m.role !== Role.ASSISTANT) items.push([role, "text", ""]);
  }
  // System and developer messages are joined into one prompt (an empty one is not sent, and reads back as none).
  return { system: system.join("\n\n"), items };
}

/**
 * The conversation as runs of one role (Anthropic's turns), each run's items
 * in a canonical order, without empty text items: what survives merging
 * same-role messages and putting a message's text before its tool calls.
 */
function runs(f: { system: string; items: Flat[] }): { system: string; runs: [unknown, string[]][] } {
  const out: [unknown, string[]][] = [];
  for (const item of f.items) {
    if (item[1] === "text" && item[2] === "") continue;
    const last = out.at(-1);
    const key = JSON.stringify(item.slice(1));
    if (last && last[0] === item[0]) last[1].push(key);
    else out.push([item[0], [key]]);
  }
  for (const r of out) r[1].sort();
  return { system: f.system, runs: out };
}

/** An Anthropic body's conversation in the same form. */
function flatAnthropic(body: Record<string, unknown>): { system: string; items: Flat[] } {
  const sys = body["system"];
  const system = typeof sys === "string" ? sys : Array.isArray(sys) ? sys.map((b) => (b as { text: string }).text).join("\n\n") : "";
  const items: Flat[] = [];
  for (const m of body["messages"] as { role: string; content: unknown }[]) {
    if (typeof m.content === "string") {
      items.push([m.role, "text", m.content]);
      continue;
    }
    for (const b of m.content as Record<string, unknown>[]) {
      if (b["type"] === "text") items.push([m.role, "text", b["text"]]);
      else if (b["type"] === "image") {
        const s = b["source"] as Record<string, string>;
        items.push([m.role, "image", s["type"] === "url" ? s["url"] : `data:${s["media_type"]};base64,${s["data"]}`]);
      } else if (b["type"] === "tool_use") items.push([m.role, "tool_use", [b["id"], b["name"], b["input"]]]);
      else if (b["type"] === "tool_result") {
        const c = b["content"];
        items.push([m.role, "tool_result", [b["tool_use_id"], typeof c === "string" ? c : Array.isArray(c) ? c.map((x) => (x as { text: string }).text).join("") : ""]]);
      } else items.push([m.role, String(b["type"]), b]);
    }
  }
  return { system, items };
}

/** Well-formed Anthropic request bodies (the round trip starts from what a caller sends). */
const anthropicBlockUser = fc.oneof(
  { weight: 4, arbitrary: fc.record({ type: fc.constant("text"), text }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("text"), text, cache_control: fc.constant({ type: "ephemeral" }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("image"), source: fc.record({ type: fc.constant("base64"), media_type: fc.constantFrom("image/png", "image/jpeg"), data: fc.base64String({ minLength: 4, maxLength: 12 }) }) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("tool_result"), tool_use_id: callId, content: fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { minLength: 1, maxLength: 2 })) }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("tool_result"), tool_use_id: callId, content: text, is_error: fc.boolean() }) },
);
const anthropicBlockAssistant = fc.oneof(
  { weight: 3, arbitrary: fc.record({ type: fc.constant("text"), text }) },
  { weight: 2, arbitrary: fc.record({ type: fc.constant("tool_use"), id: callId, name: toolName, input: argsObject }) },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("thinking"), thinking: text, signature: fc.base64String({ maxLength: 12 }) }) },
);
const anthropicRequestJson: fc.Arbitrary<Record<string, unknown>> = fc.record({
  model: fc.constant("claude-sonnet-4-5"),
  max_tokens: fc.integer({ min: 1, max: 8192 }),
  system: maybe(fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { minLength: 1, maxLength: 2 }))),
  messages: fc.array(fc.oneof(
    fc.record({ role: fc.constantFrom("user", "assistant"), content: text }),
    fc.record({ role: fc.constant("user"), content: fc.array(anthropicBlockUser, { minLength: 1, maxLength: 3 }) }),
    fc.record({ role: fc.constant("assistant"), content: fc.array(anthropicBlockAssistant, { minLength: 1, maxLength: 3 }) }),
  ), { minLength: 1, maxLength: 5 }),
  temperature: maybe(fc.integer({ min: 0, max: 100 }).map((n) => n / 100)),
  top_p: maybe(fc.integer({ min: 0, max: 100 }).map((n) => n / 100)),
  top_k: maybe(fc.integer({ min: 1, max: 100 })),
  stop_sequences: maybe(fc.array(text, { maxLength: 2 })),
  tool_choice: maybe(fc.oneof(fc.constantFrom({ type: "auto" }, { type: "any" }, { type: "none" }), toolName.map((name) => ({ type: "tool", name })))),
  metadata: maybe(fc.record({ user_id: fc.string({ minLength: 1, maxLength: 8 }) })),
  thinking: maybe(fc.constant({ type: "enabled", budget_tokens: 2048 })),
}).map((r) => {
  const o: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) if (v !== undefined) o[k] = v;
  return o;
});

/** What Gemini should get, flattened: (role, kind, payload). */
function expectedGemini(req: ChatRequest): { system: string[]; items: Flat[] } {
  const system: string[] = [];
  const items: Flat[] = [];
  req.messages.forEach((m, i) => {
    if (isSystem(m)) {
      for (const c of m.content) if (c.part.case === "text") system.push(c.part.value);
      return;
    }
    if (m.role === Role.USER) {
      for (const c of m.content) {
        if (c.part.case === "text") items.push(["user", "text", c.part.value]);
        else if (c.part.case === "imageUrl") {
          const d = /^data:([^;,]+);base64,(.*)$/s.exec(c.part.value.url)!;
          items.push(["user", "inline", [d[1]!.toLowerCase(), d[2]]]);
        }
      }
    } else if (m.role === Role.ASSISTANT) {
      // Lossy: reasoning and refusals are not sent back to Gemini; empty text parts are dropped.
      for (const c of m.content) if (c.part.case === "text" && c.part.value !== "") items.push(["model", "text", c.part.value]);
      for (const t of m.toolCalls) items.push(["model", "call", [t.function?.name, parseArgs(t.function?.arguments ?? "")]]);
    } else if (m.role === Role.TOOL) {
      let name: string | undefined;
      for (let k = i - 1; k >= 0 && name === undefined; k--) name = req.messages[k]!.toolCalls.find((t) => t.id === m.toolCallId)?.function?.name;
      const t = textOf(m);
      let parsed: unknown;
      try {
        parsed = JSON.parse(t);
      } catch {
        parsed = undefined;
      }
      items.push(["user", "result", [name, typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? parsed : { result: t }]]);
    }
  });
  return { system, items };
}

function flatGemini(body: ReturnType<typeof toGeminiRequest>): { system: string[]; items: Flat[] } {
  const items: Flat[] = [];
  for (const c of body.contents) {
    for (const p of c.parts) {
      if (p.text !== undefined) items.push([c.role, "text", p.text]);
      else if (p.inlineData) items.push([c.role, "inline", [p.inlineData.mimeType, p.inlineData.data]]);
      else if (p.functionCall) items.push([c.role, "call", [p.functionCall.name, p.functionCall.args]]);
      else if (p.functionResponse) items.push([c.role, "result", [p.functionResponse.name, p.functionResponse.response]]);
      else items.push([c.role, "?", p]);
    }
  }
  return { system: (body.systemInstruction?.parts ?? []).map((p) => p.text ?? "?"), items };
}

function expectedBedrock(req: ChatRequest): { system: string[]; items: Flat[] } {
  const system: string[] = [];
  const items: Flat[] = [];
  for (const m of req.messages) {
    if (isSystem(m)) {
      for (const c of m.content) if (c.part.case === "text" && c.part.value !== "") system.push(c.part.value);
      continue;
    }
    if (m.role === Role.USER) {
      for (const c of m.content) {
        if (c.part.case === "text") items.push(["user", "text", c.part.value]);
        else if (c.part.case === "imageUrl") {
          const d = /^data:([^;,]+);base64,(.*)$/s.exec(c.part.value.url)!;
          items.push(["user", "image", [{ "image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp" }[d[1]!.toLowerCase()], d[2]]]);
        }
      }
    } else if (m.role === Role.ASSISTANT) {
      // Lossy: reasoning and refusals are not sent back; blank text blocks are dropped (Converse refuses them).
      for (const c of m.content) if (c.part.case === "text" && c.part.value.trim() !== "") items.push(["assistant", "text", c.part.value]);
      for (const t of m.toolCalls) items.push(["assistant", "toolUse", [t.id, t.function?.name, parseArgs(t.function?.arguments ?? "")]]);
    } else items.push(["user", "toolResult", [m.toolCallId, textOf(m)]]);
  }
  return { system, items };
}

function flatBedrock(body: ReturnType<typeof toConverseRequest>): { system: string[]; items: Flat[] } {
  const items: Flat[] = [];
  for (const m of body.messages) {
    for (const b of m.content) {
      if ("text" in b) items.push([m.role, "text", b.text]);
      else if ("image" in b) items.push([m.role, "image", [b.image.format, b.image.source.bytes]]);
      else if ("toolUse" in b) items.push([m.role, "toolUse", [b.toolUse.toolUseId, b.toolUse.name, b.toolUse.input]]);
      else if ("toolResult" in b) items.push([m.role, "toolResult", [b.toolResult.toolUseId, b.toolResult.content.map((c) => ("text" in c ? c.text : JSON.stringify(c.json))).join("")]]);
    }
  }
  return { system: (body.system ?? []).map((s) => s.text), items };
}

// ---------------------------------------------------------------------------
// Answers: provider JSON -> canonical -> the caller's JSON

const FINISH_OPENAI: Record<string, string> = { stop: "stop", length: "length", tool_calls: "tool_calls", content_filter: "content_filter", function_call: "function_call" };
const FINISH_ANTHROPIC: Record<string, string> = { end_turn: "stop", stop_sequence: "stop", pause_turn: "stop", max_tokens: "length", model_context_window_exceeded: "length", tool_use: "tool_calls", refusal: "content_filter" };
const FINISH_GEMINI: Record<string, string> = { STOP: "stop", MAX_TOKENS: "length", SAFETY: "content_filter", RECITATION: "content_filter", BLOCKLIST: "content_filter", PROHIBITED_CONTENT: "content_filter", SPII: "content_filter" };
const FINISH_BEDROCK: Record<string, string> = { end_turn: "stop", stop_sequence: "stop", max_tokens: "length", model_context_window_exceeded: "length", tool_use: "tool_calls", guardrail_intervened: "content_filter", content_filtered: "content_filter" };

const tokenCount = fc.oneof(fc.nat(100_000), fc.constantFrom(0, 2 ** 32 - 1));

const openaiCompletion = fc.record({
  id: fc.string({ maxLength: 12 }),
  created: fc.nat(2_000_000_000),
  model: fc.string({ maxLength: 12 }),
  choices: fc.array(fc.record({
    content: fc.option(text, { nil: null }),
    tool_calls: fc.array(fc.record({ id: callId, name: toolName, args: argsObject.map((o) => JSON.stringify(o)) }), { maxLength: 2 }),
    refusal: fc.option(text, { nil: null }),
    finish: fc.constantFrom("stop", "length", "tool_calls", "content_filter", "function_call"),
  }), { minLength: 1, maxLength: 2 }),
  usage: maybe(fc.record({ prompt_tokens: tokenCount, completion_tokens: tokenCount, cached: tokenCount, reasoning: tokenCount })),
  system_fingerprint: fc.oneof(fc.constant(""), fc.string({ minLength: 1, maxLength: 8 })),
}).map((r) => {
  const body: Record<string, unknown> = {
    id: r.id,
    object: "chat.completion",
    created: r.created,
    model: r.model,
    choices: r.choices.map((c, i) => ({
      index: i,
      message: {
        role: "assistant",
        content: c.content,
        refusal: c.refusal,
        ...(c.tool_calls.length > 0 ? { tool_calls: c.tool_calls.map((t) => ({ id: t.id, type: "function", function: { name: t.name, arguments: t.args } })) } : {}),
      },
      logprobs: null,
      finish_reason: c.finish,
    })),
  };
  if (r.usage) {
    const u = r.usage;
    body["usage"] = {
      prompt_tokens: u.prompt_tokens,
      completion_tokens: u.completion_tokens,
      total_tokens: Math.min(u.prompt_tokens + u.completion_tokens, 2 ** 32 - 1),
      prompt_tokens_details: { cached_tokens: u.cached },
      completion_tokens_details: { reasoning_tokens: u.reasoning },
    };
  }
  if (r.system_fingerprint) body["system_fingerprint"] = r.system_fingerprint;
  return body;
});

const anthropicAnswer = fc.record({
  id: fc.stringMatching(/^msg_[a-zA-Z0-9]{4,12}$/),
  model: fc.constant("claude-sonnet-4-5"),
  blocks: fc.array(fc.oneof(
    { weight: 4, arbitrary: fc.record({ type: fc.constant("text"), text }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant("tool_use"), id: callId, name: toolName, input: argsObject }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("thinking"), thinking: text, signature: fc.base64String({ maxLength: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("redacted_thinking"), data: fc.base64String({ maxLength: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("text"), text, citations: fc.constant([{ type: "char_location", cited_text: "x", document_index: 0, start_char_index: 0, end_char_index: 1 }]) }) },
  ), { maxLength: 4 }),
  stop_reason: fc.constantFrom("end_turn", "stop_sequence", "pause_turn", "max_tokens", "model_context_window_exceeded", "tool_use", "refusal"),
  stop_sequence: fc.string({ maxLength: 4 }),
  usage: fc.record({ input_tokens: fc.nat(100_000), output_tokens: fc.nat(100_000), cache_read_input_tokens: fc.nat(10_000), cache_creation_input_tokens: fc.nat(10_000) }),
}).map((r) => ({
  id: r.id,
  type: "message",
  role: "assistant",
  model: r.model,
  content: r.blocks,
  stop_reason: r.stop_reason,
  stop_sequence: r.stop_reason === "stop_sequence" ? r.stop_sequence : null,
  usage: r.usage,
}));

const geminiAnswer = fc.record({
  candidates: fc.array(fc.record({
    parts: fc.array(fc.oneof(
      { weight: 4, arbitrary: fc.record({ text }) },
      { weight: 1, arbitrary: fc.record({ text, thought: fc.constant(true) }) },
      { weight: 2, arbitrary: fc.record({ functionCall: fc.record({ name: toolName, args: argsObject }) }) },
      { weight: 1, arbitrary: fc.record({ functionCall: fc.record({ name: toolName, args: argsObject }), thoughtSignature: fc.base64String({ minLength: 4, maxLength: 8 }) }) },
    ), { maxLength: 4 }),
    finishReason: fc.constantFrom("STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER", "MALFORMED_FUNCTION_CALL"),
  }), { minLength: 1, maxLength: 2 }),
  usage: maybe(fc.record({ promptTokenCount: fc.nat(100_000), candidatesTokenCount: fc.nat(100_000), thoughtsTokenCount: fc.nat(10_000), cachedContentTokenCount: fc.nat(1000) })),
  modelVersion: fc.constantFrom("gemini-2.5-flash", ""),
  responseId: fc.string({ maxLength: 10 }),
}).map((r) => ({
  candidates: r.candidates.map((c, i) => ({ content: { role: "model", parts: c.parts }, finishReason: c.finishReason, index: i })),
  ...(r.usage ? { usageMetadata: { ...r.usage, totalTokenCount: r.usage.promptTokenCount + r.usage.candidatesTokenCount + r.usage.thoughtsTokenCount } } : {}),
  modelVersion: r.modelVersion,
  responseId: r.responseId,
}));

const bedrockAnswer = fc.record({
  blocks: fc.array(fc.oneof(
    { weight: 4, arbitrary: fc.record({ text }) },
    { weight: 2, arbitrary: fc.record({ toolUse: fc.record({ toolUseId: fc.stringMatching(/^tooluse_[a-zA-Z0-9]{4,10}$/), name: toolName, input: argsObject }) }) },
    { weight: 1, arbitrary: fc.record({ reasoningContent: fc.record({ reasoningText: fc.record({ text, signature: fc.base64String({ maxLength: 8 }) }) }) }) },
  ), { maxLength: 4 }),
  stopReason: fc.constantFrom("end_turn", "stop_sequence", "max_tokens", "model_context_window_exceeded", "tool_use", "guardrail_intervened", "content_filtered"),
  usage: fc.record({ inputTokens: fc.nat(100_000), outputTokens: fc.nat(100_000), cacheReadInputTokens: fc.nat(10_000), cacheWriteInputTokens: fc.nat(10_000) }),
}).map((r) => ({
  output: { message: { role: "assistant", content: r.blocks } },
  stopReason: r.stopReason,
  usage: { ...r.usage, totalTokens: r.usage.inputTokens + r.usage.outputTokens + r.usage.cacheReadInputTokens + r.usage.cacheWriteInputTokens },
  metrics: { latencyMs: 1 },
}));

/** The answer as OpenAI JSON, serialisable as protobuf and as JSON (what callers of every protocol get). */
function toOpenAI(c: ChatCompletion): Record<string, unknown> {
  toBinary(ChatCompletionSchema, c);
  const out = encodeChatCompletion(c);
  assertJson(out);
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

interface OpenAIChoice {
  message: { content: string | null; refusal: string | null; reasoning_content?: string; tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[] };
  finish_reason: string;
}

describe("answers", () => {
  it("OpenAI completion JSON -> canonical -> OpenAI JSON keeps text, tool calls, usage and finish reason", () => {
    fc.assert(fc.property(openaiCompletion, (body) => {
      count("openai answer");
      const out = toOpenAI(decodeChatCompletion(JSON.parse(JSON.stringify(body))));
      expect(out["id"]).toBe(body["id"]);
      expect(out["model"]).toBe(body["model"]);
      expect(out["created"]).toBe(body["created"]);
      expect(out["usage"]).toEqual(body["usage"]);
      expect(out["system_fingerprint"]).toBe(body["system_fingerprint"]);
      expect(out["choices"]).toEqual(body["choices"]);
    }), params(300));
  });

  it("Anthropic answer -> canonical -> OpenAI JSON", () => {
    fc.assert(fc.property(anthropicAnswer, (body) => {
      count("anthropic answer -> openai");
      const out = toOpenAI(decodeMessagesResponse(JSON.parse(JSON.stringify(body))));
      const choice = (out["choices"] as OpenAIChoice[])[0]!;
      const texts = body.content.filter((b) => b.type === "text") as { text: string }[];
      expect(choice.message.content).toBe(texts.length === 0 ? null : texts.map((b) => b.text).join(""));
      expect(choice.message.reasoning_content ?? "").toBe((body.content.filter((b) => b.type === "thinking") as { thinking: string }[]).map((b) => b.thinking).join(""));
      const uses = body.content.filter((b) => b.type === "tool_use") as { id: string; name: string; input: unknown }[];
      expect((choice.message.tool_calls ?? []).map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)])).toEqual(uses.map((u) => [u.id, u.name, u.input]));
      expect(choice.finish_reason).toBe(FINISH_ANTHROPIC[body.stop_reason]);
      const u = body.usage;
      const prompt = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens;
      expect(out["usage"]).toMatchObject({ prompt_tokens: prompt, completion_tokens: u.output_tokens, total_tokens: prompt + u.output_tokens, prompt_tokens_details: { cached_tokens: u.cache_read_input_tokens } });
    }), params(300));
  });

  it("Anthropic answer -> canonical -> Anthropic answer keeps content, stop reason and usage", () => {
    fc.assert(fc.property(anthropicAnswer, (body) => {
      count("anthropic answer round trip");
      const c = decodeMessagesResponse(JSON.parse(JSON.stringify(body)));
      toBinary(ChatCompletionSchema, c);
      const out = JSON.parse(JSON.stringify(encodeMessagesResponse(c)));
      expect(out.id).toBe(body.id);
      expect(out.usage).toEqual(body.usage);
      // Lossy: pause_turn and model_context_window_exceeded have no canonical finish reason of their own.
      const stop = { pause_turn: "end_turn", model_context_window_exceeded: "max_tokens" }[body.stop_reason as string] ?? body.stop_reason;
      expect(out.stop_reason).toBe(stop);
      expect(out.stop_sequence).toBe(body.stop_sequence);
      const plain = body.content.every((b) => (b.type === "text" && !("citations" in b)) || b.type === "tool_use");
      if (!plain) {
        // Thinking (with its signature), redacted thinking and citations: the original blocks come back as they were.
        expect(out.content).toEqual(body.content);
      } else {
        // Lossy: plain answers come back as one text block (texts joined) followed by the tool calls.
        const joined = (body.content.filter((b) => b.type === "text") as { text: string }[]).map((b) => b.text).join("");
        const expected = [...(joined === "" ? [] : [{ type: "text", text: joined }]), ...body.content.filter((b) => b.type === "tool_use")];
        expect(out.content).toEqual(expected);
      }
    }), params(300));
  });

  it("Gemini answer -> canonical -> OpenAI JSON", () => {
    fc.assert(fc.property(geminiAnswer, (body) => {
      count("gemini answer -> openai");
      const out = toOpenAI(toChatCompletion(JSON.parse(JSON.stringify(body)), "gemini-x"));
      expect(out["model"]).toBe(body.modelVersion || "gemini-x");
      const choices = out["choices"] as OpenAIChoice[];
      expect(choices.length).toBe(body.candidates.length);
      body.candidates.forEach((cand, i) => {
        const ch = choices[i]!;
        const parts = cand.content.parts as { text?: string; thought?: boolean; functionCall?: { name: string; args: unknown }; thoughtSignature?: string }[];
        const said = parts.filter((p) => p.text !== undefined && p.thought !== true).map((p) => p.text).join("");
        const calls = parts.filter((p) => p.functionCall);
        expect(ch.message.content).toBe(said === "" && calls.length > 0 ? null : said);
        expect(ch.message.reasoning_content ?? "").toBe(parts.filter((p) => p.thought === true).map((p) => p.text).join(""));
        expect((ch.message.tool_calls ?? []).map((t) => [t.function.name, JSON.parse(t.function.arguments)])).toEqual(calls.map((p) => [p.functionCall!.name, p.functionCall!.args]));
        // A thought signature rides in the call id (see gemini/from-gemini.ts), so it comes back on the next turn.
        calls.forEach((p, k) => expect(ch.message.tool_calls![k]!.id).toBe(p.thoughtSignature ? `call_${k}~ts~${p.thoughtSignature}` : `call_${k}`));
        const mapped = FINISH_GEMINI[cand.finishReason] ?? "stop";
        expect(ch.finish_reason).toBe(mapped === "stop" && calls.length > 0 ? "tool_calls" : mapped);
      });
      if (body.usageMetadata) {
        const u = body.usageMetadata;
        expect(out["usage"]).toMatchObject({
          prompt_tokens: u.promptTokenCount,
          completion_tokens: u.candidatesTokenCount + u.thoughtsTokenCount,
          total_tokens: u.totalTokenCount,
          prompt_tokens_details: { cached_tokens: u.cachedContentTokenCount },
          completion_tokens_details: { reasoning_tokens: u.thoughtsTokenCount },
        });
      } else expect(out["usage"]).toBeUndefined();
    }), params(300));
  });

  it("Bedrock Converse answer -> canonical -> OpenAI JSON", () => {
    fc.assert(fc.property(bedrockAnswer, (body) => {
      count("bedrock answer -> openai");
      const out = toOpenAI(fromConverseResponse(JSON.parse(JSON.stringify(body)), "anthropic.claude"));
      expect(out["model"]).toBe("anthropic.claude");
      const ch = (out["choices"] as OpenAIChoice[])[0]!;
      const blocks = body.output.message.content as { text?: string; toolUse?: { toolUseId: string; name: string; input: unknown }; reasoningContent?: { reasoningText: { text: string } } }[];
      const said = blocks.filter((b) => b.text !== undefined).map((b) => b.text).join("");
      const uses = blocks.filter((b) => b.toolUse).map((b) => b.toolUse!);
      expect(ch.message.content).toBe(said === "" && uses.length > 0 ? null : said);
      expect(ch.message.reasoning_content ?? "").toBe(blocks.filter((b) => b.reasoningContent).map((b) => b.reasoningContent!.reasoningText.text).join(""));
      expect((ch.message.tool_calls ?? []).map((t) => [t.id, t.function.name, JSON.parse(t.function.arguments)])).toEqual(uses.map((u) => [u.toolUseId, u.name, u.input]));
      expect(ch.finish_reason).toBe(FINISH_BEDROCK[body.stopReason]);
      const u = body.usage;
      const prompt = u.inputTokens + u.cacheReadInputTokens + u.cacheWriteInputTokens;
      expect(out["usage"]).toMatchObject({ prompt_tokens: prompt, completion_tokens: u.outputTokens, total_tokens: body.usage.totalTokens, prompt_tokens_details: { cached_tokens: u.cacheReadInputTokens } });
    }), params(300));
  });

  it("canonical answer -> Responses API object keeps text, tool calls and usage", () => {
    fc.assert(fc.property(openaiCompletion, (body) => {
      count("canonical answer -> responses");
      const c = decodeChatCompletion(body);
      const r = JSON.parse(JSON.stringify(encodeResponse(c, { id: "resp_1", createdAt: 1, request: echoRequest({ model: "m" }), completedAt: 2 })));
      const choice = (body["choices"] as OpenAIChoice[])[0]!;
      const items = r.output as { type: string; content?: { type: string; text?: string; refusal?: string }[]; name?: string; call_id?: string; arguments?: string }[];
      const texts = items.filter((i) => i.type === "message").flatMap((i) => i.content!).filter((p) => p.type === "output_text").map((p) => p.text).join("");
      expect(texts).toBe(choice.message.content ?? "");
      const refusals = items.filter((i) => i.type === "message").flatMap((i) => i.content!).filter((p) => p.type === "refusal").map((p) => p.refusal);
      expect(refusals).toEqual(choice.message.refusal === null ? [] : [choice.message.refusal]);
      expect(items.filter((i) => i.type === "function_call").map((i) => [i.call_id, i.name, i.arguments])).toEqual((choice.message.tool_calls ?? []).map((t) => [t.id, t.function.name, t.function.arguments]));
      expect(r.status).toBe({ length: "incomplete", content_filter: "incomplete" }[choice.finish_reason] ?? "completed");
      const u = body["usage"] as Record<string, number & Record<string, number>> | undefined;
      if (u) expect(r.usage).toMatchObject({ input_tokens: u["prompt_tokens"], output_tokens: u["completion_tokens"], total_tokens: u["total_tokens"] });
    }), params(200));
  });

  it("any JSON as a provider answer: a canonical answer that serialises, or an upstream error", () => {
    const decoders: [string, (v: unknown) => ChatCompletion][] = [
      ["openai", decodeChatCompletion],
      ["anthropic", decodeMessagesResponse],
      ["gemini", (v) => toChatCompletion(v, "g")],
      ["bedrock", (v) => fromConverseResponse(v, "b")],
    ];
    // Near misses too: the well-formed answers with one member replaced by any JSON value.
    const nearMiss = fc.tuple(fc.oneof(openaiCompletion, anthropicAnswer as fc.Arbitrary<object>, geminiAnswer, bedrockAnswer), fc.array(fc.tuple(fc.nat(), jsonish), { minLength: 1, maxLength: 3 })).map(([o, edits]) => {
      const copy = JSON.parse(JSON.stringify(o));
      for (const [n, v] of edits) replaceSomewhere(copy, n, v);
      return copy as unknown;
    });
    fc.assert(fc.property(fc.oneof(jsonish, nearMiss), fc.constantFrom(...decoders), (v, [name, decode]) => {
      count(`garbage answer -> ${name}`);
      let c: ChatCompletion;
      try {
        c = decode(JSON.parse(JSON.stringify(v ?? null)));
      } catch (err) {
        if (!(err instanceof GatewayError)) throw err;
        expect(["upstream_error", "invalid_request"]).toContain(err.code);
        return;
      }
      toOpenAI(c);
      assertJson(JSON.parse(JSON.stringify(encodeMessagesResponse(c))));
    }), params(600));
  });
});

/** Replaces the n-th (mod size) value inside `o` by `v`. */
function replaceSomewhere(o: unknown, n: number, v: unknown): void {
  const slots: [Record<string | number, unknown>, string | number][] = [];
  const walk = (x: unknown): void => {
    if (x === null || typeof x !== "object") return;
    for (const k of Object.keys(x)) {
      slots.push([x as Record<string, unknown>, Array.isArray(x) ? Number(k) : k]);
      walk((x as Record<string, unknown>)[k]);
    }
  };
  walk(o);
  if (slots.length === 0) return;
  const [parent, key] = slots[n % slots.length]!;
  parent[key] = v;
}

// ---------------------------------------------------------------------------
// Streams

/** A canonical answer as a provider streams it: role, reasoning, text, tool calls (each whole before the next), finish, usage. */
const streamedAnswer = fc.record({
  reasoning: fc.array(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 3 }),
  text: fc.array(fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }), { maxLength: 4 }),
  calls: fc.array(fc.record({ id: callId, name: toolName, args: fc.array(fc.string({ minLength: 1, maxLength: 5 }), { maxLength: 3 }) }), { maxLength: 2 }),
  finish: fc.constantFrom(FinishReason.STOP, FinishReason.LENGTH, FinishReason.TOOL_CALLS, FinishReason.CONTENT_FILTER),
  usage: maybe(fc.record({ prompt: fc.nat(100_000), completion: fc.nat(100_000), cached: fc.nat(1000), write: fc.nat(1000) })),
});

function chunksOf(a: StreamedAnswer): ChatChunk[] {
  const base = { id: "chatcmpl-1", created: 1n, model: "m", systemFingerprint: "" };
  const chunk = (delta: Record<string, unknown>, finish: FinishReason = FinishReason.UNSPECIFIED): ChatChunk =>
    create(ChatChunkSchema, { ...base, choices: [{ index: 0, delta: { ...delta }, finishReason: finish }] });
  const out: ChatChunk[] = [chunk({ role: Role.ASSISTANT })];
  for (const r of a.reasoning) out.push(chunk({ reasoningContent: r }));
  for (const t of a.text) out.push(chunk({ content: t }));
  a.calls.forEach((c, i) => {
    out.push(chunk({ toolCalls: [{ index: i, id: c.id, name: c.name, arguments: "" }] }));
    for (const p of c.args) out.push(chunk({ toolCalls: [{ index: i, id: "", name: "", arguments: p }] }));
  });
  out.push(chunk({}, a.finish));
  if (a.usage) {
    const prompt = a.usage.prompt + a.usage.cached + a.usage.write;
    out.push(create(ChatChunkSchema, { ...base, choices: [], usage: { promptTokens: prompt, completionTokens: a.usage.completion, totalTokens: prompt + a.usage.completion, cachedTokens: a.usage.cached, cacheWriteTokens: a.usage.write } }));
  }
  return out;
}
type StreamedAnswer = typeof streamedAnswer extends fc.Arbitrary<infer T> ? T : never;

/** What a stream adds up to. */
function accumulate(chunks: ChatChunk[]): { text: string; reasoning: string; calls: [string, string, string][]; finish: FinishReason; usage: unknown } {
  let text = "";
  let reasoning = "";
  const calls: [string, string, string][] = [];
  let finish: FinishReason = FinishReason.UNSPECIFIED;
  let usage: unknown;
  for (const c of chunks) {
    for (const ch of c.choices) {
      text += ch.delta?.content ?? "";
      reasoning += ch.delta?.reasoningContent ?? "";
      for (const t of ch.delta?.toolCalls ?? []) {
        calls[t.index] ??= ["", "", ""];
        if (t.id) calls[t.index]![0] = t.id;
        if (t.name) calls[t.index]![1] = t.name;
        calls[t.index]![2] += t.arguments ?? "";
      }
      if (ch.finishReason !== FinishReason.UNSPECIFIED) finish = ch.finishReason;
    }
    if (c.usage) usage = { prompt: c.usage.promptTokens, completion: c.usage.completionTokens, cached: c.usage.cachedTokens, write: c.usage.cacheWriteTokens };
  }
  return { text, reasoning, calls, finish, usage };
}

describe("streams", () => {
  it("canonical chunks -> OpenAI chunk JSON -> canonical chunks is the identity", () => {
    fc.assert(fc.property(streamedAnswer, (a) => {
      count("openai chunk round trip");
      const chunks = chunksOf(a);
      const back = chunks.map((c) => {
        toBinary(ChatChunkSchema, c);
        const json = encodeChatChunk(c);
        assertJson(json);
        return decodeChatChunk(JSON.parse(JSON.stringify(json)));
      });
      // `logprobs: null` goes out on every choice, as OpenAI sends it, and comes back as an untyped field.
      // Lossy: reasoning signatures (Anthropic's) have no place in OpenAI's chunks.
      // Lossy: OpenAI's usage has no cache-write count.
      expect(back).toEqual(chunks.map((c) => ({
        ...c,
        choices: c.choices.map((ch) => ({ ...ch, extra: { logprobs: null }, delta: ch.delta && { ...ch.delta, reasoningSignature: undefined } })),
        usage: c.usage && { ...c.usage, cacheWriteTokens: 0 },
      })));
    }), params(300));
  });

  it("canonical chunks -> Anthropic events -> canonical chunks keeps text, reasoning, tool calls, finish and usage", () => {
    fc.assert(fc.property(streamedAnswer, (a) => {
      count("anthropic stream round trip");
      const chunks = chunksOf(a);
      const enc = createStreamEncoder();
      const frames = [...chunks.flatMap((c) => enc.push(c)), ...enc.end()];
      const dec = createStreamDecoder();
      const back: ChatChunk[] = [];
      for (const e of sseEvents(frames.join(""))) back.push(...dec.push(e.event ?? "", JSON.parse(e.data)));
      expect(dec.done).toBe(true);
      const want = accumulate(chunks);
      const got = accumulate(back);
      expect(got.text).toBe(want.text);
      expect(got.reasoning).toBe(want.reasoning);
      expect(got.calls).toEqual(want.calls);
      // Lossy: Anthropic's refusal is CONTENT_FILTER; STOP with tool calls stays STOP.
      expect(got.finish).toBe(want.finish);
      // Lossy: Anthropic has no reasoning token count; the total is recomputed as prompt + completion.
      expect(got.usage).toEqual(want.usage ?? { prompt: 0, completion: 0, cached: 0, write: 0 });
    }), params(300));
  });
});
