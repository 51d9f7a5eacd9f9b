import { setImmediate as tick } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { createLeases } from "../server/governance/leases.ts";
import { createMemoryStore } from "../server/governance/store-memory.ts";
import type { LevelReservation } from "../server/governance/types.ts";

// Leases: a key busy on one instance is admitted from blocks taken from the
// store at once, without a round trip per request. These drive the lease book
// against the embedded store; test/governance-cluster.test.ts runs gateways
// with leases on a real redis-server.

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

  it("takes no lease larger than 1/64 of a limit, nor smaller than four requests", async () => {
    const { store, leases } = book();
    // 200 rpm: 1/64 is 3 requests, too small to lease.
    for (let i = 0; i < 100; i++) expect(leases.take([level("key:a", { rpm: 200 })], 1000, 10, T0)).toBeUndefined();
    await tick();
    expect((await store.spend("key:a", 0)).leasedNanos).toBe(0);
    // A budget of 400 requests: leases of 6.
    for (let i = 0; i < 32; i++) leases.take([level("key:b", { budgetNanos: 400_000 })], 1000, 10, T0);
    await tick();
    expect(leases.take([level("key:b", { budgetNanos: 400_000 })], 1000, 10, T0)!.size).toBe(6);
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
