/**
 * Unit tests of the Responses API wire layer (server/wire/openai/responses-*):
 * every input form and field decodes to the canonical request, malformed
 * bodies fail with the field named, what only OpenAI can serve is named by
 * `untranslatable`, and the `Response` object and every stream event match
 * the schemas of OpenAI's spec (test/support/openapi.ts). The official SDK
 * reads both: `responses.create` for the object, and `responses.stream`
 * (ResponseStream, which checks item order and identity) for the events.
 */
import { create } from "@bufbuild/protobuf";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import {
  ChatChunkSchema,
  ChatCompletionSchema,
  FinishReason,
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatChunk,
  type ChatCompletion,
} from "../gen/switchyard/v1/chat_pb.ts";
import { UsageSchema, type Usage } from "../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../server/errors/errors.ts";
import { decodeResponsesRequest, untranslatable, withHistory } from "../server/wire/openai/responses-request.ts";
import {
  echoRequest,
  encodeResponse,
  functionCallItem,
  messageItem,
  newResponseId,
  outputText,
  reasoningItem,
  refusalPart,
  type ItemStatus,
  type RequestEcho,
} from "../server/wire/openai/responses-response.ts";
import { createResponsesStreamEncoder } from "../server/wire/openai/responses-stream.ts";
import { assertMatchesSchema } from "./support/openapi.ts";

type Json = Record<string, unknown>;

function gatewayError(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected a GatewayError, nothing was thrown");
}

const weather = {
  type: "object",
  properties: { city: { type: "string" } },
  required: ["city"],
  additionalProperties: false,
};

// ---------------------------------------------------------------------------
// Request

