import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Operation, PipelineObserver, RequestRecord } from "../pipeline/pipeline.ts";
import type { ProviderHealth } from "../routing/health.ts";
import type { CacheAdmin, CacheAdminStats } from "../cache/admin-api.ts";

/** Most distinct model label values kept; later ones are counted as "other" so label sets stay bounded. */
const MAX_MODELS = 256;

const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** The gateway's own overhead is measured in microseconds. */
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05];
const GAP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface Metrics extends PipelineObserver {
  /** The Prometheus text exposition of every metric. */
  scrape(): Promise<{ contentType: string; body: string }>;
  /** A counter read from elsewhere at scrape time (e.g. request-log records dropped). */
  addCounter(name: string, help: string, read: () => number): void;
  /** A gauge read from elsewhere at scrape time (e.g. whether the governance store answers). */
  addGauge(name: string, help: string, read: () => number): void;
  /** The response cache's size, bound and evictions, read from its store at scrape time. */
  addCache(cache: { admin: CacheAdmin }): void;
  /** Circuit-breaker states, read from routing's health at scrape time. */
  addHealth(read: () => ProviderHealth[]): void;
}

/**
 * Prometheus metrics for one gateway (its own registry, so several gateways
 * in one process do not collide). Labels are bounded: operation, provider
 * (from the configuration), model (capped), and outcome ("ok" or a gateway
 * error code, a closed set). No per-request or per-key labels.
 */
