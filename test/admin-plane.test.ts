import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAuditLog } from "../server/admin/audit.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, adminCall, chat, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

/**
 * The admin plane end to end over HTTP: people sign in (password, admin
 * key), sessions and their cookie, CSRF, throttling, one switch for both
 * planes, the hash-chained audit log (tampering, export, archive, the CLI)
 * and secrets kept out of it.
 */
const ADMIN = "sy-admin-test-key-0123456789";
const PASSWORD = "correct horse battery staple";
let standin: OpenAIStandin;
let gw: TestGateway;
let dataDir: string;

beforeAll(async () => {
  standin = await startOpenAIStandin({ models: ["gpt-4o-mini"] });
  dataDir = mkdtempSync(join(tmpdir(), "sy-admin-"));
  gw = await startTestGateway({ dataDir, admin: { key: ADMIN }, providers: [openaiProvider(standin.url)] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

interface Session {
  cookie: string;
  csrf: string;
  setCookie: string;
}

async function call(method: string, body: object, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${gw.url}/switchyard.v1.${method}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

async function login(method: object, headers: Record<string, string> = {}): Promise<Session> {
  const r = await call("AuthService/Login", method, headers);
  if (r.status !== 200) throw new Error(`login: ${r.status} ${JSON.stringify(r.body)}`);
  const setCookie = r.headers.get("set-cookie")!;
  return { cookie: setCookie.split(";")[0]!, csrf: r.body.csrfToken, setCookie };
}

const as = (s: Session, withCsrf = true): Record<string, string> => ({ cookie: s.cookie, ...(withCsrf ? { "x-csrf-token": s.csrf } : {}) });

async function auditEvents(filter: object = {}): Promise<any[]> {
  return ((await admin<{ events?: any[] }>(gw.url, ADMIN, "AuditService/ListAuditEvents", { pageSize: 1000, ...filter })).events ?? []);
}

describe("sign-in and sessions", () => {
  it("signs in with the admin key; the cookie is HttpOnly, SameSite=Strict, and Secure behind TLS", async () => {
    const s = await login({ adminKey: ADMIN });
    expect(s.setCookie).toMatch(/^sy_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const me = await call("AuthService/WhoAmI", {}, { cookie: s.cookie });
    expect(me.status).toBe(200);
    expect(me.body.identity).toMatchObject({ kind: "KIND_BOOTSTRAP", id: "bootstrap" });
    expect(me.body.permissions).toContain("users.write");
    expect(me.body.csrfToken).toBe(s.csrf);
    const tls = await login({ adminKey: ADMIN }, { "x-forwarded-proto": "https" });
    expect(tls.setCookie).toMatch(/; Secure$/);
  });

  it("signs a person in with email and password; a wrong password is refused, audited and throttled", async () => {
    await admin(gw.url, ADMIN, "UserService/CreateUser", { email: "Ada@Example.com", name: "Ada", password: PASSWORD, grants: [{ role: "ADMIN_ROLE_VIEWER" }] });
    const s = await login({ password: { email: "ada@example.com", password: PASSWORD } });
    const me = await call("AuthService/WhoAmI", {}, { cookie: s.cookie });
    expect(me.body.identity).toMatchObject({ kind: "KIND_USER", email: "ada@example.com", name: "Ada" });
    expect(me.body.permissions).toEqual(["budgets.read", "cache.read", "keys.read", "logs.read", "org.read", "routing.read"]);

    const wrong = await call("AuthService/Login", { password: { email: "ada@example.com", password: "not the password!" } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toBe("sign-in failed: wrong email or password");
    const unknown = await call("AuthService/Login", { password: { email: "nobody@example.com", password: PASSWORD } });
    expect(unknown.body.message).toBe(wrong.body.message);
    const failed = await auditEvents({ action: "auth.login_failed" });
    expect(failed.some((e) => e.actorLabel === "ada@example.com" && e.outcome === "unauthenticated" && e.sourceIp !== "")).toBe(true);
    expect(JSON.stringify(failed)).not.toContain("not the password!");

    // Five failures for one account lock it for the window, even with the right password.
    for (let i = 0; i < 4; i++) await call("AuthService/Login", { password: { email: "ada@example.com", password: `wrong-${i}-xxxxxxxx` } });
    const locked = await call("AuthService/Login", { password: { email: "ada@example.com", password: PASSWORD } });
    expect(locked.status).toBe(429);
    expect(locked.body.message).toMatch(/too many failed sign-ins: try again in \d+ s/);
  });

  it("needs the CSRF token on every call made with the cookie except WhoAmI", async () => {
    const s = await login({ adminKey: ADMIN });
    const without = await call("OrgService/ListCustomers", {}, as(s, false));
    expect(without.status).toBe(403);
    expect(without.body.message).toMatch(/x-csrf-token/);
    const wrong = await call("OrgService/ListCustomers", {}, { cookie: s.cookie, "x-csrf-token": "x".repeat(32) });
    expect(wrong.status).toBe(403);
    expect((await call("OrgService/ListCustomers", {}, as(s))).status).toBe(200);
  });

  it("ends the session on logout, and refuses forged or unknown session cookies", async () => {
    const s = await login({ adminKey: ADMIN });
    expect((await call("AuthService/Logout", {}, as(s))).headers.get("set-cookie")).toMatch(/^sy_session=; .*Max-Age=0/);
    const after = await call("AuthService/WhoAmI", {}, { cookie: s.cookie });
    expect(after.status).toBe(401);
    expect(after.body.message).toMatch(/session has ended/);
    expect((await call("AuthService/WhoAmI", {}, { cookie: "sy_session=" + "A".repeat(43) })).status).toBe(401);
    expect((await call("AuthService/WhoAmI", {}, { cookie: "sy_session=../../etc" })).status).toBe(401);
  });

  it("never lets admin sessions or admin API keys run inference", async () => {
    const s = await login({ adminKey: ADMIN });
    const { secret } = await admin<{ secret: string }>(gw.url, ADMIN, "UserService/CreateApiKey", { name: "ci", grants: [{ role: "ADMIN_ROLE_OWNER" }] });
    expect(secret).toMatch(/^sk-sya-/);
    // REST: the cookie is not a credential there, and admin API keys are not inference keys.
    expect((await chat(gw.url, undefined, {}, { cookie: s.cookie })).status).toBe(401);
    expect((await chat(gw.url, secret)).status).toBe(401);
    // RPC: authenticated, but refused.
    const rpc = await call("ChatService/Complete", { request: { model: "gpt-4o-mini", messages: [{ role: "ROLE_USER", content: [{ text: "hi" }] }] } }, { authorization: `Bearer ${secret}` });
    expect(rpc.status).toBe(403);
    expect(rpc.body.message).toMatch(/inference needs a virtual key/);
    // The admin API key does call the admin plane.
    expect((await call("OrgService/ListCustomers", {}, { authorization: `Bearer ${secret}` })).status).toBe(200);
  });
});

describe("audit log", () => {
  it("records changes with actor, target, before and after, and never a secret", async () => {
    const s = await login({ adminKey: ADMIN });
    const team = (await call("OrgService/CreateTeam", { id: "research", name: "Research" }, as(s))).body.team;
    const created = (await call("KeyService/CreateKey", { name: "notebook", teamId: team.id }, as(s))).body as CreatedKey;
    expect((await chat(gw.url, created.secret)).status).toBe(200);
    const rotated = (await call("KeyService/RotateKey", { id: created.key.id }, as(s))).body as CreatedKey;
    await call("KeyService/RevokeKey", { id: created.key.id }, as(s));
    const { secret: apiSecret } = await admin<{ secret: string }>(gw.url, ADMIN, "UserService/CreateApiKey", { name: "deploy", grants: [{ role: "ADMIN_ROLE_EDITOR" }] });

    const events = await auditEvents({ target: `key:${created.key.id}` });
    expect(events.map((e) => e.action)).toEqual(["key.revoke", "key.rotate", "key.create"]);
    expect(events[0].afterJson).toContain('"revokedAt"');
    for (const e of events) {
      expect(e).toMatchObject({ actorId: "bootstrap", outcome: "ok" });
      expect(e.requestId).not.toBe("");
      expect(e.sourceIp).toMatch(/127\.0\.0\.1/);
    }
    // The key's name and team stay in its entries after it is rotated and revoked.
    const create = events[2];
    expect(JSON.parse(create.afterJson).key).toMatchObject({ name: "notebook", teamId: "research" });
    expect(JSON.parse(events[0].beforeJson)).toMatchObject({ name: "notebook", teamId: "research" });

    // Spend records too: the request made before the rotation keeps the key's name and team.
    await call("KeyService/UpdateKey", { id: created.key.id, name: "renamed" }, as(s));
    await expect.poll(async () => (await admin<{ entries?: any[] }>(gw.url, ADMIN, "LogService/SearchRequests", { filter: { key: created.key.id } })).entries ?? []).toHaveLength(1);
    const [entry] = (await admin<{ entries: any[] }>(gw.url, ADMIN, "LogService/SearchRequests", { filter: { key: created.key.id } })).entries;
    expect(entry).toMatchObject({ key: created.key.id, keyName: "notebook", team: "research", status: "ok" });

    const all = await auditEvents();
    for (const secret of [created.secret, rotated.secret, apiSecret, ADMIN, PASSWORD]) expect(JSON.stringify(all)).not.toContain(secret);
    expect(JSON.parse(create.afterJson).secret).toBe("[redacted]");
    expect(JSON.parse(all.find((e) => e.action === "apikey.create").afterJson).secret).toBe("[redacted]");
  });

  it("exports JSON Lines that verify, and VerifyAudit finds an edited, inserted or deleted entry", async () => {
    const ok = await admin<any>(gw.url, ADMIN, "AuditService/VerifyAudit");
    expect(ok).toMatchObject({ ok: true });
    expect(Number(ok.checked)).toBeGreaterThan(5);

    // Export (server streaming over Connect: enveloped JSON messages).
    const res = await fetch(`${gw.url}/switchyard.v1.AuditService/ExportAudit`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", authorization: `Bearer ${ADMIN}` },
      body: envelope(JSON.stringify({})),
    });
    const lines = unenvelope(new Uint8Array(await res.arrayBuffer()))
      .flatMap((m) => (m.jsonl === undefined ? [] : Buffer.from(m.jsonl, "base64").toString("utf8").split("\n").filter(Boolean)))
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(Number(ok.checked));
    expect(lines[0].seq).toBe(1);
    expect(lines[lines.length - 1].hash).toBe(ok.headHash);

    // Tamper with a copy of the database, as someone with file access would.
    const tamper = async (sql: string): Promise<any> => {
      const copy = join(mkdtempSync(join(tmpdir(), "sy-audit-")), "admin.db");
      const src = new DatabaseSync(join(dataDir, "admin.db"));
      src.exec(`VACUUM INTO '${copy}'`);
      src.close();
      const db = new DatabaseSync(copy);
      db.exec(sql);
      const v = await createAuditLog(db).verify();
      db.close();
      return v;
    };
    expect(await tamper("SELECT 1")).toMatchObject({ ok: true });
    expect(await tamper("UPDATE audit SET after_json = '{}' WHERE seq = 3")).toMatchObject({ ok: false, firstBadSeq: 3, problem: "entry 3 was changed after it was written" });
    expect(await tamper("UPDATE audit SET actor_label = 'someone else' WHERE seq = 2")).toMatchObject({ ok: false, firstBadSeq: 2 });
    expect(await tamper("DELETE FROM audit WHERE seq = 4")).toMatchObject({ ok: false, firstBadSeq: 5, problem: "entries 4..4 are missing" });
    expect(await tamper(`DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)`)).toMatchObject({ ok: false, problem: expect.stringMatching(/removed from the end/) });
    // An inserted entry: renumber to make room, with a forged hash that cannot chain.
    expect(
      await tamper(`UPDATE audit SET seq = seq + 1000 WHERE seq > 2; UPDATE audit SET seq = seq - 999 WHERE seq > 1000;
              INSERT INTO audit SELECT 3, time_ms, 'usr_forged', 'forger', 'key.create', 'key:x', '', '', '', '', 'ok', hash, '${"f".repeat(64)}' FROM audit WHERE seq = 2;`),
    ).toMatchObject({ ok: false, firstBadSeq: 3 });
  });

  it("archives old entries to files that still verify, and the CLI checks the whole chain", async () => {
    const cli = (...args: string[]) => spawnSync(process.execPath, ["server/cli.ts", ...args], { env: { ...process.env, SWITCHYARD_DATA_DIR: dataDir }, encoding: "utf8" });
    const before = cli("audit", "verify");
    expect(before.stdout).toMatch(/^audit log OK/);
    expect(before.status).toBe(0);

    // Archive everything written so far from a second handle on the same file (as retention does).
    const db = new DatabaseSync(join(dataDir, "admin.db"));
    const archived = await createAuditLog(db).archive(Date.now() + 1, join(dataDir, "audit-archive"));
    db.close();
    expect(archived.archived).toBeGreaterThan(5);
    expect((await admin<any>(gw.url, ADMIN, "AuditService/VerifyAudit")).ok).toBe(true);
    await admin(gw.url, ADMIN, "OrgService/CreateCustomer", { id: "acme", name: "Acme" });
    expect((await admin<any>(gw.url, ADMIN, "AuditService/VerifyAudit")).ok).toBe(true);
    const ok = cli("audit", "verify");
    expect(ok.stdout).toMatch(new RegExp(`^audit log OK: 1 entries in the database, ${archived.archived} archived`));

    // An edited archive line is found by the CLI.
    const file = join(dataDir, "audit-archive", readdirSync(join(dataDir, "audit-archive"))[0]!);
    const text = readFileSync(file, "utf8");
    writeFileSync(file, text.replace('"actorId":"bootstrap"', '"actorId":"usr_someone"'));
    const bad = cli("audit", "verify");
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/^audit log ALTERED at entry \d+: audit-\d+-\d+\.jsonl: entry \d+ was changed/);
    writeFileSync(file, text);
    expect(cli("audit", "verify").status).toBe(0);
  });
});

describe("one switch for both planes", () => {
  it("closes inference once an owner exists, even with no keys at all; the CLI creates the first owner", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sy-owner-"));
    const open = await startTestGateway({ dataDir: dir, providers: [openaiProvider(standin.url)] });
    try {
      expect((await chat(open.url, undefined)).status).toBe(200);
      const cfg = await adminCall(open.url, undefined, "AuthService/GetAuthConfig");
      expect(cfg.body).toMatchObject({ needsBootstrap: true });
      expect(cfg.body["adminKeyLogin"]).toBeUndefined();

      const out = execFileSync(process.execPath, ["server/cli.ts", "admin", "create-owner", "--email", "owner@example.com", "--name", "Owner"], {
        env: { ...process.env, SWITCHYARD_DATA_DIR: dir, SWITCHYARD_OWNER_PASSWORD: PASSWORD },
        encoding: "utf8",
      });
      expect(out).toMatch(/^owner owner@example\.com created \(usr_[0-9a-f]{16}\)/);
      // The running gateway notices within a second.
      await expect.poll(async () => (await chat(open.url, undefined)).status, { timeout: 3000, interval: 100 }).toBe(401);
      const r = await fetch(`${open.url}/switchyard.v1.AuthService/Login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ password: { email: "owner@example.com", password: PASSWORD } }) });
      expect(r.status).toBe(200);
      const cookie = r.headers.get("set-cookie")!.split(";")[0]!;
      const csrf = ((await r.json()) as { csrfToken: string }).csrfToken;
      const key = await fetch(`${open.url}/switchyard.v1.KeyService/CreateKey`, { method: "POST", headers: { "content-type": "application/json", cookie, "x-csrf-token": csrf }, body: JSON.stringify({ name: "first" }) });
      const { secret } = (await key.json()) as CreatedKey;
      expect((await chat(open.url, secret)).status).toBe(200);
      const events = (await (await fetch(`${open.url}/switchyard.v1.AuditService/ListAuditEvents`, { method: "POST", headers: { "content-type": "application/json", cookie, "x-csrf-token": csrf }, body: "{}" })).json()) as { events: any[] };
      expect(events.events.map((e) => e.action)).toEqual(["key.create", "auth.login", "user.create"]);
      expect(events.events[2]).toMatchObject({ actorId: "cli" });
    } finally {
      await open.close();
    }
  });

  it("refuses a weak password and a second owner with the same email", () => {
    const dir = mkdtempSync(join(tmpdir(), "sy-owner-"));
    const run = (password: string) => spawnSync(process.execPath, ["server/cli.ts", "admin", "create-owner", "--email", "a@example.com"], { env: { ...process.env, SWITCHYARD_DATA_DIR: dir, SWITCHYARD_OWNER_PASSWORD: password }, encoding: "utf8" });
    expect(run("short").stderr).toMatch(/password: at least 12 characters/);
    expect(run(PASSWORD).status).toBe(0);
    const again = run(PASSWORD);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/a user with email a@example.com exists/);
  });
});

/** Connect streaming envelopes (flags byte, 4-byte big-endian length, JSON). */
function envelope(json: string): Uint8Array {
  const body = Buffer.from(json);
  const out = Buffer.alloc(5 + body.length);
  out.writeUInt32BE(body.length, 1);
  body.copy(out, 5);
  return out;
}

function unenvelope(buf: Uint8Array): any[] {
  const out: any[] = [];
  const b = Buffer.from(buf);
  for (let i = 0; i + 5 <= b.length; ) {
    const flags = b[i]!;
    const n = b.readUInt32BE(i + 1);
    const m = JSON.parse(b.subarray(i + 5, i + 5 + n).toString("utf8"));
    if ((flags & 2) === 0) out.push(m);
    else if (m.error) throw new Error(JSON.stringify(m.error));
    i += 5 + n;
  }
  return out;
}

describe("bootstrap sessions", () => {
  it("end when the admin key changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sy-bootstrap-"));
    const first = await startTestGateway({ dataDir: dir, admin: { key: ADMIN }, providers: [openaiProvider(standin.url)] });
    let cookie: string;
    try {
      const r = await fetch(`${first.url}/switchyard.v1.AuthService/Login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ adminKey: ADMIN }) });
      cookie = r.headers.get("set-cookie")!.split(";")[0]!;
    } finally {
      await first.close();
    }
    const whoAmI = (url: string) => fetch(`${url}/switchyard.v1.AuthService/WhoAmI`, { method: "POST", headers: { "content-type": "application/json", cookie }, body: "{}" });
    const same = await startTestGateway({ dataDir: dir, admin: { key: ADMIN }, providers: [openaiProvider(standin.url)] });
    try {
      expect((await whoAmI(same.url)).status).toBe(200);
    } finally {
      await same.close();
    }
    const rotated = await startTestGateway({ dataDir: dir, admin: { key: ADMIN + "-rotated" }, providers: [openaiProvider(standin.url)] });
    try {
      expect((await whoAmI(rotated.url)).status).toBe(401);
    } finally {
      await rotated.close();
    }
  });
});

describe("admin API keys follow their creator", () => {
  it("stop when the person who made them is disabled, and cannot change that person's own grants", async () => {
    const { user } = await admin<{ user: { id: string } }>(gw.url, ADMIN, "UserService/CreateUser", { email: "kim@example.com", name: "Kim", password: PASSWORD, grants: [{ role: "ADMIN_ROLE_ADMIN" }] });
    const s = await login({ password: { email: "kim@example.com", password: PASSWORD } });
    const made = await call("UserService/CreateApiKey", { name: "kim-ci", grants: [{ role: "ADMIN_ROLE_ADMIN" }] }, as(s));
    expect(made.status).toBe(200);
    const bearer = { authorization: `Bearer ${made.body.secret}` };
    expect((await call("OrgService/ListCustomers", {}, bearer)).status).toBe(200);
    // Through the key, Kim is still Kim: no changing her own grants.
    const own = await call("UserService/SetGrants", { userId: user.id, grants: [{ role: "ADMIN_ROLE_VIEWER" }] }, bearer);
    expect(own.status).toBe(403);
    expect(own.body.message).toMatch(/your own grants/);
    await admin(gw.url, ADMIN, "UserService/UpdateUser", { id: user.id, disabled: true });
    const after = await call("OrgService/ListCustomers", {}, bearer);
    expect(after.status).toBe(401);
    expect(after.body.message).toMatch(/creator is disabled or gone/);
    await admin(gw.url, ADMIN, "UserService/UpdateUser", { id: user.id, disabled: false });
    expect((await call("OrgService/ListCustomers", {}, bearer)).status).toBe(200);
  });
});
