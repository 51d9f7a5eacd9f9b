import type { GatewayError } from "../errors/errors.ts";

/**
 * Which failures another attempt could fix. The caller's own mistakes
 * (validation, content policy, oversized bodies, a refusal by the gateway's
 * own governance) are final: retrying or falling back would only repeat them
 * or spend money elsewhere.
 */
export function isFallbackable(err: GatewayError): boolean {
  switch (err.code) {
    case "upstream_error":
    case "upstream_unavailable":
    case "upstream_timeout":
      return true;
    case "rate_limited":
      // Only the provider's 429; a gateway budget or rate refusal is the caller's and final.
      return err.upstreamStatus !== undefined;
    case "model_not_found":
      // The provider does not have it; another target may.
      return err.upstreamStatus !== undefined;
    default:
      return false;
  }
}

/** Whether the same target is worth another try (a missing model will stay missing). */
export function isRetryable(err: GatewayError): boolean {
  return isFallbackable(err) && err.code !== "model_not_found";
}

/** Whether the failure says something about the provider's health (vs. the caller's request). */
export function countsAgainstHealth(err: GatewayError): boolean {
  return isRetryable(err);
}

/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"), or the provider's Retry-After when it gave one.
 */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, retryAfter: string | undefined): number {
  // The provider's own hint wins; the routing deadline decides whether waiting that long is worth it.
  const hinted = parseRetryAfter(retryAfter);
  if (hinted !== undefined) return hinted;
  return Math.random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

/** Retry-After as seconds or an HTTP date, in milliseconds. */
export function parseRetryAfter(v: string | undefined): number | undefined {
  if (v === undefined || v === "") return undefined;
  // RFC 9110: delay-seconds (digits) or an HTTP-date; anything else is ignored.
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Number(v) * 1000;
  if (!/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/.test(v.trim())) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
