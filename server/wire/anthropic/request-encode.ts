import {
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatRequest,
  type ContentPart,
  type Message,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { extraFor, isNative } from "../extra.ts";
import { isRecord, shown, type JsonRecord } from "../openai/json.ts";

/**
 * The canonical ChatRequest -> an Anthropic Messages API request body (what
 * the Anthropic provider sends). System and developer messages become
 * `system`; tool messages become user `tool_result` blocks; consecutive
 * messages of one role are merged, since Anthropic wants user and assistant
 * turns to alternate. Fields Anthropic has no equivalent for are refused
 * ("unsupported", naming the field) rather than dropped: response_format
 * json_object/json_schema, n > 1, seed, presence/frequency penalties,
 * metadata, non-image content parts. Message `name` is dropped (Anthropic has
 * no participant names, and many OpenAI clients send it routinely).
 */

export interface EncodeOptions {
  stream: boolean;
  /** max_tokens when the request sets none (Anthropic requires it). */
  defaultMaxTokens: number;
}

interface Turn {
  role: "user" | "assistant";
  content: JsonRecord[];
  /** Sent as a plain string when the turn is one unmerged text message. */
  text: string | undefined;
}

export function encodeMessagesRequest(req: ChatRequest, model: string, opts: EncodeOptions): JsonRecord {
  refuseUnsupported(req);
  // Untyped fields first, so typed fields always win over a same-named extra.
  const out: JsonRecord = extraFor(req, "anthropic", "Anthropic");
  const native = isNative(req, "anthropic");
  const system: JsonRecord[] = [];
  let systemIsPlain = true;
  const turns: Turn[] = [];
  req.messages.forEach((m, i) => {
    const p = `messages[${i}]`;
    if (m.role === Role.SYSTEM || m.role === Role.DEVELOPER) {
      const orig = native ? originalBlocks(m) : undefined;
      if (orig) {
        systemIsPlain = false;
        system.push(...orig);
      } else system.push({ type: "text", text: textOf(m) });
      return;
    }
    const role = m.role === Role.ASSISTANT ? "assistant" : "user";
    const content = encodeContent(m, p, native);
    const text = m.contentIsText && m.role !== Role.TOOL && content.length === 1 && content[0]!["type"] === "text" && Object.keys(content[0]!).length === 2
      ? (content[0]!["text"] as string)
      : undefined;
    const last = turns.at(-1);
    if (last && last.role === role) {
      last.content.push(...content);
      last.text = undefined;
    } else turns.push({ role, content, text });
  });

  out["model"] = model;
  if (system.length > 0) {
    out["system"] = systemIsPlain ? system.map((b) => b["text"]).join("\n\n") : system;
  } else delete out["system"];
  out["messages"] = turns.map((t) => ({ role: t.role, content: t.text ?? t.content }));
  out["max_tokens"] = req.maxTokens ?? req.maxCompletionTokens ?? opts.defaultMaxTokens;
  if (req.tools.length > 0) {
    const keep = out["tools"];
    out["tools"] = Array.isArray(keep) && keep.length === req.tools.length ? keep : req.tools.map((t) => {
      const tool: JsonRecord = { name: t.function?.name ?? "" };
      if (t.function?.description) tool["description"] = t.function.description;
      tool["input_schema"] = t.function?.parameters ?? { type: "object", properties: {} };
      if (t.function?.strict !== undefined) tool["strict"] = t.function.strict;
      return tool;
    });
  } else delete out["tools"];
  const toolChoice = encodeToolChoice(req);
  if (toolChoice) out["tool_choice"] = toolChoice;
  if (req.temperature !== undefined) out["temperature"] = req.temperature;
  if (req.topP !== undefined) out["top_p"] = req.topP;
  if (req.topK !== undefined) out["top_k"] = req.topK;
  if (req.stop.length > 0) out["stop_sequences"] = req.stop;
  if (req.user) out["metadata"] = { user_id: req.user };
  if (opts.stream) out["stream"] = true;
  else delete out["stream"]; // an RPC caller's `extra` must not turn a unary call into a stream
  return out;
}

function refuseUnsupported(req: ChatRequest): void {
  const no = (param: string, why: string): never => {
    throw new GatewayError("unsupported", `${param}: ${why}`, { param });
  };
  const rf = req.responseFormat?.type;
  if (rf === ResponseFormat_Type.JSON_OBJECT || rf === ResponseFormat_Type.JSON_SCHEMA) {
    no("response_format", "Anthropic models have no JSON response format; describe the format in the prompt or use a forced tool call");
  }
  if (req.n !== undefined && req.n > 1) no("n", "Anthropic models return one choice per request");
  if (req.seed !== undefined) no("seed", "not supported by Anthropic models");
  if (req.presencePenalty !== undefined) no("presence_penalty", "not supported by Anthropic models");
  if (req.frequencyPenalty !== undefined) no("frequency_penalty", "not supported by Anthropic models");
  if (Object.keys(req.metadata).length > 0) no("metadata", "not supported by Anthropic models (set `user` for metadata.user_id)");
}

function encodeToolChoice(req: ChatRequest): JsonRecord | undefined {
  const tc = req.toolChoice?.choice;
  let out: JsonRecord | undefined;
  if (tc?.case === "mode") {
    if (tc.value === ToolChoice_Mode.NONE) return { type: "none" };
    out = { type: tc.value === ToolChoice_Mode.REQUIRED ? "any" : "auto" };
  } else if (tc?.case === "function") out = { type: "tool", name: tc.value };
  if (req.parallelToolCalls === false && req.tools.length > 0) (out ??= { type: "auto" })["disable_parallel_tool_use"] = true;
  return out;
}

/** The original Anthropic blocks an Anthropic caller sent (see request-decode.ts), when kept. */
function originalBlocks(m: Message): JsonRecord[] | undefined {
  const c = m.extra?.["content"];
  return Array.isArray(c) && c.every(isRecord) ? (c as JsonRecord[]) : undefined;
}

function textOf(m: Message): string {
  let s = "";
  for (const c of m.content) if (c.part.case === "text") s += c.part.value;
  return s;
}

function encodeContent(m: Message, p: string, native: boolean): JsonRecord[] {
  // Original blocks come only from Anthropic callers; another format's message extras are never forwarded.
  const orig = native ? originalBlocks(m) : undefined;
  if (orig) return orig;
  if (m.role === Role.TOOL) {
    const hasImage = m.content.some((c) => c.part.case === "imageUrl");
    const block: JsonRecord = { type: "tool_result", tool_use_id: m.toolCallId };
    block["content"] = hasImage ? m.content.map((c, j) => encodePart(c, `${p}.content[${j}]`)) : textOf(m);
    return [block];
  }
  const out: JsonRecord[] = [];
  m.content.forEach((c, j) => {
    // Anthropic refuses empty text blocks; an empty string carries nothing anyway.
    if (c.part.case === "text" && c.part.value === "" && (m.role === Role.ASSISTANT || m.content.length > 1)) return;
    out.push(encodePart(c, `${p}.content[${j}]`));
  });
  if (m.refusal && out.length === 0) out.push({ type: "text", text: m.refusal });
  m.toolCalls.forEach((t, j) => {
    const q = `${p}.tool_calls[${j}].function.arguments`;
    let input: unknown = {};
    const args = t.function?.arguments ?? "";
    if (args.trim() !== "") {
      try {
        input = JSON.parse(args);
      } catch {
        throw invalid(`${q}: not valid JSON (Anthropic needs tool call arguments as a JSON object)`, q);
      }
      if (!isRecord(input)) throw invalid(`${q}: must be a JSON object for Anthropic models`, q);
    }
    out.push({ type: "tool_use", id: t.id, name: t.function?.name ?? "", input });
  });
  if (out.length === 0 && m.role !== Role.ASSISTANT) out.push({ type: "text", text: "" });
  return out;
}

function encodePart(c: ContentPart, p: string): JsonRecord {
  switch (c.part.case) {
    case "text":
      return { type: "text", text: c.part.value };
    case "imageUrl": {
      const url = c.part.value.url;
      const data = /^data:(image\/[a-z0-9.+-]+);base64,(.*)$/is.exec(url);
      if (data) return { type: "image", source: { type: "base64", media_type: data[1]!.toLowerCase(), data: data[2]! } };
      if (/^https?:\/\//i.test(url)) return { type: "image", source: { type: "url", url } };
      throw new GatewayError("unsupported", `${p}.image_url.url: Anthropic takes base64 data: URLs or http(s) URLs`, { param: `${p}.image_url.url` });
    }
    case "raw":
      throw new GatewayError("unsupported", `${p}: content part type '${shown(c.part.value["type"])}' is not supported by Anthropic models`, { param: p });
    default:
      throw invalid(`${p}: empty content part`, p);
  }
}
