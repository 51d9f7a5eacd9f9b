import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  ChatRequestSchema,
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatRequest,
  type ContentPart,
  type Message,
  type ResponseFormat,
  type Tool,
  type ToolCall,
  type ToolChoice,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { extraFor, isNative, pickExtra } from "../extra.ts";
import {
  expectArray,
  expectRecord,
  expectString,
  optBoolean,
  optCount,
  optNumber,
  optRecord,
  optString,
  shown,
  typeName,
  type JsonRecord,
} from "./json.ts";

/**
 * OpenAI Chat Completions request JSON <-> the canonical ChatRequest.
 * `decodeChatRequest` reads an untrusted caller's body (strict: every field
 * typed by the schema is checked, and errors name the field); fields the
 * schema does not type go to `extra` and are forwarded untouched.
 * `encodeChatRequest` writes the body a provider speaking OpenAI's format gets.
 */

/** Stream options travel beside the canonical request, not inside it. */
export interface StreamOptions {
  stream: boolean;
  includeUsage: boolean;
}

const TYPED_KEYS = new Set([
  "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
  "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
  "presence_penalty", "frequency_penalty", "user", "metadata", "stream", "stream_options", "fallbacks",
]);

const MESSAGE_KEYS = new Set(["role", "content", "name", "tool_calls", "tool_call_id", "refusal"]);

const ROLES: Record<string, Role> = {
  system: Role.SYSTEM,
  developer: Role.DEVELOPER,
  user: Role.USER,
  assistant: Role.ASSISTANT,
  tool: Role.TOOL,
};

/** Content part types forwarded as they are (only OpenAI-format providers accept them). */
const RAW_PART_TYPES = new Set(["input_audio", "file", "refusal"]);

export function decodeChatRequest(body: unknown): { request: ChatRequest; stream: StreamOptions } {
  const b = expectRecord(body, "body");
  const model = expectString(b["model"] ?? missing("model"), "model");
  if (model.length === 0) throw invalid("model: must not be empty", "model");
  const rawMessages = expectArray(b["messages"] ?? missing("messages"), "messages");
  if (rawMessages.length === 0) throw invalid("messages: must contain at least one message", "messages");

  const request = create(ChatRequestSchema, {
    model,
    messages: rawMessages.map((m, i) => decodeMessage(m, `messages[${i}]`)),
    tools: b["tools"] == null ? [] : expectArray(b["tools"], "tools").map((t, i) => decodeTool(t, `tools[${i}]`)),
    toolChoice: decodeToolChoice(b["tool_choice"]),
    parallelToolCalls: optBoolean(b["parallel_tool_calls"], "parallel_tool_calls"),
    responseFormat: decodeResponseFormat(b["response_format"]),
    temperature: optNumber(b["temperature"], "temperature"),
    topP: optNumber(b["top_p"], "top_p"),
    maxTokens: optCount(b["max_tokens"], "max_tokens"),
    maxCompletionTokens: optCount(b["max_completion_tokens"], "max_completion_tokens"),
    stop: decodeStop(b["stop"]),
    seed: decodeSeed(b["seed"]),
    n: optCount(b["n"], "n"),
    presencePenalty: optNumber(b["presence_penalty"], "presence_penalty"),
    frequencyPenalty: optNumber(b["frequency_penalty"], "frequency_penalty"),
    user: optString(b["user"], "user") ?? "",
    metadata: decodeMetadata(b["metadata"]),
    extra: pickExtra(b, TYPED_KEYS),
    extraFormat: "openai",
    fallbacks: decodeFallbacks(b["fallbacks"]),
  });
  if (request.n === 0) throw invalid("n: must be at least 1", "n");

  const stream = optBoolean(b["stream"], "stream") ?? false;
  const so = optRecord(b["stream_options"], "stream_options");
  const includeUsage = optBoolean(so?.["include_usage"], "stream_options.include_usage") ?? false;
  return { request, stream: { stream, includeUsage } };
}

function missing(param: string): never {
  throw invalid(`${param}: required`, param);
}

