import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, FinishReason, userText } from "../sdk-ts/src/index.ts";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// Anthropic as a provider: OpenAI SDK callers (REST bridge) and RPC callers
// talk to the gateway; the gateway talks Anthropic's Messages API to a
// faithful stand-in.

const KEY = "sk-gateway-anthropic-test-0123456789";
let standin: AnthropicStandin;
let gw: TestGateway;
let client: OpenAI;
let modelsRequest: AnthropicStandin["requests"][number] | undefined;
const sy = () => createClient({ baseUrl: gw.url, apiKey: KEY });

beforeAll(async () => {
  standin = await startAnthropicStandin({ maxPromptTokens: 2000 });
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    providers: [{ type: "anthropic", baseUrl: standin.url, keys: ["sk-ant-test"], timeouts: { firstByteMs: 400, idleMs: 400 } }],
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
  await client.models.list(); // the catalog asks Anthropic's /v1/models once
  modelsRequest = standin.requests.find((r) => r.path === "/v1/models");
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  standin.cache = { read: 0, creation: 0 };
  standin.requests.length = 0;
});

const upstream = () => {
  const r = standin.requests.filter((x) => x.path === "/v1/messages").at(-1);
  if (!r) throw new Error("no upstream request");
  return r as typeof r & { body: Record<string, any> };
};

const weather: OpenAI.Chat.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

async function statusOf(p: Promise<unknown>): Promise<{ status: number | undefined; err: any }> {
  try {
    await p;
    return { status: undefined, err: undefined };
  } catch (err: any) {
    return { status: err.status, err };
  }
}

