import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClient, FinishReason, Role, userText } from "../sdk-ts/src/index.ts";
import { googleErrors, startGeminiStandin, type GeminiStandin } from "./standins/gemini.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// The Gemini provider through the gateway, against a faithful Gemini stand-in:
// the official openai SDK over REST, and the typed SDK over Connect.

const KEY = "gemini-test-key";
let standin: GeminiStandin;
let gw: TestGateway;
let gwBadKey: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  standin = await startGeminiStandin({ inputTokenLimit: 2000, maxPageSize: 2 });
  const provider = { type: "gemini" as const, id: "gemini", baseUrl: standin.url, keys: [KEY], timeouts: { firstByteMs: 500 } };
  gw = await startTestGateway({ providers: [provider] });
  gwBadKey = await startTestGateway({ providers: [{ ...provider, keys: ["AIzaSyWRONGwrongWRONGwrong0123456789"] }] });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-anything", maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await gwBadKey?.close();
  await standin?.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  standin.requests.length = 0;
});

/** The last model call (GET /models for discovery is not one). */
const lastUpstream = () => {
  const r = standin.requests.filter((x) => x.path !== "/v1beta/models").at(-1);
  if (!r) throw new Error("no upstream request");
  return r as typeof r & { body: Record<string, any> };
};

const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      properties: { city: { type: "string", format: "uri" }, days: { type: ["integer", "null"] } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) {
    assertMatchesSchema("CreateChatCompletionStreamResponse", c);
    chunks.push(c);
  }
  return chunks;
}

