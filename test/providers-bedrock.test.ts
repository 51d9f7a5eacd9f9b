import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, FinishReason, userText } from "../sdk-ts/src/index.ts";
import { createSigner } from "../server/providers/bedrock/auth.ts";
import { DEFAULT_CREDENTIALS, startBedrockStandin, type BedrockStandin } from "./standins/bedrock.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// The Bedrock provider (Converse / ConverseStream, SigV4) against a stand-in
// that recomputes every signature, through the OpenAI REST bridge (official
// SDK) and the RPC API.

const KEY = "sk-gateway-bedrock-test-0123456789";
const SESSION = { accessKeyId: "ASIASTANDIN000000002", secretAccessKey: "second-secret", sessionToken: "session-token-standin" };
const CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0";
const PROFILE = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const WEATHER = {
  type: "function" as const,
  function: { name: "get_weather", description: "Weather for a place", parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] } },
};
const PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

let standin: BedrockStandin;
let gw: TestGateway;
let gwBadSecret: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  standin = await startBedrockStandin({ credentials: [DEFAULT_CREDENTIALS, SESSION] });
  const provider = { type: "bedrock" as const, region: "us-east-1", baseUrl: standin.url, timeouts: { firstByteMs: 400 } };
  gw = await startTestGateway({ auth: { keys: [KEY] }, providers: [{ ...provider, credentials: [DEFAULT_CREDENTIALS, SESSION] }] });
  gwBadSecret = await startTestGateway({
    providers: [{ ...provider, credentials: [{ accessKeyId: DEFAULT_CREDENTIALS.accessKeyId, secretAccessKey: "not-the-secret" }], models: [CLAUDE] }],
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await gwBadSecret?.close();
  await standin?.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  standin.requests.length = 0;
});

const lastConverse = () => standin.requests.filter((r) => r.modelId !== undefined).at(-1)!;
const lastBody = () => lastConverse().body as Record<string, any>;

describe("chat", () => {
  it("maps a text request to Converse and the answer back", async () => {
    const res = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Say hello" }],
      max_tokens: 100,
      temperature: 0.5,
      top_p: 0.9,
      stop: ["END"],
      metadata: { team: "search" },
      // Model-specific fields go to additionalModelRequestFields.
      ...({ top_k: 40 } as object),
    });
    assertMatchesSchema("CreateChatCompletionResponse", res);
    expect(res.choices[0]!.message.content).toBe("echo: Say hello");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.model).toBe(CLAUDE);
    expect(res.id).toMatch(/^chatcmpl-bedrock-/);
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    expect(res.usage!.prompt_tokens).toBeGreaterThan(0);

    const rec = lastConverse();
    expect(rec.method).toBe("POST");
    expect(rec.path).toBe("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    expect(rec.signedBy).toBeDefined();
    expect(rec.body).toEqual({
      messages: [{ role: "user", content: [{ text: "Say hello" }] }],
      system: [{ text: "Be brief." }],
      inferenceConfig: { maxTokens: 100, temperature: 0.5, topP: 0.9, stopSequences: ["END"] },
      additionalModelRequestFields: { top_k: 40 },
      requestMetadata: { team: "search" },
    });
  });

  it("serves an inference profile id and rotates credential sets, sending the session token", async () => {
    for (let i = 0; i < 2; i++) await client.chat.completions.create({ model: `bedrock/${PROFILE}`, messages: [{ role: "user", content: "hi" }] });
    const [a, b] = standin.requests.filter((r) => r.modelId === PROFILE);
    expect(new Set([a!.signedBy, b!.signedBy])).toEqual(new Set([DEFAULT_CREDENTIALS.accessKeyId, SESSION.accessKeyId]));
    const withSession = [a!, b!].find((r) => r.signedBy === SESSION.accessKeyId)!;
    expect(withSession.headers["x-amz-security-token"]).toBe(SESSION.sessionToken);
    expect(String(withSession.headers.authorization)).toMatch(/SignedHeaders=.*x-amz-security-token/);
    expect(String(withSession.headers.authorization)).toMatch(/\/us-east-1\/bedrock\/aws4_request/);
  });

  it("merges consecutive same-role messages (Converse needs alternation)", async () => {
    await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: "user", content: "one" }, { role: "user", content: [{ type: "text", text: "two" }] }, { role: "developer", content: "dev" }],
    });
    expect(lastBody()["messages"]).toEqual([{ role: "user", content: [{ text: "one" }, { text: "two" }] }]);
    expect(lastBody()["system"]).toEqual([{ text: "dev" }]);
  });

  it("sends data: URL images as bytes and refuses links without fetching them", async () => {
    const res = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: "user", content: [{ type: "text", text: "what is this" }, { type: "image_url", image_url: { url: PNG } }] }],
    });
    expect(res.choices[0]!.message.content).toBe("echo: what is this");
    expect(lastBody()["messages"][0].content[1]).toEqual({ image: { format: "png", source: { bytes: PNG.split(",")[1] } } });

    standin.requests.length = 0;
    const err = await client.chat.completions
      .create({ model: CLAUDE, messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages[0].content[0].image_url.url");
    expect(standin.requests).toHaveLength(0);
  });

  it("returns reasoning content when the model reasons", async () => {
    const res = await client.chat.completions.create({
      model: CLAUDE,
      messages: [{ role: "user", content: "why" }],
      ...({ thinking: { type: "enabled", budget_tokens: 1024 } } as object),
    });
    expect(lastBody()["additionalModelRequestFields"]).toEqual({ thinking: { type: "enabled", budget_tokens: 1024 } });
    expect((res.choices[0]!.message as unknown as { reasoning_content: string }).reasoning_content).toBe("thinking about: why");
    expect(res.choices[0]!.message.content).toBe("echo: why");
  });

  it("refuses what Converse cannot carry", async () => {
    const cases: [object, string][] = [
      [{ n: 2 }, "n"],
      [{ response_format: { type: "json_object" } }, "response_format"],
      [{ seed: 7 }, "seed"],
      [{ tools: [{ ...WEATHER, function: { ...WEATHER.function, strict: true } }] }, "tools[0].function.strict"],
    ];
    for (const [extra, param] of cases) {
      const err = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "x" }], ...extra } as never).catch((e: unknown) => e);
      expect(err, param).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(param);
    }
    expect(standin.requests.filter((r) => r.modelId !== undefined)).toHaveLength(0);
  });
});

