import { FinishReason, type ChatChunk } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import type { JsonRecord } from "./json.ts";
import {
  functionCallItem,
  incompleteReason,
  messageItem,
  newItemId,
  outputText,
  reasoningItem,
  refusalPart,
  responseErrorCode,
  responseObject,
  type ItemStatus,
  type RequestEcho,
  type ResponseState,
} from "./responses-response.ts";

/**
 * Canonical ChatChunks -> the Responses API stream (POST /v1/responses with
 * `stream: true`), whatever provider answered. One state machine emits the
 * whole lifecycle, because clients (Codex, the SDK's ResponseStream) build
 * their state from it and lose tool calls when a step is missing:
 *
 *   response.created, response.in_progress (status in_progress, output [])
 *   per output item, one at a time, indices counting from 0:
 *     reasoning: output_item.added, reasoning_summary_part.added,
 *       reasoning_summary_text.delta*, reasoning_summary_text.done,
 *       reasoning_summary_part.done, output_item.done
 *     message: output_item.added, per part content_part.added,
 *       output_text.delta* (or refusal.delta*), output_text.done (refusal.done),
 *       content_part.done; then output_item.done
 *     function call: output_item.added (arguments ""),
 *       function_call_arguments.delta*, function_call_arguments.done,
 *       output_item.done
 *   response.completed (or response.incomplete when the answer was cut by
 *   the token limit or a content filter) with the full Response object, or
 *   response.failed when `fail` is called.
 *
 * Every delta goes out in the call that received its chunk. An item closes
 * when an item of another kind (or another tool call) starts, or at the
 * finish reason. Each event has a `sequence_number`, from 0. Frames are
 * `event: <type>\ndata: <json>\n\n`.
 */
export interface ResponsesStreamEncoder {
  push(chunk: ChatChunk): string[];
  /** The closing frames once the canonical stream ended cleanly; `usage` wins over usage seen in chunks. */
  end(usage?: Usage): string[];
  /** `response.failed` (after `response.created` if nothing was sent yet); nothing once the stream is over. */
  fail(err: { code: string; message: string }): string[];
}

export interface ResponsesStreamContext {
  /** The Response id (`newResponseId()`), the same in every event. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  request: RequestEcho;
}

type Part = { kind: "text"; text: string } | { kind: "refusal"; refusal: string };

type Item =
  | { kind: "reasoning"; index: number; id: string; text: string }
  | { kind: "message"; index: number; id: string; parts: Part[]; open: Part | undefined }
  | { kind: "function"; index: number; id: string; callId: string; name: string; args: string; toolIndex: number };

function partJson(p: Part): JsonRecord {
  return p.kind === "text" ? outputText(p.text) : refusalPart(p.refusal);
}

function itemJson(it: Item, status: ItemStatus): JsonRecord {
  switch (it.kind) {
    case "reasoning":
      return reasoningItem(it.id, it.text);
    case "message":
      return messageItem(it.id, it.parts.map(partJson), status);
    case "function":
      return functionCallItem(it.id, it.callId, it.name, it.args, status);
  }
}

export function createResponsesStreamEncoder(ctx: ResponsesStreamContext): ResponsesStreamEncoder {
  let seq = 0;
  let started = false;
  let over = false;
  let model = "";
  let usage: Usage | undefined;
  let finish: FinishReason = FinishReason.UNSPECIFIED;
  let open: Item | undefined;
  const done: JsonRecord[] = [];
  const closedTools = new Set<number>();

  function emit(out: string[], type: string, fields: JsonRecord): void {
    const data = { type, sequence_number: seq++, ...fields };
    out.push(`event: ${type}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  function snapshot(status: ResponseState["status"], output: JsonRecord[], extra: Partial<ResponseState> = {}): JsonRecord {
    return responseObject(ctx.id, ctx.createdAt, ctx.request, { status, model, output, usage, ...extra });
  }

  function start(chunkModel: string, out: string[]): void {
    started = true;
    model = chunkModel;
    emit(out, "response.created", { response: snapshot("in_progress", []) });
    emit(out, "response.in_progress", { response: snapshot("in_progress", []) });
  }

  function closePart(m: Extract<Item, { kind: "message" }>, out: string[]): void {
    const p = m.open;
    if (p === undefined) return;
    const at = { item_id: m.id, output_index: m.index, content_index: m.parts.length - 1 };
    if (p.kind === "text") emit(out, "response.output_text.done", { ...at, text: p.text, logprobs: [] });
    else emit(out, "response.refusal.done", { ...at, refusal: p.refusal });
    emit(out, "response.content_part.done", { ...at, part: partJson(p) });
    m.open = undefined;
  }

  function close(out: string[], status: ItemStatus): void {
    const it = open;
    if (it === undefined) return;
    const at = { item_id: it.id, output_index: it.index };
    if (it.kind === "reasoning") {
      emit(out, "response.reasoning_summary_text.done", { ...at, summary_index: 0, text: it.text });
      emit(out, "response.reasoning_summary_part.done", { ...at, summary_index: 0, part: { type: "summary_text", text: it.text } });
    } else if (it.kind === "message") {
      closePart(it, out);
    } else {
      emit(out, "response.function_call_arguments.done", { ...at, name: it.name, arguments: it.args });
      closedTools.add(it.toolIndex);
    }
    const item = itemJson(it, status);
    emit(out, "response.output_item.done", { output_index: it.index, item });
    done.push(item);
    open = undefined;
  }

  /** Opens `it` as the next output item, closing the one before it. */
  function begin(it: Item, out: string[]): void {
    close(out, "completed");
    it.index = done.length;
    open = it;
    const added = it.kind === "reasoning" ? reasoningItem(it.id, undefined) : itemJson(it, "in_progress");
    emit(out, "response.output_item.added", { output_index: it.index, item: added });
    if (it.kind === "reasoning") {
      emit(out, "response.reasoning_summary_part.added", {
        item_id: it.id, output_index: it.index, summary_index: 0, part: { type: "summary_text", text: "" },
      });
    }
  }