describe("chat over REST (openai SDK)", () => {
  it("maps a text chat both ways, key in x-goog-api-key and never in the URL", async () => {
    const res = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "developer", content: "No emojis." },
        { role: "user", content: "Say hello" },
      ],
      temperature: 0.5,
      top_p: 0.9,
      max_completion_tokens: 100,
      stop: ["END"],
      seed: 7,
      presence_penalty: 0.1,
      frequency_penalty: 0.2,
      // @ts-expect-error top_k is not in OpenAI's types; the gateway takes it
      top_k: 5,
    });
    assertMatchesSchema("CreateChatCompletionResponse", res);
    expect(res.choices[0]!.message.content).toBe("echo: Say hello");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.model).toBe("gemini-2.0-flash");
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    const up = lastUpstream();
    expect(up.path).toBe("/v1beta/models/gemini-2.0-flash:generateContent");
    expect(up.query).toBe("");
    expect(up.headers["x-goog-api-key"]).toBe(KEY);
    expect(up.body).toEqual({
      contents: [{ role: "user", parts: [{ text: "Say hello" }] }],
      systemInstruction: { parts: [{ text: "Be brief." }, { text: "No emojis." }] },
      generationConfig: {
        temperature: 0.5, topP: 0.9, topK: 5, maxOutputTokens: 100, stopSequences: ["END"], seed: 7, presencePenalty: 0.1, frequencyPenalty: 0.2,
      },
    });
  });

  it("streams each event as it arrives, with usage when asked", async () => {
    const chunks = await collect(await client.chat.completions.create({
      model: "gemini/gemini-2.0-flash",
      messages: [{ role: "user", content: "Stream this please" }],
      stream: true,
      stream_options: { include_usage: true },
    }));
    expect(lastUpstream().path).toBe("/v1beta/models/gemini-2.0-flash:streamGenerateContent");
    expect(lastUpstream().query).toBe("?alt=sse");
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("echo: Stream this please");
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === "stop")).toHaveLength(1);
    expect(chunks.length).toBeGreaterThan(3);
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.total_tokens).toBe(usage.usage!.prompt_tokens + usage.usage!.completion_tokens);
    const plain = await collect(await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "x" }], stream: true }));
    expect(plain.every((c) => !c.usage)).toBe(true);
  });

  it("does not buffer: the first chunk arrives well before the stand-in sends the last", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 150 });
    const stream = await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "abcdefghijklmnop" }], stream: true });
    let firstAt = 0;
    for await (const c of stream) if (!firstAt && c.choices[0]?.delta.content) firstAt = Date.now();
    const lastSent = standin.sentAt.at(-1)!;
    expect(standin.sentAt.length).toBeGreaterThan(4);
    expect(lastSent - firstAt).toBeGreaterThan(400);
  });

  it("tool calls across a multi-turn exchange", async () => {
    const first = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [{ role: "user", content: "call the weather tool for Paris" }],
      tools: [weather],
      tool_choice: "auto",
    });
    assertMatchesSchema("CreateChatCompletionResponse", first);
    let up = lastUpstream();
    expect(up.body["tools"]).toEqual([{
      functionDeclarations: [{
        name: "get_weather",
        description: "Weather for a city",
        // $schema, additionalProperties and the "uri" format are stripped; ["integer","null"] -> nullable.
        parameters: { type: "OBJECT", properties: { city: { type: "STRING" }, days: { type: "INTEGER", nullable: true } }, required: ["city"] },
      }],
    }]);
    expect(up.body["toolConfig"]).toEqual({ functionCallingConfig: { mode: "AUTO" } });
    const msg = first.choices[0]!.message;
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(msg.content).toBeNull();
    expect(msg.tool_calls).toHaveLength(1);
    const call = msg.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(call.id).toBe("call_0");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "call the weather tool for Paris", days: 42 });

    const second = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [
        { role: "user", content: "call the weather tool for Paris" },
        msg,
        { role: "tool", tool_call_id: call.id, content: '{"temp": 21}' },
      ],
      tools: [weather],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    up = lastUpstream();
    expect(up.body["contents"]).toEqual([
      { role: "user", parts: [{ text: "call the weather tool for Paris" }] },
      { role: "model", parts: [{ functionCall: { name: "get_weather", args: { city: "call the weather tool for Paris", days: 42 } } }] },
      { role: "user", parts: [{ functionResponse: { name: "get_weather", response: { temp: 21 } } }] },
    ]);
    expect(up.body["toolConfig"]).toEqual({ functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] } });
    expect(second.choices[0]!.message.content).toBe('tool results: get_weather={"temp":21}');
    expect(second.choices[0]!.finish_reason).toBe("stop");
  });

  it("two parallel tool results go back in one user turn; plain text results become {result}", async () => {
    await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [
        { role: "user", content: "two cities" },
        { role: "assistant", content: null, tool_calls: [
          { id: "call_0", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          { id: "call_1", type: "function", function: { name: "get_time", arguments: "{}" } },
        ] },
        { role: "tool", tool_call_id: "call_0", content: "sunny" },
        { role: "tool", tool_call_id: "call_1", content: '{"time":"noon"}' },
      ],
      tool_choice: "none",
    });
    const up = lastUpstream();
    expect(up.body["contents"][2]).toEqual({ role: "user", parts: [
      { functionResponse: { name: "get_weather", response: { result: "sunny" } } },
      { functionResponse: { name: "get_time", response: { time: "noon" } } },
    ] });
  });

  it("streams a tool call whole: id, name and arguments in one delta", async () => {
    const chunks = await collect(await client.chat.completions.create({
      model: "gemini-2.0-flash", messages: [{ role: "user", content: "Rome" }], tools: [weather], tool_choice: "required", stream: true,
    }));
    expect(lastUpstream().body["toolConfig"]).toEqual({ functionCallingConfig: { mode: "ANY" } });
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls).toEqual([{ index: 0, id: "call_0", type: "function", function: { name: "get_weather", arguments: '{"city":"Rome","days":42}' } }]);
    expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("images: data: URLs go inline, http(s) URLs are refused", async () => {
    const png = Buffer.from("89504e470d0a1a0a0000000d49484452", "hex").toString("base64");
    const res = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [{ role: "user", content: [{ type: "text", text: "What is this?" }, { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } }] }],
    });
    expect(res.choices[0]!.message.content).toBe("echo: What is this? [image/png 16 bytes]");
    expect(lastUpstream().body["contents"][0].parts[1]).toEqual({ inlineData: { mimeType: "image/png", data: png } });
    standin.requests.length = 0;
    const err = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }],
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages[0].content[0].image_url.url");
    expect(standin.requests).toHaveLength(0);
  });

  it("json_schema and json_object response formats; reasoning_effort asks for thoughts", async () => {
    const schema = { type: "object", properties: { echo: { type: "string" } }, required: ["echo"], additionalProperties: false };
    const res = await client.chat.completions.create({
      model: "gemini-2.0-flash",
      messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name: "e", schema, strict: true } },
      reasoning_effort: "low",
    });
    expect(lastUpstream().body["generationConfig"]).toEqual({
      responseMimeType: "application/json", responseJsonSchema: schema, thinkingConfig: { thinkingBudget: 1024, includeThoughts: true },
    });
    expect(JSON.parse(res.choices[0]!.message.content!)).toEqual({ echo: "hi" });
    const msg = res.choices[0]!.message as typeof res.choices[0]["message"] & { reasoning_content?: string };
    expect(msg.reasoning_content).toBe("thinking about: hi");
    expect(res.usage!.completion_tokens_details?.reasoning_tokens).toBeGreaterThan(0);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "hi" }], response_format: { type: "json_object" }, n: 2 });
    expect(lastUpstream().body["generationConfig"]).toEqual({ responseMimeType: "application/json", candidateCount: 2 });
  });

  it("n > 1 candidates become choices; MAX_TOKENS is length", async () => {
    const res = await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "a long enough sentence" }], n: 2, max_tokens: 2 });
    expect(res.choices.map((c) => [c.index, c.finish_reason])).toEqual([[0, "length"], [1, "length"]]);
    expect(lastUpstream().body["generationConfig"]).toEqual({ maxOutputTokens: 2, candidateCount: 2 });
  });

  it("refuses extra fields Gemini cannot carry", async () => {
    const err = await client.chat.completions.create({
      model: "gemini-2.0-flash", messages: [{ role: "user", content: "x" }], logit_bias: { "1": 2 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).message).toMatch(/logit_bias/);
  });

  it("embeddings through batchEmbedContents", async () => {
    const res = await client.embeddings.create({ model: "text-embedding-004", input: ["one", "two"], dimensions: 4 });
    expect(res.data.map((d) => [d.index, d.embedding.length])).toEqual([[0, 4], [1, 4]]);
    const up = lastUpstream();
    expect(up.path).toBe("/v1beta/models/text-embedding-004:batchEmbedContents");
    expect(up.body).toEqual({ requests: [
      { model: "models/text-embedding-004", content: { parts: [{ text: "one" }] }, outputDimensionality: 4 },
      { model: "models/text-embedding-004", content: { parts: [{ text: "two" }] }, outputDimensionality: 4 },
    ] });
  });

  it("lists models across pages, without the models/ prefix", async () => {
    // A fresh gateway, so the list is not already cached from discovery.
    const fresh = await startTestGateway({ providers: [{ type: "gemini", baseUrl: standin.url, keys: [KEY] }] });
    const list = await new OpenAI({ baseURL: `${fresh.url}/v1`, apiKey: "x", maxRetries: 0 }).models.list().finally(() => fresh.close());
    const ids = list.data.map((m) => m.id);
    for (const m of ["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"]) expect(ids.some((id) => id.endsWith(m))).toBe(true);
    const pages = standin.requests.filter((r) => r.path === "/v1beta/models");
    expect(pages.map((r) => r.query)).toEqual(["?pageSize=1000", "?pageSize=1000&pageToken=2"]);
    expect(standin.requests.every((r) => !r.query.includes("key="))).toBe(true);
  });
});

