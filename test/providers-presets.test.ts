/**
 * The OpenAI-compatible presets (mistral, groq, ..., ollama, vllm): each builds
 * a provider whose requests go to the preset's base URL path with the right
 * auth; the default base URLs are the documented ones; and model listing
 * (REST GET /v1/models, RPC ModelService.ListModels) shows what every
 * configured provider serves, several types at once.
 *
 * One OpenAI stand-in serves every preset, behind a small recording proxy that
 * accepts any path prefix (the presets' base URLs have different paths:
 * /openai/v1, /inference/v1, /api/v1, none) and forwards `<prefix>/<op>` to the
 * stand-in's `/v1/<op>` with the stand-in's key.
 */
import { once } from "node:events";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OPENAI_PRESETS, type OpenAIPreset } from "../server/config/schema.ts";
import { validateConfig } from "../server/config/load.ts";
import { createClient, userText } from "../sdk-ts/src/index.ts";
import { startAzureStandin, type AzureStandin } from "./standins/azure.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

/** The base URLs each provider documents (checked against their docs). */
const DOCUMENTED: Record<OpenAIPreset, string> = {
  mistral: "https://api.mistral.ai/v1",
  groq: "https://api.groq.com/openai/v1",
  together: "https://api.together.xyz/v1",
  fireworks: "https://api.fireworks.ai/inference/v1",
  // DeepSeek documents https://api.deepseek.com and also accepts .../v1 ("the v1 has nothing to do with the model version").
  deepseek: "https://api.deepseek.com",
  xai: "https://api.x.ai/v1",
  openrouter: "https://openrouter.ai/api/v1",
  cerebras: "https://api.cerebras.ai/v1",
  perplexity: "https://api.perplexity.ai",
  // Documented as localhost; 127.0.0.1 is the same server without the IPv6-first lookup (Ollama listens on IPv4).
  ollama: "http://127.0.0.1:11434/v1",
  vllm: "http://127.0.0.1:8000/v1",
};
const PRESETS = Object.keys(OPENAI_PRESETS) as OpenAIPreset[];

interface Seen {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** Forwards `<anything>/(chat/completions|embeddings|models)` to the stand-in's /v1/..., recording what arrived. */
async function startProxy(target: OpenAIStandin): Promise<{ url: string; seen: Seen[]; server: Server }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    seen.push({ method: req.method ?? "", path, headers: req.headers });
    const op = /\/(chat\/completions|embeddings|models)$/.exec(path);
    if (!op) {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":{"message":"no such path"}}');
      return;
    }
    const headers = { ...req.headers, authorization: "Bearer sk-test", host: `127.0.0.1:${target.port}` };
    const up = request({ host: "127.0.0.1", port: target.port, method: req.method, path: `/v1/${op[1]}`, headers }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, server };
}

let standin: OpenAIStandin;
let azure: AzureStandin;
let proxy: Awaited<ReturnType<typeof startProxy>>;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  azure = await startAzureStandin();
  proxy = await startProxy(standin);
  gw = await startTestGateway({
    providers: [
      { type: "openai", baseUrl: standin.url, keys: ["sk-test"], models: ["gpt-4o-mini"] },
      { type: "azure", baseUrl: azure.url, keys: ["az-test-key"], deployments: { "gpt-4o-mini": "prod-chat" } },
      // Every preset at its documented path, on the proxy; groq declares no models (discovered from its /models).
      ...PRESETS.map((type) => ({
        type,
        baseUrl: proxy.url + new URL(DOCUMENTED[type]).pathname.replace(/\/$/, ""),
        keys: OPENAI_PRESETS[type].local ? [] : [`key-${type}`],
        ...(type === "groq" ? {} : { models: ["gpt-4o-mini", "text-embedding-3-small"] }),
      })),
    ],
  } as never);
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-anything", maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  proxy?.server.close();
  proxy?.server.closeAllConnections();
  await standin?.close();
  await azure?.close();
});

beforeEach(() => {
  proxy.seen.length = 0;
});

