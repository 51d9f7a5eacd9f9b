/**
 * The Messages API part of the Anthropic stand-in: request validation with
 * Anthropic's error messages, a deterministic answer plan, and rendering as a
 * Message object or as the exact stream event sequence. Shapes follow
 * https://docs.anthropic.com/en/api/messages and .../messages-streaming.
 */
import { randomBytes } from "node:crypto";
import { deriveToolArguments, estimateTokens, splitText } from "../openai.ts";

export type Json = Record<string, unknown>;

export type AnthropicErrorType =
  | "invalid_request_error" | "authentication_error" | "permission_error" | "not_found_error"
  | "request_too_large" | "rate_limit_error" | "api_error" | "overloaded_error";

export interface ErrorAnswer {
  status: number;
  body: { type: "error"; error: { type: AnthropicErrorType; message: string } };
  headers?: Record<string, string>;
}

export function errorAnswer(status: number, type: AnthropicErrorType, message: string, headers?: Record<string, string>): ErrorAnswer {
  return { status, body: { type: "error", error: { type, message } }, ...(headers ? { headers } : {}) };
}

/** Anthropic's body for a status, as its API sends it. */
export function defaultErrorFor(status: number): ErrorAnswer {
  switch (status) {
    case 400: return errorAnswer(400, "invalid_request_error", "Invalid request");
    case 401: return errorAnswer(401, "authentication_error", "invalid x-api-key");
    case 403: return errorAnswer(403, "permission_error", "Your API key does not have permission to use the specified resource.");
    case 404: return errorAnswer(404, "not_found_error", "The requested resource could not be found.");
    case 413: return errorAnswer(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.");
    case 429: return errorAnswer(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", { "retry-after": "7" });
    case 529: return errorAnswer(529, "overloaded_error", "Overloaded");
    default: return errorAnswer(status, "api_error", "Internal server error");
  }
}

export const newId = {
  message: () => `msg_01${randomBytes(12).toString("hex")}`,
  toolUse: () => `toolu_01${randomBytes(12).toString("hex")}`,
  request: () => `req_01${randomBytes(12).toString("hex")}`,
};

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const invalid = (message: string): ErrorAnswer => errorAnswer(400, "invalid_request_error", message);
const MEDIA_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];

export interface MessagesRequest {
  model: string;
  messages: Array<{ role: "user" | "assistant"; content: Json[] }>;
  maxTokens: number;
  stream: boolean;
  tools: Array<{ name: string; input_schema: unknown }>;
  toolChoice: Json | undefined;
  stopSequences: string[];
  thinking: boolean;
  /** The whole body, for the prompt-size estimate. */
  raw: Json;
}

/** Messages fields that POST /v1/messages/count_tokens refuses as extra inputs: they only shape generation. */
const GENERATION_ONLY = ["max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier"];

/**
 * Validates like Anthropic, in its order (roughly), with its messages. With
 * `count`, as POST /v1/messages/count_tokens does: no max_tokens (nor other
 * generation-only fields) and no prompt size limit.
 */
export function parseMessagesRequest(body: unknown, models: ReadonlySet<string>, maxPromptTokens: number, count = false): { ok: true; value: MessagesRequest } | { ok: false; error: ErrorAnswer } {
  const fail = (error: ErrorAnswer) => ({ ok: false as const, error });
  if (!isObject(body)) return fail(invalid("body: Input should be a valid dictionary"));
  for (const f of count ? ["model", "messages"] : ["model", "max_tokens", "messages"]) if (body[f] === undefined) return fail(invalid(`${f}: Field required`));
  if (count) for (const f of GENERATION_ONLY) if (body[f] !== undefined) return fail(invalid(`${f}: Extra inputs are not permitted`));
  if (typeof body.model !== "string") return fail(invalid("model: Input should be a valid string"));
  if (!count && (typeof body.max_tokens !== "number" || !Number.isInteger(body.max_tokens) || body.max_tokens < 1)) return fail(invalid("max_tokens: Input should be a valid integer greater than or equal to 1"));
  if (!Array.isArray(body.messages)) return fail(invalid("messages: Input should be a valid list"));
  if (body.system !== undefined && typeof body.system !== "string" && !Array.isArray(body.system)) return fail(invalid("system: Input should be a valid string or list"));
  const messages: MessagesRequest["messages"] = [];
  for (const [i, m] of body.messages.entries()) {
    if (!isObject(m)) return fail(invalid(`messages.${i}: Input should be a valid dictionary`));
    if (m.role !== "user" && m.role !== "assistant") return fail(invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`));
    for (const k of Object.keys(m)) if (k !== "role" && k !== "content") return fail(invalid(`messages.${i}.${k}: Extra inputs are not permitted`));
    const content = typeof m.content === "string" ? [{ type: "text", text: m.content }] : m.content;
    if (!Array.isArray(content)) return fail(invalid(`messages.${i}.content: Field required`));
    const prev = messages.at(-1);
    if (prev && prev.role === m.role) return fail(invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`));
    for (const [j, c] of content.entries()) {
      const p = `messages.${i}.content.${j}`;
      if (!isObject(c)) return fail(invalid(`${p}: Input should be a valid dictionary`));
      if (c.type === "text" && (typeof c.text !== "string" || c.text === "") && !(m.role === "assistant" && i === body.messages.length - 1)) {
        return fail(invalid("messages: text content blocks must be non-empty"));
      }
      if (c.type === "image") {
        if (m.role !== "user") return fail(invalid(`${p}.type: Input tag 'image' found using 'type' does not match any of the expected tags`));
        const s = c.source;
        if (!isObject(s)) return fail(invalid(`${p}.source: Field required`));
        if (s.type === "base64" && !MEDIA_TYPES.includes(String(s.media_type))) return fail(invalid(`${p}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`));
        if (s.type === "base64" && (typeof s.data !== "string" || !/^[A-Za-z0-9+/]+=*$/.test(s.data))) return fail(invalid(`${p}.source.base64.data: The image data is not valid base64`));
        if (s.type === "url" && typeof s.url !== "string") return fail(invalid(`${p}.source.url.url: Field required`));
        if (s.type !== "base64" && s.type !== "url") return fail(invalid(`${p}.source: Input tag '${String(s.type)}' found using 'type' does not match any of the expected tags`));
      }
      if (c.type === "tool_use" && m.role !== "assistant") return fail(invalid(`${p}.type: tool_use blocks are only allowed in assistant messages`));
      if (c.type === "tool_result" && m.role !== "user") return fail(invalid(`${p}.type: tool_result blocks are only allowed in user messages`));
    }
    // Every tool_use must be answered by a tool_result in the next message, and only those.
    if (prev?.role === "assistant") {
      const asked = prev.content.filter((c) => c.type === "tool_use").map((c) => String(c.id));
      const answered = content.filter((c): c is Json => isObject(c) && c.type === "tool_result").map((c) => String(c.tool_use_id));
      const stray = answered.find((id) => !asked.includes(id));
      if (stray) return fail(invalid(`messages.${i}.content.0: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${stray}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`));
      const missing = asked.filter((id) => !answered.includes(id));
      if (missing.length > 0) return fail(invalid(`messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`));
    }
    messages.push({ role: m.role, content: content as Json[] });
  }
  const last = messages.at(-1);
  if (last?.role === "assistant" && last.content.some((c) => c.type === "tool_use")) {
    return fail(invalid(`messages.${messages.length - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${last.content.filter((c) => c.type === "tool_use").map((c) => String(c.id)).join(", ")}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`));
  }
  if (messages.length === 0) return fail(invalid("messages: at least one message is required"));
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObject) : [];
  for (const [i, t] of tools.entries()) {
    if (typeof t.name !== "string" || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) return fail(invalid(`tools.${i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`));
    if (!isObject(t.input_schema)) return fail(invalid(`tools.${i}.custom.input_schema: Field required`));
  }
  if (!models.has(body.model)) return fail(errorAnswer(404, "not_found_error", `model: ${body.model}`));
  const promptTokens = promptEstimate(body);
  if (!count && promptTokens > maxPromptTokens) return fail(invalid(`prompt is too long: ${promptTokens} tokens > ${maxPromptTokens} maximum`));
  return {
    ok: true,
    value: {
      model: body.model,
      messages,
      maxTokens: typeof body.max_tokens === "number" ? body.max_tokens : 0,
      stream: body.stream === true,
      tools: tools as MessagesRequest["tools"],
      toolChoice: isObject(body.tool_choice) ? body.tool_choice : undefined,
      stopSequences: Array.isArray(body.stop_sequences) ? body.stop_sequences.map(String) : [],
      thinking: isObject(body.thinking) && body.thinking.type === "enabled",
      raw: body,
    },
  };
}

