import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMemoryCacheStore } from "../server/cache/store-memory.ts";
import { createRedisCacheStore } from "../server/cache/store-redis.ts";
import type { CacheEntry, CacheStore, EntryLabels, PurgeFilter } from "../server/cache/types.ts";
import { startRedis, type RunningRedis } from "./support/redis.ts";

/** One implementation under the shared contract: `open` gives an empty store of its own. */
interface Subject {
  name: string;
  open(): Promise<CacheStore>;
}

let redis: RunningRedis | undefined;
let prefixes = 0;
const open: CacheStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.stop();
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

async function track<T extends CacheStore>(store: Promise<T> | T): Promise<T> {
  const s = await store;
  open.push(s);
  return s;
}

const subjects: Subject[] = [
  { name: "memory", open: () => track(createMemoryCacheStore({ maxBytes: 16 * 1024 * 1024 })) },
  // A fresh prefix per store keeps tests apart without flushing.
  { name: "redis", open: () => track(createRedisCacheStore({ url: redis!.url, prefix: `t${++prefixes}` })) },
];

function labels(extra: Partial<EntryLabels> = {}): EntryLabels {
  return { scope: "team:a", keyId: "key_1", teamId: "a", customerId: "acme", model: "openai/gpt-4o", ...extra };
}

function entry(value: Uint8Array | string, extra: Partial<CacheEntry> = {}): CacheEntry {
  const now = Date.now();
  const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
  return { labels: labels(), value: bytes, costUsd: 0.0125, createdAt: now, expiresAt: now + 60_000, ...extra };
}

