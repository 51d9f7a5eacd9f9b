import { randomUUID } from "node:crypto";
import { FinishReason, Role, type ChatCompletion, type ToolCall } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord } from "../../wire/openai/json.ts";

/**
 * Converse answers -> canonical. Bedrock sends no response id or creation
 * time, so the gateway makes them up; the model is the one asked for.
 */

const FINISH: Record<string, FinishReason> = {
  end_turn: FinishReason.STOP,
  stop_sequence: FinishReason.STOP,
  max_tokens: FinishReason.LENGTH,
  model_context_window_exceeded: FinishReason.LENGTH,
  tool_use: FinishReason.TOOL_CALLS,
  guardrail_intervened: FinishReason.CONTENT_FILTER,
  content_filtered: FinishReason.CONTENT_FILTER,
};

export function finishReason(stopReason: unknown): FinishReason {
  return typeof stopReason === "string" ? FINISH[stopReason] ?? FinishReason.STOP : FinishReason.UNSPECIFIED;
}

export function newCompletionId(): string {
  return `chatcmpl-bedrock-${randomUUID().replaceAll("-", "")}`;
}

function bad(what: string): GatewayError {
  return new GatewayError("upstream_error", `Bedrock returned a malformed response: ${what}`);
}

function tokens(v: unknown, what: string): number {
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw bad(`${what} is not a count`);
  return v;
}

/**
 * TokenUsage -> Usage. Bedrock counts cache reads and writes apart from
 * inputTokens (as Anthropic does); the canonical prompt count includes them.
 */
export function toUsage(u: unknown): Usage | undefined {
  if (!isRecord(u)) return undefined;
  const cacheRead = tokens(u["cacheReadInputTokens"], "usage.cacheReadInputTokens");
  const cacheWrite = tokens(u["cacheWriteInputTokens"], "usage.cacheWriteInputTokens");
  const prompt = Math.min(tokens(u["inputTokens"], "usage.inputTokens") + cacheRead + cacheWrite, 0xffff_ffff);
  const completion = tokens(u["outputTokens"], "usage.outputTokens");
  return {
    $typeName: "switchyard.v1.Usage",
    promptTokens: prompt,
    completionTokens: completion,
    totalTokens: Math.max(tokens(u["totalTokens"], "usage.totalTokens"), Math.min(prompt + completion, 0xffff_ffff)),
    cachedTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
    reasoningTokens: 0, // Bedrock does not count reasoning apart from outputTokens
  };
}

export function fromConverseResponse(body: unknown, model: string): ChatCompletion {
  if (!isRecord(body)) throw bad("not a JSON object");
  const output = body["output"];
  const message = isRecord(output) ? output["message"] : undefined;
  if (!isRecord(message) || !Array.isArray(message["content"])) throw bad("no output.message.content");
  let text = "";
  let reasoning = "";
  const toolCalls: ToolCall[] = [];
  for (const block of message["content"]) {
    if (!isRecord(block)) continue;
    if (typeof block["text"] === "string") text += block["text"];
    const rc = block["reasoningContent"];
    if (isRecord(rc) && isRecord(rc["reasoningText"]) && typeof rc["reasoningText"]["text"] === "string") reasoning += rc["reasoningText"]["text"];
    const tu = block["toolUse"];
    if (isRecord(tu)) {
      if (typeof tu["toolUseId"] !== "string" || typeof tu["name"] !== "string") throw bad("toolUse without toolUseId or name");
      toolCalls.push({
        $typeName: "switchyard.v1.ToolCall",
        id: tu["toolUseId"],
        function: { $typeName: "switchyard.v1.FunctionCall", name: tu["name"], arguments: JSON.stringify(tu["input"] ?? {}) },
      });
    }
  }
  return {
    $typeName: "switchyard.v1.ChatCompletion",
    id: newCompletionId(),
    created: BigInt(Math.floor(Date.now() / 1000)),
    model,
    choices: [{
      $typeName: "switchyard.v1.Choice",
      index: 0,
      message: {
        $typeName: "switchyard.v1.Message",
        role: Role.ASSISTANT,
        // Only tool calls: content null, as OpenAI sends it.
        content: text === "" && toolCalls.length > 0 ? [] : [{ $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } }],
        contentIsText: true,
        name: "",
        toolCalls,
        toolCallId: "",
        reasoningContent: reasoning,
      },
      finishReason: finishReason(body["stopReason"]),
    }],
    usage: toUsage(body["usage"]),
    systemFingerprint: "",
  };
}
