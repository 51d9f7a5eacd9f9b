import { createHash } from "node:crypto";
import { BOOTSTRAP_IDENTITY } from "../server/admin/auth.ts";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { beforeEach, describe, expect, it } from "vitest";
import { BudgetService, Period } from "../gen/switchyard/v1/budgets_pb.ts";
import { CacheMode } from "../gen/switchyard/v1/cache_pb.ts";
import { KeyService } from "../gen/switchyard/v1/keys_pb.ts";
import { OrgService } from "../gen/switchyard/v1/org_pb.ts";
import { createAdmin, scopeOf, type Admin } from "../server/governance/admin.ts";
import { hintOf } from "../server/governance/keys.ts";
import { createMemoryStore } from "../server/governance/store-memory.ts";
import type { GovernanceStore } from "../server/governance/types.ts";
import { registerAdminServices } from "../server/rpc/admin.ts";
import { kPrincipal } from "../server/rpc/context.ts";

// The admin API (server/governance/admin.ts) against the real embedded store:
// keys are issued with a secret shown once and stored only as a hash, every
// input rule refuses with invalid_request, unknown ids are not_found, deletes
// that would orphan entities are refused, and budget reads add up.

const T0 = Date.UTC(2026, 0, 15, 12, 30, 0); // a Thursday
const DAY = 86_400_000;
const SECRET = /^sk-sy-[A-Za-z0-9_-]{43}$/;

let store: GovernanceStore;
let admin: Admin;
let clock: number;
let changes: number;

beforeEach(() => {
  store = createMemoryStore({});
  clock = T0;
  changes = 0;
  admin = createAdmin(store, () => clock, () => changes++);
});

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

async function rejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, "expected a refusal").toBeDefined();
  expect(err).toMatchObject({ name: "GatewayError", code });
  if (message) expect((err as Error).message).toMatch(message);
}

