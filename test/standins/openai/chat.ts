/**
 * `POST /v1/chat/completions` for the stand-in: request validation the way
 * OpenAI rejects requests, a deterministic answer plan, and its two renderings
 * (a `chat.completion` object, or the `chat.completion.chunk` sequence OpenAI
 * streams). Pure functions: timing and failures belong to the HTTP layer.
 */
import { type ErrorAnswer, estimateTokens, newId, openAIErrors, randomAlnum, SYSTEM_FINGERPRINT } from "./wire.ts";

type Json = Record<string, unknown>;
type Validated<T> = { ok: true; value: T } | { ok: false; error: ErrorAnswer };

const ROLES = ["system", "assistant", "user", "function", "tool", "developer"] as const;

interface FunctionTool {
  name: string;
  parameters: unknown;
}

/** What the stand-in reads from a chat request once it passed validation. */
export interface ChatRequestView {
  model: string;
  messages: Json[];
  n: number;
  stream: boolean;
  includeUsage: boolean;
  /** `stream_options.include_obfuscation` (OpenAI default: true). */
  includeObfuscation: boolean;
  maxTokens: number | undefined;
  tools: FunctionTool[];
  toolChoice: "none" | "auto" | "required" | { name: string };
  serviceTier: string;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Validates like OpenAI, in OpenAI's order, minimally: a JSON object with a
 * string `model`, a non-empty `messages` array of objects with known roles;
 * then `n`, `stream_options`. The model's existence is checked last (404).
 */
export function parseChatRequest(body: unknown, models: ReadonlySet<string>): Validated<ChatRequestView> {
  const fail = (error: ErrorAnswer): Validated<ChatRequestView> => ({ ok: false, error });
  if (!isObject(body)) return fail(openAIErrors.invalidType("body", "an object", body));
  if (body.model === undefined || body.model === null || body.model === "") return fail(openAIErrors.missingModel());
  if (typeof body.model !== "string") return fail(openAIErrors.invalidType("model", "a string", body.model));
  const messages = body.messages;
  if (messages === undefined || messages === null) return fail(openAIErrors.missingParam("messages"));
  if (!Array.isArray(messages)) return fail(openAIErrors.invalidType("messages", "an array of objects", messages));
  if (messages.length === 0) return fail(openAIErrors.emptyArray("messages"));
  for (const [i, m] of messages.entries()) {
    if (!isObject(m)) return fail(openAIErrors.invalidType(`messages[${i}]`, "an object", m));
    if (m.role === undefined) return fail(openAIErrors.missingParam(`messages[${i}].role`));
    if (!(ROLES as readonly unknown[]).includes(m.role)) return fail(openAIErrors.invalidValue(`messages[${i}].role`, m.role, ROLES));
  }
  let n = 1;
  if (body.n !== undefined && body.n !== null) {
    if (typeof body.n !== "number" || !Number.isInteger(body.n)) return fail(openAIErrors.invalidType("n", "an integer", body.n));
    if (body.n < 1) return fail(openAIErrors.belowMin("n", 1, body.n));
    n = body.n;
  }
  const stream = body.stream === true;
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !stream) {
    return fail({
      status: 400,
      body: {
        error: {
          message: "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
          type: "invalid_request_error",
          param: "stream_options",
          code: null,
        },
      },
    });
  }
  if (!models.has(body.model)) return fail(openAIErrors.modelNotFound(body.model));
  const maxTokens = [body.max_completion_tokens, body.max_tokens].find((v): v is number => typeof v === "number");
  return {
    ok: true,
    value: {
      model: body.model,
      messages: messages as Json[],
      n,
      stream,
      includeUsage: isObject(streamOptions) && streamOptions.include_usage === true,
      includeObfuscation: !(isObject(streamOptions) && streamOptions.include_obfuscation === false),
      maxTokens,
      tools: functionTools(body.tools),
      toolChoice: toolChoiceOf(body.tool_choice),
      serviceTier: ["flex", "scale", "priority"].includes(body.service_tier as string) ? (body.service_tier as string) : "default",
    },
  };
}

function functionTools(tools: unknown): FunctionTool[] {
  if (!Array.isArray(tools)) return [];
  return tools.flatMap((t) =>
    isObject(t) && t.type === "function" && isObject(t.function) && typeof t.function.name === "string"
      ? [{ name: t.function.name, parameters: t.function.parameters }]
      : [],
  );
}

function toolChoiceOf(choice: unknown): ChatRequestView["toolChoice"] {
  if (choice === "none" || choice === "required") return choice;
  if (isObject(choice) && isObject(choice.function) && typeof choice.function.name === "string") return { name: choice.function.name };
  return "auto";
}

