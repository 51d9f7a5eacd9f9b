import type { ConnectRouter } from "@connectrpc/connect";
import { CacheService } from "../../gen/switchyard/v1/cache_pb.ts";
import { purgeFilterOf, type CacheAdmin } from "../cache/admin-api.ts";
import { asAdmin, type ServiceOptions } from "./admin.ts";

/**
 * switchyard.v1.CacheService over the cache admin API
 * (server/cache/admin-api.ts). Authorized by the permission table
 * (server/admin/access.ts), as for the other admin services. This file only maps messages.
 */
export function registerCacheService(router: ConnectRouter, cache: CacheAdmin, options: ServiceOptions): void {
  router.service(CacheService, {
    getCacheStats: (_req, ctx) =>
      asAdmin(ctx, async () => {
        const s = await cache.stats();
        return {
          entries: count(s.entries),
          bytes: count(s.bytes),
          maxBytes: count(s.maxBytes),
          evictions: count(s.evictions),
          expired: count(s.expired),
          hits: count(s.hits),
          semanticHits: count(s.semanticHits),
          misses: count(s.misses),
          bypasses: count(s.bypasses),
          savedUsd: Number.isFinite(s.savedUsd) ? s.savedUsd : 0,
          semanticEntries: count(s.semanticEntries),
          store: s.store,
        };
      }),
    purgeCache: (req, ctx) =>
      asAdmin(ctx, async () => {
        const filter = purgeFilterOf({ keyId: req.keyId, teamId: req.teamId, customerId: req.customerId, model: req.model, all: req.all });
        return { purged: count(await cache.purge(filter)) };
      }),
  }, options);
}

/** A counter as uint64: stores report plain numbers, maybe fractional or NaN when broken. */
function count(n: number): bigint {
  return Number.isFinite(n) && n > 0 ? BigInt(Math.trunc(n)) : 0n;
}
