import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { promptEstimate } from "./standins/anthropic/messages.ts";
import { startGeminiStandin, type GeminiStandin } from "./standins/gemini.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// Anthropic's token counting endpoint on the gateway (POST /v1/messages/count_tokens),
// driven by the official @anthropic-ai/sdk: counted by Anthropic and Gemini models'
// own providers, refused for providers without a counting API.

const KEY = "sk-gateway-count-tokens-test-0123456789";
const ADMIN = "sk-admin-count-tokens-test-0123456789";
let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gemini: GeminiStandin;
let gw: TestGateway;
let client: Anthropic;
type ApiErr = InstanceType<typeof Anthropic.APIError>;

beforeAll(async () => {
  [openai, anthropic, gemini] = await Promise.all([startOpenAIStandin(), startAnthropicStandin(), startGeminiStandin()]);
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    admin: { key: ADMIN },
    providers: [
      openaiProvider(openai.url, { models: ["gpt-4o"] }),
      { type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"], models: ["claude-sonnet-4-5"] },
      { type: "gemini", baseUrl: gemini.url, keys: ["gemini-test-key"], models: ["gemini-2.0-flash"] },
    ],
  });
  client = new Anthropic({ baseURL: gw.url, apiKey: KEY, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await Promise.all([openai?.close(), anthropic?.close(), gemini?.close()]);
});

beforeEach(() => {
  anthropic.setBehavior(null);
  anthropic.requests.length = 0;
  gemini.requests.length = 0;
  openai.requests.length = 0;
});

const tools: Anthropic.Tool[] = [{
  name: "get_weather",
  description: "Weather in a city",
  input_schema: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
}];
const messages: Anthropic.MessageParam[] = [
  { role: "user", content: "What is the weather in Paris?" },
  { role: "assistant", content: "Let me check." },
  { role: "user", content: "Thanks, and in Rome?" },
];

async function apiError(p: Promise<unknown>): Promise<ApiErr> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Anthropic.APIError);
  return err as ApiErr;
}

