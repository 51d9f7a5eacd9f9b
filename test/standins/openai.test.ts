/**
 * Proves the stand-in is faithful: its answers validate against OpenAI's
 * published OpenAPI schemas, and the official `openai` SDK consumes them
 * (chat, streaming with usage, tools, embeddings in both encodings, models,
 * errors), and its failure injection behaves as documented.
 */
import OpenAI, { APIConnectionTimeoutError, APIError, AuthenticationError, InternalServerError, NotFoundError, RateLimitError } from "openai";
import type { ChatCompletionChunk, ChatCompletionTool } from "openai/resources/chat/completions";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { assertMatchesSchema, validateAgainst } from "../support/openapi.ts";
import { estimateTokens, fakeEmbedding, type OpenAIStandin, startOpenAIStandin, SYSTEM_FINGERPRINT } from "./openai.ts";

let standin: OpenAIStandin;
let client: OpenAI;

const weatherTool: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather for a place",
    parameters: { type: "object", properties: { location: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } }, required: ["location"] },
  },
};

beforeAll(async () => {
  standin = await startOpenAIStandin();
  client = new OpenAI({ baseURL: standin.url, apiKey: "sk-test", maxRetries: 0 });
});

afterAll(async () => {
  await standin.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  standin.requests.length = 0;
});

/** A raw HTTP call, to see exactly what is on the wire. */
async function raw(path: string, init: { method?: string; body?: unknown; key?: string | null; rawBody?: string } = {}) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (init.key !== null) headers.authorization = `Bearer ${init.key ?? "sk-test"}`;
  const res = await fetch(standin.url + path, {
    method: init.method ?? (init.body !== undefined || init.rawBody !== undefined ? "POST" : "GET"),
    headers,
    ...(init.rawBody !== undefined ? { body: init.rawBody } : init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: (): unknown => JSON.parse(text) };
}

function expectOpenAIHeaders(headers: Headers): void {
  expect(headers.get("x-request-id")).toMatch(/^req_[0-9a-f]{32}$/);
  expect(headers.get("openai-version")).toBe("2020-10-01");
  expect(Number(headers.get("openai-processing-ms"))).toBeGreaterThanOrEqual(0);
}

describe("chat completions", () => {
  it("answers a chat.completion that matches the spec and the SDK reads", async () => {
    const { data, response, request_id } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Hello there" }] })
      .withResponse();
    assertMatchesSchema("CreateChatCompletionResponse", data);
    expect(data.id).toMatch(/^chatcmpl-[A-Za-z0-9]{29}$/);
    expect(data.object).toBe("chat.completion");
    expect(data.model).toBe("gpt-4o-mini");
    expect(data.system_fingerprint).toBe(SYSTEM_FINGERPRINT);
    expect(data.service_tier).toBe("default");
    expect(data.choices).toEqual([
      { index: 0, message: { role: "assistant", content: "echo: Hello there", refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" },
    ]);
    const prompt = Math.ceil(("Be brief." + "Hello there").length / 4);
    expect(data.usage).toEqual({
      prompt_tokens: prompt,
      completion_tokens: estimateTokens("echo: Hello there"),
      total_tokens: prompt + estimateTokens("echo: Hello there"),
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    });
    expectOpenAIHeaders(response.headers);
    expect(request_id).toBe(response.headers.get("x-request-id"));
    expect(response.headers.get("x-ratelimit-limit-requests")).toBe("10000");
    expect(Number(response.headers.get("x-ratelimit-remaining-requests"))).toBeLessThan(10000);
    expect(response.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(\.\d+)?(ms|s)$|^\d+m\d+s$/);
  });

  it("takes user content given as parts, gives n choices and cuts at max_completion_tokens", async () => {
    const multi = await client.chat.completions.create({
      model: "gpt-4o",
      n: 2,
      messages: [{ role: "user", content: [{ type: "text", text: "a" }, { type: "text", text: "b" }] }],
    });
    assertMatchesSchema("CreateChatCompletionResponse", multi);
    expect(multi.choices.map((c) => [c.index, c.message.content])).toEqual([
      [0, "echo: a\nb"],
      [1, "echo: a\nb"],
    ]);
    const cut = await client.chat.completions.create({ model: "gpt-4o", max_completion_tokens: 2, messages: [{ role: "user", content: "a long question" }] });
    expect(cut.choices[0]!.finish_reason).toBe("length");
    expect(cut.choices[0]!.message.content).toBe("echo: a ");
  });

  it("records method, path, headers and parsed body", async () => {
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], temperature: 0 });
    expect(standin.requests).toHaveLength(1);
    const [r] = standin.requests;
    expect(r).toMatchObject({ method: "POST", path: "/v1/chat/completions", query: "", body: { model: "gpt-4o-mini", temperature: 0 } });
    expect(r!.headers.authorization).toBe("Bearer sk-test");
  });
});

