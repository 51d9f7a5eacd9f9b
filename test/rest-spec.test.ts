import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema, validateAgainst } from "./support/openapi.ts";

// What the REST bridge returns, byte for byte, validated against OpenAI's
// official OpenAPI spec (shared/spec/openai-openapi.yaml).

let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ providers: [openaiProvider(standin.url)] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

function post(path: string, body: unknown): Promise<Response> {
  return fetch(`${gw.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The `data:` payloads of an SSE body, in order. */
async function sseEvents(res: Response): Promise<string[]> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice("data: ".length));
}

const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } } }];

describe("REST responses match OpenAI's spec", () => {
  it("chat completion, text and tool calls", async () => {
    for (const body of [
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
      { model: "gpt-4o-mini", messages: [{ role: "user", content: "find cats" }], tools },
    ]) {
      const res = await post("/v1/chat/completions", body);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      assertMatchesSchema("CreateChatCompletionResponse", await res.json());
    }
  });

  it("stream chunks, with and without usage, text and tool calls", async () => {
    for (const body of [
      { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "hello world" }] },
      { model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: "hello" }] },
      { model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "find cats" }], tools },
    ]) {
      const res = await post("/v1/chat/completions", body);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const events = await sseEvents(res);
      expect(events.at(-1)).toBe("[DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, unknown>);
      expect(chunks.length).toBeGreaterThan(2);
      for (const c of chunks) assertMatchesSchema("CreateChatCompletionStreamResponse", c);
      const withUsage = chunks.filter((c) => c["usage"] !== undefined);
      expect(withUsage.length).toBe("stream_options" in body ? 1 : 0);
    }
  });

  it("embeddings, float and base64", async () => {
    for (const encoding_format of ["float", "base64"]) {
      const res = await post("/v1/embeddings", { model: "text-embedding-3-small", input: ["a", "b"], encoding_format });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { data: { embedding: unknown }[] };
      if (encoding_format === "float") assertMatchesSchema("CreateEmbeddingResponse", body);
      // The spec types `embedding` as number[] only; the base64 form is a string there.
      else expect(typeof body.data[0]!.embedding).toBe("string");
    }
  });

  it("model list and model", async () => {
    const list = await (await fetch(`${gw.url}/v1/models`)).json();
    assertMatchesSchema("ListModelsResponse", list);
    const one = await (await fetch(`${gw.url}/v1/models/openai%2Fgpt-4o-mini`)).json();
    assertMatchesSchema("Model", one);
  });

  it("errors", async () => {
    const cases: [Promise<Response>, number][] = [
      [post("/v1/chat/completions", { model: "gpt-4o-mini" }), 400],
      [post("/v1/chat/completions", { model: "nope/nope", messages: [{ role: "user", content: "x" }] }), 404],
      [fetch(`${gw.url}/v1/unknown`), 404],
      [fetch(`${gw.url}/v1/chat/completions`), 405],
    ];
    for (const [pending, status] of cases) {
      const res = await pending;
      expect(res.status).toBe(status);
      const body = await res.json();
      assertMatchesSchema("ErrorResponse", body);
      expect(Object.keys((body as { error: object }).error).sort()).toEqual(["code", "message", "param", "type"]);
    }
  });

  it("the validator rejects what OpenAI would not send", () => {
    expect(validateAgainst("CreateChatCompletionResponse", { id: "x", object: "chat.completion", choices: [] }).valid).toBe(false);
    expect(validateAgainst("ErrorResponse", { error: { message: "m" } }).valid).toBe(false);
  });
});
