import { FinishReason, type ChatChunk } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import type { JsonRecord } from "../openai/json.ts";
import { encodeStopReason, encodeUsage, newMessageId } from "./response.ts";

/**
 * Canonical ChatChunks -> Anthropic's stream event sequence, for callers of
 * POST /v1/messages whatever provider answered:
 *
 *   message_start (usage so far: Anthropic's input count is only known at the
 *   end for most providers, so it is 0 here and complete in message_delta)
 *   then per content block: content_block_start, *_delta..., content_block_stop
 *   (thinking -> thinking_delta; text -> text_delta; each tool call ->
 *   tool_use with input_json_delta), then message_delta (stop_reason,
 *   stop_sequence, usage), message_stop.
 *
 * message_delta waits for the end of the canonical stream, because the usage
 * chunk comes after the finish reason. Each call returns the SSE frames to
 * write, `event: <type>\ndata: <json>\n\n`.
 */
export interface StreamEncoder {
  push(chunk: ChatChunk): string[];
  /** The closing frames, once the canonical stream ended cleanly. */
  end(): string[];
}

type Open = { kind: "text" | "thinking" } | { kind: "tool"; toolIndex: number };

export function sseFrame(type: string, data: JsonRecord): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export function createStreamEncoder(): StreamEncoder {
  let started = false;
  let blockIndex = -1;
  let open: Open | undefined;
  let finish: FinishReason = FinishReason.UNSPECIFIED;
  let stopSequence: string | null = null;
  let usage: Usage | undefined;
  const seenTools = new Set<number>();

  function start(chunk: ChatChunk, out: string[]): void {
    started = true;
    out.push(sseFrame("message_start", {
      type: "message_start",
      message: {
        id: chunk.id.startsWith("msg_") ? chunk.id : newMessageId(),
        type: "message",
        role: "assistant",
        model: chunk.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: 0, output_tokens: 0 },
      },
    }));
  }

  function close(out: string[]): void {
    if (open === undefined) return;
    out.push(sseFrame("content_block_stop", { type: "content_block_stop", index: blockIndex }));
    open = undefined;
  }

  function begin(next: Open, block: JsonRecord, out: string[]): void {
    close(out);
    open = next;
    blockIndex++;
    out.push(sseFrame("content_block_start", { type: "content_block_start", index: blockIndex, content_block: block }));
  }

  function delta(d: JsonRecord, out: string[]): void {
    out.push(sseFrame("content_block_delta", { type: "content_block_delta", index: blockIndex, delta: d }));
  }

  return {
    push(chunk) {
      const out: string[] = [];
      if (!started) start(chunk, out);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices.find((c) => c.index === 0);
      const d = choice?.delta;
      if (d?.reasoningContent) {
        if (open?.kind !== "thinking") begin({ kind: "thinking" }, { type: "thinking", thinking: "", signature: "" }, out);
        delta({ type: "thinking_delta", thinking: d.reasoningContent }, out);
      }
      if (d?.reasoningSignature) {
        // Clients send thinking blocks back with this signature; it closes the thinking block.
        if (open?.kind !== "thinking") begin({ kind: "thinking" }, { type: "thinking", thinking: "", signature: "" }, out);
        delta({ type: "signature_delta", signature: d.reasoningSignature }, out);
      }
      const text = (d?.content ?? "") + (d?.refusal ?? "");
      if (text !== "") {
        if (open?.kind !== "text") begin({ kind: "text" }, { type: "text", text: "" }, out);
        delta({ type: "text_delta", text }, out);
      }
      for (const t of d?.toolCalls ?? []) {
        const current = open?.kind === "tool" ? open.toolIndex : undefined;
        if (current !== t.index) {
          if (seenTools.has(t.index)) {
            throw new GatewayError("upstream_error", "the provider interleaved tool calls, which Anthropic's stream format cannot express");
          }
          seenTools.add(t.index);
          begin({ kind: "tool", toolIndex: t.index }, { type: "tool_use", id: t.id, name: t.name, input: {} }, out);
        }
        if (t.arguments) delta({ type: "input_json_delta", partial_json: t.arguments }, out);
      }
      if (choice && choice.finishReason !== FinishReason.UNSPECIFIED) {
        close(out);
        finish = choice.finishReason;
        const seq = choice.extra?.["stop_sequence"];
        if (typeof seq === "string") stopSequence = seq;
      }
      return out;
    },
    end() {
      const out: string[] = [];
      if (!started) throw new GatewayError("upstream_error", "the provider ended the stream without an answer");
      close(out);
      out.push(sseFrame("message_delta", {
        type: "message_delta",
        delta: { stop_reason: encodeStopReason(finish, stopSequence) ?? "end_turn", stop_sequence: stopSequence },
        usage: encodeUsage(usage),
      }));
      out.push(sseFrame("message_stop", { type: "message_stop" }));
      return out;
    },
  };
}
