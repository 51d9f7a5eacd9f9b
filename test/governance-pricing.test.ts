/**
 * The shipped price table and its lookup (server/governance/pricing.ts) and
 * the token estimates used for reservations (server/governance/estimate.ts).
 *
 * "True" token counts below were measured once with OpenAI's tokenizers
 * (o200k_base for gpt-4o/gpt-5, cl100k_base for gpt-4/3.5) via js-tiktoken
 * 1.0.21; the larger of the two is the bound the estimate must meet.
 */
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EmbedRequestSchema } from "../gen/switchyard/v1/embeddings_pb.ts";
import {
  estimateEmbedTokens,
  estimateOutputTokensFromText,
  estimatePromptTokens,
  IMAGE_TOKENS,
  MEDIA_PART_TOKENS,
  TOOLS_PROMPT_TOKENS,
} from "../server/governance/estimate.ts";
import { costUsd, createPricing, pricingTable, type Price } from "../server/governance/pricing.ts";
import { decodeMessagesRequest } from "../server/wire/anthropic/request-decode.ts";
import { decodeChatRequest } from "../server/wire/openai/chat-request.ts";

const PROVIDER_TYPES = [
  "openai", "anthropic", "gemini", "bedrock", "azure", "mistral", "groq", "together",
  "fireworks", "deepseek", "xai", "openrouter", "cerebras", "perplexity",
];

const pricing = createPricing({});
/** Looks up with the provider id equal to its type (the default). */
const price = (type: string, model: string): Price | undefined => pricing.lookup(type, type, model);
const rates = (p: Price | undefined) => (p === undefined ? undefined : { input: p.input, output: p.output });

