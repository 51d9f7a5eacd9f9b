/**
 * The Gemini stand-in's request checks and answers, written from Google's API
 * reference (https://ai.google.dev/api/generate-content) and the error texts
 * the real API sends. Checks mirror the ones that make Gemini answer 400, so
 * a provider that sends a wrong field name or turn order fails here too.
 */

export interface GoogleErrorAnswer {
  status: number;
  body: { error: { code: number; message: string; status: string; details?: object[] } };
}

export function googleError(code: number, status: string, message: string, details?: object[]): GoogleErrorAnswer {
  return { status: code, body: { error: { code, message, status, ...(details ? { details } : {}) } } };
}

export const googleErrors = {
  invalidKey: () =>
    googleError(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com", metadata: { service: "generativelanguage.googleapis.com" } },
      { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", locale: "en-US", message: "API key not valid. Please pass a valid API key." },
    ]),
  missingKey: () =>
    googleError(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."),
  modelNotFound: (model: string, method: string) =>
    googleError(404, "NOT_FOUND", `models/${model} is not found for API version v1beta, or is not supported for ${method}. Call ListModels to see the list of available models and their supported methods.`),
  rateLimited: (retrySeconds: number) =>
    googleError(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing details.", [
      { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaMetric: "generativelanguage.googleapis.com/generate_content_free_tier_requests", quotaId: "GenerateRequestsPerMinutePerProjectPerModel-FreeTier" }] },
      { "@type": "type.googleapis.com/google.rpc.Help", links: [{ description: "Learn more about Gemini API quotas", url: "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${retrySeconds}s` },
    ]),
  tooLong: (tokens: number, limit: number) =>
    googleError(400, "INVALID_ARGUMENT", `The input token count (${tokens}) exceeds the maximum number of tokens allowed (${limit}).`),
  invalid: (message: string) => googleError(400, "INVALID_ARGUMENT", message),
  unknownField: (name: string, at: string) =>
    googleError(400, "INVALID_ARGUMENT", `Invalid JSON payload received. Unknown name "${name}" at '${at}': Cannot find field.`, [
      { "@type": "type.googleapis.com/google.rpc.BadRequest", fieldViolations: [{ field: at, description: `Invalid JSON payload received. Unknown name "${name}" at '${at}': Cannot find field.` }] },
    ]),
  internal: () => googleError(500, "INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
  overloaded: () => googleError(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
  deadline: () => googleError(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
};

/** Google's default body for an injected status. */
export function errorForStatus(status: number): GoogleErrorAnswer {
  switch (status) {
    case 400: return googleErrors.invalid("Request contains an invalid argument.");
    case 403: return googleError(403, "PERMISSION_DENIED", "The caller does not have permission");
    case 404: return googleError(404, "NOT_FOUND", "Requested entity was not found.");
    case 429: return googleErrors.rateLimited(7);
    case 500: return googleErrors.internal();
    case 503: return googleErrors.overloaded();
    case 504: return googleErrors.deadline();
    default: return googleError(status, "UNKNOWN", `HTTP ${status}`);
  }
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

const REQUEST_KEYS = new Set(["contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"]);
const GENERATION_KEYS = new Set([
  "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities", "candidateCount",
  "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs",
  "logprobs", "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "mediaResolution", "imageConfig",
]);
const PART_KEYS = new Set(["text", "thought", "thoughtSignature", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult", "videoMetadata"]);
const SCHEMA_KEYS = new Set([
  "type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties", "required",
  "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum",
]);
const SCHEMA_TYPES = new Set(["TYPE_UNSPECIFIED", "STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"]);

/** What the stand-in understood of a valid request. */
export interface ParsedGenerate {
  contents: { role: string; parts: Json[] }[];
  system: string;
  tools: { name: string; parameters?: Json }[];
  mode: string;
  allowed: string[] | undefined;
  gen: Json;
}

/** Validates a GenerateContentRequest as Gemini does; an error answer or the parsed request. */
export function parseGenerate(body: unknown): ParsedGenerate | GoogleErrorAnswer {
  if (!isObj(body)) return googleErrors.invalid("Invalid JSON payload received.");
  for (const k of Object.keys(body)) if (!REQUEST_KEYS.has(k)) return googleErrors.unknownField(k, "");
  const gen = body["generationConfig"] ?? {};
  if (!isObj(gen)) return googleErrors.invalid("Invalid value at 'generation_config'");
  for (const k of Object.keys(gen)) if (!GENERATION_KEYS.has(k)) return googleErrors.unknownField(k, "generation_config");
  if (!Array.isArray(body["contents"]) || body["contents"].length === 0) return googleErrors.invalid("* GenerateContentRequest.contents: contents is not specified\n");
  const contents: ParsedGenerate["contents"] = [];
  for (const [i, c] of body["contents"].entries()) {
    if (!isObj(c) || !Array.isArray(c["parts"]) || c["parts"].length === 0) return googleErrors.invalid(`* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.\n`);
    const role = c["role"] ?? "user";
    if (role !== "user" && role !== "model") return googleErrors.invalid("Please use a valid role: user, model.");
    for (const [j, p] of c["parts"].entries()) {
      if (!isObj(p)) return googleErrors.invalid(`Invalid value at 'contents[${i}].parts[${j}]'`);
      for (const k of Object.keys(p)) if (!PART_KEYS.has(k)) return googleErrors.unknownField(k, `contents[${i}].parts[${j}]`);
      if (isObj(p["inlineData"]) && (typeof p["inlineData"]["mimeType"] !== "string" || typeof p["inlineData"]["data"] !== "string")) {
        return googleErrors.invalid(`* GenerateContentRequest.contents[${i}].parts[${j}].inline_data: missing mime_type or data\n`);
      }
    }
    contents.push({ role, parts: c["parts"] as Json[] });
  }
  // Gemini's function-calling turn rules.
  for (const [i, c] of contents.entries()) {
    const responses = c.parts.filter((p) => p["functionResponse"] !== undefined).length;
    if (responses === 0) continue;
    const prev = contents[i - 1];
    const calls = prev?.role === "model" ? prev.parts.filter((p) => p["functionCall"] !== undefined).length : 0;
    if (calls === 0) return googleErrors.invalid("Please ensure that function response turn comes immediately after a function call turn.");
    if (calls !== responses) return googleErrors.invalid("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.");
  }
  const tools: ParsedGenerate["tools"] = [];
  for (const [i, t] of (Array.isArray(body["tools"]) ? body["tools"] : []).entries()) {
    for (const [j, f] of (isObj(t) && Array.isArray(t["functionDeclarations"]) ? t["functionDeclarations"] : []).entries()) {
      if (!isObj(f) || typeof f["name"] !== "string") return googleErrors.invalid(`* GenerateContentRequest.tools[${i}].function_declarations[${j}].name: Invalid function name.\n`);
      if (f["parameters"] !== undefined) {
        const bad = checkSchema(f["parameters"], `tools[${i}].function_declarations[${j}].parameters`);
        if (bad) return bad;
      }
      tools.push({ name: f["name"], ...(isObj(f["parameters"]) ? { parameters: f["parameters"] } : {}) });
    }
  }
  const fcc = isObj(body["toolConfig"]) && isObj(body["toolConfig"]["functionCallingConfig"]) ? body["toolConfig"]["functionCallingConfig"] : {};
  const mode = typeof fcc["mode"] === "string" ? fcc["mode"] : "AUTO";
  if (!["AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"].includes(mode)) return googleErrors.invalid(`Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "${mode}"`);
  const sys = body["systemInstruction"];
  const system = isObj(sys) && Array.isArray(sys["parts"]) ? sys["parts"].map((p) => (isObj(p) && typeof p["text"] === "string" ? p["text"] : "")).join("\n") : "";
  return { contents, system, tools, mode, allowed: Array.isArray(fcc["allowedFunctionNames"]) ? (fcc["allowedFunctionNames"] as string[]) : undefined, gen };
}

function checkSchema(s: unknown, at: string): GoogleErrorAnswer | undefined {
  if (!isObj(s)) return googleErrors.invalid(`Invalid value at '${at}'`);
  for (const k of Object.keys(s)) if (!SCHEMA_KEYS.has(k)) return googleErrors.unknownField(k, at);
  if (s["type"] !== undefined && !SCHEMA_TYPES.has(String(s["type"]))) return googleErrors.invalid(`Invalid value at '${at}.type' (type.googleapis.com/google.ai.generativelanguage.v1beta.Type), "${String(s["type"])}"`);
  if (s["type"] === "OBJECT" && isObj(s["properties"]) && Object.keys(s["properties"]).length === 0) {
    return googleErrors.invalid(`* GenerateContentRequest.${at}.properties: should be non-empty for OBJECT type\n`);
  }
  if (s["format"] !== undefined && s["type"] === "STRING" && !["enum", "date-time"].includes(String(s["format"]))) {
    return googleErrors.invalid(`* GenerateContentRequest.${at}.format: only 'enum' and 'date-time' are supported for STRING type\n`);
  }
  for (const [name, sub] of Object.entries(isObj(s["properties"]) ? s["properties"] : {})) {
    const bad = checkSchema(sub, `${at}.properties[${name}].value`);
    if (bad) return bad;
  }
  if (s["items"] !== undefined) return checkSchema(s["items"], `${at}.items`);
  return undefined;
}

/** Rough token estimate, as the OpenAI stand-in's: one token per 4 characters. */
export function estimate(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The deterministic answer of a valid request: a function call, a reply to tool results, or an echo. */
export interface Plan {
  /** Set: Gemini refuses the prompt (no candidates). */
  blockReason?: string;
  thought?: string;
  text: string;
  call?: { name: string; args: Json };
  finishReason: string;
  promptTokens: number;
  candidateCount: number;
}

export function planGenerate(req: ParsedGenerate): Plan {
  const last = req.contents.at(-1)!;
  const lastText = last.parts.map((p) => (typeof p["text"] === "string" ? p["text"] : "")).join("");
  const promptTokens = estimate(JSON.stringify(req.contents) + req.system);
  const candidateCount = typeof req.gen["candidateCount"] === "number" ? req.gen["candidateCount"] : 1;
  const base = { promptTokens, candidateCount, finishReason: "STOP" };
  if (lastText.includes("BLOCK_PROMPT")) return { ...base, text: "", blockReason: "SAFETY" };
  if (lastText.includes("BLOCK_ANSWER")) return { ...base, text: "", finishReason: "SAFETY" };
  const thinking = isObj(req.gen["thinkingConfig"]) && req.gen["thinkingConfig"]["includeThoughts"] === true;
  const thought = thinking ? `thinking about: ${lastText}` : undefined;
  const responses = last.parts.filter((p) => isObj(p["functionResponse"])).map((p) => p["functionResponse"] as Json);
  if (responses.length > 0) {
    return { ...base, ...(thought ? { thought } : {}), text: `tool results: ${responses.map((r) => `${String(r["name"])}=${JSON.stringify(r["response"])}`).join("; ")}` };
  }
  const callable = req.tools.filter((t) => !req.allowed || req.allowed.includes(t.name));
  if (callable.length > 0 && req.mode !== "NONE" && (req.mode === "ANY" || lastText.includes("call"))) {
    const tool = callable[0]!;
    const args: Json = {};
    const props = isObj(tool.parameters?.["properties"]) ? tool.parameters["properties"] : {};
    for (const [name, s] of Object.entries(props)) args[name] = isObj(s) && (s["type"] === "INTEGER" || s["type"] === "NUMBER") ? 42 : lastText;
    return { ...base, ...(thought ? { thought } : {}), text: "", call: { name: tool.name, args } };
  }
  const images = last.parts.filter((p) => isObj(p["inlineData"])).map((p) => `[${String((p["inlineData"] as Json)["mimeType"])} ${Buffer.from(String((p["inlineData"] as Json)["data"]), "base64").length} bytes]`);
  let text = `echo: ${lastText}${images.length ? ` ${images.join(" ")}` : ""}`;
  const max = typeof req.gen["maxOutputTokens"] === "number" ? req.gen["maxOutputTokens"] : Infinity;
  if (estimate(text) > max) return { ...base, ...(thought ? { thought } : {}), text: text.slice(0, max * 4), finishReason: "MAX_TOKENS" };
  if (req.gen["responseMimeType"] === "application/json") text = JSON.stringify({ echo: lastText });
  return { ...base, ...(thought ? { thought } : {}), text };
}
