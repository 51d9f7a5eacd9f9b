import type { LogRow } from "../../server/telemetry/log-store.ts";

/** Request-log row `i` of a test: keys, models and errors vary with i; `over` sets any field. */
export function row(i: number, over: Partial<LogRow> = {}): LogRow {
  return {
    recordId: `rec-${i}`,
    timeMs: 1_700_000_000_000 + i * 1000,
    requestId: `req-${i}`,
    key: i % 2 === 0 ? "key:aaaa" : "key:bbbb",
    keyName: "",
    targets: ["openai/gpt-4o-mini"],
    team: "",
    customer: "",
    operation: "chat",
    modelAsked: "gpt-4o-mini",
    provider: "openai",
    model: i % 3 === 0 ? "gpt-4o" : "gpt-4o-mini",
    status: i % 5 === 0 ? "upstream_error" : "ok",
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 0,
    costUsd: 0.001,
    savedUsd: 0,
    latencyMs: 12.5,
    firstChunkMs: null,
    upstreamMs: 10,
    cacheStatus: "",
    attempts: 1,
    requestBody: null,
    responseBody: null,
    ...over,
  };
}
