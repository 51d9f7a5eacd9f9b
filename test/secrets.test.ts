import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../server/app.ts";
import { validateConfig } from "../server/config/load.ts";
import { createLogger } from "../server/telemetry/log.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";

// Canary secrets: the gateway key, the admin key, a virtual key and the
// provider key never show up in logs (debug level), responses (other than the
// one that creates the virtual key), metrics, the request log or the
// governance database, whatever happens.

const GATEWAY_KEY = "sk-canary-gateway-key-7f3a9c2e5b1d";
const PROVIDER_KEY = "sk-canary-provider-key-4e8b2a6c9d0f";
const ADMIN_KEY = "sy-canary-admin-key-1c5e7a9b3d2f";
let standin: OpenAIStandin;
let gw: RunningGateway;
const lines: string[] = [];
const dataDir = mkdtempSync(join(tmpdir(), "sy-secrets-"));

beforeAll(async () => {
  standin = await startOpenAIStandin({ apiKeys: [PROVIDER_KEY] });
  const config = validateConfig({
    server: { host: "127.0.0.1", port: 0 },
    auth: { keys: [GATEWAY_KEY] },
    admin: { key: ADMIN_KEY },
    governance: { pricing: { "gpt-4o-mini": { input: 1, output: 1 } } },
    dataDir,
    logLevel: "debug",
    requestLog: { bodies: true },
    routing: { retries: 0 },
    providers: [{ type: "openai", baseUrl: standin.url, keys: [PROVIDER_KEY] }],
  });
  gw = await startGateway(config, { logger: createLogger("debug", (l) => lines.push(l)) });
});

afterAll(async () => {
  await gw?.close(0);
  await standin?.close();
});

