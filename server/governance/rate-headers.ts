import type { RateState } from "./types.ts";

/**
 * OpenAI's rate-limit headers (x-ratelimit-limit-requests, ...-remaining-,
 * ...-reset-, and the same for tokens), from the tightest level's state.
 * Resets are durations as OpenAI writes them ("20ms", "1s", "6m0s").
 */
export function rateHeaders(rate: RateState, set: (name: string, value: string) => void): void {
  if (rate.limitRequests !== undefined) {
    set("x-ratelimit-limit-requests", String(rate.limitRequests));
    set("x-ratelimit-remaining-requests", String(rate.remainingRequests ?? 0));
    set("x-ratelimit-reset-requests", duration(rate.resetRequestsMs ?? 0));
  }
  if (rate.limitTokens !== undefined) {
    set("x-ratelimit-limit-tokens", String(rate.limitTokens));
    set("x-ratelimit-remaining-tokens", String(rate.remainingTokens ?? 0));
    set("x-ratelimit-reset-tokens", duration(rate.resetTokensMs ?? 0));
  }
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  const s = Math.ceil(ms / 100) / 10;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round((s - m * 60) * 10) / 10}s`;
}
