import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import type { Readable } from "node:stream";
import { FinishReason, Role, type ChatChunk, type ChoiceDelta, type Delta } from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord, type JsonRecord } from "../../wire/openai/json.ts";
import { parseStreamEvent, type OpenStream } from "../shared/upstream.ts";
import { redactSecrets } from "../shared/redact.ts";
import { streamException } from "./errors.ts";
import { finishReason, newCompletionId, toUsage } from "./from-bedrock.ts";

/**
 * ConverseStream: `application/vnd.amazon.eventstream` binary messages
 * (prelude: total length, headers length, CRC32; headers; payload; CRC32),
 * decoded as bytes arrive and mapped to canonical chunks one event at a time.
 */

/** One decoded event-stream message. */
export interface StreamMessage {
  headers: Record<string, string>;
  body: Uint8Array;
}

/** AWS event-stream messages are at most 16 MiB; a larger prelude is corruption, not a reason to buffer. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Splits a byte stream into event-stream messages, whatever the chunking (a
 * message may span many reads, a read may hold many messages), and checks
 * each one's CRCs with EventStreamCodec. Holds at most one partial message.
 */
export async function* readEventStream(body: Readable): AsyncGenerator<StreamMessage> {
  const codec = new EventStreamCodec(toUtf8, fromUtf8);
  let buf: Uint8Array = new Uint8Array(0);
  for await (const chunk of body) {
    const bytes = chunk as Uint8Array;
    buf = buf.length === 0 ? bytes : concat(buf, bytes);
    while (buf.length >= 4) {
      const total = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, false);
      if (total < 16 || total > MAX_MESSAGE_BYTES) throw new GatewayError("upstream_error", `Bedrock sent a corrupt event stream (message length ${total})`);
      if (buf.length < total) break;
      let decoded;
      try {
        decoded = codec.decode(buf.subarray(0, total));
      } catch (err) {
        throw new GatewayError("upstream_error", "Bedrock sent a corrupt event stream message", { cause: err });
      }
      const headers: Record<string, string> = {};
      for (const [k, h] of Object.entries(decoded.headers)) headers[k] = String(h.value);
      yield { headers, body: decoded.body };
      buf = buf.subarray(total);
    }
  }
  if (buf.length > 0) throw new GatewayError("upstream_error", "Bedrock ended the stream inside an event");
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** ConverseStream events -> canonical chunks; a stream without messageStop and metadata is a failure. */
export async function* converseChunks(provider: string, model: string, stream: OpenStream): AsyncGenerator<ChatChunk> {
  const id = newCompletionId();
  const created = BigInt(Math.floor(Date.now() / 1000));
  const chunk = (choices: ChoiceDelta[], usage?: ChatChunk["usage"]): ChatChunk => ({
    $typeName: "switchyard.v1.ChatChunk", id, created, model, choices, usage, systemFingerprint: "",
  });
  const toolIndex = new Map<number, number>(); // contentBlockIndex -> tool call index
  let stopped = false;
  let metadata = false;
  let completed = false;
  try {
    for await (const msg of readEventStream(stream.body)) {
      const kind = msg.headers[":message-type"];
      if (kind === "exception") throw streamException(provider, msg.headers[":exception-type"] ?? "unknown", msg.body);
      if (kind === "error") {
        throw new GatewayError("upstream_error", redactSecrets(`provider '${provider}' failed mid-stream: ${msg.headers[":error-code"] ?? "error"} ${msg.headers[":error-message"] ?? ""}`.trim()));
      }
      if (kind !== "event") continue;
      const e = parse(msg.body);
      switch (msg.headers[":event-type"]) {
        case "messageStart":
          yield chunk([choice({ role: Role.ASSISTANT, content: "" })]);
          break;
        case "contentBlockStart": {
          const start = isRecord(e["start"]) ? e["start"] : {};
          const tu = start["toolUse"];
          if (isRecord(tu)) {
            const index = toolIndex.size;
            toolIndex.set(blockIndex(e), index);
            yield chunk([choice({ toolCalls: [{ $typeName: "switchyard.v1.ToolCallDelta", index, id: str(tu["toolUseId"]), name: str(tu["name"]) }] })]);
          }
          break;
        }
        case "contentBlockDelta": {
          const d = isRecord(e["delta"]) ? e["delta"] : {};
          if (typeof d["text"] === "string") yield chunk([choice({ content: d["text"] })]);
          else if (isRecord(d["toolUse"]) && typeof d["toolUse"]["input"] === "string") {
            const index = toolIndex.get(blockIndex(e));
            if (index === undefined) throw new GatewayError("upstream_error", `provider '${provider}' sent tool input for a block it never started`);
            yield chunk([choice({ toolCalls: [{ $typeName: "switchyard.v1.ToolCallDelta", index, id: "", name: "", arguments: d["toolUse"]["input"] }] })]);
          } else if (isRecord(d["reasoningContent"]) && typeof d["reasoningContent"]["text"] === "string") {
            yield chunk([choice({ reasoningContent: d["reasoningContent"]["text"] })]);
          }
          break;
        }
        case "messageStop":
          stopped = true;
          yield chunk([choice({}, finishReason(e["stopReason"]))]);
          break;
        case "metadata":
          metadata = true;
          yield chunk([], toUsage(e["usage"]));
          break;
      }
    }
    if (!stopped || !metadata) throw new GatewayError("upstream_error", `provider '${provider}' ended the stream before it was complete`);
    completed = true;
  } catch (err) {
    throw err instanceof GatewayError ? err : stream.failure(err);
  } finally {
    stream.release(completed);
  }
}

function choice(d: Partial<Omit<Delta, "$typeName">>, finish: FinishReason = FinishReason.UNSPECIFIED): ChoiceDelta {
  return {
    $typeName: "switchyard.v1.ChoiceDelta",
    index: 0,
    delta: { $typeName: "switchyard.v1.Delta", role: Role.UNSPECIFIED, toolCalls: [], ...d },
    finishReason: finish,
  };
}

/** One decoder for every event: decode() without stream keeps no state between calls. */
const utf8 = new TextDecoder();

function parse(body: Uint8Array): JsonRecord {
  const v = parseStreamEvent(utf8.decode(body), "bedrock", "Bedrock sent an event that is not JSON");
  if (!isRecord(v)) throw new GatewayError("upstream_error", "Bedrock sent an event that is not a JSON object");
  return v;
}

function blockIndex(e: JsonRecord): number {
  const i = e["contentBlockIndex"];
  return typeof i === "number" ? i : -1;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}
