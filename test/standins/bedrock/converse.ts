/**
 * Converse / ConverseStream for the Bedrock stand-in: validation the way
 * Bedrock rejects requests (ValidationException messages), a deterministic
 * answer plan, and its two renderings (a ConverseResponse, or the ordered
 * ConverseStream events). Pure functions; framing and timing live in
 * ../bedrock.ts.
 */
import { randomUUID } from "node:crypto";

type Json = Record<string, unknown>;

export interface BedrockError {
  status: number;
  type: string;
  message: string;
}

export const validation = (message: string): BedrockError => ({ status: 400, type: "ValidationException", message });

/** Bedrock's default error for a status, as the stand-in injects it. */
export function defaultErrorFor(status: number): BedrockError {
  switch (status) {
    case 400: return validation("Input is too long for requested model.");
    case 403: return { status, type: "AccessDeniedException", message: "You don't have access to the model with the specified model ID." };
    case 404: return { status, type: "ResourceNotFoundException", message: "Could not resolve the foundation model from the provided model identifier." };
    case 408: return { status, type: "ModelTimeoutException", message: "Model has timed out in processing the request. Try your request again." };
    case 424: return { status, type: "ModelErrorException", message: "The system encountered an unexpected error during processing. Try your request again." };
    case 429: return { status, type: "ThrottlingException", message: "Too many requests, please wait before trying again." };
    case 503: return { status, type: "ServiceUnavailableException", message: "Bedrock is unable to process your request." };
    default: return { status, type: "InternalServerException", message: "The server encountered an internal error while processing the request." };
  }
}

export interface ToolSpecView {
  name: string;
  schema: Json;
}

export interface ConverseView {
  model: string;
  messages: { role: "user" | "assistant"; content: Json[] }[];
  system: string[];
  tools: ToolSpecView[];
  toolChoice: Json | undefined;
  maxTokens: number | undefined;
  additional: Json;
}

const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const BLOCK_KINDS = ["text", "image", "toolUse", "toolResult", "document", "reasoningContent", "cachePoint"];

/** Validates a Converse body; `maxInputTokens` models the context window. */
export function parseConverse(model: string, body: unknown, maxInputTokens: number): { ok: true; value: ConverseView } | { ok: false; error: BedrockError } {
  const fail = (message: string) => ({ ok: false as const, error: validation(message) });
  if (!isObj(body)) return fail("Malformed input request, please reformat your input and try again.");
  const messages = body["messages"];
  if (!Array.isArray(messages) || messages.length === 0) return fail("A conversation must start with a user message. Try again with a conversation that starts with a user message.");
  const tc = body["toolConfig"];
  let usesTools = false;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isObj(m) || (m["role"] !== "user" && m["role"] !== "assistant")) return fail(`1 validation error detected: Value at 'messages.${i + 1}.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]`);
    if (i === 0 && m["role"] !== "user") return fail("A conversation must start with a user message. Try again with a conversation that starts with a user message.");
    if (i > 0 && isObj(messages[i - 1]) && (messages[i - 1] as Json)["role"] === m["role"]) return fail("A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.");
    const content = m["content"];
    if (!Array.isArray(content) || content.length === 0) return fail(`The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`);
    for (let j = 0; j < content.length; j++) {
      const b = content[j];
      const keys = isObj(b) ? Object.keys(b) : [];
      if (keys.length !== 1 || !BLOCK_KINDS.includes(keys[0]!)) return fail(`The ContentBlock object at messages.${i}.content.${j} must set exactly one of its members.`);
      const block = b as Json;
      if ("text" in block && (typeof block["text"] !== "string" || block["text"].trim() === "")) return fail(`The text field in the ContentBlock object at messages.${i}.content.${j} is blank. Add text to the text field, and try again.`);
      if ("image" in block) {
        const img = block["image"] as Json;
        const src = isObj(img) && isObj(img["source"]) ? img["source"] : {};
        if (!isObj(img) || !["png", "jpeg", "gif", "webp"].includes(String(img["format"])) || typeof src["bytes"] !== "string" || !/^[A-Za-z0-9+/]+={0,2}$/.test(src["bytes"])) {
          return fail(`The image in messages.${i}.content.${j} is invalid: format must be png, jpeg, gif or webp and source.bytes base64.`);
        }
        if (m["role"] !== "user") return fail("Images are only allowed in user messages.");
      }
      if ("toolUse" in block || "toolResult" in block) usesTools = true;
      if ("toolUse" in block) {
        const tu = block["toolUse"];
        if (!isObj(tu) || typeof tu["toolUseId"] !== "string" || typeof tu["name"] !== "string" || !isObj(tu["input"])) return fail(`The toolUse block at messages.${i}.content.${j} needs toolUseId, name and an input object.`);
      }
      if ("toolResult" in block) {
        const tr = block["toolResult"];
        if (!isObj(tr) || typeof tr["toolUseId"] !== "string" || !Array.isArray(tr["content"])) return fail(`The toolResult block at messages.${i}.content.${j} needs toolUseId and content.`);
        if (m["role"] !== "user") return fail("Tool results are only allowed in user messages.");
      }
    }
  }
  if (usesTools && !isObj(tc)) return fail("The toolConfig field must be defined when using toolUse and toolResult content blocks.");
  const tools: ToolSpecView[] = [];
  if (isObj(tc)) {
    if (!Array.isArray(tc["tools"]) || tc["tools"].length === 0) return fail("The toolConfig field must contain at least one tool.");
    for (const t of tc["tools"]) {
      const spec = isObj(t) ? t["toolSpec"] : undefined;
      const schema = isObj(spec) && isObj(spec["inputSchema"]) ? spec["inputSchema"]["json"] : undefined;
      if (!isObj(spec) || typeof spec["name"] !== "string" || !isObj(schema)) return fail("Each tool needs toolSpec.name and toolSpec.inputSchema.json.");
      if (spec["description"] !== undefined && (typeof spec["description"] !== "string" || spec["description"] === "")) return fail("toolSpec.description must have length at least 1.");
      tools.push({ name: spec["name"], schema });
    }
    const choice = tc["toolChoice"];
    if (choice !== undefined) {
      const kinds = isObj(choice) ? Object.keys(choice) : [];
      if (kinds.length !== 1 || !["auto", "any", "tool"].includes(kinds[0]!)) return fail("toolChoice must set exactly one of auto, any, tool.");
    }
  }
  const system = Array.isArray(body["system"]) ? body["system"].filter(isObj).map((s) => String(s["text"] ?? "")) : [];
  const ic = isObj(body["inferenceConfig"]) ? body["inferenceConfig"] : {};
  for (const k of Object.keys(ic)) if (!["maxTokens", "temperature", "topP", "stopSequences"].includes(k)) return fail(`Unknown field inferenceConfig.${k}.`);
  if (ic["temperature"] !== undefined && (typeof ic["temperature"] !== "number" || ic["temperature"] < 0 || ic["temperature"] > 1)) return fail("1 validation error detected: Value at 'inferenceConfig.temperature' failed to satisfy constraint: Member must have value less than or equal to 1");
  const view: ConverseView = {
    model,
    messages: messages as ConverseView["messages"],
    system,
    tools,
    toolChoice: isObj(tc) && isObj(tc["toolChoice"]) ? tc["toolChoice"] : undefined,
    maxTokens: typeof ic["maxTokens"] === "number" ? ic["maxTokens"] : undefined,
    additional: isObj(body["additionalModelRequestFields"]) ? body["additionalModelRequestFields"] : {},
  };
  if (promptTokens(view) > maxInputTokens) return fail("Input is too long for requested model.");
  return { ok: true, value: view };
}