describe("decodeResponsesRequest", () => {
  it("reads a string input, instructions and the defaults", () => {
    const d = decodeResponsesRequest({ model: "gpt-4o", instructions: "Be brief.", input: "Hi" });
    expect(d.request.model).toBe("gpt-4o");
    expect(d.request.messages.map((m) => [m.role, m.content[0]?.part.value, m.contentIsText])).toEqual([
      [Role.SYSTEM, "Be brief.", true],
      [Role.USER, "Hi", true],
    ]);
    expect(d.stream).toBe(false);
    expect(d.store).toBe(true);
    expect(d.previousResponseId).toBeUndefined();
    expect(d.metadata).toEqual({});
    expect(d.include).toEqual([]);
    expect(d.request.extraFormat).toBe("openai");
    expect(d.request.extra).toBeUndefined();
  });

  it("reads every input item form and joins one model turn into one assistant message", () => {
    const body = {
      model: "m",
      input: [
        { role: "developer", content: "Rules." },
        {
          type: "message",
          role: "user",
          content: [
            { type: "input_text", text: "What is here?" },
            { type: "input_image", image_url: "https://x.test/a.png", detail: "low" },
          ],
        },
        { type: "reasoning", id: "rs_1", summary: [{ type: "summary_text", text: "Look." }, { type: "summary_text", text: "Then call." }] },
        { type: "message", id: "msg_1", role: "assistant", status: "completed", content: [{ type: "output_text", text: "Checking.", annotations: [] }] },
        { type: "function_call", id: "fc_1", call_id: "call_a", name: "weather", arguments: '{"city":"Paris"}' },
        { type: "function_call", id: "fc_2", call_id: "call_b", name: "weather", arguments: '{"city":"Rome"}' },
        { type: "function_call_output", call_id: "call_a", output: "12C" },
        { type: "function_call_output", call_id: "call_b", output: [{ type: "input_text", text: "15" }, { type: "input_text", text: "C" }] },
        { role: "system", content: [{ type: "input_text", text: "Answer now." }] },
        { role: "assistant", content: "Paris 12C, Rome 15C." },
        { role: "user", content: "Thanks" },
      ],
    };
    const { request } = decodeResponsesRequest(body);
    const m = request.messages;
    expect(m.map((x) => x.role)).toEqual([
      Role.DEVELOPER, Role.USER, Role.ASSISTANT, Role.TOOL, Role.TOOL, Role.SYSTEM, Role.ASSISTANT, Role.USER,
    ]);
    expect(m[0]!.contentIsText).toBe(true);
    expect(m[1]!.content.map((p) => p.part)).toEqual([
      { case: "text", value: "What is here?" },
      { case: "imageUrl", value: expect.objectContaining({ url: "https://x.test/a.png", detail: "low" }) },
    ]);
    const turn = m[2]!;
    expect(turn.reasoningContent).toBe("Look.\n\nThen call.");
    expect(turn.content.map((p) => p.part.value)).toEqual(["Checking."]);
    expect(turn.toolCalls.map((t) => [t.id, t.function?.name, t.function?.arguments])).toEqual([
      ["call_a", "weather", '{"city":"Paris"}'],
      ["call_b", "weather", '{"city":"Rome"}'],
    ]);
    expect([m[3]!.toolCallId, m[3]!.content[0]?.part.value, m[3]!.contentIsText]).toEqual(["call_a", "12C", true]);
    expect([m[4]!.toolCallId, m[4]!.content.map((p) => p.part.value)]).toEqual(["call_b", ["15", "C"]]);
    expect(m[6]!.content[0]?.part.value).toBe("Paris 12C, Rome 15C.");
    expect(untranslatable(body)).toBeUndefined();
  });

  it("starts a new assistant message for function calls that follow a tool result", () => {
    const { request } = decodeResponsesRequest({
      model: "m",
      input: [
        { role: "user", content: "go" },
        { type: "function_call", call_id: "c1", name: "f", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: "1" },
        { type: "function_call", call_id: "c2", name: "f", arguments: "{}" },
        { type: "function_call_output", call_id: "c2", output: "2" },
      ],
    });
    expect(request.messages.map((x) => [x.role, x.toolCalls.map((t) => t.id), x.content.length])).toEqual([
      [Role.USER, [], 1],
      [Role.ASSISTANT, ["c1"], 0],
      [Role.TOOL, [], 1],
      [Role.ASSISTANT, ["c2"], 0],
      [Role.TOOL, [], 1],
    ]);
  });

  it("reads reasoning text and refusals, and keeps encrypted reasoning in the raw body only", () => {
    const encrypted = { type: "reasoning", id: "rs_x", summary: [], encrypted_content: "gAAAA..." };
    const body = {
      model: "m",
      input: [
        { role: "user", content: "q" },
        encrypted,
        { role: "assistant", content: [{ type: "refusal", refusal: "No." }] },
        { type: "reasoning", id: "rs_y", summary: [{ type: "summary_text", text: "short" }], content: [{ type: "reasoning_text", text: "full" }] },
        { type: "function_call", call_id: "c", name: "f", arguments: "{}" },
      ],
    };
    const d = decodeResponsesRequest(body);
    const m = d.request.messages;
    expect(m.map((x) => x.role)).toEqual([Role.USER, Role.ASSISTANT, Role.ASSISTANT]);
    expect([m[1]!.refusal, m[1]!.reasoningContent, m[1]!.content]).toEqual(["No.", "", []]);
    expect([m[2]!.reasoningContent, m[2]!.toolCalls.length]).toEqual(["full", 1]);
    expect(JSON.stringify(d.request)).not.toContain("gAAAA");
    expect(d.raw["input"]).toContain(encrypted);
    expect(untranslatable(body)).toBeUndefined();
  });

  it("maps every request field", () => {
    const body = {
      model: "gpt-4.1",
      input: "hi",
      tools: [
        { type: "function", name: "weather", description: "Weather now", parameters: weather, strict: true },
        { type: "function", name: "noop" },
        { type: "web_search" },
      ],
      tool_choice: { type: "function", name: "weather" },
      text: { format: { type: "json_schema", name: "answer", schema: weather, strict: true, description: "An answer" }, verbosity: "low" },
      max_output_tokens: 256,
      temperature: 0.2,
      top_p: 0.9,
      parallel_tool_calls: false,
      user: "u-1",
      metadata: { team: "a" },
      reasoning: { effort: "high", summary: "auto" },
      service_tier: "flex",
      prompt_cache_key: "k",
      truncation: "auto",
      store: false,
      stream: true,
      previous_response_id: "resp_prev",
      include: ["reasoning.encrypted_content"],
      fallbacks: ["other"],
      logit_bias: { "42": 1 },
    };
    const d = decodeResponsesRequest(body);
    const r = d.request;
    expect(r.tools.map((t) => [t.function?.name, t.function?.description, t.function?.parameters, t.function?.strict])).toEqual([
      ["weather", "Weather now", weather, true],
      ["noop", "", undefined, undefined],
    ]);
    expect(r.toolChoice?.choice).toEqual({ case: "function", value: "weather" });
    expect(r.responseFormat?.type).toBe(ResponseFormat_Type.JSON_SCHEMA);
    expect(r.responseFormat?.jsonSchema).toMatchObject({ name: "answer", description: "An answer", schema: weather, strict: true });
    expect([r.maxCompletionTokens, r.maxTokens, r.temperature, r.topP, r.parallelToolCalls, r.user]).toEqual([256, undefined, 0.2, 0.9, false, "u-1"]);
    expect(r.metadata).toEqual({ team: "a" });
    expect(r.fallbacks).toEqual(["other"]);
    expect(r.extra).toEqual({ reasoning_effort: "high", verbosity: "low", service_tier: "flex", prompt_cache_key: "k", logit_bias: { "42": 1 } });
    expect([d.stream, d.store, d.previousResponseId, d.include, d.metadata]).toEqual([true, false, "resp_prev", ["reasoning.encrypted_content"], { team: "a" }]);
    expect(d.raw).toBe(body);
  });

  it("reads tool_choice modes, text formats and safety_identifier", () => {
    const choice = (tool_choice: unknown) => decodeResponsesRequest({ model: "m", input: "x", tool_choice }).request.toolChoice?.choice;
    expect(choice("none")).toEqual({ case: "mode", value: ToolChoice_Mode.NONE });
    expect(choice("auto")).toEqual({ case: "mode", value: ToolChoice_Mode.AUTO });
    expect(choice("required")).toEqual({ case: "mode", value: ToolChoice_Mode.REQUIRED });
    expect(choice({ type: "file_search" })).toBeUndefined();
    const format = (f: unknown) => decodeResponsesRequest({ model: "m", input: "x", text: { format: f } }).request.responseFormat?.type;
    expect(format({ type: "text" })).toBe(ResponseFormat_Type.TEXT);
    expect(format({ type: "json_object" })).toBe(ResponseFormat_Type.JSON_OBJECT);
    expect(decodeResponsesRequest({ model: "m", input: "x", safety_identifier: "s-1" }).request.user).toBe("s-1");
    expect(decodeResponsesRequest({ model: "m", input: "x", user: "u", safety_identifier: "s" }).request.user).toBe("u");
  });

  it("accepts a follow-up without input, and puts its history after the new instructions", () => {
    const d = decodeResponsesRequest({ model: "m", previous_response_id: "resp_1" });
    expect(d.request.messages).toEqual([]);
    expect(d.previousResponseId).toBe("resp_1");
    const history = decodeResponsesRequest({ model: "m", input: [{ role: "user", content: "a" }, { role: "assistant", content: "b" }] }).request.messages;
    const next = decodeResponsesRequest({ model: "m", instructions: "New rules.", input: "c", previous_response_id: "resp_1" });
    expect(withHistory(next, history).messages.map((m) => m.content[0]?.part.value)).toEqual(["New rules.", "a", "b", "c"]);
    expect(withHistory(d, history).messages.map((m) => m.content[0]?.part.value)).toEqual(["a", "b"]);
    expect(next.request.messages).toHaveLength(2); // not modified
  });

  const bad: [string, Json, string][] = [
    ["model missing", { input: "x" }, "model"],
    ["model empty", { model: "", input: "x" }, "model"],
    ["input missing", { model: "m" }, "input"],
    ["input a number", { model: "m", input: 3 }, "input"],
    ["item without type or role", { model: "m", input: [{ content: "x" }] }, "input[0].type"],
    ["item type not a string", { model: "m", input: [{ role: "user", content: "x" }, { type: 7 }] }, "input[1].type"],
    ["unknown role", { model: "m", input: [{ role: "tool", content: "x" }] }, "input[0].role"],
    ["content a number", { model: "m", input: [{ role: "user", content: 1 }] }, "input[0].content"],
    ["part without type", { model: "m", input: [{ role: "user", content: [{ text: "x" }] }] }, "input[0].content[0].type"],
    ["text not a string", { model: "m", input: [{ role: "user", content: [{ type: "input_text", text: 1 }] }] }, "input[0].content[0].text"],
    ["image URL scheme", { model: "m", input: [{ role: "user", content: [{ type: "input_image", image_url: "ftp://x", detail: "auto" }] }] }, "input[0].content[0].image_url"],
    ["function_call without call_id", { model: "m", input: [{ type: "function_call", name: "f", arguments: "{}" }] }, "input[0].call_id"],
    ["function_call without arguments", { model: "m", input: [{ type: "function_call", call_id: "c", name: "f" }] }, "input[0].arguments"],
    ["function_call_output without output", { model: "m", input: [{ type: "function_call_output", call_id: "c" }] }, "input[0].output"],
    ["function_call_output output a number", { model: "m", input: [{ type: "function_call_output", call_id: "c", output: 5 }] }, "input[0].output"],
    ["reasoning summary not an array", { model: "m", input: [{ type: "reasoning", summary: "x" }] }, "input[0].summary"],
    ["text.format without type", { model: "m", input: "x", text: { format: {} } }, "text.format.type"],
    ["text.format type a number", { model: "m", input: "x", text: { format: { type: 1 } } }, "text.format.type"],
    ["json_schema without name", { model: "m", input: "x", text: { format: { type: "json_schema", schema: {} } } }, "text.format.name"],
    ["json_schema without schema", { model: "m", input: "x", text: { format: { type: "json_schema", name: "a" } } }, "text.format.schema"],
    ["tool_choice unknown mode", { model: "m", input: "x", tool_choice: "sometimes" }, "tool_choice"],
    ["tool_choice function without name", { model: "m", input: "x", tool_choice: { type: "function" } }, "tool_choice.name"],
    ["tool without type", { model: "m", input: "x", tools: [{ name: "f" }] }, "tools[0].type"],
    ["function tool without name", { model: "m", input: "x", tools: [{ type: "function" }] }, "tools[0].name"],
    ["function parameters not an object", { model: "m", input: "x", tools: [{ type: "function", name: "f", parameters: "x" }] }, "tools[0].parameters"],
    ["metadata value not a string", { model: "m", input: "x", metadata: { k: 1 } }, "metadata.k"],
    ["max_output_tokens negative", { model: "m", input: "x", max_output_tokens: -1 }, "max_output_tokens"],
    ["temperature a string", { model: "m", input: "x", temperature: "hot" }, "temperature"],
    ["stream a string", { model: "m", input: "x", stream: "yes" }, "stream"],
    ["store a string", { model: "m", input: "x", store: "no" }, "store"],
    ["include entry a number", { model: "m", input: "x", include: [1] }, "include[0]"],
    ["reasoning.effort a number", { model: "m", input: "x", reasoning: { effort: 3 } }, "reasoning.effort"],
    ["previous_response_id a number", { model: "m", input: "x", previous_response_id: 1 }, "previous_response_id"],
  ];
  it.each(bad)("refuses %s with param %s", (_name, body, param) => {
    const e = gatewayError(() => decodeResponsesRequest(body));
    expect(e.code).toBe("invalid_request");
    expect(e.param).toBe(param);
    expect(e.message.startsWith(`${param}:`)).toBe(true);
  });

  it("refuses a body that is not an object", () => {
    expect(gatewayError(() => decodeResponsesRequest([])).code).toBe("invalid_request");
  });
});