describe("virtual keys", () => {
  it("issues a secret once and stores only its sha256 hash and a hint", async () => {
    const { key, secret } = await admin.createKey({ name: "ci", allowedModels: ["gpt-4o*"], metadata: { owner: "jo" } });
    expect(secret).toMatch(SECRET);
    expect(secret).toHaveLength(49);
    expect(key.id).toMatch(/^key_[0-9a-f]{16}$/);
    expect(key).not.toHaveProperty("hash");
    expect(key).toMatchObject({ name: "ci", hint: hintOf(secret), enabled: true, allowedModels: ["gpt-4o*"], allowedProviders: [], metadata: { owner: "jo" }, createdAt: T0, updatedAt: T0 });
    expect(key.revokedAt).toBeUndefined();

    const stored = await store.getKey(key.id);
    expect(stored?.hash).toBe(sha256(secret));
    expect(stored?.hint).toBe(`${secret.slice(0, 9)}…${secret.slice(-4)}`);
    expect(JSON.stringify(stored)).not.toContain(secret.slice(6));
    expect((await store.getKeyByHash(sha256(secret)))?.id).toBe(key.id);

    const read = await admin.getKey(key.id);
    expect(read).not.toHaveProperty("hash");
    expect(JSON.stringify(read)).not.toContain(secret.slice(6));
    expect(changes).toBe(1);
  });

  it("refuses bad input with invalid_request", async () => {
    const bad = [
      { name: "" },
      { name: "   " },
      { name: "x".repeat(201) },
      { name: "k", allowedModels: [""] },
      { name: "k", allowedModels: ["gpt-4o", "  "] },
      { name: "k", allowedProviders: [""] },
      { name: "k", budget: { limitUsd: -1, period: "day" as const } },
      { name: "k", budget: { limitUsd: Number.NaN, period: "day" as const } },
      { name: "k", budget: { limitUsd: Number.POSITIVE_INFINITY, period: "day" as const } },
      { name: "k", budget: { limitUsd: 5, period: "fortnight" as never } },
      { name: "k", limits: { rpm: 0 } },
      { name: "k", limits: { rpm: -5 } },
      { name: "k", limits: { tpm: 1.5 } },
      { name: "k", limits: { maxConcurrent: 0 } },
      { name: "k", metadata: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, "v"])) },
      { name: "k", metadata: { "": "v" } },
      { name: "k", metadata: { note: "v".repeat(257) } },
      { name: "k", expiresAt: T0 },
      { name: "k", expiresAt: T0 - 1 },
    ];
    for (const input of bad) await rejects(admin.createKey(input), "invalid_request");
    expect(await store.keyCount()).toBe(0);

    // The edges that are allowed.
    const ok = await admin.createKey({
      name: "x".repeat(200),
      budget: { limitUsd: 0, period: "none" },
      limits: { rpm: 1, tpm: 1, maxConcurrent: 1 },
      metadata: Object.fromEntries(Array.from({ length: 32 }, (_, i) => [`k${i}`, "v".repeat(256)])),
      expiresAt: T0 + 1,
    });
    expect(ok.key.limits).toEqual({ rpm: 1, tpm: 1, maxConcurrent: 1 });
  });

  it("needs an existing team; unknown keys are not_found", async () => {
    await rejects(admin.createKey({ name: "k", teamId: "nope" }), "not_found", /team/);
    await rejects(admin.getKey("key_0000000000000000"), "not_found");
    await rejects(admin.updateKey("key_0000000000000000", { name: "x" }), "not_found");
    await rejects(admin.rotateKey("key_0000000000000000"), "not_found");
    await rejects(admin.revokeKey("key_0000000000000000"), "not_found");
    const team = await admin.createTeam({ name: "eng" });
    const { key } = await admin.createKey({ name: "k", teamId: team.id });
    expect(key.teamId).toBe(team.id);
  });

  it("updates only the fields given; null clears", async () => {
    const team = await admin.createTeam({ name: "eng" });
    const { key } = await admin.createKey({
      name: "k",
      teamId: team.id,
      allowedModels: ["a"],
      budget: { limitUsd: 5, period: "day" },
      limits: { rpm: 10, tpm: 1000 },
      expiresAt: T0 + DAY,
      metadata: { a: "1" },
    });
    clock += 1000;
    const updated = await admin.updateKey(key.id, { name: "renamed", limits: { maxConcurrent: 2 }, enabled: false });
    expect(updated).toMatchObject({ name: "renamed", teamId: team.id, allowedModels: ["a"], budget: { limitUsd: 5, period: "day" }, limits: { maxConcurrent: 2 }, expiresAt: T0 + DAY, enabled: false, createdAt: T0, updatedAt: T0 + 1000 });
    expect(updated.limits).toEqual({ maxConcurrent: 2 });

    const cleared = await admin.updateKey(key.id, { teamId: null, budget: null, limits: null, expiresAt: null, allowedModels: [], metadata: {}, enabled: true });
    expect(cleared.teamId).toBeUndefined();
    expect(cleared.budget).toBeUndefined();
    expect(cleared.limits).toBeUndefined();
    expect(cleared.expiresAt).toBeUndefined();
    expect(cleared).toMatchObject({ allowedModels: [], metadata: {}, enabled: true });
    expect((await store.getKey(key.id))?.hash).toBeDefined();

    await rejects(admin.updateKey(key.id, { teamId: "nope" }), "not_found");
    await rejects(admin.updateKey(key.id, { expiresAt: clock - 1 }), "invalid_request");
    await rejects(admin.updateKey(key.id, { name: "" }), "invalid_request");
    await rejects(admin.updateKey(key.id, { budget: { limitUsd: -0.01, period: "day" } }), "invalid_request");
  });

  it("rotates to a new secret and hash under the same id; the old secret stops resolving", async () => {
    const { key, secret } = await admin.createKey({ name: "k" });
    const oldHash = (await store.getKey(key.id))!.hash;
    clock += 5;
    const rotated = await admin.rotateKey(key.id);
    expect(rotated.secret).toMatch(SECRET);
    expect(rotated.secret).not.toBe(secret);
    expect(rotated.key.id).toBe(key.id);
    expect(rotated.key.hint).toBe(hintOf(rotated.secret));
    expect(rotated.key.updatedAt).toBe(T0 + 5);
    const stored = await store.getKey(key.id);
    expect(stored?.hash).toBe(sha256(rotated.secret));
    expect(stored?.hash).not.toBe(oldHash);
    expect(await store.getKeyByHash(oldHash)).toBeUndefined();
    expect((await store.getKeyByHash(sha256(rotated.secret)))?.id).toBe(key.id);
  });

  it("revokes once: revokedAt set, disabled, and revoking again changes nothing", async () => {
    const { key } = await admin.createKey({ name: "k" });
    clock += 10;
    const revoked = await admin.revokeKey(key.id);
    expect(revoked).toMatchObject({ enabled: false, revokedAt: T0 + 10, updatedAt: T0 + 10 });
    const writes = changes;
    clock += 10;
    const again = await admin.revokeKey(key.id);
    expect(again).toEqual(revoked);
    expect(changes).toBe(writes);
    await rejects(admin.updateKey(key.id, { enabled: true }), "invalid_request", /revoked/);
    await rejects(admin.rotateKey(key.id), "invalid_request", /revoked/);
    await rejects(admin.setBudget({ kind: "key", id: key.id }, { budget: { limitUsd: 1, period: "day" } }), "invalid_request", /revoked/);
    expect((await store.getKey(key.id))?.revokedAt).toBe(T0 + 10);
  });

  it("lists a page at a time, by team, revoked keys only when asked", async () => {
    const team = await admin.createTeam({ name: "eng" });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock += 1;
      ids.push((await admin.createKey({ name: `k${i}`, teamId: i < 2 ? team.id : undefined })).key.id);
    }
    await admin.revokeKey(ids[4]!);

    const seen: string[] = [];
    let token: string | undefined;
    const sizes: number[] = [];
    do {
      const page = await admin.listKeys({ pageSize: 2, pageToken: token });
      for (const k of page.items) expect(k).not.toHaveProperty("hash");
      sizes.push(page.items.length);
      seen.push(...page.items.map((k) => k.id));
      token = page.nextPageToken;
    } while (token !== undefined);
    expect(sizes).toEqual([2, 2]);
    expect(seen).toEqual(ids.slice(0, 4));

    const all = await admin.listKeys({ includeRevoked: true });
    expect(all.items.map((k) => k.id)).toEqual(ids);
    expect(all.nextPageToken).toBeUndefined();
    expect((await admin.listKeys({ teamId: team.id })).items.map((k) => k.id)).toEqual(ids.slice(0, 2));

    await rejects(admin.listKeys({ pageSize: 1001 }), "invalid_request");
    await rejects(admin.listKeys({ pageSize: 2.5 }), "invalid_request");
    await rejects(admin.listKeys({ pageToken: "not-a-token" }), "invalid_request", /page_token/);
  });
});

