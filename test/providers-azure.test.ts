/**
 * Azure OpenAI through the gateway: deployment URLs, the api-key header and
 * api-version, text, streams (with Azure's prompt-annotation first chunk),
 * tool calls over several turns, embeddings, and each error class including
 * the content filter — through the OpenAI REST bridge (official `openai` SDK)
 * and the RPC API.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, FinishReason, Role, userText } from "../sdk-ts/src/index.ts";
import { startAzureStandin, type AzureStandin } from "./standins/azure.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

let standin: AzureStandin;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  standin = await startAzureStandin();
  const base = { type: "azure", baseUrl: standin.url, timeouts: { firstByteMs: 400 } } as const;
  gw = await startTestGateway({
    providers: [
      // gpt-4o-mini runs on deployment "prod-chat"; gpt-4o is its own deployment name.
      { ...base, keys: ["az-test-key"], models: ["gpt-4o"], deployments: { "gpt-4o-mini": "prod-chat", "text-embedding-3-small": "embed" } },
      { ...base, id: "azure-badkey", keys: ["az-wrong-key"], models: ["gpt-4o"] },
      // no declared models: any name is sent upstream as a deployment
      { ...base, id: "azure-open", keys: ["az-test-key"] },
    ],
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

const last = () => {
  const r = standin.requests.at(-1);
  if (!r) throw new Error("no upstream request");
  return r;
};

async function restError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (err) {
    if (err instanceof OpenAI.APIError) return err;
    throw err;
  }
  throw new Error("expected an error");
}

describe("REST (openai SDK)", () => {
  it("maps the model to its deployment, sends api-version and the api-key header (no Authorization)", async () => {
    const res = await client.chat.completions.create({ model: "azure/gpt-4o-mini", messages: [{ role: "user", content: "Say hello" }] });
    assertMatchesSchema("CreateChatCompletionResponse", res);
    expect(res.choices[0]!.message.content).toBe("echo: Say hello");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage!.total_tokens).toBe(res.usage!.prompt_tokens + res.usage!.completion_tokens);
    const r = last();
    expect(r.method).toBe("POST");
    expect(r.path).toBe("/openai/deployments/prod-chat/chat/completions");
    expect(r.query).toEqual({ "api-version": "2024-10-21" });
    expect(r.headers["api-key"]).toBe("az-test-key");
    expect(r.headers["authorization"]).toBeUndefined();
  });

  it("a model without a deployment entry is the deployment name itself", async () => {
    const res = await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "x" }] });
    expect(res.choices[0]!.message.content).toBe("echo: x");
    expect(last().path).toBe("/openai/deployments/gpt-4o/chat/completions");
    await client.chat.completions.create({ model: "azure-open/prod-chat", messages: [{ role: "user", content: "y" }] });
    expect(last().path).toBe("/openai/deployments/prod-chat/chat/completions");
  });

  it("streams with usage; Azure's empty-choices prompt annotation does not reach the caller", async () => {
    const stream = await client.chat.completions.create({
      model: "azure/gpt-4o-mini",
      messages: [{ role: "user", content: "Stream this please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) {
      assertMatchesSchema("CreateChatCompletionStreamResponse", c);
      chunks.push(c);
    }
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? "").join("")).toBe("echo: Stream this please");
    expect(chunks.filter((c) => c.choices[0]?.finish_reason === "stop")).toHaveLength(1);
    const usage = chunks.filter((c) => c.usage);
    expect(usage).toHaveLength(1);
    expect(usage[0]!.choices).toEqual([]);
    expect(usage[0]!.usage!.completion_tokens).toBeGreaterThan(0);
    // only the last chunk has no choices
    expect(chunks.slice(0, -1).every((c) => c.choices.length === 1)).toBe(true);
    expect(last().body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it("streams without usage when not asked", async () => {
    const stream = await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "abc" }], stream: true });
    let text = "";
    let count = 0;
    for await (const c of stream) {
      expect(c.usage ?? undefined).toBeUndefined();
      expect(c.choices).toHaveLength(1);
      text += c.choices[0]!.delta.content ?? "";
      count++;
    }
    expect(text).toBe("echo: abc");
    expect(count).toBeGreaterThan(2);
  });

  it("tool calls across a multi-turn exchange", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] } } },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "Weather in Paris?" }];
    const first = await client.chat.completions.create({ model: "azure/gpt-4o-mini", messages, tools });
    const call = first.choices[0]!.message.tool_calls?.[0];
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call?.type === "function" ? call.function : undefined).toEqual({ name: "get_weather", arguments: '{"location":"Paris"}' });
    messages.push(first.choices[0]!.message, { role: "tool", tool_call_id: call!.id, content: '{"temp":21}' });
    const second = await client.chat.completions.create({ model: "azure/gpt-4o-mini", messages, tools });
    expect(second.choices[0]!.finish_reason).toBe("stop");
    expect(second.choices[0]!.message.content).toBe("echo: Weather in Paris?");
    const sent = last().body as { messages: Record<string, unknown>[] };
    expect(sent.messages[1]).toMatchObject({ role: "assistant", tool_calls: [{ id: call!.id, type: "function", function: { name: "get_weather" } }] });
    expect(sent.messages[2]).toMatchObject({ role: "tool", tool_call_id: call!.id, content: '{"temp":21}' });

    // streamed: id and name first, argument fragments after
    const stream = await client.chat.completions.create({ model: "azure/gpt-4o-mini", messages: [{ role: "user", content: "Weather?" }], tools, stream: true });
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    let finish: string | null | undefined;
    for await (const c of stream) {
      deltas.push(...(c.choices[0]?.delta.tool_calls ?? []));
      finish ??= c.choices[0]?.finish_reason;
    }
    expect(deltas[0]).toMatchObject({ index: 0, function: { name: "get_weather" } });
    expect(deltas[0]!.id).toMatch(/^call_/);
    expect(deltas.map((d) => d.function?.arguments ?? "").join("")).toBe('{"location":"Paris"}');
    expect(finish).toBe("tool_calls");
  });

  it("embeddings go to the embedding deployment", async () => {
    const res = await client.embeddings.create({ model: "azure/text-embedding-3-small", input: ["a", "b"], encoding_format: "float" });
    expect(res.data.map((d) => d.embedding.length)).toEqual([8, 8]);
    expect(last().path).toBe("/openai/deployments/embed/embeddings");
    expect(last().query["api-version"]).toBe("2024-10-21");
    expect(last().headers["api-key"]).toBe("az-test-key");
  });

  it("a prompt refused by the content filter is a 400 content_filter", async () => {
    const err = await restError(client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "[filter-prompt] bad" }] }));
    expect(err.status).toBe(400);
    expect(err.code).toBe("content_filter");
    expect(err.param).toBe("prompt");
    expect(err.message).toContain("content management policy");
    // streamed requests are refused the same way, before any chunk
    const err2 = await restError(
      (async () => {
        for await (const _ of await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "[filter-prompt]" }], stream: true })) {
          /* drain */
        }
      })(),
    );
    expect(err2.status).toBe(400);
    expect(err2.code).toBe("content_filter");
  });

  it("an answer cut by the content filter ends with finish_reason content_filter", async () => {
    const res = await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "[filter-answer] tell me" }] });
    expect(res.choices[0]!.finish_reason).toBe("content_filter");
    expect(res.choices[0]!.message.content ?? "").toBe("");
    const stream = await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "[filter-answer] tell me" }], stream: true });
    let text = "";
    const finishes: string[] = [];
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? "";
      if (c.choices[0]?.finish_reason) finishes.push(c.choices[0].finish_reason);
    }
    expect(text).toBe("echo: [f"); // the two content chunks (4 characters each) that passed the filter
    expect(finishes).toEqual(["content_filter"]);
  });

  it("maps each upstream failure", async () => {
    const ask = (model = "azure/gpt-4o") => client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] });

    const denied = await restError(ask("azure-badkey/gpt-4o"));
    expect(denied.status).toBe(502);
    expect(denied.message).toContain("Access denied due to invalid subscription key");
    expect(denied.message).not.toContain("az-wrong-key");

    const missing = await restError(ask("azure-open/no-such-deployment"));
    expect(missing.status).toBe(404);
    expect(missing.message).toContain("The API deployment for this resource does not exist");
    expect(last().path).toBe("/openai/deployments/no-such-deployment/chat/completions");

    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    const limited = await restError(ask());
    expect(limited.status).toBe(429);
    expect(limited.headers?.get("retry-after")).toBe("6");
    expect(limited.message).toContain("exceeded token rate limit");

    standin.setBehavior({ kind: "status", status: 400, times: 1 });
    const tooLong = await restError(ask());
    expect(tooLong.status).toBe(400);
    expect(tooLong.code).toBe("context_length_exceeded");

    standin.setBehavior({ kind: "status", status: 503, times: 1 });
    expect((await restError(ask())).status).toBe(503);
    standin.setBehavior({ kind: "status", status: 500, times: 1 });
    expect((await restError(ask())).status).toBe(502);

    standin.setBehavior({ kind: "hang", times: 1 });
    expect((await restError(ask())).status).toBe(504);
  });

  it("a cut stream and an in-stream error fail the stream (never a clean end)", async () => {
    for (const fault of [{ kind: "stream-cut", afterChunks: 3 }, { kind: "stream-error", afterChunks: 3 }] as const) {
      standin.setBehavior({ ...fault, times: 1 });
      const stream = await client.chat.completions.create({ model: "azure/gpt-4o", messages: [{ role: "user", content: "a long enough answer" }], stream: true });
      let text = "";
      const run = async () => {
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      };
      await expect(run(), fault.kind).rejects.toThrow();
      expect(text.length, fault.kind).toBeGreaterThan(0);
    }
  });
});

