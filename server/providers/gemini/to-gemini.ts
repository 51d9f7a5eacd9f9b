import {
  ResponseFormat_Type,
  Role,
  ToolChoice_Mode,
  type ChatRequest,
  type ContentPart,
  type Message,
} from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { extraFor } from "../../wire/extra.ts";
import { shown } from "../../wire/openai/json.ts";
import { SIGNATURE_MARK } from "./from-gemini.ts";
import { toolParameters } from "./schema.ts";
import type { GeminiContent, GeminiGenerateContentRequest, GeminiPart } from "./wire.ts";

/**
 * Canonical ChatRequest / EmbedRequest -> Gemini request bodies (pure).
 *
 * Not carried, silently: `user`, `metadata` (the Gemini API has no such
 * fields), `parallel_tool_calls` (Gemini cannot be told to make at most one
 * call; it is a hint, so it is not refused), message `name`, and message-level
 * `extra` (e.g. reasoning sent back by a caller).
 *
 * Request `extra`: keys Gemini knows are merged where Gemini expects them,
 * typed fields winning over a same-named extra:
 * - top level: `safetySettings`, `cachedContent`;
 * - generationConfig: every key of an `extra.generationConfig` object, and
 *   `thinkingConfig`, `responseModalities`, `mediaResolution`, `topK`/`top_k`;
 * - `reasoning_effort` (OpenAI's) -> thinkingConfig {thinkingBudget, includeThoughts},
 *   with the budgets of Google's OpenAI-compatibility layer.
 * Any other key is refused as `unsupported` (it would otherwise be dropped
 * without the caller knowing).
 */

const TOP_LEVEL_EXTRA = new Set(["safetySettings", "cachedContent"]);
const GENERATION_EXTRA = new Set(["thinkingConfig", "responseModalities", "mediaResolution", "topK"]);
const REASONING_BUDGET: Record<string, number> = { none: 0, minimal: 0, low: 1024, medium: 8192, high: 24576 };