/** The text of a message's `content`: a string, or the `text` parts joined with "\n". */
export function messageText(message: Json): string {
  const c = message.content;
  if (typeof c === "string") return c;
  if (Array.isArray(c)) {
    return c
      .filter((p): p is Json => isObject(p) && typeof p.text === "string")
      .map((p) => p.text as string)
      .join("\n");
  }
  return "";
}

/** Everything in the prompt that counts as tokens: message texts and assistant tool-call names/arguments. */
function promptChars(messages: Json[]): number {
  let chars = 0;
  for (const m of messages) {
    chars += messageText(m).length;
    if (Array.isArray(m.tool_calls)) {
      for (const tc of m.tool_calls) {
        if (isObject(tc) && isObject(tc.function)) chars += String(tc.function.name ?? "").length + String(tc.function.arguments ?? "").length;
      }
    }
  }
  return chars;
}

/** OpenAI's usage object with every detail field OpenAI sends. */
export interface ChatUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number; audio_tokens: number };
  completion_tokens_details: {
    reasoning_tokens: number;
    audio_tokens: number;
    accepted_prediction_tokens: number;
    rejected_prediction_tokens: number;
  };
}

interface ToolCallPlan {
  id: string;
  name: string;
  arguments: string;
}

interface ChoicePlan {
  index: number;
  content: string | null;
  toolCall: ToolCallPlan | null;
  finishReason: "stop" | "length" | "tool_calls";
}

/** The deterministic answer to one chat request, before rendering. */
export interface ChatPlan {
  id: string;
  created: number;
  model: string;
  serviceTier: string;
  choices: ChoicePlan[];
  usage: ChatUsage;
}

/**
 * The stand-in's reply rules (deterministic from the request):
 * - text: `"echo: " + <text of the last user message>`; cut to `4 × max tokens`
 *   characters with finish_reason "length" when `max_completion_tokens`/`max_tokens` is smaller;
 * - a tool call to the first function tool (or the one `tool_choice` names) when
 *   the request has tools, `tool_choice` is not "none", and the last message is
 *   from the user (or `tool_choice` is "required"/names a tool); its arguments
 *   come from the tool's JSON schema (see {@link deriveToolArguments});
 * - `n` identical choices; usage by {@link estimateTokens}.
 */
export function planChat(req: ChatRequestView): ChatPlan {
  const last = req.messages.at(-1);
  const lastUser = req.messages.findLast((m) => m.role === "user");
  const userText = lastUser ? messageText(lastUser) : "";
  const tool = pickTool(req, last?.role === "user");
  const choices: ChoicePlan[] = [];
  let completionTokens = 0;
  for (let index = 0; index < req.n; index++) {
    if (tool) {
      const call = { id: newId.toolCall(), name: tool.name, arguments: deriveToolArguments(tool.parameters, userText) };
      completionTokens += estimateTokens(call.name + call.arguments);
      choices.push({ index, content: null, toolCall: call, finishReason: "tool_calls" });
      continue;
    }
    let content = `echo: ${userText}`;
    let finishReason: ChoicePlan["finishReason"] = "stop";
    if (req.maxTokens !== undefined && estimateTokens(content) > req.maxTokens) {
      content = content.slice(0, Math.max(0, req.maxTokens) * 4);
      finishReason = "length";
    }
    completionTokens += estimateTokens(content);
    choices.push({ index, content, toolCall: null, finishReason });
  }
  const promptTokens = Math.ceil(promptChars(req.messages) / 4); // estimateTokens over the whole prompt
  return {
    id: newId.chatCompletion(),
    created: Math.floor(Date.now() / 1000),
    model: req.model,
    serviceTier: req.serviceTier,
    choices,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    },
  };
}

function pickTool(req: ChatRequestView, lastIsUser: boolean): FunctionTool | undefined {
  if (req.tools.length === 0 || req.toolChoice === "none") return undefined;
  const choice = req.toolChoice;
  if (typeof choice === "object") return req.tools.find((t) => t.name === choice.name) ?? req.tools[0];
  if (choice === "required" || lastIsUser) return req.tools[0];
  return undefined;
}

/**
 * Compact JSON arguments for a tool call, from the tool's `parameters` schema:
 * each required property (all properties when `required` is absent) gets
 * `enum[0]`, or by type: location/city-like strings "Paris", other strings the
 * user's text, numbers their `minimum` or 1, booleans true, arrays [], objects {}.
 * A weather tool with `location` yields `{"location":"Paris"}`.
 */
