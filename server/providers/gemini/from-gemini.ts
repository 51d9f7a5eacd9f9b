import { FinishReason, Role, type ChatCompletion, type Choice, type ToolCall } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import type { EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import type { GeminiCandidate, GeminiGenerateContentResponse, GeminiPart } from "./wire.ts";

/**
 * Gemini answers -> canonical messages (pure). Anything off-shape is an
 * upstream error, never a crash or an unserialisable message.
 */

const FINISH: Record<string, FinishReason> = {
  STOP: FinishReason.STOP,
  MAX_TOKENS: FinishReason.LENGTH,
  SAFETY: FinishReason.CONTENT_FILTER,
  RECITATION: FinishReason.CONTENT_FILTER,
  BLOCKLIST: FinishReason.CONTENT_FILTER,
  PROHIBITED_CONTENT: FinishReason.CONTENT_FILTER,
  SPII: FinishReason.CONTENT_FILTER,
  IMAGE_SAFETY: FinishReason.CONTENT_FILTER,
  IMAGE_PROHIBITED_CONTENT: FinishReason.CONTENT_FILTER,
};

/**
 * Gemini's finish reason -> canonical. A turn that made function calls and
 * stopped normally is TOOL_CALLS (Gemini says STOP). Reasons with no OpenAI
 * equivalent (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL,
 * TOO_MANY_TOOL_CALLS, ...) end the answer: STOP.
 */
export function finishReason(reason: string | undefined, madeCalls: boolean): FinishReason {
  if (reason === undefined || reason === "" || reason === "FINISH_REASON_UNSPECIFIED") return FinishReason.UNSPECIFIED;
  const mapped = FINISH[reason] ?? FinishReason.STOP;
  return mapped === FinishReason.STOP && madeCalls ? FinishReason.TOOL_CALLS : mapped;
}

function bad(what: string): GatewayError {
  return new GatewayError("upstream_error", `Gemini returned a malformed response: ${what}`);
}

function count(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw bad(`${what} is not a count`);
  return v;
}

/**
 * usageMetadata -> Usage. Completion tokens include thinking, as OpenAI counts
 * reasoning inside completion_tokens: completion = candidates + thoughts, and
 * reasoningTokens = thoughts. Tokens of tool-use prompts count as prompt, so
 * prompt + completion = Gemini's totalTokenCount.
 */
export function toUsage(v: unknown): Usage | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const u = v as Record<string, unknown>;
  const prompt = count(u["promptTokenCount"], "promptTokenCount") + count(u["toolUsePromptTokenCount"], "toolUsePromptTokenCount");
  const thoughts = count(u["thoughtsTokenCount"], "thoughtsTokenCount");
  const completion = count(u["candidatesTokenCount"], "candidatesTokenCount") + thoughts;
  return {
    $typeName: "switchyard.v1.Usage",
    promptTokens: Math.min(prompt, 0xffff_ffff),
    completionTokens: Math.min(completion, 0xffff_ffff),
    totalTokens: count(u["totalTokenCount"], "totalTokenCount") || Math.min(prompt + completion, 0xffff_ffff),
    cachedTokens: count(u["cachedContentTokenCount"], "cachedContentTokenCount"),
    reasoningTokens: thoughts,
    cacheWriteTokens: 0,
  };
}

/** A prompt Gemini refused outright: no candidates, only promptFeedback.blockReason. */
export function promptBlocked(body: GeminiGenerateContentResponse): GatewayError | undefined {
  const reason = body.promptFeedback?.blockReason;
  if ((body.candidates?.length ?? 0) > 0 || typeof reason !== "string") return undefined;
  const why = body.promptFeedback?.blockReasonMessage ? `: ${body.promptFeedback.blockReasonMessage}` : "";
  return new GatewayError("invalid_request", `Gemini blocked the prompt (blockReason ${reason})${why}`, { providerCode: "content_filter" });
}

/**
 * Gemini's thought signature on a function call must come back with that
 * call in the next turn, or thinking models refuse the conversation. Callers
 * hold on to tool-call ids anyway, so the signature travels inside the id.
 */
export const SIGNATURE_MARK = "~ts~";

function withSignature(id: string, signature: unknown): string {
  return typeof signature === "string" && signature !== "" ? `${id}${SIGNATURE_MARK}${signature}` : id;
}