describe("RPC", () => {
  const sy = () => createClient({ baseUrl: gw.url, protocol: "grpc" });

  async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
    try {
      await p;
      return undefined;
    } catch (err) {
      return ConnectError.from(err).code;
    }
  }

  it("Complete, Stream with usage, Embed", async () => {
    const { completion } = await sy().chat.complete({ request: { model: "azure/gpt-4o-mini", messages: [userText("Say hi")] } });
    expect(completion?.choices[0]?.message?.content[0]?.part).toEqual({ case: "text", value: "echo: Say hi" });
    expect(completion?.gateway).toMatchObject({ provider: "azure", model: "gpt-4o-mini" });
    expect(last().path).toBe("/openai/deployments/prod-chat/chat/completions");

    let text = "";
    let usage = 0;
    let first = true;
    for await (const chunk of sy().streamChat({ model: "azure/gpt-4o-mini", messages: [userText("Stream it")] }, { includeUsage: true })) {
      if (first) expect(chunk.choices[0]?.delta?.role).toBe(Role.ASSISTANT);
      first = false;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage++;
    }
    expect(text).toBe("echo: Stream it");
    expect(usage).toBe(1);

    const emb = await sy().embeddings.embed({ model: "azure/text-embedding-3-small", input: ["a"] });
    expect(emb.data[0]?.vector.length).toBe(8);
  });

  it("tool calls across turns", async () => {
    const tools = [{ function: { name: "get_weather", parameters: { type: "object", properties: { location: { type: "string" } } } } }];
    const first = await sy().chat.complete({ request: { model: "azure/gpt-4o", messages: [userText("Weather?")], tools } });
    const msg = first.completion?.choices[0]?.message;
    expect(first.completion?.choices[0]?.finishReason).toBe(FinishReason.TOOL_CALLS);
    const call = msg?.toolCalls[0];
    expect(call?.function).toMatchObject({ name: "get_weather", arguments: '{"location":"Paris"}' });
    const second = await sy().chat.complete({
      request: {
        model: "azure/gpt-4o",
        messages: [userText("Weather?"), msg!, { role: Role.TOOL, toolCallId: call!.id, content: [{ part: { case: "text", value: "sunny" } }] }],
        tools,
      },
    });
    expect(second.completion?.choices[0]?.finishReason).toBe(FinishReason.STOP);
    expect((last().body as { messages: unknown[] }).messages).toHaveLength(3);
  });

  it("content filter: refused prompt is InvalidArgument; filtered answer is CONTENT_FILTER", async () => {
    expect(await codeOf(sy().chat.complete({ request: { model: "azure/gpt-4o", messages: [userText("[filter-prompt]")] } }))).toBe(Code.InvalidArgument);
    const { completion } = await sy().chat.complete({ request: { model: "azure/gpt-4o", messages: [userText("[filter-answer]")] } });
    expect(completion?.choices[0]?.finishReason).toBe(FinishReason.CONTENT_FILTER);
    const finishes: FinishReason[] = [];
    for await (const chunk of sy().streamChat({ model: "azure/gpt-4o", messages: [userText("[filter-answer] x")] })) {
      for (const c of chunk.choices) if (c.finishReason !== FinishReason.UNSPECIFIED) finishes.push(c.finishReason);
    }
    expect(finishes).toEqual([FinishReason.CONTENT_FILTER]);
  });

  it("maps upstream failures to Connect codes", async () => {
    const req = { request: { model: "azure/gpt-4o", messages: [userText("x")] } };
    expect(await codeOf(sy().chat.complete({ request: { model: "azure-open/nope", messages: [userText("x")] } }))).toBe(Code.NotFound);
    standin.setBehavior({ kind: "status", status: 429, times: 1 });
    expect(await codeOf(sy().chat.complete(req))).toBe(Code.ResourceExhausted);
    expect(await codeOf(sy().chat.complete({ request: { model: "azure-badkey/gpt-4o", messages: [userText("x")] } }))).toBe(Code.Unavailable);
  });

  it("ListModels shows the declared models and deployments", async () => {
    const { models } = await sy().models.listModels({});
    const ids = models.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(["azure/gpt-4o", "azure/gpt-4o-mini", "azure/text-embedding-3-small", "azure-badkey/gpt-4o"]));
  });
});