describe("streaming", () => {
  it("streams OpenAI's chunk sequence with include_usage, and the SDK reassembles it", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream me please" }],
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const c of chunks) assertMatchesSchema("CreateChatCompletionStreamResponse", c);

    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(new Set(chunks.map((c) => c.created)).size).toBe(1);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "gpt-4o-mini" && c.system_fingerprint === SYSTEM_FINGERPRINT)).toBe(true);
    const [first, ...rest] = chunks;
    expect(first!.choices).toEqual([{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }]);
    const usageChunk = rest.pop()!;
    const finishChunk = rest.pop()!;
    expect(rest.length).toBeGreaterThan(2); // content arrives in several small pieces
    expect(rest.every((c) => c.choices[0]!.finish_reason === null && c.choices[0]!.logprobs === null && c.usage === null)).toBe(true);
    expect(rest.map((c) => c.choices[0]!.delta.content).join("")).toBe("echo: stream me please");
    expect(finishChunk.choices).toEqual([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
    expect(finishChunk.usage).toBeNull();
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toMatchObject({ completion_tokens: estimateTokens("echo: stream me please") });

    const helper = client.chat.completions.stream({ model: "gpt-4o-mini", messages: [{ role: "user", content: "again" }] });
    expect(await helper.finalContent()).toBe("echo: again");
  });

  it("frames events as `data: <json>\\n\\n`, ends with [DONE], omits usage without include_usage", async () => {
    const res = await raw("/chat/completions", { body: { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expectOpenAIHeaders(res.headers);
    expect(res.text.endsWith("data: [DONE]\n\n")).toBe(true);
    const events = res.text.split("\n\n").filter(Boolean);
    expect(events.every((e) => e.startsWith("data: ") && !e.includes("\n"))).toBe(true);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as Record<string, unknown>);
    for (const c of chunks) {
      assertMatchesSchema("CreateChatCompletionStreamResponse", c);
      expect(c).not.toHaveProperty("usage");
      expect(typeof c.obfuscation).toBe("string");
    }
    const noPad = await raw("/chat/completions", {
      body: { model: "gpt-4o-mini", stream: true, stream_options: { include_obfuscation: false }, messages: [{ role: "user", content: "hi" }] },
    });
    expect(noPad.text).not.toContain("obfuscation");
  });
});

