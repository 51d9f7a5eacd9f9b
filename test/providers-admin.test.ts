import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, adminCall, chat } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

/**
 * Providers, aliases and routes made through ProviderService, end to end: a
 * gateway that starts with no providers at all gets one over the admin API
 * and serves through it; keys never come back out (API, audit, database
 * file); changes are live, validated, persisted (encrypted) and restricted
 * to global owners and admins.
 */
const ADMIN = "sy-admin-providers-test-key-0123456789";
const KEY1 = "sk-admin-made-key-one-0123456789abcdef";
const KEY2 = "sk-admin-made-key-two-fedcba9876543210";

let standin: OpenAIStandin;

beforeAll(async () => {
  standin = await startOpenAIStandin({ apiKeys: [KEY1, KEY2, "sk-test"], models: ["gpt-4o-mini", "gpt-4o"] });
});

afterAll(async () => {
  await standin?.close();
});

beforeEach(() => {
  standin.setBehavior(null);
  // The generated master.key is used unless a test says otherwise.
  vi.stubEnv("SWITCHYARD_MASTER_KEY", "");
});

const call = (gw: TestGateway, method: string, body: object = {}, key = ADMIN) => adminCall<any>(gw.url, key, `ProviderService/${method}`, body);
const ok = (gw: TestGateway, method: string, body: object = {}) => admin<any>(gw.url, ADMIN, `ProviderService/${method}`, body);
const lastAuth = (): string | undefined => standin.requests.at(-1)?.headers.authorization;

function provider(id: string, extra: object = {}): object {
  return { id, type: "openai", baseUrl: standin.url, apiKeys: [KEY1], models: ["gpt-4o-mini", "gpt-4o"], ...extra };
}

async function auditEvents(gw: TestGateway): Promise<any[]> {
  return (await admin<{ events?: any[] }>(gw.url, ADMIN, "AuditService/ListAuditEvents", { pageSize: 1000 })).events ?? [];
}

