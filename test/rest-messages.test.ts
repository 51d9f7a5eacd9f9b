import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// Anthropic's Messages API on the gateway (POST /v1/messages), driven by the
// official @anthropic-ai/sdk, answered by an OpenAI-backed model and by an
// Anthropic-backed one.

const KEY = "sk-gateway-messages-test-0123456789";
let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gw: TestGateway;
let client: Anthropic;
type ApiErr = InstanceType<typeof Anthropic.APIError>;

beforeAll(async () => {
  openai = await startOpenAIStandin();
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    providers: [
      openaiProvider(openai.url, { models: ["gpt-4o-mini"] }),
      { type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"], models: ["claude-sonnet-4-5"] },
    ],
  });
  client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
  await anthropic?.close();
});

beforeEach(() => {
  openai.setBehavior(null);
  anthropic.setBehavior(null);
  openai.requests.length = 0;
  anthropic.requests.length = 0;
});

const tools: Anthropic.Tool[] = [{
  name: "get_weather",
  description: "Weather in a city",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
}];

const backends = [
  { name: "OpenAI-backed", model: "openai/gpt-4o-mini", upstreamModel: "gpt-4o-mini" },
  { name: "Anthropic-backed", model: "anthropic/claude-sonnet-4-5", upstreamModel: "claude-sonnet-4-5" },
];

