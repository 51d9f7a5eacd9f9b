import { join } from "node:path";
import type { DescFile } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.ts";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.ts";
import { file_switchyard_v1_budgets } from "../gen/switchyard/v1/budgets_pb.ts";
import { file_switchyard_v1_chat } from "../gen/switchyard/v1/chat_pb.ts";
import { file_switchyard_v1_embeddings } from "../gen/switchyard/v1/embeddings_pb.ts";
import { file_switchyard_v1_keys } from "../gen/switchyard/v1/keys_pb.ts";
import { file_switchyard_v1_logs } from "../gen/switchyard/v1/logs_pb.ts";
import { file_switchyard_v1_models } from "../gen/switchyard/v1/models_pb.ts";
import { file_switchyard_v1_org } from "../gen/switchyard/v1/org_pb.ts";
import { file_switchyard_v1_routing } from "../gen/switchyard/v1/routing_pb.ts";
import { file_switchyard_v1_responses } from "../gen/switchyard/v1/responses_pb.ts";
import type { Config } from "./config/schema.ts";
import { create } from "@bufbuild/protobuf";
import { EmbedRequestSchema } from "../gen/switchyard/v1/embeddings_pb.ts";
import { file_switchyard_v1_cache } from "../gen/switchyard/v1/cache_pb.ts";
import { createResponseCache, type ResponseCache } from "./cache/cache.ts";
import { createMemoryCacheStore } from "./cache/store-memory.ts";
import { createRedisCacheStore } from "./cache/store-redis.ts";
import { createRedisSemanticFeed, type SemanticFeed } from "./cache/semantic-feed.ts";
import type { CacheStore } from "./cache/types.ts";
import { ConfigError } from "./config/load.ts";
import { createAdmin } from "./governance/admin.ts";
import { createRedisResponseStore, createSqliteResponseStore } from "./responses/store.ts";
import { createResponsesApi } from "./responses/service.ts";
import { createGovernor } from "./governance/governor.ts";
import { createPricing } from "./governance/pricing.ts";
import { createMemoryStore } from "./governance/store-memory.ts";
import { createRedisStore } from "./governance/store-redis.ts";
import type { GovernanceStore } from "./governance/types.ts";
import { createPipeline, type PipelineObserver, type RequestRecord } from "./pipeline/pipeline.ts";
import { createProvider } from "./providers/registry.ts";
import type { Provider } from "./providers/types.ts";
import type { Target } from "./routing/resolve.ts";
import { createTokenCounter } from "./rest/count-tokens.ts";
import { createRestHandler } from "./rest/router.ts";
import { createModelCatalog } from "./routing/catalog.ts";
import { createHealthRegistry } from "./routing/health.ts";
import { checkRoutes, createPlanner } from "./routing/plan.ts";
import { startProbes } from "./routing/probe.ts";
import { createResolver } from "./routing/resolve.ts";
import { createRequestGate } from "./rpc/context.ts";
import { createHealth } from "./rpc/health.ts";
import { registerReflection } from "./rpc/reflection.ts";
import { registerAdminServices } from "./rpc/admin.ts";
import { registerCacheService } from "./rpc/cache.ts";
import { registerLogService } from "./rpc/logs.ts";
import { registerRoutingService } from "./rpc/routing.ts";
import { registerServices } from "./rpc/services.ts";
import { registerResponsesService } from "./rpc/responses.ts";
import { silentLogger, type Logger } from "./telemetry/log.ts";
import { createMetrics, type Metrics } from "./telemetry/metrics.ts";
import { createRedactor } from "./telemetry/redact.ts";
import { createRequestLog, type RequestLog } from "./telemetry/request-log.ts";
import { createTracing, type TracingOptions } from "./telemetry/tracing.ts";
import { grpcUnimplemented, isGrpcRequest } from "./transport/grpc-fallback.ts";
import { listenOnePort, type OnePortServer } from "./transport/one-port.ts";

