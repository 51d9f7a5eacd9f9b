import type { JsonObject } from "@bufbuild/protobuf";
import { FinishReason, Role, type ChatCompletion, type ContentPart, type Message, type ToolCall } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { count } from "../openai/chat-response.ts";
import { isRecord, type JsonRecord } from "../openai/json.ts";
import type { AnthropicResponse, AnthropicUsage, ContentBlock, StopReason } from "./types.ts";

/**
 * Anthropic Messages API response JSON <-> canonical ChatCompletion.
 * Decoding reads a provider's answer (off-shape is an upstream error);
 * encoding writes what Anthropic SDK callers of POST /v1/messages receive.
 *
 * Anthropic's `input_tokens` excludes cached tokens, so the canonical
 * promptTokens is input + cache_read + cache_creation, and encoding
 * subtracts them again.
 */

const STOP_IN: Record<string, FinishReason> = {
  end_turn: FinishReason.STOP,
  stop_sequence: FinishReason.STOP,
  pause_turn: FinishReason.STOP,
  max_tokens: FinishReason.LENGTH,
  model_context_window_exceeded: FinishReason.LENGTH,
  tool_use: FinishReason.TOOL_CALLS,
  refusal: FinishReason.CONTENT_FILTER,
};

export function decodeStopReason(v: unknown): FinishReason {
  return typeof v === "string" ? (STOP_IN[v] ?? FinishReason.STOP) : FinishReason.UNSPECIFIED;
}

/** The Anthropic stop_reason for a canonical finish; a stop sequence that matched says "stop_sequence". */
export function encodeStopReason(f: FinishReason, stopSequence: string | null): StopReason | null {
  switch (f) {
    case FinishReason.UNSPECIFIED:
      return null;
    case FinishReason.LENGTH:
      return "max_tokens";
    case FinishReason.TOOL_CALLS:
    case FinishReason.FUNCTION_CALL:
      return "tool_use";
    case FinishReason.CONTENT_FILTER:
      return "refusal";
    default:
      return stopSequence === null ? "end_turn" : "stop_sequence";
  }
}

function bad(what: string): GatewayError {
  return new GatewayError("upstream_error", `provider returned a malformed response: ${what}`);
}

export function decodeUsage(v: unknown): Usage | undefined {
  if (!isRecord(v)) return undefined;
  const input = count(v["input_tokens"], "usage.input_tokens");
  const read = count(v["cache_read_input_tokens"], "usage.cache_read_input_tokens");
  const write = count(v["cache_creation_input_tokens"], "usage.cache_creation_input_tokens");
  const output = count(v["output_tokens"], "usage.output_tokens");
  const prompt = Math.min(input + read + write, 0xffff_ffff);
  return {
    $typeName: "switchyard.v1.Usage",
    promptTokens: prompt,
    completionTokens: output,
    totalTokens: Math.min(prompt + output, 0xffff_ffff),
    cachedTokens: read,
    cacheWriteTokens: write,
    reasoningTokens: 0,
  };
}