for (const b of backends) {
  describe(`${b.name} model`, () => {
    it("answers messages.create", async () => {
      const { data, response } = await client.messages
        .create({ model: b.model, max_tokens: 256, system: "Be brief.", messages: [{ role: "user", content: "Say hello" }] })
        .withResponse();
      expect(data.type).toBe("message");
      expect(data.role).toBe("assistant");
      expect(data.model).toBe(b.upstreamModel);
      expect(data.content).toEqual([{ type: "text", text: "echo: Say hello" }]);
      expect(data.stop_reason).toBe("end_turn");
      expect(data.stop_sequence).toBeNull();
      expect(data.usage.input_tokens).toBeGreaterThan(0);
      expect(data.usage.output_tokens).toBeGreaterThan(0);
      expect(response.headers.get("request-id")).toBe(response.headers.get("x-request-id"));
      expect((data as { _request_id?: string | null })._request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(response.headers.get("x-switchyard-model")).toBe(b.upstreamModel);
    });

    it("streams with messages.stream and finalMessage", async () => {
      const stream = client.messages.stream({ model: b.model, max_tokens: 256, messages: [{ role: "user", content: "Tell me a story" }] });
      const deltas: string[] = [];
      stream.on("text", (t) => deltas.push(t));
      const final = await stream.finalMessage();
      expect(deltas.length).toBeGreaterThan(2);
      expect(deltas.join("")).toBe("echo: Tell me a story");
      expect(final.content).toHaveLength(1);
      expect(final.content[0]).toMatchObject({ type: "text", text: "echo: Tell me a story" });
      expect(final.stop_reason).toBe("end_turn");
      expect(final.usage.output_tokens).toBeGreaterThan(0);
      expect(final.usage.input_tokens).toBeGreaterThan(0);
    });

    it("runs a tool-use round trip, non-streaming and streaming", async () => {
      const first = await client.messages.create({
        model: b.model,
        max_tokens: 256,
        messages: [{ role: "user", content: "Weather in Paris?" }],
        tools,
        tool_choice: { type: "any" },
      });
      expect(first.stop_reason).toBe("tool_use");
      const use = first.content.find((c): c is Anthropic.ToolUseBlock => c.type === "tool_use")!;
      expect(use.name).toBe("get_weather");
      expect(use.input).toHaveProperty("location");

      const streamed = await client.messages
        .stream({ model: b.model, max_tokens: 256, messages: [{ role: "user", content: "Weather in Rome?" }], tools })
        .finalMessage();
      expect(streamed.stop_reason).toBe("tool_use");
      const streamedUse = streamed.content.find((c): c is Anthropic.ToolUseBlock => c.type === "tool_use")!;
      expect(streamedUse.input).toHaveProperty("location");

      const second = await client.messages.create({
        model: b.model,
        max_tokens: 256,
        tools,
        messages: [
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: first.content },
          { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C and sunny" }] },
        ],
      });
      expect(second.stop_reason).toBe("end_turn");
      // The OpenAI stand-in echoes the last user message; Anthropic's, the tool result it got.
      const text = (second.content[0] as Anthropic.TextBlock).text;
      expect(text).toBe(b.name === "OpenAI-backed" ? "echo: Weather in Paris?" : "echo: 18C and sunny");
      if (b.name === "OpenAI-backed") {
        const sent = openai.requests.at(-1)!.body as { messages: unknown[] };
        expect(sent.messages).toEqual([
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: null, tool_calls: [{ id: use.id, type: "function", function: { name: "get_weather", arguments: JSON.stringify(use.input) } }] },
          { role: "tool", tool_call_id: use.id, content: "18C and sunny" },
        ]);
      } else {
        const sent = anthropic.requests.at(-1)!.body as { messages: unknown[] };
        expect(sent.messages).toEqual([
          { role: "user", content: "Weather in Paris?" },
          { role: "assistant", content: [{ type: "tool_use", id: use.id, name: "get_weather", input: use.input }] },
          { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18C and sunny" }] },
        ]);
      }
    });
  });
}

/** Raw SSE from POST /v1/messages: event names and parsed data, in order. */
async function rawStream(body: object): Promise<Array<{ event: string; data: any }>> {
  const res = await fetch(`${gw.url}/v1/messages`, {
    method: "POST",
    headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
    body: JSON.stringify({ max_tokens: 256, stream: true, ...body }),
  });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
  const text = await res.text();
  return text.split("\n\n").filter((f) => f !== "").map((frame) => {
    const [ev, data] = frame.split("\n");
    expect(ev).toMatch(/^event: /);
    expect(data).toMatch(/^data: /);
    return { event: ev!.slice(7), data: JSON.parse(data!.slice(6)) };
  });
}

/** Collapses runs of content_block_delta into one entry, for order checks. */
const shape = (events: Array<{ event: string }>) => events.map((e) => e.event).filter((e, i, all) => !(e === "content_block_delta" && all[i - 1] === e));

describe("the exact event sequence", () => {
  for (const b of backends) {
    it(`text stream (${b.name})`, async () => {
      const events = await rawStream({ model: b.model, messages: [{ role: "user", content: "Hello there" }] });
      expect(shape(events)).toEqual(["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
      for (const e of events) expect(e.data.type).toBe(e.event);
      expect(events[0]!.data.message).toMatchObject({ type: "message", role: "assistant", content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 0, output_tokens: 0 } });
      expect(events[1]!.data).toEqual({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } });
      const deltas = events.filter((e) => e.event === "content_block_delta");
      expect(deltas.every((d) => d.data.index === 0 && d.data.delta.type === "text_delta")).toBe(true);
      expect(deltas.map((d) => d.data.delta.text).join("")).toBe("echo: Hello there");
      const md = events.at(-2)!.data;
      expect(md.delta).toEqual({ stop_reason: "end_turn", stop_sequence: null });
      expect(md.usage.output_tokens).toBeGreaterThan(0);
      expect(md.usage.input_tokens).toBeGreaterThan(0);
    });

    it(`tool stream (${b.name})`, async () => {
      const events = await rawStream({ model: b.model, messages: [{ role: "user", content: "Weather in Oslo?" }], tools });
      expect(shape(events)).toEqual(["message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"]);
      const start = events[1]!.data;
      expect(start).toMatchObject({ index: 0, content_block: { type: "tool_use", name: "get_weather", input: {} } });
      expect(start.content_block.id).toBeTruthy();
      const json = events.filter((e) => e.event === "content_block_delta").map((e) => {
        expect(e.data.delta.type).toBe("input_json_delta");
        return e.data.delta.partial_json;
      }).join("");
      expect(JSON.parse(json)).toHaveProperty("location");
      expect(events.at(-2)!.data.delta.stop_reason).toBe("tool_use");
    });
  }
});

describe("Anthropic-only fields pass through to an Anthropic-backed model", () => {
  it("keeps cache_control blocks and thinking, and returns thinking with its signature", async () => {
    const system = [{ type: "text" as const, text: "You are terse.", cache_control: { type: "ephemeral" as const } }];
    const userBlocks = [{ type: "text" as const, text: "Why?", cache_control: { type: "ephemeral" as const } }];
    const msg = await client.messages.create({
      model: "anthropic/claude-sonnet-4-5",
      max_tokens: 2048,
      system,
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [{ role: "user", content: userBlocks }],
    });
    const sent = anthropic.requests.at(-1)!.body as Record<string, unknown>;
    expect(sent["system"]).toEqual(system);
    expect(sent["messages"]).toEqual([{ role: "user", content: userBlocks }]);
    expect(sent["thinking"]).toEqual({ type: "enabled", budget_tokens: 1024 });
    expect(msg.content[0]).toMatchObject({ type: "thinking", thinking: "Thinking about: Why?" });
    expect((msg.content[0] as Anthropic.ThinkingBlock).signature).toMatch(/^EqQB/);
    expect(msg.content[1]).toEqual({ type: "text", text: "echo: Why?" });
  });

  it("an OpenAI-backed model gets plain text for cache_control blocks", async () => {
    await client.messages.create({
      model: "openai/gpt-4o-mini",
      max_tokens: 64,
      system: [{ type: "text", text: "You are terse.", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "Hi", cache_control: { type: "ephemeral" } }] }],
    });
    const sent = openai.requests.at(-1)!.body as Record<string, unknown>;
    expect(sent["messages"]).toEqual([{ role: "system", content: "You are terse." }, { role: "user", content: [{ type: "text", text: "Hi" }] }]);
    expect(sent["max_tokens"]).toBe(64);
    expect(JSON.stringify(sent)).not.toContain("cache_control");
  });
});

