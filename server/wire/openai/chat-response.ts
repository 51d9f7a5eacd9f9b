import type { JsonObject } from "@bufbuild/protobuf";
import {
  FinishReason,
  Role,
  type ChatChunk,
  type ChatCompletion,
  type Choice,
  type ChoiceDelta,
  type ContentPart,
  type Message,
  type ToolCall,
  type ToolCallDelta,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord, type JsonRecord } from "./json.ts";

/**
 * OpenAI chat completion and chunk JSON <-> canonical ChatCompletion/ChatChunk.
 * Decoding reads a provider's answer (anything off-shape is an upstream
 * error, never a crash); encoding writes what OpenAI SDK callers receive,
 * with every key OpenAI always sends, so strict clients parse it.
 */

const FINISH_IN: Record<string, FinishReason> = {
  stop: FinishReason.STOP,
  length: FinishReason.LENGTH,
  tool_calls: FinishReason.TOOL_CALLS,
  content_filter: FinishReason.CONTENT_FILTER,
  function_call: FinishReason.FUNCTION_CALL,
};

const FINISH_OUT: Record<number, string | null> = {
  [FinishReason.UNSPECIFIED]: null,
  [FinishReason.STOP]: "stop",
  [FinishReason.LENGTH]: "length",
  [FinishReason.TOOL_CALLS]: "tool_calls",
  [FinishReason.CONTENT_FILTER]: "content_filter",
  [FinishReason.FUNCTION_CALL]: "function_call",
};

const COMPLETION_KEYS = new Set(["id", "object", "created", "model", "choices", "usage", "system_fingerprint"]);
const CHOICE_KEYS = new Set(["index", "message", "delta", "finish_reason"]);
const RESPONSE_MESSAGE_KEYS = new Set(["role", "content", "tool_calls", "refusal", "reasoning_content"]);

