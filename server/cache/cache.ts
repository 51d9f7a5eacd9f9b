import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { ChatCompletionSchema, type ChatCompletion, type ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import type { Principal } from "../governance/authenticate.ts";
import { tenantScope } from "../governance/scope.ts";
import type { CacheMode, CachePolicy } from "../governance/types.ts";
import type { Logger } from "../telemetry/log.ts";
import type { CacheAdmin, CacheAdminStats } from "./admin-api.ts";
import { createVectorIndex, type VectorIndex } from "./ann.ts";
import { exactKey, partitionKey, promptText, type Endpoint } from "./key.ts";
import type { SemanticRecord } from "./semantic-feed.ts";
import type { CacheStore, EntryLabels, PurgeFilter } from "./types.ts";

export type CacheStatus = "hit" | "semantic-hit" | "miss" | "bypass";

/** Semantic partitions (tenant x target x parameters x history) kept at once; about 130 KB each when nearly empty. */
const MAX_PARTITIONS = 512;

/** What a caller asked of the cache for one request (headers). */
export interface CacheDirectives {
  /** Cache-Control: no-cache: do not answer from the cache; still store. */
  noCache: boolean;
  /** Cache-Control: no-store: neither look up nor store. */
  noStore: boolean;
  /** x-switchyard-cache-ttl: seconds; only shortens the configured TTL. */
  ttlSeconds: number | undefined;
  /** x-switchyard-cache-threshold: only raises the configured similarity threshold. */
  threshold: number | undefined;
}

export interface CacheOptions {
  store: CacheStore;
  mode: CacheMode;
  ttlSeconds: number;
  scope: "customer" | "team" | "key";
  storeMultipleChoices: boolean;
  semantic: {
    /** Embeds a prompt with the gateway's own embedding model; undefined when none is configured. */
    embed: ((text: string, signal: AbortSignal) => Promise<Float32Array>) | undefined;
    threshold: number;
    prompt: "last_user" | "conversation";
    withTools: boolean;
    maxTemperature: number;
    maxEntries: number;
    /** Shares each stored prompt vector with other instances (Redis); absent: this instance's index only. */
    publish?: ((r: SemanticRecord) => void) | undefined;
  };
  logger: Logger;
}

/** One request's dealings with the cache: the lookup's outcome, and what storing its answer needs. */
export interface CacheTicket {
  status: CacheStatus;
  /** The answer, on a hit (a fresh object the caller may change). */
  completion?: ChatCompletion | undefined;
  similarity?: number | undefined;
  /** On a hit: what the answer cost when it was made (saved now). */
  savedUsd: number;
  /** Set when the answer may be stored. */
  store?: { key: string; labels: EntryLabels; ttlMs: number; partition?: string | undefined; vector?: Float32Array | undefined } | undefined;
}

export interface ResponseCache {
  /**
   * Looks a chat request up for a principal, after it was authorized and
   * before anything is reserved. Undefined: the cache is off for this
   * caller. Never throws: a broken store or embedding call is a miss.
   */
  lookup(
    principal: Principal, req: ChatRequest, target: string, directives: CacheDirectives | undefined, signal: AbortSignal, endpoint: Endpoint,
    /** Runs before a semantic lookup's embedding call (governance reserves there); may throw a refusal. */
    beforeEmbedding?: () => void | Promise<void>,
  ): Promise<CacheTicket | undefined>;
  /** Stores a complete, successful answer (in the background; never throws). */
  save(ticket: CacheTicket, completion: ChatCompletion, costUsd: number): void;
  /** Indexes a prompt vector another instance stored (its entry is in the shared store). */
  remember(r: SemanticRecord): void;
  readonly admin: CacheAdmin;
  /** Replaces the configured defaults (a reloaded configuration); keys, teams and customers still override them. */
  setDefaults(d: CacheDefaults): void;
  close(): Promise<void>;
}

/** The configuration's cache settings that can change while running. */
export interface CacheDefaults {
  mode: CacheMode;
  ttlSeconds: number;
  threshold: number;
}

/**
 * The response cache: exact (hash of the canonical request) and semantic
 * (nearest stored prompt of the same tenant, target, parameters and tools,
 * above a similarity threshold). The tenant scope is part of every key and
 * partition. Only complete, successful answers are stored.
 */
export function createResponseCache(o: CacheOptions): ResponseCache {
  const { store, logger } = o;
  const stats = { hits: 0, semanticHits: 0, misses: 0, bypasses: 0, savedUsd: 0 };
  /** Semantic partitions (tenant + target + parameters + tools) -> their index. */
  const partitions = new Map<string, VectorIndex>();
  /** Every semantic entry in insertion order, to keep the total bounded: entry key -> partition. */
  const semanticEntries = new Map<string, string>();

  let defaults: CacheDefaults = { mode: o.mode, ttlSeconds: o.ttlSeconds, threshold: o.semantic.threshold };

  function policy(p: Principal): Required<Pick<CachePolicy, "mode">> & CachePolicy {
    const d = defaults;
    let mode: CacheMode = d.mode;
    let ttlSeconds: number | undefined = d.ttlSeconds;
    let threshold: number | undefined = d.threshold;
    // The most specific level wins, field by field: customer, then team, then key.
    for (const level of [p.customer?.cache, p.team?.cache, p.key?.cache]) {
      if (level === undefined) continue;
      if (level.mode !== undefined) mode = level.mode;
      if (level.ttlSeconds !== undefined) ttlSeconds = level.ttlSeconds;
      if (level.threshold !== undefined) threshold = level.threshold;
    }
    return { mode, ttlSeconds, threshold };
  }

  const scopeOf = (p: Principal): string => tenantScope(p, o.scope);

  /**
   * A partition's index. Their number is bounded too (each holds memory of
   * its own): past MAX_PARTITIONS the oldest partition goes, whole.
   */
  function index(partition: string, dimensions: number): VectorIndex {
    let idx = partitions.get(partition);
    if (idx !== undefined) return idx;
    if (partitions.size >= MAX_PARTITIONS) {
      const oldest = partitions.keys().next().value as string;
      partitions.delete(oldest);
      for (const [k, p] of semanticEntries) if (p === oldest) semanticEntries.delete(k);
    }
    partitions.set(partition, (idx = createVectorIndex({ dimensions, maxEntries: o.semantic.maxEntries })));
    return idx;
  }

  function semanticEligible(req: ChatRequest): boolean {
    if (o.semantic.embed === undefined) return false;
    if (!o.semantic.withTools && req.tools.length > 0) return false;
    return (req.temperature ?? 1) <= o.semantic.maxTemperature;
  }

  async function semanticLookup(partition: string, vector: Float32Array, threshold: number, now: number): Promise<{ key: string; similarity: number; completion: ChatCompletion; cost: number } | undefined> {
    const index = partitions.get(partition);
    if (index === undefined || index.size === 0) return undefined;
    const [best] = index.search(vector, 1);
    if (best === undefined || best.similarity < threshold) return undefined;
    const entry = await store.get(best.id, now);
    if (entry === undefined) {
      // Expired or evicted from the store: its vector goes too.
      index.remove(best.id);
      semanticEntries.delete(best.id);
      return undefined;
    }
    return { key: best.id, similarity: best.similarity, completion: fromBinary(ChatCompletionSchema, entry.value), cost: entry.costUsd };
  }

  function remember(partition: string, key: string, vector: Float32Array): void {
    try {
      index(partition, vector.length).add(key, vector);
    } catch (err) {
      // A vector that cannot be indexed (wrong size, no memory) is a lost hit, never a crash.
      logger.warn("semantic cache: vector not indexed", { error: err });
      return;
    }
    semanticEntries.delete(key);
    semanticEntries.set(key, partition);
    while (semanticEntries.size > o.semantic.maxEntries) {
      const [oldKey, oldPartition] = semanticEntries.entries().next().value as [string, string];
      semanticEntries.delete(oldKey);
      const idx = partitions.get(oldPartition);
      idx?.remove(oldKey);
      if (idx !== undefined && idx.size === 0) partitions.delete(oldPartition);
    }
  }

  return {
    async lookup(principal, req, target, d, signal, endpoint, beforeEmbedding) {
      const pol = policy(principal);
      if (pol.mode === "off") return undefined;
      const ticket: CacheTicket = { status: "bypass", savedUsd: 0 };
      if (d?.noStore === true) {
        stats.bypasses++;
        return ticket;
      }
      const multiple = (req.n ?? 1) > 1;
      if (multiple && !o.storeMultipleChoices) {
        stats.bypasses++;
        return ticket;
      }
      const now = Date.now();
      const scope = scopeOf(principal);
      const ttlSeconds = Math.min(pol.ttlSeconds ?? defaults.ttlSeconds, d?.ttlSeconds ?? Infinity);
      const threshold = Math.max(pol.threshold ?? defaults.threshold, d?.threshold ?? 0);
      const key = exactKey(scope, endpoint, target, req);
      const labels: EntryLabels = {
        scope,
        keyId: principal.key?.id ?? "",
        teamId: principal.team?.id ?? "",
        customerId: principal.customer?.id ?? "",
        model: target,
      };
      // A TTL of 0 asked by the caller: nothing to keep.
      ticket.store = ttlSeconds > 0 ? { key, labels, ttlMs: ttlSeconds * 1000 } : undefined;
      const semantic = (pol.mode === "semantic" || pol.mode === "both") && semanticEligible(req);
      const exact = pol.mode === "exact" || pol.mode === "both";
      if (d?.noCache === true) {
        stats.bypasses++;
      } else {
        if (exact || semantic) {
          // A semantic-only policy still answers the very same request exactly: it is the nearest match there is.
          const entry = await store.get(key, now);
          if (entry !== undefined) {
            stats.hits++;
            stats.savedUsd += entry.costUsd;
            ticket.status = "hit";
            ticket.completion = fromBinary(ChatCompletionSchema, entry.value);
            ticket.savedUsd = entry.costUsd;
            ticket.store = undefined;
            return ticket;
          }
        }
        ticket.status = "miss";
      }
      if (semantic) {
        await beforeEmbedding?.();
        try {
          const partition = partitionKey(scope, endpoint, target, req, o.semantic.prompt);
          const vector = await o.semantic.embed!(promptText(req, o.semantic.prompt), signal);
          if (ticket.store !== undefined) {
            ticket.store.partition = partition;
            ticket.store.vector = vector;
          }
          if (d?.noCache !== true) {
            const near = await semanticLookup(partition, vector, threshold, now);
            if (near !== undefined) {
              stats.hits++;
              stats.semanticHits++;
              stats.savedUsd += near.cost;
              return { status: "semantic-hit", completion: near.completion, similarity: near.similarity, savedUsd: near.cost, store: undefined };
            }
          }
        } catch (err) {
          // No embedding, no semantic answer: the request goes on as a plain miss.
          if (!signal.aborted) logger.warn("semantic cache: embedding failed", { error: err });
        }
      }
      if (ticket.status === "miss") stats.misses++;
      return ticket;
    },

    save(ticket, completion, costUsd) {
      const s = ticket.store;
      if (s === undefined) return;
      const now = Date.now();
      // The gateway's own per-request info is not part of the answer.
      const value = toBinary(ChatCompletionSchema, { ...completion, gateway: undefined });
      void store
        .set(s.key, { labels: s.labels, value, costUsd, createdAt: now, expiresAt: now + s.ttlMs })
        .then(() => {
          if (s.partition === undefined || s.vector === undefined) return;
          const { partition, vector } = s;
          // Indexing a vector takes up to a millisecond in a large index: after the answer has gone out.
          setImmediate(() => remember(partition, s.key, vector));
          o.semantic.publish?.({ partition, key: s.key, vector });
        });
    },

    remember: (r) => remember(r.partition, r.key, r.vector),

    admin: {
      async stats(): Promise<CacheAdminStats> {
        const st = await store.stats();
        return { store: store.kind, ...st, ...stats, semanticEntries: semanticEntries.size };
      },
      async purge(filter: PurgeFilter) {
        const n = await store.purge(filter);
        // Vectors whose entries are gone are dropped when a lookup finds them missing; a full purge drops them now.
        if (Object.keys(filter).length === 0) {
          partitions.clear();
          semanticEntries.clear();
        }
        return n;
      },
    },

    setDefaults(next) {
      defaults = { ...next };
    },
    close: () => store.close(),
  };
}

/** The request's cache headers: Cache-Control no-cache / no-store, x-switchyard-cache-ttl and -threshold. */
export function cacheDirectives(header: (name: string) => string | null | undefined): CacheDirectives | undefined {
  const cc = header("cache-control");
  const ttl = header("x-switchyard-cache-ttl");
  const threshold = header("x-switchyard-cache-threshold");
  if (!cc && !ttl && !threshold) return undefined;
  const lower = cc?.toLowerCase() ?? "";
  const ttlN = ttl ? Number(ttl) : NaN;
  const thN = threshold ? Number(threshold) : NaN;
  return {
    noCache: /(^|[\s,])no-cache([\s,;=]|$)/.test(lower),
    noStore: /(^|[\s,])no-store([\s,;=]|$)/.test(lower),
    ttlSeconds: Number.isFinite(ttlN) && ttlN >= 0 ? ttlN : undefined,
    threshold: Number.isFinite(thN) && thN > 0 && thN <= 1 ? thN : undefined,
  };
}

/**
 * The embedding model the semantic cache uses: the configured one, else
 * OpenAI's small model when an `openai` provider exists; undefined when
 * there is none (a semantic mode is then a configuration error).
 */
export function semanticEmbeddingModel(configured: string | undefined, providers: { has(id: string): boolean }): string | undefined {
  return configured ?? (providers.has("openai") ? "openai/text-embedding-3-small" : undefined);
}
