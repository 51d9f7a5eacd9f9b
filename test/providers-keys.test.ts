import { create } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ChatRequestSchema, Role, type ChatRequest } from "../gen/switchyard/v1/chat_pb.ts";
import { validateConfig } from "../server/config/load.ts";
import { createProvider } from "../server/providers/registry.ts";
import { keyRing } from "../server/providers/shared/upstream.ts";
import type { CallOptions, Provider } from "../server/providers/types.ts";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { DEFAULT_CREDENTIALS, startBedrockStandin, type BedrockStandin } from "./standins/bedrock.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";

// Which key a provider uses for a call: CallOptions.keyIndex names one (set
// by routing); without it the provider rotates round-robin as before.

const SECOND = { accessKeyId: "AKIDSTANDIN0000000002", secretAccessKey: "second-secret" };
const KEYS = ["sk-a", "sk-b", "sk-c"];

let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let bedrock: BedrockStandin;
const providers: Provider[] = [];

function provider(config: Record<string, unknown>): Provider {
  const p = createProvider(validateConfig({ providers: [config] } as never).providers[0]!);
  providers.push(p);
  return p;
}

function chatRequest(model: string): ChatRequest {
  return create(ChatRequestSchema, {
    model,
    messages: [{ role: Role.USER, content: [{ part: { case: "text", value: "hi" } }] }],
  });
}

function call(keyIndex?: number): CallOptions {
  return { signal: new AbortController().signal, requestId: "req-keys", ...(keyIndex === undefined ? {} : { keyIndex }) };
}

/** Makes `n` chat calls and returns what identified the key of each, in order. */
async function keysUsed<R>(p: Provider, model: string, n: number, keyIndex: number | undefined, requests: R[], keyOf: (r: R) => unknown): Promise<unknown[]> {
  requests.length = 0;
  for (let i = 0; i < n; i++) await p.chat(chatRequest(model), call(keyIndex));
  return requests.map(keyOf);
}

beforeAll(async () => {
  openai = await startOpenAIStandin({ apiKeys: KEYS });
  anthropic = await startAnthropicStandin({ apiKeys: KEYS });
  bedrock = await startBedrockStandin({ credentials: [DEFAULT_CREDENTIALS, SECOND] });
});

afterAll(async () => {
  await Promise.all(providers.map((p) => p.close()));
  await openai?.close();
  await anthropic?.close();
  await bedrock?.close();
});

describe("keyRing", () => {
  it("uses the named index when valid and rotates otherwise", () => {
    const pick = keyRing(["a", "b", "c"]);
    expect([pick(), pick(), pick(), pick()]).toEqual(["a", "b", "c", "a"]);
    expect([pick(call(2)), pick(call(2)), pick(call(0))]).toEqual(["c", "c", "a"]);
    // A named key does not advance the rotation; an invalid index falls back to it.
    expect([pick(), pick(call(3)), pick(call(-1)), pick(call(1.5))]).toEqual(["b", "c", "a", "b"]);
    expect(keyRing([])(call(0))).toBeUndefined();
  });
});

describe("OpenAI", () => {
  it("honours keyIndex, rotates without it, and counts its keys", async () => {
    const p = provider({ type: "openai", baseUrl: openai.url, keys: KEYS });
    expect(p.keyCount).toBe(3);
    const auth = (r: OpenAIStandin["requests"][number]) => r.headers["authorization"];
    expect(await keysUsed(p, "gpt-4o-mini", 3, 1, openai.requests, auth)).toEqual(Array(3).fill("Bearer sk-b"));
    const rotated = await keysUsed(p, "gpt-4o-mini", 3, undefined, openai.requests, auth);
    expect(new Set(rotated)).toEqual(new Set(KEYS.map((k) => `Bearer ${k}`)));
  });

  it("a keyless server has keyCount 0", () => {
    expect(provider({ type: "openai-compatible", id: "local", baseUrl: openai.url }).keyCount).toBe(0);
  });
});

describe("Anthropic", () => {
  it("honours keyIndex, rotates without it, and counts its keys", async () => {
    const p = provider({ type: "anthropic", baseUrl: anthropic.url, keys: KEYS });
    expect(p.keyCount).toBe(3);
    const key = (r: AnthropicStandin["requests"][number]) => r.headers["x-api-key"];
    expect(await keysUsed(p, "claude-haiku-4-5", 3, 1, anthropic.requests, key)).toEqual(Array(3).fill("sk-b"));
    const rotated = await keysUsed(p, "claude-haiku-4-5", 3, undefined, anthropic.requests, key);
    expect(new Set(rotated)).toEqual(new Set(KEYS));
  });
});

describe("Bedrock", () => {
  it("signs with the named credential set, rotates without it, and counts them", async () => {
    const p = provider({ type: "bedrock", region: "us-east-1", baseUrl: bedrock.url, credentials: [DEFAULT_CREDENTIALS, SECOND] });
    expect(p.keyCount).toBe(2);
    const model = "amazon.nova-lite-v1:0";
    const accessKey = (r: BedrockStandin["requests"][number]) => /Credential=([^/]+)\//.exec(String(r.headers["authorization"]))?.[1];
    expect(await keysUsed(p, model, 3, 1, bedrock.requests, accessKey)).toEqual(Array(3).fill(SECOND.accessKeyId));
    expect(bedrock.requests.every((r) => r.signedBy === SECOND.accessKeyId)).toBe(true);
    const rotated = await keysUsed(p, model, 2, undefined, bedrock.requests, accessKey);
    expect(new Set(rotated)).toEqual(new Set([DEFAULT_CREDENTIALS.accessKeyId, SECOND.accessKeyId]));
  });
});
