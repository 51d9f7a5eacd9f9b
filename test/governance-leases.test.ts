import { setImmediate as tick } from "node:timers/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLeases } from "../server/governance/leases.ts";
import { createMemoryStore } from "../server/governance/store-memory.ts";
import type { LevelReservation } from "../server/governance/types.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { startGatewayProcess, type GatewayProcess } from "./support/process.ts";
import { startRedis } from "./support/redis.ts";

// Leases: a key busy on one instance is admitted from blocks taken from the
// store at once, without a round trip per request. Limits stay hard and spend
// exact: the unit tests drive the lease book against the embedded store; the
// process tests run gateways on a real redis-server.

const T0 = Date.UTC(2026, 0, 1);

function level(scope: string, extra: Partial<LevelReservation> = {}): LevelReservation {
  return { scope, windowStart: 0, costNanos: 1000, tokens: 10, ...extra };
}

function book() {
  const store = createMemoryStore();
  const live = new Set<string>();
  const leases = createLeases({ store, ttlMs: 30_000, onGranted: (id) => live.add(id), onReturned: (id) => live.delete(id) });
  return { store, live, leases };
}

describe("the lease book", () => {
  it("takes no lease below 32 requests a second, then one sized to the traffic", async () => {
    const { store, live, leases } = book();
    const levels = [level("key:a"), level("team:t")];
    for (let i = 0; i < 32; i++) expect(leases.take(levels, 1000, 10, T0)).toBeUndefined();
    await tick();
    expect(live.size).toBe(1);
    const lease = leases.take(levels, 1000, 10, T0 + 1)!;
    expect(lease).toBeDefined();
    // 32 a second is 8 a quarter second, at least 16.
    expect(lease.size).toBe(16);
    expect(await store.spend("team:t", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 16_000 });
    expect(lease).toMatchObject({ requests: 15, slots: 15, nanos: 15_000, tokens: 150, inFlight: 1 });
    // Served for 400 nano-USD and 4 tokens: the rest of its worst case comes back to the lease.
    leases.done(lease, 1000, 10, 400, 4, true);
    expect(lease).toMatchObject({ requests: 15, slots: 16, nanos: 15_600, tokens: 156, inFlight: 0 });
  });

  it("returns a retired lease once its last request ends", async () => {
    const { store, live, leases } = book();
    const levels = [level("key:a")];
    for (let i = 0; i < 32; i++) leases.take(levels, 1000, 10, T0);
    await tick();
    const lease = leases.take(levels, 1000, 10, T0)!;
    leases.retireAll();
    // Seconds later: too few requests to take a new lease.
    expect(leases.take(levels, 1000, 10, T0 + 5000)).toBeUndefined();
    expect(live.has(lease.id)).toBe(true);
    leases.done(lease, 1000, 10, 0, 0, false);
    expect(live.has(lease.id)).toBe(false);
    await tick();
    expect((await store.spend("key:a", 0)).leasedNanos).toBe(0);
  });

  it("retires a lease whose limits changed, and one idle for a second", async () => {
    const { live, leases } = book();
    const levels = [level("key:a", { rpm: 100_000 })];
    for (let i = 0; i < 32; i++) leases.take(levels, 1000, 10, T0);
    await tick();
    const lease = leases.take(levels, 1000, 10, T0)!;
    leases.done(lease, 1000, 10, 1000, 10, true);
    expect(leases.take([level("key:a", { rpm: 50_000 })], 1000, 10, T0)).toBeUndefined();
    expect(live.has(lease.id)).toBe(false);
    await tick();
    for (let i = 0; i < 32; i++) leases.take(levels, 1000, 10, T0 + 2000);
    await tick();
    expect(leases.size()).toBe(1);
    leases.tick(T0 + 2500);
    expect(leases.size()).toBe(1);
    leases.tick(T0 + 3001);
    expect(leases.size()).toBe(0);
  });

  it("takes no lease larger than a sixteenth of a limit, nor smaller than four requests", async () => {
    const { store, leases } = book();
    // 48 rpm: a sixteenth is 3 requests, too small to lease.
    for (let i = 0; i < 100; i++) expect(leases.take([level("key:a", { rpm: 48 })], 1000, 10, T0)).toBeUndefined();
    await tick();
    expect((await store.spend("key:a", 0)).leasedNanos).toBe(0);
    // A budget of 100 requests: leases of 6.
    for (let i = 0; i < 32; i++) leases.take([level("key:b", { budgetNanos: 100_000 })], 1000, 10, T0);
    await tick();
    expect(leases.take([level("key:b", { budgetNanos: 100_000 })], 1000, 10, T0)!.size).toBe(6);
  });

  it("gives every lease back at close", async () => {
    const { store, leases } = book();
    for (let i = 0; i < 32; i++) leases.take([level("key:a")], 1000, 10, T0);
    await tick();
    const lease = leases.take([level("key:a")], 1000, 10, T0)!;
    leases.done(lease, 1000, 10, 300, 3, true);
    await leases.close();
    expect(await store.spend("key:a", 0)).toEqual({ spentNanos: 0, reservedNanos: 0, inFlight: 0, leasedNanos: 0 });
  });
});

