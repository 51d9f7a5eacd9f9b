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
  type ToolChoice,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import { invalid } from "../../errors/errors.ts";
import { pickExtra } from "../extra.ts";
import { decodeFallbacks } from "./chat-request.ts";
import {
  expectArray,
  expectRecord,
  expectString,
  isRecord,
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
 * OpenAI Responses API request JSON (POST /v1/responses) -> the canonical
 * ChatRequest, for a provider that does not serve the Responses API itself.
 *
 * Two readers with one split of duties:
 *  - `decodeResponsesRequest` checks the shape of everything it understands
 *    (a 400 naming the field: `input[2].role`, `text.format.type`) and
 *    builds the canonical request. What it cannot carry to another provider
 *    (hosted tools, item references, files by id, unknown item types) it
 *    leaves out, and it stays in `raw`: an OpenAI-to-OpenAI request is
 *    forwarded untouched, new item types included.
 *  - `untranslatable` names the first such thing, so a request routed to
 *    another provider fails with a clear 400 instead of losing it.
 *
 * Mapping: `instructions` -> a leading system message; `input` string -> one
 * user message; message items -> messages; consecutive assistant-side items
 * of one turn (reasoning, an assistant message, function_call items) -> one
 * assistant message (reasoning_content, content, tool_calls);
 * function_call_output -> a tool message; reasoning `encrypted_content` is
 * opaque to other providers and dropped. Function tools, tool_choice,
 * text.format -> response_format, max_output_tokens -> max_completion_tokens,
 * user (else safety_identifier) -> user. `extra` is in OpenAI Chat
 * Completions form (extra_format "openai"): reasoning.effort ->
 * reasoning_effort, text.verbosity -> verbosity, service_tier and
 * prompt_cache_key as they are, and any field this module does not know.
 */

/** A decoded request; `raw` is the caller's body, for OpenAI passthrough and the Response echo. */
export interface DecodedResponsesRequest {
  request: ChatRequest;
  stream: boolean;
  /** `store`, default true: whether the gateway keeps the response for `previous_response_id`. */
  store: boolean;
  previousResponseId: string | undefined;
  metadata: Record<string, string>;
  include: string[];
  raw: Record<string, unknown>;
}

/**
 * Fields read here. The ones not carried to the canonical request only
 * matter to OpenAI's own Responses service (`truncation`, `include`,
 * `max_tool_calls`, `stream_options`, `context_management`, `moderation`,
 * `top_logprobs`, `prompt_cache_retention`) or to the gateway (`store`,
 * `previous_response_id`), or make the request untranslatable
 * (`conversation`, `prompt`, `background`).
 */
const KNOWN_KEYS = new Set([
  "model", "input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "temperature", "top_p",
  "parallel_tool_calls", "user", "safety_identifier", "metadata", "reasoning", "stream", "stream_options", "store",
  "previous_response_id", "include", "truncation", "background", "conversation", "prompt", "max_tool_calls",
  "top_logprobs", "prompt_cache_retention", "prompt_cache_key", "service_tier", "context_management", "moderation",
  "fallbacks",
]);

const ROLES: Record<string, Role> = {
  user: Role.USER,
  assistant: Role.ASSISTANT,
  system: Role.SYSTEM,
  developer: Role.DEVELOPER,
};

/** Input item types carried to the canonical request. */
const CARRIED_ITEMS = new Set(["message", "function_call", "function_call_output", "reasoning"]);
/** Message content part types carried (input_image only with an image_url). */
const CARRIED_PARTS = new Set(["input_text", "output_text", "refusal", "input_image"]);
const FORMATS = new Set(["text", "json_object", "json_schema"]);

/**
 * A caller's Responses body -> the canonical request plus what the gateway
 * itself acts on (stream, store, previous_response_id). Throws an
 * `invalid_request` GatewayError whose `param` names the malformed field;
 * never throws for what only OpenAI can serve (see `untranslatable`).
 */
export function decodeResponsesRequest(body: unknown): DecodedResponsesRequest {
  const b = expectRecord(body, "body");
  const viaPrompt = b["prompt"] != null; // a stored prompt may name the model and the input
  const model = viaPrompt && b["model"] == null ? "" : expectString(b["model"] ?? missing("model"), "model");
  if (model === "" && !viaPrompt) throw invalid("model: must not be empty", "model");
  const previousResponseId = optString(b["previous_response_id"], "previous_response_id");

  const messages: Message[] = [];
  const instructions = optString(b["instructions"], "instructions");
  if (instructions) messages.push(message(Role.SYSTEM, [textPart(instructions)], { contentIsText: true }));
  const input = b["input"];
  if (typeof input === "string") {
    messages.push(message(Role.USER, [textPart(input)], { contentIsText: true }));
  } else if (Array.isArray(input)) {
    decodeItems(input, messages);
  } else if (input != null) {
    throw invalid(`input: expected a string or an array of input items, got ${typeName(input)}`, "input");
  } else if (previousResponseId === undefined && !viaPrompt && b["conversation"] == null) {
    missing("input");
  }

  const text = optRecord(b["text"], "text");
  const reasoning = optRecord(b["reasoning"], "reasoning");
  let extra = pickExtra(b, KNOWN_KEYS);
  const put = (k: string, v: string | undefined): void => {
    if (v !== undefined) (extra ??= {})[k] = v;
  };
  put("reasoning_effort", optString(reasoning?.["effort"], "reasoning.effort"));
  optString(reasoning?.["summary"], "reasoning.summary");
  put("verbosity", optString(text?.["verbosity"], "text.verbosity"));
  put("service_tier", optString(b["service_tier"], "service_tier"));
  put("prompt_cache_key", optString(b["prompt_cache_key"], "prompt_cache_key"));
  optString(b["truncation"], "truncation");

  const request = create(ChatRequestSchema, {
    model,
    messages,
    tools: decodeTools(b["tools"]),
    toolChoice: decodeToolChoice(b["tool_choice"]),
    parallelToolCalls: optBoolean(b["parallel_tool_calls"], "parallel_tool_calls"),
    responseFormat: decodeFormat(text?.["format"]),
    temperature: optNumber(b["temperature"], "temperature"),
    topP: optNumber(b["top_p"], "top_p"),
    maxCompletionTokens: optCount(b["max_output_tokens"], "max_output_tokens"),
    user: optString(b["user"], "user") ?? optString(b["safety_identifier"], "safety_identifier") ?? "",
    metadata: decodeMetadata(b["metadata"]),
    extra,
    extraFormat: "openai",
    fallbacks: decodeFallbacks(b["fallbacks"]),
  });

  return {
    request,
    stream: optBoolean(b["stream"], "stream") ?? false,
    store: optBoolean(b["store"], "store") ?? true,
    previousResponseId,
    metadata: request.metadata,
    include: b["include"] == null ? [] : expectArray(b["include"], "include").map((v, i) => expectString(v, `include[${i}]`)),
    raw: b,
  };
}

/**
 * The first part of a Responses request that only OpenAI can serve, as a
 * sentence naming it (`tools[0].type 'web_search' is only served by OpenAI`),
 * or undefined when the whole request translates. Call it on a body
 * `decodeResponsesRequest` accepted, before sending the canonical request to
 * any provider other than OpenAI's Responses API.
 */
export function untranslatable(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  for (const k of ["conversation", "prompt"]) if (body[k] != null) return `${k} is only served by OpenAI`;
  if (body["background"] === true) return "background is only served by OpenAI";
  if (Array.isArray(body["tools"])) {
    for (const [i, t] of body["tools"].entries()) {
      if (isRecord(t) && t["type"] !== "function") return `tools[${i}].type '${shown(t["type"])}' is only served by OpenAI`;
    }
  }
  const tc = body["tool_choice"];
  if (isRecord(tc) && tc["type"] !== "function") return `tool_choice.type '${shown(tc["type"])}' is only served by OpenAI`;
  const text = body["text"];
  const format = isRecord(text) ? text["format"] : undefined;
  if (isRecord(format) && !FORMATS.has(shown(format["type"]))) {
    return `text.format.type '${shown(format["type"])}' is only served by OpenAI`;
  }
  const input = body["input"];
  if (!Array.isArray(input)) return undefined;
  for (const [i, raw] of input.entries()) {
    if (!isRecord(raw)) continue;
    const p = `input[${i}]`;
    const kind = itemKind(raw);
    if (kind === undefined) continue;
    if (!CARRIED_ITEMS.has(kind)) return `${p}.type '${kind}' is only served by OpenAI`;
    const parts = kind === "message" ? raw["content"] : kind === "function_call_output" ? raw["output"] : undefined;
    if (!Array.isArray(parts)) continue;
    const field = kind === "message" ? "content" : "output";
    for (const [j, c] of parts.entries()) {
      if (!isRecord(c)) continue;
      const q = `${p}.${field}[${j}]`;
      const type = shown(c["type"]);
      if (kind === "function_call_output" ? type !== "input_text" : !CARRIED_PARTS.has(type)) {
        return `${q}.type '${type}' is only served by OpenAI`;
      }
      if (type === "input_image" && typeof c["image_url"] !== "string") return `${q}: an image by file_id is only served by OpenAI`;
    }
  }
  return undefined;
}

/**
 * The canonical request continued from a stored conversation
 * (`previous_response_id`): `history` (the earlier turns' input and output,
 * without their instructions, which the spec says do not carry over) goes
 * after this request's instructions and before its input.
 */
export function withHistory(d: DecodedResponsesRequest, history: readonly Message[]): ChatRequest {
  const at = instructionsCount(d);
  return { ...d.request, messages: [...d.request.messages.slice(0, at), ...history, ...d.request.messages.slice(at)] };
}

/** How many leading canonical messages are this request's `instructions` (0 or 1); they never carry over to a follow-up. */
export function instructionsCount(d: DecodedResponsesRequest): number {
  const instructions = d.raw["instructions"];
  return typeof instructions === "string" && instructions !== "" && d.request.messages[0]?.role === Role.SYSTEM ? 1 : 0;
}

function missing(param: string): never {
  throw invalid(`${param}: required`, param);
}

function textPart(text: string): ContentPart {
  return { $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } };
}

