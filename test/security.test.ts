import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { connect } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// The security review's points that are about what leaves the gateway: no
// server-side request forgery (provider URLs come from configuration only,
// redirects are not followed, image URLs are passed on, never fetched), only
// the gateway's own headers go upstream, and oversized requests are refused
// on every entry point without harming the server.

const GATEWAY_KEY = "sk-gateway-security-0123456789";

/** A server that records every request it gets and answers with `answer`. */
async function recorder(answer: (res: import("node:http").ServerResponse) => void): Promise<{ url: string; hits: { url: string; headers: IncomingHttpHeaders }[]; server: Server }> {
  const hits: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    hits.push({ url: req.url ?? "", headers: req.headers });
    req.resume();
    req.on("end", () => answer(res));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, server };
}

let standin: OpenAIStandin;
let canary: Awaited<ReturnType<typeof recorder>>;
let redirector: Awaited<ReturnType<typeof recorder>>;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  // What an attacker wants the gateway to fetch: it must never be asked for anything.
  canary = await recorder((res) => res.end("secret internal data"));
  // A "provider" that redirects every call to the canary.
  redirector = await recorder((res) => {
    res.writeHead(307, { location: `${canary.url}/v1/chat/completions` });
    res.end();
  });
  gw = await startTestGateway({
    auth: { keys: [GATEWAY_KEY] },
    providers: [
      { id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"], models: ["gpt-4o-mini"] },
      { id: "moved", type: "openai-compatible", baseUrl: `${redirector.url}/v1`, keys: ["sk-moved"], models: ["moved-model"] },
    ],
  });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
  canary?.server.close();
  redirector?.server.close();
});

