import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import * as net from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ConfigInput } from "../server/config/schema.ts";
import { startOpenAIStandin, type OpenAIStandin, type RecordedRequest } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// Fault injection through the gateway: two OpenAI stand-ins, A (provider `a`,
// the primary) and B (provider `b`, the fallback). For each failure of A the
// tests check what the client sees (status, body, x-switchyard-* headers, the
// gateway info over RPC), which targets were tried (the stand-ins' recorded
// requests) and the circuit breakers (RoutingService.GetHealth over Connect
// JSON, and /metrics).

const KEY = "sk-gateway-routing-test-0123456789";
const AUTH = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
// Provider health is admin data: read with the admin key.
const ADMIN = "sy-admin-routing-test-0123456789";
const ADMIN_AUTH = { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" };
const MODEL = "gpt-4o-mini";
const A_TARGET = "a/gpt-4o-mini";
const B_TARGET = "b/gpt-4o-mini";
const MESSAGES = [{ role: "user", content: "Say hello" }];

let A: OpenAIStandin;
let B: OpenAIStandin;
const gateways: TestGateway[] = [];
const servers: Server[] = [];

beforeAll(async () => {
  A = await startOpenAIStandin({ apiKeys: ["sk-a1", "sk-a2"], models: [MODEL] });
  B = await startOpenAIStandin({ apiKeys: ["sk-b"], models: [MODEL] });
});

afterAll(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await A?.close();
  await B?.close();
});

beforeEach(() => {
  A.setBehavior(null);
  B.setBehavior(null);
  A.requests.length = 0;
  B.requests.length = 0;
});

type Routing = NonNullable<ConfigInput["routing"]>;
type Provider = NonNullable<ConfigInput["providers"]>[number];

function providerA(extra: Record<string, unknown> = {}): Provider {
  return { id: "a", type: "openai", baseUrl: A.url, keys: ["sk-a1"], models: [MODEL], timeouts: { firstByteMs: 300, idleMs: 300 }, ...extra } as Provider;
}
function providerB(): Provider {
  return { id: "b", type: "openai", baseUrl: B.url, keys: ["sk-b"], models: [MODEL] } as Provider;
}

/** A gateway with providers a and b, route `chat` = a/gpt-4o-mini then b/gpt-4o-mini. */
async function gateway(routing: Routing = {}, extra: Partial<ConfigInput> = {}): Promise<TestGateway> {
  const gw = await startTestGateway({
    auth: { keys: [KEY] },
    admin: { key: ADMIN },
    providers: [providerA(), providerB()],
    routes: { chat: { targets: [{ model: A_TARGET }], fallbacks: [B_TARGET] } },
    routing: { retries: 1, backoffMs: 10, maxBackoffMs: 50, ...routing },
    requestLog: { enabled: false },
    ...extra,
  });
  gateways.push(gw);
  return gw;
}

const chatCalls = (s: { requests: RecordedRequest[] }) => s.requests.filter((r) => r.path === "/v1/chat/completions");

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
  ms: number;
}

async function post(gw: TestGateway, body: unknown, headers: Record<string, string> = AUTH, path = "/v1/chat/completions"): Promise<Reply> {
  const t0 = performance.now();
  const res = await fetch(`${gw.url}${path}`, { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json, ms: performance.now() - t0 };
}

const chat = (gw: TestGateway, extra: Record<string, unknown> = {}, headers?: Record<string, string>) =>
  post(gw, { model: "chat", messages: MESSAGES, ...extra }, headers);

/** SSE data payloads of a finished stream, in order ("[DONE]" kept as a string). */
function events(text: string): unknown[] {
  return text
    .split("\n\n")
    .map((e) => e.trim())
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice("data: ".length))
    .map((d) => (d === "[DONE]" ? d : JSON.parse(d)));
}

function streamedText(evs: unknown[]): string {
  return evs
    .filter((e): e is { choices: { delta: { content?: string } }[] } => typeof e === "object" && e !== null && "choices" in e)
    .map((e) => e.choices[0]?.delta.content ?? "")
    .join("");
}