export function encodeUsage(u: Usage | undefined): AnthropicUsage {
  if (u === undefined) return { input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  return {
    input_tokens: Math.max(0, u.promptTokens - u.cachedTokens - u.cacheWriteTokens),
    output_tokens: u.completionTokens,
    cache_creation_input_tokens: u.cacheWriteTokens,
    cache_read_input_tokens: u.cachedTokens,
  };
}

/** A block the canonical message carries exactly; anything else keeps the original content in extra. */
function plain(b: JsonRecord): boolean {
  if (b["type"] === "text") return Object.keys(b).every((k) => k === "type" || k === "text" || (k === "citations" && b[k] == null));
  return b["type"] === "tool_use";
}

export function decodeMessagesResponse(body: unknown): ChatCompletion {
  if (!isRecord(body)) throw bad("not a JSON object");
  if (!Array.isArray(body["content"])) throw bad("no content");
  const blocks = body["content"].filter(isRecord);
  let text: string | undefined;
  let reasoning = "";
  const toolCalls: ToolCall[] = [];
  for (const b of blocks) {
    if (b["type"] === "text" && typeof b["text"] === "string") text = (text ?? "") + b["text"];
    else if (b["type"] === "thinking" && typeof b["thinking"] === "string") reasoning += b["thinking"];
    else if (b["type"] === "tool_use") {
      toolCalls.push({
        $typeName: "switchyard.v1.ToolCall",
        id: typeof b["id"] === "string" ? b["id"] : "",
        function: { $typeName: "switchyard.v1.FunctionCall", name: typeof b["name"] === "string" ? b["name"] : "", arguments: JSON.stringify(b["input"] ?? {}) },
      });
    }
  }
  const content: ContentPart[] = text === undefined ? [] : [{ $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } }];
  const message: Message = {
    $typeName: "switchyard.v1.Message",
    role: Role.ASSISTANT,
    content,
    contentIsText: true,
    name: "",
    toolCalls,
    toolCallId: "",
    refusal: undefined,
    reasoningContent: reasoning,
    // Thinking signatures, redacted thinking, citations: kept for Anthropic callers (see encode below).
    extra: blocks.every(plain) ? undefined : { content: blocks as JsonObject[string] },
  };
  const stopSequence = body["stop_sequence"];
  return {
    $typeName: "switchyard.v1.ChatCompletion",
    id: typeof body["id"] === "string" ? body["id"] : "",
    created: BigInt(Math.floor(Date.now() / 1000)),
    model: typeof body["model"] === "string" ? body["model"] : "",
    choices: [{
      $typeName: "switchyard.v1.Choice",
      index: 0,
      message,
      finishReason: decodeStopReason(body["stop_reason"]),
      extra: typeof stopSequence === "string" ? { stop_sequence: stopSequence } : undefined,
    }],
    usage: decodeUsage(body["usage"]),
    systemFingerprint: "",
    gateway: undefined,
    extra: undefined,
  };
}

/** Tool call arguments as Anthropic's `input` object; models that return invalid JSON make an upstream error. */
/**
 * Tool-call arguments as Anthropic's `input` object. Arguments cut off by the
 * token limit (or otherwise not a JSON object) become `{}`: the answer was
 * already paid for, and its stop reason tells the caller it was cut.
 */
export function toolInput(args: string): Record<string, unknown> {
  if (args.trim() === "") return {};
  try {
    const v: unknown = JSON.parse(args);
    return isRecord(v) ? v : {};
  } catch {
    return {};
  }
}

export function newMessageId(): string {
  return `msg_${crypto.randomUUID().replaceAll("-", "")}`;
}

export function encodeMessagesResponse(c: ChatCompletion): AnthropicResponse {
  const choice = c.choices[0];
  const m = choice?.message;
  let content: ContentBlock[] = [];
  const orig = m?.extra?.["content"];
  if (Array.isArray(orig) && orig.every(isRecord)) content = orig as unknown as ContentBlock[];
  else if (m) {
    if (m.reasoningContent) content.push({ type: "thinking", thinking: m.reasoningContent, signature: "" });
    let text = "";
    for (const p of m.content) if (p.part.case === "text") text += p.part.value;
    if (m.refusal) text += m.refusal;
    if (text !== "") content.push({ type: "text", text });
    for (const t of m.toolCalls) content.push({ type: "tool_use", id: t.id, name: t.function?.name ?? "", input: toolInput(t.function?.arguments ?? "") });
  }
  const stopSequence = typeof choice?.extra?.["stop_sequence"] === "string" ? choice.extra["stop_sequence"] : null;
  return {
    id: c.id.startsWith("msg_") ? c.id : newMessageId(),
    type: "message",
    role: "assistant",
    model: c.model,
    content,
    stop_reason: encodeStopReason(choice?.finishReason ?? FinishReason.STOP, stopSequence) ?? "end_turn",
    stop_sequence: stopSequence,
    usage: encodeUsage(c.usage),
  };
}