const ADMIN = "sy-admin-leases-key-0123456789";
/** "hi" with max_tokens 2 costs exactly $0.002 (output only), and the worst case reserved is the same. */
const COST = 0.002;

describe("gateways on Redis with leases", () => {
  let standin: OpenAIStandin;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let gateways: GatewayProcess[] = [];
  let prefix = 0;

  beforeAll(async () => {
    standin = await startOpenAIStandin();
    redis = await startRedis();
  });

  afterEach(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    gateways = [];
  });

  afterAll(async () => {
    await standin?.close();
    await redis?.stop();
  });

  async function cluster(n: number): Promise<GatewayProcess[]> {
    const config = {
      admin: { key: ADMIN },
      providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }],
      governance: { store: "redis", redis: { url: redis.url, prefix: `lease${prefix++}` }, pricing: { "gpt-4o-mini": { input: 0, output: 1000 } } },
      requestLog: { enabled: false },
    };
    gateways = await Promise.all(Array.from({ length: n }, () => startGatewayProcess(config)));
    return gateways;
  }

  /** `waves` rounds of `width` requests at once, spread over the instances; the statuses. */
  async function waves(gws: GatewayProcess[], count: number, width: number, key: string): Promise<number[]> {
    const statuses: number[] = [];
    for (let i = 0; i < count; i++) {
      statuses.push(...(await Promise.all(Array.from({ length: width }, (_, j) => chat(gws[j % gws.length]!.url, key).then((r) => r.status, () => 0)))));
    }
    return statuses;
  }

  const budgetOf = (gw: GatewayProcess, keyId: string): Promise<any> => admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId });

  it("serves a busy key from leases, records exactly what it served, and gives the leases back when idle", async () => {
    const [gw] = await cluster(1);
    const { key, secret } = await admin<CreatedKey>(gw!.url, ADMIN, "KeyService/CreateKey", { name: "busy", budget: { limitUsd: 10, period: "PERIOD_NONE" }, limits: { rpm: 100_000 } });
    const statuses = await waves([gw!], 15, 20, secret);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const during = await budgetOf(gw!, key.id);
    // Spend is exact the moment the answers are in: each request's cost left before its answer did.
    expect(during.spentUsd).toBeCloseTo(300 * COST, 9);
    expect(during.leasedUsd).toBeGreaterThan(0);
    expect(during.reservedUsd ?? 0).toBe(0);
    expect(during.remainingUsd).toBeCloseTo(10 - 300 * COST - during.leasedUsd, 9);
    let after = during;
    for (const until = Date.now() + 5_000; (after.leasedUsd ?? 0) > 0 && Date.now() < until; ) {
      await new Promise((r) => setTimeout(r, 200));
      after = await budgetOf(gw!, key.id);
    }
    expect(after.leasedUsd ?? 0).toBe(0);
    expect(after.spentUsd).toBeCloseTo(300 * COST, 9);
    expect(after.remainingUsd).toBeCloseTo(10 - 300 * COST, 9);
  });

  it("never overruns a budget served from leases on three instances", async () => {
    const gws = await cluster(3);
    const { key, secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", { name: "tight", budget: { limitUsd: COST * 150, period: "PERIOD_NONE" } });
    const statuses = await waves(gws, 16, 30, secret);
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(served).toBeLessThanOrEqual(150);
    // Leases never take the last eighth of what remains, and go back when idle: at most a few go unused.
    expect(served).toBeGreaterThanOrEqual(140);
    const b = await budgetOf(gws[1]!, key.id);
    expect(b.spentUsd).toBeLessThanOrEqual(COST * 150 + 1e-9);
    expect(b.spentUsd).toBeCloseTo(served * COST, 9);
  });

  it("stops serving from leases once the budget is lowered", async () => {
    const [gw] = await cluster(1);
    const { key, secret } = await admin<CreatedKey>(gw!.url, ADMIN, "KeyService/CreateKey", { name: "lowered", budget: { limitUsd: 10, period: "PERIOD_NONE" } });
    await waves([gw!], 5, 20, secret);
    expect((await budgetOf(gw!, key.id)).leasedUsd).toBeGreaterThan(0);
    const spent = (await budgetOf(gw!, key.id)).spentUsd as number;
    await admin(gw!.url, ADMIN, "BudgetService/SetBudget", { keyId: key.id, budget: { limitUsd: spent + COST * 5, period: "PERIOD_NONE" } });
    const statuses = await waves([gw!], 2, 20, secret);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(5);
    expect((await budgetOf(gw!, key.id)).spentUsd).toBeLessThanOrEqual(spent + COST * 5 + 1e-9);
  });
});