function expectServedBy(r: Reply, tried: string[]): void {
  expect(r.headers.get("x-switchyard-tried")).toBe(tried.join(","));
  expect(r.headers.get("x-switchyard-attempts")).toBe(String(tried.length));
  expect(r.headers.get("x-switchyard-provider")).toBe(tried.at(-1)!.split("/")[0]);
}

/** What B answers for the same request (the stand-in's answers are deterministic in content). */
const B_ANSWER_PREFIX = /\S/;

// ---------------------------------------------------------------- health over RPC and /metrics

type WireState = "CIRCUIT_STATE_CLOSED" | "CIRCUIT_STATE_HALF_OPEN" | "CIRCUIT_STATE_OPEN";
interface WireHealth {
  providers?: {
    provider: string;
    keys?: { index?: number; state?: WireState; inFlight?: number; coolingUntilMs?: string }[];
    targets?: { model: string; state?: WireState }[];
  }[];
}

async function health(gw: TestGateway): Promise<WireHealth> {
  const res = await fetch(`${gw.url}/switchyard.v1.RoutingService/GetHealth`, { method: "POST", headers: ADMIN_AUTH, body: "{}" });
  expect(res.status).toBe(200);
  return (await res.json()) as WireHealth;
}

async function targetState(gw: TestGateway, provider: string, model = MODEL): Promise<WireState | undefined> {
  const h = await health(gw);
  return h.providers?.find((p) => p.provider === provider)?.targets?.find((t) => t.model === model)?.state;
}

async function keyHealth(gw: TestGateway, provider: string) {
  const h = await health(gw);
  return (h.providers?.find((p) => p.provider === provider)?.keys ?? []).map((k) => ({
    index: k.index ?? 0,
    state: k.state,
    coolingUntilMs: Number(k.coolingUntilMs ?? 0),
  }));
}

/** switchyard_circuit_state for one provider target: 0 closed, 1 half-open, 2 open. */
async function circuitMetric(gw: TestGateway, provider: string, scope: "target" | "key", name: string): Promise<number | undefined> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith("switchyard_circuit_state{") && l.includes(`provider="${provider}"`) && l.includes(`scope="${scope}"`) && l.includes(`name="${name}"`));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

async function metricValue(gw: TestGateway, name: string, labels: string[]): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
  return line === undefined ? 0 : Number(line.split(" ").at(-1));
}

// ---------------------------------------------------------------- a scriptable upstream for answers the stand-in cannot give

interface Scripted {
  url: string;
  hits: number;
}

