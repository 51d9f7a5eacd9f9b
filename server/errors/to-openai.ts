import type { ErrorCode, GatewayError } from "./errors.ts";

/** OpenAI's error body: all four keys present, `param` and `code` may be null. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

interface HttpMapping {
  status: number;
  type: string;
  code: string | null;
}

/**
 * The HTTP status and OpenAI `type`/`code` for each error code. SDKs branch on
 * the status (the official ones retry 408/409/429/5xx); `type` and `code`
 * follow OpenAI's usual values.
 */
export function httpMapping(code: ErrorCode): HttpMapping {
  switch (code) {
    case "invalid_request":
      return { status: 400, type: "invalid_request_error", code: null };
    case "unsupported":
      return { status: 400, type: "invalid_request_error", code: "unsupported_value" };
    case "unauthenticated":
      return { status: 401, type: "invalid_request_error", code: "invalid_api_key" };
    case "permission_denied":
      return { status: 403, type: "permission_error", code: "permission_denied" };
    case "not_found":
      return { status: 404, type: "invalid_request_error", code: "unknown_url" };
    case "model_not_found":
      return { status: 404, type: "invalid_request_error", code: "model_not_found" };
    case "method_not_allowed":
      return { status: 405, type: "invalid_request_error", code: "method_not_allowed" };
    case "payload_too_large":
      return { status: 413, type: "invalid_request_error", code: "request_too_large" };
    case "rate_limited":
      return { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded" };
    case "budget_exceeded":
      // OpenAI's own quota refusal is a 429 of type insufficient_quota; the code says which kind.
      return { status: 429, type: "insufficient_quota", code: "budget_exceeded" };
    case "unavailable":
      return { status: 503, type: "server_error", code: "service_unavailable" };
    case "canceled":
      return { status: 499, type: "invalid_request_error", code: "request_canceled" };
    case "internal":
      return { status: 500, type: "server_error", code: "internal_error" };
    case "upstream_error":
      return { status: 502, type: "upstream_error", code: "upstream_error" };
    case "upstream_unavailable":
      return { status: 503, type: "upstream_error", code: "upstream_unavailable" };
    case "upstream_timeout":
      return { status: 504, type: "timeout_error", code: "upstream_timeout" };
  }
}

/** Renders a GatewayError as OpenAI's error JSON and the HTTP status to send it with. */
export function toOpenAIError(err: GatewayError): { status: number; body: OpenAIErrorBody } {
  const m = httpMapping(err.code);
  return {
    status: m.status,
    body: {
      error: {
        message: err.message,
        type: m.type,
        param: err.param ?? null,
        code: err.providerCode ?? m.code,
      },
    },
  };
}
