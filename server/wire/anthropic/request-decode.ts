import { create, type JsonObject } from "@bufbuild/protobuf";
import {
  ChatRequestSchema,
  Role,
  ToolChoice_Mode,
  type ChatRequest,
  type ContentPart,
  type Message,
  type Tool,
  type ToolCall,
  type ToolChoice,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { pickExtra } from "../extra.ts";
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
} from "../openai/json.ts";

/**
 * An Anthropic Messages API request (an untrusted caller's JSON) -> the
 * canonical ChatRequest. Strict like Anthropic: every typed field is checked
 * and errors name it in Anthropic's dotted form (`messages.0.content.1.source`).
 *
 * What canonical messages cannot carry is kept so an Anthropic-backed model
 * still gets it: a message whose blocks have more than canonical fields
 * (cache_control, citations, thinking signatures, tool_result is_error) keeps
 * its original blocks in `extra.content`; tools with more than name,
 * description and input_schema keep the original list in the request's
 * `extra.tools`. The OpenAI encoder always overwrites `content` and (when
 * there are tools) `tools`, so these never reach an OpenAI-format provider.
 * Unknown top-level fields (thinking, service_tier, ...) go to `extra` as is.
 */

const TYPED_KEYS = new Set([
  "model", "messages", "max_tokens", "system", "stop_sequences", "stream", "temperature",
  "top_p", "top_k", "tools", "tool_choice", "metadata",
]);

/** Block keys the canonical message carries; anything else means "keep the original blocks". */
const CARRIED: Record<string, ReadonlySet<string>> = {
  text: new Set(["type", "text"]),
  image: new Set(["type", "source"]),
  tool_use: new Set(["type", "id", "name", "input"]),
  tool_result: new Set(["type", "tool_use_id", "content"]),
};

export interface DecodedMessagesRequest {
  request: ChatRequest;
  stream: boolean;
}

export function decodeMessagesRequest(body: unknown): DecodedMessagesRequest {
  const b = expectRecord(body, "body");
  const model = expectString(b["model"] ?? missing("model"), "model");
  if (model.length === 0) throw invalid("model: must not be empty", "model");
  const maxTokens = optCount(b["max_tokens"] ?? missing("max_tokens"), "max_tokens");
  if (maxTokens === 0) throw invalid("max_tokens: must be at least 1", "max_tokens");
  const rawMessages = expectArray(b["messages"] ?? missing("messages"), "messages");

  const messages: Message[] = [...decodeSystem(b["system"])];
  rawMessages.forEach((m, i) => messages.push(...decodeMessage(m, `messages.${i}`)));
  if (messages.every((m) => m.role === Role.SYSTEM)) throw invalid("messages: at least one message is required", "messages");

  const extra = pickExtra(b, TYPED_KEYS);
  const { tools, keepOriginal } = decodeTools(b["tools"]);
  const choice = decodeToolChoice(b["tool_choice"]);
  const metadata = optRecord(b["metadata"], "metadata");
  let user = "";
  if (metadata !== undefined) {
    for (const k of Object.keys(metadata)) {
      if (k !== "user_id") throw invalid(`metadata.${k}: Extra inputs are not permitted`, `metadata.${k}`);
    }
    user = optString(metadata["user_id"], "metadata.user_id") ?? "";
  }
  const request = create(ChatRequestSchema, {
    model,
    messages,
    tools,
    toolChoice: choice.toolChoice,
    parallelToolCalls: choice.disableParallel ? false : undefined,
    temperature: optNumber(b["temperature"], "temperature"),
    topP: optNumber(b["top_p"], "top_p"),
    topK: optCount(b["top_k"], "top_k"),
    maxTokens,
    stop: b["stop_sequences"] == null ? [] : expectArray(b["stop_sequences"], "stop_sequences").map((s, i) => expectString(s, `stop_sequences.${i}`)),
    user,
    extra: keepOriginal ? { ...extra, tools: b["tools"] as JsonObject[string] } : extra,
    extraFormat: "anthropic",
  });
  return { request, stream: optBoolean(b["stream"], "stream") ?? false };
}

function missing(param: string): never {
  throw invalid(`${param}: Field required`, param);
}

function textPart(text: string): ContentPart {
  return { $typeName: "switchyard.v1.ContentPart", part: { case: "text", value: text } };
}

function message(role: Role, content: ContentPart[], more: Partial<Message> = {}): Message {
  return {
    $typeName: "switchyard.v1.Message",
    role,
    content,
    contentIsText: false,
    name: "",
    toolCalls: [],
    toolCallId: "",
    refusal: undefined,
    reasoningContent: "",
    extra: undefined,
    ...more,
  };
}

/** Whether a block has fields the canonical message cannot carry. */
function lossy(block: JsonRecord): boolean {
  const carried = CARRIED[String(block["type"])];
  if (carried === undefined) return true;
  for (const k in block) if (!carried.has(k)) return true;
  if (block["type"] === "tool_result" && Array.isArray(block["content"])) {
    return block["content"].some((c) => !isRecord(c) || c["type"] !== "text" || lossy(c));
  }
  return false;
}