describe("a gateway started with no providers", () => {
  let gw: TestGateway;
  const dataDir = mkdtempSync(join(tmpdir(), "sy-providers-"));
  const start = (): Promise<TestGateway> => startTestGateway({ dataDir, admin: { key: ADMIN }, routing: { deadlineMs: 300 } });

  beforeAll(async () => {
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "");
    gw = await start();
  });

  afterAll(async () => {
    await gw?.close();
  });

  it("answers model_not_found until a provider exists", async () => {
    const r = await chat(gw.url, ADMIN);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("model_not_found");
    expect((await ok(gw, "ListProviders")).providers ?? []).toEqual([]);
  });

  it("serves through a provider made over the API, with its key", async () => {
    const created = await ok(gw, "CreateProvider", provider("primary"));
    expect(created.provider).toMatchObject({ id: "primary", type: "openai", keyCount: 1, source: "SOURCE_ADMIN" });
    const r = await chat(gw.url, ADMIN);
    expect(r.status).toBe(200);
    expect(r.body.choices[0].message.content).toBe("echo: hi");
    expect(lastAuth()).toBe(`Bearer ${KEY1}`);
  });

  it("lists providers with key hints, never the keys", async () => {
    const res = await fetch(`${gw.url}/switchyard.v1.ProviderService/ListProviders`, {
      method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, body: "{}",
    });
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text).not.toContain(KEY1);
    expect(text).not.toContain(KEY1.slice(3, -4));
    const body = JSON.parse(text);
    expect(body.providers).toEqual([expect.objectContaining({ id: "primary", baseUrl: standin.url, keyHints: ["sk-…cdef"], source: "SOURCE_ADMIN" })]);
    expect(body.providers[0].createdAt).toBeDefined();
  });

  it("uses an alias and a weighted route as soon as they are set", async () => {
    await ok(gw, "CreateProvider", provider("second", { apiKeys: [KEY2] }));
    await ok(gw, "SetAlias", { name: "fast", target: "primary/gpt-4o-mini" });
    const aliased = await chat(gw.url, ADMIN, { model: "fast" });
    expect(aliased.status).toBe(200);
    expect(gw.records.at(-1)).toMatchObject({ provider: "primary", model: "gpt-4o-mini" });

    const route = await ok(gw, "SetRoute", { name: "balanced", targets: [{ model: "primary/gpt-4o", weight: 1 }, { model: "second/gpt-4o", weight: 3 }] });
    expect(route.route).toMatchObject({ name: "balanced", source: "SOURCE_ADMIN" });
    const seen = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const r = await chat(gw.url, ADMIN, { model: "balanced" });
      expect(r.status).toBe(200);
      const p = gw.records.at(-1)!.provider;
      seen.set(p, (seen.get(p) ?? 0) + 1);
    }
    expect(seen.get("primary")).toBeGreaterThan(0);
    expect(seen.get("second")).toBeGreaterThan(seen.get("primary")!);

    const routes = await ok(gw, "ListRoutes");
    expect(routes.aliases).toEqual([{ name: "fast", target: "primary/gpt-4o-mini", source: "SOURCE_ADMIN" }]);
    expect(routes.routes).toEqual([expect.objectContaining({ name: "balanced", targets: [{ model: "primary/gpt-4o", weight: 1 }, { model: "second/gpt-4o", weight: 3 }] })]);
    const models = await (await fetch(`${gw.url}/v1/models`, { headers: { authorization: `Bearer ${ADMIN}` } })).json() as { data: { id: string }[] };
    expect(models.data.map((m) => m.id)).toEqual(expect.arrayContaining(["primary/gpt-4o-mini", "second/gpt-4o", "fast"]));
  });

  it("uses a new key at once after an update", async () => {
    const updated = await ok(gw, "UpdateProvider", { id: "primary", apiKeys: [KEY2] });
    expect(updated.provider.keyHints).toEqual(["sk-…3210"]);
    expect((await chat(gw.url, ADMIN, { model: "primary/gpt-4o-mini" })).status).toBe(200);
    expect(lastAuth()).toBe(`Bearer ${KEY2}`);
    await ok(gw, "UpdateProvider", { id: "primary", apiKeys: [KEY1] });
    expect((await chat(gw.url, ADMIN, { model: "primary/gpt-4o-mini" })).status).toBe(200);
    expect(lastAuth()).toBe(`Bearer ${KEY1}`);
  });

  it("refuses a change that would not route, and keeps serving", async () => {
    const bad = await call(gw, "SetRoute", { name: "broken", targets: [{ model: "nowhere/gpt-4o" }] });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/route 'broken': targets\[0\]\.model: .*nowhere\/gpt-4o/);
    const inUse = await call(gw, "DeleteProvider", { id: "second" });
    expect(inUse.status).toBe(400);
    expect(inUse.body.message).toMatch(/route 'balanced'/);
    const badAlias = await call(gw, "SetAlias", { name: "nowhere", target: "ghost/gpt-4o" });
    expect(badAlias.status).toBe(400);
    const badType = await call(gw, "CreateProvider", provider("third", { type: "bedrock" }));
    expect(badType.status).toBe(400);
    const noKey = await call(gw, "CreateProvider", provider("third", { apiKeys: [] }));
    expect(noKey.status).toBe(400);
    expect(noKey.body.message).toMatch(/^api_keys: /);

    expect((await ok(gw, "ListRoutes")).routes.map((r: { name: string }) => r.name)).toEqual(["balanced"]);
    expect((await ok(gw, "ListProviders")).providers.map((p: { id: string }) => p.id)).toEqual(["primary", "second"]);
    expect((await chat(gw.url, ADMIN, { model: "balanced" })).status).toBe(200);
  });

  it("refuses link-local and cloud metadata base URLs, allows loopback", async () => {
    for (const baseUrl of ["http://169.254.169.254/v1", "http://2852039166/", "http://[fe80::1]/v1", "http://[fd00:ec2::254]/", "http://metadata.google.internal/", "http://[::ffff:169.254.169.254]/", "file:///etc/passwd", "http://user:pw@127.0.0.1/"]) {
      const r = await call(gw, "CreateProvider", provider("meta", { baseUrl }));
      expect(r.status, baseUrl).toBe(400);
      expect(r.body.message, baseUrl).toMatch(/^base_url: /);
    }
    const r = await call(gw, "CreateProvider", provider("credhdr", { headers: { "x-api-key": "nope" } }));
    expect(r.status).toBe(400);
    expect((await ok(gw, "ListProviders")).providers).toHaveLength(2);
  });

  it("refuses viewers and editors; viewers may list", async () => {
    for (const role of ["ADMIN_ROLE_VIEWER", "ADMIN_ROLE_EDITOR"]) {
      const { secret } = await admin<{ secret: string }>(gw.url, ADMIN, "UserService/CreateApiKey", { name: role, grants: [{ role }] });
      expect((await call(gw, "ListProviders", {}, secret)).status).toBe(200);
      for (const [method, body] of [
        ["CreateProvider", provider("sneaky")],
        ["UpdateProvider", { id: "primary", baseUrl: "http://127.0.0.1:1/v1" }],
        ["DeleteProvider", { id: "second" }],
        ["SetAlias", { name: "x", target: "primary/gpt-4o" }],
        ["DeleteAlias", { name: "fast" }],
        ["SetRoute", { name: "x", targets: [{ model: "primary/gpt-4o" }] }],
        ["DeleteRoute", { name: "balanced" }],
      ] as const) {
        const r = await call(gw, method, body, secret);
        expect(r.status, `${role} ${method}`).toBe(403);
        expect(r.body.message).toMatch(/providers\.write/);
      }
    }
    const { secret } = await admin<{ secret: string }>(gw.url, ADMIN, "UserService/CreateApiKey", { name: "admin", grants: [{ role: "ADMIN_ROLE_ADMIN" }] });
    expect((await call(gw, "SetAlias", { name: "by-admin", target: "primary/gpt-4o" }, secret)).status).toBe(200);
    expect((await call(gw, "DeleteAlias", { name: "by-admin" }, secret)).status).toBe(200);
  });

  it("lets a stream in flight finish while its provider is replaced and retired", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 80, times: 1 });
    const text = "x".repeat(100);
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ model: "primary/gpt-4o-mini", stream: true, messages: [{ role: "user", content: text }] }),
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    // Replaces primary (new key: a new provider); the old one is closed after the grace (deadlineMs + 1 s).
    await ok(gw, "UpdateProvider", { id: "primary", apiKeys: [KEY2] });
    const changedAt = Date.now();
    let body = new TextDecoder().decode(first.value);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      body += new TextDecoder().decode(value);
    }
    expect(body).toContain("data: [DONE]");
    // The stream outlived the old provider's grace: it finished on a provider already being closed.
    expect(Date.now() - changedAt).toBeGreaterThan(1_300);
    const content = body.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? "").join("");
    expect(content).toBe(`echo: ${text}`);
    expect((await chat(gw.url, ADMIN, { model: "primary/gpt-4o-mini" })).status).toBe(200);
    expect(lastAuth()).toBe(`Bearer ${KEY2}`);
  });

  it("deletes: model_not_found afterwards", async () => {
    expect((await ok(gw, "DeleteRoute", { name: "balanced" })).route.name).toBe("balanced");
    expect((await ok(gw, "DeleteAlias", { name: "fast" })).alias.target).toBe("primary/gpt-4o-mini");
    expect((await ok(gw, "DeleteProvider", { id: "second" })).provider.id).toBe("second");
    expect((await chat(gw.url, ADMIN, { model: "second/gpt-4o" })).body.error.code).toBe("model_not_found");
    expect((await ok(gw, "DeleteProvider", { id: "primary" })).provider.id).toBe("primary");
    const r = await chat(gw.url, ADMIN);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("model_not_found");
    expect((await call(gw, "DeleteProvider", { id: "primary" })).status).toBe(404);
  });

  it("audits every change, keys redacted", async () => {
    // A refused call with keys is audited too.
    expect((await call(gw, "CreateProvider", provider("meta", { baseUrl: "http://169.254.169.254/" }))).status).toBe(400);
    const events = await auditEvents(gw);
    const actions = events.map((e) => e.action);
    for (const a of ["provider.create", "provider.update", "provider.delete", "alias.set", "alias.delete", "route.set", "route.delete"]) {
      expect(actions, a).toContain(a);
    }
    const created = events.find((e) => e.action === "provider.create" && e.target === "provider:primary" && e.outcome === "ok");
    expect(created.afterJson).toContain("sk-…cdef");
    const refused = events.find((e) => e.action === "provider.create" && e.target === "provider:meta" && e.outcome !== "ok");
    expect(refused.afterJson).toContain("[redacted]");
    const all = JSON.stringify(events);
    expect(all).not.toContain(KEY1);
    expect(all).not.toContain(KEY2);
  });

  it("keeps admin-made providers across a restart, keys encrypted at rest", async () => {
    await ok(gw, "CreateProvider", provider("keeper"));
    await ok(gw, "SetAlias", { name: "kept", target: "keeper/gpt-4o-mini" });
    await gw.close();
    gw = await start();
    expect((await ok(gw, "ListProviders")).providers).toEqual([expect.objectContaining({ id: "keeper", keyHints: ["sk-…cdef"] })]);
    const r = await chat(gw.url, ADMIN, { model: "kept" });
    expect(r.status).toBe(200);
    expect(lastAuth()).toBe(`Bearer ${KEY1}`);

    const files = ["admin.db", "admin.db-wal"].map((f) => join(dataDir, f)).filter((f) => existsSync(f));
    const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
    expect(bytes.length).toBeGreaterThan(0);
    for (const k of [KEY1, KEY2]) {
      expect(bytes.includes(Buffer.from(k))).toBe(false);
      expect(bytes.includes(Buffer.from(k, "utf16le"))).toBe(false);
    }
    expect(bytes.includes(Buffer.from("keeper"))).toBe(true);
    expect(statSync(join(dataDir, "master.key")).mode & 0o777).toBe(0o600);
  });

  it("refuses to start with a different master key", async () => {
    await gw.close();
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "not-the-key-that-sealed-them-0123");
    await expect(start()).rejects.toThrow(/cannot decrypt provider keys: SWITCHYARD_MASTER_KEY changed\?/);
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "");
    gw = await start();
    expect((await chat(gw.url, ADMIN, { model: "kept" })).status).toBe(200);
  });
});