/**
 * The prompt's token figure: what usage.input_tokens reports before cache
 * reads and writes, and what count_tokens answers.
 */
export function promptEstimate(body: Json): number {
  return estimateTokens(JSON.stringify({ system: body.system, messages: body.messages, tools: body.tools }));
}

/** What the stand-in answers: deterministic in content. */
export interface Plan {
  id: string;
  model: string;
  blocks: Json[];
  stopReason: "end_turn" | "max_tokens" | "stop_sequence" | "tool_use" | "refusal";
  stopSequence: string | null;
  usage: { input_tokens: number; output_tokens: number; cache_creation_input_tokens: number; cache_read_input_tokens: number };
}

function blockText(c: Json): string {
  if (c.type === "text") return String(c.text);
  if (c.type === "tool_result") return typeof c.content === "string" ? c.content : Array.isArray(c.content) ? c.content.filter(isObject).map((x) => String(x.text ?? "")).join("\n") : "";
  return "";
}

/**
 * The last user message's text is echoed ("echo: ..."), unless tools are
 * offered, tool_choice allows them, and the last user message is not itself
 * answering a tool call: then the first (or the forced) tool is called with
 * arguments derived from its schema. `thinking` adds a thinking block first.
 */
export function planMessage(req: MessagesRequest, cache: { read: number; creation: number }, refusal: boolean): Plan {
  const last = req.messages.at(-1)!;
  const texts = last.content.filter((c) => c.type === "text").map(blockText);
  const userText = (texts.length > 0 ? texts : last.content.filter((c) => c.type === "tool_result").map(blockText)).join("\n");
  const answeringTool = last.content.some((c) => c.type === "tool_result");
  const choice = req.toolChoice;
  const forced = choice?.type === "tool" ? req.tools.find((t) => t.name === choice.name) : undefined;
  const tool = req.tools.length === 0 || choice?.type === "none" || last.role !== "user" ? undefined
    : forced ?? (choice?.type === "any" || !answeringTool ? req.tools[0] : undefined);
  const blocks: Json[] = [];
  let stopReason: Plan["stopReason"] = "end_turn";
  let stopSequence: string | null = null;
  if (req.thinking) blocks.push({ type: "thinking", thinking: `Thinking about: ${userText}`, signature: `EqQB${randomBytes(24).toString("base64")}` });
  if (refusal) {
    blocks.push({ type: "text", text: "I can't help with that." });
    stopReason = "refusal";
  } else if (tool) {
    blocks.push({ type: "tool_use", id: newId.toolUse(), name: tool.name, input: JSON.parse(deriveToolArguments(tool.input_schema, userText)) });
    stopReason = "tool_use";
  } else {
    let text = `echo: ${userText}`;
    for (const s of req.stopSequences) {
      const at = text.indexOf(s);
      if (s !== "" && at !== -1) {
        text = text.slice(0, at);
        stopReason = "stop_sequence";
        stopSequence = s;
      }
    }
    if (estimateTokens(text) > req.maxTokens) {
      text = text.slice(0, req.maxTokens * 4);
      stopReason = "max_tokens";
      stopSequence = null;
    }
    blocks.push({ type: "text", text });
  }
  const prompt = promptEstimate(req.raw);
  const output = blocks.reduce((n, b) => n + estimateTokens(JSON.stringify(b)), 0);
  return {
    id: newId.message(),
    model: req.model,
    blocks,
    stopReason,
    stopSequence,
    usage: {
      input_tokens: Math.max(1, prompt - cache.read - cache.creation),
      output_tokens: output,
      cache_creation_input_tokens: cache.creation,
      cache_read_input_tokens: cache.read,
    },
  };
}

