import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat, type CreatedKey } from "./support/admin.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";
import { startRedis, type RunningRedis } from "./support/redis.ts";

// The defined behaviour while Redis does not answer (a real redis-server,
// paused with SIGSTOP): keys already known keep working, rate limits are
// counted on each instance with its local share, budgets fail closed unless
// allowed, /readyz says "degraded", and once Redis answers again the gateway
// goes back to it by itself and every request served meanwhile is charged.

const ADMIN = "sy-admin-degraded-key-0123456789";
/** "hi" with max_tokens 2 costs exactly $0.002 (output only). */
const COST = 0.002;

let standin: OpenAIStandin;
let redis: RunningRedis;
let prefix = 0;

beforeAll(async () => {
  [standin, redis] = await Promise.all([startOpenAIStandin(), startRedis()]);
});

afterAll(async () => {
  await standin?.close();
  await redis?.stop();
});

async function gateway(whenStoreDown: object): Promise<TestGateway> {
  return startTestGateway({
    admin: { key: ADMIN },
    providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }],
    governance: {
      store: "redis",
      redis: { url: redis.url, prefix: `deg${prefix++}`, commandTimeoutMs: 150 },
      pricing: { "gpt-4o-mini": { input: 0, output: 1000 } },
      whenStoreDown,
    },
  });
}

const metric = async (gw: TestGateway, name: string): Promise<number> =>
  Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await (await fetch(`${gw.url}/metrics`)).text())?.[1]);

async function spent(gw: TestGateway, keyId: string): Promise<number> {
  return (await admin<{ spentUsd?: number }>(gw.url, ADMIN, "BudgetService/GetBudget", { keyId })).spentUsd ?? 0;
}

describe("while Redis does not answer", () => {
  it("counts rate limits locally, refuses budgets, reports degraded, and charges everything once Redis is back", async () => {
    const gw = await gateway({ rateLimits: "local", budgets: "refuse", localShare: 0.5 });
    try {
      const limited = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "limited", limits: { rpm: 10 } });
      const budgeted = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "budgeted", budget: { limitUsd: 1, period: "PERIOD_NONE" } });
      // Both known to this instance before Redis stops answering; first let the entity-version poll
      // (every 250 ms) see the keys just made, or it would drop the cached keys after the pause began.
      await new Promise((r) => setTimeout(r, 800));
      expect((await chat(gw.url, limited.secret)).status).toBe(200);
      expect((await chat(gw.url, budgeted.secret)).status).toBe(200);

      redis.pause();
      try {
        // Half of the 10 per minute locally: 5 served, then 429 from the local counter.
        const statuses: number[] = [];
        for (let i = 0; i < 8; i++) statuses.push((await chat(gw.url, limited.secret)).status);
        expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
        // A budget cannot be checked: fail closed.
        const refused = await chat(gw.url, budgeted.secret);
        expect(refused.status).toBe(503);
        expect(refused.headers.get("retry-after")).toBe("1");
        const ready = await fetch(`${gw.url}/readyz`);
        expect(ready.status).toBe(200);
        expect(await ready.json()).toMatchObject({ status: "degraded" });
        expect(await metric(gw, "switchyard_governance_degraded")).toBe(1);
        expect(await metric(gw, "switchyard_governance_degraded_requests_total")).toBe(8);
        expect(await metric(gw, "switchyard_governance_pending_settles")).toBe(5);
      } finally {
        redis.resume();
      }

      // Back on Redis by itself: the waiting spend lands, and the budget works again.
      await expect.poll(() => metric(gw, "switchyard_governance_pending_settles"), { timeout: 10_000, interval: 100 }).toBe(0);
      await expect.poll(async () => (await chat(gw.url, budgeted.secret)).status, { timeout: 5_000, interval: 100 }).toBe(200);
      expect(await metric(gw, "switchyard_governance_degraded")).toBe(0);
      expect(await (await fetch(`${gw.url}/readyz`)).json()).toEqual({ status: "ready" });
      // 1 before, 5 while degraded: every one charged.
      expect(await spent(gw, limited.key.id)).toBeCloseTo(6 * COST, 9);
      expect(await spent(gw, budgeted.key.id)).toBeCloseTo(2 * COST, 9);
      expect(await metric(gw, "switchyard_governance_settle_failures_total")).toBe(0);
    } finally {
      redis.resume();
      await gw.close();
    }
  });

  it("serves budgeted keys when budgets are allowed, and charges them once Redis is back", async () => {
    const gw = await gateway({ budgets: "allow" });
    try {
      const budgeted = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "allowed", budget: { limitUsd: 1, period: "PERIOD_DAY" } });
      await new Promise((r) => setTimeout(r, 800));
      expect((await chat(gw.url, budgeted.secret)).status).toBe(200);
      redis.pause();
      try {
        for (let i = 0; i < 3; i++) expect((await chat(gw.url, budgeted.secret)).status).toBe(200);
      } finally {
        redis.resume();
      }
      await expect.poll(() => spent(gw, budgeted.key.id), { timeout: 10_000, interval: 100 }).toBeCloseTo(4 * COST, 9);
    } finally {
      redis.resume();
      await gw.close();
    }
  });

  it("refuses rate-limited keys too when told to", async () => {
    const gw = await gateway({ rateLimits: "refuse" });
    try {
      const limited = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "strict", limits: { rpm: 100 } });
      const free = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "free" });
      await new Promise((r) => setTimeout(r, 800));
      expect((await chat(gw.url, limited.secret)).status).toBe(200);
      expect((await chat(gw.url, free.secret)).status).toBe(200);
      redis.pause();
      try {
        expect((await chat(gw.url, limited.secret)).status).toBe(503);
        // Neither a budget nor a limit to check: served, and its spend waits for Redis.
        expect((await chat(gw.url, free.secret)).status).toBe(200);
      } finally {
        redis.resume();
      }
      await expect.poll(() => spent(gw, free.key.id), { timeout: 10_000, interval: 100 }).toBeCloseTo(2 * COST, 9);
    } finally {
      redis.resume();
      await gw.close();
    }
  });
});