describe("customers and teams", () => {
  it("takes a caller-chosen id when valid, else generates one", async () => {
    const acme = await admin.createCustomer({ id: "acme", name: "Acme", budget: { limitUsd: 100, period: "month" }, metadata: { tier: "gold" } });
    expect(acme).toMatchObject({ id: "acme", name: "Acme", budget: { limitUsd: 100, period: "month" }, metadata: { tier: "gold" }, createdAt: T0, updatedAt: T0 });
    expect((await admin.createCustomer({ name: "Other" })).id).toMatch(/^cus_[0-9a-f]{16}$/);
    expect((await admin.createTeam({ name: "eng" })).id).toMatch(/^team_[0-9a-f]{16}$/);
    expect((await admin.createTeam({ id: "0-a_b", name: "t" })).id).toBe("0-a_b");
    expect((await admin.createTeam({ id: "a".repeat(63), name: "t" })).id).toHaveLength(63);

    await rejects(admin.createCustomer({ id: "acme", name: "Again" }), "invalid_request", /exists/);
    for (const id of ["Acme", "-acme", "_a", "a b", "", "a".repeat(64), "ünï"]) {
      await rejects(admin.createCustomer({ id, name: "x" }), "invalid_request");
      await rejects(admin.createTeam({ id, name: "x" }), "invalid_request");
    }
    await rejects(admin.createCustomer({ name: "" }), "invalid_request");
    await rejects(admin.createCustomer({ name: "c", budget: { limitUsd: Number.NaN, period: "day" } }), "invalid_request");
  });

  it("a team's customer must exist", async () => {
    await rejects(admin.createTeam({ name: "t", customerId: "ghost" }), "not_found", /customer/);
    const team = await admin.createTeam({ name: "t", limits: { rpm: 60 } });
    await rejects(admin.updateTeam(team.id, { customerId: "ghost" }), "not_found");
    await admin.createCustomer({ id: "acme", name: "Acme" });
    const moved = await admin.updateTeam(team.id, { customerId: "acme", name: "t2" });
    expect(moved).toMatchObject({ customerId: "acme", name: "t2", limits: { rpm: 60 } });
    expect((await admin.updateTeam(team.id, { customerId: null, limits: null })).customerId).toBeUndefined();
    expect((await admin.getTeam(team.id)).limits).toBeUndefined();
  });

  it("updates, gets and lists customers and teams", async () => {
    await admin.createCustomer({ id: "a", name: "A" });
    clock += 1;
    await admin.createCustomer({ id: "b", name: "B" });
    clock += 1;
    await admin.createCustomer({ id: "c", name: "C" });
    const p1 = await admin.listCustomers({ pageSize: 2 });
    expect(p1.items.map((c) => c.id)).toEqual(["a", "b"]);
    const p2 = await admin.listCustomers({ pageSize: 2, pageToken: p1.nextPageToken });
    expect(p2.items.map((c) => c.id)).toEqual(["c"]);
    expect(p2.nextPageToken).toBeUndefined();

    const updated = await admin.updateCustomer("b", { name: "Bee", budget: { limitUsd: 3, period: "week" }, metadata: { x: "y" } });
    expect(updated).toMatchObject({ id: "b", name: "Bee", budget: { limitUsd: 3, period: "week" }, metadata: { x: "y" }, updatedAt: T0 + 2 });
    expect((await admin.updateCustomer("b", { budget: null })).budget).toBeUndefined();
    expect((await admin.getCustomer("b")).name).toBe("Bee");
    await rejects(admin.getCustomer("zzz"), "not_found");
    await rejects(admin.updateCustomer("zzz", { name: "z" }), "not_found");

    await admin.createTeam({ id: "t1", name: "one", customerId: "a" });
    await admin.createTeam({ id: "t2", name: "two", customerId: "b" });
    expect((await admin.listTeams({ customerId: "a" })).items.map((t) => t.id)).toEqual(["t1"]);
    expect((await admin.listTeams()).items).toHaveLength(2);
    await rejects(admin.getTeam("t3"), "not_found");
  });

  it("refuses to delete a customer with teams or a team with live keys", async () => {
    await admin.createCustomer({ id: "acme", name: "Acme" });
    await admin.createTeam({ id: "eng", name: "Eng", customerId: "acme" });
    const { key } = await admin.createKey({ name: "k", teamId: "eng" });

    await rejects(admin.deleteCustomer("acme"), "invalid_request", /still has teams/);
    await rejects(admin.deleteTeam("eng"), "invalid_request", /still has keys/);

    await admin.updateKey(key.id, { enabled: false }); // disabled is not revoked: still refused
    await rejects(admin.deleteTeam("eng"), "invalid_request", /still has keys/);

    await admin.revokeKey(key.id);
    await admin.deleteTeam("eng");
    await rejects(admin.getTeam("eng"), "not_found");
    await admin.deleteCustomer("acme");
    await rejects(admin.getCustomer("acme"), "not_found");
    await rejects(admin.deleteCustomer("acme"), "not_found");
    await rejects(admin.deleteTeam("eng"), "not_found");
  });
});