/** Tokens as the stand-in counts them: 4 characters each, rounded up. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

function blockText(b: Json): string {
  if (typeof b["text"] === "string") return b["text"];
  const tr = b["toolResult"];
  if (isObj(tr) && Array.isArray(tr["content"])) return tr["content"].filter(isObj).map((c) => (typeof c["text"] === "string" ? c["text"] : JSON.stringify(c["json"]))).join("\n");
  const tu = b["toolUse"];
  if (isObj(tu)) return `${String(tu["name"])}${JSON.stringify(tu["input"])}`;
  return "";
}

function promptTokens(v: ConverseView): number {
  let chars = v.system.join("").length;
  for (const m of v.messages) for (const b of m.content) chars += blockText(b).length;
  return Math.ceil(chars / 4);
}

export interface ConversePlan {
  text: string | null;
  reasoning: string | null;
  toolUse: { toolUseId: string; name: string; input: Json } | null;
  stopReason: "end_turn" | "max_tokens" | "tool_use" | "guardrail_intervened";
  usage: { inputTokens: number; outputTokens: number; totalTokens: number };
}

/**
 * Reply rules (deterministic):
 * - a toolUse of the first tool (or the one toolChoice.tool names) when tools
 *   exist and the last user turn holds no toolResult, or toolChoice is any/tool;
 *   its input fills each required string property with "Paris" for
 *   location-like names, else the user's text; numbers 1, booleans true;
 * - otherwise text "echo: " + the last user turn's text (tool results
 *   included), cut to 4 × maxTokens characters with stopReason max_tokens;
 * - reasoning text "thinking about: <text>" first when additionalModelRequestFields
 *   asks for it (`thinking` or `reasoningConfig`).
 */
