import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The official openai npm package against the gateway, exactly as users call
// it: only baseURL changes. The gateway forwards to a stand-in OpenAI server.

let standin: OpenAIStandin;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    providers: [openaiProvider(standin.url)],
    aliases: { fast: "openai/gpt-4o-mini" },
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-anything", maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  standin.requests.length = 0;
});

const lastUpstream = (path: string) => {
  const r = standin.requests.filter((x) => x.path === path).at(-1);
  if (!r) throw new Error(`no upstream request to ${path}`);
  return r;
};

describe("chat completions", () => {
  it("answers a non-streaming chat and says who served it", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Say hello" }] })
      .withResponse();
    expect(data.object).toBe("chat.completion");
    expect(data.choices[0]!.message.content).toBe("echo: Say hello");
    expect(data.choices[0]!.finish_reason).toBe("stop");
    expect(data.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    expect(response.headers.get("x-switchyard-provider")).toBe("openai");
    expect(response.headers.get("x-switchyard-model")).toBe("gpt-4o-mini");
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    // The gateway sent its own provider key upstream, never the caller's.
    expect(lastUpstream("/v1/chat/completions").headers["authorization"]).toBe("Bearer sk-test");
  });

  it("resolves provider/model and aliases to the provider's model name", async () => {
    for (const model of ["openai/gpt-4o-mini", "fast"]) {
      const res = await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] });
      expect(res.choices[0]!.message.content).toBe("echo: x");
      expect((lastUpstream("/v1/chat/completions").body as { model: string }).model).toBe("gpt-4o-mini");
    }
  });

  it("streams with usage at the end when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Tell me a story" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(text).toBe("echo: Tell me a story");
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
  });

  it("streams without a usage chunk when not asked, but still accounts the usage", async () => {
    const before = gw.records.length;
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Hello there" }],
      stream: true,
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(chunks.some((c) => c.usage)).toBe(false);
    // The gateway asked the provider for usage anyway, for accounting.
    expect(lastUpstream("/v1/chat/completions").body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    await gw.waitForRecords(before + 1);
    const rec = gw.records.at(-1)!;
    expect(rec).toMatchObject({ operation: "chat_stream", ok: true, provider: "openai", model: "gpt-4o-mini" });
    expect(rec.usage?.completionTokens).toBeGreaterThan(0);
    expect(rec.firstChunkMs).toBeGreaterThan(0);
  });

  const tools: OpenAI.Chat.ChatCompletionTool[] = [
    {
      type: "function",
      function: {
        name: "get_weather",
        description: "Weather in a city",
        parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
      },
    },
  ];

  it("returns tool calls, non-streaming", async () => {
    const res = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
      tool_choice: "auto",
    });
    const call = res.choices[0]!.message.tool_calls?.[0];
    expect(res.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call?.type).toBe("function");
    expect(call && "function" in call ? call.function.name : "").toBe("get_weather");
    expect(JSON.parse(call && "function" in call ? call.function.arguments : "{}")).toHaveProperty("location");
    expect(lastUpstream("/v1/chat/completions").body).toMatchObject({ tools, tool_choice: "auto" });
  });

  it("streams tool calls that the SDK assembles", async () => {
    const runner = client.chat.completions.stream({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools,
    });
    const final = await runner.finalChatCompletion();
    const call = final.choices[0]!.message.tool_calls?.[0];
    expect(final.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call && "function" in call ? call.function.name : "").toBe("get_weather");
    expect(JSON.parse(call && "function" in call ? call.function.arguments : "")).toHaveProperty("location");
  });

  it("carries tool results and untyped fields to the provider untouched", async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: "system", content: "Be brief" },
      { role: "user", content: [{ type: "text", text: "Weather?" }, { type: "image_url", image_url: { url: "https://example.com/a.png", detail: "low" } }] },
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"location":"Paris"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "sunny" },
    ];
    await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages,
      tools,
      temperature: 0.2,
      seed: 7,
      stop: ["END"],
      response_format: { type: "json_object" },
      logit_bias: { "50256": -100 },
      metadata: { team: "search" },
      // A field the gateway's schema does not know passes through as is.
      ...({ some_new_field: { nested: [1, 2] } } as object),
    });
    const sent = lastUpstream("/v1/chat/completions").body as Record<string, unknown>;
    expect(sent["messages"]).toEqual(messages);
    expect(sent).toMatchObject({
      temperature: 0.2,
      seed: 7,
      stop: ["END"],
      response_format: { type: "json_object" },
      logit_bias: { "50256": -100 },
      metadata: { team: "search" },
      some_new_field: { nested: [1, 2] },
    });
  });

  it("asks for n choices", async () => {
    const res = await client.chat.completions.create({ model: "gpt-4o-mini", n: 2, messages: [{ role: "user", content: "hi" }] });
    expect(res.choices.map((c) => c.index)).toEqual([0, 1]);
  });
});

describe("embeddings", () => {
  it("embeds with the SDK's default base64 encoding and matches the provider's floats", async () => {
    const res = await client.embeddings.create({ model: "text-embedding-3-small", input: ["alpha", "beta"] });
    expect(res.data).toHaveLength(2);
    const direct = (await (await fetch(`${standin.url}/embeddings`, {
      method: "POST",
      headers: { authorization: "Bearer sk-test", "content-type": "application/json" },
      body: JSON.stringify({ model: "text-embedding-3-small", input: ["alpha", "beta"] }),
    })).json()) as { data: { embedding: number[] }[] };
    for (let i = 0; i < 2; i++) {
      const expected = Array.from(new Float32Array(direct.data[i]!.embedding));
      expect(res.data[i]!.embedding).toEqual(expected);
    }
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("embeds with float encoding and dimensions", async () => {
    const res = await client.embeddings.create({ model: "text-embedding-3-small", input: "alpha", encoding_format: "float", dimensions: 4 });
    expect(res.data[0]!.embedding).toHaveLength(4);
    expect(lastUpstream("/v1/embeddings").body).toMatchObject({ dimensions: 4, input: "alpha" });
  });
});

describe("models", () => {
  it("lists the provider's models as provider/model, and aliases", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(["openai/gpt-4o-mini", "openai/text-embedding-3-small", "fast"]));
  });

  it("retrieves one model", async () => {
    const m = await client.models.retrieve("openai/gpt-4o");
    expect(m).toMatchObject({ id: "openai/gpt-4o", object: "model" });
    await expect(client.models.retrieve("openai/nope")).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