describe("budgets and limits", () => {
  it("sets and clears budgets and limits; customers take budgets only", async () => {
    const { key } = await admin.createKey({ name: "k" });
    const team = await admin.createTeam({ name: "t" });
    await admin.createCustomer({ id: "acme", name: "Acme" });

    expect(await admin.setBudget({ kind: "key", id: key.id }, { budget: { limitUsd: 2.5, period: "hour" }, limits: { rpm: 30 } }))
      .toEqual({ budget: { limitUsd: 2.5, period: "hour" }, limits: { rpm: 30 } });
    expect((await admin.getKey(key.id)).budget).toEqual({ limitUsd: 2.5, period: "hour" });
    // Leaving one out keeps it; null clears.
    expect(await admin.setBudget({ kind: "key", id: key.id }, { limits: null })).toEqual({ budget: { limitUsd: 2.5, period: "hour" } });
    expect(await admin.setBudget({ kind: "key", id: key.id }, { budget: null })).toEqual({});

    expect((await admin.setBudget({ kind: "team", id: team.id }, { limits: { tpm: 5000, maxConcurrent: 4 } })).limits).toEqual({ tpm: 5000, maxConcurrent: 4 });
    expect((await admin.setBudget({ kind: "customer", id: "acme" }, { budget: { limitUsd: 50, period: "month" } })).budget).toEqual({ limitUsd: 50, period: "month" });

    await rejects(admin.setBudget({ kind: "customer", id: "acme" }, { limits: { rpm: 5 } }), "invalid_request", /customers take budgets only/);
    await rejects(admin.setBudget({ kind: "customer", id: "acme" }, { limits: null }), "invalid_request");
    await rejects(admin.setBudget({ kind: "key", id: key.id }, { budget: { limitUsd: Number.POSITIVE_INFINITY, period: "day" } }), "invalid_request");
    await rejects(admin.setBudget({ kind: "team", id: team.id }, { limits: { rpm: 2.5 } }), "invalid_request");
    await rejects(admin.setBudget({ kind: "team", id: "ghost" }, { budget: null }), "not_found");
    await rejects(admin.getBudget({ kind: "customer", id: "ghost" }), "not_found");
    await rejects(admin.getBudget({ kind: "key", id: "ghost" }), "not_found");
  });

  it("reads spent, reserved and remaining in the current window", async () => {
    const { key } = await admin.createKey({ name: "k", budget: { limitUsd: 10, period: "day" }, limits: { rpm: 100 } });
    const scope = scopeOf("key", key.id);
    expect(scope).toBe(`key:${key.id}`);
    const dayStart = Date.UTC(2026, 0, 15);

    expect(await admin.getBudget({ kind: "key", id: key.id })).toEqual({
      budget: { limitUsd: 10, period: "day" },
      limits: { rpm: 100 },
      spentUsd: 0,
      reservedUsd: 0,
      leasedUsd: 0,
      remainingUsd: 10,
      windowStart: dayStart,
      windowEnd: dayStart + DAY,
      inFlight: 0,
    });

    const level = { scope, budgetNanos: 10e9, windowStart: dayStart, tokens: 100 };
    expect((await store.reserve({ id: "r1", levels: [{ ...level, costNanos: 3e9 }], ttlMs: 60_000, now: clock })).ok).toBe(true);
    expect((await store.reserve({ id: "r2", levels: [{ ...level, costNanos: 0.5e9 }], ttlMs: 60_000, now: clock })).ok).toBe(true);
    expect(await admin.getBudget({ kind: "key", id: key.id })).toMatchObject({ spentUsd: 0, reservedUsd: 3.5, remainingUsd: 6.5, inFlight: 2 });

    await store.settle({ id: "r1", costNanos: 1.25e9, tokens: 50, windows: { [scope]: dayStart }, now: clock });
    expect(await admin.getBudget({ kind: "key", id: key.id })).toMatchObject({ spentUsd: 1.25, reservedUsd: 0.5, remainingUsd: 8.25, inFlight: 1 });

    await store.settle({ id: "r2", costNanos: 0.125e9, tokens: 10, windows: { [scope]: dayStart }, now: clock });
    expect(await admin.getBudget({ kind: "key", id: key.id })).toMatchObject({ spentUsd: 1.375, reservedUsd: 0, remainingUsd: 8.625, inFlight: 0 });

    // The next day is a new window: nothing spent yet.
    clock = dayStart + DAY + 60_000;
    expect(await admin.getBudget({ kind: "key", id: key.id })).toMatchObject({
      spentUsd: 0,
      remainingUsd: 10,
      windowStart: dayStart + DAY,
      windowEnd: dayStart + 2 * DAY,
    });
  });

  it("never reports less than nothing remaining; periods set the window", async () => {
    const team = await admin.createTeam({ name: "t", budget: { limitUsd: 1, period: "week" } });
    const scope = scopeOf("team", team.id);
    const monday = Date.UTC(2026, 0, 12);
    // Settled without a reservation (it expired): spend is still charged, past the limit.
    await store.settle({ id: "late", costNanos: 1.5e9, tokens: 0, windows: { [scope]: monday }, now: clock });
    expect(await admin.getBudget({ kind: "team", id: team.id })).toMatchObject({
      spentUsd: 1.5,
      reservedUsd: 0,
      remainingUsd: 0,
      windowStart: monday,
      windowEnd: monday + 7 * DAY,
    });

    await admin.createCustomer({ id: "acme", name: "Acme", budget: { limitUsd: 20, period: "month" } });
    expect(await admin.getBudget({ kind: "customer", id: "acme" })).toMatchObject({
      windowStart: Date.UTC(2026, 0, 1),
      windowEnd: Date.UTC(2026, 1, 1),
      remainingUsd: 20,
      limits: undefined,
    });
  });

  it("without a budget or with a lifetime budget there is no window; spend is lifetime", async () => {
    const { key } = await admin.createKey({ name: "k" });
    const scope = scopeOf("key", key.id);
    await store.reserve({ id: "r", levels: [{ scope, windowStart: 0, costNanos: 2e9, tokens: 1 }], ttlMs: 60_000, now: clock });
    await store.settle({ id: "r", costNanos: 0.75e9, tokens: 1, windows: { [scope]: 0 }, now: clock });

    const none = await admin.getBudget({ kind: "key", id: key.id });
    expect(none).toEqual({ budget: undefined, limits: undefined, spentUsd: 0.75, reservedUsd: 0, leasedUsd: 0, inFlight: 0 });
    expect(none).not.toHaveProperty("remainingUsd");
    expect(none).not.toHaveProperty("windowStart");
    expect(none).not.toHaveProperty("windowEnd");

    await admin.setBudget({ kind: "key", id: key.id }, { budget: { limitUsd: 1, period: "none" } });
    const lifetime = await admin.getBudget({ kind: "key", id: key.id });
    expect(lifetime).toMatchObject({ spentUsd: 0.75, remainingUsd: 0.25 });
    expect(lifetime.windowStart).toBeUndefined();
    expect(lifetime.windowEnd).toBeUndefined();
  });
});

