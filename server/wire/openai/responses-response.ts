import { randomFillSync } from "node:crypto";
import { FinishReason, type ChatCompletion, type Message } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { isRecord, type JsonRecord } from "./json.ts";

/**
 * Canonical ChatCompletion -> OpenAI's Responses API `Response` object
 * (POST /v1/responses), for callers whose request was translated to another
 * provider. The object carries every key the spec's `Response` schema
 * requires (shared/spec/openai-openapi.yaml), so strict clients parse it:
 * the request's settings are echoed back (`RequestEcho`), `output` holds a
 * reasoning item, a message item and one function_call item per tool call,
 * in that order. `output_text` is not sent: the spec marks it an SDK-side
 * convenience. The stream encoder (responses-stream.ts) builds its final
 * `response.completed` object with the same functions.
 */

/** The request's settings as a `Response` repeats them; build it with `echoRequest`. */
export interface RequestEcho {
  /** The model the caller asked for; the answer's own model name wins when the provider reports one. */
  model: string;
  instructions: string | null;
  /** As sent; function tools get the keys the spec requires (`strict`, `parameters`, null when absent). */
  tools: JsonRecord[];
  toolChoice: unknown;
  /** `text` as sent, `{format: {type: "text"}}` by default. */
  text: JsonRecord;
  temperature: number | null;
  topP: number | null;
  maxOutputTokens: number | null;
  metadata: Record<string, string>;
  previousResponseId: string | null;
  store: boolean;
  parallelToolCalls: boolean;
  reasoning: { effort: string | null; summary: string | null };
  truncation: string;
  /** Absent when not sent: the spec types `user` as a string, so null would not validate. */
  user: string | undefined;
  safetyIdentifier: string | null;
  promptCacheKey: string | null;
}

function str(v: unknown): string | null {
  return typeof v === "string" ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === "number" ? v : null;
}

/**
 * The echo of a request body that `decodeResponsesRequest` accepted (it
 * reads leniently: anything off-type was refused by the decoder already).
 */
export function echoRequest(body: Record<string, unknown>): RequestEcho {
  const reasoning = isRecord(body["reasoning"]) ? body["reasoning"] : {};
  const text = isRecord(body["text"]) ? { ...body["text"] } : {};
  if (!isRecord(text["format"])) text["format"] = { type: "text" };
  const metadata: Record<string, string> = {};
  if (isRecord(body["metadata"])) for (const [k, v] of Object.entries(body["metadata"])) if (typeof v === "string") metadata[k] = v;
  return {
    model: str(body["model"]) ?? "",
    instructions: str(body["instructions"]),
    tools: Array.isArray(body["tools"]) ? body["tools"].filter(isRecord).map(echoTool) : [],
    toolChoice: body["tool_choice"] ?? "auto",
    text,
    temperature: num(body["temperature"]),
    topP: num(body["top_p"]),
    maxOutputTokens: num(body["max_output_tokens"]),
    metadata,
    previousResponseId: str(body["previous_response_id"]),
    store: body["store"] !== false,
    parallelToolCalls: body["parallel_tool_calls"] !== false,
    reasoning: { effort: str(reasoning["effort"]), summary: str(reasoning["summary"]) },
    truncation: str(body["truncation"]) ?? "disabled",
    user: str(body["user"]) ?? undefined,
    safetyIdentifier: str(body["safety_identifier"]),
    promptCacheKey: str(body["prompt_cache_key"]),
  };
}

function echoTool(t: JsonRecord): JsonRecord {
  if (t["type"] !== "function") return t;
  return { ...t, description: t["description"] ?? null, parameters: t["parameters"] ?? null, strict: t["strict"] ?? null };
}

/** A new Response id, `resp_` and 48 hex digits like OpenAI's. */
export function newResponseId(): string {
  return `resp_${hex48()}`;
}