function message(role: Role, content: ContentPart[], o: Partial<Pick<Message, "contentIsText" | "toolCallId" | "reasoningContent" | "refusal">> = {}): Message {
  return {
    $typeName: "switchyard.v1.Message",
    role,
    content,
    contentIsText: o.contentIsText ?? false,
    name: "",
    toolCalls: [],
    toolCallId: o.toolCallId ?? "",
    refusal: o.refusal,
    reasoningContent: o.reasoningContent ?? "",
    extra: undefined,
  };
}

/** An item's type; items may leave it out: a message then has a role, an item reference an id. */
function itemKind(it: JsonRecord): string | undefined {
  const type = it["type"];
  if (typeof type === "string") return type;
  if (it["role"] !== undefined) return "message";
  if (it["id"] !== undefined) return "item_reference";
  return undefined;
}

/**
 * Input items -> messages. `turn` is the assistant message the items of one
 * model turn join (OpenAI lists reasoning, message and each function_call as
 * separate items; chat formats want one assistant message).
 */
function decodeItems(items: unknown[], out: Message[]): void {
  let turn: Message | undefined;
  const assistant = (): Message => {
    turn = message(Role.ASSISTANT, []);
    out.push(turn);
    return turn;
  };
  for (const [i, raw] of items.entries()) {
    const p = `input[${i}]`;
    const it = expectRecord(raw, p);
    if (it["type"] != null && typeof it["type"] !== "string") {
      throw invalid(`${p}.type: expected a string, got ${typeName(it["type"])}`, `${p}.type`);
    }
    const kind = itemKind(it);
    if (kind === undefined) throw invalid(`${p}.type: required, unless the item is a message with a role`, `${p}.type`);
    if (kind === "message") {
      const m = decodeMessage(it, p);
      if (m.role !== Role.ASSISTANT) {
        out.push(m);
        turn = undefined;
      } else if (turn && onlyReasoning(turn)) {
        // The text that follows the turn's reasoning.
        turn.content = m.content;
        turn.contentIsText = m.contentIsText;
        turn.refusal = m.refusal;
      } else {
        turn = m;
        out.push(m);
      }
    } else if (kind === "function_call") {
      (turn ?? assistant()).toolCalls.push({
        $typeName: "switchyard.v1.ToolCall",
        id: expectString(it["call_id"] ?? missing(`${p}.call_id`), `${p}.call_id`),
        function: {
          $typeName: "switchyard.v1.FunctionCall",
          name: expectString(it["name"] ?? missing(`${p}.name`), `${p}.name`),
          arguments: expectString(it["arguments"] ?? missing(`${p}.arguments`), `${p}.arguments`),
        },
      });
    } else if (kind === "function_call_output") {
      out.push(decodeCallOutput(it, p));
      turn = undefined;
    } else if (kind === "reasoning") {
      const text = reasoningText(it, p);
      if (text === "") continue; // encrypted only: nothing another provider can read
      const t = turn && onlyReasoning(turn) ? turn : assistant();
      t.reasoningContent = t.reasoningContent ? `${t.reasoningContent}\n\n${text}` : text;
    } else {
      turn = undefined; // kept in raw only; untranslatable() names it
    }
  }
}

