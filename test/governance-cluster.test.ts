import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { startGatewayProcess, type GatewayProcess } from "./support/process.ts";
import { startRedis } from "./support/redis.ts";

// Hard limits across instances: three gateway processes share one Redis and
// take 300 concurrent requests against one key. Budgets and rate limits are
// never overrun, whichever instance a request lands on; a killed instance
// leaves no reservation behind for longer than its TTL.

const ADMIN = "sy-admin-cluster-key-0123456789";
/** "hi" with max_tokens 2 costs exactly $0.002 (output only), and the worst case reserved is the same. */
const COST = 0.002;

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
  standin.setBehavior(null);
});

afterAll(async () => {
  await standin?.close();
  await redis?.stop();
});

async function cluster(n: number): Promise<GatewayProcess[]> {
  const config = {
    admin: { key: ADMIN },
    providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }],
    governance: {
      store: "redis",
      redis: { url: redis.url, prefix: `c${prefix++}` },
      reservationTtlMs: 2_000,
      pricing: { "gpt-4o-mini": { input: 0, output: 1000 } },
    },
    requestLog: { enabled: false },
  };
  gateways = await Promise.all(Array.from({ length: n }, () => startGatewayProcess(config)));
  return gateways;
}

/** `count` rounds of `width` requests at once, spread over the instances; the statuses. */
async function waves(gws: GatewayProcess[], count: number, width: number, key: string): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i++) {
    statuses.push(...(await Promise.all(Array.from({ length: width }, (_, j) => chat(gws[j % gws.length]!.url, key).then((r) => r.status, () => 0)))));
  }
  return statuses;
}

const budgetOf = (gw: GatewayProcess, keyId: string): Promise<any> => admin<any>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId });

/** Fires `n` requests at once, spread over the instances in turn; returns the statuses (0: connection failed). */
async function burst(gws: GatewayProcess[], n: number, key: string): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => chat(gws[i % gws.length]!.url, key).then((r) => r.status, () => 0)),
  );
}

describe("governance across three instances sharing Redis", () => {
  it("never overruns a budget under 300 concurrent requests", async () => {
    const gws = await cluster(3);
    const { key, secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", {
      name: "burst",
      budget: { limitUsd: COST * 100, period: "PERIOD_NONE" },
    });
    standin.setBehavior({ kind: "delay", ms: 20 });
    const statuses = await burst(gws, 300, secret);
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(served).toBeLessThanOrEqual(100);
    expect(served).toBeGreaterThanOrEqual(97);
    const b = await admin<any>(gws[1]!.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(b.spentUsd).toBeLessThanOrEqual(COST * 100 + 1e-9);
    expect(b.spentUsd).toBeCloseTo(served * COST, 9);
    expect(b.reservedUsd ?? 0).toBe(0);
  });

  it("never overruns a requests-per-minute limit under 300 concurrent requests", async () => {
    const gws = await cluster(3);
    const { secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", { name: "rpm", limits: { rpm: 100 } });
    const t0 = Date.now();
    const statuses = await burst(gws, 300, secret);
    const elapsedMin = (Date.now() - t0) / 60_000;
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    // 100 at once, and one more per 0.6 s the burst took.
    expect(served).toBeGreaterThanOrEqual(100);
    expect(served).toBeLessThanOrEqual(100 + Math.ceil(elapsedMin * 100) + 1);
  });

  it("releases a killed instance's reservations when they expire, and spend equals what was served", async () => {
    const gws = await cluster(3);
    const { key, secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", {
      name: "crash",
      budget: { limitUsd: 100, period: "PERIOD_NONE" },
    });
    // Every request waits at the provider, so all 60 are in flight when one instance dies.
    standin.setBehavior({ kind: "delay", ms: 5_000 });
    const pending = burst(gws, 60, secret);
    const inFlight = async (): Promise<number> => (await admin<any>(gws[0]!.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id })).inFlight ?? 0;
    const deadline = Date.now() + 4_000; // a loaded machine admits 60 requests slowly
    while ((await inFlight()) < 60 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(await inFlight()).toBe(60);
    await gws[1]!.kill();
    // The dead instance's 20 reservations are still held a second later (the TTL is 2 s), with the 40 live ones.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await inFlight()).toBe(60);
    const statuses = await pending;
    const served = statuses.filter((s) => s === 200).length;
    expect(served).toBe(40);
    expect(statuses.filter((s) => s === 0)).toHaveLength(20);
    // Then they expire and are swept: poll rather than guess how long a loaded machine takes.
    const swept = Date.now() + 8_000;
    let after = await admin<any>(gws[2]!.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    while ((after.inFlight ?? 0) > 0 && Date.now() < swept) {
      await new Promise((r) => setTimeout(r, 200));
      after = await admin<any>(gws[2]!.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    }
    expect(after.inFlight ?? 0).toBe(0);
    expect(after.reservedUsd ?? 0).toBe(0);
    expect(after.spentUsd).toBeCloseTo(served * COST, 9);
  });
});

// Leases: a key sending 32 or more requests a second to one instance is admitted from blocks of its
// allowance taken from Redis at once; limits stay hard and spend exact.
describe("leases across instances sharing Redis", () => {
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
    const { key, secret } = await admin<CreatedKey>(gws[0]!.url, ADMIN, "KeyService/CreateKey", { name: "tight", budget: { limitUsd: COST * 600, period: "PERIOD_NONE" } });
    const statuses = await waves(gws, 25, 30, secret);
    const served = statuses.filter((s) => s === 200).length;
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    expect(served).toBeLessThanOrEqual(600);
    // Leases hold at most 1/64 of the budget each and never the last eighth of what remains: few go unused.
    expect(served).toBeGreaterThanOrEqual(580);
    const b = await budgetOf(gws[1]!, key.id);
    expect(b.spentUsd).toBeLessThanOrEqual(COST * 600 + 1e-9);
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
