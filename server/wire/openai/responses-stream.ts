import { FinishReason, type ChatChunk, type Delta } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import type { JsonRecord } from "./json.ts";
import {
  functionCallItem,
  incompleteReason,
  messageItem,
  messageItemJson,
  newItemId,
  outputText,
  outputTextJson,
  reasoningItem,
  refusalPart,
  refusalPartJson,
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
  /**
   * The Response of the closing event `end()` sent (completed or
   * incomplete), as an object and as the JSON its frame carries, so the
   * caller can store it without parsing the frame back or encoding it
   * again; undefined before `end()` and after `fail`.
   */
  readonly response: { object: JsonRecord; json: string } | undefined;
}

export interface ResponsesStreamContext {
  /** The Response id (`newResponseId()`), the same in every event. */
  id: string;
  /** Unix seconds. */
  createdAt: number;
  request: RequestEcho;
}

/**
 * `at`: the JSON members that place an event, as its frames repeat them:
 * `,"item_id":"…","output_index":N` (and `,"content_index":M` for a part),
 * built once when the item or part opens.
 *
 * A part's `value` is its text or refusal. `escaped` is `JSON.stringify(value)`
 * without its quotes, put together from the deltas' JSON as they come, so the
 * closing events do not encode the whole text again; undefined once a delta
 * split a surrogate pair (JSON escapes each half alone, but not the pair),
 * and then `value` is encoded whole. `lastCode` is the last UTF-16 unit of
 * `value` (reading it from `value` would flatten the growing string). `json`
 * is the part's own JSON, once it is closed.
 */
interface Part {
  kind: "text" | "refusal";
  at: string;
  value: string;
  escaped: string | undefined;
  lastCode: number;
  json: string | undefined;
}

type Item =
  | { kind: "reasoning"; index: number; id: string; at: string; text: string }
  | { kind: "message"; index: number; id: string; at: string; parts: Part[]; open: Part | undefined }
  | { kind: "function"; index: number; id: string; at: string; callId: string; name: string; args: string; toolIndex: number };

function partJson(p: Part): JsonRecord {
  return p.kind === "text" ? outputText(p.value) : refusalPart(p.value);
}

/** Adds a delta to a part; `deltaJson` is `JSON.stringify(delta)`, which the delta's own frame carries. */
function append(p: Part, delta: string, deltaJson: string): void {
  const first = delta.charCodeAt(0);
  const splitsPair = p.lastCode >= 0xd800 && p.lastCode <= 0xdbff && first >= 0xdc00 && first <= 0xdfff;
  p.escaped = splitsPair || p.escaped === undefined ? undefined : p.escaped + deltaJson.slice(1, -1);
  p.value += delta;
  p.lastCode = delta.charCodeAt(delta.length - 1);
}