/** An assistant message holding only the reasoning that opens a turn. */
function onlyReasoning(m: Message): boolean {
  return m.content.length === 0 && m.toolCalls.length === 0 && m.refusal === undefined;
}

function decodeMessage(it: JsonRecord, p: string): Message {
  const roleName = expectString(it["role"] ?? missing(`${p}.role`), `${p}.role`);
  const role = ROLES[roleName];
  if (role === undefined) throw invalid(`${p}.role: '${roleName}' is not one of user, assistant, system, developer`, `${p}.role`);
  const content = it["content"];
  if (typeof content === "string") return message(role, [textPart(content)], { contentIsText: true });
  if (!Array.isArray(content)) {
    throw invalid(`${p}.content: expected a string or an array of content parts, got ${typeName(content)}`, `${p}.content`);
  }
  const parts: ContentPart[] = [];
  let refusal: string | undefined;
  for (const [j, raw] of content.entries()) {
    const q = `${p}.content[${j}]`;
    const c = expectRecord(raw, q);
    const type = expectString(c["type"] ?? missing(`${q}.type`), `${q}.type`);
    if (type === "input_text" || type === "output_text") {
      parts.push(textPart(expectString(c["text"], `${q}.text`)));
    } else if (type === "refusal") {
      refusal = (refusal ?? "") + expectString(c["refusal"], `${q}.refusal`);
    } else if (type === "input_image") {
      const url = optString(c["image_url"], `${q}.image_url`);
      const detail = optString(c["detail"], `${q}.detail`) ?? "";
      optString(c["file_id"], `${q}.file_id`);
      if (url === undefined) continue; // by file_id: raw only
      if (!/^(https?:|data:image\/)/i.test(url)) {
        throw invalid(`${q}.image_url: expected an http(s) URL or a data:image/ URL`, `${q}.image_url`);
      }
      parts.push({
        $typeName: "switchyard.v1.ContentPart",
        part: { case: "imageUrl", value: { $typeName: "switchyard.v1.ImageUrl", url, detail } },
      });
    }
    // input_file and unknown part types: raw only.
  }
  return message(role, parts, { refusal });
}