describe("untranslatable", () => {
  const cases: [Json, string | undefined][] = [
    [{ model: "m", input: "x", tools: [{ type: "function", name: "f" }] }, undefined],
    [{ model: "m", input: "x", tools: [{ type: "function", name: "f" }, { type: "web_search" }] }, "tools[1].type 'web_search' is only served by OpenAI"],
    [{ model: "m", input: "x", tools: [{ type: "file_search", vector_store_ids: ["v"] }] }, "tools[0].type 'file_search' is only served by OpenAI"],
    [{ model: "m", input: "x", tool_choice: { type: "web_search_preview" } }, "tool_choice.type 'web_search_preview' is only served by OpenAI"],
    [{ model: "m", input: "x", text: { format: { type: "grammar" } } }, "text.format.type 'grammar' is only served by OpenAI"],
    [{ model: "m", input: [{ type: "item_reference", id: "msg_1" }] }, "input[0].type 'item_reference' is only served by OpenAI"],
    [{ model: "m", input: [{ role: "user", content: "x" }, { id: "msg_1" }] }, "input[1].type 'item_reference' is only served by OpenAI"],
    [{ model: "m", input: [{ type: "web_search_call", id: "ws_1", status: "completed" }] }, "input[0].type 'web_search_call' is only served by OpenAI"],
    [{ model: "m", input: [{ type: "brand_new_item" }] }, "input[0].type 'brand_new_item' is only served by OpenAI"],
    [{ model: "m", input: [{ role: "user", content: [{ type: "input_file", file_id: "file-1" }] }] }, "input[0].content[0].type 'input_file' is only served by OpenAI"],
    [{ model: "m", input: [{ role: "user", content: [{ type: "input_image", file_id: "file-1", detail: "auto" }] }] }, "input[0].content[0]: an image by file_id is only served by OpenAI"],
    [{ model: "m", input: [{ type: "function_call_output", call_id: "c", output: [{ type: "input_image", image_url: "https://x.test/a.png" }] }] }, "input[0].output[0].type 'input_image' is only served by OpenAI"],
    [{ model: "m", prompt: { id: "pmpt_1" } }, "prompt is only served by OpenAI"],
    [{ model: "m", conversation: "conv_1", input: "x" }, "conversation is only served by OpenAI"],
    [{ model: "m", input: "x", background: true }, "background is only served by OpenAI"],
    [{ model: "m", input: "x", background: false, truncation: "auto", include: ["reasoning.encrypted_content"] }, undefined],
  ];
  it.each(cases)("%j -> %s", (body, reason) => {
    expect(untranslatable(body)).toBe(reason);
    // What cannot be carried never stops the decoder: the raw body still goes to OpenAI.
    expect(() => decodeResponsesRequest(body)).not.toThrow();
  });
});

