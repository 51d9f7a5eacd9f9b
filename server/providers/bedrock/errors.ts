import { GatewayError } from "../../errors/errors.ts";
import { isRecord } from "../../wire/openai/json.ts";
import { redactSecrets } from "../shared/redact.ts";
import { header, type UpstreamHeaders } from "../shared/upstream.ts";

/**
 * Bedrock errors -> GatewayError. Non-stream errors are a status, an
 * `x-amzn-ErrorType` header ("ValidationException:http://internal.amazon.com/...")
 * and a body `{"message": "..."}`; stream errors are event-stream messages
 * with `:message-type exception` and `:exception-type` (camelCase:
 * "throttlingException"). Both are classified by the type name, falling back
 * to the status.
 */

const CONTEXT_LENGTH = /too long|too many (input )?tokens|context (length|window)|max(imum)? (context|input)/i;

export function providerError(provider: string, status: number, headers: UpstreamHeaders, bodyText: string): GatewayError {
  const type = (header(headers, "x-amzn-errortype") ?? "").split(":")[0]!;
  const message = parseMessage(bodyText) ?? `HTTP ${status}`;
  const retryAfter = header(headers, "retry-after");
  return classify(provider, type, message, { upstreamStatus: status, ...(retryAfter === undefined ? {} : { retryAfter }) }, status);
}

/** An exception message inside a ConverseStream body. */
export function streamException(provider: string, exceptionType: string, payload: Uint8Array): GatewayError {
  const message = parseMessage(new TextDecoder().decode(payload)) ?? exceptionType;
  const e = classify(provider, exceptionType, message, {}, 0);
  return e.code === "invalid_request" ? e : new GatewayError(e.code, `${e.message} (mid-stream)`, { ...(e.providerCode === undefined ? {} : { providerCode: e.providerCode }) });
}

function classify(provider: string, rawType: string, rawMessage: string, upstream: { upstreamStatus?: number; retryAfter?: string }, status: number): GatewayError {
  const type = rawType.toLowerCase().replace(/exception$/, "");
  const message = redactSecrets(rawMessage);
  switch (type) {
    case "validation":
      if (CONTEXT_LENGTH.test(message)) return new GatewayError("invalid_request", message, { ...upstream, providerCode: "context_length_exceeded" });
      return new GatewayError("invalid_request", message, { ...upstream, providerCode: "validation_error" });
    case "accessdenied":
    case "unrecognizedclient":
    case "invalidsignature":
    case "expiredtoken":
    case "incompletesignature":
    case "missingauthenticationtoken":
      // The gateway's AWS credentials were refused: the caller did nothing wrong.
      return new GatewayError("upstream_error", `provider '${provider}' rejected the gateway's AWS credentials: ${message}`, upstream);
    case "resourcenotfound":
      return new GatewayError("model_not_found", message, upstream);
    case "modeltimeout":
      return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${message}`, upstream);
    case "throttling":
    case "toomanyrequests":
    case "servicequotaexceeded":
      return new GatewayError("rate_limited", `provider '${provider}' is rate limiting: ${message}`, upstream);
    case "serviceunavailable":
    case "modelnotready":
      return new GatewayError("upstream_unavailable", `provider '${provider}' is unavailable: ${message}`, upstream);
    case "modelerror":
    case "modelstreamerror":
    case "internalserver":
      return new GatewayError("upstream_error", `provider '${provider}' failed: ${message}`, upstream);
  }
  if (status === 401 || status === 403) return classify(provider, "AccessDenied", rawMessage, upstream, 0);
  if (status === 404) return new GatewayError("model_not_found", message, upstream);
  if (status === 408 || status === 504) return new GatewayError("upstream_timeout", `provider '${provider}' timed out: ${message}`, upstream);
  if (status === 429) return new GatewayError("rate_limited", `provider '${provider}' is rate limiting: ${message}`, upstream);
  if (status === 503) return new GatewayError("upstream_unavailable", `provider '${provider}' is unavailable: ${message}`, upstream);
  if (status === 413) return new GatewayError("payload_too_large", message, upstream);
  if (status >= 400 && status < 500) return new GatewayError("invalid_request", message, upstream);
  return new GatewayError("upstream_error", `provider '${provider}' failed${status > 0 ? ` (HTTP ${status})` : ""}: ${message}`, upstream);
}

/** Bedrock's `{"message": ...}` (also `Message`, as some AWS services spell it). */
function parseMessage(text: string): string | undefined {
  try {
    const body: unknown = JSON.parse(text);
    if (!isRecord(body)) return undefined;
    const m = body["message"] ?? body["Message"];
    return typeof m === "string" ? m.slice(0, 2000) : undefined;
  } catch {
    return undefined;
  }
}