export function deriveToolArguments(parameters: unknown, userText: string): string {
  const args: Json = {};
  if (isObject(parameters) && isObject(parameters.properties)) {
    const props = parameters.properties;
    const names = Array.isArray(parameters.required) ? parameters.required.filter((r): r is string => typeof r === "string") : Object.keys(props);
    for (const name of names) {
      const prop = props[name];
      if (isObject(prop)) args[name] = sampleValue(name, prop, userText);
    }
  }
  return JSON.stringify(args);
}

function sampleValue(name: string, schema: Json, userText: string): unknown {
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "string":
      return /location|city|place|address/i.test(name) ? "Paris" : userText;
    case "number":
    case "integer":
      return typeof schema.minimum === "number" ? schema.minimum : 1;
    case "boolean":
      return true;
    case "array":
      return [];
    case "object":
      return {};
    default:
      return null;
  }
}

/** The non-streaming `chat.completion` object, keys in OpenAI's order. */
export function renderCompletion(plan: ChatPlan): Json {
  return {
    id: plan.id,
    object: "chat.completion",
    created: plan.created,
    model: plan.model,
    choices: plan.choices.map((c) => ({
      index: c.index,
      message: {
        role: "assistant",
        content: c.content,
        ...(c.toolCall
          ? { tool_calls: [{ id: c.toolCall.id, type: "function", function: { name: c.toolCall.name, arguments: c.toolCall.arguments } }] }
          : {}),
        refusal: null,
        annotations: [],
      },
      logprobs: null,
      finish_reason: c.finishReason,
    })),
    usage: plan.usage,
    service_tier: plan.serviceTier,
    system_fingerprint: SYSTEM_FINGERPRINT,
  };
}

/** Splits on code points (never inside a surrogate pair) into pieces of `size`. */
export function splitText(text: string, size: number): string[] {
  const chars = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(""));
  return out;
}

/** How one choice's deltas evolve over the stream (without the envelope). */
function choiceDeltas(c: ChoicePlan, chunkChars: number): Array<{ delta: Json; finish_reason: string | null }> {
  const steps: Array<{ delta: Json; finish_reason: string | null }> = [];
  if (c.toolCall) {
    const call = c.toolCall;
    steps.push({ delta: { role: "assistant", content: null, refusal: null }, finish_reason: null });
    steps.push({
      delta: { tool_calls: [{ index: 0, id: call.id, type: "function", function: { name: call.name, arguments: "" } }] },
      finish_reason: null,
    });
    for (const piece of splitText(call.arguments, chunkChars)) {
      steps.push({ delta: { tool_calls: [{ index: 0, function: { arguments: piece } }] }, finish_reason: null });
    }
  } else {
    steps.push({ delta: { role: "assistant", content: "", refusal: null }, finish_reason: null });
    for (const piece of splitText(c.content ?? "", chunkChars)) steps.push({ delta: { content: piece }, finish_reason: null });
  }
  steps.push({ delta: {}, finish_reason: c.finishReason });
  return steps;
}

/** Options of {@link renderChunks}. */
export interface ChunkOptions {
  includeUsage: boolean;
  /** Add OpenAI's `obfuscation` padding string to every chunk. */
  obfuscation: boolean;
  /** Characters of content (or tool arguments) per chunk. */
  chunkChars: number;
}

/**
 * The `chat.completion.chunk` objects OpenAI streams for `plan`, in order
 * (without the final `[DONE]`): per choice a role chunk, content (or tool
 * call start + argument fragments) chunks, a `delta: {}` chunk carrying
 * finish_reason; choices interleaved when n > 1; with include_usage every
 * chunk has `usage: null` and a last chunk has `choices: []` and the usage.
 */
export function renderChunks(plan: ChatPlan, opts: ChunkOptions): Json[] {
  const perChoice = plan.choices.map((c) => choiceDeltas(c, opts.chunkChars));
  const envelope = (choices: Json[], usage: ChatUsage | null): Json => ({
    id: plan.id,
    object: "chat.completion.chunk",
    created: plan.created,
    model: plan.model,
    service_tier: plan.serviceTier,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices,
    ...(opts.includeUsage ? { usage } : {}),
    ...(opts.obfuscation ? { obfuscation: randomAlnum(1 + Math.floor(Math.random() * 12)) } : {}),
  });
  const chunks: Json[] = [];
  const steps = Math.max(...perChoice.map((s) => s.length));
  for (let step = 0; step < steps; step++) {
    for (const [index, deltas] of perChoice.entries()) {
      const d = deltas[step];
      if (d) chunks.push(envelope([{ index, delta: d.delta, logprobs: null, finish_reason: d.finish_reason }], null));
    }
  }
  if (opts.includeUsage) chunks.push(envelope([], plan.usage));
  return chunks;
}
