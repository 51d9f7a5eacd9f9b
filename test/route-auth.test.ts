import { readdirSync } from "node:fs";
import type { DescFile, DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, type CreatedKey } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

/**
 * Every mounted route, with no credentials and with an inference key: each
 * RPC of every switchyard.v1 service (found from the generated files, so a
 * new service is covered without editing this test) and each REST path. Only
 * signing in, health, readiness, metrics and the web UI's static files answer
 * without a key; admin services refuse inference keys.
 */
const ADMIN = "sy-admin-route-auth-0123456789";
const PUBLIC_RPCS = new Set(["switchyard.v1.AuthService/GetAuthConfig", "switchyard.v1.AuthService/Login"]);
const INFERENCE_SERVICES = new Set(["switchyard.v1.ChatService", "switchyard.v1.EmbeddingsService", "switchyard.v1.ModelService", "switchyard.v1.ResponsesService"]);

let standin: OpenAIStandin;
let gw: TestGateway;
let virtualKey: string;
const services: DescService[] = [];

beforeAll(async () => {
  const dir = new URL("../gen/switchyard/v1/", import.meta.url);
  for (const f of readdirSync(dir).filter((n) => n.endsWith("_pb.ts")).sort()) {
    const mod = (await import(new URL(f, dir).href)) as Record<string, unknown>;
    for (const v of Object.values(mod)) if (isFile(v)) services.push(...v.services);
  }
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ admin: { key: ADMIN }, providers: [openaiProvider(standin.url)] });
  virtualKey = (await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", { name: "route-auth" })).secret;
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

function isFile(v: unknown): v is DescFile {
  return typeof v === "object" && v !== null && (v as { kind?: string }).kind === "file";
}

/** Calls a method with an empty request; the Connect code it failed with, or "ok". */
async function call(service: DescService, method: DescMethod, key: string | undefined): Promise<Code | "ok"> {
  const transport = createConnectTransport({ baseUrl: gw.url, httpVersion: "1.1", interceptors: key === undefined ? [] : [(next) => (req) => (req.header.set("authorization", `Bearer ${key}`), next(req))] });
  // A generic client over any service: its methods by local name.
  const client = createClient(service, transport) as unknown as Record<string, (req: object) => unknown>;
  try {
    const r = client[method.localName]!({});
    if (method.methodKind === "server_streaming") for await (const _ of r as AsyncIterable<unknown>) break;
    else await r;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("every mounted route", () => {
  it("finds the services", () => {
    expect(services.map((s) => s.typeName)).toEqual(expect.arrayContaining(["switchyard.v1.ChatService", "switchyard.v1.KeyService", "switchyard.v1.UserService", "switchyard.v1.AuditService", "switchyard.v1.ProviderService"]));
    expect(services.length).toBeGreaterThanOrEqual(14);
  });

  it("refuses every RPC without credentials, except signing in", async () => {
    const outcomes: string[] = [];
    for (const s of services) {
      for (const m of s.methods) {
        const name = `${s.typeName}/${m.name}`;
        const got = await call(s, m, undefined);
        if (PUBLIC_RPCS.has(name)) expect(got, name).not.toBe(Code.Unauthenticated);
        else if (got !== Code.Unauthenticated) outcomes.push(`${name}: ${got}`);
      }
    }
    expect(outcomes).toEqual([]);
  });

  it("refuses every admin RPC to an inference key, and lets it reach inference", async () => {
    const wrong: string[] = [];
    for (const s of services) {
      for (const m of s.methods) {
        const name = `${s.typeName}/${m.name}`;
        if (PUBLIC_RPCS.has(name)) continue;
        const got = await call(s, m, virtualKey);
        const inference = INFERENCE_SERVICES.has(s.typeName);
        if (inference ? got === Code.PermissionDenied || got === Code.Unauthenticated : got !== Code.PermissionDenied) wrong.push(`${name}: ${got}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("refuses every REST inference path without a key; health, metrics and the UI's files are public", async () => {
    const paths: [string, string][] = [
      ["POST", "/v1/chat/completions"], ["POST", "/v1/messages"], ["POST", "/v1/messages/count_tokens"], ["POST", "/v1/responses"],
      ["GET", "/v1/responses/resp_x"], ["DELETE", "/v1/responses/resp_x"], ["GET", "/v1/responses/resp_x/input_items"],
      ["POST", "/v1/completions"], ["POST", "/v1/moderations"], ["POST", "/v1/images/generations"], ["POST", "/v1/audio/speech"],
      ["POST", "/v1/audio/transcriptions"], ["POST", "/v1/embeddings"], ["GET", "/v1/models"], ["GET", "/v1/models/gpt-4o-mini"],
    ];
    for (const [method, path] of paths) {
      const res = await fetch(gw.url + path, { method, headers: { "content-type": "application/json" }, body: method === "POST" ? "{}" : undefined });
      expect(res.status, `${method} ${path}`).toBe(401);
      // Admin credentials are not inference keys either.
      const cookie = await fetch(gw.url + path, { method, headers: { "content-type": "application/json", cookie: "sy_session=x" }, body: method === "POST" ? "{}" : undefined });
      expect(cookie.status, `${method} ${path} with a cookie`).toBe(401);
    }
    for (const path of ["/healthz", "/readyz", "/metrics", "/ui/", "/ui/#/keys"]) {
      expect((await fetch(gw.url + path)).status, path).toBe(200);
    }
    expect((await fetch(gw.url + "/ui/auth/oidc/start")).status).toBe(404); // no SSO configured
    expect((await fetch(gw.url + "/v1/nope", { headers: { authorization: `Bearer ${virtualKey}` } })).status).toBe(404);
  });
});
