import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// OpenAI's other endpoints (legacy completions, moderations, image
// generation) through the gateway with the official SDK: forwarded to
// OpenAI-format providers, governed and logged like chat, and refused by
// name for providers that do not serve them.

const ADMIN = "sy-admin-forward-0123456789";
const MODELS = ["gpt-3.5-turbo-instruct", "omni-moderation-latest", "gpt-image-1", "dall-e-3", "tts-1", "whisper-1", "gpt-4o-transcribe"];
let openai: OpenAIStandin;
let backup: OpenAIStandin;
let anthropic: AnthropicStandin;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  openai = await startOpenAIStandin({ models: MODELS });
  backup = await startOpenAIStandin({ models: MODELS });
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({
    admin: { key: ADMIN },
    governance: { pricing: { "gpt-3.5-turbo-instruct": { input: 1.5, output: 2 } } },
    providers: [
      openaiProvider(openai.url, { models: MODELS }),
      openaiProvider(backup.url, { id: "backup", models: ["gpt-3.5-turbo-instruct"] }),
      { id: "anthropic", type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"], models: ["claude-sonnet-4-5"] },
    ],
    routes: { instruct: { targets: [{ model: "openai/gpt-3.5-turbo-instruct" }], fallbacks: ["backup/gpt-3.5-turbo-instruct"] } },
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: ADMIN, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
  await backup?.close();
  await anthropic?.close();
});

describe("legacy completions", () => {
  it("answers as the provider did, valid against the spec", async () => {
    const r = await client.completions.create({ model: "openai/gpt-3.5-turbo-instruct", prompt: "Say this is a test", max_tokens: 20 }).withResponse();
    assertMatchesSchema("CreateCompletionResponse", r.data);
    expect(r.data.choices[0]?.text).toBe("echo: Say this is a test");
    expect(r.response.headers.get("x-switchyard-provider")).toBe("openai");
    const sent = openai.requests.at(-1)!;
    expect(sent.path).toBe("/v1/completions");
    expect(sent.body).toMatchObject({ model: "gpt-3.5-turbo-instruct", prompt: "Say this is a test", max_tokens: 20 });
    expect(gw.records.at(-1)).toMatchObject({ operation: "completions", ok: true, provider: "openai", model: "gpt-3.5-turbo-instruct" });
  });

  it("streams, with usage when asked", async () => {
    const stream = await client.completions.create({ model: "openai/gpt-3.5-turbo-instruct", prompt: "Stream this", max_tokens: 20, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.text ?? "";
      if (c.usage) usage = c.usage;
    }
    expect(text).toBe("echo: Stream this");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    await gw.waitForRecords(1);
    expect(gw.records.at(-1)).toMatchObject({ operation: "completions", ok: true });
    expect(gw.records.at(-1)!.usage?.completionTokens).toBe(usage?.completion_tokens);
  });

  it("falls back to another provider when the first fails", async () => {
    openai.setBehavior({ kind: "status", status: 503, times: 1, path: "/v1/completions" });
    const r = await client.completions.create({ model: "instruct", prompt: "Hi", max_tokens: 5 }).withResponse();
    expect(r.response.headers.get("x-switchyard-provider")).toBe("backup");
    expect(r.response.headers.get("x-switchyard-tried")).toBe("openai/gpt-3.5-turbo-instruct,backup/gpt-3.5-turbo-instruct");
  });

  it("is governed: charged from its usage, refused past the budget, and allowed models apply", async () => {
    const { key, secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "legacy", allowedModels: ["gpt-3.5-turbo-instruct"], budget: { limitUsd: 1, period: "PERIOD_DAY" } });
    const keyed = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
    await keyed.completions.create({ model: "openai/gpt-3.5-turbo-instruct", prompt: "Cost me", max_tokens: 10 });
    const spent = (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd;
    const u = gw.records.at(-1)!.usage!;
    expect(spent).toBeCloseTo((u.promptTokens * 1.5 + u.completionTokens * 2) / 1e6, 12);
    await expect(keyed.moderations.create({ input: "hello" })).rejects.toBeInstanceOf(OpenAI.PermissionDeniedError);
  });
});

describe("moderations and images", () => {
  it("moderates with the default model", async () => {
    const r = await client.moderations.create({ input: ["hello there", "I will kill the process"] });
    assertMatchesSchema("CreateModerationResponse", r);
    expect(r.results.map((x) => x.flagged)).toEqual([false, true]);
    expect(openai.requests.at(-1)!.body).toMatchObject({ model: "omni-moderation-latest" });
  });

  it("generates images", async () => {
    const r = await client.images.generate({ model: "openai/gpt-image-1", prompt: "a lighthouse", n: 2 });
    assertMatchesSchema("ImagesResponse", r);
    expect(r.data).toHaveLength(2);
    expect(gw.records.at(-1)).toMatchObject({ operation: "images", ok: true });
    expect(gw.records.at(-1)!.usage?.completionTokens).toBe(2112);
  });
});

describe("audio", () => {
  it("streams speech bytes as the provider sends them", async () => {
    const res = await client.audio.speech.create({ model: "openai/tts-1", voice: "alloy", input: "Hello there" });
    expect(res.headers.get("content-type")).toBe("audio/mpeg");
    const bytes = Buffer.from(await res.arrayBuffer());
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from([0x49, 0x44, 0x33, 0x04]));
    expect(bytes.subarray(4).toString()).toBe("Hello there");
    await gw.waitForRecords(1);
    expect(gw.records.at(-1)).toMatchObject({ operation: "speech", ok: true, model: "tts-1" });
  });

  it("uploads audio for transcription, with the provider's model name in the form", async () => {
    const file = await OpenAI.toFile(Buffer.alloc(3000, 7), "meeting.mp3", { type: "audio/mpeg" });
    const r = await client.audio.transcriptions.create({ model: "openai/gpt-4o-transcribe", file });
    expect(r.text).toBe("transcribed meeting.mp3 (3000 bytes)");
    expect(openai.requests.at(-1)!.body).toMatchObject({ model: "gpt-4o-transcribe", file: { filename: "meeting.mp3", size: 3000 } });
    expect(gw.records.at(-1)!.usage?.promptTokens).toBe(100);
    const whisper = await client.audio.transcriptions.create({ model: "openai/whisper-1", file: await OpenAI.toFile(Buffer.alloc(10), "a.wav") });
    expect(whisper.text).toBe("transcribed a.wav (10 bytes)");
  });

  it("refuses uploads over the body limit, and uploads without a file", async () => {
    const big = await OpenAI.toFile(Buffer.alloc(9 * 1024 * 1024), "long.mp3");
    await expect(client.audio.transcriptions.create({ model: "openai/whisper-1", file: big })).rejects.toMatchObject({ status: 413 });
    const res = await fetch(`${gw.url}/v1/audio/transcriptions`, { method: "POST", headers: { authorization: `Bearer ${ADMIN}` }, body: (() => { const f = new FormData(); f.set("model", "openai/whisper-1"); return f; })() });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).error.param).toBe("file");
  });
});