describe("POST /v1/messages/count_tokens", () => {
  it("counts with Anthropic for an Anthropic model: the stand-in's exact count, sent without max_tokens", async () => {
    const { data, response } = await client.messages
      .countTokens({ model: "anthropic/claude-sonnet-4-5", system: "Be brief.", messages, tools })
      .withResponse();
    expect(anthropic.requests).toHaveLength(1);
    const up = anthropic.requests[0]!;
    expect(up.method).toBe("POST");
    expect(up.path).toBe("/v1/messages/count_tokens");
    expect(up.headers["x-api-key"]).toBe("sk-ant-test");
    expect(up.headers["anthropic-version"]).toBeTypeOf("string");
    const body = up.body as Record<string, unknown>;
    expect(body).toMatchObject({ model: "claude-sonnet-4-5", system: "Be brief.", messages, tools });
    expect(body).not.toHaveProperty("max_tokens");
    expect(body).not.toHaveProperty("stream");

    expect(data).toEqual({ input_tokens: promptEstimate(body) });
    expect(data.input_tokens).toBeGreaterThan(10);
    expect(response.status).toBe(200);
    expect(response.headers.get("request-id")).toBe(response.headers.get("x-request-id"));
    expect(response.headers.get("x-switchyard-provider")).toBe("anthropic");
    expect(response.headers.get("x-switchyard-model")).toBe("claude-sonnet-4-5");

    // The same prompt as a message reports the same input figure.
    const msg = await client.messages.create({ model: "anthropic/claude-sonnet-4-5", max_tokens: 64, system: "Be brief.", messages, tools, tool_choice: { type: "none" } });
    expect(msg.usage.input_tokens).toBe(data.input_tokens);
  });

  it("passes thinking and tool_choice on, and answers client.beta.messages.countTokens too", async () => {
    const plain = await client.beta.messages.countTokens({
      model: "anthropic/claude-sonnet-4-5",
      messages: [{ role: "user", content: "Hello" }],
      tools,
      tool_choice: { type: "auto" },
      thinking: { type: "enabled", budget_tokens: 1024 },
    });
    const up = anthropic.requests.at(-1)!;
    expect(up.path).toBe("/v1/messages/count_tokens");
    expect(up.body).toMatchObject({ tool_choice: { type: "auto" }, thinking: { type: "enabled", budget_tokens: 1024 } });
    expect(plain.input_tokens).toBe(promptEstimate(up.body as Record<string, unknown>));
  });

  it("counts with Gemini's countTokens for a Gemini model: the stand-in's promptTokenCount", async () => {
    const { data, response } = await client.messages
      .countTokens({ model: "gemini/gemini-2.0-flash", system: "Be brief.", messages, tools })
      .withResponse();
    expect(gemini.requests).toHaveLength(1);
    const up = gemini.requests[0]!;
    expect(up.path).toBe("/v1beta/models/gemini-2.0-flash:countTokens");
    const req = (up.body as { generateContentRequest: Record<string, unknown> }).generateContentRequest;
    expect(req["model"]).toBe("models/gemini-2.0-flash");
    expect(req["systemInstruction"]).toEqual({ parts: [{ text: "Be brief." }] });
    expect(req).toHaveProperty("tools");
    expect(response.headers.get("x-switchyard-provider")).toBe("gemini");
    expect(data.input_tokens).toBeGreaterThan(10);

    // generateContent reports the same prompt figure for the same prompt.
    const msg = await client.messages.create({ model: "gemini/gemini-2.0-flash", max_tokens: 64, system: "Be brief.", messages });
    expect(msg.usage.input_tokens).toBe(data.input_tokens);
  });

  it("refuses a model whose provider has no counting API with 400 naming the provider", async () => {
    const err = await apiError(client.messages.countTokens({ model: "gpt-4o", messages }));
    expect(err).toBeInstanceOf(Anthropic.BadRequestError);
    expect(err.error).toEqual({
      type: "error",
      error: { type: "invalid_request_error", message: "count_tokens is not available for provider 'openai' (model 'gpt-4o')" },
    });
    expect(err.requestID).toMatch(/^[0-9a-f-]{36}$/);
    expect(openai.requests).toHaveLength(0);
  });

  it("answers 401 without a valid key, before reading the body", async () => {
    const anon = new Anthropic({ baseURL: gw.url, apiKey: "sk-wrong-key", maxRetries: 0 });
    const err = await apiError(anon.messages.countTokens({ model: "anthropic/claude-sonnet-4-5", messages }));
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err.error as { error: { type: string } }).error.type).toBe("authentication_error");
    expect(anthropic.requests).toHaveLength(0);
  });

  it("answers 400 for an invalid body, naming the field as Anthropic does", async () => {
    const noMessages = await apiError(client.messages.countTokens({ model: "anthropic/claude-sonnet-4-5" } as never));
    expect(noMessages.status).toBe(400);
    expect(noMessages.error).toEqual({ type: "error", error: { type: "invalid_request_error", message: "messages: Field required" } });

    const badRole = await apiError(client.messages.countTokens({ model: "anthropic/claude-sonnet-4-5", messages: [{ role: "robot", content: "x" }] } as never));
    expect(badRole.status).toBe(400);
    expect((badRole.error as { error: { message: string } }).error.message).toMatch(/^messages\.0\.role/);

    const res = await fetch(`${gw.url}/v1/messages/count_tokens`, { method: "POST", headers: { "x-api-key": KEY, "content-type": "application/json" }, body: "{not json" });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ type: "error", error: { type: "invalid_request_error" } });
    expect(anthropic.requests).toHaveLength(0);
  });

  it("answers 404 for an unknown model and passes the provider's failures on in Anthropic's terms", async () => {
    const unknown = await apiError(client.messages.countTokens({ model: "no-such-model", messages }));
    expect(unknown).toBeInstanceOf(Anthropic.NotFoundError);

    anthropic.setBehavior({ kind: "status", status: 529, path: "/v1/messages/count_tokens" });
    const overloaded = await apiError(client.messages.countTokens({ model: "anthropic/claude-sonnet-4-5", messages }));
    expect(overloaded.status).toBe(529);
    expect((overloaded.error as { error: { type: string } }).error.type).toBe("overloaded_error");
  });

  it("respects a virtual key's allowed models and providers (403), and counts what it may use", async () => {
    const createKey = (body: object): Promise<CreatedKey> => admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "count", ...body });
    const onlyClaude = new Anthropic({ baseURL: gw.url, apiKey: (await createKey({ allowedModels: ["claude-sonnet-4-5"] })).secret, maxRetries: 0 });
    expect((await onlyClaude.messages.countTokens({ model: "anthropic/claude-sonnet-4-5", messages })).input_tokens).toBeGreaterThan(0);
    const denied = await apiError(onlyClaude.messages.countTokens({ model: "gemini/gemini-2.0-flash", messages }));
    expect(denied).toBeInstanceOf(Anthropic.PermissionDeniedError);
    expect(denied.error).toEqual({ type: "error", error: { type: "permission_error", message: "this API key may not use the model 'gemini/gemini-2.0-flash'" } });

    const onlyOpenAI = new Anthropic({ baseURL: gw.url, apiKey: (await createKey({ allowedProviders: ["openai"] })).secret, maxRetries: 0 });
    expect((await apiError(onlyOpenAI.messages.countTokens({ model: "anthropic/claude-sonnet-4-5", messages }))).status).toBe(403);
    expect(gemini.requests).toHaveLength(0);
  });
});
