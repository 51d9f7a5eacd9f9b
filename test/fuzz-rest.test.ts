/**
 * Fuzz: the REST bridge (/v1/chat/completions, /v1/messages, /v1/embeddings,
 * /v1/responses) given arbitrary JSON, request-shaped JSON with wrong types,
 * extra fields, huge numbers and odd unicode, arbitrary bytes (invalid UTF-8,
 * truncated JSON, deep nesting) and odd header values. Every answer must be a
 * 200 (JSON, or SSE that ends cleanly or with an error event) or a 4xx/502/
 * 503/504 with the caller's protocol's error JSON: never a reset, a hang or a
 * 500. Afterwards the gateway still serves.
 *
 * Long mode: FUZZ_RUNS=<n> runs n cases per property (see test/support/fuzz.ts),
 * e.g. `FUZZ_RUNS=100000 npx vitest run test/fuzz-rest.test.ts`.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import {
  anthropicErrorProblem,
  bodyBytes,
  chatPaths,
  chatRequest,
  count,
  early,
  embeddingsPaths,
  embeddingsRequest,
  fieldValue,
  headerValue,
  jsonish,
  messagesPaths,
  messagesRequest,
  mutated,
  openAIErrorProblem,
  params,
  preview,
  report,
  responsesPaths,
  responsesRequest,
  sseEvents,
  timeoutFor,
  toJsonText,
  withDeadline,
} from "./support/fuzz.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

const KEY = "sk-gateway-fuzz-rest-0123456789";
let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gw: TestGateway;
const statuses = new Map<string, number>();

beforeAll(async () => {
  openai = await startOpenAIStandin();
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    server: { maxBodyBytes: 256 * 1024 },
    providers: [
      // Translated through the canonical form (Responses included); "oai" is OpenAI itself, whose Responses calls pass through.
      openaiProvider(openai.url, { type: "openai-compatible", models: ["gpt-4o-mini", "text-embedding-3-small"], timeouts: { firstByteMs: 5000, idleMs: 5000 } }),
      openaiProvider(openai.url, { id: "oai", models: ["gpt-4o"] }),
      { type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"], models: ["claude-sonnet-4-5"] },
    ],
  });
});

afterAll(async () => {
  report("fuzz-rest");
  console.log(`  statuses:\n${[...statuses].sort().map(([k, n]) => `    ${k}: ${n}`).join("\n")}`);
  await gw?.close();
  await openai?.close();
  await anthropic?.close();
});

type Endpoint = "/v1/chat/completions" | "/v1/messages" | "/v1/embeddings" | "/v1/responses";

const ENDPOINTS: { path: Endpoint; valid: fc.Arbitrary<Record<string, unknown>>; paths: typeof chatPaths }[] = [
  { path: "/v1/chat/completions", valid: chatRequest, paths: chatPaths },
  { path: "/v1/messages", valid: messagesRequest, paths: messagesPaths },
  { path: "/v1/embeddings", valid: embeddingsRequest, paths: embeddingsPaths },
  { path: "/v1/responses", valid: responsesRequest, paths: responsesPaths },
];

const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };

interface Answer {
  status: number;
  contentType: string;
  text: string;
}

async function post(path: string, body: Uint8Array | string, headers: Record<string, string> = auth): Promise<Answer> {
  return withDeadline(20_000, `POST ${path}`, async (signal) => {
    let res: Response;
    try {
      res = await fetch(`${gw.url}${path}`, { method: "POST", headers, body, signal });
    } catch (err) {
      throw new Error(`no answer (connection reset?): ${String((err as Error).cause ?? err)}`);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw new Error(`answer ${res.status} cut off: ${String((err as Error).cause ?? err)}`);
    }
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", text };
  });
}

/** What is wrong with an answer, or undefined. */
function problem(path: Endpoint, a: Answer): string | undefined {
  const anthropicShape = path === "/v1/messages";
  if (a.status === 200) {
    if (a.contentType.startsWith("text/event-stream")) return streamProblem(path, a.text);
    let body: unknown;
    try {
      body = JSON.parse(a.text);
    } catch {
      return "200 with a body that is not JSON";
    }
    const b = body as Record<string, unknown>;
    const expected = { "/v1/chat/completions": ["object", "chat.completion"], "/v1/messages": ["type", "message"], "/v1/embeddings": ["object", "list"], "/v1/responses": ["object", "response"] }[path];
    if (b[expected[0]!] !== expected[1]) return `200 without ${expected[0]} '${expected[1]}'`;
    return undefined;
  }
  // 5xx is allowed only for provider failures (502/503/504; Anthropic's 529 overloaded); 500 is a gateway bug.
  if (!((a.status >= 400 && a.status < 500) || [502, 503, 504, 529].includes(a.status))) return `status ${a.status}`;
  if (!a.contentType.startsWith("application/json")) return `error with content-type '${a.contentType}'`;
  let body: unknown;
  try {
    body = JSON.parse(a.text);
  } catch {
    return "error body is not JSON";
  }
  const p = anthropicShape ? anthropicErrorProblem(body) : openAIErrorProblem(body);
  if (p !== undefined) return `error body: ${p}`;
  const message = anthropicShape ? (body as { error: { message: string } }).error.message : (body as { error: { message: string } }).error.message;
  if (/internal gateway error/.test(message)) return "internal error";
  return undefined;
}