/** An output item id with OpenAI's prefix: `msg`, `fc`, `rs`, or `call` for a call id a provider left empty. */
export function newItemId(prefix: "msg" | "fc" | "rs" | "call"): string {
  return `${prefix}_${hex48()}`;
}

/** Random bytes for ids, refilled 256 ids at a time: one crypto call per 256 ids instead of two UUIDs per id. */
const pool = Buffer.allocUnsafe(24 * 256);
let used = pool.length;

/** 48 random hex digits. */
function hex48(): string {
  if (used === pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  used += 24;
  return pool.toString("hex", used - 24, used);
}

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";
export type IncompleteReason = "max_output_tokens" | "content_filter";

/** What a Response says beyond the echoed request. */
export interface ResponseState {
  status: ResponseStatus;
  model: string;
  output: JsonRecord[];
  usage?: Usage | undefined;
  incompleteReason?: IncompleteReason | undefined;
  error?: { code: string; message: string } | undefined;
  /** Unix seconds; only sent for a completed response. */
  completedAt?: number | undefined;
}

/** Why a finish reason makes a response incomplete, if it does. */
export function incompleteReason(f: FinishReason): IncompleteReason | undefined {
  if (f === FinishReason.LENGTH) return "max_output_tokens";
  if (f === FinishReason.CONTENT_FILTER) return "content_filter";
  return undefined;
}

/** Every key of the spec's `Response`, in OpenAI's order. */
export function responseObject(id: string, createdAt: number, req: RequestEcho, s: ResponseState): JsonRecord {
  const out: JsonRecord = {
    id,
    object: "response",
    created_at: createdAt,
    status: s.status,
    background: false,
    completed_at: s.status === "completed" ? (s.completedAt ?? Math.floor(Date.now() / 1000)) : null,
    error: s.error ? { code: s.error.code, message: s.error.message } : null,
    incomplete_details: s.status === "incomplete" ? { reason: s.incompleteReason ?? "max_output_tokens" } : null,
    instructions: req.instructions,
    max_output_tokens: req.maxOutputTokens,
    max_tool_calls: null,
    model: s.model || req.model,
    output: s.output,
    parallel_tool_calls: req.parallelToolCalls,
    previous_response_id: req.previousResponseId,
    prompt_cache_key: req.promptCacheKey,
    reasoning: { ...req.reasoning },
    safety_identifier: req.safetyIdentifier,
    store: req.store,
    temperature: req.temperature,
    text: req.text,
    tool_choice: req.toolChoice,
    tools: req.tools,
    top_p: req.topP,
    truncation: req.truncation,
  };
  // The spec's `usage` is not nullable: absent until known.
  if (s.usage) out["usage"] = encodeResponseUsage(s.usage);
  if (req.user !== undefined) out["user"] = req.user;
  out["metadata"] = req.metadata;
  return out;
}

/** Responses usage names; the spec requires both detail objects, cache writes included. */
export function encodeResponseUsage(u: Usage): JsonRecord {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens, cache_write_tokens: u.cacheWriteTokens },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.totalTokens,
  };
}

export type ItemStatus = "in_progress" | "completed" | "incomplete";

/** `output_text` content; the spec requires `annotations` and `logprobs`. */
export function outputText(text: string): JsonRecord {
  return { type: "output_text", text, annotations: [], logprobs: [] };
}

export function refusalPart(refusal: string): JsonRecord {
  return { type: "refusal", refusal };
}

export function messageItem(id: string, content: JsonRecord[], status: ItemStatus): JsonRecord {
  return { type: "message", id, status, role: "assistant", content };
}

/**
 * `JSON.stringify(outputText(text))`, byte for byte, from `JSON.stringify(text)`:
 * a stream has its text's JSON at hand already (encoded delta by delta).
 */
export function outputTextJson(textJson: string): string {
  return `{"type":"output_text","text":${textJson},"annotations":[],"logprobs":[]}`;
}