function bad(what: string): GatewayError {
  return new GatewayError("upstream_error", `provider returned a malformed response: ${what}`);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

/**
 * A provider's count (tokens, indexes): absent means 0; anything that is not
 * a uint32 is an upstream error, so a misbehaving provider can never produce
 * a canonical message that fails to serialise.
 */
export function count(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw bad(`${what} is not a count`);
  return v;
}

/** Unix seconds; beyond the safe-integer range is an upstream error. */
function seconds(v: unknown): bigint {
  if (v === undefined || v === null) return 0n;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw bad("created is not a timestamp");
  return BigInt(v);
}

function rest(o: JsonRecord, known: ReadonlySet<string>): JsonObject | undefined {
  let extra: JsonObject | undefined;
  for (const k in o) {
    if (known.has(k) || o[k] === undefined) continue;
    (extra ??= {})[k] = o[k] as JsonObject[string];
  }
  return extra;
}

export function decodeUsage(v: unknown): Usage | undefined {
  if (!isRecord(v)) return undefined;
  const pd = isRecord(v["prompt_tokens_details"]) ? v["prompt_tokens_details"] : undefined;
  const cd = isRecord(v["completion_tokens_details"]) ? v["completion_tokens_details"] : undefined;
  const prompt = count(v["prompt_tokens"], "usage.prompt_tokens");
  const completion = count(v["completion_tokens"], "usage.completion_tokens");
  return {
    $typeName: "switchyard.v1.Usage",
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: count(v["total_tokens"], "usage.total_tokens") || Math.min(prompt + completion, 0xffff_ffff),
    cachedTokens: count(pd?.["cached_tokens"], "usage.prompt_tokens_details.cached_tokens"),
    reasoningTokens: count(cd?.["reasoning_tokens"], "usage.completion_tokens_details.reasoning_tokens"),
    cacheWriteTokens: 0,
  };
}

/** Message content as text: a string, or the text parts of an array (some servers send parts). */
function contentText(c: unknown): string | undefined {
  if (typeof c === "string") return c;
  if (!Array.isArray(c)) return undefined;
  let s = "";
  for (const p of c) if (isRecord(p) && typeof p["text"] === "string") s += p["text"];
  return s;
}

export function decodeChatCompletion(body: unknown): ChatCompletion {
  if (!isRecord(body)) throw bad("not a JSON object");
  if (!Array.isArray(body["choices"])) throw bad("no choices");
  return {
    $typeName: "switchyard.v1.ChatCompletion",
    id: str(body["id"]),
    created: seconds(body["created"]),
    model: str(body["model"]),
    choices: body["choices"].map(decodeChoice),
    usage: decodeUsage(body["usage"]),
    systemFingerprint: str(body["system_fingerprint"]),
    gateway: undefined,
    extra: rest(body, COMPLETION_KEYS),
  };
}

function decodeChoice(raw: unknown, i: number): Choice {
  if (!isRecord(raw) || !isRecord(raw["message"])) throw bad(`choices[${i}] has no message`);
  const m = raw["message"];
  const text = contentText(m["content"]);
  const content: ContentPart[] = text === undefined
    ? []
    : [{ $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } }];
  const toolCalls: ToolCall[] = Array.isArray(m["tool_calls"])
    ? m["tool_calls"].filter(isRecord).map((t) => {
        const f = isRecord(t["function"]) ? t["function"] : {};
        return {
          $typeName: "switchyard.v1.ToolCall",
          id: str(t["id"]),
          function: { $typeName: "switchyard.v1.FunctionCall", name: str(f["name"]), arguments: str(f["arguments"]) },
        };
      })
    : [];
  const message: Message = {
    $typeName: "switchyard.v1.Message",
    role: Role.ASSISTANT,
    content,
    contentIsText: true,
    name: "",
    toolCalls,
    toolCallId: "",
    refusal: typeof m["refusal"] === "string" ? m["refusal"] : undefined,
    reasoningContent: str(m["reasoning_content"]),
    extra: rest(m, RESPONSE_MESSAGE_KEYS),
  };
  return {
    $typeName: "switchyard.v1.Choice",
    index: count(raw["index"], `choices[${i}].index`),
    message,
    finishReason: FINISH_IN[str(raw["finish_reason"])] ?? FinishReason.UNSPECIFIED,
    extra: rest(raw, CHOICE_KEYS),
  };
}

export function decodeChatChunk(body: unknown): ChatChunk {
  if (!isRecord(body)) throw bad("stream chunk is not a JSON object");
  const choices = Array.isArray(body["choices"]) ? body["choices"] : [];
  return {
    $typeName: "switchyard.v1.ChatChunk",
    id: str(body["id"]),
    created: seconds(body["created"]),
    model: str(body["model"]),
    choices: choices.map(decodeChoiceDelta),
    usage: decodeUsage(body["usage"]),
    systemFingerprint: str(body["system_fingerprint"]),
    gateway: undefined,
  };
}

function decodeChoiceDelta(raw: unknown, i: number): ChoiceDelta {
  if (!isRecord(raw)) throw bad(`stream chunk choices[${i}] is not an object`);
  const d = isRecord(raw["delta"]) ? raw["delta"] : {};
  const toolCalls: ToolCallDelta[] = Array.isArray(d["tool_calls"])
    ? d["tool_calls"].filter(isRecord).map((t, j) => {
        const f = isRecord(t["function"]) ? t["function"] : {};
        return {
          $typeName: "switchyard.v1.ToolCallDelta",
          index: t["index"] === undefined ? j : count(t["index"], "tool_calls[].index"),
          id: str(t["id"]),
          name: str(f["name"]),
          arguments: typeof f["arguments"] === "string" ? f["arguments"] : undefined,
        };
      })
    : [];
  return {
    $typeName: "switchyard.v1.ChoiceDelta",
    index: count(raw["index"], `choices[${i}].index`),
    delta: {
      $typeName: "switchyard.v1.Delta",
      role: d["role"] === "assistant" ? Role.ASSISTANT : Role.UNSPECIFIED,
      content: typeof d["content"] === "string" ? d["content"] : undefined,
      toolCalls,
      refusal: typeof d["refusal"] === "string" ? d["refusal"] : undefined,
      reasoningContent: typeof d["reasoning_content"] === "string" ? d["reasoning_content"] : undefined,
    },
    finishReason: FINISH_IN[str(raw["finish_reason"])] ?? FinishReason.UNSPECIFIED,
    extra: rest(raw, CHOICE_KEYS),
  };
}