export function renderMessage(plan: Plan): Json {
  return {
    id: plan.id,
    type: "message",
    role: "assistant",
    model: plan.model,
    content: plan.blocks,
    stop_reason: plan.stopReason,
    stop_sequence: plan.stopSequence,
    usage: { ...plan.usage, service_tier: "standard" },
  };
}

/** One server-sent event: the event name and its JSON data. */
export interface StreamEvent {
  event: string;
  data: Json;
}

/**
 * The stream as Anthropic sends it: message_start, then per block
 * content_block_start / deltas / content_block_stop (a ping after the first
 * block starts), message_delta with the stop reason and output usage, message_stop.
 */
export function renderEvents(plan: Plan, chunkChars: number): StreamEvent[] {
  const ev = (event: string, data: Json): StreamEvent => ({ event, data: { type: event, ...data } });
  const out: StreamEvent[] = [ev("message_start", {
    message: { ...renderMessage(plan), content: [], stop_reason: null, stop_sequence: null, usage: { ...plan.usage, output_tokens: 1, service_tier: "standard" } },
  })];
  plan.blocks.forEach((b, index) => {
    if (b.type === "text") {
      out.push(ev("content_block_start", { index, content_block: { type: "text", text: "" } }));
      if (index === 0) out.push(ev("ping", {}));
      for (const t of splitText(String(b.text), chunkChars)) out.push(ev("content_block_delta", { index, delta: { type: "text_delta", text: t } }));
    } else if (b.type === "thinking") {
      out.push(ev("content_block_start", { index, content_block: { type: "thinking", thinking: "", signature: "" } }));
      if (index === 0) out.push(ev("ping", {}));
      for (const t of splitText(String(b.thinking), chunkChars)) out.push(ev("content_block_delta", { index, delta: { type: "thinking_delta", thinking: t } }));
      out.push(ev("content_block_delta", { index, delta: { type: "signature_delta", signature: b.signature } }));
    } else if (b.type === "tool_use") {
      out.push(ev("content_block_start", { index, content_block: { type: "tool_use", id: b.id, name: b.name, input: {} } }));
      if (index === 0) out.push(ev("ping", {}));
      out.push(ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: "" } }));
      for (const t of splitText(JSON.stringify(b.input), chunkChars)) out.push(ev("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: t } }));
    }
    out.push(ev("content_block_stop", { index }));
  });
  out.push(ev("message_delta", { delta: { stop_reason: plan.stopReason, stop_sequence: plan.stopSequence }, usage: { output_tokens: plan.usage.output_tokens } }));
  out.push(ev("message_stop", {}));
  return out;
}
