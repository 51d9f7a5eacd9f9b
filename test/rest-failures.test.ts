import * as net from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// Bad input from callers and failures of the provider: each gets a clear
// error in OpenAI's shape with the right status, and the gateway keeps serving.

const GATEWAY_KEY = "sk-gateway-test-key-0123456789";
let standin: OpenAIStandin;
let gw: TestGateway;
let deadPort: number;
let gwDead: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    server: { maxBodyBytes: 64 * 1024 },
    auth: { keys: [GATEWAY_KEY] },
    providers: [openaiProvider(standin.url, { timeouts: { firstByteMs: 300, idleMs: 300 } })],
  });
  // A port nobody listens on: connection refused.
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  deadPort = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  gwDead = await startTestGateway({
    providers: [openaiProvider(`http://127.0.0.1:${deadPort}/v1`, { models: ["gpt-4o-mini"] })],
  });
});

afterAll(async () => {
  await gw?.close();
  await gwDead?.close();
  await standin?.close();
});

beforeEach(() => standin.setBehavior(null));

const auth = { authorization: `Bearer ${GATEWAY_KEY}`, "content-type": "application/json" };
const chat = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

async function call(body: string | object, headers: Record<string, string> = auth, path = "/v1/chat/completions", base = gw.url) {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: { error: { message: string; type: string; param: string | null; code: string | null } } | undefined;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, error: json?.error };
}

async function stillServing(base = gw.url): Promise<void> {
  const res = await fetch(`${base}/healthz`);
  expect(res.status).toBe(200);
}

describe("bad input", () => {
  const cases: { name: string; body: string | object; status: number; param?: string | null; message: RegExp }[] = [
    { name: "invalid JSON", body: "{not json", status: 400, param: null, message: /not valid JSON/ },
    { name: "empty body", body: "", status: 400, message: /empty/ },
    { name: "body is an array", body: [1, 2], status: 400, message: /expected an object/ },
    { name: "missing messages", body: { model: "gpt-4o-mini" }, status: 400, param: "messages", message: /messages: required/ },
    { name: "missing model", body: { messages: chat.messages }, status: 400, param: "model", message: /model: required/ },
    { name: "wrong-typed model", body: { ...chat, model: 42 }, status: 400, param: "model", message: /expected a string/ },
    { name: "wrong-typed temperature", body: { ...chat, temperature: "hot" }, status: 400, param: "temperature", message: /expected a number/ },
    { name: "bad role", body: { ...chat, messages: [{ role: "wizard", content: "x" }] }, status: 400, param: "messages[0].role", message: /wizard/ },
    {
      name: "unsupported content part",
      body: { ...chat, messages: [{ role: "user", content: [{ type: "video", video: {} }] }] },
      status: 400,
      param: "messages[0].content[0].type",
      message: /unsupported content part type 'video'/,
    },
    // With one provider and no declared model list, the name goes to that provider, which answers 404.
    { name: "model unknown to the provider", body: { ...chat, model: "nobody/knows" }, status: 404, message: /nobody\/knows/ },
    { name: "stream not a boolean", body: { ...chat, stream: "yes" }, status: 400, param: "stream", message: /boolean/ },
    // Names of Object.prototype members are model names like any other, never a crash.
    { name: "model named constructor", body: { ...chat, model: "constructor" }, status: 404, message: /constructor/ },
    { name: "model named __proto__", body: { ...chat, model: "__proto__" }, status: 404, message: /__proto__/ },
    {
      name: "a number JSON cannot carry in an untyped field",
      body: '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"x"}],"some_option":{"n":1e400}}',
      status: 400,
      param: "some_option.n",
      message: /out of range/,
    },
  ];
  for (const c of cases) {
    it(`${c.name} -> ${c.status}`, async () => {
      const r = await call(c.body);
      expect(r.status).toBe(c.status);
      assertMatchesSchema("ErrorResponse", { error: r.error });
      expect(r.error!.message).toMatch(c.message);
      if (c.param !== undefined) expect(r.error!.param).toBe(c.param);
      await stillServing();
    });
  }

  it("a body over the size limit -> 413, by content-length and while streaming in", async () => {
    const big = { ...chat, messages: [{ role: "user", content: "x".repeat(100 * 1024) }] };
    const r = await call(big);
    expect(r.status).toBe(413);
    expect(r.error!.code).toBe("request_too_large");
    // Chunked upload without content-length: refused once the limit is crossed.
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: new ReadableStream({
        start(controller) {
          const piece = new TextEncoder().encode("x".repeat(16 * 1024));
          for (let i = 0; i < 8; i++) controller.enqueue(piece);
          controller.close();
        },
      }),
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(413);
    await res.text();
    await stillServing();
  });

  it("a model no configured provider serves -> 404 from the gateway itself", async () => {
    const r = await call({ ...chat, model: "gpt-5-turbo" }, { "content-type": "application/json" }, "/v1/chat/completions", gwDead.url);
    expect(r.status).toBe(404);
    expect(r.error).toMatchObject({ code: "model_not_found", param: "model" });
    expect(r.error!.message).toMatch(/'gpt-5-turbo' is not served by any configured provider/);
  });

  it("a model id with broken percent-encoding -> 404, not a crash", async () => {
    const res = await fetch(`${gw.url}/v1/models/%E0%A4%A`, { headers: auth });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/percent-encoding/);
  });

  it("unknown path -> 404, wrong method -> 405", async () => {
    const r = await call(chat, auth, "/v1/chat/complete");
    expect(r.status).toBe(404);
    expect(r.error!.message).toMatch(/Unknown request URL: POST \/v1\/chat\/complete/);
    const res = await fetch(`${gw.url}/v1/embeddings`, { headers: auth });
    expect(res.status).toBe(405);
    await res.text();
  });

  it("missing or wrong gateway key -> 401, from any of the three headers", async () => {
    const none = await call(chat, { "content-type": "application/json" });
    expect(none.status).toBe(401);
    expect(none.error!.code).toBe("invalid_api_key");
    const wrong = await call(chat, { authorization: "Bearer sk-wrong", "content-type": "application/json" });
    expect(wrong.status).toBe(401);
    expect(wrong.text).not.toContain("sk-wrong");
    for (const h of ["x-api-key", "api-key"]) {
      const ok = await call(chat, { [h]: GATEWAY_KEY, "content-type": "application/json" });
      expect(ok.status).toBe(200);
    }
  });

  it("the official SDK sees typed errors", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0 });
    await expect(client.chat.completions.create({ model: "nobody/knows", messages: [{ role: "user", content: "x" }] })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    const bad = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });
});