// ---------------------------------------------------------------------------
// Canonical -> OpenAI wire (what REST callers receive)

export function encodeUsage(u: Usage): JsonRecord {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.totalTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

function textOf(parts: readonly ContentPart[]): string | null {
  if (parts.length === 0) return null;
  let s = "";
  for (const p of parts) if (p.part.case === "text") s += p.part.value;
  return s;
}

export function encodeChatCompletion(c: ChatCompletion): JsonRecord {
  const out: JsonRecord = c.extra ? { ...c.extra } : {};
  out["id"] = c.id;
  out["object"] = "chat.completion";
  out["created"] = Number(c.created);
  out["model"] = c.model;
  out["choices"] = c.choices.map((ch) => {
    const m = ch.message;
    const message: JsonRecord = m?.extra ? { ...m.extra } : {};
    message["role"] = "assistant";
    message["content"] = m ? textOf(m.content) : null;
    message["refusal"] = m?.refusal ?? null;
    // DeepSeek's field name, which OpenAI-compatible clients that show reasoning read.
    if (m?.reasoningContent) message["reasoning_content"] = m.reasoningContent;
    if (m && m.toolCalls.length > 0) {
      message["tool_calls"] = m.toolCalls.map((t) => ({
        id: t.id,
        type: "function",
        function: { name: t.function?.name ?? "", arguments: t.function?.arguments ?? "" },
      }));
    }
    const choice: JsonRecord = ch.extra ? { ...ch.extra } : {};
    choice["index"] = ch.index;
    choice["message"] = message;
    choice["logprobs"] ??= null;
    choice["finish_reason"] = FINISH_OUT[ch.finishReason] ?? "stop";
    return choice;
  });
  if (c.usage) out["usage"] = encodeUsage(c.usage);
  if (c.systemFingerprint) out["system_fingerprint"] = c.systemFingerprint;
  return out;
}

export function encodeChatChunk(c: ChatChunk): JsonRecord {
  const out: JsonRecord = {
    id: c.id,
    object: "chat.completion.chunk",
    created: Number(c.created),
    model: c.model,
  };
  if (c.systemFingerprint) out["system_fingerprint"] = c.systemFingerprint;
  out["choices"] = c.choices.map((ch) => {
    const d = ch.delta;
    const delta: JsonRecord = {};
    if (d) {
      if (d.role === Role.ASSISTANT) delta["role"] = "assistant";
      if (d.content !== undefined) delta["content"] = d.content;
      if (d.refusal !== undefined) delta["refusal"] = d.refusal;
      if (d.reasoningContent !== undefined) delta["reasoning_content"] = d.reasoningContent;
      if (d.toolCalls.length > 0) {
        delta["tool_calls"] = d.toolCalls.map((t) => {
          const tc: JsonRecord = { index: t.index };
          const fn: JsonRecord = {};
          if (t.id) {
            tc["id"] = t.id;
            tc["type"] = "function";
          }
          if (t.name) fn["name"] = t.name;
          if (t.arguments !== undefined) fn["arguments"] = t.arguments;
          tc["function"] = fn;
          return tc;
        });
      }
    }
    const choice: JsonRecord = ch.extra ? { ...ch.extra } : {};
    choice["index"] = ch.index;
    choice["delta"] = delta;
    choice["logprobs"] ??= null;
    choice["finish_reason"] = FINISH_OUT[ch.finishReason] ?? null;
    return choice;
  });
  if (c.usage) out["usage"] = encodeUsage(c.usage);
  return out;
}