export function toGeminiRequest(req: ChatRequest): GeminiGenerateContentRequest {
  const system: GeminiPart[] = [];
  const contents: GeminiContent[] = [];
  const push = (role: "user" | "model", parts: GeminiPart[]): void => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    // Gemini expects turns to alternate, and all responses to one model turn's calls in one user turn.
    if (last?.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };

  req.messages.forEach((m, i) => {
    const p = `messages[${i}]`;
    switch (m.role) {
      case Role.SYSTEM:
      case Role.DEVELOPER:
        // Gemini has one system instruction; system messages anywhere are gathered into it, in order.
        system.push(...m.content.map((c, j) => textOnly(c, `${p}.content[${j}]`)));
        return;
      case Role.USER:
        return push("user", m.content.map((c, j) => userPart(c, `${p}.content[${j}]`)));
      case Role.ASSISTANT:
        return push("model", assistantParts(m, p));
      case Role.TOOL:
        return push("user", [toolResult(req.messages, i, p)]);
      default:
        throw invalid(`${p}.role: unspecified`, `${p}.role`);
    }
  });
  if (contents.length === 0) throw invalid("messages: Gemini needs at least one user or assistant message", "messages");

  const out: GeminiGenerateContentRequest = { contents };
  if (system.length > 0) out.systemInstruction = { parts: system };
  if (req.tools.length > 0) {
    out.tools = [{
      functionDeclarations: req.tools.map((t, i) => {
        const f = t.function;
        if (!f || f.name === "") throw invalid(`tools[${i}].function.name: required`, `tools[${i}].function.name`);
        const parameters = toolParameters(f.parameters, `tools[${i}].function.parameters`);
        return { name: f.name, ...(f.description ? { description: f.description } : {}), ...(parameters ? { parameters } : {}) };
      }),
    }];
  }
  const choice = req.toolChoice?.choice;
  if (choice?.case === "function") {
    out.toolConfig = { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.value] } };
  } else if (choice?.case === "mode" && choice.value !== ToolChoice_Mode.UNSPECIFIED) {
    const mode = choice.value === ToolChoice_Mode.NONE ? "NONE" : choice.value === ToolChoice_Mode.REQUIRED ? "ANY" : "AUTO";
    out.toolConfig = { functionCallingConfig: { mode } };
  }

  const gen: Record<string, unknown> = {};
  // reasoning_effort is read from OpenAI callers too (it maps onto Gemini's thinking budget); other foreign fields go through extraFor.
  const effort = req.extra?.["reasoning_effort"];
  const extra = extraFor({ ...req, extra: req.extra ? withoutKey(req.extra, "reasoning_effort") : undefined }, "gemini", "Gemini", ["openai"]);
  if (typeof effort === "string" && effort in REASONING_BUDGET) {
    const budget = REASONING_BUDGET[effort]!;
    gen["thinkingConfig"] = budget === 0 ? { thinkingBudget: 0 } : { thinkingBudget: budget, includeThoughts: true };
  } else if (effort !== undefined) {
    throw new GatewayError("unsupported", `reasoning_effort: '${shown(effort)}' is not one of none, minimal, low, medium, high`, { param: "reasoning_effort" });
  }
  for (const [k, v] of Object.entries(extra)) {
    if (k === "generationConfig" && typeof v === "object" && v !== null && !Array.isArray(v)) Object.assign(gen, v);
    else if (TOP_LEVEL_EXTRA.has(k)) (out as unknown as Record<string, unknown>)[k] = v;
    else if (GENERATION_EXTRA.has(k)) gen[k] = v;
    else if (k === "top_k") gen["topK"] = v;
    else throw new GatewayError("unsupported", `${k}: the Gemini provider does not support this field`, { param: k });
  }
  // Typed fields last, so they win over extra.
  set(gen, "temperature", req.temperature);
  set(gen, "topP", req.topP);
  set(gen, "topK", req.topK);
  set(gen, "maxOutputTokens", req.maxCompletionTokens ?? req.maxTokens);
  if (req.stop.length > 0) gen["stopSequences"] = [...req.stop];
  set(gen, "candidateCount", req.n);
  if (req.seed !== undefined) gen["seed"] = Number(req.seed);
  set(gen, "presencePenalty", req.presencePenalty);
  set(gen, "frequencyPenalty", req.frequencyPenalty);
  const rf = req.responseFormat;
  if (rf?.type === ResponseFormat_Type.JSON_OBJECT) gen["responseMimeType"] = "application/json";
  if (rf?.type === ResponseFormat_Type.JSON_SCHEMA) {
    gen["responseMimeType"] = "application/json";
    // responseJsonSchema takes JSON Schema as is (refs, additionalProperties), unlike responseSchema's OpenAPI subset.
    if (rf.jsonSchema?.schema) gen["responseJsonSchema"] = rf.jsonSchema.schema;
  }
  if (Object.keys(gen).length > 0) out.generationConfig = gen;
  return out;
}

function set(o: Record<string, unknown>, k: string, v: unknown): void {
  if (v !== undefined) o[k] = v;
}

function textOnly(c: ContentPart, p: string): GeminiPart {
  if (c.part.case === "text") return { text: c.part.value };
  throw new GatewayError("unsupported", `${p}: Gemini takes only text in system instructions`, { param: p });
}

function userPart(c: ContentPart, p: string): GeminiPart {
  switch (c.part.case) {
    case "text":
      return { text: c.part.value };
    case "imageUrl":
      return inline(c.part.value.url, `${p}.image_url.url`, "an image");
    case "raw": {
      const raw = c.part.value;
      const type = raw["type"];
      const audio = raw["input_audio"];
      if (type === "input_audio" && typeof audio === "object" && audio !== null && !Array.isArray(audio)) {
        const { data, format } = audio as Record<string, unknown>;
        if (typeof data === "string" && typeof format === "string") return { inlineData: { mimeType: `audio/${format}`, data } };
      }
      const file = raw["file"];
      if (type === "file" && typeof file === "object" && file !== null && !Array.isArray(file)) {
        const data = (file as Record<string, unknown>)["file_data"];
        if (typeof data === "string") return inline(data, `${p}.file.file_data`, "a file");
      }
      throw new GatewayError("unsupported", `${p}: the Gemini provider does not support content parts of type '${shown(type)}' here`, { param: `${p}.type` });
    }
    default:
      throw invalid(`${p}: empty content part`, p);
  }
}