describe("presets", () => {
  it("default base URLs are the documented ones", () => {
    expect(Object.keys(DOCUMENTED).sort()).toEqual([...PRESETS].sort());
    for (const type of PRESETS) {
      const keys = OPENAI_PRESETS[type].local ? [] : ["k"];
      const c = validateConfig({ providers: [{ type, keys }] });
      expect(c.providers[0]!.baseUrl, type).toBe(DOCUMENTED[type]);
    }
  });

  for (const type of PRESETS) {
    const local = OPENAI_PRESETS[type].local;
    it(`${type}: requests go to <base path>/chat/completions with ${local ? "no Authorization header" : "its key as a bearer token"}`, async () => {
      const res = await client.chat.completions.create({ model: `${type}/gpt-4o-mini`, messages: [{ role: "user", content: `hi ${type}` }] });
      expect(res.choices[0]!.message.content).toBe(`echo: hi ${type}`);
      const r = proxy.seen.at(-1)!;
      const base = new URL(DOCUMENTED[type]).pathname.replace(/\/$/, "");
      expect(r.method).toBe("POST");
      expect(r.path).toBe(`${base}/chat/completions`);
      if (local) expect(r.headers["authorization"]).toBeUndefined();
      else expect(r.headers["authorization"]).toBe(`Bearer key-${type}`);
      expect(r.headers["api-key"]).toBeUndefined();
    });
  }

  it("streams and embeds through a preset", async () => {
    const stream = await client.chat.completions.create({ model: "mistral/gpt-4o-mini", messages: [{ role: "user", content: "stream" }], stream: true });
    let text = "";
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    expect(text).toBe("echo: stream");
    const emb = await client.embeddings.create({ model: "fireworks/text-embedding-3-small", input: "a" });
    expect(emb.data).toHaveLength(1);
    expect(proxy.seen.map((s) => s.path)).toEqual(["/v1/chat/completions", "/inference/v1/embeddings"]);
  });

  it("the DeepSeek /v1 form works too", async () => {
    const deepseekV1 = await startTestGateway({ providers: [{ type: "deepseek", baseUrl: `${proxy.url}/v1`, keys: ["key-ds"], models: ["gpt-4o-mini"] }] });
    try {
      const c = new OpenAI({ baseURL: `${deepseekV1.url}/v1`, apiKey: "x", maxRetries: 0 });
      await c.chat.completions.create({ model: "deepseek/gpt-4o-mini", messages: [{ role: "user", content: "x" }] });
      expect(proxy.seen.at(-1)!.path).toBe("/v1/chat/completions");
    } finally {
      await deepseekV1.close();
    }
  });
});

describe("model listing across provider types", () => {
  const expected = [
    "openai/gpt-4o-mini",
    "azure/gpt-4o-mini",
    ...PRESETS.filter((t) => t !== "groq").flatMap((t) => [`${t}/gpt-4o-mini`, `${t}/text-embedding-3-small`]),
    // groq declared nothing: its own /models (at its base path) was asked
    "groq/gpt-4o-mini",
    "groq/gpt-4o",
    "groq/text-embedding-3-small",
  ];

  it("GET /v1/models lists each provider's models as provider/model", async () => {
    const list = await client.models.list();
    const ids = list.data.map((m) => m.id);
    expect([...ids].sort()).toEqual([...expected].sort());
    expect(list.data.find((m) => m.id === "azure/gpt-4o-mini")?.owned_by).toBe("azure");
  });

  it("ModelService.ListModels shows the same", async () => {
    const { models } = await createClient({ baseUrl: gw.url, protocol: "grpc" }).models.listModels({});
    expect(models.map((m) => m.id).sort()).toEqual([...expected].sort());
    // and each listed model is routable: one RPC call through the azure provider
    const { completion } = await createClient({ baseUrl: gw.url }).chat.complete({ request: { model: "azure/gpt-4o-mini", messages: [userText("hi")] } });
    expect(completion?.gateway?.provider).toBe("azure");
  });

  it("groq's discovery asked <base path>/models with its key", async () => {
    // A fresh gateway so the catalog has not fetched yet.
    const g = await startTestGateway({ providers: [{ type: "groq", baseUrl: `${proxy.url}/openai/v1`, keys: ["key-groq"] }] });
    try {
      const ids = (await new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "x", maxRetries: 0 }).models.list()).data.map((m) => m.id);
      expect(ids).toContain("groq/gpt-4o");
      const r = proxy.seen.find((s) => s.path.endsWith("/models"));
      expect(r).toMatchObject({ method: "GET", path: "/openai/v1/models" });
      expect(r!.headers["authorization"]).toBe("Bearer key-groq");
    } finally {
      await g.close();
    }
  });
});