/** A tiny OpenAI-shaped server whose every chat answer comes from `answer`. */
async function scripted(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<Scripted> {
  const s: Scripted = { url: "", hits: 0 };
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      s.hits++;
      answer(req, res);
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  servers.push(server);
  s.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/v1`;
  return s;
}

async function deadPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

// ================================================================ upstream failures, retried then fallen back

describe("A fails, the gateway retries A once and falls back to B", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  it.each([
    [500, "upstream_error"],
    [502, "upstream_error"],
    [503, "upstream_unavailable"],
  ])("A answers %i: A twice, then B serves", async (status) => {
    A.setBehavior({ kind: "status", status });
    const r = await chat(gw);
    expect(r.status).toBe(200);
    expect(r.json.object).toBe("chat.completion");
    expect(r.json.choices[0].message.content).toMatch(B_ANSWER_PREFIX);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    expect(chatCalls(A)).toHaveLength(2);
    expect(chatCalls(B)).toHaveLength(1);
    // B gets the model name it knows, and its own key.
    expect((chatCalls(B)[0]!.body as { model: string }).model).toBe(MODEL);
    expect(chatCalls(B)[0]!.headers.authorization).toBe("Bearer sk-b");
    // The gateway's own field never goes upstream.
    expect(chatCalls(A)[0]!.body).not.toHaveProperty("fallbacks");
  });

  it("A answers 503 and there is no fallback: the client gets 503 naming both attempts", async () => {
    A.setBehavior({ kind: "status", status: 503 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe("upstream_unavailable");
    expect(r.json.error.message).toContain("after 2 attempts: a/gpt-4o-mini, a/gpt-4o-mini");
    expect(chatCalls(A)).toHaveLength(2);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("A answers 429 with Retry-After: retried after the hint (capped by maxBackoffMs), then B", async () => {
    A.setBehavior({ kind: "status", status: 429 }); // the stand-in's 429 carries retry-after: 1
    const r = await chat(gw);
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    const [first, second] = chatCalls(A);
    expect(second).toBeDefined();
    // retry-after: 1 s, but a wait is capped at 4 x maxBackoffMs (200 ms here); never the jittered <= 50 ms.
    expect(second!.receivedAt - first!.receivedAt).toBeGreaterThanOrEqual(150);
    expect(chatCalls(B)).toHaveLength(1);
  });

  it("A resets the connection mid-body (JSON answer cut): A twice, then B", async () => {
    A.setBehavior({ kind: "stream-cut", afterChunks: 0 });
    const r = await chat(gw);
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    expect(chatCalls(A)).toHaveLength(2);
  });

  it("A hangs before its headers: each attempt times out after firstByteMs, then B", async () => {
    A.setBehavior({ kind: "hang" });
    const aborted = A.aborted;
    const r = await chat(gw);
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    expect(r.ms).toBeGreaterThanOrEqual(2 * 300);
    // Both hung upstream requests were abandoned by the gateway.
    await A.waitForAborted(aborted + 2);
    expect(chatCalls(B)).toHaveLength(1);
  });

  it("A hangs before its headers and nothing else may serve: 504", async () => {
    A.setBehavior({ kind: "hang" });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(504);
    expect(r.json.error.code).toBe("upstream_timeout");
    expect(r.json.error.message).toMatch(/did not answer within 300 ms/);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("a stream cut before its first chunk falls back, and the client sees one clean stream", async () => {
    A.setBehavior({ kind: "stream-cut", afterChunks: 0 });
    const r = await chat(gw, { stream: true });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toMatch(/text\/event-stream/);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    const evs = events(r.text);
    expect(evs.at(-1)).toBe("[DONE]");
    expect(evs.some((e) => typeof e === "object" && e !== null && "error" in e)).toBe(false);
    // Exactly one answer (B's), not a prefix of A's followed by B's.
    const ids = new Set(evs.filter((e): e is { id: string } => typeof e === "object" && e !== null && "id" in e).map((e) => e.id));
    expect(ids.size).toBe(1);
    expect(streamedText(evs).length).toBeGreaterThan(0);
    expect(chatCalls(A)).toHaveLength(2);
    expect(chatCalls(B)).toHaveLength(1);
  });

  it("an error event before the first chunk falls back like a cut", async () => {
    A.setBehavior({ kind: "stream-error", afterChunks: 0 });
    const r = await chat(gw, { stream: true });
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    expect(events(r.text).at(-1)).toBe("[DONE]");
  });

  it("A stalls mid-stream (beyond idleMs) after its first chunk: the client gets an error event, no fallback", async () => {
    A.setBehavior({ kind: "slow-stream", gapMs: 2000 });
    const r = await chat(gw, { stream: true });
    expect(r.status).toBe(200);
    // Committed to A at the first chunk: no other target was tried.
    expectServedBy(r, [A_TARGET]);
    const evs = events(r.text);
    expect(evs.length).toBeGreaterThanOrEqual(2);
    expect(evs).not.toContain("[DONE]");
    const last = evs.at(-1) as { error?: { code: string; message: string } };
    expect(last.error?.code).toBe("upstream_timeout");
    expect(last.error?.message).toMatch(/sent nothing for 300 ms/);
    expect(chatCalls(A)).toHaveLength(1);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("a stream cut after its first chunk ends in an error event, no fallback", async () => {
    A.setBehavior({ kind: "stream-cut", afterChunks: 2 });
    const r = await chat(gw, { stream: true });
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET]);
    const evs = events(r.text);
    expect(evs).not.toContain("[DONE]");
    expect((evs.at(-1) as { error?: unknown }).error).toBeDefined();
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("the gateway info over RPC (Connect JSON) carries the same attempts and tried", async () => {
    A.setBehavior({ kind: "status", status: 500 });
    const r = await post(gw, { request: { model: "chat", messages: [{ role: "ROLE_USER", content: [{ text: "Say hello" }] }] } }, AUTH,
      "/switchyard.v1.ChatService/Complete");
    expect(r.status).toBe(200);
    expect(r.json.completion.gateway.provider).toBe("b");
    expect(r.json.completion.gateway.attempts).toBe(3);
    expect(r.json.completion.gateway.tried).toEqual([A_TARGET, A_TARGET, B_TARGET]);
  });

  it("retries and fallbacks are counted in /metrics", async () => {
    const retries0 = await metricValue(gw, "switchyard_retries_total", ['operation="chat"']);
    const fallbacks0 = await metricValue(gw, "switchyard_fallbacks_total", ['operation="chat"', 'provider="b"']);
    A.setBehavior({ kind: "status", status: 500 });
    expect((await chat(gw)).status).toBe(200);
    expect(await metricValue(gw, "switchyard_retries_total", ['operation="chat"'])).toBe(retries0 + 1);
    expect(await metricValue(gw, "switchyard_fallbacks_total", ['operation="chat"', 'provider="b"'])).toBe(fallbacks0 + 1);
  });
});

describe("answers the stand-in cannot give, and a closed port", () => {
  let gw: TestGateway;
  let malformed: Scripted;
  let no429: Scripted;
  beforeAll(async () => {
    malformed = await scripted((_req, res) => {
      const body = '{"id": "chatcmpl-broken", "object": "chat.comp';
      res.writeHead(200, { "content-type": "application/json", "content-length": String(body.length) });
      res.end(body);
    });
    no429 = await scripted((_req, res) => {
      const body = JSON.stringify({ error: { message: "Rate limit reached", type: "requests", param: null, code: "rate_limit_exceeded" } });
      res.writeHead(429, { "content-type": "application/json" }); // no retry-after
      res.end(body);
    });
    const dead = await deadPort();
    const p = (id: string, baseUrl: string) => ({ id, type: "openai", baseUrl, keys: ["sk-x"], models: [MODEL] }) as Provider;
    gw = await startTestGateway({
      auth: { keys: [KEY] },
      admin: { key: ADMIN },
      providers: [p("m", malformed.url), p("r", no429.url), p("d", `http://127.0.0.1:${dead}/v1`), providerB()],
      routes: {
        malformed: { targets: [{ model: "m/gpt-4o-mini" }], fallbacks: [B_TARGET] },
        limited: { targets: [{ model: "r/gpt-4o-mini" }], fallbacks: [B_TARGET] },
        dead: { targets: [{ model: "d/gpt-4o-mini" }], fallbacks: [B_TARGET] },
      },
      routing: { retries: 1, backoffMs: 10, maxBackoffMs: 50 },
      requestLog: { enabled: false },
    });
    gateways.push(gw);
  });

  it("A answers 200 with a body that is not JSON: retried, then B", async () => {
    malformed.hits = 0;
    const r = await post(gw, { model: "malformed", messages: MESSAGES });
    expect(r.status).toBe(200);
    expectServedBy(r, ["m/gpt-4o-mini", "m/gpt-4o-mini", B_TARGET]);
    expect(malformed.hits).toBe(2);
    expect(chatCalls(B)).toHaveLength(1);
  });

  it("A answers 429 without Retry-After: retried after a short jittered backoff, then B", async () => {
    no429.hits = 0;
    const r = await post(gw, { model: "limited", messages: MESSAGES });
    expect(r.status).toBe(200);
    expectServedBy(r, ["r/gpt-4o-mini", "r/gpt-4o-mini", B_TARGET]);
    expect(no429.hits).toBe(2);
    // backoffMs 10, maxBackoffMs 50: no second-long wait without a hint.
    expect(r.ms).toBeLessThan(1000);
  });

  it("A's port is closed (connection refused): retried, then B", async () => {
    const r = await post(gw, { model: "dead", messages: MESSAGES });
    expect(r.status).toBe(200);
    expectServedBy(r, ["d/gpt-4o-mini", "d/gpt-4o-mini", B_TARGET]);
  });

  it("A's port is closed and there is no fallback: 502 after both attempts", async () => {
    const r = await post(gw, { model: "d/gpt-4o-mini", messages: MESSAGES });
    expect(r.status).toBe(502);
    expect(r.json.error.code).toBe("upstream_error");
    expect(r.json.error.message).toContain("after 2 attempts");
    expect(chatCalls(B)).toHaveLength(0);
  });
});

