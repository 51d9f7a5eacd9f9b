import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { startPostgres, type RunningPostgres } from "./support/postgres.ts";
import { startGatewayProcess, type GatewayProcess } from "./support/process.ts";
import { startRedis, type RunningRedis } from "./support/redis.ts";

// Scale-out as deployed: three gateway processes on one redis-server and one
// PostgreSQL. Whichever instance a request lands on, limits and budgets hold
// exactly, a revoked key is refused everywhere within a second, and every
// instance's request records are searchable from any one of them.

const ADMIN = "sy-admin-cluster-pg-key-0123456789";
/** "hi" with max_tokens 2 costs exactly $0.002 (output only); the worst case reserved is the same. */
const COST = 0.002;

let standin: OpenAIStandin;
let redis: RunningRedis;
let postgres: RunningPostgres;
let gws: GatewayProcess[] = [];

beforeAll(async () => {
  [standin, redis, postgres] = await Promise.all([startOpenAIStandin(), startRedis(), startPostgres()]);
  const database = await postgres.newDatabase();
  const config = {
    admin: { key: ADMIN },
    providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }],
    governance: { store: "redis", redis: { url: redis.url }, pricing: { "gpt-4o-mini": { input: 0, output: 1000 } } },
    database: { url: database },
    requestLog: { enabled: true },
  };
  // One first, so the others find the schema made (they would also wait on its lock).
  gws = [await startGatewayProcess(config)];
  gws.push(...(await Promise.all([startGatewayProcess(config), startGatewayProcess(config)])));
}, 60_000);

afterAll(async () => {
  await Promise.all(gws.map((g) => g.stop()));
  await Promise.all([standin?.close(), redis?.stop(), postgres?.stop()]);
});

/** Fires `n` requests at once, spread over the instances in turn; returns the statuses (0: connection failed). */
function burst(n: number, key: string, headers: (i: number) => Record<string, string> = () => ({})): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => chat(gws[i % gws.length]!.url, key, {}, headers(i)).then((r) => r.status, () => 0)));
}

describe("three instances on one Redis and one PostgreSQL", () => {
  it("holds a team budget and a key's request limit exactly across instances", async () => {
    const team = await admin<{ team: { id: string } }>(gws[0]!.url, ADMIN, "OrgService/CreateTeam", {
      name: "cluster-team",
      budget: { limitUsd: COST * 60, period: "PERIOD_DAY" },
    });
    const { key, secret } = await admin<CreatedKey>(gws[1]!.url, ADMIN, "KeyService/CreateKey", { name: "cluster-budget", teamId: team.team.id });
    standin.setBehavior({ kind: "delay", ms: 20 });
    try {
      const statuses = await burst(150, secret);
      const served = statuses.filter((s) => s === 200).length;
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
      // Reservations are worst-case and exact here, so the budget admits exactly 60.
      expect(served).toBe(60);
      const spent = await admin<any>(gws[2]!.url, ADMIN, "BudgetService/GetBudget", { teamId: team.team.id });
      expect(spent.spentUsd).toBeCloseTo(served * COST, 9);
      expect(spent.reservedUsd ?? 0).toBe(0);
      const k = await admin<any>(gws[0]!.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
      expect(k.spentUsd).toBeCloseTo(served * COST, 9);
    } finally {
      standin.setBehavior(null);
    }

    const limited = await admin<CreatedKey>(gws[2]!.url, ADMIN, "KeyService/CreateKey", { name: "cluster-rpm", limits: { rpm: 40 } });
    const t0 = Date.now();
    const statuses = await burst(120, limited.secret);
    const minutes = (Date.now() - t0) / 60_000;
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    // 40 at once, plus the sliding window's refill over however long the burst took.
    expect(served).toBeGreaterThanOrEqual(40);
    expect(served).toBeLessThanOrEqual(40 + Math.ceil(minutes * 40) + 1);
  });

  it("refuses a key revoked through one instance on every instance within one second", async () => {
    const { key, secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", { name: "cluster-revoke" });
    // Each instance has used (and cached) the key.
    for (const g of gws) expect((await chat(g.url, secret)).status).toBe(200);
    await admin(gws[1]!.url, ADMIN, "KeyService/RevokeKey", { id: key.id });
    const revokedAt = Date.now();
    const refusedAfter = await Promise.all(
      gws.map(async (g) => {
        for (;;) {
          const status = (await chat(g.url, secret)).status;
          if (status === 403 || status === 401) return Date.now() - revokedAt;
          expect(status).toBe(200);
          if (Date.now() - revokedAt > 5_000) return Infinity;
          await new Promise((r) => setTimeout(r, 25));
        }
      }),
    );
    for (const ms of refusedAfter) expect(ms).toBeLessThanOrEqual(1_000);
  });

  it("writes every instance's request records to one log, searchable from any instance", async () => {
    const { key, secret } = await admin<CreatedKey>(gws[2]!.url, ADMIN, "KeyService/CreateKey", { name: "cluster-log" });
    const ids = gws.flatMap((_, g) => Array.from({ length: 5 }, (_, i) => `cluster-log-${g}-${i}-${Date.now()}`));
    const statuses = await Promise.all(ids.map((id, n) => chat(gws[Math.floor(n / 5)]!.url, secret, {}, { "x-request-id": id }).then((r) => r.status)));
    expect(statuses.every((s) => s === 200)).toBe(true);
    for (const g of gws) {
      await expect
        .poll(async () => ((await admin<{ entries?: { requestId: string }[] }>(g.url, ADMIN, "LogService/SearchRequests", { filter: { key: key.id }, pageSize: 100 })).entries ?? []).map((e) => e.requestId).sort(), { timeout: 10_000, interval: 200 })
        .toEqual([...ids].sort());
    }
    // Aggregates read the same rows.
    const agg = await admin<{ rows?: { requests?: string | number }[] }>(gws[0]!.url, ADMIN, "LogService/AggregateRequests", { filter: { key: key.id }, groupBy: "GROUP_BY_KEY" });
    expect(Number(agg.rows?.[0]?.requests)).toBe(15);
  });
});
