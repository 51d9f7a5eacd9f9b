/**
 * The response cache's storage contract. Two stores implement it: in memory
 * (an LRU bounded by bytes, the embedded default) and Redis (shared by every
 * instance). Entries are opaque bytes to the store; the pipeline encodes
 * and decodes them. Every entry belongs to one tenant scope, and nothing
 * crosses scopes: the scope is part of the key and of every purge.
 */

/** Labels an entry carries, for purges and the admin API; never secrets. */
export interface EntryLabels {
  /** The tenant boundary the entry lives in ("customer:acme", "team:research", "key:key_…", "anonymous"). */
  scope: string;
  /** Who stored it, for purges by key, team or customer ("" when none). */
  keyId: string;
  teamId: string;
  customerId: string;
  /** "provider/model" that produced it. */
  model: string;
}

export interface CacheEntry {
  labels: EntryLabels;
  /** The encoded answer (the pipeline's format). */
  value: Uint8Array;
  /** What the answer cost when it was made, USD (the saving on each hit). */
  costUsd: number;
  /** Epoch ms. */
  createdAt: number;
  expiresAt: number;
}

export interface PurgeFilter {
  keyId?: string | undefined;
  teamId?: string | undefined;
  customerId?: string | undefined;
  model?: string | undefined;
  /** No field set: everything. */
}

export interface CacheStats {
  entries: number;
  bytes: number;
  maxBytes: number;
  evictions: number;
  expired: number;
}

export interface CacheStore {
  readonly kind: "memory" | "redis";
  /** The live entry under `key`, or undefined (missing or expired). Never throws: a broken store is a miss. */
  get(key: string, now: number): Promise<CacheEntry | undefined>;
  /** Stores (replacing) an entry; evicts least-recently-used entries to stay within the byte bound. Never throws. */
  set(key: string, entry: CacheEntry): Promise<void>;
  /** Removes matching entries; returns how many. */
  purge(filter: PurgeFilter): Promise<number>;
  stats(): Promise<CacheStats>;
  close(): Promise<void>;
}
