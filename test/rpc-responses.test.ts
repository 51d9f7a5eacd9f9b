import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, type Protocol } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// switchyard.v1.ResponsesService over Connect and gRPC against the real
// gateway: the same responses, events and stored conversations as
// POST /v1/responses, and the same errors mapped to RPC codes.

const ADMIN = "sy-admin-rpc-responses-0123456789";
const MODEL = "openai/gpt-4o-mini";
let openai: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  openai = await startOpenAIStandin();
  gw = await startTestGateway({ admin: { key: ADMIN }, providers: [openaiProvider(openai.url, { type: "openai-compatible" })] });
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
});

beforeEach(() => openai.setBehavior(null));

/** /v1/responses[path] over REST, as an OpenAI client would call it. */
async function rest(method: "GET" | "POST" | "DELETE", path: string, body?: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}/v1/responses${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function outputText(response: Record<string, unknown>): string {
  const output = response["output"] as { type: string; content?: { type: string; text?: string }[] }[];
  return output.flatMap((o) => (o.type === "message" ? (o.content ?? []) : [])).map((c) => c.text ?? "").join("");
}

async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ConnectError);
  return (err as ConnectError).code;
}

for (const protocol of ["connect", "grpc"] satisfies Protocol[]) {
  describe(`over ${protocol}`, () => {
    const sy = () => createClient({ baseUrl: gw.url, apiKey: ADMIN, protocol });

    it("CreateResponse answers with the Response object and gateway info", async () => {
      const { response, gateway } = await sy().responses.createResponse({ body: { model: MODEL, input: "Say hello", instructions: "Be brief." } });
      expect(response).toMatchObject({ object: "response", status: "completed", model: "gpt-4o-mini", instructions: "Be brief.", store: true });
      expect(response?.["id"]).toMatch(/^resp_/);
      expect(outputText(response!)).toBe("echo: Say hello");
      expect((response?.["usage"] as { input_tokens: number }).input_tokens).toBeGreaterThan(0);
      expect(gateway).toMatchObject({ provider: "openai", model: "gpt-4o-mini", attempts: 1 });
    });

    it("createResponse (SDK helper) takes and returns plain JSON, ignoring stream", async () => {
      const r = await sy().createResponse({ model: MODEL, input: "Plain", stream: true, temperature: undefined });
      expect(r["status"]).toBe("completed");
      expect(r["temperature"]).toBeNull();
      expect(outputText(r)).toBe("echo: Plain");
    });

    it("StreamResponse sends the typed events in order, numbered, ending in response.completed", async () => {
      const events: { type: string; event: Record<string, unknown> }[] = [];
      let gateways = 0;
      for await (const m of sy().responses.streamResponse({ body: { model: MODEL, input: "Stream this" } })) {
        if (m.gateway !== undefined) gateways++;
        if (events.length === 0) expect(m.gateway?.provider).toBe("openai");
        events.push({ type: m.type, event: m.event ?? {} });
      }
      const types = events.map((e) => e.type);
      expect(types.slice(0, 2)).toEqual(["response.created", "response.in_progress"]);
      expect(types.at(-1)).toBe("response.completed");
      expect(types).toContain("response.output_text.delta");
      expect(types.indexOf("response.output_text.done")).toBeLessThan(types.indexOf("response.output_item.done"));
      expect(events.map((e) => e.event["type"])).toEqual(types);
      expect(events.map((e) => e.event["sequence_number"])).toEqual(events.map((_, i) => i));
      expect(gateways).toBe(1);
      const deltas = events.filter((e) => e.type === "response.output_text.delta").map((e) => e.event["delta"]).join("");
      expect(deltas).toBe("echo: Stream this");
      // Kept before the stream ended: readable at once, over REST too.
      const done = events.at(-1)!.event["response"] as Record<string, unknown>;
      const got = await rest("GET", `/${String(done["id"])}`);
      expect(got.status).toBe(200);
      expect(got.json).toEqual(done);
    });

    it("streamResponse (SDK helper) yields plain events", async () => {
      const types: string[] = [];
      let text = "";
      for await (const e of sy().streamResponse({ model: MODEL, input: "abc def" })) {
        types.push(e.type);
        if (e.type === "response.output_text.delta") text += String(e.event["delta"]);
      }
      expect(types[0]).toBe("response.created");
      expect(types.at(-1)).toBe("response.completed");
      expect(text).toBe("echo: abc def");
    });

    it("continues a conversation created over REST (one store)", async () => {
      const first = await rest("POST", "", { model: MODEL, input: "My name is Ada." });
      expect(first.status).toBe(200);
      openai.requests.length = 0;
      const second = await sy().createResponse({ model: MODEL, previous_response_id: first.json["id"], input: "What is my name?" });
      expect(second["previous_response_id"]).toBe(first.json["id"]);
      expect(outputText(second)).toBe("echo: What is my name?");
      const sent = openai.requests.find((r) => r.path === "/v1/chat/completions")!.body as { messages: { role: string }[] };
      expect(sent.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
      expect(JSON.stringify(sent.messages[1])).toContain("echo: My name is Ada.");
    });

    it("GetResponse and DeleteResponse; a deleted response is NOT_FOUND", async () => {
      const created = await sy().createResponse({ model: MODEL, input: "Keep me" });
      const id = String(created["id"]);
      const { response } = await sy().responses.getResponse({ id });
      expect(response).toEqual(created);
      expect(await sy().responses.deleteResponse({ id })).toMatchObject({ id, deleted: true });
      expect(await codeOf(sy().responses.getResponse({ id }))).toBe(Code.NotFound);
      expect(await codeOf(sy().responses.deleteResponse({ id }))).toBe(Code.NotFound);
      expect((await rest("GET", `/${id}`)).status).toBe(404);
      expect(await codeOf(sy().responses.getResponse({ id: "" }))).toBe(Code.InvalidArgument);
    });

    it("refuses what it cannot serve before any event, with the right code", async () => {
      const stream = (body: Record<string, unknown>) => sy().streamResponse(body)[Symbol.asyncIterator]().next();
      expect(await codeOf(stream({ input: "no model" }))).toBe(Code.InvalidArgument);
      expect(await codeOf(stream({ model: MODEL, input: "x", tools: [{ type: "web_search" }] }))).toBe(Code.InvalidArgument);
      expect(await codeOf(stream({ model: MODEL, input: "x", previous_response_id: "resp_missing" }))).toBe(Code.InvalidArgument);
      expect(await codeOf(sy().responses.createResponse({}))).toBe(Code.InvalidArgument);
      openai.setBehavior({ kind: "status", status: 503 });
      expect(await codeOf(stream({ model: MODEL, input: "x" }))).toBe(Code.Unavailable);
    });

    it("ends a stream that fails midway with response.failed, then OK", async () => {
      openai.setBehavior({ kind: "stream-error", afterChunks: 2 });
      const events: { type: string; event: Record<string, unknown> }[] = [];
      for await (const e of sy().streamResponse({ model: MODEL, input: "one two three four five six" })) events.push(e);
      expect(events[0]!.type).toBe("response.created");
      expect(events.at(-1)!.type).toBe("response.failed");
      expect(events.filter((e) => e.type === "response.failed")).toHaveLength(1);
      expect(events.map((e) => e.event["sequence_number"])).toEqual(events.map((_, i) => i));
      const failed = events.at(-1)!.event["response"] as { status: string; error: { code: string } };
      expect(failed.status).toBe("failed");
      expect(failed.error.code).toBe("server_error");
    });

    it("refuses callers without a valid key: UNAUTHENTICATED", async () => {
      const anon = createClient({ baseUrl: gw.url, protocol });
      expect(await codeOf(anon.createResponse({ model: MODEL, input: "hi" }))).toBe(Code.Unauthenticated);
      expect(await codeOf(anon.streamResponse({ model: MODEL, input: "hi" })[Symbol.asyncIterator]().next())).toBe(Code.Unauthenticated);
      const wrong = createClient({ baseUrl: gw.url, apiKey: "sk-not-a-key-0123456789", protocol });
      expect(await codeOf(wrong.responses.getResponse({ id: "resp_x" }))).toBe(Code.Unauthenticated);
    });
  });
}

describe("the REST adapter over the same core", () => {
  it("still streams SSE frames, event line matching data.type, ending in response.failed on a midway failure", async () => {
    openai.setBehavior({ kind: "stream-error", afterChunks: 2 });
    const res = await fetch(`${gw.url}/v1/responses`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, input: "one two three four", stream: true }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(res.headers.get("x-switchyard-provider")).toBe("openai");
    const text = await res.text();
    const frames = text.split("\n\n").filter((f) => f !== "");
    const types = frames.map((f) => {
      const [event, data] = f.split("\n");
      const type = event!.slice("event: ".length);
      expect(JSON.parse(data!.slice("data: ".length))["type"]).toBe(type);
      return type;
    });
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.failed");
  });
});