  function message(out: string[]): Extract<Item, { kind: "message" }> {
    if (open?.kind === "message") return open;
    const m: Item = { kind: "message", index: -1, id: newItemId("msg"), parts: [], open: undefined };
    begin(m, out);
    return m;
  }

  function part(m: Extract<Item, { kind: "message" }>, kind: Part["kind"], out: string[]): Part {
    if (m.open?.kind === kind) return m.open;
    closePart(m, out);
    const p: Part = kind === "text" ? { kind, text: "" } : { kind, refusal: "" };
    m.parts.push(p);
    m.open = p;
    emit(out, "response.content_part.added", { item_id: m.id, output_index: m.index, content_index: m.parts.length - 1, part: partJson(p) });
    return p;
  }

  function text(delta: string, out: string[]): void {
    const m = message(out);
    const p = part(m, "text", out) as Extract<Part, { kind: "text" }>;
    p.text += delta;
    emit(out, "response.output_text.delta", { item_id: m.id, output_index: m.index, content_index: m.parts.length - 1, delta, logprobs: [] });
  }

  function refusal(delta: string, out: string[]): void {
    const m = message(out);
    const p = part(m, "refusal", out) as Extract<Part, { kind: "refusal" }>;
    p.refusal += delta;
    emit(out, "response.refusal.delta", { item_id: m.id, output_index: m.index, content_index: m.parts.length - 1, delta });
  }

  function reasoning(delta: string, out: string[]): void {
    let r = open;
    if (r?.kind !== "reasoning") {
      r = { kind: "reasoning", index: -1, id: newItemId("rs"), text: "" };
      begin(r, out);
    }
    r.text += delta;
    emit(out, "response.reasoning_summary_text.delta", { item_id: r.id, output_index: r.index, summary_index: 0, delta });
  }

  function toolCall(t: { index: number; id: string; name: string; arguments?: string | undefined }, out: string[]): void {
    let f = open;
    if (f?.kind !== "function" || f.toolIndex !== t.index) {
      f = { kind: "function", index: -1, id: newItemId("fc"), callId: t.id || newItemId("call"), name: t.name, args: "", toolIndex: t.index };
      begin(f, out);
    } else if (f.name === "" && t.name) {
      f.name = t.name; // a provider that names the function after the first delta
    }
    if (t.arguments) {
      f.args += t.arguments;
      emit(out, "response.function_call_arguments.delta", { item_id: f.id, output_index: f.index, delta: t.arguments });
    }
  }

  /**
   * Refuses, before anything of the chunk is emitted, a tool call that
   * continues after its item was closed (another item came in between): the
   * stream cannot reopen an item, and a half-emitted chunk would leave gaps
   * in the sequence numbers.
   */
  function checkToolOrder(chunk: ChatChunk): void {
    const d = chunk.choices.find((c) => c.index === 0)?.delta;
    if (!d || d.toolCalls.length === 0) return;
    const closed = new Set(closedTools);
    let current = open?.kind === "function" ? open.toolIndex : undefined;
    if (current !== undefined && (d.reasoningContent || d.content || d.refusal)) {
      closed.add(current);
      current = undefined;
    }
    for (const t of d.toolCalls) {
      if (t.index === current) continue;
      if (closed.has(t.index)) {
        throw new GatewayError("upstream_error", "the provider interleaved tool calls, which the Responses stream cannot express");
      }
      if (current !== undefined) closed.add(current);
      current = t.index;
    }
  }

  /** The output as the final Response lists it: finished items, then the open one (a failure cut it). */
  function output(): JsonRecord[] {
    return open ? [...done, itemJson(open, "incomplete")] : [...done];
  }

  return {
    push(chunk) {
      const out: string[] = [];
      if (over) return out;
      checkToolOrder(chunk);
      if (!started) start(chunk.model, out);
      else if (model === "") model = chunk.model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices.find((c) => c.index === 0);
      const d = choice?.delta;
      if (d?.reasoningContent) reasoning(d.reasoningContent, out);
      if (d?.content) text(d.content, out);
      if (d?.refusal) refusal(d.refusal, out);
      for (const t of d?.toolCalls ?? []) toolCall(t, out);
      if (choice && choice.finishReason !== FinishReason.UNSPECIFIED) {
        finish = choice.finishReason;
        close(out, incompleteReason(finish) ? "incomplete" : "completed");
      }
      return out;
    },
    end(finalUsage) {
      const out: string[] = [];
      if (over) return out;
      if (!started) throw new GatewayError("upstream_error", "the provider ended the stream without an answer");
      if (finalUsage) usage = finalUsage;
      const reason = incompleteReason(finish);
      close(out, reason ? "incomplete" : "completed");
      // Never an empty output: an answer with nothing in it is an empty message.
      if (done.length === 0) {
        part(message(out), "text", out);
        close(out, reason ? "incomplete" : "completed");
      }
      over = true;
      const response = snapshot(reason ? "incomplete" : "completed", [...done], { incompleteReason: reason });
      emit(out, reason ? "response.incomplete" : "response.completed", { response });
      return out;
    },
    fail(err) {
      const out: string[] = [];
      if (over) return out;
      if (!started) start("", out);
      over = true;
      const error = { code: responseErrorCode(err.code), message: err.message };
      emit(out, "response.failed", { response: snapshot("failed", output(), { error }) });
      return out;
    },
  };
}