describe("cache policies", () => {
  it("stores a policy on keys, teams and customers; only the fields set", async () => {
    const customer = await admin.createCustomer({ id: "acme", name: "Acme", cache: { mode: "exact", ttlSeconds: 600 } });
    expect(customer.cache).toEqual({ mode: "exact", ttlSeconds: 600 });
    const team = await admin.createTeam({ name: "t", customerId: "acme", cache: { threshold: 0.9, mode: undefined } });
    expect(team.cache).toEqual({ threshold: 0.9 });
    const { key } = await admin.createKey({ name: "k", teamId: team.id, cache: { mode: "both", ttlSeconds: 1, threshold: 1 } });
    expect(key.cache).toEqual({ mode: "both", ttlSeconds: 1, threshold: 1 });

    // Read back from the store (entities are kept as JSON).
    expect((await admin.getKey(key.id)).cache).toEqual({ mode: "both", ttlSeconds: 1, threshold: 1 });
    expect((await admin.getTeam(team.id)).cache).toEqual({ threshold: 0.9 });
    expect((await admin.getCustomer("acme")).cache).toEqual({ mode: "exact", ttlSeconds: 600 });
    expect((await admin.listKeys()).items[0]?.cache).toEqual({ mode: "both", ttlSeconds: 1, threshold: 1 });
    expect((await admin.listTeams()).items[0]?.cache).toEqual({ threshold: 0.9 });
    expect((await admin.listCustomers()).items[0]?.cache).toEqual({ mode: "exact", ttlSeconds: 600 });

    // No field set: nothing of its own, everything inherits.
    expect((await admin.createKey({ name: "k2", cache: {} })).key.cache).toBeUndefined();
    expect((await admin.createTeam({ name: "t2" })).cache).toBeUndefined();
  });

  it("replaces the policy as a whole on update; null clears; undefined keeps", async () => {
    const { key } = await admin.createKey({ name: "k", cache: { mode: "semantic", threshold: 0.8 } });
    expect((await admin.updateKey(key.id, { name: "k2" })).cache).toEqual({ mode: "semantic", threshold: 0.8 });
    expect((await admin.updateKey(key.id, { cache: { ttlSeconds: 60 } })).cache).toEqual({ ttlSeconds: 60 });
    expect((await admin.updateKey(key.id, { cache: null })).cache).toBeUndefined();
    expect((await store.getKey(key.id))?.cache).toBeUndefined();

    const team = await admin.createTeam({ name: "t", cache: { mode: "off" } });
    expect((await admin.updateTeam(team.id, { limits: { rpm: 5 } })).cache).toEqual({ mode: "off" });
    expect((await admin.updateTeam(team.id, { cache: { mode: "exact", ttlSeconds: 31_536_000 } })).cache).toEqual({ mode: "exact", ttlSeconds: 31_536_000 });
    expect((await admin.updateTeam(team.id, { cache: null })).cache).toBeUndefined();

    await admin.createCustomer({ id: "acme", name: "Acme" });
    expect((await admin.updateCustomer("acme", { cache: { mode: "both" } })).cache).toEqual({ mode: "both" });
    expect((await admin.updateCustomer("acme", { budget: { limitUsd: 1, period: "day" } })).cache).toEqual({ mode: "both" });
    expect((await admin.updateCustomer("acme", { cache: null })).cache).toBeUndefined();
    expect((await admin.getCustomer("acme")).cache).toBeUndefined();
  });

  it("refuses a ttl outside 1..31536000 s, a threshold outside (0, 1] and unknown modes", async () => {
    const bad = [
      { ttlSeconds: 0 },
      { ttlSeconds: -1 },
      { ttlSeconds: 31_536_001 },
      { ttlSeconds: 1.5 },
      { ttlSeconds: Number.NaN },
      { threshold: 0 },
      { threshold: -0.1 },
      { threshold: 1.0001 },
      { threshold: Number.NaN },
      { threshold: Number.POSITIVE_INFINITY },
      { mode: "sometimes" as never },
    ];
    await admin.createCustomer({ id: "acme", name: "Acme" });
    const team = await admin.createTeam({ name: "t" });
    const { key } = await admin.createKey({ name: "k" });
    const writes = changes;
    for (const cache of bad) {
      await rejects(admin.createKey({ name: "k", cache }), "invalid_request", /^cache\./);
      await rejects(admin.createTeam({ name: "t", cache }), "invalid_request", /^cache\./);
      await rejects(admin.createCustomer({ name: "c", cache }), "invalid_request", /^cache\./);
      await rejects(admin.updateKey(key.id, { cache }), "invalid_request", /^cache\./);
      await rejects(admin.updateTeam(team.id, { cache }), "invalid_request", /^cache\./);
      await rejects(admin.updateCustomer("acme", { cache }), "invalid_request", /^cache\./);
    }
    expect(changes).toBe(writes);
    expect(await store.keyCount()).toBe(1);
  });
});