// ---------------------------------------------------------------------------
// Response

const usage = (o: Partial<Usage> = {}): Usage =>
  create(UsageSchema, { promptTokens: 20, completionTokens: 7, totalTokens: 27, cachedTokens: 4, reasoningTokens: 2, cacheWriteTokens: 1, ...o });

/** A finished answer; `u: null` for a provider that reported no usage. */
function completion(message: Record<string, unknown>, finishReason: FinishReason = FinishReason.STOP, u: Usage | null = usage()): ChatCompletion {
  return create(ChatCompletionSchema, {
    id: "chatcmpl-1",
    created: 1_700_000_000n,
    model: "provider-model",
    choices: [{ index: 0, message: { role: Role.ASSISTANT, ...message }, finishReason }],
    usage: u ?? undefined,
  });
}

const text = (s: string) => [{ part: { case: "text" as const, value: s } }];
const call = (id: string, name: string, args: string) => ({ id, function: { name, arguments: args } });

const requestBody = {
  model: "my-alias",
  instructions: "Be brief.",
  input: "Weather?",
  tools: [{ type: "function", name: "weather", parameters: weather }],
  metadata: { team: "a" },
};
const echo: RequestEcho = echoRequest(requestBody);
const ctx = { id: "resp_test", createdAt: 1_700_000_000, request: echo };

/** Replaces generated ids so two encodings of one answer compare equal. */
function stable(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v, (k, x: unknown) => {
    if (k === "completed_at") return 0;
    return typeof x === "string" && /^(msg|fc|rs|call)_[0-9a-f]{48}$/.test(x) ? x.slice(0, x.indexOf("_")) : x;
  }));
}