export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const requests = new Counter({
    name: "switchyard_requests_total",
    help: "Requests finished, by operation, provider, model and outcome (ok or the error code).",
    labelNames: ["operation", "provider", "model", "outcome"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "switchyard_request_duration_seconds",
    help: "Time from arrival to the end of the request (for streams, the last chunk).",
    labelNames: ["operation", "provider"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstream = new Histogram({
    name: "switchyard_upstream_duration_seconds",
    help: "Time waiting on the provider: until its answer, or for streams its first chunk.",
    labelNames: ["operation", "provider"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const overhead = new Histogram({
    name: "switchyard_overhead_seconds",
    help: "Time the gateway itself added: request time (streams: to first chunk) minus provider time.",
    labelNames: ["operation"] as const,
    buckets: OVERHEAD_BUCKETS,
    registers: [registry],
  });
  const ttft = new Histogram({
    name: "switchyard_time_to_first_token_seconds",
    help: "Streams: time from arrival to the first chunk.",
    labelNames: ["provider"] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const gaps = new Histogram({
    name: "switchyard_stream_chunk_gap_seconds",
    help: "Streams: time between consecutive chunks.",
    labelNames: ["provider"] as const,
    buckets: GAP_BUCKETS,
    registers: [registry],
  });
  const tokens = new Counter({
    name: "switchyard_tokens_total",
    help: "Tokens by provider, model and kind (input, output, cached, cache_write, reasoning).",
    labelNames: ["provider", "model", "kind"] as const,
    registers: [registry],
  });
  const cost = new Counter({
    name: "switchyard_cost_usd_total",
    help: "What served requests cost in USD (from the pricing table), by provider and model; virtual-key traffic only.",
    labelNames: ["provider", "model"] as const,
    registers: [registry],
  });
  const cacheLookups = new Counter({
    name: "switchyard_cache_requests_total",
    help: "Chat requests by cache outcome: hit (exact), semantic-hit, miss, bypass (skipped by policy or Cache-Control).",
    labelNames: ["status"] as const,
    registers: [registry],
  });
  const cacheSaved = new Counter({
    name: "switchyard_cache_saved_usd_total",
    help: "What cache hits would have cost upstream, USD, by mode (exact, semantic).",
    labelNames: ["mode"] as const,
    registers: [registry],
  });
  const retries = new Counter({
    name: "switchyard_retries_total",
    help: "Extra attempts on a target after a retryable failure.",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  const fallbacks = new Counter({
    name: "switchyard_fallbacks_total",
    help: "Requests that moved on to another target, by the target that finally served (or failed).",
    labelNames: ["operation", "provider"] as const,
    registers: [registry],
  });
  const inflight = new Gauge({
    name: "switchyard_inflight_requests",
    help: "Requests in the pipeline now.",
    labelNames: ["operation"] as const,
    registers: [registry],
  });

  const models = new Set<string>();
  /** A model earns its own label by serving a request; names only callers typed stay "other" (they cannot fill the set). */
  const modelLabel = (model: string, served = false): string => {
    if (model === "") return "";
    if (models.has(model)) return model;
    if (!served || models.size >= MAX_MODELS) return "other";
    models.add(model);
    return model;
  };

  return {
    started(op: Operation) {
      inflight.inc({ operation: op });
    },
    chunkGap(provider, ms) {
      gaps.observe({ provider }, ms / 1000);
    },
    finished(r: RequestRecord) {
      inflight.dec({ operation: r.operation });
      const model = modelLabel(r.model, r.ok);
      if (r.attempts > 1) {
        const targets = new Set(r.tried).size;
        if (r.attempts > targets) retries.inc({ operation: r.operation }, r.attempts - targets);
        if (targets > 1) fallbacks.inc({ operation: r.operation, provider: r.provider });
      }
      requests.inc({ operation: r.operation, provider: r.provider, model, outcome: r.ok ? "ok" : r.errorCode ?? "internal" });
      duration.observe({ operation: r.operation, provider: r.provider }, r.latencyMs / 1000);
      if (r.upstreamMs !== undefined) {
        upstream.observe({ operation: r.operation, provider: r.provider }, r.upstreamMs / 1000);
        const own = (r.firstChunkMs ?? r.latencyMs) - r.upstreamMs;
        if (r.ok) overhead.observe({ operation: r.operation }, Math.max(0, own) / 1000);
      }
      if (r.firstChunkMs !== undefined) ttft.observe({ provider: r.provider }, r.firstChunkMs / 1000);
      const u = r.usage;
      if (u !== undefined) {
        const labels = (kind: string) => ({ provider: r.provider, model, kind });
        if (u.promptTokens) tokens.inc(labels("input"), u.promptTokens);
        if (u.completionTokens) tokens.inc(labels("output"), u.completionTokens);
        if (u.cachedTokens) tokens.inc(labels("cached"), u.cachedTokens);
        if (u.cacheWriteTokens) tokens.inc(labels("cache_write"), u.cacheWriteTokens);
        if (u.reasoningTokens) tokens.inc(labels("reasoning"), u.reasoningTokens);
      }
      if (r.costUsd > 0) cost.inc({ provider: r.provider, model }, r.costUsd);
      if (r.cacheStatus !== "") {
        cacheLookups.inc({ status: r.cacheStatus });
        if (r.savedUsd > 0) cacheSaved.inc({ mode: r.cacheStatus === "semantic-hit" ? "semantic" : "exact" }, r.savedUsd);
      }
    },
    addHealth(read) {
      const STATE = { closed: 0, half_open: 1, open: 2 } as const;
      new Gauge({
        name: "switchyard_circuit_state",
        help: "Circuit breaker state: 0 closed, 1 half-open, 2 open; per provider key (scope key, name = key index) and per target (scope target, name = model).",
        labelNames: ["provider", "scope", "name"] as const,
        registers: [registry],
        collect() {
          this.reset();
          for (const p of read()) {
            for (const k of p.keys) this.set({ provider: p.provider, scope: "key", name: String(k.index) }, STATE[k.state]);
            // Targets are bounded by routing's health registry (configured routes and models it has seen, capped).
            for (const t of p.targets) this.set({ provider: p.provider, scope: "target", name: t.model }, STATE[t.state]);
          }
        },
      });
    },
    addCache(cache) {
      // One stats call per scrape feeds every gauge (for Redis it samples the store): a scrape
      // collects all gauges at once, so the first starts the call and the others share it.
      let current: Promise<CacheAdminStats | undefined> | undefined;
      const read = async (field: "entries" | "bytes" | "maxBytes" | "evictions" | "semanticEntries"): Promise<number> => {
        current ??= cache.admin.stats()
          .catch(() => undefined) // an unreachable Redis: the scrape still answers
          .finally(() => (current = undefined));
        return (await current)?.[field] ?? 0;
      };
      const gauge = (name: string, help: string, field: Parameters<typeof read>[0]): void =>
        void new Gauge({ name, help, registers: [registry], async collect() { this.set(await read(field)); } });
      gauge("switchyard_cache_entries", "Entries in the response cache store.", "entries");
      gauge("switchyard_cache_bytes", "Bytes held by the response cache store (estimated for Redis).", "bytes");
      gauge("switchyard_cache_max_bytes", "The memory store's bound.", "maxBytes");
      gauge("switchyard_cache_evictions_total", "Entries evicted to stay within the bound.", "evictions");
      gauge("switchyard_cache_semantic_entries", "Prompts in the semantic index.", "semanticEntries");
    },
    addCounter(name, help, read) {
      // A gauge under a _total name: the value is a monotonic count kept by its owner.
      new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
    },
    addGauge(name, help, read) {
      new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
    },
    async scrape() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