describe("tools", () => {
  it("round-trips a tool call across turns", async () => {
    const first = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "Weather in Paris?" }], tools: [WEATHER] });
    const call = first.choices[0]!.message.tool_calls![0]!;
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(first.choices[0]!.message.content).toBeNull();
    expect(call.id).toMatch(/^tooluse_/);
    expect(call.type === "function" && call.function.name).toBe("get_weather");
    expect(call.type === "function" && JSON.parse(call.function.arguments)).toEqual({ location: "Paris" });
    expect(lastBody()["toolConfig"]).toEqual({ tools: [{ toolSpec: { name: "get_weather", description: "Weather for a place", inputSchema: { json: WEATHER.function.parameters } } }] });

    const second = await client.chat.completions.create({
      model: CLAUDE,
      tools: [WEATHER],
      tool_choice: "auto",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        first.choices[0]!.message,
        { role: "tool", tool_call_id: call.id, content: "18 C and sunny" },
      ],
    });
    expect(second.choices[0]!.message.content).toBe("echo: 18 C and sunny");
    expect(second.choices[0]!.finish_reason).toBe("stop");
    const body = lastBody();
    expect(body["messages"]).toEqual([
      { role: "user", content: [{ text: "Weather in Paris?" }] },
      { role: "assistant", content: [{ toolUse: { toolUseId: call.id, name: "get_weather", input: { location: "Paris" } } }] },
      { role: "user", content: [{ toolResult: { toolUseId: call.id, content: [{ text: "18 C and sunny" }] } }] },
    ]);
    expect(body["toolConfig"].toolChoice).toEqual({ auto: {} });
  });

  it("maps tool_choice required, a named function, and none", async () => {
    await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "x" }], tools: [WEATHER], tool_choice: "required" });
    expect(lastBody()["toolConfig"].toolChoice).toEqual({ any: {} });
    await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "x" }], tools: [WEATHER], tool_choice: { type: "function", function: { name: "get_weather" } } });
    expect(lastBody()["toolConfig"].toolChoice).toEqual({ tool: { name: "get_weather" } });
    const none = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "x" }], tools: [WEATHER], tool_choice: "none" });
    expect(lastBody()["toolConfig"]).toBeUndefined();
    expect(none.choices[0]!.message.content).toBe("echo: x");
  });

  it("streams a tool call as id+name first, then argument fragments", async () => {
    const stream = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "Weather?" }], tools: [WEATHER], stream: true });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      assertMatchesSchema("CreateChatCompletionStreamResponse", chunk);
      for (const c of chunk.choices) {
        deltas.push(...(c.delta.tool_calls ?? []));
        finish = c.finish_reason ?? finish;
      }
    }
    expect(deltas[0]).toMatchObject({ index: 0, id: expect.stringMatching(/^tooluse_/), function: { name: "get_weather" } });
    expect(deltas.length).toBeGreaterThan(2);
    expect(JSON.parse(deltas.map((d) => d.function?.arguments ?? "").join(""))).toEqual({ location: "Paris" });
    expect(finish).toBe("tool_calls");
  });
});