function original(blocks: JsonRecord[]): JsonObject | undefined {
  return blocks.some(lossy) ? { content: blocks as JsonObject[string] } : undefined;
}

function decodeSystem(v: unknown): Message[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return v === "" ? [] : [message(Role.SYSTEM, [textPart(v)], { contentIsText: true })];
  const blocks = expectArray(v, "system").map((raw, i) => {
    const p = `system.${i}`;
    const blk = expectRecord(raw, p);
    if (blk["type"] !== "text") throw invalid(`${p}.type: Input should be 'text'`, `${p}.type`);
    expectString(blk["text"], `${p}.text`);
    return blk;
  });
  if (blocks.length === 0) return [];
  const text = blocks.map((b) => b["text"] as string).join("\n\n");
  return [message(Role.SYSTEM, [textPart(text)], { contentIsText: true, extra: original(blocks) })];
}

/** One Anthropic message -> one or more canonical messages (each tool_result is its own tool message). */
function decodeMessage(raw: unknown, p: string): Message[] {
  const m = expectRecord(raw, p);
  const roleName = expectString(m["role"] ?? missing(`${p}.role`), `${p}.role`);
  if (roleName !== "user" && roleName !== "assistant") {
    throw invalid(`${p}.role: Input should be 'user' or 'assistant'`, `${p}.role`);
  }
  for (const k of Object.keys(m)) {
    if (k !== "role" && k !== "content") throw invalid(`${p}.${k}: Extra inputs are not permitted`, `${p}.${k}`);
  }
  const content = m["content"] ?? missing(`${p}.content`);
  const role = roleName === "user" ? Role.USER : Role.ASSISTANT;
  if (typeof content === "string") return [message(role, [textPart(content)], { contentIsText: true })];
  const blocks = expectArray(content, `${p}.content`).map((c, j) => expectRecord(c, `${p}.content.${j}`));
  return role === Role.USER ? decodeUserBlocks(blocks, p) : [decodeAssistantBlocks(blocks, p)];
}

function decodeUserBlocks(blocks: JsonRecord[], p: string): Message[] {
  const out: Message[] = [];
  let parts: ContentPart[] = [];
  let partBlocks: JsonRecord[] = [];
  const flush = (): void => {
    if (partBlocks.length === 0) return;
    out.push(message(Role.USER, parts, { extra: original(partBlocks) }));
    parts = [];
    partBlocks = [];
  };
  blocks.forEach((blk, j) => {
    const bp = `${p}.content.${j}`;
    const type = expectString(blk["type"] ?? missing(`${bp}.type`), `${bp}.type`);
    if (type === "tool_result") {
      flush();
      out.push(decodeToolResult(blk, bp));
      return;
    }
    if (type === "text") parts.push(textPart(expectString(blk["text"], `${bp}.text`)));
    else if (type === "image") parts.push(decodeImage(blk, bp));
    else throw unsupportedBlock(type, bp, "user");
    partBlocks.push(blk);
  });
  flush();
  return out;
}

function decodeToolResult(blk: JsonRecord, bp: string): Message {
  const id = expectString(blk["tool_use_id"] ?? missing(`${bp}.tool_use_id`), `${bp}.tool_use_id`);
  optBoolean(blk["is_error"], `${bp}.is_error`);
  const c = blk["content"];
  const parts: ContentPart[] = [];
  let isText = true;
  if (typeof c === "string") parts.push(textPart(c));
  else if (c !== undefined && c !== null) {
    isText = false;
    expectArray(c, `${bp}.content`).forEach((raw, k) => {
      const cp = `${bp}.content.${k}`;
      const inner = expectRecord(raw, cp);
      const t = expectString(inner["type"] ?? missing(`${cp}.type`), `${cp}.type`);
      if (t === "text") parts.push(textPart(expectString(inner["text"], `${cp}.text`)));
      else if (t === "image") decodeImage(inner, cp); // checked; carried only in the original block (extra.content)
      else throw unsupportedBlock(t, cp, "tool_result");
    });
  }
  if (parts.length === 0) {
    parts.push(textPart(""));
    isText = true;
  }
  return message(Role.TOOL, parts, { contentIsText: isText, toolCallId: id, extra: original([blk]) });
}

