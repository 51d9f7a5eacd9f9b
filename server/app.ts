import { join } from "node:path";
import type { DescFile } from "@bufbuild/protobuf";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { ConnectRouter } from "@connectrpc/connect";
import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.ts";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.ts";
import { file_switchyard_v1_budgets } from "../gen/switchyard/v1/budgets_pb.ts";
import { file_switchyard_v1_chat } from "../gen/switchyard/v1/chat_pb.ts";
import { file_switchyard_v1_config } from "../gen/switchyard/v1/config_pb.ts";
import { file_switchyard_v1_embeddings } from "../gen/switchyard/v1/embeddings_pb.ts";
import { file_switchyard_v1_keys } from "../gen/switchyard/v1/keys_pb.ts";
import { file_switchyard_v1_logs } from "../gen/switchyard/v1/logs_pb.ts";
import { file_switchyard_v1_models } from "../gen/switchyard/v1/models_pb.ts";
import { file_switchyard_v1_org } from "../gen/switchyard/v1/org_pb.ts";
import { file_switchyard_v1_providers } from "../gen/switchyard/v1/providers_pb.ts";
import { file_switchyard_v1_routing } from "../gen/switchyard/v1/routing_pb.ts";
import { file_switchyard_v1_responses } from "../gen/switchyard/v1/responses_pb.ts";
import type { Config } from "./config/schema.ts";
import { create } from "@bufbuild/protobuf";
import { EmbedRequestSchema } from "../gen/switchyard/v1/embeddings_pb.ts";
import { file_switchyard_v1_cache } from "../gen/switchyard/v1/cache_pb.ts";
import { createResponseCache, semanticEmbeddingModel, type ResponseCache } from "./cache/cache.ts";
import { createMemoryCacheStore } from "./cache/store-memory.ts";
import { createRedisCacheStore } from "./cache/store-redis.ts";
import { createRedisSemanticFeed, type SemanticFeed } from "./cache/semantic-feed.ts";
import type { CacheStore } from "./cache/types.ts";
import { readFileSync } from "node:fs";
import { ConfigError, type LoadOptions } from "./config/load.ts";
import { GatewayError } from "./errors/errors.ts";
import { createConfigReloader, type ReloadResult } from "./config/reload.ts";
import { createAdmin } from "./governance/admin.ts";
import { createRedisResponseStore, createSqliteResponseStore } from "./responses/store.ts";
import { createResponsesApi } from "./responses/service.ts";
import { createGovernor } from "./governance/governor.ts";
import { createPricing } from "./governance/pricing.ts";
import { createMemoryStore } from "./governance/store-memory.ts";
import { createRedisStore } from "./governance/store-redis.ts";
import type { GovernanceStore } from "./governance/types.ts";
import { createPipeline, type PipelineObserver, type RequestRecord } from "./pipeline/pipeline.ts";
import type { Provider } from "./providers/types.ts";
import type { Target } from "./routing/resolve.ts";
import { createTokenCounter } from "./rest/count-tokens.ts";
import { createRestHandler } from "./rest/router.ts";
import { createHealthRegistry } from "./routing/health.ts";
import { createLiveRouting } from "./routing/live.ts";
import { createProviderAdmin, type ProviderAdmin } from "./admin/providers.ts";
import { createKeyring } from "./admin/providers-store.ts";
import { openProviders } from "./admin/backend.ts";
import { createRequestGate } from "./rpc/context.ts";
import { createHealth } from "./rpc/health.ts";
import { registerReflection } from "./rpc/reflection.ts";
import { registerAdminServices } from "./rpc/admin.ts";
import { registerCacheService } from "./rpc/cache.ts";
import { registerConfigService } from "./rpc/config.ts";
import { registerLogService } from "./rpc/logs.ts";
import { registerProviderService } from "./rpc/providers.ts";
import { registerRoutingService } from "./rpc/routing.ts";
import { registerServices } from "./rpc/services.ts";
import { registerResponsesService } from "./rpc/responses.ts";
import { createUiHandler, type UiHandler } from "./admin/ui-assets.ts";
import { createAdminPlane, markPeer, type AdminPlane } from "./admin/plane.ts";
import { file_switchyard_v1_audit } from "../gen/switchyard/v1/audit_pb.ts";
import { file_switchyard_v1_auth } from "../gen/switchyard/v1/auth_pb.ts";
import { file_switchyard_v1_users } from "../gen/switchyard/v1/users_pb.ts";
import { silentLogger, type Logger } from "./telemetry/log.ts";
import { createMetrics, type Metrics } from "./telemetry/metrics.ts";
import { createRedactor } from "./telemetry/redact.ts";
import { createRequestLog, type RequestLog } from "./telemetry/request-log.ts";
import { openDatabase } from "./database/postgres.ts";
import { createTracing, type TracingOptions } from "./telemetry/tracing.ts";
import { grpcUnimplemented, isGrpcRequest } from "./transport/grpc-fallback.ts";
import { listenOnePort, type OnePortServer, type TlsOptions } from "./transport/one-port.ts";

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
  const model = semanticEmbeddingModel(c.semantic.embeddingModel, providers);
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
  file_switchyard_v1_providers,
  file_switchyard_v1_cache,
  file_switchyard_v1_responses,
  file_switchyard_v1_auth,
  file_switchyard_v1_users,
  file_switchyard_v1_audit,
  file_switchyard_v1_config,
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
  /**
   * The file `config` was loaded from: it is re-read on ReloadConfig and
   * `reloadConfig()` (SIGHUP), and, with `watch`, whenever it changes.
   * `load` repeats what the first load was given (command-line overrides).
   */
  configFile?: { path: string; load?: Omit<LoadOptions, "file"> | undefined; watch?: boolean | undefined } | undefined;
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  /** No gateway, admin or virtual key exists: inference is served without one. */
  isOpen(): boolean;
  /** Re-reads the configuration file now (SIGHUP); throws ConfigError when it is refused (the running one stays). */
  reloadConfig(): Promise<ReloadResult>;
  /**
   * Graceful stop: /readyz answers 503 and gRPC health NOT_SERVING at once;
   * after `drainDelayMs` (default 0; main.ts passes server.drainDelayMs) new
   * connections are refused; in-flight requests and streams may finish until
   * `graceMs` (default server.shutdownGraceMs) from the call; a stream still
   * open then ends with an explicit error in its protocol (503/UNAVAILABLE
   * "gateway shutting down"); then spend, the request log and the audit log
   * are flushed and the stores closed.
   */
  close(graceMs?: number, options?: { drainDelayMs?: number }): Promise<void>;
}