describe("errors over REST", () => {
  const ask = (c: OpenAI = client, model = "gemini-2.0-flash", content = "hi") =>
    c.chat.completions.create({ model, messages: [{ role: "user", content }] }).then(
      () => { throw new Error("expected an error"); },
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );

  it("an invalid API key (400 API_KEY_INVALID) is the gateway's problem: 502, key masked", async () => {
    const bad = new OpenAI({ baseURL: `${gwBadKey.url}/v1`, apiKey: "x", maxRetries: 0 });
    const err = await ask(bad);
    expect(err.status).toBe(502);
    expect(err.message).toMatch(/rejected the gateway's credentials.*API key not valid/);
    expect(err.message).not.toMatch(/AIzaSyWRONG/);
  });

  it("403 PERMISSION_DENIED -> 502", async () => {
    standin.setBehavior({ kind: "status", status: 403 });
    expect((await ask()).status).toBe(502);
  });

  it("unknown model -> 404 model_not_found", async () => {
    const err = await ask(client, "gemini/gemini-9-ultra");
    expect(err.status).toBe(404);
    expect(err.message).toMatch(/models\/gemini-9-ultra is not found/);
  });

  it("429 RESOURCE_EXHAUSTED -> 429 with RetryInfo as Retry-After", async () => {
    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    const err = await ask();
    expect(err.status).toBe(429);
    expect(err.headers?.get("retry-after")).toBe("7");
  });

  it("context too long -> 400 context_length_exceeded", async () => {
    const err = await ask(client, "gemini-2.0-flash", "word ".repeat(3000));
    expect(err.status).toBe(400);
    expect(err.code).toBe("context_length_exceeded");
    expect(err.message).toMatch(/input token count \(\d+\) exceeds/);
  });

  it("503 UNAVAILABLE -> 503, 500 INTERNAL -> 502, 504 DEADLINE_EXCEEDED -> 504", async () => {
    for (const [status, want] of [[503, 503], [500, 502], [504, 504]] as const) {
      standin.setBehavior({ kind: "status", status, times: 1 });
      expect((await ask()).status).toBe(want);
    }
  });

  it("a blocked prompt -> 400 content_filter; a filtered answer -> finish_reason content_filter", async () => {
    const err = await ask(client, "gemini-2.0-flash", "BLOCK_PROMPT");
    expect(err.status).toBe(400);
    expect(err.code).toBe("content_filter");
    expect(err.message).toMatch(/SAFETY/);
    const res = await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "BLOCK_ANSWER" }] });
    expect(res.choices[0]!.finish_reason).toBe("content_filter");
    const chunks = await collect(await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "BLOCK_ANSWER" }], stream: true }));
    expect(chunks.find((c) => c.choices[0]?.finish_reason)!.choices[0]!.finish_reason).toBe("content_filter");
  });

  it("a blocked prompt while streaming fails the stream", async () => {
    const stream = await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "BLOCK_PROMPT" }], stream: true }).catch((e: unknown) => e);
    const err = stream instanceof Error ? stream : await collect(stream as never).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(String(err)).toMatch(/blocked the prompt/);
  });

  async function streamFailure(): Promise<unknown> {
    const stream = await client.chat.completions.create({ model: "gemini-2.0-flash", messages: [{ role: "user", content: "a fairly long answer to cut" }], stream: true });
    const got: string[] = [];
    try {
      for await (const c of stream) got.push(c.choices[0]?.delta.content ?? "");
    } catch (err) {
      return { err, got };
    }
    return { err: undefined, got };
  }

  it("a cut stream (socket reset, or a body that ends without finishReason) is an error, never a clean end", async () => {
    for (const [clean, message] of [[true, /ended the stream before it was complete/], [false, /could not reach provider 'gemini'/]] as const) {
      standin.setBehavior({ kind: "stream-cut", afterEvents: 2, clean });
      const { err, got } = (await streamFailure()) as { err: unknown; got: string[] };
      expect(got.join("")).toBe("echo: a ");
      expect(String(err)).toMatch(message);
    }
  });

  it("an error event mid-stream, SSE-framed or bare JSON, fails the stream with its message", async () => {
    for (const bare of [false, true]) {
      standin.setBehavior({ kind: "stream-error", afterEvents: 2, bare, error: googleErrors.overloaded().body.error });
      const { err, got } = (await streamFailure()) as { err: unknown; got: string[] };
      expect(got.join("")).toBe("echo: a ");
      expect(String(err)).toMatch(/overloaded/);
    }
  });

  it("a hang past the first-byte timeout -> 504, and the upstream request is aborted", async () => {
    standin.setBehavior({ kind: "hang", times: 1 });
    const before = standin.aborted;
    const err = await ask();
    expect(err.status).toBe(504);
    await standin.waitForAborted(before + 1);
  });
});

