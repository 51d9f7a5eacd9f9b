import { execFileSync } from "node:child_process";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClient, userText } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";
import { startGatewayProcess } from "./support/process.ts";
import { startRedis } from "./support/redis.ts";

// The response cache end to end: exact and semantic hits through every entry
// point, the tenant boundary, Cache-Control, and what is never stored.

const ADMIN = "sy-admin-cache-test-0123456789";
const MODELS = ["gpt-4o-mini", "gpt-4o", "bow-embed"];
let standin: OpenAIStandin;

beforeAll(async () => {
  standin = await startOpenAIStandin({ models: MODELS, embeddingDimensions: 256 });
});

afterAll(async () => {
  await standin?.close();
});

beforeEach(() => standin.setBehavior(null));

/** Chat calls the stand-in has seen so far. */
const upstreamChats = (): number => standin.requests.filter((r) => r.path === "/v1/chat/completions").length;

/** A prompt no other test uses, so each test starts from a cold cache. */
let n = 0;
const fresh = (): string => `question ${++n} ${Math.random().toString(36).slice(2)}`;

describe("exact cache", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      admin: { key: ADMIN },
      cache: { mode: "exact" },
      governance: { pricing: { "gpt-4o-mini": { input: 0, output: 1000 } } },
      // openai-compatible: /v1/responses is translated (and cached) rather than passed to OpenAI's own.
      providers: [openaiProvider(standin.url, { models: MODELS, type: "openai-compatible" })],
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("answers the same request from the cache: one upstream call, identical, spec-valid answer", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: ADMIN, maxRetries: 0 });
    const q = fresh();
    const before = upstreamChats();
    const first = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: q }] }).withResponse();
    const second = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: q }] }).withResponse();
    expect(upstreamChats() - before).toBe(1);
    expect(first.response.headers.get("x-switchyard-cache")).toBe("miss");
    expect(second.response.headers.get("x-switchyard-cache")).toBe("hit");
    expect(second.data.choices).toEqual(first.data.choices);
    expect(second.data.usage).toEqual(first.data.usage);
    assertMatchesSchema("CreateChatCompletionResponse", second.data);
  });

  it("replays a hit as a well-formed stream, and serves streams and non-streams from each other's entries", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: ADMIN, maxRetries: 0 });
    const q = fresh();
    const before = upstreamChats();
    // Stored from a stream...
    const live = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: q }], stream: true });
    let liveText = "";
    for await (const c of live) liveText += c.choices[0]?.delta.content ?? "";
    // ...served to a non-stream...
    const plain = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: q }] }).withResponse();
    expect(plain.response.headers.get("x-switchyard-cache")).toBe("hit");
    expect(plain.data.choices[0]?.message.content).toBe(liveText);
    expect(plain.data.choices[0]?.finish_reason).toBe("stop");
    // ...and replayed as a stream, with usage when asked, through the raw SSE too.
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: q }], stream: true, stream_options: { include_usage: true } }),
    });
    expect(res.headers.get("x-switchyard-cache")).toBe("hit");
    const events = (await res.text()).split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as any);
    for (const c of chunks) assertMatchesSchema("CreateChatCompletionStreamResponse", c);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("")).toBe(liveText);
    expect(chunks.at(-2).choices[0].finish_reason).toBe("stop");
    expect(chunks.at(-1).choices).toEqual([]);
    expect(chunks.at(-1).usage.completion_tokens).toBeGreaterThan(0);
    expect(upstreamChats() - before).toBe(1);
  });

  it("serves hits over Connect and on Anthropic's /v1/messages", async () => {
    const q = fresh();
    const before = upstreamChats();
    const rpc = createClient({ baseUrl: gw.url, apiKey: ADMIN });
    const a = await rpc.chat.complete({ request: { model: "gpt-4o-mini", messages: [userText(q)] } });
    const b = await rpc.chat.complete({ request: { model: "gpt-4o-mini", messages: [userText(q)] } });
    expect(a.completion?.gateway?.cache).toBe("miss");
    expect(b.completion?.gateway?.cache).toBe("hit");
    expect(b.completion?.choices).toEqual(a.completion?.choices);
    let streamed = "";
    for await (const piece of rpc.streamText({ model: "gpt-4o-mini", messages: [userText(q)] })) streamed += piece;
    expect(streamed).toBe(`echo: ${q}`);
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: ADMIN, maxRetries: 0 });
    const m = await anthropic.messages.create({ model: "gpt-4o-mini", max_tokens: 4096, messages: [{ role: "user", content: q }] }).withResponse();
    expect(m.response.headers.get("x-switchyard-cache")).toBe("miss"); // max_tokens is part of the key
    const again = await anthropic.messages.create({ model: "gpt-4o-mini", max_tokens: 4096, messages: [{ role: "user", content: q }], stream: true });
    let text = "";
    for await (const e of again) if (e.type === "content_block_delta" && e.delta.type === "text_delta") text += e.delta.text;
    expect(text).toBe(`echo: ${q}`);
    expect(upstreamChats() - before).toBe(2);
  });

  it("keys on everything that changes the answer, and on nothing else", async () => {
    const q = fresh();
    const base = { model: "gpt-4o-mini", messages: [{ role: "user", content: q }] };
    expect((await chat(gw.url, ADMIN, { ...base, max_tokens: undefined })).headers.get("x-switchyard-cache")).toBe("miss");
    // Who asks and labels do not change the answer...
    expect((await chat(gw.url, ADMIN, { ...base, max_tokens: undefined, user: "someone", metadata: { a: "b" } })).headers.get("x-switchyard-cache")).toBe("hit");
    const tool = { type: "function", function: { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } } };
    const variants: object[] = [
      { tools: [tool] },
      { tools: [tool], tool_choice: "required" },
      { response_format: { type: "json_object" } },
      { reasoning_effort: "low" },
      { temperature: 0.5 },
      { model: "gpt-4o" },
      { messages: [{ role: "system", content: "be brief" }, { role: "user", content: q }] },
    ];
    for (const v of variants) {
      const r = await chat(gw.url, ADMIN, { ...base, max_tokens: undefined, ...v });
      expect([r.status, r.headers.get("x-switchyard-cache")], JSON.stringify(v)).toEqual([200, "miss"]);
    }
    // The same conversation through the Responses API is another endpoint: its own entries.
    const viaResponses = async (): Promise<string | null> => (await fetch(`${gw.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ model: "gpt-4o-mini", input: [{ role: "user", content: q }] }),
    })).headers.get("x-switchyard-cache");
    expect(await viaResponses()).toBe("miss");
    expect(await viaResponses()).toBe("hit");
    // Another name for the same target is the same request.
    expect((await chat(gw.url, ADMIN, { ...base, max_tokens: undefined, model: "openai/gpt-4o" })).headers.get("x-switchyard-cache")).toBe("hit");
  });

  it("hashes the same request to the same key in another process", async () => {
    const script = `
      import { create } from "@bufbuild/protobuf";
      import { ChatRequestSchema } from "./gen/switchyard/v1/chat_pb.ts";
      import { exactKey } from "./server/cache/key.ts";
      const req = create(ChatRequestSchema, { model: "m", temperature: 0, messages: [{ role: 3, content: [{ part: { case: "text", value: "hi" } }] }], extra: { b: 1, a: { y: 2, x: 1 } } });
      process.stdout.write(exactKey("customer:acme", "chat", "openai/gpt-4o-mini", req));`;
    const run = (): string => execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: process.cwd(), encoding: "utf8" });
    const a = run();
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(run()).toBe(a);
    const { create } = await import("@bufbuild/protobuf");
    const { ChatRequestSchema } = await import("../gen/switchyard/v1/chat_pb.ts");
    const { exactKey } = await import("../server/cache/key.ts");
    // Same fields, other insertion order in the untyped extras: same key.
    const req = create(ChatRequestSchema, { model: "m", temperature: 0, messages: [{ role: 3, content: [{ part: { case: "text", value: "hi" } }] }], extra: { a: { x: 1, y: 2 }, b: 1 } });
    expect(exactKey("customer:acme", "chat", "openai/gpt-4o-mini", req)).toBe(a);
    expect(exactKey("customer:other", "chat", "openai/gpt-4o-mini", req)).not.toBe(a);
  });

  it("keeps tenants apart: each pays for its own first call and never sees the other's entry", async () => {
    const cus = async (name: string): Promise<string> => {
      const c = await admin<any>(gw.url, ADMIN, "OrgService/CreateCustomer", { name });
      const t = await admin<any>(gw.url, ADMIN, "OrgService/CreateTeam", { name, customerId: c.customer.id });
      return (await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name, teamId: t.team.id })).secret;
    };
    const [a, b] = [await cus("a"), await cus("b")];
    const body = { messages: [{ role: "user", content: fresh() }] };
    const before = upstreamChats();
    expect((await chat(gw.url, a, body)).headers.get("x-switchyard-cache")).toBe("miss");
    expect((await chat(gw.url, b, body)).headers.get("x-switchyard-cache")).toBe("miss");
    expect((await chat(gw.url, a, body)).headers.get("x-switchyard-cache")).toBe("hit");
    expect((await chat(gw.url, b, body)).headers.get("x-switchyard-cache")).toBe("hit");
    expect(upstreamChats() - before).toBe(2);
    // Two keys of one customer share its entries (the default boundary is the customer).
    const c = await admin<any>(gw.url, ADMIN, "OrgService/CreateCustomer", { name: "c" });
    const t = await admin<any>(gw.url, ADMIN, "OrgService/CreateTeam", { name: "c", customerId: c.customer.id });
    const k1 = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "k1", teamId: t.team.id });
    const k2 = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "k2", teamId: t.team.id });
    const shared = { messages: [{ role: "user", content: fresh() }] };
    await chat(gw.url, k1.secret, shared);
    expect((await chat(gw.url, k2.secret, shared)).headers.get("x-switchyard-cache")).toBe("hit");
  });

  it("honours Cache-Control no-cache and no-store, and a shorter TTL", async () => {
    const body = { messages: [{ role: "user", content: fresh() }] };
    const before = upstreamChats();
    expect((await chat(gw.url, ADMIN, body, { "cache-control": "no-store" })).headers.get("x-switchyard-cache")).toBe("bypass");
    expect((await chat(gw.url, ADMIN, body, { "cache-control": "no-cache" })).headers.get("x-switchyard-cache")).toBe("bypass");
    expect((await chat(gw.url, ADMIN, body)).headers.get("x-switchyard-cache")).toBe("hit"); // no-cache still stored
    expect(upstreamChats() - before).toBe(2);
    const short = { messages: [{ role: "user", content: fresh() }] };
    await chat(gw.url, ADMIN, short, { "x-switchyard-cache-ttl": "1" });
    expect((await chat(gw.url, ADMIN, short)).headers.get("x-switchyard-cache")).toBe("hit");
    await new Promise((r) => setTimeout(r, 1100));
    expect((await chat(gw.url, ADMIN, short)).headers.get("x-switchyard-cache")).toBe("miss");
  });

  it("never stores errors or streams that failed mid-way", async () => {
    const body = { messages: [{ role: "user", content: fresh() }] };
    standin.setBehavior({ kind: "status", status: 500, times: 1 });
    expect((await chat(gw.url, ADMIN, body)).status).toBe(502);
    expect((await chat(gw.url, ADMIN, body)).headers.get("x-switchyard-cache")).toBe("miss");
    // An answer from a fallback is not stored under the primary target's key.
    const fallback = { messages: [{ role: "user", content: fresh() }], fallbacks: ["gpt-4o"] };
    standin.setBehavior({ kind: "status", status: 503, times: 1 });
    const served = await chat(gw.url, ADMIN, fallback);
    expect(served.headers.get("x-switchyard-model")).toBe("gpt-4o");
    expect((await chat(gw.url, ADMIN, fallback)).headers.get("x-switchyard-cache")).toBe("miss");
    const streamed = { messages: [{ role: "user", content: `${fresh()} with a longer answer to cut` }], stream: true };
    standin.setBehavior({ kind: "stream-cut", afterChunks: 2, times: 1 });
    await chat(gw.url, ADMIN, streamed);
    const again = await chat(gw.url, ADMIN, streamed);
    expect(again.headers.get("x-switchyard-cache")).toBe("miss");
  });

  it("serves hits without reserving budget, logs the saving, counts it, and purges", async () => {
    // A budget that covers exactly one answer of this size.
    const { key, secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "thrifty", budget: { limitUsd: 0.01, period: "PERIOD_DAY" } });
    const body = { messages: [{ role: "user", content: "x" }], max_tokens: 10 };
    const first = await chat(gw.url, secret, body);
    expect(first.status).toBe(200);
    const spent = (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd;
    expect(spent).toBeGreaterThan(0);
    await admin(gw.url, ADMIN, "BudgetService/SetBudget", { keyId: key.id, budget: { limitUsd: spent, period: "PERIOD_DAY" } });
    const second = await chat(gw.url, secret, body);
    expect(second.status).toBe(200);
    expect(second.headers.get("x-switchyard-cache")).toBe("hit");
    expect((await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd).toBe(spent);
    expect(gw.records.at(-1)).toMatchObject({ cacheStatus: "hit", costUsd: 0, attempts: 0 });
    expect(gw.records.at(-1)!.savedUsd).toBeCloseTo(spent, 9);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/switchyard_cache_requests_total\{status="hit"\} \d+/);
    expect(metrics).toMatch(/switchyard_cache_saved_usd_total\{mode="exact"\} [0-9.e-]+/);
    const stats = await admin<any>(gw.url, ADMIN, "CacheService/GetCacheStats", {});
    expect(Number(stats.hits)).toBeGreaterThan(0);
    expect(Number(stats.entries)).toBeGreaterThan(0);
    const purged = await admin<any>(gw.url, ADMIN, "CacheService/PurgeCache", { keyId: key.id });
    expect(Number(purged.purged)).toBe(1);
    expect((await chat(gw.url, secret, body)).status).toBe(429); // a miss again, and the budget is spent
  });
});

describe("charged hits", () => {
  it("charges hits like answers when configured, and refuses them past the budget", async () => {
    const gw = await startTestGateway({
      admin: { key: ADMIN },
      cache: { mode: "exact", chargeHits: true },
      governance: { pricing: { "gpt-4o-mini": { input: 0, output: 1000 } } },
      providers: [openaiProvider(standin.url, { models: MODELS })],
    });
    try {
      // "echo: hi" is 2 tokens at $0.001: the budget covers the answer and one charged hit.
      const { key, secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "payer", budget: { limitUsd: 0.004, period: "PERIOD_DAY" } });
      const body = { messages: [{ role: "user", content: "hi" }], max_tokens: 2 };
      expect((await chat(gw.url, secret, body)).headers.get("x-switchyard-cache")).toBe("miss");
      expect((await chat(gw.url, secret, body)).headers.get("x-switchyard-cache")).toBe("hit");
      const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
      expect(b.spentUsd).toBeCloseTo(0.004, 9);
      const refused = await chat(gw.url, secret, body);
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe("budget_exceeded");
    } finally {
      await gw.close();
    }
  });
});

describe("semantic cache", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway({
      admin: { key: ADMIN },
      cache: { mode: "semantic", semantic: { embeddingModel: "openai/bow-embed", threshold: 0.9 } },
      providers: [openaiProvider(standin.url, { models: MODELS })],
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  const ask = (content: string, extra: object = {}) => chat(gw.url, ADMIN, { messages: [{ role: "user", content }], temperature: 0, max_tokens: undefined, ...extra });

  it("answers paraphrases above the threshold, marked with their similarity", async () => {
    const before = upstreamChats();
    expect((await ask("What is the capital city of France?")).headers.get("x-switchyard-cache")).toBe("miss");
    const near = await ask("what is the capital city of france, please");
    expect(near.headers.get("x-switchyard-cache")).toBe("semantic-hit");
    expect(Number(near.headers.get("x-switchyard-cache-similarity"))).toBeGreaterThanOrEqual(0.9);
    expect(near.body.choices[0].message.content).toBe("echo: What is the capital city of France?");
    expect(upstreamChats() - before).toBe(1);
  });

  it("refuses a caller over its limits before paying for an embedding", async () => {
    const { secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "limited", limits: { rpm: 1 } });
    const body = (content: string) => ({ messages: [{ role: "user", content }], temperature: 0, max_tokens: undefined });
    expect((await chat(gw.url, secret, body("what colour is the sky on mars"))).status).toBe(200);
    const embeddings = (): number => standin.requests.filter((r) => r.path === "/v1/embeddings").length;
    const before = embeddings();
    expect((await chat(gw.url, secret, body("what colour is the sky on venus"))).status).toBe(429);
    expect(embeddings()).toBe(before);
  });

  it("never matches across system prompts or conversation history", async () => {
    const sys = (content: string) => ({ role: "system", content });
    await chat(gw.url, ADMIN, { messages: [sys("Translate to French."), { role: "user", content: "good morning my friend" }], temperature: 0, max_tokens: undefined });
    const other = await chat(gw.url, ADMIN, { messages: [sys("Translate to German."), { role: "user", content: "good morning my friend" }], temperature: 0, max_tokens: undefined });
    expect(other.headers.get("x-switchyard-cache")).toBe("miss");
    const same = await chat(gw.url, ADMIN, { messages: [sys("Translate to French."), { role: "user", content: "good morning, my friend!" }], temperature: 0, max_tokens: undefined });
    expect(same.headers.get("x-switchyard-cache")).toBe("semantic-hit");
  });

  it("does not answer unrelated prompts, other models, tools or non-zero temperatures", async () => {
    await ask("How do I bake sourdough bread at home?");
    expect((await ask("What is the boiling point of water at sea level?")).headers.get("x-switchyard-cache")).toBe("miss");
    expect((await ask("how do I bake sourdough bread at home", { model: "gpt-4o" })).headers.get("x-switchyard-cache")).toBe("miss");
    const tool = { type: "function", function: { name: "bake", parameters: { type: "object" } } };
    expect((await ask("how do I bake sourdough bread at home", { tools: [tool] })).headers.get("x-switchyard-cache")).toBe("miss");
    expect((await ask("how do I bake sourdough bread at home", { temperature: 0.7 })).headers.get("x-switchyard-cache")).toBe("miss");
    // A near paraphrase hits at the configured threshold; a caller may raise it (not lower it), and then it misses.
    expect((await ask("how do I bake sourdough bread at home, please")).headers.get("x-switchyard-cache")).toBe("semantic-hit");
    const strict = await chat(gw.url, ADMIN, { messages: [{ role: "user", content: "please how do I bake sourdough bread at home" }], temperature: 0 }, { "x-switchyard-cache-threshold": "0.999" });
    expect(strict.headers.get("x-switchyard-cache")).toBe("miss");
    const loose = await chat(gw.url, ADMIN, { messages: [{ role: "user", content: "bake bread" }], temperature: 0 }, { "x-switchyard-cache-threshold": "0.1" });
    expect(loose.headers.get("x-switchyard-cache")).toBe("miss");
  });
});

describe("cache shared through Redis", () => {
  it("serves on one gateway process an entry stored through another, exact and semantic", async () => {
    const redis = await startRedis();
    const config = {
      admin: { key: ADMIN },
      providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"], models: MODELS }],
      governance: { store: "redis", redis: { url: redis.url, prefix: "cache-shared" } },
      cache: { mode: "both", semantic: { embeddingModel: "openai/bow-embed", threshold: 0.9 } },
      requestLog: { enabled: false },
    };
    const [a, b] = await Promise.all([startGatewayProcess(config), startGatewayProcess(config)]);
    try {
      const body = { messages: [{ role: "user", content: fresh() }] };
      const before = upstreamChats();
      expect((await chat(a.url, ADMIN, body)).headers.get("x-switchyard-cache")).toBe("miss");
      await new Promise((r) => setTimeout(r, 100)); // the store write is not awaited by the answer
      expect((await chat(b.url, ADMIN, body)).headers.get("x-switchyard-cache")).toBe("hit");
      expect(upstreamChats() - before).toBe(1);
      // The prompt's vector reaches the other instance's index through Redis within a second.
      const q = { messages: [{ role: "user", content: "Which river runs through the city of Paris?" }], temperature: 0 };
      expect((await chat(a.url, ADMIN, q)).headers.get("x-switchyard-cache")).toBe("miss");
      await new Promise((r) => setTimeout(r, 1000));
      const near = await chat(b.url, ADMIN, { ...q, messages: [{ role: "user", content: "which river runs through the city of paris, please" }] });
      expect(near.headers.get("x-switchyard-cache")).toBe("semantic-hit");
      expect(upstreamChats() - before).toBe(2);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
      await redis.stop();
    }
  });
});
