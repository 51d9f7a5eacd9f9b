import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, userText } from "../sdk-ts/src/index.ts";
import type { ConfigInput } from "../server/config/schema.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, adminCall, chat, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { startRedis } from "./support/redis.ts";

// Virtual keys, budgets and rate limits end to end: keys made through the
// admin API (Connect JSON), inference through REST (OpenAI and Anthropic
// formats) and RPC, on both governance stores.

const ADMIN = "sy-admin-test-key-0123456789";
/** $0.001 per output token, prompts free: "hi" answers "echo: hi" (2 tokens) = $0.002 with max_tokens 2. */
const PRICING = { "gpt-4o-mini": { input: 0, output: 1000 }, "gpt-4o": { input: 1000, output: 1000 } };
const COST = 0.002;

let standin: OpenAIStandin;
let redis: Awaited<ReturnType<typeof startRedis>> | undefined;

beforeAll(async () => {
  standin = await startOpenAIStandin({ models: ["gpt-4o-mini", "gpt-4o", "my-finetune"] });
});

afterAll(async () => {
  await standin?.close();
  await redis?.stop();
});

beforeEach(() => standin.setBehavior(null));

type StoreKind = "embedded" | "redis";

async function governanceFor(kind: StoreKind): Promise<ConfigInput["governance"]> {
  if (kind === "embedded") return { pricing: PRICING };
  redis ??= await startRedis();
  return { store: "redis", redis: { url: redis.url, prefix: `t${randomUUID().slice(0, 8)}` }, pricing: PRICING };
}

