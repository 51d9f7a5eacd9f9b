import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../server/app.ts";
import { validateConfig } from "../server/config/load.ts";
import { createLogger } from "../server/telemetry/log.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";

// Canary secrets: the gateway key and the provider key never show up in logs
// (debug level), responses, metrics or the request log, whatever happens.

const GATEWAY_KEY = "sk-canary-gateway-key-7f3a9c2e5b1d";
const PROVIDER_KEY = "sk-canary-provider-key-4e8b2a6c9d0f";
let standin: OpenAIStandin;
let gw: RunningGateway;
const lines: string[] = [];
const dataDir = mkdtempSync(join(tmpdir(), "sy-secrets-"));

beforeAll(async () => {
  standin = await startOpenAIStandin({ apiKeys: [PROVIDER_KEY] });
  const config = validateConfig({
    server: { host: "127.0.0.1", port: 0 },
    auth: { keys: [GATEWAY_KEY] },
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
  bodies.push(await (await fetch(`${gw.url}/metrics`)).text());
  await gw.close(0);

  const db = readFileSync(join(dataDir, "requests.db")).toString("latin1") + readFileSync(join(dataDir, "requests.db-wal"), { flag: "a+" }).toString("latin1");
  const everything = [...lines, ...bodies, db].join("\n");
  expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true); // debug access lines were written
  expect(everything).not.toContain(GATEWAY_KEY);
  expect(everything).not.toContain(PROVIDER_KEY);
  expect(everything).not.toContain("canary-gateway");
  expect(everything).not.toContain("canary-provider");
});