function chat(body: object, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}`, ...headers },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...body }),
  });
}

describe("no server-side request forgery", () => {
  it("does not follow a provider's redirect: the caller gets an error, the redirect target gets nothing", async () => {
    const res = await chat({ model: "moved-model" });
    expect(res.status).toBeGreaterThanOrEqual(500);
    const body = (await res.json()) as { error: { message: string; type: string } };
    expect(body.error.type).toBeTruthy();
    expect(JSON.stringify(body)).not.toContain("secret internal data");
    expect(redirector.hits.length).toBeGreaterThan(0);
    expect(canary.hits).toEqual([]);
  });

  it("passes image URLs on to the provider and never fetches them itself", async () => {
    standin.requests.length = 0;
    const image = `${canary.url}/metadata/iam/credentials.png`;
    const res = await chat({ messages: [{ role: "user", content: [{ type: "text", text: "what is this?" }, { type: "image_url", image_url: { url: image } }] }] });
    expect(res.status, await res.clone().text()).toBe(200);
    expect(JSON.stringify(standin.requests.at(-1)?.body)).toContain(image);
    expect(canary.hits).toEqual([]);
  });

  it("ignores base URLs a request tries to set, in the body or in headers", async () => {
    standin.requests.length = 0;
    const res = await chat(
      { api_base: canary.url, base_url: canary.url, baseURL: canary.url },
      { "x-base-url": canary.url, "x-forwarded-host": new URL(canary.url).host, host: new URL(canary.url).host },
    );
    // Unknown fields are the caller's business (OpenAI ignores them too); the call still goes to the configured provider only.
    expect([200, 400], await res.clone().text()).toContain(res.status);
    expect(canary.hits).toEqual([]);
  });
});

describe("headers upstream", () => {
  it("sends only the gateway's own headers: nothing the caller sent, hop-by-hop or otherwise", async () => {
    standin.requests.length = 0;
    const res = await chat({}, {
      cookie: "session=caller-cookie",
      "proxy-authorization": "Basic Y2FsbGVyOnNlY3JldA==",
      "x-api-key": "caller-x-api-key",
      "api-key": "caller-api-key",
      "x-forwarded-for": "10.9.8.7",
      "x-custom-caller": "caller-custom",
      "openai-organization": "org-caller",
      te: "trailers",
    });
    expect(res.status).toBe(200);
    const sent = standin.requests.at(-1)!.headers;
    const text = JSON.stringify(sent);
    for (const leaked of ["caller-cookie", "Y2FsbGVyOnNlY3JldA", "caller-x-api-key", "caller-api-key", "10.9.8.7", "caller-custom", "org-caller", GATEWAY_KEY]) {
      expect(text).not.toContain(leaked);
    }
    for (const name of ["cookie", "proxy-authorization", "x-api-key", "api-key", "x-forwarded-for", "x-custom-caller", "te", "keep-alive", "upgrade"]) {
      expect(sent[name]).toBeUndefined();
    }
    // The provider's own key, not the caller's.
    expect(sent["authorization"]).toBe("Bearer sk-test");
  });
});

describe("size limits", () => {
  it("refuses oversized request headers with 431 and keeps serving", async () => {
    const status = await rawStatus(gw.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    expect(status).toBe(431);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it("refuses a body over the limit on every entry point in its own protocol", async () => {
    const small = await startTestGateway({ auth: { keys: [GATEWAY_KEY] }, server: { maxBodyBytes: 4096 }, providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }] });
    try {
      const big = "x".repeat(8192);
      const post = (path: string, body: object, headers: Record<string, string> = {}) =>
        fetch(`${small.url}${path}`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${GATEWAY_KEY}`, ...headers }, body: JSON.stringify(body) });
      for (const [path, body] of [
        ["/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: big }] }],
        ["/v1/embeddings", { model: "text-embedding-3-small", input: big }],
        ["/v1/responses", { model: "gpt-4o-mini", input: big }],
      ] as const) {
        const res = await post(path, body);
        expect(res.status, path).toBe(413);
        expect(((await res.json()) as { error: { type: string } }).error.type, path).toBe("invalid_request_error");
      }
      const messages = await post("/v1/messages", { model: "gpt-4o-mini", max_tokens: 5, messages: [{ role: "user", content: big }] }, { "x-api-key": GATEWAY_KEY, "anthropic-version": "2023-06-01" });
      expect(messages.status).toBe(413);
      expect(((await messages.json()) as { type: string; error: { type: string } })).toMatchObject({ type: "error", error: { type: "request_too_large" } });
      // Connect: resource_exhausted, in Connect's JSON error shape.
      const rpc = await post("/switchyard.v1.ChatService/Complete", { model: "gpt-4o-mini", messages: [{ role: "user", content: big }] });
      expect(rpc.status).toBe(429);
      expect(((await rpc.json()) as { code: string }).code).toBe("resource_exhausted");
      // And it still serves a request within the limit.
      const ok = await post("/v1/chat/completions", { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
      expect(ok.status, await ok.clone().text()).toBe(200);
    } finally {
      await small.close();
    }
  });
});

/** Writes raw bytes and returns the HTTP status of the answer (0 if the connection closed without one). */
function rawStatus(port: number, request: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    let data = "";
    socket.setTimeout(5_000, () => socket.destroy());
    socket.on("data", (d) => (data += d.toString()));
    socket.on("close", () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
    socket.on("error", () => {});
  });
}

describe("no code execution features", () => {
  it("nothing in the server spawns processes, evaluates code or renders templates", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const files = (readdirSync(new URL("../server", import.meta.url), { recursive: true }) as string[]).filter((f) => f.endsWith(".ts"));
    expect(files.length).toBeGreaterThan(50);
    const forbidden = [/node:child_process|["']child_process["']/, /\beval\s*\(/, /\bnew Function\s*\(/, /node:vm|["']vm["']/, /\bprocess\.binding\b/, /\bimport\s*\(\s*[^"'\s)]/];
    const found: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(new URL("../server", import.meta.url).pathname, f), "utf8")
        // Redis EVAL of the gateway's own fixed Lua scripts is not evaluation of input.
        .replace(/redis\.eval\(lua,/g, "");
      for (const re of forbidden) if (re.test(text)) found.push(`${f}: ${re}`);
    }
    expect(found).toEqual([]);
  });
});