function decodeCallOutput(it: JsonRecord, p: string): Message {
  const callId = expectString(it["call_id"] ?? missing(`${p}.call_id`), `${p}.call_id`);
  const output = it["output"] ?? missing(`${p}.output`);
  if (typeof output === "string") return message(Role.TOOL, [textPart(output)], { contentIsText: true, toolCallId: callId });
  const parts: ContentPart[] = [];
  for (const [j, raw] of expectArray(output, `${p}.output`).entries()) {
    const q = `${p}.output[${j}]`;
    const c = expectRecord(raw, q);
    const type = expectString(c["type"] ?? missing(`${q}.type`), `${q}.type`);
    if (type === "input_text") parts.push(textPart(expectString(c["text"], `${q}.text`)));
    // Images and files in tool output: raw only.
  }
  return message(Role.TOOL, parts, { toolCallId: callId });
}

/** Readable reasoning: the full text when given, else the summary parts. */
function reasoningText(it: JsonRecord, p: string): string {
  optString(it["encrypted_content"], `${p}.encrypted_content`);
  const texts = (field: string): string[] =>
    it[field] == null
      ? []
      : expectArray(it[field], `${p}.${field}`).map((s, j) => expectString(expectRecord(s, `${p}.${field}[${j}]`)["text"], `${p}.${field}[${j}].text`));
  const content = texts("content");
  return content.length > 0 ? content.join("") : texts("summary").join("\n\n");
}