describe("through the OpenAI REST bridge", () => {
  it("answers a chat, sending Anthropic's headers, system and max_tokens", async () => {
    const res = await client.chat.completions.create({
      model: "anthropic/claude-sonnet-4-5",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: "Be kind." },
        { role: "user", content: "Say" },
        { role: "user", content: "hello" },
      ],
      temperature: 0.5,
      stop: ["zzz"],
      user: "u-1",
    });
    assertMatchesSchema("CreateChatCompletionResponse", res);
    expect(res.choices[0]!.message.content).toBe("echo: Say\nhello");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    const up = upstream();
    expect(up.headers["x-api-key"]).toBe("sk-ant-test");
    expect(up.headers["anthropic-version"]).toBe("2023-06-01");
    expect(up.headers["authorization"]).toBeUndefined();
    expect(up.body).toEqual({
      model: "claude-sonnet-4-5",
      system: "Be brief.\n\nBe kind.",
      // Consecutive user messages merged: Anthropic wants the roles to alternate.
      messages: [{ role: "user", content: [{ type: "text", text: "Say" }, { type: "text", text: "hello" }] }],
      max_tokens: 4096,
      temperature: 0.5,
      stop_sequences: ["zzz"],
      metadata: { user_id: "u-1" },
    });
  });

  it("maps max_tokens and stop reasons", async () => {
    const cut = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "a long question here" }], max_tokens: 2 });
    expect(cut.choices[0]!.finish_reason).toBe("length");
    expect(upstream().body.max_tokens).toBe(2);
    const stopped = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "one two" }], stop: ["two"] });
    expect(stopped.choices[0]!.message.content).toBe("echo: one ");
    expect(stopped.choices[0]!.finish_reason).toBe("stop");
  });

  it("streams with usage, including cache reads and writes, ignoring pings", async () => {
    standin.cache = { read: 10, creation: 5 };
    const stream = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [{ role: "user", content: "Tell me a story" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let first = true;
    for await (const chunk of stream) {
      assertMatchesSchema("CreateChatCompletionStreamResponse", chunk);
      if (first) expect(chunk.choices[0]!.delta.role).toBe("assistant");
      first = false;
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("echo: Tell me a story");
    expect(finish).toBe("stop");
    expect(upstream().body.stream).toBe(true);
    // Anthropic's input_tokens excludes the cache; the canonical prompt count includes it.
    const nonStream = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Tell me a story" }] });
    expect(usage!.prompt_tokens).toBe(nonStream.usage!.prompt_tokens);
    expect(usage!.prompt_tokens_details?.cached_tokens).toBe(10);
    expect(usage!.prompt_tokens).toBeGreaterThan(15);
    expect(usage!.total_tokens).toBe(usage!.prompt_tokens + usage!.completion_tokens);
  });

  it("runs a multi-turn tool exchange", async () => {
    const first = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weather],
      tool_choice: "required",
      parallel_tool_calls: false,
    });
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    const call = first.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(call.id).toMatch(/^toolu_/);
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toHaveProperty("location");
    expect(upstream().body.tools).toEqual([{ name: "get_weather", description: "Weather in a city", input_schema: weather.function.parameters }]);
    expect(upstream().body.tool_choice).toEqual({ type: "any", disable_parallel_tool_use: true });

    const second = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        first.choices[0]!.message as OpenAI.Chat.ChatCompletionMessageParam,
        { role: "tool", tool_call_id: call.id, content: "18C and sunny" },
      ],
      tools: [weather],
    });
    expect(second.choices[0]!.message.content).toBe("echo: 18C and sunny");
    expect(second.choices[0]!.finish_reason).toBe("stop");
    expect(upstream().body.messages).toEqual([
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: [{ type: "tool_use", id: call.id, name: "get_weather", input: JSON.parse(call.function.arguments) }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: call.id, content: "18C and sunny" }] },
    ]);
  });

  it("merges parallel tool results and a following user message into one user turn", async () => {
    const res = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "Checking both.",
          tool_calls: [
            { id: "toolu_a", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } },
            { id: "toolu_b", type: "function", function: { name: "get_weather", arguments: "" } },
          ],
        },
        { role: "tool", tool_call_id: "toolu_a", content: "18C" },
        { role: "tool", tool_call_id: "toolu_b", content: [{ type: "text", text: "21C" }] },
        { role: "user", content: "Which is warmer?" },
      ],
      tools: [weather],
      tool_choice: "none",
    });
    expect(res.choices[0]!.message.content).toBe("echo: Which is warmer?");
    expect(upstream().body.tool_choice).toEqual({ type: "none" });
    expect(upstream().body.messages).toEqual([
      { role: "user", content: "Weather in Paris and Rome?" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Checking both." },
          { type: "tool_use", id: "toolu_a", name: "get_weather", input: { location: "Paris" } },
          { type: "tool_use", id: "toolu_b", name: "get_weather", input: {} },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_a", content: "18C" },
          { type: "tool_result", tool_use_id: "toolu_b", content: "21C" },
          { type: "text", text: "Which is warmer?" },
        ],
      },
    ]);
  });

  it("streams a tool call that the SDK assembles", async () => {
    const final = await client.chat.completions
      .stream({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Weather in Rome?" }], tools: [weather] })
      .finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls![0]! as OpenAI.Chat.ChatCompletionMessageFunctionToolCall;
    expect(final.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call.id).toMatch(/^toolu_/);
    expect(JSON.parse(call.function.arguments)).toHaveProperty("location");
  });

  it("sends images as base64 and url sources", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
    const res = await client.chat.completions.create({
      model: "claude-sonnet-4-5",
      messages: [{
        role: "user",
        content: [
          { type: "text", text: "What is this?" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
          { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
        ],
      }],
    });
    expect(res.choices[0]!.message.content).toBe("echo: What is this?");
    expect(upstream().body.messages[0].content).toEqual([
      { type: "text", text: "What is this?" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
    ]);
  });

  it("refuses what Anthropic cannot carry, naming the field", async () => {
    const base = { model: "claude-sonnet-4-5", messages: [{ role: "user" as const, content: "x" }] };
    for (const [extra, param] of [
      [{ n: 2 }, "n"],
      [{ response_format: { type: "json_object" } }, "response_format"],
      [{ seed: 1 }, "seed"],
    ] as const) {
      const { status, err } = await statusOf(client.chat.completions.create({ ...base, ...extra } as any));
      expect(status).toBe(400);
      expect(err.param).toBe(param);
    }
    expect(standin.requests).toHaveLength(0);
  });

  it("maps every error class", async () => {
    const req = { model: "claude-sonnet-4-5", messages: [{ role: "user" as const, content: "x" }] };
    // The gateway's Anthropic key is rejected: the gateway's problem, not the caller's.
    standin.setBehavior({ kind: "status", status: 401 });
    let r = await statusOf(client.chat.completions.create(req));
    expect(r.status).toBe(502);
    expect(r.err.message).toContain("invalid x-api-key");
    standin.setBehavior({ kind: "status", status: 403 });
    expect((await statusOf(client.chat.completions.create(req))).status).toBe(502);
    standin.setBehavior({ kind: "status", status: 429 });
    r = await statusOf(client.chat.completions.create(req));
    expect(r.status).toBe(429);
    expect(r.err.headers.get("retry-after")).toBe("7");
    standin.setBehavior({ kind: "status", status: 529 });
    expect((await statusOf(client.chat.completions.create(req))).status).toBe(503);
    standin.setBehavior({ kind: "status", status: 500 });
    expect((await statusOf(client.chat.completions.create(req))).status).toBe(502);
    standin.setBehavior({ kind: "status", status: 413 });
    expect((await statusOf(client.chat.completions.create(req))).status).toBe(413);
    standin.setBehavior(null);
    // The upstream's own 404 for a model it does not have.
    r = await statusOf(client.chat.completions.create({ ...req, model: "anthropic/claude-nope" }));
    expect(r.status).toBe(404);
    expect(r.err.message).toContain("claude-nope");
    // Context length.
    r = await statusOf(client.chat.completions.create({ ...req, messages: [{ role: "user", content: "word ".repeat(3000) }] }));
    expect(r.status).toBe(400);
    expect(r.err.code).toBe("context_length_exceeded");
    expect(r.err.message).toMatch(/prompt is too long/);
    // A hang past the first-byte timeout.
    standin.setBehavior({ kind: "hang" });
    expect((await statusOf(client.chat.completions.create(req))).status).toBe(504);
  });

  it("reports a refusal as content_filter", async () => {
    standin.setBehavior({ kind: "refusal" });
    const res = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "x" }] });
    expect(res.choices[0]!.finish_reason).toBe("content_filter");
  });

  async function drain(): Promise<{ text: string; err: any }> {
    let text = "";
    try {
      const stream = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "Tell me a long story" }], stream: true });
      for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      return { text, err: undefined };
    } catch (err) {
      return { text, err };
    }
  }

  it("fails a stream that is cut or carries an error event, never a clean end", async () => {
    standin.setBehavior({ kind: "stream-cut", afterEvents: 5 });
    let r = await drain();
    expect(r.err).toBeDefined();
    expect(r.text.length).toBeGreaterThan(0);
    standin.setBehavior({ kind: "stream-error", afterEvents: 5 });
    r = await drain();
    expect(r.err).toBeDefined();
    expect(String(r.err.message)).toContain("Overloaded");
    expect(r.text.length).toBeGreaterThan(0);
    standin.setBehavior({ kind: "stream-error", afterEvents: 0 });
    r = await drain();
    expect(r.err).toBeDefined();
  });

  it("relays each event as it arrives (no buffering)", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 150 });
    const stream = await client.chat.completions.create({ model: "claude-sonnet-4-5", messages: [{ role: "user", content: "abcdefghijkl" }], stream: true });
    let firstContentAt: number | undefined;
    for await (const c of stream) if (c.choices[0]?.delta.content && firstContentAt === undefined) firstContentAt = Date.now();
    const lastEventAt = standin.eventTimes.at(-1)!;
    expect(standin.eventTimes.length).toBeGreaterThan(8);
    expect(lastEventAt - firstContentAt!).toBeGreaterThan(600);
  });

  it("lists the provider's models from Anthropic's /v1/models", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(expect.arrayContaining(["anthropic/claude-sonnet-4-5", "anthropic/claude-haiku-4-5"]));
    expect(modelsRequest?.headers["x-api-key"]).toBe("sk-ant-test");
    expect(modelsRequest?.headers["anthropic-version"]).toBe("2023-06-01");
  });
});