it("charges images, speech and transcription by their units", async () => {
  const { key, secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "units", budget: { limitUsd: 5, period: "PERIOD_DAY" } });
  const keyed = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
  const spent = async (): Promise<number> => (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd ?? 0;
  await keyed.images.generate({ model: "openai/dall-e-3", prompt: "a lighthouse", n: 2 });
  expect(await spent()).toBeCloseTo(2 * 0.04, 9); // $0.04 an image
  await (await keyed.audio.speech.create({ model: "openai/tts-1", voice: "alloy", input: "Hello there" })).arrayBuffer();
  await gw.waitForRecords(1);
  await new Promise((r) => setTimeout(r, 50));
  expect(await spent()).toBeCloseTo(0.08 + (11 / 1e6) * 15, 9); // $15 per million characters
  await keyed.audio.transcriptions.create({ model: "openai/whisper-1", file: await OpenAI.toFile(Buffer.alloc(240_000), "talk.mp3") });
  expect(await spent()).toBeCloseTo(0.08 + (11 / 1e6) * 15 + (60 / 60) * 0.006, 9); // 60 s reported, $0.006 a minute
});

it("refuses providers that do not serve the endpoint, naming them", async () => {
  const err = await client.completions.create({ model: "anthropic/claude-sonnet-4-5", prompt: "Hi" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(OpenAI.BadRequestError);
  expect((err as Error).message).toMatch(/completions is not available for provider 'anthropic'/);
  expect(anthropic.requests).toHaveLength(0);
});