describe("tools", () => {
  it("answers a user turn with a call to the first tool, then text after the tool result", async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Paris?" }];
    const call = await client.chat.completions.create({ model: "gpt-4o-mini", tools: [weatherTool], messages });
    assertMatchesSchema("CreateChatCompletionResponse", call);
    const choice = call.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const toolCall = choice.message.tool_calls![0]!;
    expect(toolCall).toMatchObject({ type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } });
    expect(toolCall.id).toMatch(/^call_[A-Za-z0-9]{24}$/);

    messages.push(choice.message, { role: "tool", tool_call_id: toolCall.id, content: "18C, sunny" });
    const answer = await client.chat.completions.create({ model: "gpt-4o-mini", tools: [weatherTool], messages });
    expect(answer.choices[0]).toMatchObject({ finish_reason: "stop", message: { content: "echo: Weather in Paris?" } });
  });

  it("streams a tool call like OpenAI: start delta, argument fragments, finish_reason tool_calls", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      stream: true,
      stream_options: { include_usage: true },
      tools: [weatherTool],
      messages: [{ role: "user", content: "Weather?" }],
    });
    const chunks: ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    for (const c of chunks) assertMatchesSchema("CreateChatCompletionStreamResponse", c);
    const deltas = chunks.filter((c) => c.choices.length > 0).map((c) => c.choices[0]!);
    expect(deltas[0]!.delta).toEqual({ role: "assistant", content: null, refusal: null });
    const start = deltas[1]!.delta.tool_calls![0]!;
    expect(start).toMatchObject({ index: 0, type: "function", function: { name: "get_weather", arguments: "" } });
    expect(start.id).toMatch(/^call_/);
    const fragments = deltas.slice(2, -1).map((d) => d.delta.tool_calls![0]!);
    expect(fragments.length).toBeGreaterThan(1);
    expect(fragments.every((f) => f.index === 0 && f.id === undefined)).toBe(true);
    expect(fragments.map((f) => f.function!.arguments).join("")).toBe('{"location":"Paris"}');
    expect(deltas.at(-1)).toMatchObject({ delta: {}, finish_reason: "tool_calls" });

    const helper = client.chat.completions.stream({ model: "gpt-4o-mini", tools: [weatherTool], messages: [{ role: "user", content: "Weather?" }] });
    const message = await helper.finalMessage();
    expect(message.tool_calls?.[0]).toMatchObject({ function: { name: "get_weather", arguments: '{"location":"Paris"}' } });
  });
});

describe("embeddings", () => {
  it("serves the SDK's default base64 request with the same float32 values as encoding_format float", async () => {
    const viaDefault = await client.embeddings.create({ model: "text-embedding-3-small", input: ["hello", "world"] });
    expect(standin.requests[0]!.body).toMatchObject({ encoding_format: "base64" }); // what the SDK really sends
    const viaFloat = await client.embeddings.create({ model: "text-embedding-3-small", input: ["hello", "world"], encoding_format: "float" });
    assertMatchesSchema("CreateEmbeddingResponse", viaDefault);
    assertMatchesSchema("CreateEmbeddingResponse", viaFloat);
    expect(viaDefault.data.map((d) => d.embedding)).toEqual(viaFloat.data.map((d) => d.embedding));
    expect(viaFloat.data[0]!.embedding).toEqual(fakeEmbedding("hello", 8));
    expect(viaFloat.data.map((d) => d.index)).toEqual([0, 1]);
    expect(Math.hypot(...viaFloat.data[1]!.embedding)).toBeCloseTo(1, 5);
    expect(viaFloat.usage).toEqual({ prompt_tokens: 4, total_tokens: 4 }); // ceil(5/4) per input
    expect(viaFloat.model).toBe("text-embedding-3-small");
  });

  it("answers explicit base64 as little-endian float32 strings and respects dimensions and token input", async () => {
    const res = await raw("/embeddings", { body: { model: "text-embedding-3-small", input: "hello", encoding_format: "base64", dimensions: 5 } });
    expect(res.status).toBe(200);
    const body = res.json() as { data: Array<{ embedding: unknown }> };
    const encoded = body.data[0]!.embedding as string;
    expect(typeof encoded).toBe("string");
    const bytes = Buffer.from(encoded, "base64");
    const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4));
    expect(decoded).toEqual(fakeEmbedding("hello", 5));
    // The spec types `embedding` as number[] only, so a base64 answer validates once decoded.
    expect(validateAgainst("CreateEmbeddingResponse", body).valid).toBe(false);
    assertMatchesSchema("CreateEmbeddingResponse", { ...body, data: [{ ...body.data[0], embedding: decoded }] });

    const tokens = await client.embeddings.create({ model: "text-embedding-3-small", input: [[1, 2, 3]], encoding_format: "float" });
    expect(tokens.usage.prompt_tokens).toBe(3);
    expect(tokens.data[0]!.embedding).toHaveLength(8);
  });

  it("rejects bad input like OpenAI", async () => {
    const empty = await raw("/embeddings", { body: { model: "text-embedding-3-small", input: "" } });
    expect(empty.status).toBe(400);
    assertMatchesSchema("ErrorResponse", empty.json());
    const format = await raw("/embeddings", { body: { model: "text-embedding-3-small", input: "x", encoding_format: "int8" } });
    expect(format.json()).toMatchObject({ error: { param: "encoding_format", code: "invalid_value" } });
  });
});

