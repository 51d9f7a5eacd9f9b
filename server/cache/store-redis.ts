import { randomUUID } from "node:crypto";
import { connectRedis } from "../redis/connect.ts";
import type { CacheEntry, CacheStats, CacheStore, EntryLabels, PurgeFilter } from "./types.ts";

export interface RedisCacheStoreOptions {
  url: string;
  /** Namespace; every key is "{<prefix>}:…" so all of them share one cluster slot. Default "sy". */
  prefix?: string | undefined;
  /** A command without a reply by then fails (a get becomes a miss). Default 500. */
  commandTimeoutMs?: number | undefined;
  /**
   * The memory the operator gave the cache in Redis, reported by stats(); Redis
   * itself enforces it (maxmemory with an LRU/LFU/TTL policy). When set, an
   * entry larger than a quarter of it is not stored, as in the memory store.
   */
  maxBytes?: number | undefined;
}

/** The Redis cache store, plus its connection state for /readyz and metrics. */
export interface RedisCacheStore extends CacheStore {
  /** True while connected; when false every get is a miss and every set is dropped. */
  healthy(): boolean;
}

/** Entries sampled by stats() to estimate the live count and bytes. */
const STATS_SAMPLE = 64;
/** Entries removed per round trip by purge(). */
const PURGE_BATCH = 500;

/**
 * The response cache shared by every gateway instance. An entry is one binary
 * string, `{P}:c:<key>`, expiring by itself (PX). For purges each entry is
 * also a member of sorted sets, scored by its expiry: `{P}:ci:all` and one
 * per non-empty label (`{P}:ci:key:<id>`, `:team:<id>`, `:customer:<id>`,
 * `:model:<m>`). A set prunes its expired members whenever it is written and
 * carries the TTL of its longest-lived member, so the index stays bounded
 * by the live entries (plain sets would grow forever under steady traffic).
 * Members whose entry is gone (expired, evicted by maxmemory) are harmless:
 * a purge UNLINKs them and counts only keys that existed.
 *
 * get() is one GET; set() is one MULTI. Neither ever throws: an unreachable
 * or slow Redis makes get a miss and set a no-op within the command timeout
 * (no offline queue). purge() and stats() do throw, so an admin sees a purge
 * that did not happen. Needs Redis >= 7.0 (PEXPIRE NX/GT).
 */
export async function createRedisCacheStore(options: RedisCacheStoreOptions): Promise<RedisCacheStore> {
  const P = `{${options.prefix ?? "sy"}}`;
  const commandTimeout = options.commandTimeoutMs ?? 500;
  const maxBytes = options.maxBytes ?? 0;
  // Connection errors surface as misses and healthy() === false.
  const redis = await connectRedis(options.url, commandTimeout);

  const all = `${P}:ci:all`;
  const entryKey = (key: string) => `${P}:c:${key}`;
  const labelIndexes = (l: { keyId: string; teamId: string; customerId: string; model: string }) =>
    [
      l.keyId === "" ? "" : `${P}:ci:key:${l.keyId}`,
      l.teamId === "" ? "" : `${P}:ci:team:${l.teamId}`,
      l.customerId === "" ? "" : `${P}:ci:customer:${l.customerId}`,
      l.model === "" ? "" : `${P}:ci:model:${l.model}`,
    ].filter((k) => k !== "");

  /** Scans `source` and removes its members' entries and their `all` and `indexes` memberships; returns entries that existed. */
  async function removeMembers(source: string, indexes: readonly string[]): Promise<number> {
    let removed = 0;
    let cursor = "0";
    do {
      const [next, flat] = await redis.zscan(source, cursor, "COUNT", PURGE_BATCH);
      cursor = next;
      const members = flat.filter((_, i) => i % 2 === 0);
      if (members.length === 0) continue;
      const batch = redis.pipeline().unlink(...members.map(entryKey)).zrem(all, ...members);
      for (const index of indexes) batch.zrem(index, ...members);
      const results = check(await batch.exec());
      removed += Number(results[0]);
    } while (cursor !== "0");
    return removed;
  }

  return {
    kind: "redis",

    async get(key: string, now: number): Promise<CacheEntry | undefined> {
      try {
        const buf = await redis.getBuffer(entryKey(key));
        if (buf === null) return undefined;
        const entry = decodeEntry(buf);
        return entry !== undefined && entry.expiresAt > now ? entry : undefined;
      } catch {
        return undefined;
      }
    },

    async set(key: string, entry: CacheEntry): Promise<void> {
      try {
        const now = Date.now();
        const ttl = Math.ceil(entry.expiresAt - now);
        const buf = encodeEntry(entry);
        if (ttl <= 0 || (maxBytes > 0 && buf.byteLength > maxBytes / 4)) {
          // Not stored, but it still replaces: an older answer under this key must not outlive it.
          await redis.unlink(entryKey(key));
          return;
        }
        const tx = redis.multi().set(entryKey(key), buf, "PX", ttl);
        for (const index of [all, ...labelIndexes(entry.labels)]) {
          // NX gives a new set a TTL; GT only ever extends it, so no member outlives its index.
          tx.zremrangebyscore(index, "-inf", now).zadd(index, entry.expiresAt, key).pexpire(index, ttl, "NX").pexpire(index, ttl, "GT");
        }
        await tx.exec();
      } catch {
        // A cache write that fails is a later miss, nothing more.
      }
    },

    async purge(filter: PurgeFilter): Promise<number> {
      const wanted = [filter.keyId, filter.teamId, filter.customerId, filter.model];
      // "" means "none" on an entry; a purge for it matches nothing (as in the memory store).
      if (wanted.some((v) => v === "")) return 0;
      const indexes = labelIndexes({
        keyId: filter.keyId ?? "",
        teamId: filter.teamId ?? "",
        customerId: filter.customerId ?? "",
        model: filter.model ?? "",
      });
      if (indexes.length === 0) return removeMembers(all, []);
      if (indexes.length === 1) return removeMembers(indexes[0], indexes);
      // Several labels: intersect into a short-lived set of our own, then remove its members.
      const tmp = `${P}:ct:${randomUUID()}`;
      try {
        check(await redis.multi().zinterstore(tmp, indexes.length, ...indexes).pexpire(tmp, 60_000).exec());
        return await removeMembers(tmp, indexes);
      } finally {
        await redis.unlink(tmp).catch(() => undefined);
      }
    },

    /**
     * `entries` and `bytes` are estimated from up to 64 random index members
     * (exact below that): the share whose entry still exists, and their mean
     * encoded size (value, labels and a 25-byte header; Redis's own per-key
     * overhead and the index sets are not counted). Redis evicts and expires
     * on its own, so `evictions` and `expired` are 0.
     */
    async stats(): Promise<CacheStats> {
      const [total, sample] = check(await redis.pipeline().zcard(all).zrandmember(all, STATS_SAMPLE).exec()) as [number, string[]];
      let entries = 0;
      let bytes = 0;
      if (sample.length > 0) {
        const lengths = check(await sample.reduce((p, m) => p.strlen(entryKey(m)), redis.pipeline()).exec()).map(Number);
        const live = lengths.filter((n) => n > 0);
        entries = Math.round((total * live.length) / sample.length);
        bytes = live.length === 0 ? 0 : Math.round((entries * live.reduce((a, b) => a + b, 0)) / live.length);
      }
      return { entries, bytes, maxBytes, evictions: 0, expired: 0 };
    },

    healthy: () => redis.status === "ready",

    async close(): Promise<void> {
      if (redis.status === "ready") await redis.quit().catch(() => undefined);
      redis.disconnect();
    },
  };
}

