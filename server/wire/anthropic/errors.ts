import type { ErrorCode, GatewayError } from "../../errors/errors.ts";
import type { AnthropicErrorBody, AnthropicErrorType } from "./types.ts";

/**
 * GatewayError -> Anthropic's error answer, for callers of POST /v1/messages.
 * Anthropic SDKs pick their error class by HTTP status, so statuses follow
 * Anthropic's API: a provider that is overloaded or unreachable
 * (upstream_unavailable) is 529 overloaded_error, which Anthropic clients
 * know to retry later; any other provider failure is 502 api_error; a
 * provider timeout is 504 timeout_error.
 */
export function anthropicMapping(code: ErrorCode): { status: number; type: AnthropicErrorType } {
  switch (code) {
    case "invalid_request":
    case "unsupported":
      return { status: 400, type: "invalid_request_error" };
    case "unauthenticated":
      return { status: 401, type: "authentication_error" };
    case "permission_denied":
      return { status: 403, type: "permission_error" };
    case "not_found":
    case "model_not_found":
      return { status: 404, type: "not_found_error" };
    case "method_not_allowed":
      return { status: 405, type: "invalid_request_error" };
    case "payload_too_large":
      return { status: 413, type: "request_too_large" };
    case "rate_limited":
    case "budget_exceeded":
      return { status: 429, type: "rate_limit_error" };
    case "canceled":
      return { status: 499, type: "invalid_request_error" };
    case "internal":
      return { status: 500, type: "api_error" };
    case "unavailable":
      return { status: 503, type: "api_error" };
    case "upstream_error":
      return { status: 502, type: "api_error" };
    case "upstream_unavailable":
      return { status: 529, type: "overloaded_error" };
    case "upstream_timeout":
      return { status: 504, type: "timeout_error" };
  }
}

export function toAnthropicError(err: GatewayError): { status: number; body: AnthropicErrorBody } {
  const m = anthropicMapping(err.code);
  return { status: m.status, body: { type: "error", error: { type: m.type, message: err.message } } };
}
