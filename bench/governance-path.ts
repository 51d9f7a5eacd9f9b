// Governance's own cost per request, without HTTP: authenticate, authorize,
// reserve and settle a virtual key under a team and a customer (budgets and
// rate limits at every level, as bench/run.ts --governance sets up), in a loop
// on one core, for the embedded store, Redis with leases and Redis without.
// The HTTP benchmark's added latency on a saturated 2-core VM is mostly
// queueing; this isolates what governance itself adds.
//
//   taskset -c 1 node bench/governance-path.ts [--requests 20000] [--rounds 2]
//
// redis-server runs on a free port (on CPU 0 when taskset exists).

import { parseArgs } from "node:util";
import { createAdmin } from "../server/governance/admin.ts";
import { createGovernor } from "../server/governance/governor.ts";
import { createPricing } from "../server/governance/pricing.ts";
import { createMemoryStore } from "../server/governance/store-memory.ts";
import { createRedisStore } from "../server/governance/store-redis.ts";
import type { GovernanceStore } from "../server/governance/types.ts";
import type { Target } from "../server/routing/resolve.ts";
import type { Logger } from "../server/telemetry/log.ts";
import { startRedis } from "../test/support/redis.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "20000" }, rounds: { type: "string", default: "2" } } });
const REQUESTS = Number(values.requests);
const ROUNDS = Number(values.rounds);

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => quiet } as unknown as Logger;
const target = { provider: { id: "openai" }, model: "gpt-4o-mini" } as Target;

type Kind = "embedded" | "redis, leases" | "redis, no leases";

async function measure(kind: Kind, redisUrl: string): Promise<{ cpuUs: number; wallUs: number }> {
  const store: GovernanceStore = kind === "embedded" ? createMemoryStore() : await createRedisStore({ url: redisUrl, prefix: `gp${process.hrtime.bigint()}` });
  while (!store.healthy()) await new Promise((r) => setTimeout(r, 20));
  const governor = await createGovernor({
    store, pricing: createPricing({}), staticKeys: [], adminKey: "bench-admin-key-0123456789", providerTypes: new Map([["openai", "openai"]]),
    reservationTtlMs: 30_000, leases: kind === "redis, leases", defaultMaxOutputTokens: 4096, unpricedModels: "refuse", logger: quiet,
  });
  const admin = createAdmin(store, undefined, () => governor.invalidate());
  const budget = { limitUsd: 1_000_000, period: "month" as const };
  const limits = { rpm: 10_000_000, tpm: 100_000_000_000, maxConcurrent: 100_000 };
  const customer = await admin.createCustomer({ name: "bench", budget } as Parameters<typeof admin.createCustomer>[0]);
  const team = await admin.createTeam({ name: "bench", customerId: customer.id, budget, limits } as Parameters<typeof admin.createTeam>[0]);
  const { secret } = await admin.createKey({ name: "bench", teamId: team.id, budget, limits } as Parameters<typeof admin.createKey>[0]);
  const header = (name: string): string | undefined => (name === "authorization" ? `Bearer ${secret}` : undefined);
  const one = async (): Promise<void> => {
    const principal = await governor.authenticate(header);
    const authorized = governor.authorize(principal, { models: [target.model], targets: [target], primary: [target], promptTokens: 20, maxOutputTokens: 100 });
    const admission = await governor.reserve(authorized, () => undefined);
    await admission.settle(target, { promptTokens: 20, completionTokens: 10 } as Parameters<typeof admission.settle>[1], 0);
  };
  // Warm-up, paced so a lease is taken as under real traffic.
  for (let i = 0; i < 3000; i++) {
    await one();
    if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    await one();
    // Let replies and timers in, as between requests of a server.
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  const cpu = process.cpuUsage(cpu0);
  const wallUs = ((performance.now() - t0) * 1000) / REQUESTS;
  await governor.close();
  return { cpuUs: (cpu.user + cpu.system) / REQUESTS, wallUs };
}

const redis = await startRedis();
try {
  console.log(`${REQUESTS} requests per run; µs per request (CPU of this process; wall including waits on Redis)\n`);
  console.log("store               cpu µs   wall µs");
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ["embedded", "redis, leases", "redis, no leases"] as const) {
      const r = await measure(kind, redis.url);
      console.log(`${kind.padEnd(18)} ${r.cpuUs.toFixed(1).padStart(7)}  ${r.wallUs.toFixed(1).padStart(8)}`);
    }
  }
} finally {
  await redis.stop();
}
