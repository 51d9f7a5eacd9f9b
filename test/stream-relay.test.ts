import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAnthropicStandin, type AnthropicStandin } from "./standins/anthropic.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// How a relayed stream leaves the upstream. At a clean end ([DONE], message_stop) the rest of
// the body is read, not destroyed (destroying it cost an abort error with its stack trace per
// stream), so the connection serves the next request; a caller who leaves still aborts it.

let openai: OpenAIStandin;
let anthropic: AnthropicStandin;
let gw: TestGateway;
let client: OpenAI;

beforeAll(async () => {
  openai = await startOpenAIStandin({ streamChunkChars: 2 });
  anthropic = await startAnthropicStandin();
  gw = await startTestGateway({
    providers: [
      { type: "openai", baseUrl: openai.url, keys: ["sk-test"] },
      { type: "anthropic", baseUrl: anthropic.url, keys: ["sk-ant-test"] },
    ],
  });
  client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(async () => {
  await gw?.close();
  await openai?.close();
  await anthropic?.close();
});

async function streamText(model: string): Promise<string> {
  const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: "user", content: "Tell me a story" }] });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

describe.each([
  ["openai/gpt-4o-mini", () => openai],
  ["anthropic/claude-haiku-4-5", () => anthropic],
] as const)("%s: a stream that ends cleanly", (model, standin) => {
  it("keeps its upstream connection for the next request, aborting nothing", async () => {
    const s = standin();
    const abortedBefore = s.aborted;
    expect(await streamText(model)).toContain("Tell me a story");
    const open = new Set(s.requests.map((r) => r.remotePort)); // connections the gateway has made so far
    s.requests.length = 0;
    for (let i = 0; i < 3; i++) expect(await streamText(model)).toContain("Tell me a story");
    const posts = s.requests.filter((r) => r.method === "POST");
    expect(posts).toHaveLength(3);
    for (const r of posts) expect(open).toContain(r.remotePort);
    expect(s.aborted).toBe(abortedBefore);
  });

  it("still aborts the upstream when the caller leaves mid-stream", async () => {
    const s = standin();
    s.setBehavior({ kind: "slow-stream", gapMs: 50 });
    try {
      const abortedBefore = s.aborted;
      const ac = new AbortController();
      const stream = await client.chat.completions.create(
        { model, stream: true, messages: [{ role: "user", content: "Tell me a long story" }] },
        { signal: ac.signal },
      );
      let chunks = 0;
      try {
        for await (const _ of stream) {
          chunks++;
          ac.abort();
        }
      } catch {
        // The SDK may report the abort as an error; either way the caller has gone.
      }
      expect(chunks).toBeGreaterThan(0);
      await s.waitForAborted(abortedBefore + 1);
    } finally {
      s.setBehavior(null);
    }
  });
});
