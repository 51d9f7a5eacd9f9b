import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, userText } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// GET /metrics after known traffic: counters and histogram counts match what was sent.

let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini", "text-embedding-3-small"] })] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

/** Parses the exposition into "name{labels}" -> value (labels sorted as printed). */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${gw.url}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const value = (m: Map<string, number>, key: string): number => m.get(key) ?? 0;

describe("metrics", () => {
  it("counts requests, tokens, latencies and streams", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
    const before = await scrape();
    const a = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "one" }] });
    const b = await client.chat.completions.create({ model: "openai/gpt-4o-mini", messages: [{ role: "user", content: "two" }] });
    const stream = await client.chat.completions.create({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "a streamed answer" }] });
    let chunks = 0;
    for await (const _ of stream) chunks++;
    await expect(client.chat.completions.create({ model: "nope", messages: [{ role: "user", content: "x" }] })).rejects.toThrow();
    for await (const _ of createClient({ baseUrl: gw.url, protocol: "grpc" }).streamChat({ model: "gpt-4o-mini", messages: [userText("rpc")] })) { /* drain */ }
    await gw.waitForRecords(5);
    const after = await scrape();
    const delta = (key: string) => value(after, key) - value(before, key);

    expect(delta('switchyard_requests_total{operation="chat",provider="openai",model="gpt-4o-mini",outcome="ok"}')).toBe(2);
    expect(delta('switchyard_requests_total{operation="chat_stream",provider="openai",model="gpt-4o-mini",outcome="ok"}')).toBe(2);
    expect(delta('switchyard_requests_total{operation="chat",provider="",model="",outcome="model_not_found"}')).toBe(1);
    const input = a.usage!.prompt_tokens + b.usage!.prompt_tokens;
    expect(delta('switchyard_tokens_total{provider="openai",model="gpt-4o-mini",kind="input"}')).toBeGreaterThanOrEqual(input);
    expect(delta('switchyard_request_duration_seconds_count{operation="chat",provider="openai"}')).toBe(2);
    expect(delta('switchyard_upstream_duration_seconds_count{operation="chat",provider="openai"}')).toBe(2);
    expect(delta('switchyard_overhead_seconds_count{operation="chat"}')).toBe(2);
    expect(delta('switchyard_overhead_seconds_count{operation="chat_stream"}')).toBe(2);
    expect(delta('switchyard_time_to_first_token_seconds_count{provider="openai"}')).toBe(2);
    // Gaps are counted between consecutive provider chunks (the usage chunk included).
    expect(delta('switchyard_stream_chunk_gap_seconds_count{provider="openai"}')).toBeGreaterThanOrEqual(chunks - 1);
    expect(value(after, 'switchyard_inflight_requests{operation="chat"}')).toBe(0);
    expect(after.has("process_cpu_seconds_total")).toBe(true);
    expect(after.has("nodejs_eventloop_lag_seconds")).toBe(true);
  });

  it("keeps the model label bounded whatever callers send", async () => {
    const open = await startTestGateway({ providers: [openaiProvider(standin.url)] });
    try {
      await Promise.all(Array.from({ length: 300 }, (_, i) =>
        fetch(`${open.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: `made-up-${i}`, messages: [{ role: "user", content: "x" }] }),
        }).then((r) => r.text())));
      const text = await (await fetch(`${open.url}/metrics`)).text();
      const labels = new Set([...text.matchAll(/switchyard_requests_total\{[^}]*model="([^"]*)"/g)].map((m) => m[1]));
      expect(labels.size).toBeLessThanOrEqual(257);
      expect(labels.has("other")).toBe(true);
    } finally {
      await open.close();
    }
  });
});

describe("cache gauges", () => {
  it("read the cache store once per scrape, and still answer when it fails", async () => {
    const { createMetrics } = await import("../server/telemetry/metrics.ts");
    const metrics = createMetrics();
    let calls = 0;
    let fail = false;
    metrics.addCache({
      admin: {
        async stats() {
          calls++;
          if (fail) throw new Error("redis down");
          return { store: "redis", entries: 7, bytes: 700, maxBytes: 0, evictions: 2, expired: 0, hits: 0, semanticHits: 0, misses: 0, bypasses: 0, savedUsd: 0, semanticEntries: 3 };
        },
        purge: async () => 0,
      },
    });
    const first = (await metrics.scrape()).body;
    expect(first).toMatch(/^switchyard_cache_entries 7$/m);
    expect(first).toMatch(/^switchyard_cache_semantic_entries 3$/m);
    expect(calls).toBe(1);
    await metrics.scrape();
    expect(calls).toBe(2);
    fail = true;
    expect((await metrics.scrape()).body).toMatch(/^switchyard_cache_entries 0$/m);
  });
});
