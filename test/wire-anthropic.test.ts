import { describe, expect, it } from "vitest";
import { FinishReason, Role } from "../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../server/errors/errors.ts";
import { decodeMessagesRequest } from "../server/wire/anthropic/request-decode.ts";
import { encodeMessagesRequest } from "../server/wire/anthropic/request-encode.ts";
import { createStreamDecoder } from "../server/wire/anthropic/stream-decode.ts";
import { createStreamEncoder } from "../server/wire/anthropic/stream-encode.ts";

// The Anthropic wire codec on its own: strict decoding with Anthropic's field
// names, what survives a round trip, and the stream state machines.

function errorOf(f: () => unknown): GatewayError {
  try {
    f();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error("expected a GatewayError");
}

const base = { model: "m", max_tokens: 10, messages: [{ role: "user", content: "hi" }] };

describe("decodeMessagesRequest", () => {
  it("names the field at fault, in Anthropic's terms", () => {
    expect(errorOf(() => decodeMessagesRequest({ ...base, max_tokens: undefined })).message).toBe("max_tokens: Field required");
    expect(errorOf(() => decodeMessagesRequest({ ...base, messages: [{ role: "system", content: "x" }] })).param).toBe("messages.0.role");
    expect(errorOf(() => decodeMessagesRequest({ ...base, messages: [{ role: "user", content: [{ type: "text", text: 3 }] }] })).param).toBe("messages.0.content.0.text");
    expect(errorOf(() => decodeMessagesRequest({ ...base, tool_choice: { type: "sometimes" } })).param).toBe("tool_choice.type");
    expect(errorOf(() => decodeMessagesRequest({ ...base, metadata: { user_id: "u", other: 1 } })).param).toBe("metadata.other");
    const u = errorOf(() => decodeMessagesRequest({ ...base, messages: [{ role: "user", content: [{ type: "document", source: {} }] }] }));
    expect([u.code, u.param]).toEqual(["unsupported", "messages.0.content.0.type"]);
  });

  it("maps typed fields and keeps the rest in extra", () => {
    const { request, stream } = decodeMessagesRequest({
      ...base,
      stream: true,
      system: "sys",
      stop_sequences: ["x"],
      top_k: 5,
      metadata: { user_id: "u1" },
      tool_choice: { type: "tool", name: "f", disable_parallel_tool_use: true },
      thinking: { type: "enabled", budget_tokens: 100 },
      service_tier: "auto",
    });
    expect(stream).toBe(true);
    expect(request.messages.map((m) => m.role)).toEqual([Role.SYSTEM, Role.USER]);
    expect(request).toMatchObject({ maxTokens: 10, stop: ["x"], topK: 5, user: "u1", parallelToolCalls: false });
    expect(request.toolChoice?.choice).toEqual({ case: "function", value: "f" });
    expect(request.extra).toEqual({ thinking: { type: "enabled", budget_tokens: 100 }, service_tier: "auto" });
  });

  it("splits tool results into tool messages and keeps is_error for Anthropic", () => {
    const result = { type: "tool_result", tool_use_id: "t1", content: "boom", is_error: true };
    const { request } = decodeMessagesRequest({
      ...base,
      messages: [
        { role: "user", content: "go" },
        { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "f", input: { a: 1 } }] },
        { role: "user", content: [result, { type: "text", text: "and?" }] },
      ],
    });
    const [, assistant, tool, user] = request.messages;
    expect(assistant!.toolCalls[0]).toMatchObject({ id: "t1", function: { name: "f", arguments: '{"a":1}' } });
    expect(tool).toMatchObject({ role: Role.TOOL, toolCallId: "t1", extra: { content: [result] } });
    expect(user!.role).toBe(Role.USER);
    const out = encodeMessagesRequest(request, "m", { stream: false, defaultMaxTokens: 99 });
    expect(out["messages"]).toEqual([
      { role: "user", content: "go" },
      { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "f", input: { a: 1 } }] },
      { role: "user", content: [result, { type: "text", text: "and?" }] },
    ]);
  });
});