describe("encodeResponse", () => {
  it("encodes a text answer as the spec's Response", () => {
    const r = encodeResponse(completion({ content: text("Sunny.") }), ctx);
    assertMatchesSchema("Response", r);
    expect(r).toMatchObject({
      id: "resp_test",
      object: "response",
      created_at: 1_700_000_000,
      status: "completed",
      error: null,
      incomplete_details: null,
      instructions: "Be brief.",
      model: "provider-model",
      parallel_tool_calls: true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: true,
      temperature: null,
      top_p: null,
      text: { format: { type: "text" } },
      tool_choice: "auto",
      tools: [{ type: "function", name: "weather", description: null, parameters: weather, strict: null }],
      truncation: "disabled",
      metadata: { team: "a" },
      usage: {
        input_tokens: 20,
        input_tokens_details: { cached_tokens: 4, cache_write_tokens: 1 },
        output_tokens: 7,
        output_tokens_details: { reasoning_tokens: 2 },
        total_tokens: 27,
      },
    });
    expect(typeof r["completed_at"]).toBe("number");
    expect(r).not.toHaveProperty("output_text");
    expect(r).not.toHaveProperty("user");
    const output = r["output"] as Json[];
    expect(output).toHaveLength(1);
    expect(output[0]).toMatchObject({ type: "message", status: "completed", role: "assistant", content: [{ type: "output_text", text: "Sunny.", annotations: [] }] });
    expect(output[0]!["id"]).toMatch(/^msg_/);
  });

  it("lists reasoning, the message, then one function_call per tool call", () => {
    const r = encodeResponse(completion({
      content: text("Let me check."),
      reasoningContent: "Need the weather.",
      toolCalls: [call("call_1", "weather", '{"city":"Paris"}'), call("", "weather", '{"city":"Rome"}')],
    }, FinishReason.TOOL_CALLS), ctx);
    assertMatchesSchema("Response", r);
    const output = r["output"] as Json[];
    expect(output.map((o) => o["type"])).toEqual(["reasoning", "message", "function_call", "function_call"]);
    expect(output[0]).toMatchObject({ summary: [{ type: "summary_text", text: "Need the weather." }] });
    expect(output[0]!["id"]).toMatch(/^rs_/);
    expect(output[2]).toMatchObject({ call_id: "call_1", name: "weather", arguments: '{"city":"Paris"}', status: "completed" });
    expect(output[2]!["id"]).toMatch(/^fc_/);
    expect(output[3]!["call_id"]).toMatch(/^call_/); // a provider that gave no id still gets one
  });

  it("encodes a refusal and an empty answer", () => {
    const refused = encodeResponse(completion({ refusal: "I can't help." }), ctx);
    assertMatchesSchema("Response", refused);
    expect((refused["output"] as Json[])[0]!["content"]).toEqual([{ type: "refusal", refusal: "I can't help." }]);
    const empty = encodeResponse(completion({}, FinishReason.STOP, null), ctx);
    assertMatchesSchema("Response", empty);
    expect((empty["output"] as Json[])[0]!["content"]).toEqual([{ type: "output_text", text: "", annotations: [], logprobs: [] }]);
    expect(empty).not.toHaveProperty("usage");
  });

  it("marks a length finish incomplete, with its reason and the last item unfinished", () => {
    const r = encodeResponse(completion({ content: text("Once upon") }, FinishReason.LENGTH), ctx);
    assertMatchesSchema("Response", r);
    expect(r).toMatchObject({ status: "incomplete", completed_at: null, incomplete_details: { reason: "max_output_tokens" } });
    expect((r["output"] as Json[])[0]!["status"]).toBe("incomplete");
    const filtered = encodeResponse(completion({ content: text("x") }, FinishReason.CONTENT_FILTER), ctx);
    expect(filtered["incomplete_details"]).toEqual({ reason: "content_filter" });
    expect(encodeResponse(completion({ content: text("x") }, FinishReason.LENGTH), { ...ctx, status: "completed" })["status"]).toBe("completed");
  });

  it("echoes every request setting as sent", () => {
    const body = {
      model: "m",
      input: "x",
      tool_choice: { type: "function", name: "weather" },
      tools: [{ type: "function", name: "weather", description: "d", parameters: weather, strict: true }],
      text: { format: { type: "json_schema", name: "a", schema: weather, strict: true }, verbosity: "low" },
      temperature: 0.5,
      top_p: 0.8,
      max_output_tokens: 100,
      parallel_tool_calls: false,
      previous_response_id: "resp_prev",
      store: false,
      reasoning: { effort: "low", summary: "auto" },
      truncation: "auto",
      user: "u-1",
      safety_identifier: "s-1",
      prompt_cache_key: "k",
    };
    decodeResponsesRequest(body);
    const r = encodeResponse(completion({ content: text("{}") }), { ...ctx, request: echoRequest(body) });
    assertMatchesSchema("Response", r);
    expect(r).toMatchObject({
      tool_choice: body.tool_choice,
      tools: body.tools,
      text: body.text,
      temperature: 0.5,
      top_p: 0.8,
      max_output_tokens: 100,
      parallel_tool_calls: false,
      previous_response_id: "resp_prev",
      store: false,
      reasoning: { effort: "low", summary: "auto" },
      truncation: "auto",
      user: "u-1",
      safety_identifier: "s-1",
      prompt_cache_key: "k",
      instructions: null,
      metadata: {},
    });
  });

  it("makes response ids like OpenAI's", () => {
    const a = newResponseId();
    expect(a).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(newResponseId()).not.toBe(a);
  });

  it("is read by the official SDK, output_text included", async () => {
    const body = encodeResponse(completion({ content: text("Sunny."), toolCalls: [call("call_1", "weather", "{}")] }), ctx);
    const client = new OpenAI({
      apiKey: "test",
      baseURL: "http://gateway.test/v1",
      fetch: async () => new Response(JSON.stringify(body), { headers: { "content-type": "application/json" } }),
    });
    const r = await client.responses.create({ model: "my-alias", input: "Weather?" });
    expect(r.output_text).toBe("Sunny.");
    expect(r.output.map((o) => o.type)).toEqual(["message", "function_call"]);
  });
});

// ---------------------------------------------------------------------------
// Stream

interface Delta {
  content?: string;
  reasoning?: string;
  refusal?: string;
  tools?: { index: number; id?: string; name?: string; args?: string }[];
  finish?: FinishReason;
  usage?: Usage;
}

function chunk(d: Delta): ChatChunk {
  return create(ChatChunkSchema, {
    id: "chatcmpl-1",
    model: "provider-model",
    choices: [{
      index: 0,
      delta: {
        content: d.content,
        reasoningContent: d.reasoning,
        refusal: d.refusal,
        toolCalls: (d.tools ?? []).map((t) => ({ index: t.index, id: t.id ?? "", name: t.name ?? "", arguments: t.args })),
      },
      finishReason: d.finish ?? FinishReason.UNSPECIFIED,
    }],
    usage: d.usage,
  });
}

const SCHEMAS: Record<string, string> = {
  "response.created": "ResponseCreatedEvent",
  "response.in_progress": "ResponseInProgressEvent",
  "response.completed": "ResponseCompletedEvent",
  "response.incomplete": "ResponseIncompleteEvent",
  "response.failed": "ResponseFailedEvent",
  "response.output_item.added": "ResponseOutputItemAddedEvent",
  "response.output_item.done": "ResponseOutputItemDoneEvent",
  "response.content_part.added": "ResponseContentPartAddedEvent",
  "response.content_part.done": "ResponseContentPartDoneEvent",
  "response.output_text.delta": "ResponseTextDeltaEvent",
  "response.output_text.done": "ResponseTextDoneEvent",
  "response.refusal.delta": "ResponseRefusalDeltaEvent",
  "response.refusal.done": "ResponseRefusalDoneEvent",
  "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
  "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
  "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
  "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
  "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
  "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
};

/** Parses SSE frames, checking each against its event schema and the stream union. */
function events(frames: string[]): Json[] {
  return frames.map((f) => {
    const m = /^event: (\S+)\ndata: (.*)\n\n$/s.exec(f);
    if (!m) throw new Error(`not one SSE frame: ${JSON.stringify(f)}`);
    const data = JSON.parse(m[2]!) as Json;
    expect(data["type"]).toBe(m[1]);
    const schema = SCHEMAS[m[1]!];
    if (!schema) throw new Error(`no schema listed for ${m[1]}`);
    assertMatchesSchema(schema, data);
    assertMatchesSchema("ResponseStreamEvent", data);
    return data;
  });
}

