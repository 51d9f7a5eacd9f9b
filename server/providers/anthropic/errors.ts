import { GatewayError } from "../../errors/errors.ts";
import { isRecord } from "../../wire/openai/json.ts";
import { redactSecrets } from "../shared/redact.ts";
import { header, type UpstreamHeaders } from "../shared/upstream.ts";

/**
 * Anthropic's error answers -> GatewayError. Bodies are
 * `{"type":"error","error":{"type":"<kind>","message":"..."}}`; the status
 * decides (400 invalid_request_error, 401 authentication_error, 403
 * permission_error, 404 not_found_error, 413 request_too_large, 429
 * rate_limit_error, 500 api_error, 529 overloaded_error). Credential errors
 * are the gateway's problem (502), not the caller's. "prompt is too long" is
 * marked context_length_exceeded, as OpenAI callers know it.
 */
export function providerError(provider: string, status: number, headers: UpstreamHeaders, bodyText: string): GatewayError {
  const detail = parseErrorBody(bodyText);
  const retryAfter = header(headers, "retry-after");
  const upstream = { upstreamStatus: status, ...(retryAfter === undefined ? {} : { retryAfter }) };
  const msg = detail.message === undefined ? `HTTP ${status}` : redactSecrets(detail.message);
  if (status === 401 || status === 403 || detail.type === "authentication_error" || detail.type === "permission_error") {
    return new GatewayError("upstream_error", `provider '${provider}' rejected the gateway's credentials (HTTP ${status}): ${msg}`, upstream);
  }
  if (status === 404) return new GatewayError("model_not_found", msg, { ...upstream, providerCode: "not_found_error" });
  if (status === 408 || status === 504) return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${msg}`, upstream);
  if (status === 413) return new GatewayError("payload_too_large", msg, { ...upstream, providerCode: "request_too_large" });
  if (status === 429) return new GatewayError("rate_limited", `provider '${provider}' is rate limiting: ${msg}`, { ...upstream, providerCode: "rate_limit_error" });
  if (status === 503 || status === 529 || detail.type === "overloaded_error") {
    return new GatewayError("upstream_unavailable", `provider '${provider}' is overloaded: ${msg}`, upstream);
  }
  if (status >= 500) return new GatewayError("upstream_error", `provider '${provider}' failed (HTTP ${status}): ${msg}`, upstream);
  if (status >= 400 && status !== 402) {
    const providerCode = /prompt is too long/i.test(msg) ? "context_length_exceeded" : (detail.type ?? "invalid_request_error");
    return new GatewayError("invalid_request", msg, { ...upstream, providerCode });
  }
  return new GatewayError("upstream_error", `provider '${provider}' answered HTTP ${status}: ${msg}`, upstream);
}

/** An `event: error` inside a 200 stream (overloaded, api_error, ...). */
export function streamError(provider: string, payload: unknown): GatewayError {
  const e = isRecord(payload) && isRecord(payload["error"]) ? payload["error"] : {};
  const type = typeof e["type"] === "string" ? e["type"] : "";
  const message = typeof e["message"] === "string" ? redactSecrets(e["message"]) : "error event in stream";
  const text = `provider '${provider}' failed mid-stream: ${message}`;
  if (type === "overloaded_error") return new GatewayError("upstream_unavailable", text, { providerCode: type });
  if (type === "rate_limit_error") return new GatewayError("rate_limited", text, { providerCode: type });
  return new GatewayError("upstream_error", text, type === "" ? {} : { providerCode: type });
}

function parseErrorBody(text: string): { type?: string; message?: string } {
  try {
    const body: unknown = JSON.parse(text);
    const e = isRecord(body) && isRecord(body["error"]) ? body["error"] : {};
    const out: { type?: string; message?: string } = {};
    if (typeof e["type"] === "string") out.type = e["type"];
    if (typeof e["message"] === "string") out.message = e["message"].slice(0, 2000);
    return out;
  } catch {
    return {};
  }
}
