import { execFile } from "node:child_process";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

// POST /v1/responses with the official SDKs, answered by OpenAI's and
// Anthropic's stand-ins through the canonical pipeline; stored responses,
// previous_response_id, GET/DELETE, input items, and the tenant boundary.

const ADMIN = "sy-admin-responses-0123456789";
let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  openai = await startOpenAIStandin();
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({
    admin: { key: ADMIN },
    providers: [
      // openai-compatible: translated like any provider. "oai" is OpenAI itself: passed through.
      openaiProvider(openai.url, { type: "openai-compatible" }),
      openaiProvider(openai.url, { id: "oai" }),
      { id: "anthropic", type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"] },
    ],
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: ADMIN, maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
  await anthropic?.close();
});

const WEATHER = {
  type: "function" as const,
  name: "get_weather",
  description: "Weather for a city",
  parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"], additionalProperties: false },
  strict: true,
};

describe.each(["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5"])("responses through %s", (model) => {
  it("answers a plain request with a spec-valid Response", async () => {
    const r = await client.responses.create({ model, input: "Say hello", instructions: "Be brief." });
    assertMatchesSchema("Response", r);
    expect(r.object).toBe("response");
    expect(r.status).toBe("completed");
    expect(r.id).toMatch(/^resp_/);
    expect(r.output_text).toContain("Say hello");
    expect(r.instructions).toBe("Be brief.");
    expect(r.usage?.input_tokens).toBeGreaterThan(0);
  });

  it("streams the typed events in order, with sequence numbers, ending in response.completed", async () => {
    const stream = await client.responses.create({ model, input: "Say hello", stream: true });
    const events: { type: string; sequence_number: number }[] = [];
    for await (const e of stream) events.push(e);
    const types = events.map((e) => e.type);
    expect(types.slice(0, 2)).toEqual(["response.created", "response.in_progress"]);
    expect(types.at(-1)).toBe("response.completed");
    expect(types).toContain("response.output_item.added");
    expect(types).toContain("response.output_text.delta");
    expect(types.indexOf("response.output_text.done")).toBeLessThan(types.indexOf("response.output_item.done"));
    expect(events.map((e) => e.sequence_number)).toEqual(events.map((_, i) => i));
    const done = events.at(-1) as unknown as { response: OpenAI.Responses.Response };
    assertMatchesSchema("Response", done.response);
    expect(done.response.output.some((o) => o.type === "message")).toBe(true);
  });

  it("runs a function tool round trip, continuing with previous_response_id", async () => {
    const first = await client.responses.create({ model, input: "What is the weather in Paris?", tools: [WEATHER] });
    const call = first.output.find((o) => o.type === "function_call");
    expect(call).toMatchObject({ type: "function_call", name: "get_weather" });
    if (call?.type !== "function_call") throw new Error("no call");
    expect(JSON.parse(call.arguments)).toEqual({ location: "Paris" });
    const second = await client.responses.create({
      model,
      previous_response_id: first.id,
      input: [{ type: "function_call_output", call_id: call.call_id, output: "sunny, 21 C" }],
      tools: [WEATHER],
    });
    expect(second.status).toBe("completed");
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output_text.length).toBeGreaterThan(0);
  });
});