function decodeTools(v: unknown): Tool[] {
  if (v == null) return [];
  const tools: Tool[] = [];
  for (const [i, raw] of expectArray(v, "tools").entries()) {
    const p = `tools[${i}]`;
    const t = expectRecord(raw, p);
    const type = expectString(t["type"] ?? missing(`${p}.type`), `${p}.type`);
    if (type !== "function") continue; // hosted tools: raw only
    const name = expectString(t["name"] ?? missing(`${p}.name`), `${p}.name`);
    if (name.length === 0) throw invalid(`${p}.name: must not be empty`, `${p}.name`);
    tools.push({
      $typeName: "switchyard.v1.Tool",
      function: {
        $typeName: "switchyard.v1.FunctionDefinition",
        name,
        description: optString(t["description"], `${p}.description`) ?? "",
        parameters: optRecord(t["parameters"], `${p}.parameters`) as JsonObject | undefined,
        strict: optBoolean(t["strict"], `${p}.strict`),
      },
    });
  }
  return tools;
}

function decodeToolChoice(v: unknown): ToolChoice | undefined {
  if (v == null) return undefined;
  const p = "tool_choice";
  if (typeof v === "string") {
    const mode = v === "none" ? ToolChoice_Mode.NONE : v === "auto" ? ToolChoice_Mode.AUTO : v === "required" ? ToolChoice_Mode.REQUIRED : undefined;
    if (mode === undefined) throw invalid(`${p}: '${v}' is not one of none, auto, required`, p);
    return { $typeName: "switchyard.v1.ToolChoice", choice: { case: "mode", value: mode } };
  }
  const o = expectRecord(v, p);
  const type = expectString(o["type"] ?? missing(`${p}.type`), `${p}.type`);
  if (type !== "function") return undefined; // hosted tools, allowed_tools, mcp...: raw only
  return { $typeName: "switchyard.v1.ToolChoice", choice: { case: "function", value: expectString(o["name"] ?? missing(`${p}.name`), `${p}.name`) } };
}

/** `text.format`: Responses flattens Chat Completions' `json_schema` wrapper into the format object. */
function decodeFormat(v: unknown): ResponseFormat | undefined {
  const p = "text.format";
  const f = optRecord(v, p);
  if (f === undefined) return undefined;
  const type = expectString(f["type"] ?? missing(`${p}.type`), `${p}.type`);
  if (type === "text") return { $typeName: "switchyard.v1.ResponseFormat", type: ResponseFormat_Type.TEXT };
  if (type === "json_object") return { $typeName: "switchyard.v1.ResponseFormat", type: ResponseFormat_Type.JSON_OBJECT };
  if (type !== "json_schema") return undefined; // a newer format: raw only
  return {
    $typeName: "switchyard.v1.ResponseFormat",
    type: ResponseFormat_Type.JSON_SCHEMA,
    jsonSchema: {
      $typeName: "switchyard.v1.JsonSchema",
      name: expectString(f["name"] ?? missing(`${p}.name`), `${p}.name`),
      description: optString(f["description"], `${p}.description`) ?? "",
      schema: expectRecord(f["schema"] ?? missing(`${p}.schema`), `${p}.schema`) as JsonObject,
      strict: optBoolean(f["strict"], `${p}.strict`),
    },
  };
}

function decodeMetadata(v: unknown): Record<string, string> {
  const o = optRecord(v, "metadata");
  if (o === undefined) return {};
  for (const [k, val] of Object.entries(o)) expectString(val, `metadata.${k}`);
  return o as Record<string, string>;
}