function decodeMessage(raw: unknown, p: string): Message {
  const m = expectRecord(raw, p);
  const roleName = expectString(m["role"] ?? missing(`${p}.role`), `${p}.role`);
  const role = ROLES[roleName];
  if (role === undefined) {
    throw invalid(`${p}.role: '${roleName}' is not one of system, developer, user, assistant, tool`, `${p}.role`);
  }
  const content = m["content"];
  let parts: ContentPart[];
  let contentIsText = false;
  if (typeof content === "string") {
    parts = [{ $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: content } }];
    contentIsText = true;
  } else if (content === null || content === undefined) {
    if (role !== Role.ASSISTANT) throw invalid(`${p}.content: required for role '${roleName}'`, `${p}.content`);
    parts = [];
  } else if (Array.isArray(content)) {
    parts = content.map((c, j) => decodePart(c, `${p}.content[${j}]`, role));
  } else {
    throw invalid(`${p}.content: expected a string or an array of content parts, got ${typeName(content)}`, `${p}.content`);
  }

  let toolCalls: ToolCall[] = [];
  if (m["tool_calls"] != null) {
    if (role !== Role.ASSISTANT) throw invalid(`${p}.tool_calls: only assistant messages carry tool calls`, `${p}.tool_calls`);
    toolCalls = expectArray(m["tool_calls"], `${p}.tool_calls`).map((t, j) => decodeToolCall(t, `${p}.tool_calls[${j}]`));
  }
  const toolCallId = optString(m["tool_call_id"], `${p}.tool_call_id`) ?? "";
  if (role === Role.TOOL && toolCallId === "") throw invalid(`${p}.tool_call_id: required for role 'tool'`, `${p}.tool_call_id`);

  return {
    $typeName: "switchyard.v1.Message",
    role,
    content: parts,
    contentIsText,
    name: optString(m["name"], `${p}.name`) ?? "",
    toolCalls,
    toolCallId,
    refusal: optString(m["refusal"], `${p}.refusal`),
    // Reasoning a caller sends back (DeepSeek-style) stays in extra, untouched.
    reasoningContent: "",
    extra: pickExtra(m, MESSAGE_KEYS),
  };
}

function decodePart(raw: unknown, p: string, role: Role): ContentPart {
  const c = expectRecord(raw, p);
  const type = expectString(c["type"] ?? missing(`${p}.type`), `${p}.type`);
  if (type === "text") {
    return { $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: expectString(c["text"], `${p}.text`) } };
  }
  if (type === "image_url") {
    if (role !== Role.USER) throw new GatewayError("unsupported", `${p}: image parts are only allowed in user messages`, { param: p });
    const img = expectRecord(c["image_url"], `${p}.image_url`);
    const url = expectString(img["url"], `${p}.image_url.url`);
    if (!/^(https?:|data:image\/)/i.test(url)) {
      throw invalid(`${p}.image_url.url: expected an http(s) URL or a data:image/ URL`, `${p}.image_url.url`);
    }
    const detail = optString(img["detail"], `${p}.image_url.detail`) ?? "";
    return {
      $typeName: "switchyard.v1.ContentPart",
      part: { case: "imageUrl", value: { $typeName: "switchyard.v1.ImageUrl", url, detail } },
    };
  }
  if (RAW_PART_TYPES.has(type)) {
    return { $typeName: "switchyard.v1.ContentPart", part: { case: "raw", value: c as JsonObject } };
  }
  throw new GatewayError("unsupported", `${p}.type: unsupported content part type '${type}'`, { param: `${p}.type` });
}

function decodeToolCall(raw: unknown, p: string): ToolCall {
  const t = expectRecord(raw, p);
  if (t["type"] != null && t["type"] !== "function") {
    throw new GatewayError("unsupported", `${p}.type: unsupported tool call type '${shown(t["type"])}'`, { param: `${p}.type` });
  }
  const f = expectRecord(t["function"], `${p}.function`);
  return {
    $typeName: "switchyard.v1.ToolCall",
    id: expectString(t["id"], `${p}.id`),
    function: {
      $typeName: "switchyard.v1.FunctionCall",
      name: expectString(f["name"], `${p}.function.name`),
      arguments: optString(f["arguments"], `${p}.function.arguments`) ?? "",
    },
  };
}

function decodeTool(raw: unknown, p: string): Tool {
  const t = expectRecord(raw, p);
  if (t["type"] !== "function") {
    throw new GatewayError("unsupported", `${p}.type: unsupported tool type '${shown(t["type"])}' (only 'function')`, { param: `${p}.type` });
  }
  const f = expectRecord(t["function"], `${p}.function`);
  const name = expectString(f["name"], `${p}.function.name`);
  if (name.length === 0) throw invalid(`${p}.function.name: must not be empty`, `${p}.function.name`);
  return {
    $typeName: "switchyard.v1.Tool",
    function: {
      $typeName: "switchyard.v1.FunctionDefinition",
      name,
      description: optString(f["description"], `${p}.function.description`) ?? "",
      parameters: optRecord(f["parameters"], `${p}.function.parameters`) as JsonObject | undefined,
      strict: optBoolean(f["strict"], `${p}.function.strict`),
    },
  };
}