describe("admin RPC services", () => {
  // In process, no sockets: a server interceptor plays the request gate and
  // sets the principal from a test header.
  function client() {
    const transport = createRouterTransport((router) => registerAdminServices(router, admin, {}), {
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
    return { as, keys: createClient(KeyService, transport), budgets: createClient(BudgetService, transport), org: createClient(OrgService, transport) };
  }

  it("answers the admin key only", async () => {
    const { as, keys, org, budgets } = client();
    for (const call of [
      () => keys.createKey({ name: "k" }, as("virtual")),
      () => keys.createKey({ name: "" }, as("virtual")), // refused before the input is looked at
      () => keys.listKeys({}, as("nobody")),
      () => org.createTeam({ name: "t" }, as("virtual")),
      () => budgets.getBudget({ scope: { case: "customerId", value: "acme" } }, as("virtual")),
    ]) {
      const err = await call().then(() => undefined, (e: unknown) => ConnectError.from(e));
      expect(err?.code).toBe(Code.PermissionDenied);
      expect(err?.rawMessage).toBe("admin credentials required");
    }
    expect(await store.keyCount()).toBe(0);
    expect(changes).toBe(0);
  });

  it("maps messages both ways: timestamps, periods, optional and clear fields", async () => {
    const { as, keys, org, budgets } = client();
    const team = await org.createTeam({ id: "eng", name: "Eng", limits: { rpm: 60, tpm: 10_000n } }, as("admin"));
    expect(team.team).toMatchObject({ id: "eng", customerId: "", limits: { rpm: 60, tpm: 10_000n } });
    expect(Number(team.team?.createdAt?.seconds) * 1000).toBe(T0);

    const created = await keys.createKey(
      { name: "k", teamId: "eng", allowedModels: ["gpt-4o"], budget: { limitUsd: 5, period: Period.DAY }, expiresAt: { seconds: BigInt((T0 + DAY) / 1000) }, metadata: { a: "b" } },
      as("admin"),
    );
    expect(created.secret).toMatch(SECRET);
    expect(created.key).toMatchObject({ name: "k", teamId: "eng", hint: hintOf(created.secret), enabled: true, allowedModels: ["gpt-4o"], budget: { limitUsd: 5, period: Period.DAY }, metadata: { a: "b" } });
    expect(created.key?.expiresAt?.seconds).toBe(BigInt((T0 + DAY) / 1000));
    expect(created.key?.revokedAt).toBeUndefined();
    const id = created.key!.id;

    const updated = await keys.updateKey({ id, name: "renamed", teamId: "", clearBudget: true, clearExpiresAt: true, clearAllowedModels: true, enabled: false }, as("admin"));
    expect(updated.key).toMatchObject({ name: "renamed", teamId: "", allowedModels: [], enabled: false, metadata: { a: "b" } });
    expect(updated.key?.budget).toBeUndefined();
    expect(updated.key?.expiresAt).toBeUndefined();

    const both = await keys.updateKey({ id, budget: { limitUsd: 1, period: Period.DAY }, clearBudget: true }, as("admin")).catch((e: unknown) => ConnectError.from(e));
    expect(both).toMatchObject({ code: Code.InvalidArgument });
    const noPeriod = await keys.updateKey({ id, budget: { limitUsd: 1 } }, as("admin")).catch((e: unknown) => ConnectError.from(e));
    expect(noPeriod).toMatchObject({ code: Code.InvalidArgument });
    expect((noPeriod as Error).message).toMatch(/budget\.period/);

    const rotated = await keys.rotateKey({ id }, as("admin"));
    expect(rotated.secret).toMatch(SECRET);
    expect(rotated.secret).not.toBe(created.secret);
    const revoked = await keys.revokeKey({ id }, as("admin"));
    expect(Number(revoked.key?.revokedAt?.seconds) * 1000).toBe(T0);
    expect((await keys.listKeys({}, as("admin"))).keys).toHaveLength(0);
    const listed = await keys.listKeys({ includeRevoked: true }, as("admin"));
    expect(listed.keys.map((k) => k.id)).toEqual([id]);
    expect(listed.nextPageToken).toBe("");
    expect(JSON.stringify(listed.keys, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v))).not.toContain(rotated.secret.slice(6));

    await org.createCustomer({ id: "acme", name: "Acme" }, as("admin"));
    const refused = await budgets.setBudget({ scope: { case: "customerId", value: "acme" }, limits: { rpm: 1 } }, as("admin")).catch((e: unknown) => ConnectError.from(e));
    expect(refused).toMatchObject({ code: Code.InvalidArgument });
    const noScope = await budgets.getBudget({}, as("admin")).catch((e: unknown) => ConnectError.from(e));
    expect(noScope).toMatchObject({ code: Code.InvalidArgument });
    const missing = await keys.getKey({ id: "key_missing" }, as("admin")).catch((e: unknown) => ConnectError.from(e));
    expect(missing).toMatchObject({ code: Code.NotFound });

    await budgets.setBudget({ scope: { case: "teamId", value: "eng" }, budget: { limitUsd: 4, period: Period.MONTH }, clearLimits: true }, as("admin"));
    const status = await budgets.getBudget({ scope: { case: "teamId", value: "eng" } }, as("admin"));
    expect(status).toMatchObject({ budget: { limitUsd: 4, period: Period.MONTH }, spentUsd: 0, reservedUsd: 0, remainingUsd: 4, inFlight: 0 });
    expect(status.limits).toBeUndefined();
    expect(Number(status.windowStart?.seconds) * 1000).toBe(Date.UTC(2026, 0, 1));
    expect(Number(status.windowEnd?.seconds) * 1000).toBe(Date.UTC(2026, 1, 1));

    const customer = await budgets.getBudget({ scope: { case: "customerId", value: "acme" } }, as("admin"));
    expect(customer.remainingUsd).toBeUndefined();
    expect(customer.windowStart).toBeUndefined();

    await org.deleteCustomer({ id: "acme" }, as("admin")); // no teams
    await org.deleteTeam({ id: "eng" }, as("admin")); // its only key is revoked
    expect((await org.listTeams({}, as("admin"))).teams).toHaveLength(0);
  });

  it("maps cache policies: modes both ways, UNSPECIFIED and missing fields inherit, clear_cache", async () => {
    const { as, keys, org } = client();
    const invalidArg = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

    const customer = await org.createCustomer({ id: "acme", name: "Acme", cache: { mode: CacheMode.EXACT, ttlSeconds: 300 } }, as("admin"));
    expect(customer.customer?.cache).toMatchObject({ mode: CacheMode.EXACT, ttlSeconds: 300 });
    expect(customer.customer?.cache?.threshold).toBeUndefined();
    expect((await admin.getCustomer("acme")).cache).toEqual({ mode: "exact", ttlSeconds: 300 });

    const team = await org.createTeam({ id: "eng", name: "Eng", customerId: "acme", cache: { mode: CacheMode.SEMANTIC, threshold: 0.92 } }, as("admin"));
    expect(team.team?.cache).toMatchObject({ mode: CacheMode.SEMANTIC, threshold: 0.92 });
    expect((await org.getTeam({ id: "eng" }, as("admin"))).team?.cache?.threshold).toBe(0.92);

    const created = await keys.createKey({ name: "k", teamId: "eng", cache: { threshold: 0.5 } }, as("admin"));
    // CACHE_MODE_UNSPECIFIED: the mode inherits.
    expect(created.key?.cache).toMatchObject({ mode: CacheMode.UNSPECIFIED, threshold: 0.5 });
    const id = created.key!.id;
    expect((await admin.getKey(id)).cache).toEqual({ threshold: 0.5 });
    expect((await keys.createKey({ name: "plain" }, as("admin"))).key?.cache).toBeUndefined();

    const updated = await keys.updateKey({ id, cache: { mode: CacheMode.OFF } }, as("admin"));
    expect(updated.key?.cache).toMatchObject({ mode: CacheMode.OFF });
    expect(updated.key?.cache?.threshold).toBeUndefined();
    expect((await keys.updateKey({ id, name: "kept" }, as("admin"))).key?.cache?.mode).toBe(CacheMode.OFF);
    expect((await keys.listKeys({}, as("admin"))).keys.find((k) => k.id === id)?.cache?.mode).toBe(CacheMode.OFF);
    expect((await keys.updateKey({ id, clearCache: true }, as("admin"))).key?.cache).toBeUndefined();
    expect((await admin.getKey(id)).cache).toBeUndefined();

    expect((await org.updateTeam({ id: "eng", cache: { mode: CacheMode.BOTH, ttlSeconds: 60 } }, as("admin"))).team?.cache).toMatchObject({ mode: CacheMode.BOTH, ttlSeconds: 60 });
    expect((await org.updateTeam({ id: "eng", clearCache: true }, as("admin"))).team?.cache).toBeUndefined();
    expect((await org.updateCustomer({ id: "acme", clearCache: true }, as("admin"))).customer?.cache).toBeUndefined();
    expect((await org.listCustomers({}, as("admin"))).customers[0]?.cache).toBeUndefined();

    for (const refused of [
      keys.updateKey({ id, cache: { mode: CacheMode.OFF }, clearCache: true }, as("admin")),
      org.updateTeam({ id: "eng", cache: { mode: CacheMode.OFF }, clearCache: true }, as("admin")),
      org.updateCustomer({ id: "acme", cache: { mode: CacheMode.OFF }, clearCache: true }, as("admin")),
      keys.createKey({ name: "k", cache: { ttlSeconds: 0 } }, as("admin")),
      keys.createKey({ name: "k", cache: { ttlSeconds: 31_536_001 } }, as("admin")),
      org.createTeam({ name: "t", cache: { threshold: 0 } }, as("admin")),
      org.createCustomer({ name: "c", cache: { threshold: 1.5 } }, as("admin")),
      keys.createKey({ name: "k", cache: { mode: 99 as CacheMode } }, as("admin")),
    ]) {
      expect(await invalidArg(refused)).toMatchObject({ code: Code.InvalidArgument });
    }
    const modeErr = await invalidArg(keys.createKey({ name: "k", cache: { mode: 99 as CacheMode } }, as("admin")));
    expect(modeErr?.rawMessage).toMatch(/cache\.mode/);
  });
});
