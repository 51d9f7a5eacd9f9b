import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { redactConfig } from "../server/config/fields.ts";
import { validateConfig } from "../server/config/load.ts";
import { createLogger } from "../server/telemetry/log.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { adminCall, chat } from "./support/admin.ts";
import { startFileGateway, type TestGateway } from "./support/gateway.ts";

/**
 * Live configuration: a gateway started from a file re-reads it when it
 * changes, on SIGHUP (reloadConfig) and on ReloadConfig; a bad file is
 * refused with the field's path; fields that need a restart are reported.
 */
const ADMIN = "sy-config-reload-admin-key-0123456789";
const KEY_A = "sk-config-reload-provider-a-secret";
const KEY_B = "sk-config-reload-provider-b-secret";
const REDIS_PASSWORD = "hunter2-redis-password";

let a: OpenAIStandin;
let b: OpenAIStandin;
let gw: TestGateway;
let dir: string;
let file: string;
const lines: { level: string; msg: string; [k: string]: unknown }[] = [];

/** The file's content; `change` edits a fresh copy. */
function baseConfig(): Record<string, any> {
  return {
    server: { host: "127.0.0.1", port: 0 },
    dataDir: join(dir, "data"),
    admin: { key: ADMIN },
    governance: { redis: { url: `redis://:${REDIS_PASSWORD}@127.0.0.1:6379` } },
    routing: { retries: 0 },
    providers: [
      // The key comes from the environment, as secrets should.
      { id: "a", type: "openai", baseUrl: a.url, keys: ["${KEY_A}"] },
      { id: "b", type: "openai", baseUrl: b.url, keys: [KEY_B] },
    ],
    aliases: { fast: "a/gpt-4o-mini" },
  };
}