describe("SWITCHYARD_MASTER_KEY", () => {
  it("seals with the variable (no key file) and needs the same one to start", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sy-providers-env-"));
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "correct-master-key-from-a-secret-store");
    let gw = await startTestGateway({ dataDir, admin: { key: ADMIN } });
    await ok(gw, "CreateProvider", provider("envkey"));
    await gw.close();
    expect(existsSync(join(dataDir, "master.key"))).toBe(false);
    gw = await startTestGateway({ dataDir, admin: { key: ADMIN } });
    expect((await chat(gw.url, ADMIN)).status).toBe(200);
    await gw.close();
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "");
    await expect(startTestGateway({ dataDir, admin: { key: ADMIN } })).rejects.toThrow(/cannot decrypt provider keys/);
  });
});

describe("providers from the configuration file", () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      admin: { key: ADMIN },
      providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini", "gpt-4o"] })],
      aliases: { cfg: "openai/gpt-4o-mini" },
      routes: { cfgroute: { targets: [{ model: "openai/gpt-4o" }] } },
    });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it("are listed, and read-only through the API", async () => {
    const list = await ok(gw, "ListProviders");
    expect(list.providers).toEqual([expect.objectContaining({ id: "openai", source: "SOURCE_CONFIG", keyCount: 1, keyHints: ["…st"] })]);
    const routes = await ok(gw, "ListRoutes");
    expect(routes.aliases).toEqual([{ name: "cfg", target: "openai/gpt-4o-mini", source: "SOURCE_CONFIG" }]);
    expect(routes.routes).toEqual([expect.objectContaining({ name: "cfgroute", source: "SOURCE_CONFIG" })]);
    for (const [method, body] of [
      ["UpdateProvider", { id: "openai", apiKeys: [KEY1] }],
      ["DeleteProvider", { id: "openai" }],
      ["CreateProvider", provider("openai")],
      ["SetAlias", { name: "cfg", target: "openai/gpt-4o" }],
      ["DeleteAlias", { name: "cfg" }],
      ["SetRoute", { name: "cfgroute", targets: [{ model: "openai/gpt-4o-mini" }] }],
      ["DeleteRoute", { name: "cfgroute" }],
    ] as const) {
      const r = await call(gw, method, body);
      expect(r.status, method).toBe(403);
      expect(r.body.message, method).toMatch(/configuration file/);
    }
    expect((await chat(gw.url, ADMIN, { model: "cfg" })).status).toBe(200);
    expect(lastAuth()).toBe("Bearer sk-test");
  });

  it("route together with admin-made ones", async () => {
    await ok(gw, "CreateProvider", provider("extra", { apiKeys: [KEY2] }));
    await ok(gw, "SetRoute", { name: "mixed", targets: [{ model: "extra/gpt-4o" }], fallbacks: ["cfg"] });
    expect((await chat(gw.url, ADMIN, { model: "mixed" })).status).toBe(200);
    expect(lastAuth()).toBe(`Bearer ${KEY2}`);
    standin.setBehavior({ kind: "status", status: 503, times: 1 });
    const r = await chat(gw.url, ADMIN, { model: "mixed" });
    expect(r.status).toBe(200);
    expect(gw.records.at(-1)).toMatchObject({ provider: "openai", tried: ["extra/gpt-4o", "openai/gpt-4o-mini"] });
  });
});