/** Runs the encoder over `deltas`; returns the frames of each call and the parsed events. */
function run(deltas: Delta[], finalUsage?: Usage): { perPush: string[][]; frames: string[]; all: Json[] } {
  const enc = createResponsesStreamEncoder(ctx);
  const perPush = deltas.map((d) => enc.push(chunk(d)));
  const frames = [...perPush.flat(), ...enc.end(finalUsage)];
  return { perPush, frames, all: events(frames) };
}

function types(all: Json[]): string[] {
  return all.map((e) => String(e["type"]).replace(/^response\./, ""));
}

function expectSequence(all: Json[]): void {
  expect(all.map((e) => e["sequence_number"])).toEqual(all.map((_, i) => i));
}

/** Every event about an item names the id its output_item.added gave, at the same output_index. */
function expectStableIds(all: Json[]): void {
  const ids = new Map<number, string>();
  for (const e of all) {
    if (e["type"] === "response.output_item.added") {
      const idx = e["output_index"] as number;
      expect(idx).toBe(ids.size);
      ids.set(idx, (e["item"] as Json)["id"] as string);
    } else if (e["type"] === "response.output_item.done") {
      expect((e["item"] as Json)["id"]).toBe(ids.get(e["output_index"] as number));
    } else if ("item_id" in e) {
      expect(e["item_id"]).toBe(ids.get(e["output_index"] as number));
    }
  }
}

function finalResponse(all: Json[]): Json {
  return all[all.length - 1]!["response"] as Json;
}

/** Feeds the SSE bytes to the official SDK's stream helper, as a client would receive them. */
async function sdkStream(frames: string[]) {
  const client = new OpenAI({
    apiKey: "test",
    baseURL: "http://gateway.test/v1",
    fetch: async () => new Response(frames.join(""), { headers: { "content-type": "text/event-stream" } }),
  });
  const stream = client.responses.stream({ model: "my-alias", input: "Weather?" });
  const seen: string[] = [];
  for await (const e of stream) seen.push(e.type);
  return { seen, final: await stream.finalResponse() };
}