/** Writes the file the way editors do: a new file renamed over the old one. */
function writeConfig(content: Record<string, unknown> | string): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, typeof content === "string" ? content : stringify(content));
  renameSync(tmp, file);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Which provider served a chat on `model` (from the gateway's record of it). */
async function servedBy(model: string): Promise<string> {
  const r = await chat(gw.url, ADMIN, { model });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.headers.get("x-switchyard-provider") ?? "";
}

async function getConfig(): Promise<{ configJson: string; file: string; loadedAtMs: string; restartPending?: string[]; lastError?: string }> {
  const r = await adminCall(gw.url, ADMIN, "ConfigService/GetConfig");
  expect(r.status).toBe(200);
  return r.body as never;
}

beforeAll(async () => {
  a = await startOpenAIStandin({ apiKeys: [KEY_A] });
  b = await startOpenAIStandin({ apiKeys: [KEY_B] });
  dir = mkdtempSync(join(tmpdir(), "sy-config-reload-"));
  file = join(dir, "switchyard.yaml");
  writeConfig(baseConfig());
  const logger = createLogger("debug", (line) => lines.push(JSON.parse(line)));
  gw = await startFileGateway(file, { logger, env: { KEY_A } });
});

afterAll(async () => {
  await gw?.close();
  await a?.close();
  await b?.close();
});

describe("reloading the configuration file", () => {
  it("sends new requests to a changed alias within a second, while a stream started before finishes on the old target", async () => {
    expect(await servedBy("fast")).toBe("a");
    a.setBehavior({ kind: "slow-stream", gapMs: 250, times: 1 });
    const records = gw.records.length;
    const stream = fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ model: "fast", stream: true, messages: [{ role: "user", content: "a longer prompt to stream back" }] }),
    }).then((r) => r.text());
    let streamDone = false;
    void stream.then(() => (streamDone = true));
    await until("the stream to reach a", async () => (a.requests.some((r) => r.path === "/v1/chat/completions" && (r.body as { stream?: boolean }).stream) ? true : undefined));

    const changed = baseConfig();
    changed["aliases"] = { fast: "b/gpt-4o-mini" };
    const started = Date.now();
    writeConfig(changed);
    await until("the alias to move", async () => ((await servedBy("fast")) === "b" ? true : undefined));
    expect(Date.now() - started).toBeLessThan(1500);
    expect(streamDone, "the stream was still running when the alias moved").toBe(false);

    const text = await stream;
    expect(text).toContain("[DONE]");
    const streamed = gw.records.slice(records).find((r) => r.modelAsked === "fast" && r.latencyMs > 500);
    expect(streamed).toMatchObject({ provider: "a", ok: true });
    expect(lines.some((l) => l.msg === "configuration reloaded" && (l["changed"] as string[]).includes("aliases.fast"))).toBe(true);
  });

  it("refuses an invalid file with the bad field's path and keeps serving the running configuration", async () => {
    const bad = baseConfig();
    bad["aliases"] = { fast: "b/gpt-4o-mini" };
    bad["providers"][1].baseUrl = "not a url";
    lines.length = 0;
    writeConfig(bad);
    const refused = await until("the refusal", async () => lines.find((l) => l.msg.startsWith("configuration reload refused")));
    expect(refused.level).toBe("error");
    expect(String(refused["error"])).toContain("providers[1].baseUrl");
    expect(await servedBy("fast")).toBe("b");
    const c = await getConfig();
    expect(JSON.parse(c.configJson).aliases).toEqual({ fast: "b/gpt-4o-mini" });
    expect(JSON.parse(c.configJson).providers.map((p: { baseUrl: string }) => p.baseUrl)).toEqual([a.url, b.url]);
    expect(c.lastError).toContain("providers[1].baseUrl");
    // ReloadConfig says the same, as FAILED_PRECONDITION.
    const rpc = await adminCall<{ code: string; message: string }>(gw.url, ADMIN, "ConfigService/ReloadConfig");
    expect(rpc.body.code).toBe("failed_precondition");
    expect(rpc.body.message).toContain("providers[1].baseUrl");

    // A file that parses but does not route (an alias to a provider it lacks) is refused the same way.
    const dangling = baseConfig();
    dangling["aliases"] = { fast: "b/gpt-4o-mini", lost: "nowhere/m" };
    writeConfig(dangling);
    await expect(gw.reloadConfig()).rejects.toThrow(/aliases\.lost/);
    expect(await servedBy("fast")).toBe("b");
  });

  it("re-reads the file on the SIGHUP entry point", async () => {
    const next = baseConfig();
    next["aliases"] = { fast: "b/gpt-4o-mini", slow: "a/gpt-4o" };
    writeConfig(next);
    const r = await gw.reloadConfig();
    expect(r.changed).toContain("aliases.slow");
    expect(await servedBy("slow")).toBe("a");
    expect((await getConfig()).lastError ?? "").toBe("");
  });

  it("reports a changed port as needing a restart and keeps listening where it was", async () => {
    const next = baseConfig();
    next["aliases"] = { fast: "b/gpt-4o-mini", slow: "a/gpt-4o" };
    next["server"].port = 1;
    lines.length = 0;
    writeConfig(next);
    const warned = await until("the warning", async () => lines.find((l) => l.level === "warn" && l.msg.includes("needs a restart")));
    expect(warned.msg).toContain("server.port changed in the file but needs a restart");
    expect(await servedBy("fast")).toBe("b"); // still on the same port
    const c = await getConfig();
    expect(c.restartPending).toEqual(["server.port"]);
    expect(JSON.parse(c.configJson).server.port).toBe(0);
    writeConfig({ ...next, server: { host: "127.0.0.1", port: 0 } });
    await until("the pending list to clear", async () => ((await getConfig()).restartPending === undefined ? true : undefined));
  });

  it("reloads over ReloadConfig for an owner, and refuses admins and editors", async () => {
    const ok = await adminCall(gw.url, ADMIN, "ConfigService/ReloadConfig");
    expect(ok.status).toBe(200);
    expect(ok.body).toHaveProperty("afterJson");
    for (const role of ["ADMIN_ROLE_ADMIN", "ADMIN_ROLE_EDITOR"]) {
      const minted = await adminCall<{ secret: string }>(gw.url, ADMIN, "UserService/CreateApiKey", { name: role, grants: [{ role }] });
      expect(minted.status).toBe(200);
      const refused = await adminCall<{ code: string }>(gw.url, minted.body.secret, "ConfigService/ReloadConfig");
      expect(refused.status, role).toBe(403);
      expect(refused.body.code).toBe("permission_denied");
      // GetConfig needs providers.write: admins read it, editors do not.
      const read = await adminCall(gw.url, minted.body.secret, "ConfigService/GetConfig");
      expect(read.status, role).toBe(role === "ADMIN_ROLE_ADMIN" ? 200 : 403);
    }
  });

  it("never shows a provider key, the admin key or a Redis password in GetConfig", async () => {
    const c = await getConfig();
    const text = JSON.stringify(c);
    for (const secret of [KEY_A, KEY_B, ADMIN, REDIS_PASSWORD]) expect(text).not.toContain(secret);
    const config = JSON.parse(c.configJson);
    expect(config.providers[0].keys).toEqual(["[redacted]"]);
    expect(config.admin.key).toBe("[redacted]");
    expect(config.governance.redis.url).toBe("redis://:[redacted]@127.0.0.1:6379");
    expect(c.file).toBe(file);
    expect(Number(c.loadedAtMs)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("records every reload in the audit log: file changes and SIGHUP as the system, RPCs as the caller", async () => {
    const r = await adminCall<{ events: { actorId: string; actorLabel: string; outcome: string; afterJson: string }[] }>(gw.url, ADMIN, "AuditService/ListAuditEvents", { action: "config.reload", pageSize: 100 });
    expect(r.status).toBe(200);
    const events = r.body.events;
    expect(events.some((e) => e.actorId === "system" && e.actorLabel.includes("file") && e.outcome === "ok")).toBe(true);
    expect(events.some((e) => e.actorId === "system" && e.actorLabel.includes("SIGHUP"))).toBe(true);
    expect(events.some((e) => e.actorId === "system" && e.outcome === "invalid_config" && e.afterJson.includes("providers[1].baseUrl"))).toBe(true);
    expect(events.some((e) => e.actorId === "bootstrap" && e.outcome === "ok")).toBe(true);
    expect(events.some((e) => e.actorId === "bootstrap" && e.outcome === "failed_precondition")).toBe(true);
    expect(events.some((e) => e.outcome === "permission_denied")).toBe(true);
    for (const e of events) for (const secret of [KEY_A, KEY_B, ADMIN]) expect(JSON.stringify(e)).not.toContain(secret);
  });

  it("keeps providers made through ProviderService across a reload, and refuses a file that takes their id", async () => {
    const made = await adminCall(gw.url, ADMIN, "ProviderService/CreateProvider", { id: "c", type: "openai", baseUrl: b.url, apiKeys: [KEY_B] });
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    const next = baseConfig();
    next["aliases"] = { fast: "a/gpt-4o-mini" };
    writeConfig(next);
    await until("the alias to move back", async () => ((await servedBy("fast")) === "a" ? true : undefined));
    expect(await servedBy("c/gpt-4o-mini")).toBe("c");
    const listed = await adminCall<{ providers: { id: string; source: string }[] }>(gw.url, ADMIN, "ProviderService/ListProviders");
    expect(listed.body.providers.map((p) => `${p.id}:${p.source}`)).toEqual(["a:SOURCE_CONFIG", "b:SOURCE_CONFIG", "c:SOURCE_ADMIN"]);

    const clash = baseConfig();
    clash["providers"].push({ id: "c", type: "openai", baseUrl: a.url, keys: [KEY_A] });
    writeConfig(clash);
    await expect(gw.reloadConfig()).rejects.toThrow(/'c' is also a provider made through ProviderService/);
    expect(await servedBy("c/gpt-4o-mini")).toBe("c");
    // Providers removed from the file go; the admin one stays.
    const fewer = baseConfig();
    fewer["providers"] = [fewer["providers"][0]];
    fewer["aliases"] = {};
    writeConfig(fewer);
    await gw.reloadConfig();
    const after = await adminCall<{ providers: { id: string }[] }>(gw.url, ADMIN, "ProviderService/ListProviders");
    expect(after.body.providers.map((p) => p.id)).toEqual(["a", "c"]);
  });
});

describe("live settings beyond routing", () => {
  it("swaps the gateway keys (auth.keys) and the retry settings in place", async () => {
    const gatewayKey = "sk-config-reload-gateway-key-1";
    const next = baseConfig();
    next["auth"] = { keys: [gatewayKey] };
    next["routing"] = { retries: 2, backoffMs: 0 };
    writeConfig(next);
    const r = await gw.reloadConfig();
    expect(r.changed).toEqual(expect.arrayContaining(["auth.keys", "routing.retries", "routing.backoffMs"]));
    expect(r.restartPending).toEqual([]);
    expect((await chat(gw.url, gatewayKey, { model: "a/gpt-4o-mini" })).status).toBe(200);
    // Two failures, then an answer: the new retry count is what a request now gets.
    a.setBehavior({ kind: "status", status: 503, times: 2, path: "/v1/chat/completions" });
    const retried = await chat(gw.url, gatewayKey, { model: "a/gpt-4o-mini" });
    expect(retried.status).toBe(200);
    expect(retried.headers.get("x-switchyard-attempts")).toBe("3");

    writeConfig(baseConfig());
    await gw.reloadConfig();
    expect((await chat(gw.url, gatewayKey, { model: "a/gpt-4o-mini" })).status).toBe(401);
  });
});

describe("redactConfig", () => {
  it("redacts OIDC client secrets, AWS credentials, header values and gateway keys", () => {
    const config = validateConfig({
      auth: { keys: ["sk-gateway-key-0123456789"] },
      admin: { oidc: { issuer: "https://idp.example.com", clientId: "switchyard", clientSecret: "oidc-client-secret-value", redirectUri: "https://gw.example.com/ui/auth/oidc/callback" } },
      providers: [
        { type: "bedrock", region: "us-east-1", credentials: [{ accessKeyId: "AKIAEXAMPLE", secretAccessKey: "aws-secret-access-key", sessionToken: "aws-session-token" }] },
        { type: "openai", keys: ["sk-openai"], headers: { "OpenAI-Organization": "org-private" } },
      ],
    });
    const text = JSON.stringify(redactConfig(config));
    for (const secret of ["sk-gateway-key-0123456789", "oidc-client-secret-value", "AKIAEXAMPLE", "aws-secret-access-key", "aws-session-token", "sk-openai", "org-private"]) {
      expect(text).not.toContain(secret);
    }
    expect(text).toContain("OpenAI-Organization"); // names stay
    expect(text).toContain("https://idp.example.com");
  });
});