// ================================================================ final answers

describe("the caller's own mistakes and the gateway's own refusals are final", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  it("A answers 400: passed on, not retried, not fallen back", async () => {
    A.setBehavior({
      kind: "status",
      status: 400,
      body: { error: { message: "Invalid value for 'temperature'", type: "invalid_request_error", param: "temperature", code: "invalid_value" } },
    });
    const r = await chat(gw);
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe("temperature");
    expect(r.json.error.code).toBe("invalid_value");
    expect(chatCalls(A)).toHaveLength(1);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("an invalid request never reaches any provider", async () => {
    const r = await chat(gw, { messages: [{ role: "wizard", content: "hi" }] });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe("messages[0].role");
    const empty = await chat(gw, { messages: [] });
    expect(empty.status).toBe(400);
    expect(chatCalls(A)).toHaveLength(0);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("a per-request fallback naming an unknown model fails the request before anything is sent", async () => {
    const r = await chat(gw, { fallbacks: ["nowhere/gpt-4o-mini"] });
    expect(r.status).toBe(404);
    expect(r.json.error.code).toBe("model_not_found");
    expect(chatCalls(A)).toHaveLength(0);
  });

  it("the gateway's own 401 (missing key) never falls back", async () => {
    const r = await chat(gw, {}, { "content-type": "application/json" });
    expect(r.status).toBe(401);
    expect(r.headers.get("x-switchyard-tried")).toBeNull();
    expect(chatCalls(A)).toHaveLength(0);
    expect(chatCalls(B)).toHaveLength(0);
  });
});

// ================================================================ per-request fallbacks

describe("per-request fallbacks", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  it("`fallbacks` in the OpenAI body: a plain model falls back to them", async () => {
    A.setBehavior({ kind: "status", status: 503 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES, fallbacks: [B_TARGET] });
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET, B_TARGET]);
    expect(chatCalls(B)[0]!.body).not.toHaveProperty("fallbacks");
  });

  it("`fallbacks` in the RPC ChatRequest", async () => {
    A.setBehavior({ kind: "status", status: 502 });
    const r = await post(gw, {
      request: { model: A_TARGET, messages: [{ role: "ROLE_USER", content: [{ text: "Say hello" }] }], fallbacks: [B_TARGET] },
    }, AUTH, "/switchyard.v1.ChatService/Complete");
    expect(r.status).toBe(200);
    expect(r.json.completion.gateway.tried).toEqual([A_TARGET, A_TARGET, B_TARGET]);
    expect(r.json.completion.gateway.attempts).toBe(3);
    expect(chatCalls(B)).toHaveLength(1);
  });

  it("without `fallbacks` the same failure reaches the client", async () => {
    A.setBehavior({ kind: "status", status: 502 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(502);
    expect(chatCalls(B)).toHaveLength(0);
  });
});

// ================================================================ Retry-After, deadline, keys

describe("retry timing", () => {
  it("a 429 with retry-after: 1 delays the retry about 1 s", async () => {
    const gw = await gateway({ maxBackoffMs: 5000 });
    A.setBehavior({ kind: "status", status: 429, times: 1 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET]);
    const [first, second] = chatCalls(A);
    const gap = second!.receivedAt - first!.receivedAt;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(1500);
  });

  it("a Retry-After beyond the deadline is not waited for: the 429 is final at once", async () => {
    const gw = await gateway({ maxBackoffMs: 5000, deadlineMs: 300 });
    A.setBehavior({ kind: "status", status: 429 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(429);
    expect(r.headers.get("retry-after")).toBe("1");
    expect(r.ms).toBeLessThan(500);
    expect(chatCalls(A)).toHaveLength(1);
  });

  it("no attempt, retry or fallback, starts after the deadline", async () => {
    const gw = await gateway({ deadlineMs: 200 });
    A.setBehavior({ kind: "hang" });
    const r = await chat(gw);
    // The first attempt timed out (firstByteMs 300) after the 200 ms deadline: neither A again nor B.
    expect(r.status).toBe(504);
    expect(r.json.error.message).toContain("after 1 attempt: a/gpt-4o-mini");
    expect(chatCalls(A)).toHaveLength(1);
    expect(chatCalls(B)).toHaveLength(0);
  });

  it("two keys on A: a 429 on one key moves the retry, and the next requests, to the other key", async () => {
    const gw = await gateway({}, { providers: [providerA({ keys: ["sk-a1", "sk-a2"] }), providerB()] });
    A.setBehavior({ kind: "status", status: 429, times: 1 });
    const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(200);
    expectServedBy(r, [A_TARGET, A_TARGET]);
    const [limited, retried] = chatCalls(A).map((q) => q.headers.authorization);
    expect(retried).not.toBe(limited);
    // The limited key cools down for its Retry-After (1 s): the next requests all use the other one,
    // though round-robin alone would alternate.
    for (let i = 0; i < 4; i++) expect((await post(gw, { model: A_TARGET, messages: MESSAGES })).status).toBe(200);
    expect(chatCalls(A).slice(2).map((q) => q.headers.authorization)).toEqual([retried, retried, retried, retried]);
    const limitedIndex = limited === "Bearer sk-a1" ? 0 : 1;
    const keys = await keyHealth(gw, "a");
    expect(keys.find((k) => k.index === limitedIndex)!.coolingUntilMs).toBeGreaterThan(Date.now());
    expect(keys.find((k) => k.index !== limitedIndex)!.coolingUntilMs).toBe(0);
  });
});

// ================================================================ circuit breakers

describe("circuit breaker", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await gateway({ retries: 0, breaker: { minRequests: 3, failureRate: 0.5, cooldownMs: 300, windowMs: 10_000 } });
  });

  it("opens after enough failures, skips A while open, lets one probe through after the cool-down, and closes on its success", async () => {
    A.setBehavior({ kind: "status", status: 500 });
    for (let i = 0; i < 3; i++) {
      const r = await chat(gw);
      expect(r.status).toBe(200);
      expectServedBy(r, [A_TARGET, B_TARGET]);
    }
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    expect(await circuitMetric(gw, "a", "target", MODEL)).toBe(2);
    expect(await circuitMetric(gw, "a", "key", "0")).toBe(2);
    expect(await targetState(gw, "b")).toBe("CIRCUIT_STATE_CLOSED");
    expect(await circuitMetric(gw, "b", "target", MODEL)).toBe(0);

    // Open: A is skipped entirely, B serves at the first attempt.
    A.setBehavior(null);
    const before = chatCalls(A).length;
    for (let i = 0; i < 3; i++) {
      const r = await chat(gw);
      expect(r.status).toBe(200);
      expectServedBy(r, [B_TARGET]);
    }
    expect(chatCalls(A)).toHaveLength(before);

    // After the cool-down: half-open, and exactly one probe goes to A.
    await new Promise((r) => setTimeout(r, 350));
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_HALF_OPEN");
    expect(await circuitMetric(gw, "a", "target", MODEL)).toBe(1);
    A.setBehavior({ kind: "delay", ms: 150, times: 1 }); // slow, but inside A's 300 ms first-byte timeout
    const probe = chat(gw);
    while (chatCalls(A).length === before) await new Promise((r) => setTimeout(r, 5));
    const meanwhile = await chat(gw);
    expectServedBy(meanwhile, [B_TARGET]); // the probe is in flight: nobody else goes to A
    const p = await probe;
    expect(p.status).toBe(200);
    expectServedBy(p, [A_TARGET]);
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_CLOSED");
    expect(await circuitMetric(gw, "a", "target", MODEL)).toBe(0);
    expectServedBy(await chat(gw), [A_TARGET]);
    expect(chatCalls(A)).toHaveLength(before + 2);
  });

  it("a failed probe opens the breaker again", async () => {
    A.setBehavior({ kind: "status", status: 503 });
    for (let i = 0; i < 3; i++) await chat(gw);
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    await new Promise((r) => setTimeout(r, 350));
    const before = chatCalls(A).length;
    expectServedBy(await chat(gw), [A_TARGET, B_TARGET]); // the probe, which fails
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    expectServedBy(await chat(gw), [B_TARGET]);
    expect(chatCalls(A)).toHaveLength(before + 1);
    // Leave it closed for whoever comes next.
    A.setBehavior(null);
    await new Promise((r) => setTimeout(r, 350));
    expectServedBy(await chat(gw), [A_TARGET]);
  });

  it("with every target open, the client gets 503 with Retry-After and no upstream call", async () => {
    const solo = await gateway({ retries: 0, breaker: { minRequests: 2, failureRate: 0.5, cooldownMs: 5000, windowMs: 10_000 } });
    A.setBehavior({ kind: "status", status: 500 });
    for (let i = 0; i < 2; i++) expect((await post(solo, { model: A_TARGET, messages: MESSAGES })).status).toBe(502);
    const before = chatCalls(A).length;
    const r = await post(solo, { model: A_TARGET, messages: MESSAGES });
    expect(r.status).toBe(503);
    expect(r.json.error.message).toMatch(/circuits are open|open circuit/);
    expect(Number(r.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(chatCalls(A)).toHaveLength(before);
  });

  // Regression: only the half-open probe may close a breaker; a late success of a call admitted
  // before it opened must not.
  it("a success of a call admitted before the breaker opened does not close it", async () => {
    const slow = await gateway({ retries: 0, breaker: { minRequests: 3, failureRate: 0.5, cooldownMs: 10_000, windowMs: 10_000 } }, {
      providers: [providerA({ timeouts: { firstByteMs: 2000 } }), providerB()],
    });
    A.setBehavior({ kind: "delay", ms: 500, times: 1 });
    const early = chat(slow); // admitted while closed; succeeds late
    while (chatCalls(A).length === 0) await new Promise((r) => setTimeout(r, 5));
    A.setBehavior({ kind: "status", status: 500 });
    for (let i = 0; i < 3; i++) expectServedBy(await chat(slow), [A_TARGET, B_TARGET]);
    expect(await targetState(slow, "a")).toBe("CIRCUIT_STATE_OPEN");
    expectServedBy(await early, [A_TARGET]);
    // Still inside the 10 s cool-down, and no probe was ever admitted.
    expect(await targetState(slow, "a")).toBe("CIRCUIT_STATE_OPEN");
  });
});

describe("a caller who disconnects mid-stream", () => {
  it("aborts the upstream request, and the breaker does not count it as a failure", async () => {
    // minRequests 1: a single counted failure would open the breaker.
    const gw = await gateway({ retries: 0, breaker: { minRequests: 1, failureRate: 0.5, cooldownMs: 10_000 } }, {
      providers: [providerA({ timeouts: { idleMs: 10_000 } }), providerB()],
    });
    // One success first (A then has a breaker window; were the cancels below counted as failures, 3 of 4 would open it).
    expectServedBy(await chat(gw), [A_TARGET]);
    A.setBehavior({ kind: "slow-stream", gapMs: 200 });
    const aborted = A.aborted;
    for (let i = 0; i < 3; i++) {
      const ac = new AbortController();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: AUTH,
        body: JSON.stringify({ model: "chat", messages: MESSAGES, stream: true }),
        signal: ac.signal,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("x-switchyard-tried")).toBe(A_TARGET);
      const reader = res.body!.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toContain("data: ");
      ac.abort();
      await A.waitForAborted(aborted + i + 1);
    }
    expect(chatCalls(B)).toHaveLength(0);
    expect(chatCalls(A)).toHaveLength(4);
    // Give the gateway a moment to finish its bookkeeping of the last stream.
    await new Promise((r) => setTimeout(r, 50));
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_CLOSED");
    expect(await circuitMetric(gw, "a", "target", MODEL)).toBe(0);
    expect((await keyHealth(gw, "a"))[0]!.state).toBe("CIRCUIT_STATE_CLOSED");

    // The same breaker does open on real failures (so the check above means something). The four
    // streams that reached their first chunk count as successes; four failures then reach the 50 % rate.
    A.setBehavior({ kind: "status", status: 500, times: 4 });
    for (let i = 0; i < 4; i++) expectServedBy(await chat(gw), [A_TARGET, B_TARGET]);
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    expectServedBy(await chat(gw), [B_TARGET]);
  });

  // Regression: a caller who leaves tells nothing about the provider; an abandoned half-open probe
  // must free the probe slot without closing the breaker.
  it("a half-open probe abandoned by its caller does not close the breaker", async () => {
    const gw = await gateway({ retries: 0, breaker: { minRequests: 2, failureRate: 0.5, cooldownMs: 300 } });
    A.setBehavior({ kind: "status", status: 500, times: 2 });
    for (let i = 0; i < 2; i++) expect((await post(gw, { model: A_TARGET, messages: MESSAGES })).status).toBe(502);
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    await new Promise((r) => setTimeout(r, 350));
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_HALF_OPEN");
    A.setBehavior({ kind: "hang" }); // still down
    const aborted = A.aborted;
    const ac = new AbortController();
    const probe = fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST", headers: AUTH, body: JSON.stringify({ model: A_TARGET, messages: MESSAGES }), signal: ac.signal,
    }).catch(() => undefined);
    while (chatCalls(A).length < 3) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    await probe;
    await A.waitForAborted(aborted + 1);
    await new Promise((r) => setTimeout(r, 50));
    expect(await targetState(gw, "a")).not.toBe("CIRCUIT_STATE_CLOSED");
  });
});