describe("streaming", () => {
  async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) {
      assertMatchesSchema("CreateChatCompletionStreamResponse", c);
      chunks.push(c);
    }
    return chunks;
  }

  it("streams text, with usage when asked", async () => {
    const chunks = await collect(await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "Stream this please" }], stream: true, stream_options: { include_usage: true } }));
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("echo: Stream this please");
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(2);
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0]!.finish_reason).toBe("stop");
    const usage = chunks.at(-1)!;
    expect(usage.choices).toEqual([]);
    expect(usage.usage!.completion_tokens).toBeGreaterThan(0);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(lastConverse().path).toMatch(/\/converse-stream$/);
    expect(lastConverse().headers.accept).toBe("application/vnd.amazon.eventstream");

    const plain = await collect(await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "x" }], stream: true }));
    expect(plain.some((c) => c.usage)).toBe(false);
  });

  it("decodes event-stream frames split across TCP writes", async () => {
    standin.setBehavior({ kind: "split-frames", pieceBytes: 7, gapMs: 2 });
    const chunks = await collect(await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "split me" }], stream: true, stream_options: { include_usage: true }, ...({ thinking: { type: "enabled" } } as object) }));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("echo: split me");
    expect(chunks.map((c) => (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? "").join("")).toBe("thinking about: split me");
    expect(chunks.at(-1)!.usage).toBeTruthy();
  });

  it("relays each event as it arrives (no buffering)", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 150 });
    const stream = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "slow stream of text" }], stream: true });
    let firstContentAt = 0;
    for await (const c of stream) if (c.choices[0]?.delta.content && firstContentAt === 0) firstContentAt = Date.now();
    const lastSent = standin.eventTimes.at(-1)!;
    expect(standin.eventTimes.length).toBeGreaterThan(5);
    expect(lastSent - firstContentAt).toBeGreaterThan(500);
  });
});