describe("stored responses", () => {
  it("continues a conversation: the provider receives the earlier turns", async () => {
    const first = await client.responses.create({ model: "openai/gpt-4o-mini", input: "My name is Ada." });
    openai.requests.length = 0;
    const second = await client.responses.create({ model: "openai/gpt-4o-mini", previous_response_id: first.id, input: "What is my name?" });
    expect(second.output_text).toBe("echo: What is my name?");
    const sent = openai.requests.find((r) => r.path === "/v1/chat/completions")!.body as { messages: { role: string; content: unknown }[] };
    expect(sent.messages.map((m) => m.role)).toEqual(["user", "assistant", "user"]);
    expect(JSON.stringify(sent.messages[0])).toContain("My name is Ada.");
    expect(JSON.stringify(sent.messages[1])).toContain("echo: My name is Ada.");
  });

  it("retrieves, lists input items, and deletes", async () => {
    const r = await client.responses.create({ model: "openai/gpt-4o-mini", input: "Keep me" });
    const got = await client.responses.retrieve(r.id);
    expect(got.id).toBe(r.id);
    expect(got.output_text).toBe(r.output_text);
    const items = await client.responses.inputItems.list(r.id);
    expect(items.data).toHaveLength(1);
    expect(items.data[0]).toMatchObject({ type: "message", role: "user" });
    await client.responses.delete(r.id);
    await expect(client.responses.retrieve(r.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    // store: false keeps nothing.
    const gone = await client.responses.create({ model: "openai/gpt-4o-mini", input: "Forget me", store: false });
    await expect(client.responses.retrieve(gone.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("keeps each tenant's responses to itself", async () => {
    const mk = async (name: string): Promise<OpenAI> => {
      const c = await admin<any>(gw.url, ADMIN, "OrgService/CreateCustomer", { name });
      const t = await admin<any>(gw.url, ADMIN, "OrgService/CreateTeam", { name, customerId: c.customer.id });
      const k = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name, teamId: t.team.id });
      return new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: k.secret, maxRetries: 0 });
    };
    const [a, b] = [await mk("a"), await mk("b")];
    const mine = await a.responses.create({ model: "openai/gpt-4o-mini", input: "secret plans" });
    expect((await a.responses.retrieve(mine.id)).id).toBe(mine.id);
    await expect(b.responses.retrieve(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(b.responses.create({ model: "openai/gpt-4o-mini", previous_response_id: mine.id, input: "go on" })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(b.responses.delete(mine.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("refuses what it cannot carry to another provider, naming it", async () => {
    const err = await client.responses
      .create({ model: "anthropic/claude-sonnet-4-5", input: "search", tools: [{ type: "web_search" } as never] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toMatch(/web_search/);
  });
});

describe("OpenAI's own Responses API, passed through", () => {
  it("forwards the body untouched: built-in tools, unknown fields, store as sent", async () => {
    openai.requests.length = 0;
    const r = await client.responses.create({ model: "oai/gpt-4o-mini", input: "cats", tools: [{ type: "web_search" }], store: false, truncation: "auto" } as never);
    assertMatchesSchema("Response", r);
    expect(r.output.map((o) => o.type)).toEqual(["web_search_call", "message"]);
    const sent = openai.requests.find((q) => q.path === "/v1/responses")!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ model: "gpt-4o-mini", input: "cats", tools: [{ type: "web_search" }], store: false, truncation: "auto", stream: false });
    expect(gw.records.at(-1)).toMatchObject({ operation: "responses", ok: true, provider: "oai" });
    expect(gw.records.at(-1)!.usage?.completionTokens).toBeGreaterThan(0);
  });

  it("streams OpenAI's events as they come, and keeps the usage", async () => {
    const stream = await client.responses.create({ model: "oai/gpt-4o-mini", input: "stream me", stream: true });
    const types: string[] = [];
    let final: OpenAI.Responses.Response | undefined;
    for await (const e of stream) {
      types.push(e.type);
      if (e.type === "response.completed") final = e.response;
    }
    expect(types[0]).toBe("response.created");
    expect(types.at(-1)).toBe("response.completed");
    const message = final?.output.find((o) => o.type === "message");
    expect(message?.type === "message" ? message.content[0] : undefined).toMatchObject({ type: "output_text", text: "echo: stream me" });
    await gw.waitForRecords(1);
    expect(gw.records.at(-1)).toMatchObject({ operation: "responses", ok: true });
    expect(gw.records.at(-1)!.usage?.completionTokens).toBe(final?.usage?.output_tokens);
  });

  it("sends a follow-up back to the provider that made the response, never elsewhere", async () => {
    const first = await client.responses.create({ model: "oai/gpt-4o-mini", input: "remember this" });
    const elsewhere = await client.responses.create({ model: "anthropic/claude-sonnet-4-5", previous_response_id: first.id, input: "and?" }).catch((e: unknown) => e);
    expect(elsewhere).toBeInstanceOf(OpenAI.BadRequestError);
    expect((elsewhere as Error).message).toMatch(/made by provider 'oai'/);
    openai.requests.length = 0;
    const next = await client.responses.create({ model: "oai/gpt-4o-mini", previous_response_id: first.id, input: "and?" });
    expect(next.output_text).toBe("echo: and?");
    expect(openai.requests.find((q) => q.path === "/v1/responses")!.body).toMatchObject({ previous_response_id: first.id });
    expect((await client.responses.retrieve(first.id)).id).toBe(first.id);
  });
});

it("works from the Python openai package", async () => {
  const code = `
from openai import OpenAI
c = OpenAI(base_url="${gw.url}/v1", api_key="${ADMIN}")
r = c.responses.create(model="openai/gpt-4o-mini", input="Say hello")
print(r.output_text)
r2 = c.responses.create(model="anthropic/claude-sonnet-4-5", previous_response_id=r.id, input="Again")
print(r2.status)
with c.responses.stream(model="openai/gpt-4o-mini", input="Stream it") as s:
    for e in s:
        pass
    print(s.get_final_response().output_text)
`;
  const { stdout } = await promisify(execFile)("python3", ["-c", code], { env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "" }, timeout: 30_000 });
  expect(stdout).toBe("echo: Say hello\ncompleted\necho: Stream it\n");
}, 60_000);