/**
 * Everything that hears about finished requests: metrics, the request log,
 * a debug-level access log line, and the embedder's own hook (tests).
 */
function composeObservers(metrics: Metrics, logger: Logger, requestLog: RequestLog | undefined, onRecord: ((r: RequestRecord) => void) | undefined): PipelineObserver {
  return {
    started: (op) => metrics.started(op),
    chunkGap: (provider, ms) => metrics.chunkGap(provider, ms),
    finished(r) {
      metrics.finished(r);
      requestLog?.add(r);
      logger.debug("request", {
        requestId: r.requestId,
        operation: r.operation,
        provider: r.provider,
        model: r.model,
        status: r.ok ? "ok" : r.errorCode,
        latencyMs: Math.round(r.latencyMs * 1000) / 1000,
      });
      onRecord?.(r);
    },
  };
}

/**
 * The response cache. Always built (a key, team or customer may turn it on
 * while the configuration leaves it off); the store is Redis when governance
 * shares state there, unless cache.store says otherwise. The semantic cache
 * embeds prompts with one of the gateway's own embedding models.
 */
async function createCache(config: Config, providers: ReadonlyMap<string, Provider>, resolve: (model: string) => Target, logger: Logger): Promise<ResponseCache> {
  const c = config.cache;
  const g = config.governance;
  const kind = c.store ?? (g.store === "redis" ? "redis" : "memory");
  const store: CacheStore = kind === "redis"
    ? await createRedisCacheStore({ url: g.redis.url, prefix: g.redis.prefix, commandTimeoutMs: g.redis.commandTimeoutMs })
    : createMemoryCacheStore({ maxBytes: c.maxBytes, ...(c.persist ? { path: join(config.dataDir, "cache.db") } : {}) });
  const model = c.semantic.embeddingModel ?? (providers.has("openai") ? "openai/text-embedding-3-small" : undefined);
  if ((c.mode === "semantic" || c.mode === "both") && model === undefined) {
    throw new ConfigError("cache.semantic.embeddingModel: the semantic cache needs one of the gateway's embedding models (\"provider/model\")");
  }
  const embed = model === undefined ? undefined : async (text: string, signal: AbortSignal): Promise<Float32Array> => {
    const t = resolve(model);
    const res = await t.provider.embed(create(EmbedRequestSchema, { model: t.model, input: [text] }), { signal, requestId: "cache-embedding", timeouts: { totalMs: 10_000 } });
    const v = res.data[0]?.vector;
    if (v === undefined || v.length === 0) throw new Error(`${model} returned no vector`);
    return Float32Array.from(v);
  };
  // With a shared store, prompt vectors are shared too, so a paraphrase finds its answer on any instance.
  let feed: SemanticFeed | undefined;
  const cache = createResponseCache({
    store,
    mode: c.mode,
    ttlSeconds: c.ttlSeconds,
    scope: c.scope,
    storeMultipleChoices: c.storeMultipleChoices,
    semantic: { ...c.semantic, embed, publish: (r) => feed?.publish(r) },
    logger,
  });
  if (kind === "redis" && embed !== undefined) {
    feed = await createRedisSemanticFeed({
      url: g.redis.url, prefix: g.redis.prefix, maxEntries: c.semantic.maxEntries, commandTimeoutMs: g.redis.commandTimeoutMs,
      onRecord: (r) => cache.remember(r),
    });
  }
  return { ...cache, close: async () => { await feed?.close(); await cache.close(); } };
}

/** Files visible through gRPC reflection. */
const REFLECTED_FILES: readonly DescFile[] = [
  file_switchyard_v1_chat,
  file_switchyard_v1_embeddings,
  file_switchyard_v1_models,
  file_switchyard_v1_logs,
  file_switchyard_v1_routing,
  file_switchyard_v1_keys,
  file_switchyard_v1_budgets,
  file_switchyard_v1_org,
  file_switchyard_v1_cache,
  file_switchyard_v1_responses,
  file_grpc_health_v1_health,
  file_google_rpc_error_details,
];

