import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore } from "../server/governance/store-memory.ts";
import { createRedisStore } from "../server/governance/store-redis.ts";
import type { Customer, GovernanceStore, LevelReservation, Team, VirtualKey } from "../server/governance/types.ts";
import { startRedis, type RunningRedis } from "./support/redis.ts";

/** One implementation under the shared contract: `open` gives an empty store of its own. */
interface Subject {
  name: string;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  open(): Promise<GovernanceStore>;
}

let redis: RunningRedis | undefined;
let prefixes = 0;

const subjects: Subject[] = [
  {
    name: "memory",
    setup: async () => undefined,
    teardown: async () => undefined,
    // A folder that does not exist yet: the store creates it.
    open: async () => createMemoryStore({ path: join(mkdtempSync(join(tmpdir(), "sy-gov-")), "nested", "governance.db") }),
  },
  {
    name: "redis",
    setup: async () => {
      redis = await startRedis();
    },
    teardown: async () => {
      await redis?.stop();
    },
    // A fresh prefix per store keeps tests apart without flushing.
    open: () => createRedisStore({ url: redis!.url, prefix: `t${++prefixes}` }),
  },
];

const T0 = Date.UTC(2026, 0, 1);
const open: GovernanceStore[] = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A level with no limits unless given: cost 1000 nano-USD, 10 tokens, lifetime window. */
function level(scope: string, extra: Partial<LevelReservation> = {}): LevelReservation {
  return { scope, windowStart: 0, costNanos: 1000, tokens: 10, ...extra };
}

function key(id: string, extra: Partial<VirtualKey> = {}): VirtualKey {
  return {
    id,
    hash: `hash-${id}`,
    hint: "sk-sy-AbC…xyz9",
    name: `key ${id}`,
    allowedModels: [],
    allowedProviders: [],
    metadata: {},
    enabled: true,
    createdAt: T0,
    updatedAt: T0,
    ...extra,
  };
}

function team(id: string, extra: Partial<Team> = {}): Team {
  return { id, name: `team ${id}`, metadata: {}, createdAt: T0, updatedAt: T0, ...extra };
}

function customer(id: string, extra: Partial<Customer> = {}): Customer {
  return { id, name: `customer ${id}`, metadata: { tier: "gold" }, createdAt: T0, updatedAt: T0, ...extra };
}

async function all<T>(fetch: (token?: string) => Promise<{ items: T[]; nextPageToken?: string | undefined }>): Promise<T[][]> {
  const pages: T[][] = [];
  let token: string | undefined;
  do {
    const page = await fetch(token);
    pages.push(page.items);
    token = page.nextPageToken;
  } while (token !== undefined);
  return pages;
}

