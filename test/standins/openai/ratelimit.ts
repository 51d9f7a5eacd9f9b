/**
 * The stand-in's per-minute request/token accounting, so responses carry
 * OpenAI's `x-ratelimit-*` headers with values that move, and a configured
 * request limit really answers 429 with `retry-after` like OpenAI does.
 */

const WINDOW_MS = 60_000;

/** Limits per minute; OpenAI's tier-5 gpt-4o-mini values by default. */
export interface RateLimits {
  requests: number;
  tokens: number;
}

/** OpenAI's duration format for `x-ratelimit-reset-*`: "0s", "6ms", "1.5s", "1m30s". */
export function formatResetDuration(ms: number): string {
  const whole = Math.max(0, Math.round(ms));
  if (whole === 0) return "0s";
  if (whole < 1000) return `${whole}ms`;
  if (whole < 60_000) return `${Number((whole / 1000).toFixed(3))}s`;
  const minutes = Math.floor(whole / 60_000);
  return `${minutes}m${Math.floor((whole % 60_000) / 1000)}s`;
}

/** Sliding one-minute window over admitted requests and their token estimates. */
export class RateLimiter {
  readonly limits: RateLimits;
  #events: Array<{ at: number; tokens: number }> = [];

  constructor(limits: RateLimits) {
    this.limits = limits;
  }

  #prune(now: number): void {
    while (this.#events.length > 0 && this.#events[0]!.at <= now - WINDOW_MS) this.#events.shift();
  }

  /**
   * Admits a request (recording it) or, past the request limit, returns the
   * seconds until a slot frees up, for `retry-after`.
   */
  admit(tokens: number, now = Date.now()): { ok: true } | { ok: false; retryAfterSeconds: number } {
    this.#prune(now);
    if (this.#events.length >= this.limits.requests) {
      const oldest = this.#events[0]!.at;
      return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + WINDOW_MS - now) / 1000)) };
    }
    this.#events.push({ at: now, tokens });
    return { ok: true };
  }

  /** OpenAI's six `x-ratelimit-*` headers for the current window. */
  headers(now = Date.now()): Record<string, string> {
    this.#prune(now);
    const usedRequests = this.#events.length;
    const usedTokens = this.#events.reduce((sum, e) => sum + e.tokens, 0);
    const { requests, tokens } = this.limits;
    return {
      "x-ratelimit-limit-requests": String(requests),
      "x-ratelimit-limit-tokens": String(tokens),
      "x-ratelimit-remaining-requests": String(Math.max(0, requests - usedRequests)),
      "x-ratelimit-remaining-tokens": String(Math.max(0, tokens - usedTokens)),
      "x-ratelimit-reset-requests": formatResetDuration((WINDOW_MS * usedRequests) / requests),
      "x-ratelimit-reset-tokens": formatResetDuration((WINDOW_MS * usedTokens) / tokens),
    };
  }
}