function decodeToolChoice(v: unknown): ToolChoice | undefined {
  if (v === undefined || v === null) return undefined;
  const p = "tool_choice";
  if (typeof v === "string") {
    const mode = v === "none" ? ToolChoice_Mode.NONE : v === "auto" ? ToolChoice_Mode.AUTO : v === "required" ? ToolChoice_Mode.REQUIRED : undefined;
    if (mode === undefined) throw invalid(`${p}: '${v}' is not one of none, auto, required`, p);
    return { $typeName: "switchyard.v1.ToolChoice", choice: { case: "mode", value: mode } };
  }
  const o = expectRecord(v, p);
  if (o["type"] !== "function") {
    throw new GatewayError("unsupported", `${p}.type: unsupported tool choice type '${shown(o["type"])}'`, { param: `${p}.type` });
  }
  const f = expectRecord(o["function"], `${p}.function`);
  return {
    $typeName: "switchyard.v1.ToolChoice",
    choice: { case: "function", value: expectString(f["name"], `${p}.function.name`) },
  };
}

function decodeResponseFormat(v: unknown): ResponseFormat | undefined {
  const o = optRecord(v, "response_format");
  if (o === undefined) return undefined;
  const type = o["type"];
  if (type === "text") return { $typeName: "switchyard.v1.ResponseFormat", type: ResponseFormat_Type.TEXT };
  if (type === "json_object") return { $typeName: "switchyard.v1.ResponseFormat", type: ResponseFormat_Type.JSON_OBJECT };
  if (type !== "json_schema") {
    throw invalid(`response_format.type: '${shown(type)}' is not one of text, json_object, json_schema`, "response_format.type");
  }
  const s = expectRecord(o["json_schema"], "response_format.json_schema");
  return {
    $typeName: "switchyard.v1.ResponseFormat",
    type: ResponseFormat_Type.JSON_SCHEMA,
    jsonSchema: {
      $typeName: "switchyard.v1.JsonSchema",
      name: expectString(s["name"], "response_format.json_schema.name"),
      description: optString(s["description"], "response_format.json_schema.description") ?? "",
      schema: optRecord(s["schema"], "response_format.json_schema.schema") as JsonObject | undefined,
      strict: optBoolean(s["strict"], "response_format.json_schema.strict"),
    },
  };
}

function decodeStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  return expectArray(v, "stop").map((s, i) => expectString(s, `stop[${i}]`));
}

function decodeSeed(v: unknown): bigint | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw invalid("seed: expected an integer", "seed");
  return BigInt(v);
}

/** The gateway's own `fallbacks` field: models to try when the requested one fails. Never sent upstream. */
export function decodeFallbacks(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = expectArray(v, "fallbacks").map((s, i) => expectString(s, `fallbacks[${i}]`));
  if (list.length > 5) throw invalid("fallbacks: at most 5", "fallbacks");
  return list;
}

function decodeMetadata(v: unknown): Record<string, string> {
  const o = optRecord(v, "metadata");
  if (o === undefined) return {};
  for (const [k, val] of Object.entries(o)) expectString(val, `metadata.${k}`);
  return o as Record<string, string>;
}

// ---------------------------------------------------------------------------
// Canonical -> OpenAI wire (what an OpenAI-format provider receives)

const ROLE_NAMES: Record<number, string> = {
  [Role.SYSTEM]: "system",
  [Role.DEVELOPER]: "developer",
  [Role.USER]: "user",
  [Role.ASSISTANT]: "assistant",
  [Role.TOOL]: "tool",
};

/**
 * The request body for an OpenAI-format provider. `model` is the provider's
 * own model name (resolved by routing), not what the caller wrote.
 */