const text = (e: CacheEntry | undefined) => (e === undefined ? undefined : new TextDecoder().decode(e.value));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(subjects)("$name cache store contract", (subject) => {
  it("returns exactly the bytes and labels it stored", async () => {
    const store = await subject.open();
    const value = Uint8Array.from({ length: 512 }, (_, i) => i % 256);
    const stored = entry(value, {
      labels: labels({ scope: "customer:ácme", keyId: "key_✓", teamId: "", customerId: "ácme", model: "anthropic/claude-sonnet-4-5" }),
      costUsd: 0.1 + 0.2,
    });
    await store.set("k1", stored);
    const got = await store.get("k1", Date.now());
    expect(got).toBeDefined();
    expect(got!.value).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(got!.value).equals(Buffer.from(value))).toBe(true);
    expect(got!.labels).toEqual(stored.labels);
    expect([got!.costUsd, got!.createdAt, got!.expiresAt]).toEqual([stored.costUsd, stored.createdAt, stored.expiresAt]);
    expect(await store.get("missing", Date.now())).toBeUndefined();
  });

  it("stores a copy: changing the caller's buffer later changes nothing", async () => {
    const store = await subject.open();
    const value = new TextEncoder().encode("original");
    await store.set("k", entry(value));
    value.fill(0);
    expect(text(await store.get("k", Date.now()))).toBe("original");
  });

  it("is a miss at and after expiresAt, and expired entries go away", async () => {
    const store = await subject.open();
    const now = Date.now();
    await store.set("long", entry("a", { expiresAt: now + 60_000 }));
    expect(text(await store.get("long", now + 59_999))).toBe("a");
    expect(await store.get("long", now + 60_000)).toBeUndefined();

    await store.set("short", entry("b", { expiresAt: Date.now() + 40 }));
    await sleep(80);
    expect(await store.get("short", Date.now())).toBeUndefined();
    // An entry already expired when set is not stored.
    await store.set("past", entry("c", { expiresAt: Date.now() - 1 }));
    expect(await store.get("past", Date.now() - 10_000)).toBeUndefined();
  });

  it("replaces an entry under the same key", async () => {
    const store = await subject.open();
    await store.set("k", entry("first"));
    await store.set("k", entry("second", { costUsd: 2 }));
    const got = await store.get("k", Date.now());
    expect(text(got)).toBe("second");
    expect(got!.costUsd).toBe(2);
    expect((await store.stats()).entries).toBe(1);
  });

  it("counts entries and bytes", async () => {
    const store = await subject.open();
    await store.set("a", entry(new Uint8Array(1000)));
    await store.set("b", entry(new Uint8Array(3000)));
    const stats = await store.stats();
    expect(stats.entries).toBe(2);
    expect(stats.bytes).toBeGreaterThanOrEqual(4000);
    expect(stats.bytes).toBeLessThan(8000);
  });

  describe("purge", () => {
    /** Two teams under one customer, a team of another customer, and an anonymous entry. */
    const population: Record<string, EntryLabels> = {
      a1: labels({ scope: "team:a", keyId: "k1", teamId: "a", customerId: "acme", model: "openai/gpt-4o" }),
      a2: labels({ scope: "team:a", keyId: "k2", teamId: "a", customerId: "acme", model: "anthropic/claude" }),
      r1: labels({ scope: "team:r", keyId: "k3", teamId: "r", customerId: "acme", model: "openai/gpt-4o" }),
      b1: labels({ scope: "team:b", keyId: "k4", teamId: "b", customerId: "globex", model: "openai/gpt-4o" }),
      anon: labels({ scope: "anonymous", keyId: "", teamId: "", customerId: "", model: "openai/gpt-4o" }),
    };
    const cases: Array<[string, PurgeFilter, string[]]> = [
      ["key", { keyId: "k1" }, ["a1"]],
      ["team", { teamId: "a" }, ["a1", "a2"]],
      ["customer", { customerId: "acme" }, ["a1", "a2", "r1"]],
      ["other customer", { customerId: "globex" }, ["b1"]],
      ["model", { model: "openai/gpt-4o" }, ["a1", "r1", "b1", "anon"]],
      ["team and model", { teamId: "a", model: "openai/gpt-4o" }, ["a1"]],
      ["customer, team and key", { customerId: "acme", teamId: "r", keyId: "k3" }, ["r1"]],
      ["no match", { teamId: "nobody" }, []],
      ["disjoint labels", { teamId: "a", customerId: "globex" }, []],
      ["an empty label (matches nothing, not every unlabelled entry)", { teamId: "" }, []],
      ["all", {}, ["a1", "a2", "r1", "b1", "anon"]],
    ];

    it.each(cases)("by %s removes exactly the matching entries", async (_, filter, gone) => {
      const store = await subject.open();
      for (const [key, l] of Object.entries(population)) await store.set(key, entry(key, { labels: l }));
      expect(await store.purge(filter)).toBe(gone.length);
      for (const key of Object.keys(population)) {
        expect(text(await store.get(key, Date.now())), key).toBe(gone.includes(key) ? undefined : key);
      }
      expect((await store.stats()).entries).toBe(Object.keys(population).length - gone.length);
      expect(await store.purge(filter)).toBe(0);
    });
  });
});

