import {
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatRequest,
  type ContentPart,
  type Message,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { extraFor } from "../../wire/extra.ts";
import type { BedrockMessage, ContentBlock, ConverseRequest, ImageFormat, InferenceConfig, JsonValue, ToolChoice } from "./wire.ts";

/**
 * Canonical ChatRequest -> Converse request body. Refuses what Converse cannot
 * carry (GatewayError "unsupported" naming the field) rather than dropping it.
 *
 * - system/developer messages, wherever they are, become `system` blocks.
 * - tool results become user turns with toolResult blocks; consecutive turns
 *   of one role are merged, since Converse requires user/assistant alternation.
 * - `tool_choice: "none"` omits toolConfig (Converse has no "none"); refused
 *   when the history holds tool blocks, because Converse then needs toolConfig
 *   and would let the model call tools again.
 * - top_k and `extra` go to additionalModelRequestFields (model-specific
 *   fields, e.g. Claude's `thinking`); an `extra` key naming a Converse
 *   top-level field (guardrailConfig, performanceConfig, ...) goes top-level.
 * - `metadata` becomes requestMetadata (logged by Bedrock, not seen by the model).
 * - `user` and message `name` are dropped: Converse has no such fields and they
 *   do not change the answer.
 */

/** Converse top-level members a caller may set through `extra`. */
const TOP_LEVEL_EXTRA = new Set(["guardrailConfig", "performanceConfig", "promptVariables", "additionalModelResponseFieldPaths", "serviceTier"]);

const IMAGE_FORMATS: Record<string, ImageFormat> = { "image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif", "image/webp": "webp" };

function unsupported(message: string, param: string): GatewayError {
  return new GatewayError("unsupported", message, { param });
}

export function toConverseRequest(req: ChatRequest): ConverseRequest {
  if (req.n !== undefined && req.n > 1) throw unsupported("n: Bedrock returns one choice per request", "n");
  const rf = req.responseFormat?.type;
  if (rf === ResponseFormat_Type.JSON_OBJECT || rf === ResponseFormat_Type.JSON_SCHEMA) {
    throw unsupported("response_format: Bedrock Converse has no JSON mode; ask for JSON in the prompt or use a forced tool call", "response_format");
  }
  if (req.seed !== undefined) throw unsupported("seed: Bedrock Converse has no seed", "seed");
  if (req.presencePenalty !== undefined) throw unsupported("presence_penalty: not a Converse parameter (set it in extra for models that take it)", "presence_penalty");
  if (req.frequencyPenalty !== undefined) throw unsupported("frequency_penalty: not a Converse parameter (set it in extra for models that take it)", "frequency_penalty");
  if (req.parallelToolCalls === false) throw unsupported("parallel_tool_calls: Bedrock Converse cannot turn off parallel tool calls", "parallel_tool_calls");

  const system: { text: string }[] = [];
  const messages: BedrockMessage[] = [];
  req.messages.forEach((m, i) => {
    const p = `messages[${i}]`;
    if (m.role === Role.SYSTEM || m.role === Role.DEVELOPER) {
      for (let j = 0; j < m.content.length; j++) {
        const part = m.content[j]!.part;
        if (part.case !== "text") throw unsupported(`${p}.content[${j}]: system messages take only text on Bedrock`, `${p}.content[${j}]`);
        if (part.value !== "") system.push({ text: part.value });
      }
      return;
    }
    const role = m.role === Role.ASSISTANT ? "assistant" : "user";
    const content = m.role === Role.TOOL ? [toolResult(m)] : m.role === Role.ASSISTANT ? assistantBlocks(m, p) : m.content.map((c, j) => userBlock(c, `${p}.content[${j}]`));
    if (content.length === 0) return; // an empty assistant turn: Converse rejects blank content
    const last = messages.at(-1);
    if (last?.role === role) last.content.push(...content);
    else messages.push({ role, content });
  });

  const out: ConverseRequest = { messages };
  if (system.length > 0) out.system = system;
  const inference = inferenceConfig(req);
  if (inference !== undefined) out.inferenceConfig = inference;

  const mode = req.toolChoice?.choice.case === "mode" ? req.toolChoice.choice.value : undefined;
  if (req.tools.length > 0 && mode !== ToolChoice_Mode.NONE) {
    out.toolConfig = {
      tools: req.tools.map((t, i) => {
        const f = t.function!;
        if (f.strict === true) throw unsupported(`tools[${i}].function.strict: Bedrock Converse has no strict tool schemas`, `tools[${i}].function.strict`);
        return { toolSpec: { name: f.name, ...(f.description ? { description: f.description } : {}), inputSchema: { json: (f.parameters ?? { type: "object", properties: {} }) as JsonValue } } };
      }),
    };
    const choice = toolChoice(req);
    if (choice !== undefined) out.toolConfig.toolChoice = choice;
  } else if (mode === ToolChoice_Mode.NONE && messages.some((m) => m.content.some((b) => "toolUse" in b || "toolResult" in b))) {
    throw unsupported("tool_choice: 'none' cannot be honoured on Bedrock once the conversation holds tool calls (Converse has no 'none' choice)", "tool_choice");
  } else if (req.toolChoice?.choice.case === "function") {
    throw invalid(`tool_choice: function '${req.toolChoice.choice.value}' is not among the tools`, "tool_choice");
  }

  const additional: Record<string, JsonValue> = {};
  if (req.topK !== undefined) {
    // Nova reads top-k from its own inferenceConfig; Anthropic, Mistral, Meta and others from top_k.
    if (req.model.includes("amazon.nova")) additional["inferenceConfig"] = { topK: req.topK };
    else additional["top_k"] = req.topK;
  }
  for (const [k, v] of Object.entries(extraFor(req, "bedrock", "Bedrock", ["openai"]))) {
    if (TOP_LEVEL_EXTRA.has(k)) out[k] = v;
    else if (k === "additionalModelRequestFields" && v !== null && typeof v === "object" && !Array.isArray(v)) Object.assign(additional, v);
    else additional[k] = v as JsonValue;
  }
  if (Object.keys(additional).length > 0) out.additionalModelRequestFields = additional;
  if (Object.keys(req.metadata).length > 0) out.requestMetadata = { ...req.metadata };
  return out;
}

function inferenceConfig(req: ChatRequest): InferenceConfig | undefined {
  const c: InferenceConfig = {};
  const max = req.maxCompletionTokens ?? req.maxTokens;
  if (max !== undefined) c.maxTokens = max;
  if (req.temperature !== undefined) c.temperature = req.temperature;
  if (req.topP !== undefined) c.topP = req.topP;
  if (req.stop.length > 0) c.stopSequences = [...req.stop];
  return Object.keys(c).length > 0 ? c : undefined;
}

function toolChoice(req: ChatRequest): ToolChoice | undefined {
  const c = req.toolChoice?.choice;
  if (c?.case === "function") {
    if (!req.tools.some((t) => t.function?.name === c.value)) throw invalid(`tool_choice: function '${c.value}' is not among the tools`, "tool_choice");
    return { tool: { name: c.value } };
  }
  if (c?.case === "mode" && c.value === ToolChoice_Mode.REQUIRED) return { any: {} };
  if (c?.case === "mode" && c.value === ToolChoice_Mode.AUTO) return { auto: {} };
  return undefined;
}

function userBlock(c: ContentPart, p: string): ContentBlock {
  const part = c.part;
  if (part.case === "text") return { text: part.value };
  if (part.case === "imageUrl") {
    const m = /^data:([^;,]+);base64,(.*)$/is.exec(part.value.url);
    if (m === null) {
      // Never fetched: the gateway does not download caller-supplied URLs.
      throw unsupported(`${p}.image_url.url: Bedrock takes images as bytes only; send a data: URL (base64), not a link`, `${p}.image_url.url`);
    }
    const format = IMAGE_FORMATS[m[1]!.toLowerCase()];
    if (format === undefined) throw unsupported(`${p}.image_url.url: image type '${m[1]}' is not one of png, jpeg, gif, webp`, `${p}.image_url.url`);
    return { image: { format, source: { bytes: m[2]!.replace(/\s+/g, "") } } };
  }
  throw unsupported(`${p}: this content part type is not supported by the Bedrock provider`, p);
}

function assistantBlocks(m: Message, p: string): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  m.content.forEach((c, j) => {
    if (c.part.case !== "text") throw unsupported(`${p}.content[${j}]: assistant messages take only text on Bedrock`, `${p}.content[${j}]`);
    if (c.part.value.trim() !== "") blocks.push({ text: c.part.value }); // Converse rejects blank text blocks
  });
  m.toolCalls.forEach((t, j) => {
    const args = t.function?.arguments ?? "";
    let input: JsonValue;
    try {
      input = args.trim() === "" ? {} : (JSON.parse(args) as JsonValue);
    } catch {
      throw invalid(`${p}.tool_calls[${j}].function.arguments: not valid JSON`, `${p}.tool_calls[${j}].function.arguments`);
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      throw invalid(`${p}.tool_calls[${j}].function.arguments: must be a JSON object`, `${p}.tool_calls[${j}].function.arguments`);
    }
    blocks.push({ toolUse: { toolUseId: t.id, name: t.function?.name ?? "", input } });
  });
  return blocks;
}

/** A tool message's text, sent as text: the caller's string reaches the model unchanged. */
function toolResult(m: Message): ContentBlock {
  let text = "";
  for (const c of m.content) if (c.part.case === "text") text += c.part.value;
  const status = m.extra?.["status"];
  return {
    toolResult: {
      toolUseId: m.toolCallId,
      content: [{ text }],
      ...(status === "error" || status === "success" ? { status } : {}),
    },
  };
}