/** A 200 stream ends with its protocol's last event, or with an error event. */
function streamProblem(path: Endpoint, text: string): string | undefined {
  const events = sseEvents(text);
  if (events.length === 0) return "empty event stream";
  const last = events.at(-1)!;
  switch (path) {
    case "/v1/chat/completions":
      if (last.data === "[DONE]") return undefined;
      return /^\{"error":/.test(last.data) ? undefined : `stream ended without [DONE] or an error: ${preview(last.data)}`;
    case "/v1/messages":
      return last.event === "message_stop" || last.event === "error" ? undefined : `stream ended with event '${last.event}'`;
    case "/v1/responses":
      return last.event === "response.completed" || last.event === "response.failed" || last.event === "response.incomplete" || last.event === "error"
        ? undefined
        : `stream ended with event '${last.event}'`;
    default:
      return "an event stream from an endpoint that does not stream";
  }
}

/**
 * Requests the gateway passes on as they are but the OpenAI stand-in would
 * spend minutes and gigabytes on, in this very process: an embedding of two
 * billion dimensions, or two billion choices (it makes every one). Real
 * providers cap both (OpenAI: n <= 128).
 */
function standinBomb(v: Record<string, unknown>): boolean {
  const big = (x: unknown, limit: number): boolean => {
    const n = typeof x === "number" ? x : typeof x === "string" && x.startsWith("\u0000raw:") ? Number(x.slice(5)) : 0;
    return Number.isFinite(n) && n > limit;
  };
  return big(v["dimensions"], 4096) || big(v["n"], 128);
}

async function check(kind: string, path: Endpoint, body: Uint8Array | string, headers?: Record<string, string>): Promise<void> {
  count(`${kind} ${path}`);
  const a = await post(path, body, headers);
  const key = `${kind} ${path} ${a.status}`;
  statuses.set(key, (statuses.get(key) ?? 0) + 1);
  // The stand-ins keep every request they got; a long run must not keep them all.
  openai.requests.length = 0;
  anthropic.requests.length = 0;
  const p = problem(path, a);
  if (p !== undefined) {
    const message = `${p}\n  request: ${preview(typeof body === "string" ? body : Buffer.from(body).toString("utf8"))}\n  answer ${a.status}: ${preview(a.text)}`;
    early(`${kind} ${path}`, message);
    throw new Error(message);
  }
}

describe("found by fuzzing", () => {
  // JSON.parse takes any depth, but encoding the request for the provider (JSON.stringify, protobuf
  // Structs) ran out of stack some thousands of levels down: a 500. Now a 400 past 256 levels.
  const deepArray = (n: number) => "[".repeat(n) + "]".repeat(n);
  const bodies: Record<Endpoint, (x: string) => string> = {
    "/v1/chat/completions": (x) => `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"x":${x}}`,
    "/v1/messages": (x) => `{"model":"anthropic/claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":"hi","x":${x}}]}]}`,
    "/v1/embeddings": (x) => `{"model":"text-embedding-3-small","input":"hi","x":${x}}`,
    "/v1/responses": (x) => `{"model":"gpt-4o-mini","input":"hi","x":${x}}`,
  };
  for (const e of ENDPOINTS) {
    it(`${e.path}: a body nested 20 000 levels deep is a 400 in the caller's protocol, 200 levels is served`, async () => {
      const deep = await post(e.path, bodies[e.path](deepArray(20_000)));
      expect(deep.status).toBe(400);
      expect(problem(e.path, deep)).toBeUndefined();
      expect(deep.text).toMatch(/nested more than 256 levels deep/);
      const ok = await post(e.path, bodies[e.path](deepArray(200)));
      expect(ok.status, ok.text).toBe(200);
    });
  }

  // A value String() cannot convert ({"toString": null}) printed in an error message threw a TypeError: a 500.
  const unprintable = { toString: null, valueOf: null };
  const cases: [Endpoint, object, RegExp][] = [
    ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "system", content: "" }], tools: [{ type: { toString: null } }] }, /unsupported tool type 'an object'/],
    ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], tool_choice: { type: unprintable } }, /unsupported tool choice type 'an object'/],
    ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }], response_format: { type: unprintable } }, /response_format.type: 'an object'/],
    ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "assistant", content: null, tool_calls: [{ type: unprintable }] }] }, /unsupported tool call type 'an object'/],
    ["/v1/messages", { model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: "x" }], tools: [{ type: unprintable, name: "f", input_schema: {} }] }, /tool type 'an object' is not supported/],
    ["/v1/messages", { model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: { type: unprintable } }] }] }, /image source type 'an object'/],
    ["/v1/responses", { model: "gpt-4o-mini", input: "x", tools: [{ type: unprintable }] }, /an object/],
    ["/v1/responses", { model: "gpt-4o-mini", input: "x", text: { format: { type: unprintable } } }, /an object/],
  ];
  for (const [path, body, message] of cases) {
    it(`${path}: an unprintable value in ${Object.keys(body).at(-1)} is a 400 that says what it is`, async () => {
      const a = await post(path, JSON.stringify(body));
      expect(a.status, a.text).toBe(400);
      expect(problem(path, a)).toBeUndefined();
      expect(a.text).toMatch(message);
    });
  }
});