describe("memory cache store", () => {
  it("stays within maxBytes under a flood, keeps what is used, and counts evictions", async () => {
    const maxBytes = 4 * 1024 * 1024;
    const store = await track(createMemoryCacheStore({ maxBytes }));
    const value = new Uint8Array(64 * 1024);
    await store.set("hot", entry(value));
    for (let i = 0; i < 2000; i++) {
      await store.set(`flood-${i}`, entry(value));
      expect(await store.get("hot", Date.now())).toBeDefined();
      if (i % 50 === 0) expect((await store.stats()).bytes).toBeLessThanOrEqual(maxBytes);
    }
    const stats = await store.stats();
    expect(stats.bytes).toBeLessThanOrEqual(maxBytes);
    expect(stats.bytes).toBeGreaterThan(maxBytes - 2 * 66 * 1024);
    expect(stats.maxBytes).toBe(maxBytes);
    expect(stats.entries).toBeGreaterThan(50);
    expect(stats.evictions).toBe(2001 - stats.entries);
    expect(await store.get("flood-1999", Date.now())).toBeDefined();
    expect(await store.get("flood-0", Date.now())).toBeUndefined();
  });

  /** Entries of 1,000 value bytes take about 1,550 with key, labels and overhead: four fit in this bound, five do not. */
  const FOUR = 6400;

  it("evicts the least recently used first", async () => {
    const store = await track(createMemoryCacheStore({ maxBytes: FOUR }));
    const value = new Uint8Array(1000);
    for (const k of ["a", "b", "c", "d"]) await store.set(k, entry(value));
    await store.get("a", Date.now());
    await store.set("e", entry(value));
    await store.set("f", entry(value));
    const live = [];
    for (const k of ["a", "b", "c", "d", "e", "f"]) if (await store.get(k, Date.now())) live.push(k);
    expect(live).toEqual(["a", "d", "e", "f"]);
    expect((await store.stats()).evictions).toBe(2);
  });

  it("does not store an entry larger than a quarter of maxBytes, and drops the one it replaces", async () => {
    const store = await track(createMemoryCacheStore({ maxBytes: 1024 * 1024 }));
    await store.set("k", entry("small"));
    await store.set("k", entry(new Uint8Array(300 * 1024)));
    expect(await store.get("k", Date.now())).toBeUndefined();
    expect(await store.stats()).toMatchObject({ entries: 0, bytes: 0, evictions: 0 });
  });

  it("counts expired entries found by a get or in the way of a set", async () => {
    const store = await track(createMemoryCacheStore({ maxBytes: FOUR }));
    await store.set("x", entry(new Uint8Array(1000), { expiresAt: Date.now() + 30 }));
    await store.set("y", entry(new Uint8Array(1000), { expiresAt: Date.now() + 30 }));
    await sleep(50);
    expect(await store.get("x", Date.now())).toBeUndefined();
    // y is the least recently used and expired: making room for d counts it as expired; e then evicts a.
    for (const k of ["a", "b", "c", "d", "e"]) await store.set(k, entry(new Uint8Array(1000)));
    expect(await store.stats()).toMatchObject({ entries: 4, expired: 2, evictions: 1 });
  });

  it("keeps live entries across close and reopen when given a path", async () => {
    // A folder that does not exist yet: the store creates it.
    const path = join(mkdtempSync(join(tmpdir(), "sy-cache-")), "nested", "cache.db");
    const first = createMemoryCacheStore({ maxBytes: 1024 * 1024, path });
    const kept = entry(Uint8Array.from([0, 1, 2, 255]), { labels: labels({ scope: "customer:ácme" }), costUsd: 0.3 });
    await first.set("kept", kept);
    await first.set("purged", entry("p", { labels: labels({ teamId: "gone" }) }));
    await first.set("replaced", entry("old"));
    await first.set("replaced", entry("new"));
    await first.set("short", entry("s", { expiresAt: Date.now() + 30 }));
    expect(await first.purge({ teamId: "gone" })).toBe(1);
    await first.close();
    await sleep(40);

    const second = await track(createMemoryCacheStore({ maxBytes: 1024 * 1024, path }));
    const got = await second.get("kept", Date.now());
    expect(got).toEqual(kept);
    expect(text(await second.get("replaced", Date.now()))).toBe("new");
    expect(await second.get("purged", Date.now())).toBeUndefined();
    expect(await second.get("short", 0)).toBeUndefined();
    expect((await second.stats()).entries).toBe(2);
  });

  it("reloads within a smaller bound, newest first", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "sy-cache-")), "cache.db");
    const first = createMemoryCacheStore({ maxBytes: 1024 * 1024, path });
    const t = Date.now();
    for (let i = 0; i < 10; i++) await first.set(`k${i}`, entry(new Uint8Array(1000), { createdAt: t + i }));
    await first.close();
    const second = await track(createMemoryCacheStore({ maxBytes: FOUR, path }));
    const stats = await second.stats();
    expect(stats).toMatchObject({ entries: 4, evictions: 6 });
    expect(stats.bytes).toBeLessThanOrEqual(FOUR);
    expect(await second.get("k9", Date.now())).toBeDefined();
    expect(await second.get("k0", Date.now())).toBeUndefined();
  });
});