describe("pricing table", () => {
  const { version, models } = pricingTable();

  it("is versioned and every key names a known provider type", () => {
    expect(version).toBe("2026-11");
    const keys = Object.keys(models);
    expect(keys.length).toBeGreaterThan(100);
    for (const key of keys) {
      const type = key.slice(0, key.indexOf("/"));
      expect(PROVIDER_TYPES, key).toContain(type);
    }
  });

  it("has finite non-negative rates and positive integer limits", () => {
    const rate = (v: number | undefined, key: string) => {
      if (v !== undefined) expect(Number.isFinite(v) && v >= 0, key).toBe(true);
    };
    const limit = (v: number | undefined, key: string) => {
      if (v !== undefined) expect(Number.isInteger(v) && v > 0, key).toBe(true);
    };
    for (const [key, p] of Object.entries(models)) {
      expect(typeof p.input, key).toBe("number");
      expect(typeof p.output, key).toBe("number");
      for (const r of [p.input, p.output, p.cachedInput, p.cacheWrite]) rate(r, key);
      limit(p.maxOutputTokens, key);
      limit(p.maxInputTokens, key);
      if (p.longContext !== undefined) {
        limit(p.longContext.thresholdTokens, key);
        for (const r of [p.longContext.input, p.longContext.output, p.longContext.cachedInput, p.longContext.cacheWrite]) rate(r, key);
      }
    }
  });

  it("lists no local servers (they are free by type)", () => {
    for (const key of Object.keys(models)) expect(key).not.toMatch(/^(ollama|vllm)\//);
  });
});

describe("lookup", () => {
  it("openai: exact names and dated snapshots", () => {
    expect(price("openai", "gpt-4o")).toMatchObject({ input: 2.5, output: 10, cachedInput: 1.25, maxOutputTokens: 16384 });
    expect(rates(price("openai", "gpt-4o-2024-08-06"))).toEqual({ input: 2.5, output: 10 });
    // A snapshot priced differently from its alias has its own entry.
    expect(rates(price("openai", "gpt-4o-2024-05-13"))).toEqual({ input: 5, output: 15 });
    expect(rates(price("openai", "gpt-3.5-turbo-1106"))).toEqual({ input: 1, output: 2 });
    expect(rates(price("openai", "gpt-3.5-turbo-0125"))).toEqual({ input: 0.5, output: 1.5 });
    expect(price("openai", "gpt-5-mini-2025-08-07")).toMatchObject({ input: 0.25, output: 2, cachedInput: 0.025, maxOutputTokens: 128000 });
    expect(rates(price("openai", "gpt-5-nano"))).toEqual({ input: 0.05, output: 0.4 });
    expect(rates(price("openai", "gpt-4.1-mini"))).toEqual({ input: 0.4, output: 1.6 });
    expect(rates(price("openai", "o3-mini-2025-01-31"))).toEqual({ input: 1.1, output: 4.4 });
    expect(rates(price("openai", "o4-mini"))).toEqual({ input: 1.1, output: 4.4 });
    expect(rates(price("openai", "text-embedding-3-small"))).toEqual({ input: 0.02, output: 0 });
  });

  it("anthropic: dated ids and -latest aliases", () => {
    expect(price("anthropic", "claude-sonnet-4-5-20250929")).toMatchObject({ input: 3, output: 15, cachedInput: 0.3, cacheWrite: 3.75, maxOutputTokens: 64000 });
    expect(price("anthropic", "claude-opus-4-1-20250805")).toMatchObject({ input: 15, output: 75, cacheWrite: 18.75, maxOutputTokens: 32000 });
    expect(rates(price("anthropic", "claude-haiku-4-5-20251001"))).toEqual({ input: 1, output: 5 });
    expect(rates(price("anthropic", "claude-sonnet-4-20250514"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("anthropic", "claude-3-5-haiku-latest"))).toEqual({ input: 0.8, output: 4 });
    expect(rates(price("anthropic", "claude-3-haiku-20240307"))).toEqual({ input: 0.25, output: 1.25 });
    // Vertex-style version separator.
    expect(rates(price("anthropic", "claude-sonnet-4-5@20250929"))).toEqual({ input: 3, output: 15 });
  });

  it("gemini: plain, models/-prefixed and -00N versioned names", () => {
    expect(rates(price("gemini", "gemini-2.5-flash"))).toEqual({ input: 0.3, output: 2.5 });
    expect(price("gemini", "gemini-2.5-pro")).toMatchObject({ input: 1.25, output: 10, longContext: { thresholdTokens: 200000 } });
    expect(rates(price("gemini", "models/gemini-2.0-flash-001"))).toEqual({ input: 0.1, output: 0.4 });
    expect(rates(price("gemini", "gemini-2.0-flash-lite"))).toEqual({ input: 0.075, output: 0.3 });
    expect(rates(price("gemini", "gemini-embedding-001"))).toEqual({ input: 0.15, output: 0 });
  });

  it("bedrock: model ids, cross-region profiles, ARNs, and Anthropic models by vendor", () => {
    expect(rates(price("bedrock", "anthropic.claude-sonnet-4-5-20250929-v1:0"))).toEqual({ input: 3, output: 15 });
    // Geographic profiles of newer models cost 10% more; global ones do not.
    expect(rates(price("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"))).toEqual({ input: 3.3, output: 16.5 });
    expect(rates(price("bedrock", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("bedrock", "us.anthropic.claude-3-7-sonnet-20250219-v1:0"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("bedrock", "apac.amazon.nova-pro-v1:0"))).toEqual({ input: 0.8, output: 3.2 });
    expect(rates(price("bedrock", "amazon.nova-micro-v1:0"))).toEqual({ input: 0.035, output: 0.14 });
    expect(rates(price("bedrock", "us.meta.llama3-3-70b-instruct-v1:0"))).toEqual({ input: 0.72, output: 0.72 });
    expect(rates(price("bedrock", "mistral.mistral-large-2407-v1:0"))).toEqual({ input: 2, output: 6 });
    expect(rates(price("bedrock", "amazon.titan-embed-text-v2:0"))).toEqual({ input: 0.02, output: 0 });
    expect(rates(price("bedrock", "cohere.embed-english-v3"))).toEqual({ input: 0.1, output: 0 });
    expect(rates(price("bedrock", "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-haiku-4-5-20251001-v1:0")))
      .toEqual({ input: 1, output: 5 });
    // Not in the Bedrock part of the table: Anthropic's own price (Bedrock's global price is the same).
    expect(rates(price("bedrock", "global.anthropic.claude-opus-4-8"))).toEqual({ input: 5, output: 25 });
  });

  it("azure: falls back on OpenAI's entry for the model name", () => {
    expect(price("azure", "gpt-4o")).toEqual(price("openai", "gpt-4o"));
    expect(rates(price("azure", "gpt-4o-mini-2024-07-18"))).toEqual({ input: 0.15, output: 0.6 });
    expect(rates(price("azure", "gpt-35-turbo"))).toEqual({ input: 0.5, output: 1.5 });
    expect(price("azure", "my-team-deployment")).toBeUndefined();
  });

  it("mistral, groq, together, fireworks, deepseek, xai, cerebras, perplexity", () => {
    expect(rates(price("mistral", "mistral-large-latest"))).toEqual({ input: 0.5, output: 1.5 });
    expect(rates(price("mistral", "open-mistral-nemo"))).toEqual({ input: 0.3, output: 0.3 });
    expect(rates(price("mistral", "mistral-embed"))).toEqual({ input: 0.1, output: 0 });
    expect(rates(price("groq", "llama-3.3-70b-versatile"))).toEqual({ input: 0.59, output: 0.79 });
    expect(rates(price("groq", "llama-3.1-8b-instant"))).toEqual({ input: 0.05, output: 0.08 });
    expect(rates(price("groq", "openai/gpt-oss-120b"))).toEqual({ input: 0.15, output: 0.6 });
    expect(rates(price("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"))).toEqual({ input: 1.04, output: 1.04 });
    expect(rates(price("together", "meta-llama/llama-3.3-70b-instruct-turbo"))).toEqual({ input: 1.04, output: 1.04 });
    expect(rates(price("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct"))).toEqual({ input: 0.9, output: 0.9 });
    expect(price("deepseek", "deepseek-chat")).toMatchObject({ input: 0.28, output: 0.42, cachedInput: 0.028, maxOutputTokens: 8192 });
    expect(price("deepseek", "deepseek-reasoner")).toMatchObject({ maxOutputTokens: 65536 });
    expect(price("xai", "grok-4")).toMatchObject({ input: 3, output: 15, cachedInput: 0.75 });
    expect(rates(price("xai", "grok-4-0709"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("xai", "grok-3-mini"))).toEqual({ input: 0.3, output: 0.5 });
    expect(rates(price("cerebras", "llama-3.3-70b"))).toEqual({ input: 0.85, output: 1.2 });
    expect(rates(price("perplexity", "sonar"))).toEqual({ input: 1, output: 1 });
    expect(rates(price("perplexity", "sonar-pro"))).toEqual({ input: 3, output: 15 });
  });

  it("openrouter: vendor/model ids fall back on the vendor's entry", () => {
    expect(price("openrouter", "openai/gpt-4o")).toEqual(price("openai", "gpt-4o"));
    expect(rates(price("openrouter", "anthropic/claude-sonnet-4.5"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("openrouter", "anthropic/claude-3.5-haiku"))).toEqual({ input: 0.8, output: 4 });
    expect(rates(price("openrouter", "google/gemini-2.5-pro"))).toEqual({ input: 1.25, output: 10 });
    expect(rates(price("openrouter", "x-ai/grok-4"))).toEqual({ input: 3, output: 15 });
    expect(rates(price("openrouter", "deepseek/deepseek-chat"))).toEqual({ input: 0.28, output: 0.42 });
    expect(rates(price("openrouter", "openai/gpt-4o:nitro"))).toEqual({ input: 2.5, output: 10 });
    expect(rates(price("openrouter", "meta-llama/llama-3.3-70b-instruct:free"))).toEqual({ input: 0, output: 0 });
    expect(price("openrouter", "meta-llama/llama-3.3-70b-instruct")).toBeUndefined();
  });

  it("local servers are free; unknown models and provider types are undefined", () => {
    expect(price("ollama", "llama3.2")).toEqual({ input: 0, output: 0 });
    expect(price("vllm", "Qwen/Qwen3-8B")).toEqual({ input: 0, output: 0 });
    expect(price("openai", "gpt-9-ultra")).toBeUndefined();
    expect(price("anthropic", "gpt-4o")).toBeUndefined();
    expect(price("openai-compatible", "gpt-4o")).toBeUndefined();
    expect(price("", "gpt-4o")).toBeUndefined();
    // Names that are Object.prototype keys find nothing.
    expect(createPricing({ "gpt-4o": { input: 1, output: 1 } }).lookup("openai", "openai", "constructor")).toBeUndefined();
    expect(price("openrouter", "constructor/gpt-4o")).toBeUndefined();
  });

  it("overrides win: provider id + model, then model, then the table", () => {
    const p = createPricing({
      "work/gpt-4o": { input: 1, output: 2 },
      "gpt-4o": { input: 3, output: 4, maxOutputTokens: 100 },
      "llama3.2": { input: 0.5, output: 0.5 },
    });
    expect(p.lookup("openai", "work", "gpt-4o")).toEqual({ input: 1, output: 2 });
    expect(p.lookup("openai", "openai", "gpt-4o")).toEqual({ input: 3, output: 4, maxOutputTokens: 100 });
    expect(p.lookup("azure", "eu", "gpt-4o")).toEqual({ input: 3, output: 4, maxOutputTokens: 100 });
    expect(rates(p.lookup("openai", "work", "gpt-4o-mini"))).toEqual({ input: 0.15, output: 0.6 });
    // An override can price a local model too.
    expect(p.lookup("ollama", "ollama", "llama3.2")).toEqual({ input: 0.5, output: 0.5 });
    expect(p.lookup("ollama", "ollama", "mistral")).toEqual({ input: 0, output: 0 });
  });

  it("stays correct past the memo's bound", () => {
    const p = createPricing({});
    for (let i = 0; i < 2500; i++) {
      expect(p.lookup("openai", "openai", `unknown-${i}`)).toBeUndefined();
      if (i % 500 === 0) expect(rates(p.lookup("openai", "openai", "gpt-4o"))).toEqual({ input: 2.5, output: 10 });
    }
    expect(p.lookup("openai", "openai", "gpt-4o")).toBe(p.lookup("openai", "openai", "gpt-4o"));
  });
});

describe("costUsd", () => {
  it("bills cached tokens at the cached rate and the rest at the input rate", () => {
    // gpt-4o: 6,000 × $2.50 + 4,000 × $1.25 + 500 × $10 per 1M = $0.025
    const usd = costUsd(price("openai", "gpt-4o")!, { inputTokens: 10_000, outputTokens: 500, cachedInputTokens: 4_000 });
    expect(usd).toBeCloseTo(0.025, 12);
  });

  it("bills cache reads and writes separately (Anthropic)", () => {
    // claude-sonnet-4-5: 5,000 × 3 + 2,000 × 0.30 + 3,000 × 3.75 + 1,000 × 15 = 41,850 µ$
    const usd = costUsd(price("anthropic", "claude-sonnet-4-5")!, {
      inputTokens: 10_000, outputTokens: 1_000, cachedInputTokens: 2_000, cacheWriteTokens: 3_000,
    });
    expect(usd).toBeCloseTo(0.04185, 12);
  });

  it("defaults cached and cache-write rates to the input rate", () => {
    const usd = costUsd({ input: 1, output: 2 }, { inputTokens: 1_000, outputTokens: 100, cachedInputTokens: 400, cacheWriteTokens: 100 });
    expect(usd).toBeCloseTo(0.0012, 12);
  });

  it("never bills more cached tokens than prompt tokens", () => {
    const usd = costUsd({ input: 2, output: 0, cachedInput: 1 }, { inputTokens: 100, outputTokens: 0, cachedInputTokens: 500, cacheWriteTokens: 50 });
    expect(usd).toBeCloseTo(100 / 1e6, 12);
  });

  it("bills a prompt over the long-context threshold wholly at the long-context rates", () => {
    const pro = price("gemini", "gemini-2.5-pro")!;
    expect(costUsd(pro, { inputTokens: 200_000, outputTokens: 1_000 })).toBeCloseTo(0.26, 12);
    expect(costUsd(pro, { inputTokens: 300_000, outputTokens: 1_000 })).toBeCloseTo(0.765, 12);
    expect(costUsd(pro, { inputTokens: 300_000, outputTokens: 0, cachedInputTokens: 100_000 })).toBeCloseTo(0.525, 12);
  });

  it("is zero for free prices and for no tokens", () => {
    expect(costUsd(price("ollama", "x")!, { inputTokens: 1e6, outputTokens: 1e6 })).toBe(0);
    expect(costUsd(price("openai", "gpt-4o")!, { inputTokens: 0, outputTokens: 0 })).toBe(0);
  });
});

/** Text and the larger of its o200k_base / cl100k_base token counts. */
const SAMPLES: Record<string, { text: string; tokens: number }> = {
  english: {
    text: "The quarterly report shows that revenue grew by 12% compared with the same period last year, driven mostly by subscriptions in Europe and North America. Operating costs rose more slowly, so the margin improved. Please summarise the three most important risks the board should discuss next week, and suggest one concrete action for each.",
    tokens: 63,
  },
  code: {
    text: "def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:\n    intervals.sort(key=lambda x: x[0])\n    out: list[tuple[int, int]] = []\n    for start, end in intervals:\n        if out and start <= out[-1][1]:\n            out[-1] = (out[-1][0], max(out[-1][1], end))\n        else:\n            out.append((start, end))\n    return out\n",
    tokens: 102,
  },
  chinese: {
    text: "请根据以下会议记录，总结出三个最重要的风险，并为每个风险提出一项具体的应对措施。本季度收入同比增长百分之十二，主要来自欧洲和北美的订阅业务，运营成本增长较慢，因此利润率有所提高。",
    tokens: 104,
  },
  japanese: {
    text: "次の会議の議事録を読んで、取締役会が来週議論すべき最も重要なリスクを三つ挙げ、それぞれについて具体的な対策を一つずつ提案してください。売上高は前年同期比で十二パーセント増加しました。",
    tokens: 102,
  },
  korean: {
    text: "다음 회의록을 바탕으로 이사회가 다음 주에 논의해야 할 가장 중요한 위험 세 가지를 요약하고, 각각에 대해 구체적인 대응 방안을 하나씩 제안해 주세요.",
    tokens: 75,
  },
  emoji: { text: "Launch day! 🚀🎉🔥 Thanks team 🙏👏💯 — see you at 🍕🍺 later 😄😎🤖", tokens: 40 },
  json: {
    text: "{\"user_id\": 48213, \"items\": [{\"sku\": \"A-19\", \"qty\": 2, \"price\": 19.99}, {\"sku\": \"B-7\", \"qty\": 1, \"price\": 5.5}], \"coupon\": null, \"notes\": \"leave at the door\"}",
    tokens: 69,
  },
};

/** OpenAI's documented chat overhead: 3 tokens a message, 3 to prime the reply. */
const chatTokens = (...texts: string[]) => texts.reduce((n, t) => n + (tokensOf(t) ?? 0) + 3, 3);
const tokensOf = (t: string) => Object.values(SAMPLES).find((s) => s.text === t)?.tokens;

const chat = (body: Record<string, unknown>) => decodeChatRequest({ model: "gpt-4o", ...body }).request;
const user = (content: unknown) => ({ role: "user", content });

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather for a location.",
    parameters: {
      type: "object",
      properties: {
        location: { type: "string", description: "City and country, e.g. Paris, France" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
      },
      required: ["location"],
      additionalProperties: false,
    },
  },
};
/** o200k/cl100k tokens of the tool's name + description + JSON schema, measured. */
const WEATHER_TOOL_TOKENS = 63;

describe("estimatePromptTokens", () => {
  it.each(Object.entries(SAMPLES))("covers the true token count of %s text", (_name, s) => {
    const req = chat({ messages: [user(s.text)] });
    expect(estimatePromptTokens(req)).toBeGreaterThanOrEqual(chatTokens(s.text));
  });

  it("covers a multi-turn conversation with a system prompt", () => {
    const { english, chinese, code } = SAMPLES;
    const req = chat({
      messages: [{ role: "system", content: english!.text }, user(chinese!.text), { role: "assistant", content: code!.text }, user(english!.text)],
    });
    expect(estimatePromptTokens(req)).toBeGreaterThanOrEqual(chatTokens(english!.text, chinese!.text, code!.text, english!.text));
  });

  it("gives CJK text at least one token per character", () => {
    for (const s of [SAMPLES["chinese"]!, SAMPLES["japanese"]!, SAMPLES["korean"]!]) {
      expect(estimatePromptTokens(chat({ messages: [user(s.text)] }))).toBeGreaterThan([...s.text].length);
    }
  });

  it("adds the image allowance per image part", () => {
    const text = { type: "text", text: "What is in this picture?" };
    const image = { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "high" } };
    const base = estimatePromptTokens(chat({ messages: [user([text])] }));
    expect(estimatePromptTokens(chat({ messages: [user([text, image])] }))).toBe(base + IMAGE_TOKENS);
    expect(estimatePromptTokens(chat({ messages: [user([text, image, image])] }))).toBe(base + 2 * IMAGE_TOKENS);
    // A data: URL's bytes are not text.
    const inline = { type: "image_url", image_url: { url: `data:image/png;base64,${"A".repeat(100_000)}` } };
    expect(estimatePromptTokens(chat({ messages: [user([text, inline])] }))).toBe(base + IMAGE_TOKENS);
  });

  it("adds the media allowance per audio or file part", () => {
    const text = { type: "text", text: "Transcribe this." };
    const audio = { type: "input_audio", input_audio: { data: "UklGRg==", format: "wav" } };
    const file = { type: "file", file: { file_id: "file-abc123" } };
    const base = estimatePromptTokens(chat({ messages: [user([text])] }));
    expect(estimatePromptTokens(chat({ messages: [user([text, audio, file])] }))).toBe(base + 2 * MEDIA_PART_TOKENS);
  });

  it("counts tool definitions, tool calls and tool results", () => {
    const q = user("What's the weather in Paris?");
    const base = estimatePromptTokens(chat({ messages: [q] }));
    const withTool = estimatePromptTokens(chat({ messages: [q], tools: [WEATHER_TOOL] }));
    expect(withTool - base).toBeGreaterThanOrEqual(TOOLS_PROMPT_TOKENS + WEATHER_TOOL_TOKENS);

    const args = JSON.stringify({ location: "Paris, France", unit: "celsius" });
    const result = JSON.stringify({ temperature: 18, conditions: "light rain", humidity: 0.82 });
    const turn = estimatePromptTokens(chat({
      messages: [
        q,
        { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: args } }] },
        { role: "tool", tool_call_id: "call_1", content: result },
      ],
      tools: [WEATHER_TOOL],
    }));
    expect(turn - withTool).toBeGreaterThanOrEqual(Math.ceil((args.length + result.length) / 2));
  });

  it("counts the response_format schema", () => {
    const q = user("Extract the order.");
    const schema = { type: "object", properties: { sku: { type: "string" }, qty: { type: "integer" } }, required: ["sku", "qty"] };
    const base = estimatePromptTokens(chat({ messages: [q] }));
    const withSchema = estimatePromptTokens(chat({
      messages: [q],
      response_format: { type: "json_schema", json_schema: { name: "order", schema } },
    }));
    expect(withSchema - base).toBeGreaterThanOrEqual(Math.ceil(JSON.stringify(schema).length / 2));
  });

  it("counts Anthropic requests: system prompt, and images inside tool results", () => {
    const img = { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } };
    const body = (content: unknown[]) => ({
      model: "claude-sonnet-4-5",
      max_tokens: 1024,
      system: SAMPLES["english"]!.text,
      messages: [
        user("Take a screenshot."),
        { role: "assistant", content: [{ type: "tool_use", id: "tu_1", name: "screenshot", input: {} }] },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "tu_1", content }] },
      ],
    });
    const text = { type: "text", text: "done" };
    const without = estimatePromptTokens(decodeMessagesRequest(body([text])).request);
    const withImage = estimatePromptTokens(decodeMessagesRequest(body([text, img])).request);
    expect(without).toBeGreaterThanOrEqual(chatTokens(SAMPLES["english"]!.text) + 2 * 4);
    expect(withImage - without).toBe(IMAGE_TOKENS);
  });
});

describe("estimateEmbedTokens", () => {
  it("covers the true token counts of text inputs", () => {
    const req = create(EmbedRequestSchema, { model: "text-embedding-3-small", input: Object.values(SAMPLES).map((s) => s.text) });
    const truth = Object.values(SAMPLES).reduce((n, s) => n + s.tokens, 0);
    expect(estimateEmbedTokens(req)).toBeGreaterThanOrEqual(truth);
  });

  it("counts pre-tokenised inputs exactly", () => {
    const req = create(EmbedRequestSchema, { model: "m", tokenInputs: [{ ids: [1, 2, 3] }, { ids: [4, 5] }] });
    expect(estimateEmbedTokens(req)).toBe(5);
  });
});

describe("estimateOutputTokensFromText", () => {
  it("is ceil(UTF-8 bytes / 3)", () => {
    expect(estimateOutputTokensFromText("")).toBe(0);
    expect(estimateOutputTokensFromText("abcd")).toBe(2);
    expect(estimateOutputTokensFromText("风险")).toBe(2); // 6 bytes
    expect(estimateOutputTokensFromText(SAMPLES["english"]!.text)).toBeGreaterThanOrEqual(SAMPLES["english"]!.tokens);
  });
});