export function planConverse(v: ConverseView): ConversePlan {
  const lastUser = v.messages.findLast((m) => m.role === "user")!;
  const userText = lastUser.content.map(blockText).filter((t) => t !== "").join("\n");
  const hasResult = lastUser.content.some((b) => "toolResult" in b);
  const forced = v.toolChoice !== undefined && ("any" in v.toolChoice || "tool" in v.toolChoice);
  const reasoning = "thinking" in v.additional || "reasoningConfig" in v.additional ? `thinking about: ${userText}` : null;
  const input = estimateTokens([...v.system, ...v.messages.flatMap((m) => m.content.map(blockText))].join(""));
  if (v.tools.length > 0 && (!hasResult || forced)) {
    const named = v.toolChoice !== undefined && isObj(v.toolChoice["tool"]) ? String(v.toolChoice["tool"]["name"]) : undefined;
    const tool = v.tools.find((t) => t.name === named) ?? v.tools[0]!;
    const toolUse = { toolUseId: `tooluse_${randomUUID().replaceAll("-", "").slice(0, 22)}`, name: tool.name, input: deriveInput(tool.schema, userText) };
    const output = estimateTokens(tool.name + JSON.stringify(toolUse.input));
    return { text: null, reasoning, toolUse, stopReason: "tool_use", usage: { inputTokens: input, outputTokens: output, totalTokens: input + output } };
  }
  let text = `echo: ${userText}`;
  let stopReason: ConversePlan["stopReason"] = "end_turn";
  if (v.maxTokens !== undefined && estimateTokens(text) > v.maxTokens) {
    text = text.slice(0, v.maxTokens * 4);
    stopReason = "max_tokens";
  }
  const output = estimateTokens(text) + (reasoning === null ? 0 : estimateTokens(reasoning));
  return { text, reasoning, toolUse: null, stopReason, usage: { inputTokens: input, outputTokens: output, totalTokens: input + output } };
}

function deriveInput(schema: Json, userText: string): Json {
  const props = isObj(schema["properties"]) ? schema["properties"] : {};
  const required = Array.isArray(schema["required"]) ? (schema["required"] as string[]) : Object.keys(props);
  const out: Json = {};
  for (const name of required) {
    const p = isObj(props[name]) ? (props[name] as Json) : {};
    if (Array.isArray(p["enum"])) out[name] = p["enum"][0];
    else if (p["type"] === "number" || p["type"] === "integer") out[name] = 1;
    else if (p["type"] === "boolean") out[name] = true;
    else out[name] = /location|city|place/i.test(name) ? "Paris" : userText;
  }
  return out;
}

/** The ConverseResponse JSON. */
export function renderResponse(plan: ConversePlan, latencyMs: number): Json {
  const content: Json[] = [];
  if (plan.reasoning !== null) content.push({ reasoningContent: { reasoningText: { text: plan.reasoning, signature: "c2lnbmF0dXJl" } } });
  if (plan.text !== null) content.push({ text: plan.text });
  if (plan.toolUse !== null) content.push({ toolUse: plan.toolUse });
  return {
    output: { message: { role: "assistant", content } },
    stopReason: plan.stopReason,
    usage: plan.usage,
    metrics: { latencyMs },
  };
}

/** Bedrock pads stream events with a random "p" field so their sizes leak nothing. */
function pad(): string {
  return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".slice(0, 1 + Math.floor(Math.random() * 40));
}

/** The ConverseStream events, in Bedrock's order: [event type, payload]. */
export function renderEvents(plan: ConversePlan, chunkChars: number, latencyMs: number): [string, Json][] {
  const events: [string, Json][] = [["messageStart", { p: pad(), role: "assistant" }]];
  let index = 0;
  if (plan.reasoning !== null) {
    for (const piece of split(plan.reasoning, chunkChars)) events.push(["contentBlockDelta", { contentBlockIndex: index, delta: { reasoningContent: { text: piece } }, p: pad() }]);
    events.push(["contentBlockDelta", { contentBlockIndex: index, delta: { reasoningContent: { signature: "c2lnbmF0dXJl" } }, p: pad() }]);
    events.push(["contentBlockStop", { contentBlockIndex: index++, p: pad() }]);
  }
  if (plan.text !== null) {
    for (const piece of split(plan.text, chunkChars)) events.push(["contentBlockDelta", { contentBlockIndex: index, delta: { text: piece }, p: pad() }]);
    events.push(["contentBlockStop", { contentBlockIndex: index++, p: pad() }]);
  }
  if (plan.toolUse !== null) {
    events.push(["contentBlockStart", { contentBlockIndex: index, start: { toolUse: { toolUseId: plan.toolUse.toolUseId, name: plan.toolUse.name } }, p: pad() }]);
    for (const piece of split(JSON.stringify(plan.toolUse.input), chunkChars)) events.push(["contentBlockDelta", { contentBlockIndex: index, delta: { toolUse: { input: piece } }, p: pad() }]);
    events.push(["contentBlockStop", { contentBlockIndex: index++, p: pad() }]);
  }
  events.push(["messageStop", { p: pad(), stopReason: plan.stopReason }]);
  events.push(["metadata", { metrics: { latencyMs }, p: pad(), usage: plan.usage }]);
  return events;
}

function split(text: string, size: number): string[] {
  const cps = [...text];
  const out: string[] = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(""));
  return out.length > 0 ? out : [""];
}

/** A deterministic unit-length-ish vector for Titan: same text, same vector. */
export function titanEmbedding(text: string, dims: number): number[] {
  const out: number[] = [];
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619);
  for (let i = 0; i < dims; i++) {
    h = Math.imul(h ^ i, 16777619);
    out.push(((h >>> 0) % 2000) / 1000 - 1);
  }
  return out;
}