describe("createResponsesStreamEncoder", () => {
  it("streams a text answer through the whole lifecycle", async () => {
    const { frames, all } = run([{ content: "Hel" }, { content: "lo" }, { finish: FinishReason.STOP }, { usage: usage() }]);
    expect(types(all)).toEqual([
      "created", "in_progress",
      "output_item.added", "content_part.added", "output_text.delta", "output_text.delta", "output_text.done", "content_part.done", "output_item.done",
      "completed",
    ]);
    expectSequence(all);
    expectStableIds(all);
    expect(all[0]!["response"]).toMatchObject({ id: "resp_test", status: "in_progress", output: [], completed_at: null });
    expect(all[0]!["response"]).not.toHaveProperty("usage");
    expect(all[6]).toMatchObject({ text: "Hello", output_index: 0, content_index: 0 });
    const done = finalResponse(all);
    expect(done).toMatchObject({ id: "resp_test", status: "completed", usage: { input_tokens: 20, output_tokens: 7 } });
    // The final object is what encodeResponse gives for the same answer.
    expect(stable(done)).toEqual(stable(encodeResponse(completion({ content: text("Hello") }), ctx)));

    const sdk = await sdkStream(frames);
    expect(sdk.seen).toEqual(all.map((e) => e["type"]));
    expect(sdk.final.output_text).toBe("Hello");
    expect(sdk.final.status).toBe("completed");
  });

  it("streams text then two tool calls, closing each item before the next", async () => {
    const { perPush, frames, all } = run([
      { content: "Checking." },
      { tools: [{ index: 0, id: "call_a", name: "weather", args: "" }] },
      { tools: [{ index: 0, args: '{"city":' }] },
      { tools: [{ index: 0, args: '"Paris"}' }] },
      { tools: [{ index: 1, id: "call_b", name: "weather", args: '{"city":"Rome"}' }] },
      { finish: FinishReason.TOOL_CALLS },
    ], usage());
    expect(types(all)).toEqual([
      "created", "in_progress",
      "output_item.added", "content_part.added", "output_text.delta",
      "output_text.done", "content_part.done", "output_item.done",
      "output_item.added", "function_call_arguments.delta", "function_call_arguments.delta",
      "function_call_arguments.done", "output_item.done",
      "output_item.added", "function_call_arguments.delta",
      "function_call_arguments.done", "output_item.done",
      "completed",
    ]);
    expectSequence(all);
    expectStableIds(all);
    // Argument deltas go out with the chunk that brought them.
    expect(perPush[2]!.map((f) => f.split("\n")[0])).toEqual(["event: response.function_call_arguments.delta"]);
    const added = all.filter((e) => e["type"] === "response.output_item.added").map((e) => e["item"] as Json);
    expect(added[1]).toMatchObject({ type: "function_call", call_id: "call_a", name: "weather", arguments: "", status: "in_progress" });
    const argsDone = all.filter((e) => e["type"] === "response.function_call_arguments.done");
    expect(argsDone.map((e) => [e["name"], e["arguments"], e["output_index"]])).toEqual([
      ["weather", '{"city":"Paris"}', 1],
      ["weather", '{"city":"Rome"}', 2],
    ]);
    const done = finalResponse(all);
    expect(stable(done)).toEqual(stable(encodeResponse(completion({
      content: text("Checking."),
      toolCalls: [call("call_a", "weather", '{"city":"Paris"}'), call("call_b", "weather", '{"city":"Rome"}')],
    }, FinishReason.TOOL_CALLS), ctx)));

    const sdk = await sdkStream(frames);
    expect(sdk.final.output.map((o) => (o.type === "function_call" ? o.arguments : o.type))).toEqual(["message", '{"city":"Paris"}', '{"city":"Rome"}']);
    expect(sdk.final.output_text).toBe("Checking.");
  });

  it("streams a tool call alone", async () => {
    const { frames, all } = run([
      { tools: [{ index: 0, id: "call_1", name: "weather", args: '{"ci' }] },
      { tools: [{ index: 0, args: 'ty":"Oslo"}' }] },
      { finish: FinishReason.TOOL_CALLS, usage: usage() },
    ]);
    expect(types(all)).toEqual([
      "created", "in_progress",
      "output_item.added", "function_call_arguments.delta", "function_call_arguments.delta",
      "function_call_arguments.done", "output_item.done",
      "completed",
    ]);
    expectSequence(all);
    expectStableIds(all);
    expect((finalResponse(all)["output"] as Json[]).map((o) => o["type"])).toEqual(["function_call"]);
    const sdk = await sdkStream(frames);
    expect(sdk.final.output[0]).toMatchObject({ type: "function_call", call_id: "call_1", arguments: '{"city":"Oslo"}' });
  });

  it("streams reasoning as a summary item before the text", async () => {
    const { frames, all } = run([{ reasoning: "Think" }, { reasoning: "ing." }, { content: "Answer." }, { finish: FinishReason.STOP }]);
    expect(types(all)).toEqual([
      "created", "in_progress",
      "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta", "reasoning_summary_text.delta",
      "reasoning_summary_text.done", "reasoning_summary_part.done", "output_item.done",
      "output_item.added", "content_part.added", "output_text.delta", "output_text.done", "content_part.done", "output_item.done",
      "completed",
    ]);
    expectSequence(all);
    expectStableIds(all);
    expect(all[2]!["item"]).toMatchObject({ type: "reasoning", summary: [] });
    expect(all[8]!["item"]).toMatchObject({ type: "reasoning", summary: [{ type: "summary_text", text: "Thinking." }] });
    const done = finalResponse(all);
    expect(done).not.toHaveProperty("usage"); // none was reported
    expect(stable(done)).toEqual(stable(encodeResponse(completion({ content: text("Answer."), reasoningContent: "Thinking." }, FinishReason.STOP, null), ctx)));
    const sdk = await sdkStream(frames);
    expect(sdk.final.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
    expect(sdk.final.output_text).toBe("Answer.");
  });

  it("streams a refusal as its own content part", () => {
    const { all } = run([{ content: "Well" }, { refusal: "I can't." }, { finish: FinishReason.STOP }]);
    expect(types(all)).toEqual([
      "created", "in_progress",
      "output_item.added", "content_part.added", "output_text.delta", "output_text.done", "content_part.done",
      "content_part.added", "refusal.delta", "refusal.done", "content_part.done", "output_item.done",
      "completed",
    ]);
    expectSequence(all);
    expect((finalResponse(all)["output"] as Json[])[0]!["content"]).toEqual([
      { type: "output_text", text: "Well", annotations: [], logprobs: [] },
      { type: "refusal", refusal: "I can't." },
    ]);
  });

  it("ends with response.incomplete on a length finish", async () => {
    const { frames, all } = run([{ content: "Once upon" }, { finish: FinishReason.LENGTH }], usage());
    expect(types(all).slice(-2)).toEqual(["output_item.done", "incomplete"]);
    expectSequence(all);
    expect(all[all.length - 2]!["item"]).toMatchObject({ status: "incomplete" });
    const done = finalResponse(all);
    expect(done).toMatchObject({ status: "incomplete", incomplete_details: { reason: "max_output_tokens" }, completed_at: null });
    expect(stable(done)).toEqual(stable(encodeResponse(completion({ content: text("Once upon") }, FinishReason.LENGTH), ctx)));
    const sdk = await sdkStream(frames);
    expect(sdk.final.status).toBe("incomplete");
    expect(sdk.final.output_text).toBe("Once upon");
  });

  it("never completes with an empty output", () => {
    const { all } = run([{ finish: FinishReason.STOP }]);
    expect(types(all)).toEqual([
      "created", "in_progress", "output_item.added", "content_part.added", "output_text.done", "content_part.done", "output_item.done", "completed",
    ]);
    expect((finalResponse(all)["output"] as Json[])).toHaveLength(1);
  });

  it("fails mid-stream with response.failed, keeping the output so far", async () => {
    const enc = createResponsesStreamEncoder(ctx);
    const frames = [
      ...enc.push(chunk({ content: "Partial" })),
      ...enc.push(chunk({ tools: [{ index: 0, id: "call_1", name: "weather", args: '{"ci' }] })),
      ...enc.fail({ code: "upstream_timeout", message: "the provider did not answer in time" }),
    ];
    const all = events(frames);
    expect(types(all).slice(-1)).toEqual(["failed"]);
    expectSequence(all);
    expectStableIds(all);
    const failed = finalResponse(all);
    expect(failed).toMatchObject({
      status: "failed",
      error: { code: "server_error", message: "the provider did not answer in time" },
      incomplete_details: null,
      completed_at: null,
    });
    expect((failed["output"] as Json[]).map((o) => [o["type"], o["status"]])).toEqual([["message", "completed"], ["function_call", "incomplete"]]);
    // Nothing after the terminal event.
    expect(enc.push(chunk({ content: "late" }))).toEqual([]);
    expect(enc.end()).toEqual([]);
    expect(enc.fail({ code: "internal", message: "again" })).toEqual([]);
    const sdk = await sdkStream(frames);
    expect(sdk.seen.at(-1)).toBe("response.failed");
    expect(sdk.final.status).toBe("failed");
  });

  it("keeps rate refusals recognisable and still opens the stream when failing first", () => {
    const enc = createResponsesStreamEncoder(ctx);
    const all = events(enc.fail({ code: "rate_limited", message: "slow down" }));
    expect(types(all)).toEqual(["created", "in_progress", "failed"]);
    expectSequence(all);
    expect(finalResponse(all)["error"]).toEqual({ code: "rate_limit_exceeded", message: "slow down" });
  });

  it("refuses a tool call that resumes after its item closed, before emitting any of the chunk", () => {
    const enc = createResponsesStreamEncoder(ctx);
    const frames = [
      ...enc.push(chunk({ tools: [{ index: 0, id: "a", name: "f", args: "{" }] })),
      ...enc.push(chunk({ tools: [{ index: 1, id: "b", name: "g", args: "{}" }] })),
    ];
    const e = gatewayError(() => enc.push(chunk({ content: "x", tools: [{ index: 0, args: "}" }] })));
    expect(e.code).toBe("upstream_error");
    const all = events([...frames, ...enc.fail({ code: e.code, message: e.message })]);
    expectSequence(all);
  });

  it("takes the model from the chunks and usage from end()", () => {
    const enc = createResponsesStreamEncoder(ctx);
    const first = events(enc.push(chunk({ content: "x" })));
    expect((first[0]!["response"] as Json)["model"]).toBe("provider-model");
    const last = events(enc.end(usage({ promptTokens: 1, completionTokens: 1, totalTokens: 2 })));
    expect((finalResponse(last)["usage"] as Json)["total_tokens"]).toBe(2);
  });

  it("refuses to end a stream that never started", () => {
    expect(gatewayError(() => createResponsesStreamEncoder(ctx).end()).code).toBe("upstream_error");
  });

  it("writes every frame byte for byte as the generic encoder would (JSON.stringify of the event, fields in order)", () => {
    const streams: Delta[][] = [
      // Text whose deltas need escaping, with a surrogate pair split between two deltas.
      [{ content: 'Say "hi"\\n\n' }, { content: "\u2028 é 日本 \ud83d" }, { content: "\ude00 </script>\u0000\t" }, { content: "\ud800 lone" }, { finish: FinishReason.STOP }, { usage: usage() }],
      // Function-call arguments, in pieces, after reasoning.
      [
        { reasoning: "Think \"hard\"" }, { reasoning: "\ud83d" }, { reasoning: "\ude00" },
        { tools: [{ index: 0, id: "call_a", name: "weather", args: '{"city":' }] },
        { tools: [{ index: 0, args: '"Zürich \\"\\u00e9\\"\\n"}' }] },
        { tools: [{ index: 1, id: "", name: "w\"x", args: "{}" }] },
        { finish: FinishReason.TOOL_CALLS },
      ],
      // Text then a refusal in the same message, cut by the token limit.
      [{ content: "Part \ud83d" }, { refusal: "\ude00 no \"" }, { refusal: "thanks\\" }, { finish: FinishReason.LENGTH }],
    ];
    for (const deltas of streams) {
      const { frames } = run(deltas);
      expect(frames).toEqual(frames.map((f) => genericFrame(JSON.parse(f.slice(f.indexOf("\ndata: ") + 7)) as Json)));
    }
    // The pair split between deltas is one character in the closed part, as JSON.stringify writes it.
    const { all } = run(streams[0]!);
    expect(all.find((e) => e["type"] === "response.output_text.done")!["text"]).toContain("\ud83d\ude00");
  });
});

/**
 * The frame of an event as a generic encoder writes it: JSON.stringify of
 * `{type, sequence_number, ...fields}`, items and parts built with
 * responses-response.ts, in the order the stream has always sent them. The
 * encoder puts its frames together from pieces (issue 13); they must match.
 */
function genericFrame(e: Json): string {
  const at = { item_id: e["item_id"], output_index: e["output_index"] };
  const part = (p: Json): Json => (p["type"] === "output_text" ? outputText(p["text"] as string) : refusalPart(p["refusal"] as string));
  const item = (it: Json): Json => {
    const status = it["status"] as ItemStatus;
    if (it["type"] === "message") return messageItem(it["id"] as string, (it["content"] as Json[]).map(part), status);
    if (it["type"] === "function_call") return functionCallItem(it["id"] as string, it["call_id"] as string, it["name"] as string, it["arguments"] as string, status);
    return reasoningItem(it["id"] as string, ((it["summary"] as Json[])[0]?.["text"] as string | undefined));
  };
  const type = e["type"] as string;
  let fields: Json;
  switch (type) {
    case "response.output_item.added":
    case "response.output_item.done":
      fields = { output_index: e["output_index"], item: item(e["item"] as Json) };
      break;
    case "response.content_part.added":
    case "response.content_part.done":
      fields = { ...at, content_index: e["content_index"], part: part(e["part"] as Json) };
      break;
    case "response.output_text.delta":
      fields = { ...at, content_index: e["content_index"], delta: e["delta"], logprobs: [] };
      break;
    case "response.output_text.done":
      fields = { ...at, content_index: e["content_index"], text: e["text"], logprobs: [] };
      break;
    case "response.refusal.delta":
      fields = { ...at, content_index: e["content_index"], delta: e["delta"] };
      break;
    case "response.refusal.done":
      fields = { ...at, content_index: e["content_index"], refusal: e["refusal"] };
      break;
    case "response.function_call_arguments.delta":
      fields = { ...at, delta: e["delta"] };
      break;
    case "response.function_call_arguments.done":
      fields = { ...at, name: e["name"], arguments: e["arguments"] };
      break;
    case "response.reasoning_summary_part.added":
    case "response.reasoning_summary_part.done":
      fields = { ...at, summary_index: 0, part: { type: "summary_text", text: (e["part"] as Json)["text"] } };
      break;
    case "response.reasoning_summary_text.delta":
      fields = { ...at, summary_index: 0, delta: e["delta"] };
      break;
    case "response.reasoning_summary_text.done":
      fields = { ...at, summary_index: 0, text: e["text"] };
      break;
    default: // created, in_progress, completed, incomplete, failed
      fields = { response: e["response"] };
  }
  return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: e["sequence_number"], ...fields })}\n\n`;
}