/** `JSON.stringify(p.value)`. */
function valueJson(p: Part): string {
  return p.escaped === undefined ? JSON.stringify(p.value) : `"${p.escaped}"`;
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

const heads = new Map<string, string>();

/** A frame's bytes up to its sequence number: `event: <type>\ndata: {"type":"<type>","sequence_number":`, built once per type. */
function head(type: string): string {
  let h = heads.get(type);
  if (h === undefined) heads.set(type, (h = `event: ${type}\ndata: {"type":${JSON.stringify(type)},"sequence_number":`));
  return h;
}

const json = JSON.stringify;

export function createResponsesStreamEncoder(ctx: ResponsesStreamContext): ResponsesStreamEncoder {
  let seq = 0;
  let started = false;
  let over = false;
  let model = "";
  let usage: Usage | undefined;
  let finish: FinishReason = FinishReason.UNSPECIFIED;
  let open: Item | undefined;
  let final: { object: JsonRecord; json: string } | undefined;
  const done: JsonRecord[] = [];
  const closedTools = new Set<number>();

  /**
   * One frame. `members` are the event's JSON members after
   * `sequence_number`, each with its leading comma, in the spec's order:
   * events are concatenated from pieces (issue 13: a delta costs one string
   * build, no object), which gives the bytes JSON.stringify gives for
   * `{type, sequence_number, ...members}`.
   */
  function emit(out: string[], type: string, members: string): void {
    out.push(head(type) + seq++ + members + "}\n\n");
  }

  function snapshot(status: ResponseState["status"], output: JsonRecord[], extra: Partial<ResponseState> = {}): JsonRecord {
    return responseObject(ctx.id, ctx.createdAt, ctx.request, { status, model, output, usage, ...extra });
  }

  function start(chunkModel: string, out: string[]): void {
    started = true;
    model = chunkModel;
    // Both events carry the same in-progress Response: serialised once.
    const response = `,"response":${json(snapshot("in_progress", []))}`;
    emit(out, "response.created", response);
    emit(out, "response.in_progress", response);
  }

  function closePart(m: Extract<Item, { kind: "message" }>, out: string[]): void {
    const p = m.open;
    if (p === undefined) return;
    const value = valueJson(p);
    if (p.kind === "text") {
      emit(out, "response.output_text.done", `${p.at},"text":${value},"logprobs":[]`);
      p.json = outputTextJson(value);
    } else {
      emit(out, "response.refusal.done", `${p.at},"refusal":${value}`);
      p.json = refusalPartJson(value);
    }
    emit(out, "response.content_part.done", `${p.at},"part":${p.json}`);
    m.open = undefined;
  }

  function close(out: string[], status: ItemStatus): void {
    const it = open;
    if (it === undefined) return;
    if (it.kind === "reasoning") {
      emit(out, "response.reasoning_summary_text.done", `${it.at},"summary_index":0,"text":${json(it.text)}`);
      emit(out, "response.reasoning_summary_part.done", `${it.at},"summary_index":0,"part":${json({ type: "summary_text", text: it.text })}`);
    } else if (it.kind === "message") {
      closePart(it, out);
    } else {
      emit(out, "response.function_call_arguments.done", `${it.at},"name":${json(it.name)},"arguments":${json(it.args)}`);
      closedTools.add(it.toolIndex);
    }
    const item = itemJson(it, status);
    // A message's parts are all closed now: its JSON is theirs, not encoded again.
    const itemText = it.kind === "message" ? messageItemJson(it.id, it.parts.map((p) => p.json ?? json(partJson(p))), status) : json(item);
    emit(out, "response.output_item.done", `,"output_index":${it.index},"item":${itemText}`);
    done.push(item);
    open = undefined;
  }

  /** Opens `it` as the next output item, closing the one before it. */
  function begin(it: Item, out: string[]): void {
    close(out, "completed");
    it.index = done.length;
    it.at = `,"item_id":${json(it.id)},"output_index":${it.index}`;
    open = it;
    const added = it.kind === "reasoning" ? reasoningItem(it.id, undefined) : itemJson(it, "in_progress");
    emit(out, "response.output_item.added", `,"output_index":${it.index},"item":${json(added)}`);
    if (it.kind === "reasoning") {
      emit(out, "response.reasoning_summary_part.added", `${it.at},"summary_index":0,"part":{"type":"summary_text","text":""}`);
    }
  }

  function message(out: string[]): Extract<Item, { kind: "message" }> {
    if (open?.kind === "message") return open;
    const m: Item = { kind: "message", index: -1, id: newItemId("msg"), at: "", parts: [], open: undefined };
    begin(m, out);
    return m;
  }

  function part(m: Extract<Item, { kind: "message" }>, kind: Part["kind"], out: string[]): Part {
    if (m.open?.kind === kind) return m.open;
    closePart(m, out);
    const p: Part = { kind, at: `${m.at},"content_index":${m.parts.length}`, value: "", escaped: "", lastCode: -1, json: undefined };
    m.parts.push(p);
    m.open = p;
    emit(out, "response.content_part.added", `${p.at},"part":${json(partJson(p))}`);
    return p;
  }

  function text(delta: string, out: string[]): void {
    const p = part(message(out), "text", out);
    const d = json(delta);
    append(p, delta, d);
    emit(out, "response.output_text.delta", `${p.at},"delta":${d},"logprobs":[]`);
  }

  function refusal(delta: string, out: string[]): void {
    const p = part(message(out), "refusal", out);
    const d = json(delta);
    append(p, delta, d);
    emit(out, "response.refusal.delta", `${p.at},"delta":${d}`);
  }

  function reasoning(delta: string, out: string[]): void {
    let r = open;
    if (r?.kind !== "reasoning") {
      r = { kind: "reasoning", index: -1, id: newItemId("rs"), at: "", text: "" };
      begin(r, out);
    }
    r.text += delta;
    emit(out, "response.reasoning_summary_text.delta", `${r.at},"summary_index":0,"delta":${json(delta)}`);
  }

  function toolCall(t: { index: number; id: string; name: string; arguments?: string | undefined }, out: string[]): void {
    let f = open;
    if (f?.kind !== "function" || f.toolIndex !== t.index) {
      f = { kind: "function", index: -1, id: newItemId("fc"), at: "", callId: t.id || newItemId("call"), name: t.name, args: "", toolIndex: t.index };
      begin(f, out);
    } else if (f.name === "" && t.name) {
      f.name = t.name; // a provider that names the function after the first delta
    }
    if (t.arguments) {
      f.args += t.arguments;
      emit(out, "response.function_call_arguments.delta", `${f.at},"delta":${json(t.arguments)}`);
    }
  }

  /**
   * Refuses, before anything of the chunk is emitted, a tool call that
   * continues after its item was closed (another item came in between): the
   * stream cannot reopen an item, and a half-emitted chunk would leave gaps
   * in the sequence numbers.
   */
  function checkToolOrder(d: Delta): void {
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
      const choice = chunk.choices.find((c) => c.index === 0);
      const d = choice?.delta;
      if (d !== undefined && d.toolCalls.length > 0) checkToolOrder(d);
      if (!started) start(chunk.model, out);
      else if (model === "") model = chunk.model;
      if (chunk.usage) usage = chunk.usage;
      if (d !== undefined) {
        if (d.reasoningContent) reasoning(d.reasoningContent, out);
        if (d.content) text(d.content, out);
        if (d.refusal) refusal(d.refusal, out);
        for (const t of d.toolCalls) toolCall(t, out);
      }
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
      final = { object: response, json: json(response) };
      emit(out, reason ? "response.incomplete" : "response.completed", `,"response":${final.json}`);
      return out;
    },
    fail(err) {
      const out: string[] = [];
      if (over) return out;
      if (!started) start("", out);
      over = true;
      const error = { code: responseErrorCode(err.code), message: err.message };
      emit(out, "response.failed", `,"response":${json(snapshot("failed", output(), { error }))}`);
      return out;
    },
    get response() {
      return final;
    },
  };
}
