import { GatewayError } from "../../errors/errors.ts";
import { isRecord } from "../../wire/openai/json.ts";
import { redactSecrets } from "../shared/redact.ts";
import { header, type UpstreamHeaders } from "../shared/upstream.ts";

/**
 * An OpenAI-format provider's error answer -> GatewayError. The caller's own
 * mistakes (400, 404, 413, 422) keep the provider's message, param and code so
 * SDK users see what OpenAI would have told them. Credential errors (401,
 * 403) are the gateway's problem, not the caller's (502), and their messages
 * can echo part of the provider key, so key-shaped text is masked.
 */
export function providerError(provider: string, status: number, headers: UpstreamHeaders, bodyText: string): GatewayError {
  const detail = parseErrorBody(bodyText);
  const retryAfter = header(headers, "retry-after");
  const upstream = { upstreamStatus: status, ...(retryAfter === undefined ? {} : { retryAfter }) };
  const msg = detail.message === undefined ? `HTTP ${status}` : redactSecrets(detail.message);
  const pass = {
    ...upstream,
    ...(detail.param === undefined ? {} : { param: detail.param }),
    ...(detail.code === undefined ? {} : { providerCode: detail.code }),
  };
  if (status === 401 || status === 403) {
    // The caller's key was fine; the gateway's provider key was not. Not a 401 to the caller, and
    // routing may try another key or provider.
    const why = detail.message === undefined ? "" : `: ${redactSecrets(detail.message)}`;
    return new GatewayError("upstream_error", `provider '${provider}' rejected the gateway's credentials (HTTP ${status})${why}`, upstream);
  }
  if (status === 404) return new GatewayError("model_not_found", msg, pass);
  if (status === 408) return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${msg}`, upstream);
  if (status === 413) return new GatewayError("payload_too_large", msg, pass);
  if (status === 429) return new GatewayError("rate_limited", `provider '${provider}' is rate limiting: ${msg}`, pass);
  if (status === 503 || status === 529) return new GatewayError("upstream_unavailable", `provider '${provider}' is unavailable: ${msg}`, upstream);
  if (status === 504) return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${msg}`, upstream);
  if (status >= 500) return new GatewayError("upstream_error", `provider '${provider}' failed (HTTP ${status}): ${msg}`, upstream);
  if (status >= 400) return new GatewayError("invalid_request", msg, pass);
  return new GatewayError("upstream_error", `provider '${provider}' answered HTTP ${status}`, upstream);
}

/** An `{"error":{...}}` event inside a 200 stream. */
export function streamError(provider: string, payload: unknown): GatewayError {
  const e = isRecord(payload) && isRecord(payload["error"]) ? payload["error"] : {};
  const message = typeof e["message"] === "string" ? redactSecrets(e["message"]) : "error event in stream";
  return new GatewayError("upstream_error", `provider '${provider}' failed mid-stream: ${message}`);
}

function parseErrorBody(text: string): { message?: string; param?: string; code?: string } {
  try {
    const body: unknown = JSON.parse(text);
    const e = isRecord(body) && isRecord(body["error"]) ? body["error"] : isRecord(body) ? body : {};
    const out: { message?: string; param?: string; code?: string } = {};
    if (typeof e["message"] === "string") out.message = e["message"].slice(0, 2000);
    if (typeof e["param"] === "string") out.param = e["param"];
    if (typeof e["code"] === "string") out.code = e["code"];
    return out;
  } catch {
    return {};
  }
}