/** The replies of a pipeline or transaction, throwing the first error. */
function check(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (results === null) throw new Error("redis transaction aborted");
  return results.map(([err, reply]) => {
    if (err) throw err;
    return reply;
  });
}

const FORMAT_VERSION = 1;
/** Version byte, then costUsd, createdAt, expiresAt as float64 LE. */
const HEADER_BYTES = 1 + 3 * 8;
const LABEL_FIELDS = ["scope", "keyId", "teamId", "customerId", "model"] as const satisfies ReadonlyArray<keyof EntryLabels>;

/** One Buffer: header, each label as u32 LE length + UTF-8, then the value bytes to the end. */
function encodeEntry(e: CacheEntry): Buffer {
  const labels = LABEL_FIELDS.map((f) => Buffer.from(e.labels[f], "utf8"));
  const size = HEADER_BYTES + labels.reduce((n, b) => n + 4 + b.byteLength, 0) + e.value.byteLength;
  const buf = Buffer.allocUnsafe(size);
  buf.writeUInt8(FORMAT_VERSION, 0);
  buf.writeDoubleLE(e.costUsd, 1);
  buf.writeDoubleLE(e.createdAt, 9);
  buf.writeDoubleLE(e.expiresAt, 17);
  let off = HEADER_BYTES;
  for (const b of labels) {
    off = buf.writeUInt32LE(b.byteLength, off);
    off += b.copy(buf, off);
  }
  buf.set(e.value, off);
  return buf;
}

/** The entry, or undefined for bytes this version cannot read (a miss, never an error). */
function decodeEntry(buf: Buffer): CacheEntry | undefined {
  if (buf.byteLength < HEADER_BYTES || buf.readUInt8(0) !== FORMAT_VERSION) return undefined;
  let off = HEADER_BYTES;
  const labels: string[] = [];
  for (let i = 0; i < LABEL_FIELDS.length; i++) {
    if (off + 4 > buf.byteLength) return undefined;
    const len = buf.readUInt32LE(off);
    off += 4;
    if (off + len > buf.byteLength) return undefined;
    labels.push(buf.toString("utf8", off, off + len));
    off += len;
  }
  const [scope, keyId, teamId, customerId, model] = labels;
  return {
    labels: { scope, keyId, teamId, customerId, model },
    // A copy: the reply buffer may share memory with other replies.
    value: new Uint8Array(buf.subarray(off)),
    costUsd: buf.readDoubleLE(1),
    createdAt: buf.readDoubleLE(9),
    expiresAt: buf.readDoubleLE(17),
  };
}
