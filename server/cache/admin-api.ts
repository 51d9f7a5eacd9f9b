/**
 * The response cache as the admin API sees it: counters to read and entries
 * to purge. The RPC service (server/rpc/cache.ts) maps messages onto this;
 * the app implements it over the cache it builds. Transport-free, like
 * server/governance/admin.ts.
 */
import { invalid } from "../errors/errors.ts";
import type { PurgeFilter } from "./types.ts";

/** Counters since the gateway started, plus the store's size and bounds. */
export interface CacheAdminStats {
  store: "memory" | "redis";
  entries: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
  expired: number;
  /** Lookups answered from the cache, exact or semantic. */
  hits: number;
  /** Of those, answered by the semantic index. */
  semanticHits: number;
  misses: number;
  /** Lookups skipped: cache off for the caller, or a bypass asked for. */
  bypasses: number;
  /** What the hits would have cost upstream, USD. */
  savedUsd: number;
  semanticEntries: number;
}

/** What the admin API needs of the cache; the integrator implements it. */
export interface CacheAdmin {
  stats(): Promise<CacheAdminStats>;
  /** Removes the entries matching every field set; returns how many. An empty filter removes everything. */
  purge(filter: PurgeFilter): Promise<number>;
}

/** A purge request as callers give it: every field set must match; `all` alone removes everything. */
export interface PurgeRequest {
  keyId?: string | undefined;
  teamId?: string | undefined;
  customerId?: string | undefined;
  model?: string | undefined;
  all?: boolean | undefined;
}

/**
 * The store filter for a purge request. An empty filter wipes the cache, so
 * it must be asked for with `all` and nothing else; fields given must not be
 * blank (a blank id would otherwise read as "no filter").
 */
export function purgeFilterOf(req: PurgeRequest): PurgeFilter {
  const filter: PurgeFilter = {};
  for (const [field, param] of [["keyId", "key_id"], ["teamId", "team_id"], ["customerId", "customer_id"], ["model", "model"]] as const) {
    const v = req[field];
    if (v === undefined) continue;
    if (typeof v !== "string" || v.trim() === "" || v.length > 256) throw invalid(`${param}: 1 to 256 characters, not blank`, param);
    filter[field] = v;
  }
  const empty = Object.keys(filter).length === 0;
  if (req.all === true && !empty) throw invalid("all: purges every entry; give it alone, without key_id, team_id, customer_id or model", "all");
  if (req.all !== true && empty) throw invalid("filter: give key_id, team_id, customer_id or model, or all=true to purge every entry", "all");
  return filter;
}