describe("RPC (typed SDK over Connect)", () => {
  const sy = () => createClient({ baseUrl: gw.url, protocol: "connect" });

  it("Complete and Stream with usage", async () => {
    const { completion } = await sy().chat.complete({ request: { model: "gemini-2.0-flash", messages: [userText("Say hello")] } });
    expect(completion?.choices[0]?.message?.content[0]?.part).toEqual({ case: "text", value: "echo: Say hello" });
    expect(completion?.choices[0]?.finishReason).toBe(FinishReason.STOP);
    expect(completion?.gateway?.provider).toBe("gemini");
    let text = "";
    let usage = 0;
    for await (const c of sy().streamChat({ model: "gemini-2.0-flash", messages: [userText("Stream it")], topK: 3 }, { includeUsage: true })) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.usage) usage++;
    }
    expect(text).toBe("echo: Stream it");
    expect(usage).toBe(1);
    expect(lastUpstream().body["generationConfig"]).toEqual({ topK: 3 });
  });

  it("tool calls over RPC", async () => {
    const { completion } = await sy().chat.complete({
      request: {
        model: "gemini-2.0-flash",
        messages: [userText("call it")],
        tools: [{ function: { name: "lookup", parameters: { type: "object", properties: {} } } }],
        toolChoice: { choice: { case: "mode", value: 3 } },
      },
    });
    // An object schema without properties is sent as no parameters (Gemini refuses empty properties).
    expect(lastUpstream().body["tools"]).toEqual([{ functionDeclarations: [{ name: "lookup" }] }]);
    const m = completion?.choices[0]?.message;
    expect(m?.role).toBe(Role.ASSISTANT);
    expect(m?.toolCalls[0]?.function).toMatchObject({ name: "lookup", arguments: "{}" });
    expect(completion?.choices[0]?.finishReason).toBe(FinishReason.TOOL_CALLS);
  });

  it("errors keep their class over RPC", async () => {
    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    await expect(sy().chat.complete({ request: { model: "gemini-2.0-flash", messages: [userText("x")] } })).rejects.toThrow(/rate limiting/);
  });
});
