/**
 * OpenAI wire details shared by the stand-in's routes: error bodies exactly as
 * OpenAI writes them, id formats, response headers and the stand-in's token
 * estimate. Kept apart so every route fails and identifies itself the same way.
 */
import { randomBytes } from "node:crypto";

/** OpenAI's error body: all four keys are always present. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** A complete error answer: HTTP status, body and extra headers. */
export interface ErrorAnswer {
  status: number;
  body: OpenAIErrorBody;
  headers?: Record<string, string>;
}

/** Builds an {@link ErrorAnswer} in OpenAI's shape. */
export function errorAnswer(
  status: number,
  message: string,
  type: string,
  param: string | null = null,
  code: string | null = null,
  headers?: Record<string, string>,
): ErrorAnswer {
  return { status, body: { error: { message, type, param, code } }, ...(headers ? { headers } : {}) };
}

/** `sk-wrong-key-123` → `sk-*********-123`: OpenAI never echoes a whole key in its 401 message. */
function maskKey(key: string): string {
  if (key.length <= 8) return "*".repeat(key.length);
  return `${key.slice(0, 3)}${"*".repeat(key.length - 7)}${key.slice(-4)}`;
}

/** The errors the stand-in produces on its own, with OpenAI's messages. */
export const openAIErrors = {
  missingKey: (): ErrorAnswer =>
    errorAnswer(
      401,
      "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
      "invalid_request_error",
    ),
  invalidKey: (key: string): ErrorAnswer =>
    errorAnswer(
      401,
      `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      "invalid_request_error",
      null,
      "invalid_api_key",
    ),
  invalidJson: (): ErrorAnswer =>
    errorAnswer(
      400,
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble figuring out how to fix this, please contact us through our help center at help.openai.com.)",
      "invalid_request_error",
    ),
  missingModel: (): ErrorAnswer => errorAnswer(400, "you must provide a model parameter", "invalid_request_error"),
  missingParam: (param: string): ErrorAnswer =>
    errorAnswer(400, `Missing required parameter: '${param}'.`, "invalid_request_error", param, "missing_required_parameter"),
  invalidType: (param: string, expected: string, got: unknown): ErrorAnswer =>
    errorAnswer(
      400,
      `Invalid type for '${param}': expected ${expected}, but got ${describeJsonType(got)} instead.`,
      "invalid_request_error",
      param,
      "invalid_type",
    ),
  invalidValue: (param: string, got: unknown, supported: readonly string[]): ErrorAnswer =>
    errorAnswer(
      400,
      `Invalid value: '${String(got)}'. Supported values are: ${listValues(supported)}.`,
      "invalid_request_error",
      param,
      "invalid_value",
    ),
  emptyArray: (param: string): ErrorAnswer =>
    errorAnswer(
      400,
      `Invalid '${param}': empty array. Expected an array with minimum length 1, but got an empty array instead.`,
      "invalid_request_error",
      param,
      "empty_array",
    ),
  belowMin: (param: string, min: number, got: number): ErrorAnswer =>
    errorAnswer(
      400,
      `Invalid '${param}': integer below minimum value. Expected a value >= ${min}, but got ${got} instead.`,
      "invalid_request_error",
      param,
      "integer_below_min_value",
    ),
  invalidInput: (): ErrorAnswer =>
    errorAnswer(400, "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.", "invalid_request_error"),
  modelNotFound: (model: string): ErrorAnswer =>
    errorAnswer(
      404,
      `The model \`${model}\` does not exist or you do not have access to it.`,
      "invalid_request_error",
      null,
      "model_not_found",
    ),
  unknownUrl: (method: string, path: string): ErrorAnswer =>
    errorAnswer(404, `Invalid URL (${method} ${path})`, "invalid_request_error"),
  rateLimited: (retryAfterSeconds: number, limit: number): ErrorAnswer =>
    errorAnswer(
      429,
      `Rate limit reached for requests in organization org-standin on requests per min (RPM): Limit ${limit}, Used ${limit}, Requested 1. Please try again in ${retryAfterSeconds}s. Visit https://platform.openai.com/account/rate-limits to learn more.`,
      "requests",
      null,
      "rate_limit_exceeded",
      { "retry-after": String(retryAfterSeconds), "x-ratelimit-remaining-requests": "0" },
    ),
  serverError: (): ErrorAnswer =>
    errorAnswer(500, "The server had an error while processing your request. Sorry about that!", "server_error"),
  overloaded: (): ErrorAnswer =>
    errorAnswer(503, "The engine is currently overloaded, please try again later.", "server_error", null, "overloaded"),
};

/**
 * The body and headers OpenAI sends for a status when a test injects only the
 * status (`setBehavior({kind: "status", status})`).
 */
export function defaultErrorFor(status: number): ErrorAnswer {
  switch (status) {
    case 400:
      return errorAnswer(400, "Invalid request.", "invalid_request_error");
    case 401:
      return openAIErrors.invalidKey("sk-injected-failure");
    case 403:
      return errorAnswer(403, "Country, region, or territory not supported", "request_forbidden", null, "unsupported_country_region_territory");
    case 404:
      return openAIErrors.modelNotFound("unknown");
    case 429:
      return openAIErrors.rateLimited(1, 10_000);
    case 500:
      return openAIErrors.serverError();
    case 503:
      return openAIErrors.overloaded();
    default:
      return errorAnswer(status, `The server had an error processing your request (HTTP ${status}).`, status >= 500 ? "server_error" : "invalid_request_error");
  }
}

function describeJsonType(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "number") return Number.isInteger(v) ? "an integer" : "a decimal";
  if (typeof v === "boolean") return "a boolean";
  if (typeof v === "string") return "a string";
  return "an object";
}

function listValues(values: readonly string[]): string {
  const quoted = values.map((v) => `'${v}'`);
  if (quoted.length <= 1) return quoted.join("");
  return `${quoted.slice(0, -1).join(", ")}, and ${quoted.at(-1)}`;
}

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** Random `[A-Za-z0-9]{length}`, the alphabet of OpenAI's object ids. */
export function randomAlnum(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/** New ids in OpenAI's formats. */
export const newId = {
  chatCompletion: (): string => `chatcmpl-${randomAlnum(29)}`,
  toolCall: (): string => `call_${randomAlnum(24)}`,
  request: (): string => `req_${randomBytes(16).toString("hex")}`,
};

/** The stand-in's `system_fingerprint` ("fp_" + 10 hex digits, like OpenAI's). */
export const SYSTEM_FINGERPRINT = "fp_5a1e0c3d9b";

/**
 * The stand-in's deterministic token count: `ceil(chars / 4)` over UTF-16 code
 * units, OpenAI's own rule of thumb. Exported so tests can predict usage.
 */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}