const SERVICES = ["switchyard.v1.ChatService", "switchyard.v1.EmbeddingsService", "switchyard.v1.ModelService"];

export interface GatewayOptions {
  logger?: Logger;
  /** Receives one record per finished request (tests, and later accounting and logs). */
  onRecord?: (r: RequestRecord) => void;
  /** Overrides of the tracing configuration (tests shorten the export interval). */
  tracing?: Partial<TracingOptions>;
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  /** No gateway, admin or virtual key exists: inference is served without one. */
  isOpen(): boolean;
  /** Graceful stop: not ready, stop accepting, drain for up to the configured grace. */
  close(graceMs?: number): Promise<void>;
}

/**
 * The composition root: the only place that builds providers, the pipeline
 * and the entry points, and puts them on one port.
 */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? silentLogger;
  const providers = new Map<string, Provider>();
  for (const p of config.providers) providers.set(p.id, createProvider(p));

  const catalog = createModelCatalog(providers, config.aliases, (provider, err) =>
    logger.warn("model discovery failed", { provider, error: err }));
  const resolve = createResolver(providers, config.aliases, catalog);
  checkRoutes(config.routes, resolve);
  const routingHealth = createHealthRegistry(config.routing.breaker, config.routing.keyBalance);
  const metrics = createMetrics();
  const t = config.tracing;
  const tracing = createTracing({ endpoint: t.endpoint, tracesEndpoint: t.tracesEndpoint, serviceName: t.serviceName, headers: t.headers, ...options.tracing });
  const rl = config.requestLog;
  const requestLog = rl.enabled
    ? createRequestLog({
        path: rl.path ?? join(config.dataDir, "requests.db"),
        maxAgeMs: rl.retentionDays * 86_400_000,
        maxRows: rl.maxRows,
        queueMax: rl.queueMax,
        redact: createRedactor(rl.redact),
        logger,
      })
    : undefined;
  metrics.addHealth(() => routingHealth.snapshot());
  if (requestLog !== undefined) {
    metrics.addCounter("switchyard_request_log_dropped_total", "Request-log records dropped because the writer fell behind.", () => requestLog.dropped());
  }
  const g = config.governance;
  const store: GovernanceStore = g.store === "redis"
    ? await createRedisStore({ url: g.redis.url, prefix: g.redis.prefix, commandTimeoutMs: g.redis.commandTimeoutMs })
    : createMemoryStore({ path: join(config.dataDir, "governance.db") });
  const governor = await createGovernor({
    store,
    pricing: createPricing(g.pricing),
    staticKeys: config.auth.keys,
    adminKey: config.admin.key,
    providerTypes: new Map(config.providers.map((p) => [p.id, p.type])),
    reservationTtlMs: g.reservationTtlMs,
    defaultMaxOutputTokens: g.defaultMaxOutputTokens,
    unpricedModels: g.unpricedModels,
    chargeHits: config.cache.chargeHits,
    logger,
  });
  const cache = await createCache(config, providers, resolve, logger);
  metrics.addCache(cache);
  // Admin writes on this instance take effect here at once; other instances see them within a poll.
  const admin = createAdmin(store, undefined, () => governor.invalidate());
  metrics.addGauge("switchyard_governance_store_up", "1 when the governance store (embedded, or Redis) answers; 0 while governed requests are refused.", () => (store.healthy() ? 1 : 0));
  metrics.addCounter("switchyard_governance_settle_failures_total", "Spend records given up on after retries (the store was unreachable).", () => governor.settleFailures());
  const pipeline = createPipeline({
    plan: createPlanner(config.routes, resolve, (t) => routingHealth.inFlight(t)),
    health: routingHealth,
    retry: config.routing,
    catalog,
    observer: composeObservers(metrics, logger, requestLog, options.onRecord),
    tracing,
    captureBodies: requestLog !== undefined && rl.bodies,
    logger,
    governor,
    cache,
  });
  const authenticate = governor.authenticate;
  const health = createHealth();
  for (const s of SERVICES) health.setStatus(s, "SERVING");
  let ready = true;
  const shutdown = new AbortController();

  const responseStore = g.store === "redis"
    ? await createRedisResponseStore({ url: g.redis.url, prefix: g.redis.prefix, commandTimeoutMs: g.redis.commandTimeoutMs })
    : createSqliteResponseStore(join(config.dataDir, "responses.db"));
  const openaiProviders = new Set(config.providers.filter((p) => p.type === "openai").map((p) => p.id));
  const responsesApi = createResponsesApi({ pipeline, responses: {
    store: responseStore,
    scope: config.responses.scope,
    ttlMs: config.responses.ttlDays * 86_400_000,
    // OpenAI's own models get the Responses API passed through untouched; everything else is translated.
    passthrough: (model: string): string | undefined => {
      try {
        const id = resolve(model).provider.id;
        return openaiProviders.has(id) ? id : undefined;
      } catch {
        return undefined;
      }
    },
  } });
  const rest = createRestHandler({
    responses: responsesApi,
    pipeline,
    authenticate,
    logger,
    maxBodyBytes: config.server.maxBodyBytes,
    // A governance store that cannot be reached (Redis) takes the instance out of rotation.
    notReady: () => (!ready ? "draining" : !store.healthy() ? "governance store unreachable" : undefined),
    scrapeMetrics: () => metrics.scrape(),
    // POST /v1/messages/count_tokens: free, but a virtual key's allowed models and providers apply.
    countTokens: createTokenCounter(resolve, { authorize: (principal, model, target) => { if (principal.kind === "virtual") governor.authorize(principal, { models: [model], targets: [target], primary: [target], promptTokens: 0, maxOutputTokens: 0 }); } }),
  });
  const handler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      registerServices(router, pipeline);
      registerResponsesService(router, responsesApi);
      if (requestLog !== undefined) registerLogService(router, requestLog);
      registerRoutingService(router, routingHealth);
      registerAdminServices(router, admin);
      registerCacheService(router, cache.admin);
      health.register(router);
      registerReflection(router, REFLECTED_FILES);
    },
    requestGate: createRequestGate(authenticate),
    readMaxBytes: config.server.maxBodyBytes,
    writeMaxBytes: 64 * 1024 * 1024,
    shutdownSignal: shutdown.signal,
    // Every path that is not an RPC: the REST bridge, or UNIMPLEMENTED for gRPC clients.
    fallback: (req, res) => (isGrpcRequest(req) ? grpcUnimplemented(req, res) : rest(req, res)),
  });

  const server: OnePortServer = await listenOnePort(handler, { host: config.server.host, port: config.server.port });
  catalog.start();
  const stopProbes = config.routing.healthCheckIntervalMs > 0 ? startProbes(providers.values(), routingHealth, config.routing.healthCheckIntervalMs) : () => {};
  const host = server.host.includes(":") ? `[${server.host}]` : server.host;
  let closing: Promise<void> | undefined;

  return {
    url: `http://${host}:${server.port}`,
    port: server.port,
    isOpen: () => governor.isOpen(),
    close(graceMs = config.server.shutdownGraceMs) {
      // Idempotent: a second call (a second signal, a test's cleanup) waits for the first.
      closing ??= (async () => {
        ready = false;
        health.setStatus("", "NOT_SERVING");
        catalog.stop();
        stopProbes();
        await server.close(graceMs);
        shutdown.abort();
        await Promise.all([...providers.values()].map((p) => p.close()));
        await tracing.shutdown();
        await requestLog?.close();
        await governor.close();
        await cache.close();
        await responseStore.close();
      })();
      return closing;
    },
  };
}