/**
 * Only inline bytes: Gemini's fileData needs a Files API URI, and the gateway
 * never fetches a caller-supplied URL (SSRF).
 */
function inline(url: string, p: string, what: string): GeminiPart {
  const m = /^data:([^;,]+)(?:;[^,]*)?;base64,(.*)$/is.exec(url);
  if (m) return { inlineData: { mimeType: m[1]!.toLowerCase(), data: m[2]! } };
  if (/^https?:/i.test(url)) {
    throw new GatewayError("unsupported", `${p}: the Gemini provider takes ${what} only as a base64 data: URL, not by http(s) URL`, { param: p });
  }
  throw invalid(`${p}: expected a base64 data: URL`, p);
}

function assistantParts(m: Message, p: string): GeminiPart[] {
  const parts: GeminiPart[] = [];
  m.content.forEach((c, j) => {
    if (c.part.case === "text") {
      if (c.part.value !== "") parts.push({ text: c.part.value });
    } else {
      throw new GatewayError("unsupported", `${p}.content[${j}]: Gemini takes only text in assistant messages`, { param: `${p}.content[${j}]` });
    }
  });
  m.toolCalls.forEach((t, j) => {
    const q = `${p}.tool_calls[${j}].function`;
    const args = t.function?.arguments ?? "";
    let parsed: unknown = {};
    if (args.trim() !== "") {
      try {
        parsed = JSON.parse(args);
      } catch {
        throw invalid(`${q}.arguments: not valid JSON`, `${q}.arguments`);
      }
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw invalid(`${q}.arguments: Gemini needs a JSON object`, `${q}.arguments`);
    }
    const mark = t.id.indexOf(SIGNATURE_MARK);
    const part: GeminiPart = { functionCall: { name: t.function?.name ?? "", args: parsed as Record<string, unknown> } };
    if (mark !== -1) part.thoughtSignature = t.id.slice(mark + SIGNATURE_MARK.length);
    parts.push(part);
  });
  return parts;
}

/** A tool message -> functionResponse; Gemini matches by function name, found from the call's id. */
function toolResult(messages: readonly Message[], i: number, p: string): GeminiPart {
  const m = messages[i]!;
  let name: string | undefined;
  // The nearest earlier call with this id (generated ids like call_0 repeat across turns).
  for (let k = i - 1; k >= 0 && name === undefined; k--) {
    name = messages[k]!.toolCalls.find((t) => t.id === m.toolCallId)?.function?.name;
  }
  if (name === undefined) {
    throw invalid(`${p}.tool_call_id: no earlier assistant message has a tool call '${m.toolCallId}'`, `${p}.tool_call_id`);
  }
  const text = m.content.map((c, j) => {
    if (c.part.case === "text") return c.part.value;
    throw new GatewayError("unsupported", `${p}.content[${j}]: Gemini takes only text in tool results`, { param: `${p}.content[${j}]` });
  }).join("");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const response = typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : { result: text };
  return { functionResponse: { name, response } };
}

/** EmbedRequest -> batchEmbedContents body (`resource` is "models/<name>"). `taskType` and `title` from extra go on every request. */
export function toGeminiEmbed(req: EmbedRequest, resource: string): { requests: Record<string, unknown>[] } {
  if (req.tokenInputs.length > 0) {
    throw new GatewayError("unsupported", "input: the Gemini provider embeds text only, not token ids", { param: "input" });
  }
  const perRequest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(req.extra ?? {})) {
    if (k === "taskType" || k === "title") perRequest[k] = v;
    else if (k === "task_type") perRequest["taskType"] = v;
    else throw new GatewayError("unsupported", `${k}: the Gemini provider does not support this field`, { param: k });
  }
  return {
    requests: req.input.map((text) => ({
      model: resource,
      content: { parts: [{ text }] },
      ...perRequest,
      ...(req.dimensions === undefined ? {} : { outputDimensionality: req.dimensions }),
    })),
  };
}

function withoutKey<T extends Record<string, unknown>>(o: T, key: string): T {
  const { [key]: _, ...rest } = o;
  return rest as T;
}