function decodeAssistantBlocks(blocks: JsonRecord[], p: string): Message {
  const parts: ContentPart[] = [];
  const toolCalls: ToolCall[] = [];
  let reasoning = "";
  blocks.forEach((blk, j) => {
    const bp = `${p}.content.${j}`;
    const type = expectString(blk["type"] ?? missing(`${bp}.type`), `${bp}.type`);
    if (type === "text") parts.push(textPart(expectString(blk["text"], `${bp}.text`)));
    else if (type === "tool_use") {
      const input = expectRecord(blk["input"] ?? missing(`${bp}.input`), `${bp}.input`);
      toolCalls.push({
        $typeName: "switchyard.v1.ToolCall",
        id: expectString(blk["id"] ?? missing(`${bp}.id`), `${bp}.id`),
        function: {
          $typeName: "switchyard.v1.FunctionCall",
          name: expectString(blk["name"] ?? missing(`${bp}.name`), `${bp}.name`),
          arguments: JSON.stringify(input),
        },
      });
    } else if (type === "thinking") {
      reasoning += expectString(blk["thinking"], `${bp}.thinking`);
      optString(blk["signature"], `${bp}.signature`);
    } else if (type === "redacted_thinking") expectString(blk["data"], `${bp}.data`);
    else throw unsupportedBlock(type, bp, "assistant");
  });
  return message(Role.ASSISTANT, parts, { toolCalls, reasoningContent: reasoning, extra: original(blocks) });
}

function decodeImage(blk: JsonRecord, bp: string): ContentPart {
  const src = expectRecord(blk["source"] ?? missing(`${bp}.source`), `${bp}.source`);
  const type = src["type"];
  let url: string;
  if (type === "base64") {
    const mediaType = expectString(src["media_type"] ?? missing(`${bp}.source.media_type`), `${bp}.source.media_type`);
    if (!/^image\/(jpeg|png|gif|webp)$/.test(mediaType)) {
      throw invalid(`${bp}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`, `${bp}.source.media_type`);
    }
    const data = expectString(src["data"] ?? missing(`${bp}.source.data`), `${bp}.source.data`);
    url = `data:${mediaType};base64,${data}`;
  } else if (type === "url") {
    url = expectString(src["url"] ?? missing(`${bp}.source.url`), `${bp}.source.url`);
    if (!/^https?:\/\//i.test(url)) throw invalid(`${bp}.source.url: expected an http(s) URL`, `${bp}.source.url`);
  } else {
    throw new GatewayError("unsupported", `${bp}.source.type: unsupported image source type '${shown(type)}' (base64 or url)`, { param: `${bp}.source.type` });
  }
  return { $typeName: "switchyard.v1.ContentPart", part: { case: "imageUrl", value: { $typeName: "switchyard.v1.ImageUrl", url, detail: "" } } };
}

function unsupportedBlock(type: string, bp: string, where: string): GatewayError {
  return new GatewayError("unsupported", `${bp}.type: content block type '${type}' is not supported in ${where} content`, { param: `${bp}.type` });
}

function decodeTools(v: unknown): { tools: Tool[]; keepOriginal: boolean } {
  if (v === undefined || v === null) return { tools: [], keepOriginal: false };
  let keepOriginal = false;
  const tools = expectArray(v, "tools").map((raw, i): Tool => {
    const p = `tools.${i}`;
    const t = expectRecord(raw, p);
    if (t["type"] != null && t["type"] !== "custom") {
      throw new GatewayError("unsupported", `${p}.type: tool type '${shown(t["type"])}' is not supported (only custom tools)`, { param: `${p}.type` });
    }
    const name = expectString(t["name"] ?? missing(`${p}.name`), `${p}.name`);
    if (name.length === 0) throw invalid(`${p}.name: must not be empty`, `${p}.name`);
    const schema = expectRecord(t["input_schema"] ?? missing(`${p}.input_schema`), `${p}.input_schema`);
    for (const k in t) if (!["type", "name", "description", "input_schema", "strict"].includes(k)) keepOriginal = true;
    return {
      $typeName: "switchyard.v1.Tool",
      function: {
        $typeName: "switchyard.v1.FunctionDefinition",
        name,
        description: optString(t["description"], `${p}.description`) ?? "",
        parameters: schema as JsonObject,
        strict: optBoolean(t["strict"], `${p}.strict`),
      },
    };
  });
  return { tools, keepOriginal };
}

function decodeToolChoice(v: unknown): { toolChoice: ToolChoice | undefined; disableParallel: boolean } {
  const o = optRecord(v, "tool_choice");
  if (o === undefined) return { toolChoice: undefined, disableParallel: false };
  const disableParallel = optBoolean(o["disable_parallel_tool_use"], "tool_choice.disable_parallel_tool_use") ?? false;
  const mode = (m: ToolChoice_Mode): ToolChoice => ({ $typeName: "switchyard.v1.ToolChoice", choice: { case: "mode", value: m } });
  switch (o["type"]) {
    case "auto":
      return { toolChoice: mode(ToolChoice_Mode.AUTO), disableParallel };
    case "any":
      return { toolChoice: mode(ToolChoice_Mode.REQUIRED), disableParallel };
    case "none":
      return { toolChoice: mode(ToolChoice_Mode.NONE), disableParallel };
    case "tool": {
      const name = expectString(o["name"] ?? missing("tool_choice.name"), "tool_choice.name");
      return { toolChoice: { $typeName: "switchyard.v1.ToolChoice", choice: { case: "function", value: name } }, disableParallel };
    }
    default:
      throw invalid(`tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none', got ${typeof o["type"] === "string" ? `'${o["type"]}'` : typeName(o["type"])}`, "tool_choice.type");
  }
}

