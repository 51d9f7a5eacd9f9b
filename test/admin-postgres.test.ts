import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createAuditLog } from "../server/admin/audit.ts";
import { createPgAuditLog } from "../server/admin/audit-pg.ts";
import { ensureAdminSchema } from "../server/admin/pg.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, adminCall, chat } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { startPostgres, type RunningPostgres } from "./support/postgres.ts";

// The admin plane on PostgreSQL: two gateway instances on one database share
// people, sessions, admin API keys, admin-made providers and ONE audit hash
// chain. A change made through one instance takes effect on the other within
// a second; concurrent audited changes through both still form one chain that
// verifies (RPC and CLI), and an edited row is found.

const ADMIN = "sy-admin-pg-test-key-0123456789";
const PASSWORD = "correct horse battery staple";
const UPSTREAM_KEY = "sk-pg-admin-made-key-0123456789abcdef";

let standin: OpenAIStandin;
let postgres: RunningPostgres;
let url: string;
let a: TestGateway;
let b: TestGateway;
const pools: pg.Pool[] = [];

const dataDir = (): string => mkdtempSync(join(tmpdir(), "sy-admin-pg-"));
const start = (database: string, extra: object = {}): Promise<TestGateway> =>
  startTestGateway({ dataDir: dataDir(), database: { url: database }, ...extra });

beforeAll(async () => {
  // Every instance seals and opens provider keys with the same master key.
  vi.stubEnv("SWITCHYARD_MASTER_KEY", "pg-admin-test-master-key-0123456789");
  [standin, postgres] = await Promise.all([startOpenAIStandin({ apiKeys: [UPSTREAM_KEY, "sk-test"], models: ["gpt-4o-mini"] }), startPostgres()]);
  url = await postgres.newDatabase();
  // Started together on an empty database: both make the schema at once (under its lock).
  [a, b] = await Promise.all([start(url, { admin: { key: ADMIN } }), start(url, { admin: { key: ADMIN } })]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.close(), b?.close()]);
  await Promise.allSettled(pools.map((p) => p.end()));
  await Promise.allSettled([standin?.close(), postgres?.stop()]);
  vi.unstubAllEnvs();
});

function pool(database = url): pg.Pool {
  const p = new pg.Pool({ connectionString: database, max: 4 });
  pools.push(p);
  return p;
}

async function login(gw: TestGateway, email: string, password = PASSWORD): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${gw.url}/switchyard.v1.AuthService/Login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ password: { email, password } }),
  });
  if (res.status !== 200) throw new Error(`login: ${res.status} ${await res.text()}`);
  return { cookie: res.headers.get("set-cookie")!.split(";")[0]!, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
}

