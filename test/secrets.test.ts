import { mkdtempSync, readFileSync } from "node:fs";
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