describe("errors", () => {
  it("come back as the SDK's typed errors in Anthropic's shape", async () => {
    const notFound = await client.messages.create({ model: "nope", max_tokens: 10, messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(Anthropic.NotFoundError);
    expect((notFound as ApiErr).error).toMatchObject({ type: "error", error: { type: "not_found_error" } });
    expect((notFound as ApiErr).requestID).toBeTruthy();

    const badKey = new Anthropic({ baseURL: gw.url, apiKey: "sk-wrong", maxRetries: 0 });
    const unauth = await badKey.messages.create({ model: b0(), max_tokens: 10, messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(unauth).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((unauth as ApiErr).error).toMatchObject({ type: "error", error: { type: "authentication_error" } });
    expect((unauth as ApiErr).requestID).toBeTruthy();

    const bad = await client.messages.create({ model: b0(), messages: [{ role: "user", content: "x" }] } as never).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(Anthropic.BadRequestError);
    expect((bad as ApiErr).error).toEqual({ type: "error", error: { type: "invalid_request_error", message: "max_tokens: Field required" } });

    const badBlock = await client.messages.create({ model: b0(), max_tokens: 10, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64", media_type: "image/bmp", data: "AA==" } }] }] } as never).catch((e: unknown) => e);
    expect(badBlock).toBeInstanceOf(Anthropic.BadRequestError);
    expect((badBlock as ApiErr).message).toContain("messages.0.content.0.source.media_type");
  });

  it("maps provider failures to Anthropic statuses", async () => {
    const req = { model: "anthropic/claude-sonnet-4-5", max_tokens: 10, messages: [{ role: "user" as const, content: "x" }] };
    anthropic.setBehavior({ kind: "status", status: 529 });
    expect(await client.messages.create(req).catch((e: unknown) => e)).toBeInstanceOf(Anthropic.OverloadedError);
    anthropic.setBehavior({ kind: "status", status: 429 });
    const limited = await client.messages.create(req).catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(Anthropic.RateLimitError);
    expect((limited as ApiErr).headers?.get("retry-after")).toBe("7");
    openai.setBehavior({ kind: "status", status: 500 });
    const failed = await client.messages.create({ ...req, model: "openai/gpt-4o-mini" }).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Anthropic.InternalServerError);
    expect((failed as ApiErr).status).toBe(502);
    expect((failed as ApiErr).error).toMatchObject({ error: { type: "api_error" } });
  });

  it("an error after the stream started is an `event: error`", async () => {
    openai.setBehavior({ kind: "stream-error", afterChunks: 3 });
    const events = await rawStream({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "Tell me a long story" }] });
    expect(events[0]!.event).toBe("message_start");
    expect(events.at(-1)).toEqual({ event: "error", data: { type: "error", error: { type: "api_error", message: expect.any(String) } } });
    expect(events.some((e) => e.event === "message_stop")).toBe(false);

    anthropic.setBehavior({ kind: "stream-error", afterEvents: 4 });
    const stream = client.messages.stream({ model: "anthropic/claude-sonnet-4-5", max_tokens: 100, messages: [{ role: "user", content: "Tell me a long story" }] });
    const err = await stream.finalMessage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.APIError);
    expect((err as ApiErr).error).toMatchObject({ type: "error", error: { type: "overloaded_error" } });
  });
});

function b0(): string {
  return backends[0]!.model;
}