describe("redis cache store", () => {
  it("shares entries between instances at once", async () => {
    const prefix = `t${++prefixes}`;
    const a = await track(createRedisCacheStore({ url: redis!.url, prefix }));
    const b = await track(createRedisCacheStore({ url: redis!.url, prefix }));
    await a.set("k", entry("from a"));
    expect(text(await b.get("k", Date.now()))).toBe("from a");
    await b.set("k", entry("from b"));
    expect(text(await a.get("k", Date.now()))).toBe("from b");
    expect(await b.purge({ teamId: "a" })).toBe(1);
    expect(await a.get("k", Date.now())).toBeUndefined();
  });

  it("keeps every key under its prefix, and the indexes bounded by live entries with a TTL", async () => {
    const prefix = `t${++prefixes}`;
    const store = await track(createRedisCacheStore({ url: redis!.url, prefix }));
    const raw = new Redis(redis!.url);
    try {
      for (const k of ["x", "y", "z"]) await store.set(k, entry(k, { expiresAt: Date.now() + 30 }));
      await sleep(50);
      await store.set("live", entry("live"));
      expect(await raw.zcard(`{${prefix}}:ci:all`)).toBe(1);
      expect(await raw.zcard(`{${prefix}}:ci:team:a`)).toBe(1);
      const pttl = await raw.pttl(`{${prefix}}:ci:team:a`);
      expect(pttl).toBeGreaterThan(50_000);
      expect(pttl).toBeLessThanOrEqual(60_000);
      // A shorter-lived entry never shortens an index's TTL.
      await store.set("brief", entry("brief", { expiresAt: Date.now() + 5_000 }));
      expect(await raw.pttl(`{${prefix}}:ci:team:a`)).toBeGreaterThan(50_000);
      const keys = await raw.keys("*");
      expect(keys.filter((k) => k.includes(`{${prefix}}`)).every((k) => k.startsWith(`{${prefix}}:`))).toBe(true);
      expect(await raw.pttl(`{${prefix}}:c:live`)).toBeGreaterThan(50_000);
    } finally {
      raw.disconnect();
    }
  });

  it("does not store an entry larger than a quarter of maxBytes", async () => {
    const store = await track(createRedisCacheStore({ url: redis!.url, prefix: `t${++prefixes}`, maxBytes: 1024 * 1024 }));
    await store.set("k", entry("small"));
    await store.set("k", entry(new Uint8Array(300 * 1024)));
    expect(await store.get("k", Date.now())).toBeUndefined();
    expect((await store.stats()).maxBytes).toBe(1024 * 1024);
  });

  it("treats an unreachable Redis as misses and dropped writes, quickly and without throwing", async () => {
    // A port nothing listens on: the one our Redis had before it was stopped.
    const gone = await startRedis();
    await gone.stop();
    const store = await track(createRedisCacheStore({ url: gone.url }));
    const started = performance.now();
    expect(await store.get("k", Date.now())).toBeUndefined();
    await store.set("k", entry("v"));
    expect(await store.get("k", Date.now())).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(store.healthy()).toBe(false);
    await expect(store.purge({})).rejects.toThrow();
  });

  it("turns into misses when Redis goes away mid-flight", async () => {
    const own = await startRedis();
    const store = await track(createRedisCacheStore({ url: own.url }));
    await store.set("k", entry("v"));
    expect(text(await store.get("k", Date.now()))).toBe("v");
    expect(store.healthy()).toBe(true);
    await own.stop();
    const started = performance.now();
    expect(await store.get("k", Date.now())).toBeUndefined();
    await store.set("k2", entry("v"));
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