describe("upstream failures", () => {
  it("provider 500 -> 502 upstream_error", async () => {
    standin.setBehavior({ kind: "status", status: 500 });
    const r = await call(chat);
    expect(r.status).toBe(502);
    expect(r.error).toMatchObject({ type: "upstream_error", code: "upstream_error" });
    expect(r.error!.message).toMatch(/provider 'openai' failed \(HTTP 500\)/);
  });

  it("provider 503 overloaded -> 503", async () => {
    standin.setBehavior({ kind: "status", status: 503 });
    const r = await call(chat);
    expect(r.status).toBe(503);
    expect(r.error!.message).toMatch(/unavailable/);
  });

  it("provider 429 -> 429 with Retry-After passed on", async () => {
    standin.setBehavior({ kind: "status", status: 429, headers: { "retry-after": "7" } });
    const r = await call(chat);
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("7");
    expect(r.error!.type).toBe("rate_limit_error");
  });

  it("provider 401 (the gateway's own key is bad) -> 502, without echoing the provider's message", async () => {
    standin.setBehavior({ kind: "status", status: 401 });
    const r = await call(chat);
    expect(r.status).toBe(502);
    expect(r.error!.message).toMatch(/rejected the gateway's credentials/);
    expect(r.text).not.toContain("sk-test");
  });

  it("provider 400 -> 400 with the provider's message and param", async () => {
    standin.setBehavior({
      kind: "status",
      status: 400,
      body: { error: { message: "This model's maximum context length is 128000 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } },
    });
    const r = await call(chat);
    expect(r.status).toBe(400);
    expect(r.error).toMatchObject({ param: "messages", code: "context_length_exceeded" });
  });

  it("connection refused -> 502", async () => {
    const r = await call(chat, { "content-type": "application/json" }, "/v1/chat/completions", gwDead.url);
    expect(r.status).toBe(502);
    expect(r.error!.message).toMatch(/could not reach provider 'openai' \(ECONNREFUSED\)/);
    expect(r.text).not.toContain(String(deadPort)); // no upstream URLs in errors
    await stillServing(gwDead.url);
  });

  it("a provider that hangs past the first-byte timeout -> 504", async () => {
    standin.setBehavior({ kind: "hang" });
    const started = Date.now();
    const r = await call(chat);
    expect(r.status).toBe(504);
    expect(r.error!.type).toBe("timeout_error");
    expect(Date.now() - started).toBeLessThan(3000);
    await stillServing();
  });

  it("a caller's timeout headers tighten the provider's timeouts, never loosen them", async () => {
    standin.setBehavior({ kind: "delay", ms: 200, path: "/v1/chat/completions" });
    expect((await call(chat)).status).toBe(200); // provider first-byte timeout is 300 ms
    const tight = await call(chat, { ...auth, "x-switchyard-first-byte-timeout-ms": "50" });
    expect(tight.status).toBe(504);
    expect(tight.error!.message).toMatch(/within 50 ms/);
    // undici checks its pool timeouts on a coarse clock (about half a second), so this delay is well past 300 ms.
    standin.setBehavior({ kind: "delay", ms: 1500, path: "/v1/chat/completions" });
    const loose = await call(chat, { ...auth, "x-switchyard-first-byte-timeout-ms": "5000" });
    expect(loose.status).toBe(504);
    expect(loose.error!.message).toMatch(/within 300 ms/);
    const bad = await call(chat, { ...auth, "x-switchyard-timeout-ms": "soon" });
    expect(bad.status).toBe(400);
    expect(bad.error!.param).toBe("x-switchyard-timeout-ms");
  });

  it("a stream cut mid-way ends with an error event, never [DONE]", async () => {
    standin.setBehavior({ kind: "stream-cut", afterChunks: 3 });
    const r = await call({ ...chat, stream: true });
    expect(r.status).toBe(200);
    const events = r.text.split("\n\n").filter(Boolean);
    expect(events.length).toBeGreaterThan(1);
    expect(r.text).not.toContain("[DONE]");
    const last = JSON.parse(events.at(-1)!.slice("data: ".length));
    assertMatchesSchema("ErrorResponse", last);
    expect(last.error.message).toMatch(/provider 'openai'/);
    await gw.waitForRecords(1);
    expect(gw.records.at(-1)).toMatchObject({ ok: false, errorCode: "upstream_error", operation: "chat_stream" });
  });

  it("an error event inside a 200 stream is an error for the caller", async () => {
    standin.setBehavior({ kind: "stream-error", afterChunks: 2 });
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: GATEWAY_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({ ...chat, messages: [{ role: "user", content: "hi" }], stream: true });
    await expect((async () => {
      for await (const _ of stream) { /* drain */ }
    })()).rejects.toThrow(/mid-stream/);
  });

  it("a stream whose provider goes silent past the idle timeout ends with an error event", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 2000 });
    const r = await call({ ...chat, stream: true });
    expect(r.status).toBe(200);
    expect(r.text).not.toContain("[DONE]");
    expect(r.text).toMatch(/sent nothing for 300 ms/);
  });

  it("an upstream failure before the stream starts is a plain HTTP error", async () => {
    standin.setBehavior({ kind: "status", status: 500 });
    const r = await call({ ...chat, stream: true });
    expect(r.status).toBe(502);
    expect(r.headers.get("content-type")).toMatch(/^application\/json/);
  });

  it("a caller who disconnects mid-stream aborts the upstream request", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 100 });
    const before = standin.aborted;
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ ...chat, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read(); // the first event arrived
    ac.abort();
    await standin.waitForAborted(before + 1, 3000);
    await gw.waitForRecords(1);
    await stillServing();
  });
});