async function whoAmI(gw: TestGateway, cookie: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.url}/switchyard.v1.AuthService/WhoAmI`, { method: "POST", headers: { "content-type": "application/json", cookie }, body: "{}" });
  return { status: res.status, body: await res.json() };
}

/** Polls until `check` holds, and returns how long that took (ms); fails after `within` ms. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["server/cli.ts", ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : 1, stdout, stderr });
    });
  });
}

let userSeq = 0;
async function newUser(gw: TestGateway, grants: object[] = [{ role: "ADMIN_ROLE_ADMIN" }]): Promise<{ id: string; email: string }> {
  const email = `person${++userSeq}@example.com`;
  const { user } = await admin<{ user: { id: string } }>(gw.url, ADMIN, "UserService/CreateUser", { email, name: `Person ${userSeq}`, password: PASSWORD, grants });
  return { id: user.id, email };
}

describe("two instances on one PostgreSQL", () => {
  it("keeps everything in PostgreSQL: no admin.db on either instance", async () => {
    const tables = (await pool().query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'sy_%' ORDER BY tablename")).rows.map((r) => r.tablename);
    expect(tables).toEqual(expect.arrayContaining(["sy_admin_providers", "sy_admin_version", "sy_api_keys", "sy_audit", "sy_audit_meta", "sy_sessions", "sy_users"]));
  });

  it("signs in on A; the session cookie works on B, and logging out on B ends it on A", async () => {
    const u = await newUser(a);
    const s = await login(a, u.email);
    const me = await whoAmI(b, s.cookie);
    expect(me.status).toBe(200);
    expect(me.body.identity).toMatchObject({ kind: "KIND_USER", id: u.id, email: u.email });
    expect(me.body.csrfToken).toBe(s.csrf);
    // A change through B with A's session (CSRF token included).
    const viaB = await fetch(`${b.url}/switchyard.v1.UserService/ListUsers`, { method: "POST", headers: { "content-type": "application/json", cookie: s.cookie, "x-csrf-token": s.csrf }, body: "{}" });
    expect(viaB.status).toBe(200);

    const out = await fetch(`${b.url}/switchyard.v1.AuthService/Logout`, { method: "POST", headers: { "content-type": "application/json", cookie: s.cookie, "x-csrf-token": s.csrf }, body: "{}" });
    expect(out.status).toBe(200);
    expect((await whoAmI(a, s.cookie)).status).toBe(401);
  });

  it("takes an admin API key made on A on B, and refuses it on B within a second of its revocation on A", async () => {
    const made = await admin<{ key: { id: string }; secret: string }>(a.url, ADMIN, "UserService/CreateApiKey", { name: "automation", grants: [{ role: "ADMIN_ROLE_ADMIN" }] });
    const listOnB = () => adminCall(b.url, made.secret, "UserService/ListUsers");
    expect((await listOnB()).status).toBe(200);
    await admin(a.url, ADMIN, "UserService/RevokeApiKey", { id: made.key.id });
    const took = await within(1000, async () => (await listOnB()).status === 401);
    expect(took).toBeLessThan(1000);
    expect((await listOnB()).body).toMatchObject({ message: expect.stringMatching(/revoked/) });
  });

  it("ends a user's access on B within a second of being disabled on A: sessions and the keys the user made", async () => {
    const u = await newUser(a);
    const s = await login(b, u.email);
    const key = await fetch(`${b.url}/switchyard.v1.UserService/CreateApiKey`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie: s.cookie, "x-csrf-token": s.csrf },
      body: JSON.stringify({ name: "mine", grants: [{ role: "ADMIN_ROLE_VIEWER" }] }),
    });
    const { secret } = (await key.json()) as { secret: string };
    expect((await whoAmI(b, s.cookie)).status).toBe(200);
    expect((await adminCall(b.url, secret, "RoutingService/GetHealth")).status).toBe(200);

    await admin(a.url, ADMIN, "UserService/UpdateUser", { id: u.id, disabled: true });
    await within(1000, async () => (await whoAmI(b, s.cookie)).status === 401);
    await within(1000, async () => (await adminCall(b.url, secret, "RoutingService/GetHealth")).status === 401);
    // Nor can the person sign in again anywhere.
    await expect(login(b, u.email)).rejects.toThrow(/401/);
  });

  it("routes requests on B through a provider, alias and route made on A within a second; a deletion on A stops them on B", async () => {
    expect((await chat(b.url, ADMIN, { model: "pg-primary/gpt-4o-mini" })).status).toBe(404);
    await admin(a.url, ADMIN, "ProviderService/CreateProvider", { id: "pg-primary", type: "openai", baseUrl: standin.url, apiKeys: [UPSTREAM_KEY], models: ["gpt-4o-mini"] });
    const took = await within(1000, async () => (await chat(b.url, ADMIN, { model: "pg-primary/gpt-4o-mini" })).status === 200);
    expect(took).toBeLessThan(1000);
    expect(standin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
    const listed = await admin<{ providers: { id: string; source: string; keyHints: string[] }[] }>(b.url, ADMIN, "ProviderService/ListProviders");
    expect(listed.providers).toEqual([expect.objectContaining({ id: "pg-primary", source: "SOURCE_ADMIN", keyHints: ["sk-…cdef"] })]);
    // The key is sealed in the database, never in clear.
    const sealed = (await pool().query("SELECT sealed_keys FROM sy_admin_providers WHERE id = 'pg-primary'")).rows[0].sealed_keys as Buffer;
    expect(sealed.length).toBeGreaterThan(29);
    expect(sealed.includes(Buffer.from(UPSTREAM_KEY))).toBe(false);

    await admin(a.url, ADMIN, "ProviderService/SetAlias", { name: "pg-fast", target: "pg-primary/gpt-4o-mini" });
    await within(1000, async () => (await chat(b.url, ADMIN, { model: "pg-fast" })).status === 200);
    await admin(a.url, ADMIN, "ProviderService/SetRoute", { name: "pg-route", targets: [{ model: "pg-fast", weight: 1 }] });
    await within(1000, async () => (await chat(b.url, ADMIN, { model: "pg-route" })).status === 200);

    // B builds on what A made: its own change sees A's alias (the provider cannot go while the alias uses it).
    const refused = await adminCall<any>(b.url, ADMIN, "ProviderService/DeleteProvider", { id: "pg-primary" });
    expect(refused.status).toBe(400);
    await admin(b.url, ADMIN, "ProviderService/DeleteRoute", { name: "pg-route" });
    await admin(b.url, ADMIN, "ProviderService/DeleteAlias", { name: "pg-fast" });
    await admin(a.url, ADMIN, "ProviderService/DeleteProvider", { id: "pg-primary" });
    await within(1000, async () => (await chat(b.url, ADMIN, { model: "pg-primary/gpt-4o-mini" })).status === 404);
    expect((await chat(a.url, ADMIN, { model: "pg-fast" })).status).toBe(404);
    expect((await pool().query("SELECT id FROM sy_admin_providers")).rows).toEqual([]);
  });

  it("writes concurrent audited changes through both instances into one chain that verifies (RPC and CLI)", async () => {
    const n = 40;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        admin([a, b][i % 2]!.url, ADMIN, "UserService/CreateApiKey", { name: `burst-${i}`, grants: [{ role: "ADMIN_ROLE_VIEWER" }] })),
    );
    const events = (await admin<{ events: { seq: string; prevHash: string; hash: string; action: string }[] }>(a.url, ADMIN, "AuditService/ListAuditEvents", { pageSize: 1000 })).events;
    expect(events.filter((e) => e.action === "apikey.create").length).toBeGreaterThanOrEqual(n);
    const seqs = events.map((e) => Number(e.seq)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    // Each entry follows the one before it: no fork.
    const bySeq = [...events].sort((x, y) => Number(x.seq) - Number(y.seq));
    for (let i = 1; i < bySeq.length; i++) expect(bySeq[i]!.prevHash).toBe(bySeq[i - 1]!.hash);

    for (const gw of [a, b]) {
      const v = await admin<any>(gw.url, ADMIN, "AuditService/VerifyAudit");
      expect(v).toMatchObject({ ok: true, headHash: bySeq.at(-1)!.hash });
      expect(Number(v.checked)).toBe(bySeq.length);
    }
    const verified = await cli(["audit", "verify"], { SWITCHYARD_DATABASE_URL: url, SWITCHYARD_DATA_DIR: dataDir() });
    expect(verified.stdout).toMatch(new RegExp(`^audit log OK: ${bySeq.length} entries in the database, 0 archived`));
    expect(verified.code).toBe(0);
    const exported = await cli(["audit", "export"], { SWITCHYARD_DATABASE_URL: url, SWITCHYARD_DATA_DIR: dataDir() });
    const lines = exported.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l));
    expect(lines.length).toBe(bySeq.length);
    expect(lines.at(-1).hash).toBe(bySeq.at(-1)!.hash);
  });

  it("finds a row edited or removed in PostgreSQL (RPC and CLI)", async () => {
    const db = pool();
    const original = (await db.query("SELECT after_json FROM sy_audit WHERE seq = 3")).rows[0].after_json as string;
    await db.query("UPDATE sy_audit SET after_json = '{}' WHERE seq = 3");
    try {
      const v = await admin<any>(b.url, ADMIN, "AuditService/VerifyAudit");
      expect(v.ok ?? false).toBe(false);
      expect(v).toMatchObject({ firstBadSeq: "3", problem: "entry 3 was changed after it was written" });
      const bad = await cli(["audit", "verify"], { SWITCHYARD_DATABASE_URL: url, SWITCHYARD_DATA_DIR: dataDir() });
      expect(bad.code).toBe(1);
      expect(bad.stdout).toMatch(/^audit log ALTERED at entry 3: entry 3 was changed after it was written/);
    } finally {
      await db.query("UPDATE sy_audit SET after_json = $1 WHERE seq = 3", [original]);
    }
    expect((await admin<any>(b.url, ADMIN, "AuditService/VerifyAudit")).ok).toBe(true);

    // The last entry removed: the head row still names it.
    const last = (await db.query("SELECT * FROM sy_audit ORDER BY seq DESC LIMIT 1")).rows[0];
    await db.query("DELETE FROM sy_audit WHERE seq = $1", [last.seq]);
    try {
      const v = await admin<any>(a.url, ADMIN, "AuditService/VerifyAudit");
      expect(v.ok ?? false).toBe(false);
      expect(v.problem).toMatch(/removed from the end/);
    } finally {
      const cols = Object.keys(last);
      await db.query(`INSERT INTO sy_audit (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})`, cols.map((c) => last[c]));
    }
    expect((await admin<any>(a.url, ADMIN, "AuditService/VerifyAudit")).ok).toBe(true);
  });

  it("archives on one instance at a time, and the archive still verifies with the database", async () => {
    const dir = dataDir();
    const archiveDir = join(dir, "audit-archive");
    const logs = [createPgAuditLog(pool()), createPgAuditLog(pool())];
    const total = Number((await admin<any>(a.url, ADMIN, "AuditService/VerifyAudit")).checked);
    const results = await Promise.all(logs.map((l) => l.archive(Date.now() + 1, archiveDir)));
    // Exactly one of the two took them (the other found the lock taken, or nothing left to take).
    expect(results.map((r) => r.archived).sort((x, y) => x - y)).toEqual([0, total]);
    await admin(b.url, ADMIN, "UserService/CreateApiKey", { name: "after-archive", grants: [{ role: "ADMIN_ROLE_VIEWER" }] });
    expect(await admin<any>(a.url, ADMIN, "AuditService/VerifyAudit")).toMatchObject({ ok: true, checked: "1" });
    const ok = await cli(["audit", "verify"], { SWITCHYARD_DATABASE_URL: url, SWITCHYARD_DATA_DIR: dir });
    expect(ok.stdout).toMatch(new RegExp(`^audit log OK: 1 entries in the database, ${total} archived`));
    // Without the archive files, the database's anchor does not match: reported, not passed.
    const missing = await cli(["audit", "verify"], { SWITCHYARD_DATABASE_URL: url, SWITCHYARD_DATA_DIR: dataDir() });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/archive files missing or altered/);
  });
});

describe("the last owner, across instances", () => {
  it("keeps one enabled owner when two instances demote the two owners at the same moment", async () => {
    const db = await postgres.newDatabase();
    const [c, d] = await Promise.all([start(db, { admin: { key: ADMIN } }), start(db, { admin: { key: ADMIN } })]);
    try {
      const owner = { role: "ADMIN_ROLE_OWNER" };
      const viewer = { role: "ADMIN_ROLE_VIEWER" };
      const made = await Promise.all(["one", "two"].map((n) => admin<{ user: { id: string } }>(c.url, ADMIN, "UserService/CreateUser", { email: `owner-${n}@example.com`, name: n, password: PASSWORD, grants: [owner] })));
      const [x, y] = made.map((m) => m.user.id);
      // Each round both demotions race, one through each instance; without a lock across them both
      // read "another owner remains" and both succeed.
      for (let round = 0; round < 5; round++) {
        const results = await Promise.all([
          adminCall(c.url, ADMIN, "UserService/SetGrants", { userId: x, grants: [viewer] }),
          adminCall(d.url, ADMIN, "UserService/SetGrants", { userId: y, grants: [viewer] }),
        ]);
        expect(results.map((r) => r.status).sort(), `round ${round}`).toEqual([200, 400]);
        expect(JSON.stringify(results.find((r) => r.status === 400)!.body)).toMatch(/last owner/);
        // Both owners again for the next round.
        for (const id of [x, y]) await admin(c.url, ADMIN, "UserService/SetGrants", { userId: id, grants: [owner] });
      }
    } finally {
      await Promise.allSettled([c.close(), d.close()]);
    }
  });
});

describe("the first owner, made by the CLI in PostgreSQL", () => {
  it("closes every open instance within a second, and signs in on any of them", async () => {
    const database = await postgres.newDatabase();
    const config = { providers: [openaiProvider(standin.url)] };
    const [c, d] = await Promise.all([start(database, config), start(database, config)]);
    try {
      // Open gateways: no key and no admin anywhere, so inference needs no key.
      for (const gw of [c, d]) expect((await chat(gw.url, undefined)).status).toBe(200);

      const made = await cli(["admin", "create-owner", "--email", "owner@example.com", "--name", "Owner"], { SWITCHYARD_DATABASE_URL: database, SWITCHYARD_OWNER_PASSWORD: PASSWORD, SWITCHYARD_DATA_DIR: dataDir() });
      expect(made.stdout).toMatch(/^owner owner@example\.com created \(usr_[0-9a-f]{16}\)/);
      expect(made.code).toBe(0);
      for (const gw of [c, d]) await within(1000, async () => (await chat(gw.url, undefined)).status === 401);
      const s = await login(d, "owner@example.com");
      expect((await whoAmI(c, s.cookie)).body.identity).toMatchObject({ email: "owner@example.com" });
      // The CLI's entry is in the shared chain.
      const events = (await (await fetch(`${c.url}/switchyard.v1.AuditService/ListAuditEvents`, {
        method: "POST", headers: { "content-type": "application/json", cookie: s.cookie, "x-csrf-token": s.csrf }, body: JSON.stringify({ action: "user.create" }),
      })).json()) as { events: { actorId: string }[] };
      expect(events.events.map((e) => e.actorId)).toEqual(["cli"]);
      const twice = await cli(["admin", "create-owner", "--email", "OWNER@example.com"], { SWITCHYARD_DATABASE_URL: database, SWITCHYARD_OWNER_PASSWORD: PASSWORD, SWITCHYARD_DATA_DIR: dataDir() });
      expect(twice.code).toBe(2);
      expect(twice.stderr).toMatch(/a user with email owner@example\.com exists/);
    } finally {
      await Promise.allSettled([c.close(), d.close()]);
    }
  });
});

describe("switchyard db migrate-admin", () => {
  it("copies admin.db into PostgreSQL with its audit chain intact; the instances there serve what it held", async () => {
    // A gateway on SQLite, as before the move: a person, an admin API key, a provider, an alias, a route.
    const dir = dataDir();
    const old = await startTestGateway({ dataDir: dir, admin: { key: ADMIN } });
    let apiSecret: string;
    try {
      await admin(old.url, ADMIN, "UserService/CreateUser", { email: "moved@example.com", name: "Moved", password: PASSWORD, grants: [{ role: "ADMIN_ROLE_ADMIN" }] });
      apiSecret = (await admin<{ secret: string }>(old.url, ADMIN, "UserService/CreateApiKey", { name: "moved-key", grants: [{ role: "ADMIN_ROLE_VIEWER" }] })).secret;
      await admin(old.url, ADMIN, "ProviderService/CreateProvider", { id: "moved", type: "openai", baseUrl: standin.url, apiKeys: [UPSTREAM_KEY], models: ["gpt-4o-mini"] });
      // Retention archived the first entries; the chain in the file continues from the anchor.
      const file = new DatabaseSync(join(dir, "admin.db"));
      expect((await createAuditLog(file).archive(Date.now() + 1, join(dir, "audit-archive"))).archived).toBe(3);
      file.close();
      await admin(old.url, ADMIN, "ProviderService/SetAlias", { name: "moved-fast", target: "moved/gpt-4o-mini" });
      await admin(old.url, ADMIN, "ProviderService/SetRoute", { name: "moved-route", targets: [{ model: "moved-fast" }] });
    } finally {
      await old.close();
    }

    const database = await postgres.newDatabase();
    const env = { SWITCHYARD_DATABASE_URL: database, SWITCHYARD_DATA_DIR: dir };
    const moved = await cli(["db", "migrate-admin"], env);
    expect(moved.stderr).toBe("");
    expect(moved.stdout).toMatch(/^copied .*admin\.db to postgres:\/\/app@127\.0\.0\.1:\d+\/\w+: 1 of 1 people, 1 of 1 admin API keys, 1 of 1 providers, 1 of 1 aliases, 1 of 1 routes, 2 audit entries\naudit log OK in PostgreSQL: 2 entries; head 5 [0-9a-f]{64}\n$/);
    expect(moved.code).toBe(0);
    // The archive made from the file still chains into PostgreSQL's log.
    const verified = await cli(["audit", "verify"], env);
    expect(verified.stdout).toMatch(/^audit log OK: 2 entries in the database, 3 archived; head 5 /);

    const gw = await start(database, { admin: { key: ADMIN } });
    try {
      expect((await whoAmI(gw, (await login(gw, "moved@example.com")).cookie)).body.identity).toMatchObject({ email: "moved@example.com" });
      expect((await adminCall(gw.url, apiSecret!, "RoutingService/GetHealth")).status).toBe(200);
      expect((await chat(gw.url, ADMIN, { model: "moved-route" })).status).toBe(200);
      expect(standin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);
      expect(await admin<any>(gw.url, ADMIN, "AuditService/VerifyAudit")).toMatchObject({ ok: true, headSeq: String(5 + 1 /* the sign-in */) });
    } finally {
      await gw.close();
    }

    // Again: nothing new is copied, and the audit log (now longer in PostgreSQL) is refused, changing nothing.
    const again = await cli(["db", "migrate-admin"], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/PostgreSQL's audit log already has entries \(up to 6\) that are not this file's/);
    // Into a database instances already wrote to: refused as well.
    const used = await postgres.newDatabase();
    const usedPool = pool(used);
    await ensureAdminSchema(usedPool);
    await createPgAuditLog(usedPool).record({ actorId: "bootstrap", actorLabel: "bootstrap admin key", action: "auth.login", target: "user:bootstrap" });
    const busy = await cli(["db", "migrate-admin"], { ...env, SWITCHYARD_DATABASE_URL: used });
    expect(busy.code).toBe(1);
    expect(busy.stderr).toMatch(/already has entries/);
    // Without PostgreSQL configured: a usage error.
    const none = await cli(["db", "migrate-admin"], { SWITCHYARD_DATA_DIR: dir, SWITCHYARD_DATABASE_URL: "" });
    expect(none.code).toBe(2);
  });

  it("is idempotent before instances write, and refuses a file whose audit log does not verify", async () => {
    const dir = dataDir();
    const old = await startTestGateway({ dataDir: dir, admin: { key: ADMIN } });
    try {
      await admin(old.url, ADMIN, "UserService/CreateUser", { email: "twice@example.com", name: "Twice", password: PASSWORD, grants: [] });
    } finally {
      await old.close();
    }
    const env = { SWITCHYARD_DATABASE_URL: await postgres.newDatabase(), SWITCHYARD_DATA_DIR: dir };
    expect((await cli(["db", "migrate-admin"], env)).stdout).toMatch(/1 of 1 people, .* 1 audit entries/);
    const twice = await cli(["db", "migrate-admin"], env);
    expect(twice.stdout).toMatch(/0 of 1 people, .* the audit log was already there/);
    expect(twice.code).toBe(0);

    const file = new DatabaseSync(join(dir, "admin.db"));
    file.exec("UPDATE audit SET actor_label = 'someone else' WHERE seq = 1");
    file.close();
    const tampered = await cli(["db", "migrate-admin"], { ...env, SWITCHYARD_DATABASE_URL: await postgres.newDatabase() });
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/the audit log does not verify \(entry 1: entry 1 was changed after it was written\); nothing was copied/);
  });
});
