/**
 * Chunk timing on the OpenAI path: the stand-in spaces its stream events
 * (slow-stream, gapMs apart); the client must receive each content chunk about
 * when it was sent — the first one long before the stand-in sends the last —
 * through the REST bridge and through gRPC. A gateway that buffered the stream
 * (whole or in large pieces) would deliver everything at the end.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createClient, userText } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

const GAP_MS = 150;
const PROMPT = "count to ten slowly please"; // answer "echo: count to ten slowly please": 8 content chunks of 4 characters
const CONTENT_CHUNKS = 8;

let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ providers: [openaiProvider(standin.url)] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

beforeEach(() => {
  standin.requests.length = 0;
  standin.setBehavior({ kind: "slow-stream", gapMs: GAP_MS });
});

/**
 * Checks arrival times (ms since the stand-in received the request) of the
 * content chunks. Event k (0 = the role chunk) leaves the stand-in at about
 * k × GAP_MS, so content chunk i (1-based) at i × GAP_MS, and the last event
 * (finish, usage, [DONE]) at about (CONTENT_CHUNKS + 3) × GAP_MS.
 */
function assertUnbuffered(arrivals: number[], text: string): void {
  expect(text).toBe(`echo: ${PROMPT}`);
  expect(arrivals).toHaveLength(CONTENT_CHUNKS);
  const lastSent = (CONTENT_CHUNKS + 3) * GAP_MS;
  // The first content chunk (sent at ~1 gap) arrives within ~2 gaps: long before the last event is sent.
  expect(arrivals[0]!).toBeLessThan(2 * GAP_MS + 100);
  expect(arrivals[0]!).toBeLessThan(lastSent - 5 * GAP_MS);
  // Every chunk arrives close to its own send time, never bunched at the end.
  arrivals.forEach((at, i) => expect(at, `chunk ${i + 1}`).toBeLessThan((i + 1) * GAP_MS + 2 * GAP_MS));
  // Consecutive chunks keep the stand-in's spacing.
  const spread = arrivals.at(-1)! - arrivals[0]!;
  expect(spread).toBeGreaterThan((CONTENT_CHUNKS - 1) * GAP_MS * 0.7);
}

const sentAt = (): number => {
  const r = standin.requests.at(-1);
  if (!r) throw new Error("no upstream request");
  return r.receivedAt;
};

describe("stream chunks are relayed as they arrive", () => {
  it("REST (openai SDK)", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "sk-anything", maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const times: number[] = [];
    let text = "";
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta.content;
      if (piece) {
        times.push(Date.now());
        text += piece;
      }
    }
    const start = sentAt();
    assertUnbuffered(times.map((t) => t - start), text);
  });

  it("gRPC (sdk-ts)", async () => {
    const sy = createClient({ baseUrl: gw.url, protocol: "grpc" });
    const times: number[] = [];
    let text = "";
    for await (const chunk of sy.streamChat({ model: "gpt-4o-mini", messages: [userText(PROMPT)] }, { includeUsage: true })) {
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) {
        times.push(Date.now());
        text += piece;
      }
    }
    const start = sentAt();
    assertUnbuffered(times.map((t) => t - start), text);
  });
});