describe("models", () => {
  it("lists and retrieves the configured models", async () => {
    const res = await raw("/models");
    assertMatchesSchema("ListModelsResponse", res.json());
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]);
    const model = await client.models.retrieve("gpt-4o");
    assertMatchesSchema("Model", model);
    expect(model).toMatchObject({ id: "gpt-4o", object: "model", owned_by: "system" });
    await expect(client.models.retrieve("gpt-9")).rejects.toBeInstanceOf(NotFoundError);
  });

  it("uses opts.models", async () => {
    const other = await startOpenAIStandin({ models: ["only-one"], apiKeys: ["k1", "k2"] });
    try {
      const c = new OpenAI({ baseURL: other.url, apiKey: "k2", maxRetries: 0 });
      expect((await c.models.list()).data.map((m) => m.id)).toEqual(["only-one"]);
      await expect(c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] })).rejects.toBeInstanceOf(NotFoundError);
    } finally {
      await other.close();
    }
  });
});

describe("errors", () => {
  it("401 without or with a wrong key, in OpenAI's error shape", async () => {
    const missing = await raw("/models", { key: null });
    expect(missing.status).toBe(401);
    assertMatchesSchema("ErrorResponse", missing.json());
    expect(missing.json()).toMatchObject({ error: { type: "invalid_request_error", code: null, param: null } });

    const bad = new OpenAI({ baseURL: standin.url, apiKey: "sk-wrong-key-123", maxRetries: 0 });
    const err = await bad.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: "invalid_api_key", type: "invalid_request_error" });
    expect((err as APIError).message).not.toContain("sk-wrong-key-123");
  });

  it("404 model_not_found with OpenAI's message", async () => {
    const err = await client.chat.completions.create({ model: "gpt-x", messages: [{ role: "user", content: "x" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ code: "model_not_found", param: null, error: { message: "The model `gpt-x` does not exist or you do not have access to it." } });
    const res = await raw("/embeddings", { body: { model: "nope", input: "x" } });
    expect(res.status).toBe(404);
    assertMatchesSchema("ErrorResponse", res.json());
  });

  it("400 for bodies OpenAI rejects, 404 for unknown URLs", async () => {
    const cases: Array<[unknown, string | null]> = [
      [{ messages: [{ role: "user", content: "x" }] }, null],
      [{ model: 3, messages: [] }, "model"],
      [{ model: "gpt-4o" }, "messages"],
      [{ model: "gpt-4o", messages: "hi" }, "messages"],
      [{ model: "gpt-4o", messages: [] }, "messages"],
      [{ model: "gpt-4o", messages: [{ role: "robot", content: "x" }] }, "messages[0].role"],
      [{ model: "gpt-4o", messages: [{ role: "user", content: "x" }], stream_options: { include_usage: true } }, "stream_options"],
    ];
    for (const [body, param] of cases) {
      const res = await raw("/chat/completions", { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      assertMatchesSchema("ErrorResponse", res.json());
      expect(res.json()).toMatchObject({ error: { type: "invalid_request_error", param } });
    }
    const notJson = await raw("/chat/completions", { rawBody: "{nope" });
    expect(notJson.status).toBe(400);
    expect(notJson.json()).toMatchObject({ error: { message: expect.stringContaining("could not parse the JSON body") } });
    const unknown = await raw("/assistants/x");
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toMatchObject({ error: { message: "Invalid URL (GET /v1/assistants/x)" } });
  });
});

describe("failure injection", () => {
  const ask = (c = client, opts: { timeout?: number } = {}) =>
    c.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }, opts);

  it("status 429 with retry-after, then 503 overloaded, reset by times", async () => {
    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    const limited = await ask().catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitError);
    expect(limited).toMatchObject({ code: "rate_limit_exceeded" });
    expect((limited as RateLimitError).headers.get("retry-after")).toBe("1");
    assertMatchesSchema("ErrorResponse", { error: (limited as RateLimitError).error });
    await expect(ask()).resolves.toMatchObject({ object: "chat.completion" }); // `times: 1` used up

    standin.setBehavior({ kind: "status", status: 503 });
    const overloaded = await ask().catch((e: unknown) => e);
    expect(overloaded).toBeInstanceOf(InternalServerError);
    expect(overloaded).toMatchObject({ status: 503, type: "server_error", error: { message: expect.stringContaining("The engine is currently overloaded") } });
    standin.setBehavior({ kind: "status", status: 500, body: { error: { message: "custom", type: "server_error", param: null, code: null } }, headers: { "x-custom": "1" } });
    const custom = await raw("/models");
    expect(custom.status).toBe(500);
    expect(custom.headers.get("x-custom")).toBe("1");
    expect(custom.json()).toMatchObject({ error: { message: "custom" } });
  });

  it("a configured request limit answers 429 by itself", async () => {
    const tight = await startOpenAIStandin({ rateLimits: { requests: 1 } });
    try {
      const c = new OpenAI({ baseURL: tight.url, apiKey: "sk-test", maxRetries: 0 });
      await ask(c);
      const err = await ask(c).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RateLimitError);
      expect(Number((err as RateLimitError).headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await tight.close();
    }
  });

  it("hang: never answers; the client giving up counts as aborted", async () => {
    standin.setBehavior({ kind: "hang", path: "/v1/chat/completions" });
    const before = standin.aborted;
    await expect(ask(client, { timeout: 200 })).rejects.toBeInstanceOf(APIConnectionTimeoutError);
    await standin.waitForAborted(before + 1);
    expect((await raw("/models")).status).toBe(200); // other paths are unaffected
  });

  it("delay: answers normally after the wait", async () => {
    standin.setBehavior({ kind: "delay", ms: 150 });
    const t0 = Date.now();
    await ask();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
  });

  it("stream-cut: the SDK sees the stream break without [DONE]", async () => {
    standin.setBehavior({ kind: "stream-cut", afterChunks: 2 });
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "a long enough answer" }] });
    const got: ChatCompletionChunk[] = [];
    const err = await (async () => {
      for await (const c of stream) got.push(c);
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(got).toHaveLength(2);
    const before = standin.aborted;
    standin.setBehavior({ kind: "stream-cut", afterChunks: 0 });
    await expect(ask()).rejects.toBeInstanceOf(Error); // JSON answers are cut mid-body
    expect(standin.aborted).toBe(before); // cut by the server, not a client abort
  });

  it("slow-stream: a client that leaves mid-stream is counted in aborted", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 40 });
    const before = standin.aborted;
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "a long enough answer" }] });
    let seen = 0;
    for await (const _ of stream) {
      if (++seen === 2) break; // the SDK aborts the request
    }
    await standin.waitForAborted(before + 1);
  });

  it("stream-error: OpenAI's in-stream error event surfaces as an APIError", async () => {
    standin.setBehavior({ kind: "stream-error", afterChunks: 1, error: { message: "boom", type: "server_error", param: null, code: null } });
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hi" }] });
    const err = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).message).toContain("boom");
  });

  it("close() returns promptly with a request still hanging", async () => {
    const s = await startOpenAIStandin();
    s.setBehavior({ kind: "hang" });
    const pending = fetch(`${s.url}/models`, { headers: { authorization: "Bearer sk-test" } }).then(
      () => "answered",
      () => "failed",
    );
    while (s.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await pending).toBe("failed");
    expect(s.aborted).toBe(0); // closing is not a client abort
  });
});

describe("validator sanity", () => {
  it("rejects a deliberately broken completion", async () => {
    const good = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
    const broken = { ...good, choices: [{ ...good.choices[0], finish_reason: "done" }], object: "chat.completion.chonk" };
    const check = validateAgainst("CreateChatCompletionResponse", broken);
    expect(check.valid).toBe(false);
    expect(check.errors).toContain("/choices/0/finish_reason");
    expect(check.errors).toContain("/object");
  });
});