describe("observability of a target that never served", () => {
  // Regression: a target failing since start-up (exactly when its breaker opens) is labelled by its model.
  it("switchyard_circuit_state names an open target by its model even before it served anything", async () => {
    const gw = await gateway({ retries: 0, breaker: { minRequests: 2, failureRate: 0.5, cooldownMs: 10_000 } });
    A.setBehavior({ kind: "status", status: 500 });
    for (let i = 0; i < 2; i++) expect((await post(gw, { model: A_TARGET, messages: MESSAGES })).status).toBe(502);
    expect(await targetState(gw, "a")).toBe("CIRCUIT_STATE_OPEN");
    expect(await circuitMetric(gw, "a", "target", MODEL)).toBe(2);
  });
});

describe("timeout precision", () => {
  // Regression: undici's own headersTimeout runs on a coarse clock (about half a second late); the
  // gateway keeps its own precise first-byte timer.
  it("a hung provider is given up on within firstByteMs + 150 ms", async () => {
    const gw = await gateway({ retries: 0 });
    A.setBehavior({ kind: "hang" });
    const took: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await post(gw, { model: A_TARGET, messages: MESSAGES });
      expect(r.status).toBe(504);
      took.push(r.ms);
    }
    expect(Math.min(...took)).toBeGreaterThanOrEqual(290);
    expect(Math.max(...took)).toBeLessThanOrEqual(450);
  });
});