/** What one candidate's parts say, split by kind. Function calls get ids `call_<n>`, n counting from `firstCall`. */
export function readParts(parts: unknown, what: string, firstCall = 0): { text: string; thoughts: string; calls: ToolCall[] } {
  const out = { text: "", thoughts: "", calls: [] as ToolCall[] };
  if (parts === undefined) return out;
  if (!Array.isArray(parts)) throw bad(`${what} is not a list`);
  for (const raw of parts as GeminiPart[]) {
    if (typeof raw !== "object" || raw === null) throw bad(`${what} has a part that is not an object`);
    if (typeof raw.text === "string") {
      if (raw.thought === true) out.thoughts += raw.text;
      else out.text += raw.text;
    } else if (raw.functionCall !== undefined) {
      const fc = raw.functionCall;
      if (typeof fc !== "object" || fc === null || typeof fc.name !== "string") throw bad(`${what} has a functionCall without a name`);
      // Gemini has no call ids (except on some newer models); ids are made stable from the position.
      const id = typeof fc.id === "string" && fc.id !== "" ? fc.id : `call_${firstCall + out.calls.length}`;
      out.calls.push({
        $typeName: "switchyard.v1.ToolCall",
        id: withSignature(id, raw.thoughtSignature),
        function: { $typeName: "switchyard.v1.FunctionCall", name: fc.name, arguments: JSON.stringify(fc.args ?? {}) },
      });
    }
    // Other parts (inlineData output, executableCode, codeExecutionResult) have no canonical form and are dropped.
  }
  return out;
}

export function toChatCompletion(raw: unknown, requestModel: string): ChatCompletion {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw bad("not a JSON object");
  const body = raw as GeminiGenerateContentResponse;
  const blocked = promptBlocked(body);
  if (blocked) throw blocked;
  if (!Array.isArray(body.candidates) || body.candidates.length === 0) throw bad("no candidates");
  return {
    $typeName: "switchyard.v1.ChatCompletion",
    id: typeof body.responseId === "string" ? body.responseId : "",
    created: BigInt(Math.floor(Date.now() / 1000)),
    model: typeof body.modelVersion === "string" && body.modelVersion !== "" ? body.modelVersion : requestModel,
    choices: body.candidates.map(toChoice),
    usage: toUsage(body.usageMetadata),
    systemFingerprint: "",
    gateway: undefined,
    extra: undefined,
  };
}

function toChoice(c: GeminiCandidate, i: number): Choice {
  if (typeof c !== "object" || c === null) throw bad(`candidates[${i}] is not an object`);
  const { text, thoughts, calls } = readParts(c.content?.parts, `candidates[${i}].content.parts`);
  return {
    $typeName: "switchyard.v1.Choice",
    index: c.index === undefined ? i : count(c.index, `candidates[${i}].index`),
    message: {
      $typeName: "switchyard.v1.Message",
      role: Role.ASSISTANT,
      content: text === "" && calls.length > 0 ? [] : [{ $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } }],
      contentIsText: true,
      name: "",
      toolCalls: calls,
      toolCallId: "",
      refusal: undefined,
      reasoningContent: thoughts,
      extra: undefined,
    },
    finishReason: finishReason(c.finishReason, calls.length > 0) || FinishReason.STOP,
    extra: undefined,
  };
}

/** batchEmbedContents answer -> EmbedResponse. Gemini reports no token usage for embeddings. */
export function toEmbedResponse(raw: unknown, model: string, expected: number): EmbedResponse {
  const list = typeof raw === "object" && raw !== null ? (raw as Record<string, unknown>)["embeddings"] : undefined;
  if (!Array.isArray(list) || list.length !== expected) throw bad(`expected ${expected} embeddings`);
  return {
    $typeName: "switchyard.v1.EmbedResponse",
    data: list.map((e: unknown, i) => {
      const values = typeof e === "object" && e !== null ? (e as Record<string, unknown>)["values"] : undefined;
      if (!Array.isArray(values) || !values.every((x) => typeof x === "number" && Number.isFinite(x))) throw bad(`embeddings[${i}].values`);
      return { $typeName: "switchyard.v1.Embedding", index: i, vector: values as number[] };
    }),
    model,
    usage: undefined,
    gateway: undefined,
  };
}