describe("errors", () => {
  async function rest(body: object = { model: CLAUDE, messages: [{ role: "user", content: "hi" }] }, base = gw.url) {
    const res = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: JSON.parse(text.startsWith("{") ? text : "{}") as { error?: { message: string; code: string | null; param: string | null } } };
  }

  it("a wrong secret is refused by the signature check and is the gateway's fault (502)", async () => {
    const r = await rest(undefined, gwBadSecret.url);
    expect(r.status).toBe(502);
    expect(r.json.error!.message).toMatch(/signature we calculated does not match/);
    expect(r.json.error!.message).toMatch(/provider 'bedrock'/);
  });

  const cases: { name: string; behavior: Parameters<BedrockStandin["setBehavior"]>[0]; status: number; code?: string; message: RegExp; retryAfter?: string }[] = [
    { name: "throttling", behavior: { kind: "status", status: 429, headers: { "retry-after": "2" } }, status: 429, message: /rate limiting: Too many requests/, retryAfter: "2" },
    { name: "access denied", behavior: { kind: "status", status: 403 }, status: 502, message: /rejected the gateway's AWS credentials/ },
    { name: "unknown model resource", behavior: { kind: "status", status: 404 }, status: 404, code: "model_not_found", message: /Could not resolve/ },
    { name: "model timeout", behavior: { kind: "status", status: 408 }, status: 504, message: /timed out/ },
    { name: "model error", behavior: { kind: "status", status: 424 }, status: 502, message: /unexpected error/ },
    { name: "internal error", behavior: { kind: "status", status: 500 }, status: 502, message: /internal error/ },
    { name: "unavailable", behavior: { kind: "status", status: 503 }, status: 503, message: /unavailable/ },
    { name: "model not ready (429 with its own type)", behavior: { kind: "status", status: 429, type: "ModelNotReadyException", message: "Model is not ready" }, status: 503, message: /not ready/ },
    { name: "validation", behavior: { kind: "status", status: 400, type: "ValidationException", message: "messages.0: bad" }, status: 400, code: "validation_error", message: /messages\.0: bad/ },
  ];
  for (const c of cases) {
    it(`maps ${c.name}`, async () => {
      standin.setBehavior({ ...c.behavior!, times: 1 } as never);
      const r = await rest();
      expect(r.status).toBe(c.status);
      expect(r.json.error!.message).toMatch(c.message);
      if (c.code) expect(r.json.error!.code).toBe(c.code);
      if (c.retryAfter) expect(r.headers.get("retry-after")).toBe(c.retryAfter);
    });
  }

  it("maps a prompt over the context window to context_length_exceeded", async () => {
    const r = await rest({ model: CLAUDE, messages: [{ role: "user", content: "word ".repeat(3000) }] });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: "context_length_exceeded", message: "Input is too long for requested model." });
  });

  it("an unknown model id is Bedrock's validation error", async () => {
    const r = await rest({ model: "anthropic.claude-9", messages: [{ role: "user", content: "hi" }] });
    expect(r.status).toBe(400);
    expect(r.json.error!.message).toMatch(/model identifier is invalid/);
  });

  it("a guardrail intervention is finish_reason content_filter", async () => {
    standin.setBehavior({ kind: "guardrail", times: 2 });
    const res = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "bad" }] });
    expect(res.choices[0]!.finish_reason).toBe("content_filter");
    const stream = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "bad" }], stream: true });
    let finish: string | null = null;
    for await (const c of stream) finish = c.choices[0]?.finish_reason ?? finish;
    expect(finish).toBe("content_filter");
  });

  it("a cut stream ends with an error, never a clean end", async () => {
    standin.setBehavior({ kind: "stream-cut", afterEvents: 3 });
    const r = await rest({ model: CLAUDE, messages: [{ role: "user", content: "cut this stream" }], stream: true });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain("[DONE]");
    const events = r.text.split("\n\n").filter(Boolean);
    const last = JSON.parse(events.at(-1)!.slice("data: ".length));
    assertMatchesSchema("ErrorResponse", last);
    expect(last.error.message).toMatch(/provider 'bedrock'/);
  });

  it("a well-framed stream that ends after messageStop without metadata is incomplete", async () => {
    // "echo: abcdefghijkl" is 18 characters: messageStart, 5 deltas, contentBlockStop, messageStop; no metadata.
    standin.setBehavior({ kind: "stream-end", afterEvents: 1 + 5 + 1 + 1 });
    const r = await rest({ model: CLAUDE, messages: [{ role: "user", content: "abcdefghijkl" }], stream: true });
    expect(r.text).toMatch(/"finish_reason":"stop"/);
    expect(r.text).not.toContain("[DONE]");
    expect(r.text).toMatch(/provider 'bedrock' ended the stream before it was complete/);
  });

  it("an exception inside the stream is an error for the caller", async () => {
    for (const [type, pattern] of [["throttlingException", /rate limiting/], ["modelStreamErrorException", /failed/], ["serviceUnavailableException", /unavailable/]] as const) {
      standin.setBehavior({ kind: "stream-error", afterEvents: 2, exceptionType: type, times: 1 });
      const stream = await client.chat.completions.create({ model: CLAUDE, messages: [{ role: "user", content: "hi there" }], stream: true });
      await expect((async () => {
        for await (const _ of stream) { /* drain */ }
      })()).rejects.toThrow(pattern);
    }
  });

  it("a provider that never answers times out at the first-byte deadline", async () => {
    standin.setBehavior({ kind: "hang", times: 1 });
    const started = Date.now();
    const r = await rest();
    expect(r.status).toBe(504);
    expect(r.json.error!.message).toMatch(/did not answer within 400 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("the stand-in's SigV4 check", () => {
  async function send(secret: string, tamper: boolean) {
    const sign = createSigner("bedrock", "us-east-1", [{ accessKeyId: DEFAULT_CREDENTIALS.accessKeyId, secretAccessKey: secret }]);
    const url = `${standin.url}/model/${encodeURIComponent(CLAUDE)}/converse`;
    const body = new TextEncoder().encode(JSON.stringify({ messages: [{ role: "user", content: [{ text: "hi" }] }] }));
    const headers = await sign({ method: "POST", url, headers: { "content-type": "application/json" }, body });
    const sent = tamper ? new TextEncoder().encode(JSON.stringify({ messages: [{ role: "user", content: [{ text: "HI" }] }] })) : body;
    const { host: _host, ...rest } = headers;
    const res = await fetch(url, { method: "POST", headers: rest, body: sent });
    return { status: res.status, type: res.headers.get("x-amzn-errortype"), body: (await res.json()) as { message?: string } };
  }

  it("accepts a correct signature", async () => {
    expect((await send(DEFAULT_CREDENTIALS.secretAccessKey, false)).status).toBe(200);
  });

  it("rejects a wrong secret", async () => {
    const r = await send("wrong-secret", false);
    expect(r.status).toBe(403);
    expect(r.type).toMatch(/^InvalidSignatureException:/);
    expect(r.body.message).toMatch(/^The request signature we calculated does not match the signature you provided/);
  });

  it("rejects a body changed after signing", async () => {
    const r = await send(DEFAULT_CREDENTIALS.secretAccessKey, true);
    expect(r.status).toBe(403);
    expect(r.type).toMatch(/^InvalidSignatureException:/);
  });

  it("rejects an unknown access key and a missing signature", async () => {
    const res = await fetch(`${standin.url}/model/${encodeURIComponent(CLAUDE)}/converse`, { method: "POST", body: "{}" });
    expect(res.status).toBe(403);
    expect(res.headers.get("x-amzn-errortype")).toMatch(/^MissingAuthenticationTokenException/);
  });
});

describe("embeddings and models", () => {
  it("embeds with Titan v2, one request per input", async () => {
    const res = await client.embeddings.create({ model: "amazon.titan-embed-text-v2:0", input: ["alpha", "beta gamma"], dimensions: 256 });
    expect(res.data.map((d) => d.index)).toEqual([0, 1]);
    expect(res.data[0]!.embedding).toHaveLength(256);
    expect(res.usage.prompt_tokens).toBe(Math.ceil(5 / 4) + Math.ceil(10 / 4));
    const invokes = standin.requests.filter((r) => r.path.endsWith("/invoke"));
    expect(invokes.map((r) => r.body)).toEqual([{ inputText: "alpha", dimensions: 256 }, { inputText: "beta gamma", dimensions: 256 }]);
    expect(invokes.every((r) => r.signedBy !== undefined)).toBe(true);
  });

  it("refuses other embedding models", async () => {
    const err = await client.embeddings.create({ model: "cohere.embed-english-v3", input: "x" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it("lists on-demand foundation models from the control plane (signed)", async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toContain(`bedrock/${CLAUDE}`);
    expect(ids).toContain("bedrock/amazon.titan-embed-text-v2:0");
  });
});

describe("RPC", () => {
  const sy = () => createClient({ baseUrl: gw.url, apiKey: KEY, protocol: "grpc" });

  it("Complete and Stream with usage", async () => {
    const { completion } = await sy().chat.complete({ request: { model: CLAUDE, messages: [userText("Say hello")], topK: 5 } });
    expect(completion?.choices[0]?.message?.content[0]?.part).toEqual({ case: "text", value: "echo: Say hello" });
    expect(completion?.choices[0]?.finishReason).toBe(FinishReason.STOP);
    expect(completion?.gateway).toMatchObject({ provider: "bedrock", model: CLAUDE });
    expect(lastBody()["additionalModelRequestFields"]).toEqual({ top_k: 5 });

    let text = "";
    let usage = 0;
    for await (const chunk of sy().streamChat({ model: CLAUDE, messages: [userText("Stream this")] }, { includeUsage: true })) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage++;
    }
    expect(text).toBe("echo: Stream this");
    expect(usage).toBe(1);
  });

  it("Nova reads top-k from its own inferenceConfig", async () => {
    await sy().chat.complete({ request: { model: "amazon.nova-lite-v1:0", messages: [userText("hi")], topK: 7 } });
    expect(lastBody()["additionalModelRequestFields"]).toEqual({ inferenceConfig: { topK: 7 } });
  });

  it("errors keep their class over RPC", async () => {
    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    const err = await sy().chat.complete({ request: { model: CLAUDE, messages: [userText("hi")] } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.ResourceExhausted);

    standin.setBehavior({ kind: "stream-error", afterEvents: 2, exceptionType: "throttlingException", times: 1 });
    await expect((async () => {
      for await (const _ of sy().streamChat({ model: CLAUDE, messages: [userText("hi there")] })) { /* drain */ }
    })()).rejects.toMatchObject({ code: Code.ResourceExhausted });
  });
});
