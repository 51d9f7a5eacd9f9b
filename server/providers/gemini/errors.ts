import { GatewayError } from "../../errors/errors.ts";
import { redactSecrets } from "../shared/redact.ts";
import { header, type UpstreamHeaders } from "../shared/upstream.ts";
import type { GoogleError } from "./wire.ts";

/**
 * Google's error answers -> GatewayError. Bodies are
 * `{"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT","details":[...]}}`
 * (sometimes wrapped in a one-element array). Messages are passed on after
 * masking anything key-shaped.
 *
 * - 400 with ErrorInfo reason API_KEY_INVALID (Google's "API key not valid"),
 *   401, 403 PERMISSION_DENIED: the gateway's key is bad -> upstream_error (502).
 * - 400 FAILED_PRECONDITION ("User location is not supported", billing):
 *   the gateway's account, not the caller's request -> upstream_error.
 * - 400 "The input token count (N) exceeds the maximum number of tokens
 *   allowed (M)" -> invalid_request, providerCode context_length_exceeded.
 * - other 400 -> invalid_request (providerCode: the Google status, lower-cased).
 * - 404 -> model_not_found; 429 RESOURCE_EXHAUSTED -> rate_limited, with
 *   RetryInfo.retryDelay ("37s") as retryAfter seconds, else Retry-After.
 * - 503 UNAVAILABLE -> upstream_unavailable; 504 DEADLINE_EXCEEDED ->
 *   upstream_timeout; other 5xx (500 INTERNAL) -> upstream_error.
 */
export function geminiError(provider: string, status: number, headers: UpstreamHeaders, bodyText: string): GatewayError {
  const e = parseError(bodyText);
  const message = redactSecrets((e.message ?? `HTTP ${status}`).slice(0, 2000));
  const upstream = { upstreamStatus: status };
  const reasons = (e.details ?? []).map((d) => d?.reason).filter((r): r is string => typeof r === "string");
  if (status === 401 || status === 403 || reasons.includes("API_KEY_INVALID") || e.status === "UNAUTHENTICATED") {
    return new GatewayError("upstream_error", `provider '${provider}' rejected the gateway's credentials (HTTP ${status}): ${message}`, upstream);
  }
  if (status === 429 || e.status === "RESOURCE_EXHAUSTED") {
    const retryAfter = retryDelay(e) ?? header(headers, "retry-after");
    return new GatewayError("rate_limited", `provider '${provider}' is rate limiting: ${message}`, {
      ...upstream,
      providerCode: "resource_exhausted",
      ...(retryAfter === undefined ? {} : { retryAfter }),
    });
  }
  if (status === 404) return new GatewayError("model_not_found", message, { ...upstream, providerCode: "not_found" });
  if (status === 408 || status === 504) return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${message}`, upstream);
  if (status === 413) return new GatewayError("payload_too_large", message, upstream);
  if (status === 503) return new GatewayError("upstream_unavailable", `provider '${provider}' is unavailable: ${message}`, upstream);
  if (status >= 500) return new GatewayError("upstream_error", `provider '${provider}' failed (HTTP ${status}): ${message}`, upstream);
  if (e.status === "FAILED_PRECONDITION") {
    return new GatewayError("upstream_error", `provider '${provider}' refused the gateway's account: ${message}`, upstream);
  }
  if (status >= 400) {
    const tooLong = /input token count.*exceeds|exceeds the maximum number of tokens|too many tokens|context (length|window)/i.test(message);
    const providerCode = tooLong ? "context_length_exceeded" : (e.status ?? "invalid_argument").toLowerCase();
    return new GatewayError("invalid_request", message, { ...upstream, providerCode });
  }
  return new GatewayError("upstream_error", `provider '${provider}' answered HTTP ${status}`, upstream);
}

/** An error object inside a 200 stream; mapped like an HTTP answer with its `code`. */
export function geminiStreamError(provider: string, error: GoogleError): GatewayError {
  const status = typeof error.code === "number" && error.code >= 400 && error.code < 600 ? error.code : 500;
  const e = geminiError(provider, status, {}, JSON.stringify({ error }));
  return new GatewayError(e.code, `provider '${provider}' failed mid-stream: ${e.message}`, {
    upstreamStatus: status,
    ...(e.providerCode === undefined ? {} : { providerCode: e.providerCode }),
    ...(e.retryAfter === undefined ? {} : { retryAfter: e.retryAfter }),
  });
}

/** The Google error inside a parsed body, if it is one. */
export function asGoogleError(body: unknown): GoogleError | undefined {
  const b = Array.isArray(body) ? body[0] : body;
  const e = typeof b === "object" && b !== null ? (b as Record<string, unknown>)["error"] : undefined;
  return typeof e === "object" && e !== null && !Array.isArray(e) ? (e as GoogleError) : undefined;
}

function parseError(text: string): GoogleError {
  try {
    return asGoogleError(JSON.parse(text)) ?? {};
  } catch {
    return {};
  }
}

/** RetryInfo's retryDelay is a protobuf Duration ("37s", "0.5s"): whole seconds, rounded up. */
function retryDelay(e: GoogleError): string | undefined {
  for (const d of e.details ?? []) {
    const m = typeof d?.retryDelay === "string" ? /^(\d+(?:\.\d+)?)s$/.exec(d.retryDelay) : null;
    if (m) return String(Math.max(1, Math.ceil(Number(m[1]))));
  }
  return undefined;
}