describe("REST bridge under fuzz", () => {
  for (const e of ENDPOINTS) {
    it(`${e.path}: arbitrary JSON values`, async () => {
      await fc.assert(fc.asyncProperty(jsonish, async (v) => check("json", e.path, toJsonText(v))), params(80, 20));
    }, timeoutFor(80, 20));

    it(`${e.path}: request-shaped JSON with wrong types, extra fields, huge numbers`, async () => {
      const shaped = mutated(e.valid, e.paths, fieldValue).filter((v) => !standinBomb(v));
      await fc.assert(fc.asyncProperty(shaped, async (v) => check("shaped", e.path, toJsonText(v))), params(250, 30));
    }, timeoutFor(250, 30));

    it(`${e.path}: arbitrary bytes, truncated JSON, invalid UTF-8`, async () => {
      await fc.assert(fc.asyncProperty(bodyBytes(e.valid), async (b) => check("bytes", e.path, b)), params(80, 20));
    }, timeoutFor(80, 20));
  }

  it("odd header values on every endpoint", async () => {
    const names = ["content-type", "x-request-id", "x-switchyard-timeout-ms", "x-switchyard-first-byte-timeout-ms", "cache-control", "x-switchyard-cache-ttl", "x-switchyard-cache-threshold", "x-session-id", "traceparent", "authorization", "content-encoding", "accept"];
    const arb = fc.tuple(
      fc.constantFrom(...ENDPOINTS),
      fc.dictionary(fc.constantFrom(...names), headerValue, { maxKeys: 4 }),
    ).chain(([e, h]) => fc.tuple(fc.constant(e), e.valid, fc.constant(h)));
    await fc.assert(fc.asyncProperty(arb, async ([e, body, h]) => {
      const headers: Record<string, string> = { ...auth, ...h };
      // An empty header is a header sent empty, not left out.
      await check("headers", e.path, toJsonText(body), headers);
    }), params(120, 30));
  }, timeoutFor(120, 30));

  it("keeps serving afterwards", async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    const a = await post("/v1/chat/completions", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "still here" }] }));
    expect(a.status).toBe(200);
    expect(JSON.parse(a.text).choices[0].message.content).toBe("echo: still here");
  });
});