/**
 * The composition root: the only place that builds providers, the pipeline
 * and the entry points, and puts them on one port.
 */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  const logger = options.logger ?? silentLogger;
  // Read before anything opens, so a missing certificate stops the start with nothing to release.
  const tlsFiles = readTls(config.server.tls);
  const routingHealth = createHealthRegistry(config.routing.breaker, config.routing.keyBalance);
  // Providers, aliases and routes: the configuration's plus ProviderService's, one snapshot swapped whole.
  // Everything below reads `live.current` when it runs (one property read), never a copy taken here.
  const live = createLiveRouting({ config, health: routingHealth, logger });
  const resolve = (model: string): Target => live.current.resolve(model);
  const metrics = createMetrics();
  const t = config.tracing;
  const tracing = await createTracing({ endpoint: t.endpoint, tracesEndpoint: t.tracesEndpoint, serviceName: t.serviceName, headers: t.headers, ...options.tracing });
  // PostgreSQL when configured: shared by every instance (request log, admin plane); else SQLite files in dataDir.
  const database = config.database.url === undefined
    ? undefined
    : await openDatabase({ url: config.database.url, poolSize: config.database.poolSize, statementTimeoutMs: config.database.statementTimeoutMs, logger });
  const rl = config.requestLog;
  const requestLog = rl.enabled
    ? createRequestLog({
        path: rl.path ?? join(config.dataDir, "requests.db"),
        pool: database,
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
  // Built after the governor (it wraps the governor's authenticator); asked only once requests arrive.
  let plane: AdminPlane | undefined;
  const governor = await createGovernor({
    store,
    pricing: createPricing(g.pricing),
    staticKeys: config.auth.keys,
    adminKey: config.admin.key,
    providerTypes: live.providerTypes,
    reservationTtlMs: g.reservationTtlMs,
    leases: g.leases,
    defaultMaxOutputTokens: g.defaultMaxOutputTokens,
    unpricedModels: g.unpricedModels,
    whenStoreDown: g.whenStoreDown,
    chargeHits: config.cache.chargeHits,
    logger,
    adminsExist: () => plane?.adminsExist() ?? false,
  });
  const cache = await createCache(config, live.current.providers, resolve, logger);
  metrics.addCache(cache);
  // Admin writes on this instance take effect here at once; other instances see them within a poll.
  const admin = createAdmin(store, undefined, () => governor.invalidate());
  plane = await createAdminPlane({ config, admin, inference: governor.authenticate, logger, database });
  const adminPlane = plane;
  // Admin-made providers go live before the port opens; a wrong master key stops the start here.
  let providerAdmin: ProviderAdmin;
  try {
    providerAdmin = await createProviderAdmin({ live, logger, store: openProviders(adminPlane.store.backend, createKeyring(config.dataDir)) });
  } catch (err) {
    // Nothing listens yet: release what is open, so a refused start leaves no handles behind.
    await adminPlane.close();
    await Promise.allSettled([live.close(), governor.close(), cache.close(), requestLog?.close(), tracing.shutdown()]);
    await database?.end();
    throw err;
  }
  // The configuration in effect, one snapshot replaced whole by a reload; its live fields go to their owners here.
  const cacheCanEmbed = semanticEmbeddingModel(config.cache.semantic.embeddingModel, live.current.providers) !== undefined;
  const reloader = createConfigReloader({
    initial: config,
    file: options.configFile?.path,
    load: options.configFile?.load,
    logger,
    apply(next) {
      const m = next.cache.mode;
      if ((m === "semantic" || m === "both") && !cacheCanEmbed) {
        throw new ConfigError(`invalid configuration: cache.mode: '${m}' needs an embedding model (cache.semantic.embeddingModel), and setting one takes a restart`);
      }
      // Routing first: it is the part that can still refuse.
      live.replaceConfig(next);
      governor.setStaticKeys(next.auth.keys);
      cache.setDefaults({ mode: m, ttlSeconds: next.cache.ttlSeconds, threshold: next.cache.semantic.threshold });
    },
    audit: (e) => void adminPlane.audit.record({
      actorId: "system",
      actorLabel: e.trigger === "signal" ? "system (SIGHUP)" : "system (config file changed)",
      action: "config.reload",
      target: `config:${e.file}`,
      before: e.before,
      after: e.after,
      outcome: e.outcome,
    }).catch((err: unknown) => logger.error("audit write failed", { error: err })),
  });
  metrics.addGauge("switchyard_governance_store_up", "1 when the governance store (embedded, or Redis) answers; 0 while governed requests are refused.", () => (store.healthy() ? 1 : 0));
  metrics.addCounter("switchyard_governance_settle_failures_total", "Spend records given up on (the store was unreachable and too many were waiting, or the gateway stopped).", () => governor.settleFailures());
  metrics.addGauge("switchyard_governance_pending_settles", "Spend records waiting for the governance store to answer again.", () => governor.pendingSettles());
  metrics.addGauge("switchyard_governance_degraded", "1 while rate limits are counted locally because the governance store is unreachable.", () => (governor.degraded() === undefined ? 0 : 1));
  metrics.addCounter("switchyard_governance_degraded_requests_total", "Requests admitted on local counters while the governance store was unreachable.", () => governor.degradedRequests());
  // Two stages at the grace deadline: `deadline` ends the pipeline's streams with an error event
  // in their own protocol; `shutdown` (connect's shutdownSignal) then aborts what is left of RPCs.
  const deadline = new AbortController();
  const pipeline = createPipeline({
    plan: (input) => live.current.plan(input),
    health: routingHealth,
    // Each request reads the live configuration's retry settings once.
    get retry() {
      return reloader.current.config.routing;
    },
    catalog: live.catalog,
    observer: composeObservers(metrics, logger, requestLog, options.onRecord),
    tracing,
    captureBodies: requestLog !== undefined && rl.bodies,
    logger,
    governor,
    cache,
    shutdown: deadline.signal,
  });
  const authenticate = governor.authenticate;
  const health = createHealth();
  for (const s of SERVICES) health.setStatus(s, "SERVING");
  let ready = true;
  const shutdown = new AbortController();

  const responseStore = g.store === "redis"
    ? await createRedisResponseStore({ url: g.redis.url, prefix: g.redis.prefix, commandTimeoutMs: g.redis.commandTimeoutMs })
    : createSqliteResponseStore(join(config.dataDir, "responses.db"));
  const responsesApi = createResponsesApi({ pipeline, responses: {
    store: responseStore,
    scope: config.responses.scope,
    ttlMs: config.responses.ttlDays * 86_400_000,
    // OpenAI's own models get the Responses API passed through untouched; everything else is translated.
    passthrough: (model: string): string | undefined => {
      try {
        const s = live.current;
        const id = s.resolve(model).provider.id;
        return s.sources.get(id)?.config.type === "openai" ? id : undefined;
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
    // With degraded mode on (governance.whenStoreDown), an unreachable Redis does not take every instance out of rotation.
    notReady: () => (!ready ? "draining" : !store.healthy() && g.whenStoreDown.rateLimits === "refuse" && g.whenStoreDown.budgets === "refuse" ? "governance store unreachable" : undefined),
    degraded: () => governor.degraded() ?? (store.healthy() ? undefined : "governance store unreachable: rate limits counted locally, budgets per governance.whenStoreDown"),
    scrapeMetrics: () => metrics.scrape(),
    // POST /v1/messages/count_tokens: free, but a virtual key's allowed models and providers apply.
    countTokens: createTokenCounter(resolve, { authorize: (principal, model, target) => { if (principal.kind === "virtual") governor.authorize(principal, { models: [model], targets: [target], primary: [target], promptTokens: 0, maxOutputTokens: 0 }); } }),
  });
  // The admin web UI, built into ui/dist and held in memory from its first request on (a gateway nobody
  // opens the UI of never reads it).
  let uiHandler: UiHandler | undefined;
  const ui: UiHandler = (req, res) => (uiHandler ??= createUiHandler(new URL("../ui/dist/", import.meta.url)))(req, res);
  const handler = connectNodeAdapter({
    routes(router: ConnectRouter) {
      registerServices(router, pipeline);
      registerResponsesService(router, responsesApi);
      // Admin services: every call authorized by the permission table (server/admin/access.ts) and audited.
      const o = adminPlane.serviceOptions;
      if (requestLog !== undefined) registerLogService(router, requestLog, o);
      registerRoutingService(router, routingHealth, o);
      registerAdminServices(router, admin, o);
      registerCacheService(router, cache.admin, o);
      registerProviderService(router, providerAdmin, o);
      registerConfigService(router, reloader, o);
      adminPlane.register(router);
      health.register(router);
      registerReflection(router, REFLECTED_FILES);
    },
    requestGate: createRequestGate(adminPlane.authenticate, adminPlane.isPublic),
    readMaxBytes: config.server.maxBodyBytes,
    writeMaxBytes: 64 * 1024 * 1024,
    shutdownSignal: shutdown.signal,
    // Every path that is not an RPC: the web UI under /ui/, the REST bridge, or UNIMPLEMENTED for gRPC clients.
    fallback: (req, res) => {
      if (isGrpcRequest(req)) return grpcUnimplemented(req, res);
      // One prefix check keeps the UI's routes off the inference path.
      if (req.url?.startsWith("/ui") && (adminPlane.sso(req, res) || ui(req, res))) return;
      rest(req, res);
    },
  });

  // The audit log records the caller's address from the socket, never from a header the caller sent.
  const server: OnePortServer = await listenOnePort((req, res) => {
    if (req.url?.startsWith("/switchyard.v1.")) markPeer(req);
    handler(req, res);
  }, { host: config.server.host, port: config.server.port, tls: tlsFiles });
  live.start();
  if (options.configFile?.watch === true) reloader.watch();
  const host = server.host.includes(":") ? `[${server.host}]` : server.host;
  const scheme = config.server.tls === undefined ? "http" : "https";
  let closing: Promise<void> | undefined;

  return {
    url: `${scheme}://${host}:${server.port}`,
    port: server.port,
    isOpen: () => governor.isOpen(),
    reloadConfig: () => reloader.reload("signal"),
    close(graceMs = config.server.shutdownGraceMs, o = {}) {
      // Idempotent: a second call (a second signal, a test's cleanup) waits for the first.
      closing ??= (async () => {
        ready = false;
        reloader.close();
        health.setStatus("", "NOT_SERVING");
        for (const s of SERVICES) health.setStatus(s, "NOT_SERVING");
        // Watchers have been sent NOT_SERVING; their streams end so they do not hold the drain open.
        health.close();
        await server.close(graceMs, {
          drainDelayMs: o.drainDelayMs ?? 0,
          onDeadline: () => deadline.abort(new GatewayError("unavailable", "gateway shutting down")),
        });
        deadline.abort();
        shutdown.abort();
        await live.close();
        await tracing.shutdown();
        await requestLog?.close();
        await governor.close();
        await cache.close();
        await responseStore.close();
        await providerAdmin.close();
        await adminPlane.close();
        await database?.end();
      })();
      return closing;
    },
  };
}

/** The certificate files named in server.tls, read once at start (a missing file stops the start with its name). */
function readTls(t: Config["server"]["tls"]): TlsOptions | undefined {
  if (t === undefined) return undefined;
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`invalid configuration: server.tls.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  return {
    cert: read(t.certFile, "certFile"),
    key: read(t.keyFile, "keyFile"),
    clientCa: t.clientCaFile === undefined ? undefined : read(t.clientCaFile, "clientCaFile"),
  };
}
