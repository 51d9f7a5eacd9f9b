import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { BOOTSTRAP_IDENTITY } from "../server/admin/auth.ts";
import { describe, expect, it } from "vitest";
import { CacheService } from "../gen/switchyard/v1/cache_pb.ts";
import { purgeFilterOf, type CacheAdmin, type CacheAdminStats } from "../server/cache/admin-api.ts";
import type { PurgeFilter } from "../server/cache/types.ts";
import { kPrincipal } from "../server/rpc/context.ts";
import { registerCacheService } from "../server/rpc/cache.ts";

// CacheService (server/rpc/cache.ts) in process over a fake CacheAdmin: admin
// key only, counters mapped to the message, purge filters passed through as
// given, and an empty filter refused unless all=true.

const STATS: CacheAdminStats = {
  store: "redis",
  entries: 12,
  bytes: 34_567,
  maxBytes: 64 * 1024 * 1024,
  evictions: 3,
  expired: 4,
  hits: 50,
  semanticHits: 7,
  misses: 20,
  bypasses: 5,
  savedUsd: 1.2345,
  semanticEntries: 9,
};

function fakeCache(stats: CacheAdminStats = STATS) {
  const purges: PurgeFilter[] = [];
  let statsCalls = 0;
  const cache: CacheAdmin = {
    stats: async () => {
      statsCalls++;
      return stats;
    },
    purge: async (filter) => {
      purges.push(filter);
      return 2;
    },
  };
  return { cache, purges, statsCalls: () => statsCalls };
}

// A server interceptor plays the request gate: the principal comes from a test header.
function client(cache: CacheAdmin) {
  const transport = createRouterTransport((router) => registerCacheService(router, cache, {}), {
    router: {
      interceptors: [
        (next) => (req) => {
          const kind = req.header.get("x-test-principal");
          if (kind === "admin" || kind === "virtual") req.contextValues.set(kPrincipal, { id: kind, kind, identity: kind === "admin" ? BOOTSTRAP_IDENTITY : undefined });
          return next(req);
        },
      ],
    },
  });
  const as = (kind: string) => ({ headers: { "x-test-principal": kind } });
  return { as, rpc: createClient(CacheService, transport) };
}

const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

describe("CacheService", () => {
  it("answers the admin key only, before looking at the request", async () => {
    const fake = fakeCache();
    const { as, rpc } = client(fake.cache);
    for (const call of [
      () => rpc.getCacheStats({}, as("virtual")),
      () => rpc.getCacheStats({}),
      () => rpc.purgeCache({ all: true }, as("virtual")),
      () => rpc.purgeCache({}, as("nobody")), // would be invalid, but permission comes first
    ]) {
      const err = await refusal(call());
      expect(err?.code).toBe(Code.PermissionDenied);
      expect(err?.rawMessage).toBe("admin credentials required");
    }
    expect(fake.statsCalls()).toBe(0);
    expect(fake.purges).toEqual([]);
  });

  it("maps the stats to the message", async () => {
    const { as, rpc } = client(fakeCache().cache);
    const res = await rpc.getCacheStats({}, as("admin"));
    expect(res).toMatchObject({
      store: "redis",
      entries: 12n,
      bytes: 34_567n,
      maxBytes: 67_108_864n,
      evictions: 3n,
      expired: 4n,
      hits: 50n,
      semanticHits: 7n,
      misses: 20n,
      bypasses: 5n,
      savedUsd: 1.2345,
      semanticEntries: 9n,
    });
  });

  it("reports broken counters as 0 rather than failing", async () => {
    const { as, rpc } = client(fakeCache({ ...STATS, store: "memory", entries: Number.NaN, bytes: -1, hits: 2.7, savedUsd: Number.POSITIVE_INFINITY }).cache);
    const res = await rpc.getCacheStats({}, as("admin"));
    expect(res).toMatchObject({ store: "memory", entries: 0n, bytes: 0n, hits: 2n, savedUsd: 0 });
  });

  it("passes the purge filter through and returns the count", async () => {
    const fake = fakeCache();
    const { as, rpc } = client(fake.cache);
    expect((await rpc.purgeCache({ keyId: "key_0123456789abcdef" }, as("admin"))).purged).toBe(2n);
    await rpc.purgeCache({ teamId: "eng", model: "openai/gpt-4o" }, as("admin"));
    await rpc.purgeCache({ customerId: "acme" }, as("admin"));
    await rpc.purgeCache({ keyId: "k", teamId: "t", customerId: "c", model: "m" }, as("admin"));
    await rpc.purgeCache({ all: true }, as("admin"));
    expect(fake.purges).toEqual([
      { keyId: "key_0123456789abcdef" },
      { teamId: "eng", model: "openai/gpt-4o" },
      { customerId: "acme" },
      { keyId: "k", teamId: "t", customerId: "c", model: "m" },
      {},
    ]);
  });

  it("refuses an empty filter without all=true, all=true with a filter, and blank fields", async () => {
    const fake = fakeCache();
    const { as, rpc } = client(fake.cache);
    for (const [req, param] of [
      [{}, /all=true/],
      [{ all: false }, /all=true/],
      [{ all: true, teamId: "eng" }, /alone/],
      [{ keyId: "" }, /key_id/],
      [{ teamId: "  " }, /team_id/],
      [{ customerId: "", all: true }, /customer_id/],
      [{ model: "x".repeat(257) }, /model/],
    ] as const) {
      const err = await refusal(rpc.purgeCache(req, as("admin")));
      expect(err?.code, JSON.stringify(req)).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toMatch(param);
    }
    expect(fake.purges).toEqual([]);
  });
});

describe("purgeFilterOf", () => {
  it("keeps only the fields given", () => {
    expect(purgeFilterOf({ all: true })).toEqual({});
    expect(purgeFilterOf({ keyId: "k", teamId: undefined, all: false })).toEqual({ keyId: "k" });
    expect(() => purgeFilterOf({})).toThrow(expect.objectContaining({ code: "invalid_request" }) as Error);
  });
});