/** `JSON.stringify(refusalPart(refusal))` from `JSON.stringify(refusal)`, as outputTextJson. */
export function refusalPartJson(refusalJson: string): string {
  return `{"type":"refusal","refusal":${refusalJson}}`;
}

/** `JSON.stringify(messageItem(id, content, status))` from its content parts' JSON. */
export function messageItemJson(id: string, contentJson: string[], status: ItemStatus): string {
  return `{"type":"message","id":${JSON.stringify(id)},"status":"${status}","role":"assistant","content":[${contentJson.join(",")}]}`;
}

export function functionCallItem(id: string, callId: string, name: string, args: string, status: ItemStatus): JsonRecord {
  return { type: "function_call", id, call_id: callId, name, arguments: args, status };
}

/** Visible reasoning travels as one summary part: it is what a caller may show. */
export function reasoningItem(id: string, text: string | undefined): JsonRecord {
  return { type: "reasoning", id, summary: text === undefined ? [] : [{ type: "summary_text", text }] };
}

/** Output items of one assistant message: reasoning, then text/refusal, then each tool call. */
function outputItems(m: Message | undefined): JsonRecord[] {
  const items: JsonRecord[] = [];
  if (m?.reasoningContent) items.push(reasoningItem(newItemId("rs"), m.reasoningContent));
  let text = "";
  let hasText = false;
  for (const p of m?.content ?? []) {
    if (p.part.case === "text") {
      text += p.part.value;
      hasText = true;
    }
  }
  const content: JsonRecord[] = [];
  if (hasText && text !== "") content.push(outputText(text));
  if (m?.refusal !== undefined) content.push(refusalPart(m.refusal));
  const calls = m?.toolCalls ?? [];
  // Never an empty output: an answer with nothing in it is an empty message.
  if (content.length === 0 && calls.length === 0 && items.length === 0) content.push(outputText(""));
  if (content.length > 0) items.push(messageItem(newItemId("msg"), content, "completed"));
  for (const t of calls) {
    items.push(functionCallItem(newItemId("fc"), t.id || newItemId("call"), t.function?.name ?? "", t.function?.arguments ?? "", "completed"));
  }
  return items;
}

export interface EncodeResponseContext {
  id: string;
  /** Unix seconds. */
  createdAt: number;
  request: RequestEcho;
  /** Overrides the status the finish reason implies. */
  status?: "completed" | "incomplete";
  /** Unix seconds; now when absent. */
  completedAt?: number;
}

/** The `Response` object for a finished, non-streamed answer (choice 0: the Responses API has no `n`). */
export function encodeResponse(c: ChatCompletion, ctx: EncodeResponseContext): JsonRecord {
  const choice = c.choices.find((ch) => ch.index === 0) ?? c.choices[0];
  const reason = incompleteReason(choice?.finishReason ?? FinishReason.UNSPECIFIED);
  const status = ctx.status ?? (reason ? "incomplete" : "completed");
  const output = outputItems(choice?.message);
  // The item being written when the limit struck is the one left unfinished.
  const last = output[output.length - 1];
  if (status === "incomplete" && last && "status" in last) last["status"] = "incomplete";
  return responseObject(ctx.id, ctx.createdAt, ctx.request, {
    status,
    model: c.model,
    output,
    usage: c.usage,
    incompleteReason: reason,
    completedAt: ctx.completedAt,
  });
}

/** Gateway (and OpenAI) codes that mean "too much, retry later". */
const RATE_CODES = new Set(["rate_limited", "budget_exceeded", "rate_limit_exceeded"]);

/**
 * The spec's `ResponseErrorCode` (a closed enum) for a gateway error code:
 * rate and budget refusals become `rate_limit_exceeded`, anything else
 * `server_error`; the message keeps the detail.
 */
export function responseErrorCode(code: string): string {
  if (RATE_CODES.has(code)) return "rate_limit_exceeded";
  if (code === "invalid_prompt" || code === "server_error") return code;
  return "server_error";
}
