import { FinishReason, Role, type ChatChunk, type ChoiceDelta, type Delta, type ToolCallDelta } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord, shown, type JsonRecord } from "../openai/json.ts";
import { decodeStopReason, decodeUsage } from "./response.ts";

/**
 * Anthropic stream events -> canonical ChatChunks, one event at a time (no
 * buffering). Stateful: Anthropic numbers content blocks, canonical tool call
 * deltas number tool calls, so each tool_use block's index is mapped to a
 * tool call index. message_start gives the first chunk (role assistant);
 * message_delta gives the finish reason; message_stop gives the usage chunk
 * (usage from message_start, updated by message_delta) and ends the stream.
 * An `error` event is returned to the caller to throw (see `errorEvent`).
 */
export interface StreamDecoder {
  /** The chunks one event produces (often none: ping, content_block_stop). */
  push(type: string, data: unknown): ChatChunk[];
  /** True once message_stop arrived; a stream that ends before is cut. */
  readonly done: boolean;
}

/** A content block's index; Number() would throw on an object it cannot convert ({"toString": null}). */
function blockIndex(v: unknown): number {
  return typeof v === "number" ? v : typeof v === "string" ? Number(v) : Number.NaN;
}

function bad(what: string): GatewayError {
  return new GatewayError("upstream_error", `provider sent a malformed stream event: ${what}`);
}

export function createStreamDecoder(): StreamDecoder {
  let id = "";
  let model = "";
  const created = BigInt(Math.floor(Date.now() / 1000));
  let usage: JsonRecord = {};
  let done = false;
  let finish: FinishReason = FinishReason.UNSPECIFIED;
  let stopSequence: string | undefined;
  /** content block index -> tool call index */
  const toolIndex = new Map<number, number>();

  function chunk(delta: Partial<Delta> | undefined, more: { finish?: FinishReason; usage?: Usage } = {}): ChatChunk {
    const choices: ChoiceDelta[] = delta === undefined && more.finish === undefined ? [] : [{
      $typeName: "switchyard.v1.ChoiceDelta",
      index: 0,
      delta: { $typeName: "switchyard.v1.Delta", role: Role.UNSPECIFIED, toolCalls: [], ...delta },
      finishReason: more.finish ?? FinishReason.UNSPECIFIED,
      extra: more.finish !== undefined && stopSequence !== undefined ? { stop_sequence: stopSequence } : undefined,
    }];
    return { $typeName: "switchyard.v1.ChatChunk", id, created, model, choices, usage: more.usage, systemFingerprint: "", gateway: undefined };
  }

  function tool(t: Omit<ToolCallDelta, "$typeName">): Partial<Delta> {
    return { toolCalls: [{ $typeName: "switchyard.v1.ToolCallDelta", ...t }] };
  }

  return {
    get done() {
      return done;
    },
    push(type, data) {
      if (!isRecord(data)) throw bad(`${type} is not a JSON object`);
      switch (type) {
        case "message_start": {
          const m = isRecord(data["message"]) ? data["message"] : {};
          id = typeof m["id"] === "string" ? m["id"] : "";
          model = typeof m["model"] === "string" ? m["model"] : "";
          if (isRecord(m["usage"])) usage = { ...m["usage"] };
          return [chunk({ role: Role.ASSISTANT })];
        }
        case "content_block_start": {
          const index = blockIndex(data["index"]);
          const block = isRecord(data["content_block"]) ? data["content_block"] : {};
          if (block["type"] === "tool_use") {
            const n = toolIndex.size;
            toolIndex.set(index, n);
            return [chunk(tool({ index: n, id: shown(block["id"] ?? ""), name: shown(block["name"] ?? ""), arguments: "" }))];
          }
          if (block["type"] === "text" && typeof block["text"] === "string" && block["text"] !== "") return [chunk({ content: block["text"] })];
          return [];
        }
        case "content_block_delta": {
          const d = isRecord(data["delta"]) ? data["delta"] : {};
          switch (d["type"]) {
            case "text_delta":
              return typeof d["text"] === "string" ? [chunk({ content: d["text"] })] : [];
            case "thinking_delta":
              return typeof d["thinking"] === "string" ? [chunk({ reasoningContent: d["thinking"] })] : [];
            case "input_json_delta": {
              const n = toolIndex.get(blockIndex(data["index"]));
              if (n === undefined) throw bad("input_json_delta for a block that is not a tool_use");
              const part = typeof d["partial_json"] === "string" ? d["partial_json"] : "";
              return part === "" ? [] : [chunk(tool({ index: n, id: "", name: "", arguments: part }))];
            }
            case "signature_delta":
              return typeof d["signature"] === "string" ? [chunk({ reasoningSignature: d["signature"] })] : [];
            default:
              return []; // citations_delta: nothing canonical carries it in a stream
          }
        }
        case "message_delta": {
          const d = isRecord(data["delta"]) ? data["delta"] : {};
          if (isRecord(data["usage"])) for (const [k, v] of Object.entries(data["usage"])) if (v != null) usage[k] = v;
          if (typeof d["stop_sequence"] === "string") stopSequence = d["stop_sequence"];
          finish = decodeStopReason(d["stop_reason"]);
          return finish === FinishReason.UNSPECIFIED ? [] : [chunk({}, { finish })];
        }
        case "message_stop":
          done = true;
          return [chunk(undefined, { usage: decodeUsage(usage) })];
        default:
          return []; // ping, content_block_stop, and event types added later
      }
    },
  };
}