export function encodeChatRequest(req: ChatRequest, model: string, stream: StreamOptions): JsonRecord {
  const native = isNative(req, "openai");
  // Untyped fields first, so typed fields always win over a same-named extra.
  const out: JsonRecord = extraFor(req, "openai", "OpenAI-format");
  out["model"] = model;
  out["messages"] = req.messages.map((m) => encodeMessage(m, native));
  if (req.tools.length > 0) out["tools"] = req.tools.map(encodeTool);
  const tc = req.toolChoice?.choice;
  if (tc?.case === "mode") {
    const mode = tc.value === ToolChoice_Mode.NONE ? "none" : tc.value === ToolChoice_Mode.REQUIRED ? "required" : "auto";
    out["tool_choice"] = mode;
  } else if (tc?.case === "function") {
    out["tool_choice"] = { type: "function", function: { name: tc.value } };
  }
  if (req.parallelToolCalls !== undefined) out["parallel_tool_calls"] = req.parallelToolCalls;
  const rf = req.responseFormat;
  if (rf !== undefined && rf.type !== ResponseFormat_Type.UNSPECIFIED) {
    if (rf.type === ResponseFormat_Type.TEXT) out["response_format"] = { type: "text" };
    else if (rf.type === ResponseFormat_Type.JSON_OBJECT) out["response_format"] = { type: "json_object" };
    else {
      const s = rf.jsonSchema;
      const js: JsonRecord = { name: s?.name ?? "" };
      if (s?.description) js["description"] = s.description;
      if (s?.schema) js["schema"] = s.schema;
      if (s?.strict !== undefined) js["strict"] = s.strict;
      out["response_format"] = { type: "json_schema", json_schema: js };
    }
  }
  if (req.temperature !== undefined) out["temperature"] = req.temperature;
  if (req.topP !== undefined) out["top_p"] = req.topP;
  if (req.maxTokens !== undefined) out["max_tokens"] = req.maxTokens;
  if (req.maxCompletionTokens !== undefined) out["max_completion_tokens"] = req.maxCompletionTokens;
  if (req.stop.length > 0) out["stop"] = req.stop;
  if (req.seed !== undefined) out["seed"] = Number(req.seed);
  if (req.n !== undefined) out["n"] = req.n;
  if (req.presencePenalty !== undefined) out["presence_penalty"] = req.presencePenalty;
  if (req.frequencyPenalty !== undefined) out["frequency_penalty"] = req.frequencyPenalty;
  if (req.user) out["user"] = req.user;
  if (Object.keys(req.metadata).length > 0) out["metadata"] = req.metadata;
  if (stream.stream) {
    out["stream"] = true;
    if (stream.includeUsage) out["stream_options"] = { include_usage: true };
  } else {
    // An RPC caller's `extra` must not turn a unary call into a stream.
    delete out["stream"];
    delete out["stream_options"];
  }
  return out;
}

function encodeMessage(m: Message, native: boolean): JsonRecord {
  // A foreign format's message extras (e.g. Anthropic's original blocks) never reach an OpenAI-format body.
  const out: JsonRecord = native && m.extra ? { ...m.extra } : {};
  out["role"] = ROLE_NAMES[m.role] ?? "user";
  if (m.contentIsText && m.content.length === 1 && m.content[0]!.part.case === "text") {
    out["content"] = m.content[0]!.part.value;
  } else if (m.content.length === 0) {
    out["content"] = m.role === Role.ASSISTANT ? null : "";
  } else {
    out["content"] = m.content.map(encodePart);
  }
  if (m.name) out["name"] = m.name;
  if (m.toolCalls.length > 0) {
    out["tool_calls"] = m.toolCalls.map((t) => ({
      id: t.id,
      type: "function",
      function: { name: t.function?.name ?? "", arguments: t.function?.arguments ?? "" },
    }));
  }
  if (m.toolCallId) out["tool_call_id"] = m.toolCallId;
  if (m.refusal !== undefined) out["refusal"] = m.refusal;
  return out;
}

function encodePart(c: ContentPart): JsonRecord {
  switch (c.part.case) {
    case "text":
      return { type: "text", text: c.part.value };
    case "imageUrl": {
      const img: JsonRecord = { url: c.part.value.url };
      if (c.part.value.detail) img["detail"] = c.part.value.detail;
      return { type: "image_url", image_url: img };
    }
    case "raw":
      return c.part.value;
    default:
      throw new GatewayError("invalid_request", "a content part is empty");
  }
}

function encodeTool(t: Tool): JsonRecord {
  const f: JsonRecord = { name: t.function?.name ?? "" };
  if (t.function?.description) f["description"] = t.function.description;
  if (t.function?.parameters) f["parameters"] = t.function.parameters;
  if (t.function?.strict !== undefined) f["strict"] = t.function.strict;
  return { type: "function", function: f };
}