describe.each<StoreKind>(["embedded", "redis"])("governance (%s store)", (kind) => {
  let gw: TestGateway;
  let governance: ConfigInput["governance"];
  const dataDir = mkdtempSync(join(tmpdir(), "sy-gov-"));

  beforeAll(async () => {
    governance = await governanceFor(kind);
    gw = await startTestGateway({ dataDir, admin: { key: ADMIN }, governance, providers: [openaiProvider(standin.url)] });
  });

  afterAll(async () => {
    await gw?.close();
  });

  const createKey = (body: object = {}): Promise<CreatedKey> => admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "test", ...body });

  it("serves a virtual key from Authorization, x-api-key and api-key, and refuses other keys with 401", async () => {
    const { key, secret } = await createKey();
    expect(secret).toMatch(/^sk-sy-[A-Za-z0-9_-]{43}$/);
    expect(key.hint).not.toContain(secret.slice(9, -4));
    expect((await chat(gw.url, secret)).status).toBe(200);
    expect((await chat(gw.url, undefined, {}, { "x-api-key": secret })).status).toBe(200);
    expect((await chat(gw.url, undefined, {}, { "api-key": secret })).status).toBe(200);
    const records = gw.records.slice(-3);
    expect(records.every((r) => r.principal === key.id)).toBe(true);

    const missing = await chat(gw.url, undefined);
    expect(missing.status).toBe(401);
    expect(missing.body.error.code).toBe("invalid_api_key");
    const wrong = await chat(gw.url, `sk-sy-${"A".repeat(43)}`);
    expect(wrong.status).toBe(401);
    const malformed = await chat(gw.url, "sk-sy-' OR 1=1 --");
    expect(malformed.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain("AAAA");
  });

  it("refuses revoked, disabled and expired keys with 403, at once", async () => {
    const a = await createKey();
    expect((await chat(gw.url, a.secret)).status).toBe(200);
    await admin(gw.url, ADMIN, "KeyService/RevokeKey", { id: a.key.id });
    const revoked = await chat(gw.url, a.secret);
    expect(revoked.status).toBe(403);
    expect(revoked.body.error.message).toMatch(/revoked/);

    const b = await createKey();
    await admin(gw.url, ADMIN, "KeyService/UpdateKey", { id: b.key.id, enabled: false });
    expect((await chat(gw.url, b.secret)).body.error.message).toMatch(/disabled/);
    await admin(gw.url, ADMIN, "KeyService/UpdateKey", { id: b.key.id, enabled: true });
    expect((await chat(gw.url, b.secret)).status).toBe(200);

    const c = await createKey({ expiresAt: new Date(Date.now() + 1500).toISOString() });
    expect((await chat(gw.url, c.secret)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1600));
    const expired = await chat(gw.url, c.secret);
    expect(expired.status).toBe(403);
    expect(expired.body.error.message).toMatch(/expired/);
  });

  it("rotates a key: the old secret stops working, the new one works, the id stays", async () => {
    const a = await createKey();
    const rotated = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/RotateKey", { id: a.key.id });
    expect(rotated.key.id).toBe(a.key.id);
    expect(rotated.secret).not.toBe(a.secret);
    expect((await chat(gw.url, a.secret)).status).toBe(401);
    expect((await chat(gw.url, rotated.secret)).status).toBe(200);
  });

  it("enforces allowed models and providers with 403", async () => {
    const { secret } = await createKey({ allowedModels: ["gpt-4o-mini"] });
    expect((await chat(gw.url, secret)).status).toBe(200);
    expect((await chat(gw.url, secret, { model: "openai/gpt-4o-mini" })).status).toBe(200);
    const other = await chat(gw.url, secret, { model: "gpt-4o" });
    expect(other.status).toBe(403);
    expect(other.body.error).toMatchObject({ type: "permission_error", code: "permission_denied" });
    // A fallback the caller names is a model it asks for, too, and lends nothing to the model asked.
    expect((await chat(gw.url, secret, { fallbacks: ["gpt-4o"] })).status).toBe(403);
    expect((await chat(gw.url, secret, { model: "gpt-4o", fallbacks: ["gpt-4o-mini"] })).status).toBe(403);
    const exact = await createKey({ allowedModels: ["openai/gpt-4o-mini"] });
    expect((await chat(gw.url, exact.secret, { model: "gpt-4o-mini" })).status).toBe(200);
    expect((await chat(gw.url, exact.secret, { model: "gpt-4o", fallbacks: ["openai/gpt-4o-mini"] })).status).toBe(403);

    // The model list shows a key what it may use.
    const listed = await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${secret}` } }).then((r) => r.json()) as { data: { id: string }[] };
    expect(listed.data.map((m) => m.id)).toEqual(["openai/gpt-4o-mini"]);
    const wild = await createKey({ allowedModels: ["gpt-4o*"] });
    expect((await chat(gw.url, wild.secret, { model: "gpt-4o" })).status).toBe(200);
    const noProvider = await createKey({ allowedProviders: ["anthropic"] });
    expect((await chat(gw.url, noProvider.secret)).status).toBe(403);
  });

  it("stops a key at its budget with 429 budget_exceeded, and reports spend exactly", async () => {
    const { key, secret } = await createKey({ budget: { limitUsd: COST * 5, period: "PERIOD_DAY" } });
    for (let i = 0; i < 5; i++) expect((await chat(gw.url, secret)).status).toBe(200);
    const refused = await chat(gw.url, secret);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: "insufficient_quota", code: "budget_exceeded" });
    expect(refused.body.error.message).toMatch(/budget of this API key is exhausted/);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(86_400);
    const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(b.spentUsd).toBeCloseTo(COST * 5, 9);
    expect(b.remainingUsd ?? 0).toBeCloseTo(0, 9);
    expect(b.inFlight ?? 0).toBe(0);
    // The refused request reached no provider and cost nothing.
    expect(gw.records.at(-1)).toMatchObject({ ok: false, errorCode: "budget_exceeded", attempts: 0, costUsd: 0 });
    expect(gw.records.at(-2)!.costUsd).toBeCloseTo(COST, 12);
  });

  it("charges every level: a customer's budget stops its teams' keys", async () => {
    const cus = await admin<any>(gw.url, ADMIN, "OrgService/CreateCustomer", { name: "acme", budget: { limitUsd: COST * 3, period: "PERIOD_MONTH" } });
    const team = await admin<any>(gw.url, ADMIN, "OrgService/CreateTeam", { name: "research", customerId: cus.customer.id });
    const k1 = await createKey({ teamId: team.team.id });
    const k2 = await createKey({ teamId: team.team.id });
    expect((await chat(gw.url, k1.secret)).status).toBe(200);
    expect((await chat(gw.url, k2.secret)).status).toBe(200);
    expect((await chat(gw.url, k1.secret)).status).toBe(200);
    const refused = await chat(gw.url, k2.secret);
    expect(refused.status).toBe(429);
    expect(refused.body.error.message).toMatch(/customer/);
    const t = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { teamId: team.team.id });
    expect(t.spentUsd).toBeCloseTo(COST * 3, 9);
    const rec = gw.records.at(-2)!;
    expect(rec.team).toBe(team.team.id);
    expect(rec.customer).toBe(cus.customer.id);
  });

  it("limits requests per minute with 429, Retry-After and x-ratelimit headers", async () => {
    const { secret } = await createKey({ limits: { rpm: 3 } });
    const first = await chat(gw.url, secret);
    expect(first.status).toBe(200);
    expect(first.headers.get("x-ratelimit-limit-requests")).toBe("3");
    expect(first.headers.get("x-ratelimit-remaining-requests")).toBe("2");
    expect(first.headers.get("x-ratelimit-reset-requests")).toMatch(/^\d+(\.\d)?s$|^\d+ms$/);
    expect((await chat(gw.url, secret)).status).toBe(200);
    expect((await chat(gw.url, secret)).status).toBe(200);
    const refused = await chat(gw.url, secret);
    expect(refused.status).toBe(429);
    expect(refused.body.error).toMatchObject({ type: "rate_limit_error", code: "rate_limit_exceeded" });
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get("x-ratelimit-remaining-requests")).toBe("0");
  });

  it("limits tokens per minute, and says when one request can never fit", async () => {
    const { secret } = await createKey({ limits: { tpm: "100" } });
    const ok = await chat(gw.url, secret);
    expect(ok.status).toBe(200);
    expect(ok.headers.get("x-ratelimit-limit-tokens")).toBe("100");
    const huge = await chat(gw.url, secret, { max_tokens: 500 });
    expect(huge.status).toBe(429);
    expect(huge.body.error.message).toMatch(/lower max_tokens/);
    expect(huge.headers.get("retry-after")).toBeNull();
    // Waiting cannot help: the official SDKs are told not to retry.
    expect(huge.headers.get("x-should-retry")).toBe("false");
  });

  it("charges a stream cut without usage by its bytes, never more than its reservation", async () => {
    const { key, secret } = await createKey({ budget: { limitUsd: 1, period: "PERIOD_NONE" } });
    // The stand-in answers 4 characters a token, cut at max_tokens: 30 tokens are 120 characters,
    // which the gateway's byte estimate (a token per 3 bytes, erring high) would call 40 tokens.
    const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(400) }], max_tokens: 30, stream: true });
    const send = () => fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${secret}` }, body }).then((r) => r.text());
    const events = (await send()).split("\n\n").filter((e) => e.startsWith("data: {")).length;
    const before = (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd;
    expect(before).toBeCloseTo(0.03, 9); // with usage: exactly 30 tokens
    // Now cut after every content and the finish chunk, before the usage chunk.
    standin.setBehavior({ kind: "stream-cut", afterChunks: events, times: 1 });
    try {
      const text = await send();
      expect(text).toContain("xxxx");
      expect(text).not.toContain("[DONE]");
    } finally {
      standin.setBehavior(null);
    }
    await expect.poll(async () => (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd - before).toBeGreaterThan(0);
    const charged = (await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).spentUsd - before;
    expect(charged).toBeLessThanOrEqual(0.03 + 1e-12);
  });

  it("caps requests in flight", async () => {
    const { secret } = await createKey({ limits: { maxConcurrent: 1 } });
    standin.setBehavior({ kind: "delay", ms: 300, times: 1 });
    const slow = chat(gw.url, secret);
    await new Promise((r) => setTimeout(r, 100));
    const second = await chat(gw.url, secret);
    expect(second.status).toBe(429);
    expect(second.body.error.message).toMatch(/in flight/);
    expect((await slow).status).toBe(200);
    expect((await chat(gw.url, secret)).status).toBe(200);
  });

  it("settles streams from their usage, asked for or not", async () => {
    const { key, secret } = await createKey({ budget: { limitUsd: 1, period: "PERIOD_NONE" } });
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
    for (const include of [false, true]) {
      const stream = await client.chat.completions.create({
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 2,
        stream: true,
        ...(include ? { stream_options: { include_usage: true } } : {}),
      });
      let text = "";
      for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
      expect(text).toBe("echo: hi");
    }
    const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(b.spentUsd).toBeCloseTo(COST * 2, 9);
    expect(b.reservedUsd ?? 0).toBe(0);
  });

  it("charges a stream the caller abandons, and holds nothing once it is gone", async () => {
    const { key, secret } = await createKey({ budget: { limitUsd: 1, period: "PERIOD_NONE" }, limits: { maxConcurrent: 1 } });
    standin.setBehavior({ kind: "slow-stream", gapMs: 100, times: 1 });
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "a long question to stream slowly" }], max_tokens: 50, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await waitFor(async () => ((await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).inFlight ?? 0) === 0, 3000);
    const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(b.reservedUsd ?? 0).toBe(0);
    // The provider bills a stream it started: it is charged, not released.
    expect(b.spentUsd).toBeGreaterThan(0);
    expect((await chat(gw.url, secret)).status).toBe(200); // the concurrency slot is free again
  });

  it("keeps the request log from tenants", async () => {
    const { secret } = await createKey();
    const res = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${secret}` },
      body: "{}",
    });
    expect(res.status).toBe(403);
    const asAdmin = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: "{}",
    });
    expect(asAdmin.status).toBe(200);
  });

  it("releases the reservation of a failed request without charging it", async () => {
    const { key, secret } = await createKey({ budget: { limitUsd: 1, period: "PERIOD_NONE" } });
    standin.setBehavior({ kind: "status", status: 500, times: 1 });
    expect((await chat(gw.url, secret)).status).toBe(502);
    const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(b.spentUsd ?? 0).toBe(0);
    expect(b.reservedUsd ?? 0).toBe(0);
    expect(b.inFlight ?? 0).toBe(0);
  });

  it("answers Anthropic's format on /v1/messages: 401, 429 budget as Anthropic errors", async () => {
    const { secret } = await createKey({ budget: { limitUsd: COST, period: "PERIOD_HOUR" } });
    const client = new Anthropic({ baseURL: gw.url, apiKey: secret, maxRetries: 0 });
    const msg = await client.messages.create({ model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "hi" }] });
    expect(msg.content[0]).toMatchObject({ type: "text", text: "echo: hi" });
    const err = await client.messages.create({ model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "hi" }] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.RateLimitError);
    expect((err as InstanceType<typeof Anthropic.RateLimitError>).error).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
    const bad = new Anthropic({ baseURL: gw.url, apiKey: "sk-sy-nope", maxRetries: 0 });
    await expect(bad.messages.create({ model: "gpt-4o-mini", max_tokens: 2, messages: [{ role: "user", content: "hi" }] })).rejects.toBeInstanceOf(Anthropic.AuthenticationError);
  });

  it("maps refusals to Connect codes over RPC", async () => {
    const { key, secret } = await createKey({ allowedModels: ["gpt-4o-mini"], budget: { limitUsd: COST, period: "PERIOD_NONE" } });
    const client = createClient({ baseUrl: gw.url, apiKey: secret });
    const req = { model: "gpt-4o-mini", messages: [userText("hi")], maxTokens: 2 };
    const ok = await client.chat.complete({ request: req });
    expect(JSON.stringify(ok.completion?.choices[0]?.message?.content)).toContain("echo: hi");
    const code = async (c: ReturnType<typeof createClient>, model: string): Promise<Code> =>
      c.chat.complete({ request: { ...req, model } }).then(() => -1 as Code, (e: unknown) => ConnectError.from(e).code);
    expect(await code(client, "gpt-4o-mini")).toBe(Code.ResourceExhausted);
    expect(await code(client, "gpt-4o")).toBe(Code.PermissionDenied);
    expect(await code(createClient({ baseUrl: gw.url, apiKey: "sk-sy-wrong" }), "gpt-4o-mini")).toBe(Code.Unauthenticated);
    await admin(gw.url, ADMIN, "KeyService/RevokeKey", { id: key.id });
    expect(await code(client, "gpt-4o-mini")).toBe(Code.PermissionDenied);
  });

  it("guards the admin services with the admin key", async () => {
    const { secret } = await createKey();
    const asKey = await adminCall(gw.url, secret, "KeyService/ListKeys", {});
    expect(asKey.status).toBe(403);
    expect(asKey.body).toMatchObject({ code: "permission_denied" });
    expect((await adminCall(gw.url, undefined, "KeyService/ListKeys", {})).status).toBe(401);
    const list = await admin<any>(gw.url, ADMIN, "KeyService/ListKeys", { pageSize: 1000 });
    // Secrets are shown once, at creation; lists carry hints only.
    expect(JSON.stringify(list)).not.toContain(secret);
    expect(JSON.stringify(list)).not.toMatch(/"hash"/);
  });

  it("refuses unpriced models under a budget, and counts them as free without one", async () => {
    const budgeted = await createKey({ budget: { limitUsd: 10, period: "PERIOD_DAY" } });
    const r = await chat(gw.url, budgeted.secret, { model: "openai/my-finetune" });
    expect(r.status).toBe(403);
    expect(r.body.error.message).toMatch(/no price is known/);
    const free = await createKey();
    const served = await chat(gw.url, free.secret, { model: "openai/my-finetune" });
    expect(served.status).toBe(200);
    expect(gw.records.at(-1)!.costUsd).toBe(0);
  });

  if (kind === "embedded") {
    it("keeps keys and spend across a restart", async () => {
      const { key, secret } = await createKey({ budget: { limitUsd: 1, period: "PERIOD_NONE" } });
      expect((await chat(gw.url, secret)).status).toBe(200);
      await gw.close();
      gw = await startTestGateway({ dataDir, admin: { key: ADMIN }, governance, providers: [openaiProvider(standin.url)] });
      expect((await chat(gw.url, secret)).status).toBe(200);
      const b = await admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
      expect(b.spentUsd).toBeCloseTo(COST * 2, 9);
    });
  }

  if (kind === "redis") {
    it("shares keys and revocations between instances within a second", async () => {
      const other = await startTestGateway({ admin: { key: ADMIN }, governance, providers: [openaiProvider(standin.url)] });
      try {
        const { key, secret } = await createKey();
        await waitFor(async () => (await chat(other.url, secret)).status === 200, 1000);
        await admin(gw.url, ADMIN, "KeyService/RevokeKey", { id: key.id });
        const t0 = Date.now();
        await waitFor(async () => (await chat(other.url, secret)).status === 403, 1000);
        expect(Date.now() - t0).toBeLessThan(1000);
      } finally {
        await other.close();
      }
    });
  }
});

describe("an unreachable Redis", () => {
  it("fails closed and fast: 503 for virtual keys it cannot look up, and the store gauge at 0", async () => {
    // A port nothing listens on.
    const gw = await startTestGateway({
      admin: { key: ADMIN },
      governance: { store: "redis", redis: { url: "redis://127.0.0.1:1", commandTimeoutMs: 200 } },
      providers: [openaiProvider(standin.url)],
    });
    try {
      const t0 = Date.now();
      const r = await chat(gw.url, `sk-sy-${"B".repeat(43)}`);
      expect(r.status).toBe(503);
      expect(r.body.error.message).toMatch(/cannot check keys and budgets/);
      expect(Date.now() - t0).toBeLessThan(2000);
      // Degraded, not out of rotation: keys already known are served on local counters (test/governance-degraded.test.ts).
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: "degraded" });
      expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/switchyard_governance_store_up 0/);
    } finally {
      await gw.close();
    }
  });

  it("with whenStoreDown refusing both, is not ready at all", async () => {
    const gw = await startTestGateway({
      admin: { key: ADMIN },
      governance: { store: "redis", redis: { url: "redis://127.0.0.1:1", commandTimeoutMs: 200 }, whenStoreDown: { rateLimits: "refuse", budgets: "refuse" } },
      providers: [openaiProvider(standin.url)],
    });
    try {
      const t0 = Date.now();
      const r = await chat(gw.url, `sk-sy-${"B".repeat(43)}`);
      expect(r.status).toBe(503);
      expect(r.body.error.message).toMatch(/cannot check keys and budgets/);
      expect(Date.now() - t0).toBeLessThan(2000);
      const ready = await fetch(`${gw.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: "not_ready", reason: "governance store unreachable" });
      expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/switchyard_governance_store_up 0/);
      // The admin key is not governed: it still works.
      expect((await chat(gw.url, ADMIN)).status).toBe(200);
    } finally {
      await gw.close();
    }
  });
});

describe("open gateway", () => {
  it("serves local traffic without keys until a key exists, then refuses without one", async () => {
    const gw = await startTestGateway({ providers: [openaiProvider(standin.url)] });
    try {
      expect(gw.isOpen()).toBe(true);
      expect((await chat(gw.url, undefined)).status).toBe(200);
    } finally {
      await gw.close();
    }
    const locked = await startTestGateway({ admin: { key: ADMIN }, providers: [openaiProvider(standin.url)] });
    try {
      expect(locked.isOpen()).toBe(false);
      expect((await chat(locked.url, undefined)).status).toBe(401);
      expect((await chat(locked.url, ADMIN)).status).toBe(200);
    } finally {
      await locked.close();
    }
  });
});

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