describe("thinking signatures through a stream", () => {
  it("an Anthropic stream's thinking signature reaches an Anthropic-format caller unchanged", () => {
    const d = createStreamDecoder();
    const chunks = [
      ...d.push("message_start", { type: "message_start", message: { id: "msg_1", model: "m", usage: { input_tokens: 5, output_tokens: 1 } } }),
      ...d.push("content_block_start", { index: 0, content_block: { type: "thinking", thinking: "", signature: "" } }),
      ...d.push("content_block_delta", { index: 0, delta: { type: "thinking_delta", thinking: "let me see" } }),
      ...d.push("content_block_delta", { index: 0, delta: { type: "signature_delta", signature: "EqQBCgIYAhIM1gbcDa9GJwZA" } }),
      ...d.push("content_block_stop", { index: 0 }),
      ...d.push("content_block_start", { index: 1, content_block: { type: "text", text: "" } }),
      ...d.push("content_block_delta", { index: 1, delta: { type: "text_delta", text: "42" } }),
      ...d.push("message_delta", { delta: { stop_reason: "end_turn" }, usage: { output_tokens: 9 } }),
      ...d.push("message_stop", { type: "message_stop" }),
    ];
    const e = createStreamEncoder();
    const frames = [...chunks.flatMap((c) => e.push(c)), ...e.end()].join("");
    const events = frames.split("\n\n").filter(Boolean).map((f) => JSON.parse(f.split("\ndata: ")[1]!) as { type: string; index?: number; delta?: { type: string; signature?: string } });
    const sig = events.find((x) => x.delta?.type === "signature_delta");
    expect(sig?.delta?.signature).toBe("EqQBCgIYAhIM1gbcDa9GJwZA");
    // The signature closes the thinking block (index 0), before the text block starts.
    expect(sig?.index).toBe(0);
    const order = events.map((x) => `${x.type}${x.delta ? ":" + x.delta.type : ""}`);
    expect(order.indexOf("content_block_delta:signature_delta")).toBeLessThan(order.indexOf("content_block_delta:text_delta"));
  });
});

describe("stream decoder", () => {
  it("maps content block indexes to tool call indexes and ends only on message_stop", () => {
    const d = createStreamDecoder();
    const chunks = [
      ...d.push("message_start", { type: "message_start", message: { id: "msg_1", model: "m", usage: { input_tokens: 5, cache_read_input_tokens: 2, output_tokens: 1 } } }),
      ...d.push("content_block_start", { index: 0, content_block: { type: "text", text: "" } }),
      ...d.push("ping", { type: "ping" }),
      ...d.push("content_block_delta", { index: 0, delta: { type: "text_delta", text: "hi" } }),
      ...d.push("content_block_start", { index: 1, content_block: { type: "tool_use", id: "t1", name: "f", input: {} } }),
      ...d.push("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"a":' } }),
      ...d.push("content_block_start", { index: 2, content_block: { type: "tool_use", id: "t2", name: "g", input: {} } }),
      ...d.push("content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: "{}" } }),
      ...d.push("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "1}" } }),
      ...d.push("message_delta", { delta: { stop_reason: "tool_use" }, usage: { output_tokens: 9 } }),
    ];
    expect(d.done).toBe(false);
    chunks.push(...d.push("message_stop", { type: "message_stop" }));
    expect(d.done).toBe(true);
    expect(chunks[0]!.choices[0]!.delta!.role).toBe(Role.ASSISTANT);
    const tools = chunks.flatMap((c) => c.choices[0]?.delta?.toolCalls ?? []).map((t) => [t.index, t.id, t.arguments]);
    expect(tools).toEqual([[0, "t1", ""], [0, "", '{"a":'], [1, "t2", ""], [1, "", "{}"], [0, "", "1}"]]);
    expect(chunks.at(-2)!.choices[0]!.finishReason).toBe(FinishReason.TOOL_CALLS);
    expect(chunks.at(-1)!.usage).toMatchObject({ promptTokens: 7, completionTokens: 9, cachedTokens: 2, totalTokens: 16 });
  });
});

describe("stream encoder", () => {
  it("refuses interleaved tool call fragments rather than misplacing them", () => {
    const e = createStreamEncoder();
    const chunk = (index: number, id: string, args: string) => ({
      $typeName: "switchyard.v1.ChatChunk" as const, id: "x", created: 0n, model: "m", systemFingerprint: "", gateway: undefined, usage: undefined,
      choices: [{ $typeName: "switchyard.v1.ChoiceDelta" as const, index: 0, finishReason: FinishReason.UNSPECIFIED, extra: undefined,
        delta: { $typeName: "switchyard.v1.Delta" as const, role: Role.UNSPECIFIED, toolCalls: [{ $typeName: "switchyard.v1.ToolCallDelta" as const, index, id, name: id ? "f" : "", arguments: args }] } }],
    });
    e.push(chunk(0, "a", "{"));
    e.push(chunk(1, "b", "{}"));
    expect(() => e.push(chunk(0, "", "}"))).toThrow(GatewayError);
  });
});