it("never writes either key anywhere", async () => {
  const bodies: string[] = [];
  const call = async (headers: Record<string, string>, body: object, path = "/v1/chat/completions") => {
    const res = await fetch(`${gw.url}${path}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    bodies.push(await res.text(), JSON.stringify([...res.headers]));
    return res.status;
  };
  const chat = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hello" }] };
  expect(await call({ authorization: `Bearer ${GATEWAY_KEY}` }, chat)).toBe(200);
  expect(await call({ authorization: `Bearer ${GATEWAY_KEY}x` }, chat)).toBe(401);
  expect(await call({ "x-api-key": GATEWAY_KEY }, { ...chat, stream: true })).toBe(200);
  expect(await call({ authorization: `Bearer ${GATEWAY_KEY}` }, { model: "gpt-4o-mini", messages: [] })).toBe(400);
  // The provider rejects the gateway's key and echoes part of it, as OpenAI does.
  standin.setBehavior({ kind: "status", status: 401, times: 1, path: "/v1/chat/completions", body: { error: { message: `Incorrect API key provided: ${PROVIDER_KEY}.`, type: "invalid_request_error", param: null, code: "invalid_api_key" } } });
  expect(await call({ authorization: `Bearer ${GATEWAY_KEY}` }, chat)).toBe(502);

  // A virtual key: its secret is in the creation response only.
  const created = await fetch(`${gw.url}/switchyard.v1.KeyService/CreateKey`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ name: "canary", budget: { limitUsd: 0.0001, period: "PERIOD_DAY" } }),
  });
  const { secret, key } = (await created.json()) as { secret: string; key: { id: string } };
  expect(secret).toMatch(/^sk-sy-/);
  expect(await call({ authorization: `Bearer ${secret}` }, { ...chat, max_tokens: 10 })).toBe(200);
  expect(await call({ authorization: `Bearer ${secret}` }, { ...chat, max_tokens: 200 })).toBe(429); // its worst case exceeds the budget
  expect(await call({ "x-api-key": `${secret}x` }, chat)).toBe(401);
  expect(await call({ authorization: `Bearer ${ADMIN_KEY}` }, { id: key.id }, "/switchyard.v1.KeyService/GetKey")).toBe(200);
  expect(await call({ authorization: `Bearer ${ADMIN_KEY}` }, {}, "/switchyard.v1.KeyService/ListKeys")).toBe(200);
  expect(await call({ authorization: `Bearer ${ADMIN_KEY}` }, { keyId: key.id }, "/switchyard.v1.BudgetService/GetBudget")).toBe(200);
  expect(await call({ authorization: `Bearer ${secret}` }, {}, "/switchyard.v1.KeyService/ListKeys")).toBe(403);
  bodies.push(await (await fetch(`${gw.url}/metrics`)).text());
  await gw.close(0);

  const db = readFileSync(join(dataDir, "requests.db")).toString("latin1") + readFileSync(join(dataDir, "requests.db-wal"), { flag: "a+" }).toString("latin1");
  const governance = readFileSync(join(dataDir, "governance.db")).toString("latin1") + readFileSync(join(dataDir, "governance.db-wal"), { flag: "a+" }).toString("latin1");
  const everything = [...lines, ...bodies, db, governance].join("\n");
  expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true); // debug access lines were written
  expect(everything).not.toContain(GATEWAY_KEY);
  expect(everything).not.toContain(PROVIDER_KEY);
  expect(everything).not.toContain(ADMIN_KEY);
  expect(everything).not.toContain(secret);
  expect(everything).not.toContain(secret.slice(9, -4)); // nor the part the hint leaves out
  expect(governance).toContain(key.id); // the database was read (the key is there, by id and hash)
  expect(everything).not.toContain("canary-gateway");
  expect(everything).not.toContain("canary-provider");
});

// The admin plane's secrets too, and every sink: logs, responses, metrics,
// spans sent to a collector, the request log, the audit log (listed and
// exported) and every database file. Passwords, admin API keys, session
// tokens and provider keys added over the API must appear in none of them.
it("never writes admin secrets, sessions or API-made provider keys anywhere, spans and the audit log included", async () => {
  const { createServer } = await import("node:http");
  const PASSWORD = "canary-password-8d1f3b7e5a";
  const API_PROVIDER_KEY = "sk-canary-api-provider-3a7e1c9d";
  const otlp: string[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (d: string) => (body += d)).on("end", () => {
      otlp.push(body);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as import("node:net").AddressInfo).port}`;
  const dir = mkdtempSync(join(tmpdir(), "sy-secrets-admin-"));
  const adminLines: string[] = [];
  const apiStandin = await startOpenAIStandin({ apiKeys: [API_PROVIDER_KEY] });
  const g = await startGateway(
    validateConfig({ server: { host: "127.0.0.1", port: 0 }, admin: { key: ADMIN_KEY }, dataDir: dir, logLevel: "debug", requestLog: { bodies: true }, routing: { retries: 0 } }),
    { logger: createLogger("debug", (l) => adminLines.push(l)), tracing: { endpoint: receiverUrl, flushMs: 20 } },
  );
  const out: string[] = [];
  const call = async (method: string, body: object, headers: Record<string, string> = { authorization: `Bearer ${ADMIN_KEY}` }) => {
    const res = await fetch(`${g.url}/switchyard.v1.${method}`, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, text, headers: res.headers, json: () => JSON.parse(text) };
  };
  const keep = (r: { text: string; headers: Headers }) => out.push(r.text, JSON.stringify([...r.headers].filter(([k]) => k !== "set-cookie")));
  try {
    // A person with a password, signing in (right and wrong), and an admin API key made by the owner.
    keep(await call("UserService/CreateUser", { email: "canary@example.com", name: "Canary", password: PASSWORD, grants: [{ role: "ADMIN_ROLE_ADMIN" }] }));
    const wrong = await call("AuthService/Login", { password: { email: "canary@example.com", password: `${PASSWORD}-wrong` } });
    expect(wrong.status).toBe(401);
    keep(wrong);
    const login = await call("AuthService/Login", { password: { email: "canary@example.com", password: PASSWORD } });
    expect(login.status).toBe(200);
    const token = login.headers.get("set-cookie")!.split(";")[0]!.split("=")[1]!;
    const csrf = login.json().csrfToken as string;
    const session = { cookie: `sy_session=${token}`, "x-csrf-token": csrf };
    const made = await call("UserService/CreateApiKey", { name: "automation", grants: [{ role: "ADMIN_ROLE_EDITOR" }] }, session);
    expect(made.status).toBe(200);
    const apiKey = made.json().secret as string;
    expect(apiKey).toMatch(/^sk-sya-/);
    // A provider with its key added over the API, used by a request.
    keep(await call("ProviderService/CreateProvider", { id: "canary-api", type: "openai", baseUrl: apiStandin.url, apiKeys: [API_PROVIDER_KEY], models: ["gpt-4o-mini"] }, session));
    const res = await fetch(`${g.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}`, traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }, body: JSON.stringify({ model: "canary-api/gpt-4o-mini", messages: [{ role: "user", content: "hello" }] }) });
    expect(res.status).toBe(200);
    keep({ text: await res.text(), headers: res.headers });
    // Reads that show these records: providers, keys, users, audit (listed, verified, exported), config, logs.
    for (const [m, body, h] of [
      ["ProviderService/ListProviders", {}, session], ["UserService/ListApiKeys", {}, session], ["UserService/ListUsers", {}, session],
      ["AuditService/ListAuditEvents", { pageSize: 1000 }, undefined], ["AuditService/VerifyAudit", {}, undefined], ["ConfigService/GetConfig", {}, undefined],
      ["LogService/SearchRequests", { includeBodies: true }, undefined], ["AuthService/WhoAmI", {}, { authorization: `Bearer ${apiKey}` }],
    ] as [string, object, Record<string, string> | undefined][]) {
      const r = await call(m, body, h);
      expect(r.status, m).toBe(200);
      keep(r);
    }
    const exported = await fetch(`${g.url}/switchyard.v1.AuditService/ExportAudit`, { method: "POST", headers: { "content-type": "application/connect+json", authorization: `Bearer ${ADMIN_KEY}` }, body: Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), Buffer.from("{}")]) });
    // Connect streaming frames of {"jsonl": base64}: decode each chunk of lines.
    const raw = Buffer.from(await exported.arrayBuffer());
    let exportText = "";
    for (let at = 0; at + 5 <= raw.length; ) {
      const len = raw.readUInt32BE(at + 1);
      const frame = JSON.parse(raw.subarray(at + 5, at + 5 + len).toString()) as { jsonl?: string };
      if (frame.jsonl !== undefined) exportText += Buffer.from(frame.jsonl, "base64").toString();
      at += 5 + len;
    }
    expect(exportText).toContain("user.create");
    out.push(exportText);
    keep(await call("AuthService/Logout", {}, session));
    out.push(await (await fetch(`${g.url}/metrics`)).text());
    await expect.poll(() => otlp.some((b) => b.includes("4bf92f3577b34da6a3ce929d0e0e4736")), { timeout: 5_000 }).toBe(true);
  } finally {
    await g.close(0);
    await apiStandin.close();
    await new Promise((r) => receiver.close(r));
  }
  const files = readdirSync(dir, { recursive: true }) as string[];
  const stored = files.filter((f) => /\.(db|db-wal|jsonl|key)$/.test(f)).map((f) => readFileSync(join(dir, f)).toString("latin1"));
  expect(files).toContain("admin.db");
  const everything = [...adminLines, ...out, ...otlp, ...stored].join("\n");
  expect(otlp.length).toBeGreaterThan(0);
  for (const secret of [PASSWORD, API_PROVIDER_KEY, ADMIN_KEY, "canary-api-provider", "canary-password"]) expect(everything, secret).not.toContain(secret);
  // The session token and the admin API key were seen by the test only.
  const token = /sy_session=([^;"\s]+)/.exec(out.join(""))?.[1];
  expect(token).toBeUndefined();
  expect(everything).not.toMatch(/sk-sya-[A-Za-z0-9_-]{20,}/);
  expect(stored.join("")).toContain("canary@example.com"); // the files were read
});