describe("through RPC", () => {
  async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
    try {
      await p;
      return undefined;
    } catch (err) {
      return ConnectError.from(err).code;
    }
  }

  it("Complete and Stream with cache usage", async () => {
    standin.cache = { read: 7, creation: 3 };
    const { completion } = await sy().chat.complete({ request: { model: "anthropic/claude-haiku-4-5", messages: [userText("Say hello")] } });
    expect(completion?.choices[0]?.message?.content[0]?.part).toEqual({ case: "text", value: "echo: Say hello" });
    expect(completion?.choices[0]?.finishReason).toBe(FinishReason.STOP);
    expect(completion?.usage).toMatchObject({ cachedTokens: 7, cacheWriteTokens: 3 });
    expect(completion?.gateway).toMatchObject({ provider: "anthropic", model: "claude-haiku-4-5" });

    let text = "";
    let usage;
    for await (const chunk of sy().streamChat({ model: "claude-haiku-4-5", messages: [userText("Stream this")] }, { includeUsage: true })) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("echo: Stream this");
    expect(usage).toMatchObject({ cachedTokens: 7, cacheWriteTokens: 3 });
    expect(usage!.promptTokens).toBeGreaterThan(10);
  });

  it("streams thinking as reasoning content", async () => {
    let reasoning = "";
    let text = "";
    for await (const chunk of sy().streamChat({ model: "claude-haiku-4-5", messages: [userText("Why?")], extra: { thinking: { type: "enabled", budget_tokens: 1024 } } })) {
      reasoning += chunk.choices[0]?.delta?.reasoningContent ?? "";
      text += chunk.choices[0]?.delta?.content ?? "";
    }
    expect(reasoning).toBe("Thinking about: Why?");
    expect(text).toBe("echo: Why?");
    expect(upstream().body.thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
  });

  it("maps upstream failures to Connect codes", async () => {
    const req = { request: { model: "claude-haiku-4-5", messages: [userText("x")] } };
    standin.setBehavior({ kind: "status", status: 529 });
    expect(await codeOf(sy().chat.complete(req))).toBe(Code.Unavailable);
    standin.setBehavior({ kind: "status", status: 429 });
    expect(await codeOf(sy().chat.complete(req))).toBe(Code.ResourceExhausted);
    standin.setBehavior({ kind: "stream-error", afterEvents: 4 });
    const stream = async () => {
      for await (const _ of sy().streamChat(req.request)) { /* drain */ }
    };
    expect(await codeOf(stream())).toBe(Code.Unavailable);
    standin.setBehavior({ kind: "stream-cut", afterEvents: 4 });
    expect(await codeOf(stream())).toBeDefined();
  });
});