describe.each(subjects)("governance store contract: $name", (subject) => {
  let store: GovernanceStore;

  beforeAll(() => subject.setup());
  afterAll(() => subject.teardown());

  async function fresh(): Promise<GovernanceStore> {
    const s = await subject.open();
    open.push(s);
    return s;
  }

  describe("counters", () => {
    it("reserves on every level and settles to the actual cost", async () => {
      store = await fresh();
      const r = await store.reserve({ id: "r1", levels: [level("key:a"), level("team:t")], ttlMs: 60_000, now: T0 });
      expect(r).toEqual({ ok: true, rate: {} });
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
      expect(await store.spend("team:t", 0)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
      await store.settle({ id: "r1", costNanos: 400, tokens: 5, windows: { "key:a": 0, "team:t": 0 }, now: T0 + 10 });
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 400, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      expect(await store.spend("team:t", 0)).toEqual({ spentNanos: 400, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      expect(await store.spend("customer:none", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("refuses at the first failing level and charges no level", async () => {
      store = await fresh();
      const r = await store.reserve({
        id: "r1",
        levels: [level("key:a", { budgetNanos: 10_000 }), level("team:t", { budgetNanos: 500 }), level("customer:c", { budgetNanos: 1 })],
        ttlMs: 60_000,
        now: T0,
      });
      expect(r).toEqual({ ok: false, scope: "team:t", reason: "budget", rate: {} });
      expect("retryAfterMs" in r).toBe(false);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("counts spent plus reserved against the budget, in the current window only", async () => {
      store = await fresh();
      const w1 = T0;
      const w2 = T0 + 86_400_000;
      const budget = (windowStart: number, costNanos: number) => [level("key:a", { budgetNanos: 1000, windowStart, costNanos })];
      expect((await store.reserve({ id: "a", levels: budget(w1, 600), ttlMs: 60_000, now: T0 })).ok).toBe(true);
      expect(await store.reserve({ id: "b", levels: budget(w1, 500), ttlMs: 60_000, now: T0 })).toMatchObject({ ok: false, reason: "budget" });
      await store.settle({ id: "a", costNanos: 600, tokens: 0, windows: { "key:a": w1 }, now: T0 });
      expect(await store.reserve({ id: "c", levels: budget(w1, 401), ttlMs: 60_000, now: T0 })).toMatchObject({ ok: false, reason: "budget" });
      expect((await store.reserve({ id: "d", levels: budget(w1, 400), ttlMs: 60_000, now: T0 })).ok).toBe(true);
      await store.release("d", T0);
      // A new window starts from zero spend.
      expect((await store.reserve({ id: "e", levels: budget(w2, 1000), ttlMs: 60_000, now: w2 })).ok).toBe(true);
      expect(await store.spend("key:a", w2)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
      expect((await store.spend("key:a", w1)).spentNanos).toBe(0);
      await store.settle({ id: "e", costNanos: 250, tokens: 0, windows: { "key:a": w2 }, now: w2 });
      expect(await store.spend("key:a", w2)).toEqual({ spentNanos: 250, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("rolls the window on settle when it changed since the reservation", async () => {
      store = await fresh();
      await store.reserve({ id: "a", levels: [level("key:a", { windowStart: T0 })], ttlMs: 60_000, now: T0 });
      await store.settle({ id: "a", costNanos: 300, tokens: 0, windows: { "key:a": T0 }, now: T0 });
      await store.reserve({ id: "b", levels: [level("key:a", { windowStart: T0 })], ttlMs: 60_000, now: T0 });
      await store.settle({ id: "b", costNanos: 200, tokens: 0, windows: { "key:a": T0 + 3_600_000 }, now: T0 + 3_600_000 });
      expect(await store.spend("key:a", T0 + 3_600_000)).toEqual({ spentNanos: 200, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      expect((await store.spend("key:a", T0)).spentNanos).toBe(0);
    });

    it("counts spend without a budget and never refuses on it", async () => {
      store = await fresh();
      const big = 9_000_000_000_000_000 - 1; // near 2^53: nano-USD sums must stay exact
      expect((await store.reserve({ id: "a", levels: [level("key:a", { costNanos: big })], ttlMs: 60_000, now: T0 })).ok).toBe(true);
      await store.settle({ id: "a", costNanos: big, tokens: 0, windows: { "key:a": 0 }, now: T0 });
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: big, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("limits requests in flight", async () => {
      store = await fresh();
      const levels = [level("key:a", { maxConcurrent: 2 })];
      expect((await store.reserve({ id: "a", levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
      expect((await store.reserve({ id: "b", levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
      expect(await store.reserve({ id: "c", levels, ttlMs: 60_000, now: T0 })).toEqual({
        ok: false,
        scope: "key:a",
        reason: "concurrency",
        rate: {},
      });
      await store.release("a", T0);
      expect((await store.reserve({ id: "c", levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
    });

    it("limits requests per minute with GCRA and reports the allowance", async () => {
      store = await fresh();
      const levels = [level("key:a", { rpm: 3 })];
      const reserve = (id: string, now: number) => store.reserve({ id, levels, ttlMs: 60_000, now });
      expect(await reserve("a", T0)).toEqual({ ok: true, rate: { limitRequests: 3, remainingRequests: 2, resetRequestsMs: 20_000 } });
      expect(await reserve("b", T0)).toEqual({ ok: true, rate: { limitRequests: 3, remainingRequests: 1, resetRequestsMs: 40_000 } });
      expect(await reserve("c", T0)).toEqual({ ok: true, rate: { limitRequests: 3, remainingRequests: 0, resetRequestsMs: 60_000 } });
      expect(await reserve("d", T0)).toEqual({
        ok: false,
        scope: "key:a",
        reason: "rpm",
        retryAfterMs: 20_000,
        rate: { limitRequests: 3, remainingRequests: 0, resetRequestsMs: 60_000 },
      });
      expect(await reserve("e", T0 + 19_999)).toMatchObject({ ok: false, reason: "rpm", retryAfterMs: 1 });
      expect(await reserve("f", T0 + 20_000)).toMatchObject({ ok: true, rate: { remainingRequests: 0 } });
    });

    it("limits tokens per minute and refunds unused tokens on settle", async () => {
      store = await fresh();
      const levels = (tokens: number) => [level("key:a", { tpm: 1000, tokens })];
      const reserve = (id: string, tokens: number, now = T0) => store.reserve({ id, levels: levels(tokens), ttlMs: 60_000, now });
      expect(await reserve("a", 600)).toEqual({ ok: true, rate: { limitTokens: 1000, remainingTokens: 400, resetTokensMs: 36_000 } });
      expect(await reserve("b", 600)).toMatchObject({ ok: false, scope: "key:a", reason: "tpm", retryAfterMs: 12_000 });
      // More than a minute's tokens can never pass: no retry hint.
      const never = await reserve("c", 1500);
      expect(never).toMatchObject({ ok: false, reason: "tpm" });
      expect("retryAfterMs" in never).toBe(false);
      // Used 100 of 600: 500 tokens (30 s) come back.
      await store.settle({ id: "a", costNanos: 1, tokens: 100, windows: { "key:a": 0 }, now: T0 });
      expect(await reserve("d", 900)).toEqual({ ok: true, rate: { limitTokens: 1000, remainingTokens: 0, resetTokensMs: 60_000 } });
      // Used more than reserved: the excess is charged too.
      await store.settle({ id: "d", costNanos: 1, tokens: 1000, windows: { "key:a": 0 }, now: T0 });
      expect(await reserve("e", 0)).toMatchObject({
        ok: false,
        reason: "tpm",
        retryAfterMs: 6_000,
        rate: { limitTokens: 1000, remainingTokens: 0, resetTokensMs: 66_000 },
      });
    });

    it("reports the tightest level's allowance", async () => {
      store = await fresh();
      const r = await store.reserve({
        id: "a",
        levels: [level("key:a", { rpm: 10, tpm: 100_000 }), level("team:t", { rpm: 2 }), level("customer:c", { tpm: 50 })],
        ttlMs: 60_000,
        now: T0,
      });
      expect(r).toEqual({
        ok: true,
        rate: { limitRequests: 2, remainingRequests: 1, resetRequestsMs: 30_000, limitTokens: 50, remainingTokens: 40, resetTokensMs: 12_000 },
      });
    });

    it("releases money and the in-flight slot but not tokens", async () => {
      store = await fresh();
      const levels = [level("key:a", { tpm: 1000, tokens: 500, maxConcurrent: 1 })];
      await store.reserve({ id: "a", levels, ttlMs: 60_000, now: T0 });
      await store.release("a", T0);
      await store.release("a", T0);
      await store.release("unknown", T0);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      expect(await store.reserve({ id: "b", levels, ttlMs: 60_000, now: T0 })).toMatchObject({ ok: true, rate: { remainingTokens: 0 } });
    });

    it("still charges the actual cost when the reservation is unknown", async () => {
      store = await fresh();
      await store.reserve({ id: "live", levels: [level("key:a")], ttlMs: 60_000, now: T0 });
      await store.settle({ id: "gone", costNanos: 700, tokens: 1, windows: { "key:a": 0, "team:t": 0 }, now: T0 });
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 700, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
      expect(await store.spend("team:t", 0)).toEqual({ spentNanos: 700, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("ignores a second settle of the same id", async () => {
      store = await fresh();
      await store.reserve({ id: "a", levels: [level("key:a")], ttlMs: 60_000, now: T0 });
      const settle = { id: "a", costNanos: 700, tokens: 1, windows: { "key:a": 0 }, now: T0 };
      await store.settle(settle);
      await store.settle(settle);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 700, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("renews live reservations and sweeps expired ones", async () => {
      store = await fresh();
      await store.reserve({ id: "a", levels: [level("key:a")], ttlMs: 1000, now: T0 });
      await store.reserve({ id: "b", levels: [level("key:a")], ttlMs: 1000, now: T0 });
      await store.renew(["a", "missing"], 1000, T0 + 900);
      await store.renew([], 1000, T0 + 900);
      expect(await store.sweep(T0 + 1000)).toBe(0); // expiry is strict: released only once past
      expect(await store.sweep(T0 + 1001)).toBe(1);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
      expect(await store.sweep(T0 + 1900)).toBe(0);
      expect(await store.sweep(T0 + 1901)).toBe(1);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      // The request finished after all: its cost is still recorded.
      await store.settle({ id: "a", costNanos: 900, tokens: 0, windows: { "key:a": 0 }, now: T0 + 5000 });
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 900, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("grants a lease only while eight times it fits, and counts it apart from requests in flight", async () => {
      store = await fresh();
      const levels = [level("key:a", { budgetNanos: 10_000 })];
      const lease = { requests: 1, headroom: 8 };
      for (const id of ["l1", "l2", "l3"]) expect((await store.reserve({ id, levels, ttlMs: 60_000, now: T0, lease })).ok).toBe(true);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 3000 });
      // 3000 leased + 8 x 1000 > 10,000: no fourth lease, but a request of its own still fits.
      expect(await store.reserve({ id: "l4", levels, ttlMs: 60_000, now: T0, lease })).toMatchObject({ ok: false, reason: "budget" });
      expect((await store.reserve({ id: "r1", levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 3000 });
    });

    it("charges a lease's requests to spend once each, out of the lease, and frees the rest when it returns", async () => {
      store = await fresh();
      const levels = [level("key:a", { costNanos: 5000, tokens: 50 }), level("team:t", { costNanos: 5000, tokens: 50 })];
      expect((await store.reserve({ id: "lease", levels, ttlMs: 60_000, now: T0, lease: { requests: 5, headroom: 8 } })).ok).toBe(true);
      const windows = { "key:a": 0, "team:t": 0 };
      await store.chargeLease({ lease: "lease", id: "r1", costNanos: 700, tokens: 7, windows, now: T0 + 10 });
      await store.chargeLease({ lease: "lease", id: "r1", costNanos: 700, tokens: 7, windows, now: T0 + 20 });
      for (const scope of ["key:a", "team:t"]) expect(await store.spend(scope, 0)).toEqual({ spentNanos: 700, reservedNanos: 0, inFlight: 0, leasedNanos: 4300 });
      await store.returnLease("lease", { requests: 4, tokens: 43 }, T0 + 30);
      await store.returnLease("lease", { requests: 4, tokens: 43 }, T0 + 30);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 700, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      // A lease that is gone (expired, returned) still charges what its requests cost.
      await store.chargeLease({ lease: "lease", id: "r2", costNanos: 300, tokens: 3, windows, now: T0 + 40 });
      expect(await store.spend("team:t", 0)).toEqual({ spentNanos: 1000, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
    });

    it("gives a returned lease's unused requests back to the rate limit, and holds its slots until then", async () => {
      store = await fresh();
      const levels = [level("key:a", { rpm: 60, maxConcurrent: 16 })];
      const leased = [level("key:a", { rpm: 60, maxConcurrent: 16, costNanos: 2000, tokens: 20 })];
      expect((await store.reserve({ id: "lease", levels: leased, ttlMs: 60_000, now: T0, lease: { requests: 2, headroom: 8 } })).ok).toBe(true);
      // Two slots are leased: 14 more requests of their own, not 15.
      for (let i = 0; i < 14; i++) expect((await store.reserve({ id: `r${i}`, levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
      expect(await store.reserve({ id: "r14", levels, ttlMs: 60_000, now: T0 })).toMatchObject({ ok: false, reason: "concurrency" });
      for (let i = 0; i < 14; i++) await store.release(`r${i}`, T0);
      await store.returnLease("lease", { requests: 2, tokens: 20 }, T0);
      // 14 requests used the minute's allowance; the lease's 2 came back.
      const r = await store.reserve({ id: "after", levels, ttlMs: 60_000, now: T0 });
      expect(r).toMatchObject({ ok: true, rate: { limitRequests: 60, remainingRequests: 45 } });
    });

    it("releases an expired lease's money and slots", async () => {
      store = await fresh();
      const levels = [level("key:a", { maxConcurrent: 64 })];
      expect((await store.reserve({ id: "lease", levels, ttlMs: 1000, now: T0, lease: { requests: 4, headroom: 8 } })).ok).toBe(true);
      expect((await store.spend("key:a", 0)).leasedNanos).toBe(1000);
      expect(await store.sweep(T0 + 1001)).toBe(1);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
      // Its four slots are free again: 64 requests of their own fit.
      for (let i = 0; i < 64; i++) expect((await store.reserve({ id: `r${i}`, levels, ttlMs: 60_000, now: T0 + 1001 })).ok).toBe(true);
    });

    it("releases expired reservations on the next reserve", async () => {
      store = await fresh();
      const levels = [level("key:a", { maxConcurrent: 1, budgetNanos: 1500 })];
      await store.reserve({ id: "a", levels, ttlMs: 1000, now: T0 });
      expect(await store.reserve({ id: "b", levels, ttlMs: 1000, now: T0 + 500 })).toMatchObject({ ok: false, reason: "budget" });
      expect((await store.reserve({ id: "c", levels, ttlMs: 1000, now: T0 + 1001 })).ok).toBe(true);
      expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 1000, inFlight: 1, leasedNanos: 0 });
    });

    it("rejects a reservation id that is already live", async () => {
      store = await fresh();
      await store.reserve({ id: "a", levels: [level("key:a")], ttlMs: 1000, now: T0 });
      await expect(store.reserve({ id: "a", levels: [level("key:a")], ttlMs: 1000, now: T0 })).rejects.toThrow(/exists/);
    });

    it("never over-commits a budget under 200 concurrent reservations", async () => {
      store = await fresh();
      const levels = [level("key:a", { costNanos: 1_000_000, budgetNanos: 50_000_000 }), level("team:t", { costNanos: 1_000_000 })];
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => store.reserve({ id: `r${i}`, levels, ttlMs: 60_000, now: T0 })),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(50);
      const spend = await store.spend("key:a", 0);
      expect(spend).toEqual({ spentNanos: 0, reservedNanos: 50_000_000, inFlight: 50, leasedNanos: 0 });
      expect(await store.spend("team:t", 0)).toEqual(spend);
    });
  });

  describe("entities", () => {
    it("stores keys and finds them by id and by hash", async () => {
      store = await fresh();
      const k = key("key_1", { teamId: "team_1", budget: { limitUsd: 5, period: "day" }, limits: { rpm: 10 }, expiresAt: T0 + 1 });
      await store.putKey(k);
      expect(await store.getKey("key_1")).toEqual(k);
      expect(await store.getKeyByHash("hash-key_1")).toEqual(k);
      expect(await store.getKey("nope")).toBeUndefined();
      expect(await store.getKeyByHash("nope")).toBeUndefined();
    });

    it("refuses a new key whose hash is taken and moves the index when a key rotates", async () => {
      store = await fresh();
      await store.putKey(key("key_1"));
      await expect(store.putKey(key("key_2", { hash: "hash-key_1" }))).rejects.toThrow("duplicate key hash");
      expect(await store.getKey("key_2")).toBeUndefined();
      await store.putKey(key("key_1", { hash: "rotated", name: "renamed" }));
      expect(await store.getKeyByHash("hash-key_1")).toBeUndefined();
      expect(await store.getKeyByHash("rotated")).toMatchObject({ id: "key_1", name: "renamed" });
      // The old hash is free again.
      await store.putKey(key("key_2", { hash: "hash-key_1" }));
      expect(await store.keyCount()).toBe(2);
    });

    it("lists keys in creation order, page by page, hiding revoked ones unless asked", async () => {
      store = await fresh();
      await store.putKey(key("key_c", { createdAt: T0 + 2, teamId: "t1" }));
      await store.putKey(key("key_b", { createdAt: T0 + 1, teamId: "t2" }));
      await store.putKey(key("key_a", { createdAt: T0 + 1, teamId: "t1" })); // same ms: ordered by id
      await store.putKey(key("key_d", { createdAt: T0 + 3, teamId: "t1", revokedAt: T0 + 4 }));
      await store.putKey(key("key_e", { createdAt: T0, teamId: "t2" }));
      const ids = (pages: VirtualKey[][]) => pages.map((p) => p.map((k) => k.id));
      expect(ids(await all((t) => store.listKeys({}, 2, t)))).toEqual([["key_e", "key_a"], ["key_b", "key_c"]]);
      expect(ids(await all((t) => store.listKeys({ includeRevoked: true }, 2, t)))).toEqual([
        ["key_e", "key_a"],
        ["key_b", "key_c"],
        ["key_d"],
      ]);
      expect(ids(await all((t) => store.listKeys({ teamId: "t1", includeRevoked: true }, 1000, t)))).toEqual([["key_a", "key_c", "key_d"]]);
      expect(ids(await all((t) => store.listKeys({ teamId: "t2" }, 1, t)))).toEqual([["key_e"], ["key_b"]]);
      expect(ids(await all((t) => store.listKeys({ teamId: "none" }, 10, t)))).toEqual([[]]);
      expect(await store.keyCount()).toBe(5);
      await expect(store.listKeys({}, 2, "not-a-token")).rejects.toThrow("invalid page token");
    });

    it("pages through many keys created in the same millisecond without gaps or repeats", async () => {
      store = await fresh();
      const ids = Array.from({ length: 250 }, (_, i) => `key_${String(i).padStart(3, "0")}`);
      // Every third key revoked, so the filter has to scan past hidden ones.
      for (const [i, id] of ids.entries()) await store.putKey(key(id, i % 3 === 0 ? { revokedAt: T0 } : {}));
      const pages = await all((t) => store.listKeys({}, 7, t));
      expect(pages.flat().map((k) => k.id)).toEqual(ids.filter((_, i) => i % 3 !== 0));
      expect(pages.slice(0, -1).every((p) => p.length === 7)).toBe(true);
      expect((await store.listKeys({ includeRevoked: true }, 5000)).items).toHaveLength(250);
    });

    it("stores, lists and deletes teams and customers", async () => {
      store = await fresh();
      await store.putCustomer(customer("cus_1", { budget: { limitUsd: 100, period: "month" } }));
      await store.putCustomer(customer("cus_2", { createdAt: T0 + 1 }));
      await store.putTeam(team("team_1", { customerId: "cus_1", limits: { maxConcurrent: 3 } }));
      await store.putTeam(team("team_2", { customerId: "cus_2", createdAt: T0 + 1 }));
      await store.putTeam(team("team_3", { customerId: "cus_1", createdAt: T0 + 2 }));
      expect(await store.getTeam("team_1")).toEqual(team("team_1", { customerId: "cus_1", limits: { maxConcurrent: 3 } }));
      expect(await store.getCustomer("cus_1")).toEqual(customer("cus_1", { budget: { limitUsd: 100, period: "month" } }));
      const teamIds = async (customerId?: string) => (await all((t) => store.listTeams({ customerId }, 1, t))).flat().map((x) => x.id);
      expect(await teamIds()).toEqual(["team_1", "team_2", "team_3"]);
      expect(await teamIds("cus_1")).toEqual(["team_1", "team_3"]);
      expect((await store.listCustomers(10)).items.map((c) => c.id)).toEqual(["cus_1", "cus_2"]);
      await store.putTeam(team("team_1", { name: "renamed" }));
      expect((await store.getTeam("team_1"))?.name).toBe("renamed");
      await store.deleteTeam("team_1");
      await store.deleteCustomer("cus_2");
      expect(await store.getTeam("team_1")).toBeUndefined();
      expect(await store.getCustomer("cus_2")).toBeUndefined();
      expect(await teamIds()).toEqual(["team_2", "team_3"]);
      expect((await store.listCustomers(10)).items.map((c) => c.id)).toEqual(["cus_1"]);
    });

    it("changes the version on every entity write and delete", async () => {
      store = await fresh();
      const seen = [await store.version()];
      const step = async (write: () => Promise<void>) => {
        await write();
        const v = await store.version();
        expect(v).toBeGreaterThan(seen[seen.length - 1]);
        seen.push(v);
      };
      await step(() => store.putKey(key("key_1")));
      await step(() => store.putKey(key("key_1", { revokedAt: T0 })));
      await step(() => store.putTeam(team("team_1")));
      await step(() => store.deleteTeam("team_1"));
      await step(() => store.putCustomer(customer("cus_1")));
      await step(() => store.deleteCustomer("cus_1"));
      expect(await store.keyCount()).toBe(1);
    });

    it("returns copies, not the stored objects", async () => {
      store = await fresh();
      await store.putKey(key("key_1"));
      const got = await store.getKey("key_1");
      got!.allowedModels.push("mutated");
      expect((await store.getKey("key_1"))?.allowedModels).toEqual([]);
    });
  });
});

describe("memory store persistence", () => {
  it("keeps entities and spend across a restart, but not reservations", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "sy-gov-")), "governance.db");
    const first = createMemoryStore({ path });
    await first.putKey(key("key_1", { teamId: "team_1" }));
    await first.putKey(key("key_2", { revokedAt: T0 }));
    await first.putTeam(team("team_1", { customerId: "cus_1" }));
    await first.putCustomer(customer("cus_1"));
    await first.putCustomer(customer("cus_2"));
    await first.deleteCustomer("cus_2");
    await first.reserve({ id: "a", levels: [level("key:key_1", { windowStart: T0 })], ttlMs: 60_000, now: T0 });
    await first.settle({ id: "a", costNanos: 1234, tokens: 1, windows: { "key:key_1": T0 }, now: T0 });
    await first.reserve({ id: "live", levels: [level("key:key_1", { windowStart: T0 })], ttlMs: 60_000, now: T0 });
    await first.close();

    const second = createMemoryStore({ path });
    open.push(second);
    expect(await second.getKey("key_1")).toEqual(key("key_1", { teamId: "team_1" }));
    expect(await second.getKeyByHash("hash-key_2")).toEqual(key("key_2", { revokedAt: T0 }));
    expect(await second.getTeam("team_1")).toEqual(team("team_1", { customerId: "cus_1" }));
    expect(await second.getCustomer("cus_2")).toBeUndefined();
    expect(await second.keyCount()).toBe(2);
    expect(await second.spend("key:key_1", T0)).toEqual({ spentNanos: 1234, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
  });

  it("flushes spend without waiting for close", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "sy-gov-")), "governance.db");
    const first = createMemoryStore({ path });
    open.push(first);
    await first.settle({ id: "a", costNanos: 55, tokens: 0, windows: { "key:a": 0 }, now: T0 });
    await new Promise((r) => setTimeout(r, 150));
    // A second reader sees the flushed row while the first store is still open.
    const second = createMemoryStore({ path });
    open.push(second);
    expect(await second.spend("key:a", 0)).toEqual({ spentNanos: 55, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
  });

  it("works without a path, in memory only", async () => {
    const s = createMemoryStore({});
    open.push(s);
    await s.settle({ id: "a", costNanos: 5, tokens: 0, windows: { "key:a": 0 }, now: T0 });
    expect((await s.spend("key:a", 0)).spentNanos).toBe(5);
    expect(s.healthy()).toBe(true);
    expect(s.kind).toBe("embedded");
  });
});

describe("redis store across instances", () => {
  let server: RunningRedis;
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(() => server.stop());

  it("shares entities, counters and the version between instances", async () => {
    const a = await createRedisStore({ url: server.url, prefix: "shared" });
    const b = await createRedisStore({ url: server.url, prefix: "shared" });
    open.push(a, b);
    expect(a.kind).toBe("redis");
    expect(a.healthy()).toBe(true);
    const before = await b.version();
    await a.putKey(key("key_1"));
    expect(await b.version()).toBeGreaterThan(before);
    expect(await b.getKeyByHash("hash-key_1")).toEqual(key("key_1"));
    await expect(b.putKey(key("key_2", { hash: "hash-key_1" }))).rejects.toThrow("duplicate key hash");

    const levels = [level("key:key_1", { maxConcurrent: 1 })];
    expect((await a.reserve({ id: "r1", levels, ttlMs: 60_000, now: T0 })).ok).toBe(true);
    expect(await b.reserve({ id: "r2", levels, ttlMs: 60_000, now: T0 })).toMatchObject({ ok: false, reason: "concurrency" });
    await b.settle({ id: "r1", costNanos: 42, tokens: 0, windows: { "key:key_1": 0 }, now: T0 });
    expect(await a.spend("key:key_1", 0)).toEqual({ spentNanos: 42, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
  });

  it("keeps all keys in one hash tag and reloads scripts Redis forgot", async () => {
    const s = await createRedisStore({ url: server.url, prefix: "tagged" });
    open.push(s);
    await s.putKey(key("key_1"));
    await s.reserve({ id: "r1", levels: [level("key:key_1")], ttlMs: 60_000, now: T0 });
    const raw = new Redis(server.url);
    try {
      const keys = await raw.keys("*tagged*");
      expect(keys.length).toBeGreaterThan(3);
      expect(keys.every((k) => k.startsWith("{tagged}:"))).toBe(true);
      await raw.script("FLUSH");
    } finally {
      raw.disconnect();
    }
    await s.settle({ id: "r1", costNanos: 10, tokens: 0, windows: { "key:key_1": 0 }, now: T0 });
    expect((await s.spend("key:key_1", 0)).spentNanos).toBe(10);
  });

  it("fails fast and reports unhealthy when Redis is unreachable", async () => {
    const dead = await startRedis();
    await dead.stop();
    const started = Date.now();
    const s = await createRedisStore({ url: dead.url, commandTimeoutMs: 200 });
    open.push(s);
    expect(s.healthy()).toBe(false);
    await expect(s.reserve({ id: "a", levels: [level("key:a")], ttlMs: 1000, now: T0 })).rejects.toThrow();
    await expect(s.version()).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
