/**
 * Unit tests of the OpenAI wire codec (server/wire/openai) and the error
 * mappings (server/errors): requests decode strictly and re-encode to what the
 * caller wrote, responses and stream chunks round-trip, malformed upstream
 * answers become upstream errors, embeddings handle every input shape and
 * both encodings, and every error code maps to its status and body.
 *
 * Documented normalisations of encodeChatRequest(decodeChatRequest(x)):
 *  - `stop: "x"` becomes `stop: ["x"]` (OpenAI accepts both);
 *  - optional fields set to null (temperature, user, name, refusal, ...) are
 *    dropped, as are empty values that mean "not set": `user: ""`, `name: ""`,
 *    `tools: []`, `stop: []`, `metadata: {}`;
 *  - an assistant message without content gets `content: null`;
 *  - `stream`/`stream_options` come from the StreamOptions argument, never
 *    from the caller's body (stream_options keys other than include_usage are
 *    not carried);
 *  - unknown keys are kept at the top level and on messages only, not inside
 *    content parts, tools or tool calls.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ChatChunkSchema, ChatCompletionSchema, ChatRequestSchema } from "../gen/switchyard/v1/chat_pb.ts";
import { EmbedResponseSchema } from "../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError, type ErrorCode } from "../server/errors/errors.ts";
import { connectCode, toConnectError } from "../server/errors/to-connect.ts";
import { httpMapping, toOpenAIError } from "../server/errors/to-openai.ts";
import { decodeChatRequest, encodeChatRequest } from "../server/wire/openai/chat-request.ts";
import { decodeChatChunk, decodeChatCompletion, encodeChatChunk, encodeChatCompletion } from "../server/wire/openai/chat-response.ts";
import { decodeEmbedRequest, decodeEmbedResponse, encodeEmbedRequest, encodeEmbedResponse } from "../server/wire/openai/embeddings.ts";

type Json = Record<string, unknown>;

const NO_STREAM = { stream: false, includeUsage: false };

/** decode -> encode, through JSON text so the output is known to serialise. */
function roundTrip(body: Json): Json {
  const { request } = decodeChatRequest(structuredClone(body));
  return JSON.parse(JSON.stringify(encodeChatRequest(request, body["model"] as string, NO_STREAM))) as Json;
}

/** The GatewayError `fn` throws (fails the test if it throws anything else). */
function gatewayError(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected a GatewayError, nothing was thrown");
}

// ---------------------------------------------------------------------------
// Chat request

const weatherParams = {
  type: "object",
  properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
  required: ["city"],
  additionalProperties: false,
};

const richRequest: Json = {
  model: "gpt-4o-mini",
  messages: [
    { role: "system", content: "You are terse." },
    { role: "developer", content: [{ type: "text", text: "Answer in English." }, { type: "text", text: "Be brief." }] },
    {
      role: "user",
      name: "alice",
      content: [
        { type: "text", text: "What is in this image, and in this clip?" },
        { type: "image_url", image_url: { url: "https://example.com/cat.png", detail: "high" } },
        { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
        { type: "input_audio", input_audio: { data: "UklGRiQAAABXQVZF", format: "wav" } },
        { type: "file", file: { file_id: "file-abc" } },
      ],
    },
    {
      role: "assistant",
      content: null,
      tool_calls: [
        { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
        { id: "call_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo","unit":"c"}' } },
      ],
    },
    { role: "tool", tool_call_id: "call_1", content: '{"temp":21}' },
    { role: "tool", tool_call_id: "call_2", content: [{ type: "text", text: '{"temp":3}' }] },
    { role: "assistant", content: "Paris 21, Oslo 3.", refusal: "partly", audio: { id: "audio_abc" } },
    { role: "assistant", content: "" },
    { role: "user", content: "Thanks!", x_custom: { nested: [1, "two", null, true] } },
  ],
  tools: [
    { type: "function", function: { name: "get_weather", description: "Current weather", parameters: weatherParams, strict: true } },
    { type: "function", function: { name: "noop", strict: false } },
    { type: "function", function: { name: "bare" } },
  ],
  tool_choice: "auto",
  parallel_tool_calls: false,
  response_format: { type: "json_object" },
  temperature: 0.2,
  top_p: 0.9,
  max_tokens: 256,
  max_completion_tokens: 512,
  stop: ["\n\n", "END"],
  seed: 42,
  n: 2,
  presence_penalty: 0.5,
  frequency_penalty: -0.25,
  user: "user-123",
  metadata: { team: "search", run: "7" },
  // not typed by the schema: forwarded untouched
  logit_bias: { "50256": -100 },
  logprobs: true,
  top_logprobs: 3,
  reasoning_effort: "low",
  service_tier: "auto",
  prediction: { type: "content", content: "Paris" },
  store: false,
};

describe("decodeChatRequest -> encodeChatRequest", () => {
  it("round-trips a rich request unchanged", () => {
    expect(roundTrip(richRequest)).toEqual(richRequest);
  });

  it("decodes typed fields into the canonical request", () => {
    const { request, stream } = decodeChatRequest(structuredClone(richRequest));
    expect(stream).toEqual({ stream: false, includeUsage: false });
    expect(request.model).toBe("gpt-4o-mini");
    expect(request.messages).toHaveLength(9);
    expect(request.tools.map((t) => t.function?.name)).toEqual(["get_weather", "noop", "bare"]);
    expect(request.seed).toBe(42n);
    expect(request.stop).toEqual(["\n\n", "END"]);
    expect(request.extra).toEqual({
      logit_bias: { "50256": -100 },
      logprobs: true,
      top_logprobs: 3,
      reasoning_effort: "low",
      service_tier: "auto",
      prediction: { type: "content", content: "Paris" },
      store: false,
    });
    expect(request.messages[6]!.extra).toEqual({ audio: { id: "audio_abc" } });
    expect(request.messages[0]!.extra).toBeUndefined();
  });

  it("survives protobuf binary serialisation (the RPC path) unchanged", () => {
    const { request } = decodeChatRequest(structuredClone(richRequest));
    const again = fromBinary(ChatRequestSchema, toBinary(ChatRequestSchema, request));
    const out = JSON.parse(JSON.stringify(encodeChatRequest(again, "gpt-4o-mini", NO_STREAM))) as Json;
    expect(out).toEqual(richRequest);
  });

  it("writes the provider's model name, not the caller's", () => {
    const { request } = decodeChatRequest({ model: "openai/fast", messages: [{ role: "user", content: "hi" }] });
    expect(encodeChatRequest(request, "gpt-4o-mini", NO_STREAM)["model"]).toBe("gpt-4o-mini");
  });

  it("round-trips each tool_choice form", () => {
    for (const tool_choice of ["none", "auto", "required", { type: "function", function: { name: "get_weather" } }]) {
      const body = { model: "m", messages: [{ role: "user", content: "hi" }], tools: richRequest["tools"], tool_choice };
      expect(roundTrip(body), JSON.stringify(tool_choice)).toEqual(body);
    }
  });

  it("round-trips each response_format form", () => {
    const forms = [
      { type: "text" },
      { type: "json_object" },
      { type: "json_schema", json_schema: { name: "weather", description: "A report", schema: weatherParams, strict: true } },
      { type: "json_schema", json_schema: { name: "loose", schema: { type: "object" }, strict: false } },
      { type: "json_schema", json_schema: { name: "minimal" } },
    ];
    for (const response_format of forms) {
      const body = { model: "m", messages: [{ role: "user", content: "hi" }], response_format };
      expect(roundTrip(body), JSON.stringify(response_format)).toEqual(body);
    }
  });

  it("keeps zero and false values that are set", () => {
    const body = {
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      temperature: 0,
      top_p: 0,
      max_tokens: 0,
      max_completion_tokens: 0,
      seed: 0,
      presence_penalty: 0,
      frequency_penalty: 0,
      parallel_tool_calls: false,
    };
    expect(roundTrip(body)).toEqual(body);
  });

  it("keeps a negative and a large seed exactly", () => {
    for (const seed of [-7, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]) {
      const body = { model: "m", messages: [{ role: "user", content: "hi" }], seed };
      expect(roundTrip(body)["seed"]).toBe(seed);
    }
  });

  it("normalises stop: a string becomes a one-element array", () => {
    const out = roundTrip({ model: "m", messages: [{ role: "user", content: "hi" }], stop: "END" });
    expect(out["stop"]).toEqual(["END"]);
  });

  it("normalises null and empty 'not set' values away", () => {
    const out = roundTrip({
      model: "m",
      messages: [
        { role: "user", content: "hi", name: "" },
        { role: "assistant", name: null, refusal: null, tool_calls: null },
        { role: "assistant", content: null, tool_calls: [] },
      ],
      temperature: null,
      top_p: null,
      user: "",
      tools: [],
      tool_choice: null,
      response_format: null,
      stop: [],
      metadata: {},
      seed: null,
      n: null,
    });
    expect(out).toEqual({
      model: "m",
      messages: [
        { role: "user", content: "hi" },
        { role: "assistant", content: null },
        { role: "assistant", content: null },
      ],
    });
  });

  it("does not carry unknown keys inside content parts, tools or tool calls (documented)", () => {
    const out = roundTrip({
      model: "m",
      messages: [
        { role: "user", content: [{ type: "text", text: "hi", cache_control: { type: "ephemeral" } }] },
        { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}", x: 1 }, y: 2 }] },
      ],
      tools: [{ type: "function", function: { name: "f", z: 3 } }],
    });
    expect(out["messages"]).toEqual([
      { role: "user", content: [{ type: "text", text: "hi" }] },
      { role: "assistant", content: null, tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: "{}" } }] },
    ]);
    expect(out["tools"]).toEqual([{ type: "function", function: { name: "f" } }]);
  });

  it("keeps a single text part as an array and a string as a string", () => {
    const body = {
      model: "m",
      messages: [
        { role: "user", content: [{ type: "text", text: "as array" }] },
        { role: "user", content: "as string" },
        { role: "user", content: "" },
        { role: "user", content: [] },
      ],
    };
    const out = roundTrip(body);
    // an empty parts array has nothing to tell it from "", so it comes back as ""
    expect(out["messages"]).toEqual([
      { role: "user", content: [{ type: "text", text: "as array" }] },
      { role: "user", content: "as string" },
      { role: "user", content: "" },
      { role: "user", content: "" },
    ]);
  });
});

describe("stream and stream_options", () => {
  const base = { model: "m", messages: [{ role: "user", content: "hi" }] };

  it("decodes stream and include_usage beside the request", () => {
    expect(decodeChatRequest({ ...base }).stream).toEqual({ stream: false, includeUsage: false });
    expect(decodeChatRequest({ ...base, stream: true }).stream).toEqual({ stream: true, includeUsage: false });
    expect(decodeChatRequest({ ...base, stream: true, stream_options: { include_usage: true } }).stream).toEqual({
      stream: true,
      includeUsage: true,
    });
    expect(decodeChatRequest({ ...base, stream: null, stream_options: null }).stream).toEqual({ stream: false, includeUsage: false });
  });

  it("stream and stream_options never land in extra", () => {
    const { request } = decodeChatRequest({ ...base, stream: true, stream_options: { include_usage: true } });
    expect(request.extra).toBeUndefined();
  });

  it("encodes stream and stream_options from the options argument", () => {
    const { request } = decodeChatRequest({ ...base, stream: true, stream_options: { include_usage: true } });
    const both = encodeChatRequest(request, "m", { stream: true, includeUsage: true });
    expect(both["stream"]).toBe(true);
    expect(both["stream_options"]).toEqual({ include_usage: true });

    const noUsage = encodeChatRequest(request, "m", { stream: true, includeUsage: false });
    expect(noUsage["stream"]).toBe(true);
    expect("stream_options" in noUsage).toBe(false);

    const plain = encodeChatRequest(request, "m", NO_STREAM);
    expect("stream" in plain).toBe(false);
    expect("stream_options" in plain).toBe(false);

    // includeUsage without streaming means nothing
    const usageOnly = encodeChatRequest(request, "m", { stream: false, includeUsage: true });
    expect("stream" in usageOnly).toBe(false);
    expect("stream_options" in usageOnly).toBe(false);
  });
});

describe("decodeChatRequest errors name the param", () => {
  const user = { role: "user", content: "hi" };
  const ok = { model: "m", messages: [user] };

  const cases: [string, unknown, ErrorCode, string][] = [
    ["body is an array", [ok], "invalid_request", "body"],
    ["body is null", null, "invalid_request", "body"],
    ["body is a string", "hello", "invalid_request", "body"],
    ["model missing", { messages: [user] }, "invalid_request", "model"],
    ["model empty", { model: "", messages: [user] }, "invalid_request", "model"],
    ["model not a string", { model: 5, messages: [user] }, "invalid_request", "model"],
    ["messages missing", { model: "m" }, "invalid_request", "messages"],
    ["messages null", { model: "m", messages: null }, "invalid_request", "messages"],
    ["messages empty", { model: "m", messages: [] }, "invalid_request", "messages"],
    ["messages an object", { model: "m", messages: { 0: user } }, "invalid_request", "messages"],
    ["message a string", { model: "m", messages: [user, "hi"] }, "invalid_request", "messages[1]"],
    ["role missing", { model: "m", messages: [{ content: "hi" }] }, "invalid_request", "messages[0].role"],
    ["role invalid", { model: "m", messages: [user, { role: "wizard", content: "hi" }] }, "invalid_request", "messages[1].role"],
    ["role function (legacy)", { model: "m", messages: [user, { role: "function", name: "f", content: "x" }] }, "invalid_request", "messages[1].role"],
    ["content a number", { model: "m", messages: [{ role: "user", content: 42 }] }, "invalid_request", "messages[0].content"],
    ["content an object", { model: "m", messages: [{ role: "user", content: { type: "text", text: "x" } }] }, "invalid_request", "messages[0].content"],
    ["user content missing", { model: "m", messages: [{ role: "user" }] }, "invalid_request", "messages[0].content"],
    ["user content null", { model: "m", messages: [{ role: "user", content: null }] }, "invalid_request", "messages[0].content"],
    ["content part not an object", { model: "m", messages: [{ role: "user", content: ["hi"] }] }, "invalid_request", "messages[0].content[0]"],
    ["content part without type", { model: "m", messages: [{ role: "user", content: [{ text: "hi" }] }] }, "invalid_request", "messages[0].content[0].type"],
    ["content part type video", { model: "m", messages: [{ role: "user", content: [{ type: "video", video: {} }] }] }, "unsupported", "messages[0].content[0].type"],
    ["text part without text", { model: "m", messages: [{ role: "user", content: [{ type: "text" }] }] }, "invalid_request", "messages[0].content[0].text"],
    [
      "image part in a system message",
      { model: "m", messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] }] },
      "unsupported",
      "messages[0].content[0]",
    ],
    [
      "image part in an assistant message",
      { model: "m", messages: [user, { role: "assistant", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png" } }] }] },
      "unsupported",
      "messages[1].content[0]",
    ],
    [
      "image_url not an object",
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: "https://x.test/a.png" }] }] },
      "invalid_request",
      "messages[0].content[0].image_url",
    ],
    [
      "image url with another scheme",
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "file:///etc/passwd" } }] }] },
      "invalid_request",
      "messages[0].content[0].image_url.url",
    ],
    [
      "image detail not a string",
      { model: "m", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://x.test/a.png", detail: 1 } }] }] },
      "invalid_request",
      "messages[0].content[0].image_url.detail",
    ],
    ["tool message without tool_call_id", { model: "m", messages: [user, { role: "tool", content: "42" }] }, "invalid_request", "messages[1].tool_call_id"],
    ["tool message with empty tool_call_id", { model: "m", messages: [user, { role: "tool", tool_call_id: "", content: "42" }] }, "invalid_request", "messages[1].tool_call_id"],
    [
      "tool_calls on a user message",
      { model: "m", messages: [{ role: "user", content: "hi", tool_calls: [{ id: "c", type: "function", function: { name: "f" } }] }] },
      "invalid_request",
      "messages[0].tool_calls",
    ],
    ["tool_calls not an array", { model: "m", messages: [user, { role: "assistant", tool_calls: {} }] }, "invalid_request", "messages[1].tool_calls"],
    [
      "tool call without id",
      { model: "m", messages: [user, { role: "assistant", tool_calls: [{ type: "function", function: { name: "f", arguments: "{}" } }] }] },
      "invalid_request",
      "messages[1].tool_calls[0].id",
    ],
    [
      "tool call of another type",
      { model: "m", messages: [user, { role: "assistant", tool_calls: [{ id: "c", type: "custom", custom: {} }] }] },
      "unsupported",
      "messages[1].tool_calls[0].type",
    ],
    [
      "tool call arguments not a string",
      { model: "m", messages: [user, { role: "assistant", tool_calls: [{ id: "c", type: "function", function: { name: "f", arguments: {} } }] }] },
      "invalid_request",
      "messages[1].tool_calls[0].function.arguments",
    ],
    ["name not a string", { model: "m", messages: [{ role: "user", content: "hi", name: 1 }] }, "invalid_request", "messages[0].name"],
    ["tools not an array", { ...ok, tools: {} }, "invalid_request", "tools"],
    ["tools[0].type retrieval", { ...ok, tools: [{ type: "retrieval" }] }, "unsupported", "tools[0].type"],
    ["tools[1] without type", { ...ok, tools: [{ type: "function", function: { name: "f" } }, { function: { name: "g" } }] }, "unsupported", "tools[1].type"],
    ["tool without function", { ...ok, tools: [{ type: "function" }] }, "invalid_request", "tools[0].function"],
    ["tool with empty name", { ...ok, tools: [{ type: "function", function: { name: "" } }] }, "invalid_request", "tools[0].function.name"],
    ["tool parameters not an object", { ...ok, tools: [{ type: "function", function: { name: "f", parameters: "{}" } }] }, "invalid_request", "tools[0].function.parameters"],
    ["tool strict not a boolean", { ...ok, tools: [{ type: "function", function: { name: "f", strict: "yes" } }] }, "invalid_request", "tools[0].function.strict"],
    ["tool_choice sometimes", { ...ok, tool_choice: "sometimes" }, "invalid_request", "tool_choice"],
    ["tool_choice a number", { ...ok, tool_choice: 1 }, "invalid_request", "tool_choice"],
    ["tool_choice object of another type", { ...ok, tool_choice: { type: "allowed_tools" } }, "unsupported", "tool_choice.type"],
    ["tool_choice function without name", { ...ok, tool_choice: { type: "function", function: {} } }, "invalid_request", "tool_choice.function.name"],
    ["parallel_tool_calls a string", { ...ok, parallel_tool_calls: "yes" }, "invalid_request", "parallel_tool_calls"],
    ["response_format type bogus", { ...ok, response_format: { type: "bogus" } }, "invalid_request", "response_format.type"],
    ["response_format a string", { ...ok, response_format: "json" }, "invalid_request", "response_format"],
    ["json_schema missing", { ...ok, response_format: { type: "json_schema" } }, "invalid_request", "response_format.json_schema"],
    ["json_schema without name", { ...ok, response_format: { type: "json_schema", json_schema: { schema: {} } } }, "invalid_request", "response_format.json_schema.name"],
    ["temperature hot", { ...ok, temperature: "hot" }, "invalid_request", "temperature"],
    ["top_p a boolean", { ...ok, top_p: true }, "invalid_request", "top_p"],
    ["max_tokens -1", { ...ok, max_tokens: -1 }, "invalid_request", "max_tokens"],
    ["max_tokens 1.5", { ...ok, max_tokens: 1.5 }, "invalid_request", "max_tokens"],
    ["max_tokens above uint32", { ...ok, max_tokens: 2 ** 32 }, "invalid_request", "max_tokens"],
    ["max_completion_tokens a string", { ...ok, max_completion_tokens: "100" }, "invalid_request", "max_completion_tokens"],
    ["n 0", { ...ok, n: 0 }, "invalid_request", "n"],
    ["n 1.5", { ...ok, n: 1.5 }, "invalid_request", "n"],
    ["seed 1.5", { ...ok, seed: 1.5 }, "invalid_request", "seed"],
    ["seed a string", { ...ok, seed: "42" }, "invalid_request", "seed"],
    ["seed beyond safe integers", { ...ok, seed: 2 ** 60 }, "invalid_request", "seed"],
    ["stop a number", { ...ok, stop: 5 }, "invalid_request", "stop"],
    ["stop array with a number", { ...ok, stop: ["a", 5] }, "invalid_request", "stop[1]"],
    ["presence_penalty a string", { ...ok, presence_penalty: "0" }, "invalid_request", "presence_penalty"],
    ["frequency_penalty an array", { ...ok, frequency_penalty: [0] }, "invalid_request", "frequency_penalty"],
    ["user a number", { ...ok, user: 1 }, "invalid_request", "user"],
    ["metadata an array", { ...ok, metadata: ["a"] }, "invalid_request", "metadata"],
    ["metadata value non-string", { ...ok, metadata: { a: "x", b: 1 } }, "invalid_request", "metadata.b"],
    ["stream yes", { ...ok, stream: "yes" }, "invalid_request", "stream"],
    ["stream_options a string", { ...ok, stream: true, stream_options: "usage" }, "invalid_request", "stream_options"],
    ["include_usage a string", { ...ok, stream: true, stream_options: { include_usage: "yes" } }, "invalid_request", "stream_options.include_usage"],
  ];

  for (const [name, body, code, param] of cases) {
    it(`${name} -> ${code} (${param})`, () => {
      const err = gatewayError(() => decodeChatRequest(body));
      expect(err.code).toBe(code);
      expect(err.param).toBe(param);
      expect(err.message).toContain(param);
    });
  }
});

// ---------------------------------------------------------------------------
// Chat responses and chunks

const openaiCompletion: Json = {
  id: "chatcmpl-abc123",
  object: "chat.completion",
  created: 1_700_000_000,
  model: "gpt-4o-mini-2024-07-18",
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: null,
        refusal: null,
        annotations: [],
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } },
          { id: "call_2", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      logprobs: null,
      finish_reason: "tool_calls",
    },
    {
      index: 1,
      message: { role: "assistant", content: "Hello there.", refusal: null, annotations: [] },
      logprobs: {
        content: [{ token: "Hello", logprob: -0.01, bytes: [72, 101, 108, 108, 111], top_logprobs: [{ token: "Hello", logprob: -0.01, bytes: [72, 101, 108, 108, 111] }] }],
        refusal: null,
      },
      finish_reason: "stop",
    },
    {
      index: 2,
      message: { role: "assistant", content: null, refusal: "I can't help with that." },
      logprobs: null,
      finish_reason: "content_filter",
    },
    {
      index: 3,
      message: { role: "assistant", content: "", refusal: null },
      logprobs: null,
      finish_reason: "length",
    },
  ],
  usage: {
    prompt_tokens: 120,
    completion_tokens: 80,
    total_tokens: 200,
    prompt_tokens_details: { cached_tokens: 64 },
    completion_tokens_details: { reasoning_tokens: 32 },
  },
  service_tier: "default",
  system_fingerprint: "fp_44709d6fcb",
};

describe("decodeChatCompletion -> encodeChatCompletion", () => {
  it("round-trips an OpenAI completion", () => {
    const out = JSON.parse(JSON.stringify(encodeChatCompletion(decodeChatCompletion(structuredClone(openaiCompletion))))) as Json;
    expect(out).toEqual(openaiCompletion);
  });

  it("decodes usage, tool calls and refusals into the canonical form", () => {
    const c = decodeChatCompletion(structuredClone(openaiCompletion));
    expect(c.created).toBe(1_700_000_000n);
    expect(c.usage).toMatchObject({ promptTokens: 120, completionTokens: 80, totalTokens: 200, cachedTokens: 64, reasoningTokens: 32 });
    expect(c.choices[0]!.message!.toolCalls.map((t) => t.id)).toEqual(["call_1", "call_2"]);
    expect(c.choices[0]!.message!.refusal).toBeUndefined();
    expect(c.choices[2]!.message!.refusal).toBe("I can't help with that.");
    expect(c.extra).toEqual({ service_tier: "default" });
    expect(c.choices[1]!.extra).toMatchObject({ logprobs: { refusal: null } });
  });

  it("fills keys OpenAI always sends when the provider left them out", () => {
    const out = encodeChatCompletion(
      decodeChatCompletion({ id: "x", created: 1, model: "m", choices: [{ message: { content: "hi" }, finish_reason: "stop" }] }),
    );
    expect(out).toEqual({
      id: "x",
      object: "chat.completion",
      created: 1,
      model: "m",
      choices: [{ index: 0, message: { role: "assistant", content: "hi", refusal: null }, logprobs: null, finish_reason: "stop" }],
    });
  });

  it("computes total_tokens when the provider omits it and fills zero details", () => {
    const out = encodeChatCompletion(
      decodeChatCompletion({ id: "x", created: 1, model: "m", choices: [], usage: { prompt_tokens: 3, completion_tokens: 4 } }),
    );
    expect(out["usage"]).toEqual({
      prompt_tokens: 3,
      completion_tokens: 4,
      total_tokens: 7,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
  });
});

const chunkBase = { id: "chatcmpl-abc123", object: "chat.completion.chunk", created: 1_700_000_000, model: "gpt-4o-mini", system_fingerprint: "fp_1" };
const choice = (delta: Json, finish_reason: string | null = null, index = 0): Json => ({ index, delta, logprobs: null, finish_reason });

describe("decodeChatChunk -> encodeChatChunk", () => {
  const chunks: [string, Json][] = [
    ["role chunk", { ...chunkBase, choices: [choice({ role: "assistant", content: "" })] }],
    ["content chunk", { ...chunkBase, choices: [choice({ content: "Hel" })] }],
    ["refusal chunk", { ...chunkBase, choices: [choice({ refusal: "I can't" })] }],
    [
      "first tool call delta",
      { ...chunkBase, choices: [choice({ role: "assistant", tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get_weather", arguments: "" } }] })] },
    ],
    ["later tool call delta", { ...chunkBase, choices: [choice({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] })] }],
    [
      "second parallel tool call",
      { ...chunkBase, choices: [choice({ tool_calls: [{ index: 1, id: "call_2", type: "function", function: { name: "get_time", arguments: "{}" } }] })] },
    ],
    ["finish chunk", { ...chunkBase, choices: [choice({}, "tool_calls")] }],
    ["stop chunk", { ...chunkBase, choices: [choice({}, "stop")] }],
    ["several choices", { ...chunkBase, choices: [choice({ content: "a" }, null, 0), choice({ content: "b" }, "length", 1)] }],
    ["chunk with choice logprobs", { ...chunkBase, choices: [{ index: 0, delta: { content: "a" }, logprobs: { content: [{ token: "a", logprob: -1, bytes: [97], top_logprobs: [] }], refusal: null }, finish_reason: null }] }],
    [
      "usage chunk",
      {
        ...chunkBase,
        choices: [],
        usage: {
          prompt_tokens: 9,
          completion_tokens: 12,
          total_tokens: 21,
          prompt_tokens_details: { cached_tokens: 0 },
          completion_tokens_details: { reasoning_tokens: 0 },
        },
      },
    ],
  ];

  for (const [name, chunk] of chunks) {
    it(`round-trips a ${name}`, () => {
      const out = JSON.parse(JSON.stringify(encodeChatChunk(decodeChatChunk(structuredClone(chunk))))) as Json;
      expect(out).toEqual(chunk);
    });
  }

  it("decodes a tool call delta's fields", () => {
    const c = decodeChatChunk(chunks[3]![1]);
    expect(c.choices[0]!.delta!.toolCalls).toEqual([
      expect.objectContaining({ index: 0, id: "call_1", name: "get_weather", arguments: "" }),
    ]);
    const later = decodeChatChunk(chunks[4]![1]);
    expect(later.choices[0]!.delta!.toolCalls).toEqual([expect.objectContaining({ index: 0, id: "", name: "", arguments: '{"city":' })]);
  });

  it("drops null delta fields (the SDKs treat absent and null alike)", () => {
    const out = encodeChatChunk(
      decodeChatChunk({ ...chunkBase, choices: [choice({ role: "assistant", content: null, refusal: null, tool_calls: null })] }),
    );
    expect(out["choices"]).toEqual([choice({ role: "assistant" })]);
  });
});

describe("malformed upstream answers are upstream errors, never crashes", () => {
  const completions: [string, unknown][] = [
    ["{}", {}],
    ['{"choices":"x"}', { choices: "x" }],
    ["choices null", { choices: null }],
    ["a choice without message", { choices: [{ index: 0, finish_reason: "stop" }] }],
    ["a null choice", { choices: [null] }],
    ["a string message", { choices: [{ message: "hi" }] }],
    ["null body", null],
    ["an array body", [{ choices: [] }]],
    ["a string body", "<html>502 Bad Gateway</html>"],
  ];
  for (const [name, body] of completions) {
    it(`decodeChatCompletion: ${name}`, () => {
      const err = gatewayError(() => decodeChatCompletion(body));
      expect(err.code).toBe("upstream_error");
    });
  }

  it("rejects wrong-typed numbers (timestamps, indexes) as upstream errors", () => {
    expect(gatewayError(() => decodeChatCompletion({ created: "yesterday", choices: [] })).code).toBe("upstream_error");
    expect(gatewayError(() => decodeChatCompletion({ choices: [{ index: "0", message: {} }] })).code).toBe("upstream_error");
  });

  it("tolerates other wrong-typed fields inside an otherwise valid completion", () => {
    const c = decodeChatCompletion({
      id: 5,
      model: null,
      choices: [{ message: { content: 5, refusal: 7, tool_calls: [1, null, { id: 3, function: "f" }, { function: { name: 1, arguments: {} } }] }, finish_reason: "eos" }],
      usage: "lots",
    });
    expect(c.id).toBe("");
    expect(c.created).toBe(0n);
    expect(c.usage).toBeUndefined();
    expect(c.choices[0]!.message!.content).toEqual([]);
    expect(c.choices[0]!.message!.toolCalls).toHaveLength(2);
    expect(() => JSON.stringify(encodeChatCompletion(c))).not.toThrow();
  });

  it("decodeChatChunk: a non-object chunk or choice is an upstream error", () => {
    for (const body of [null, "data", [1], { choices: [5] }, { choices: [null] }]) {
      expect(gatewayError(() => decodeChatChunk(body)).code, JSON.stringify(body)).toBe("upstream_error");
    }
  });

  it("decodeChatChunk: missing or wrong-typed parts are tolerated", () => {
    const c = decodeChatChunk({ choices: "x", usage: 1 });
    expect(c.choices).toEqual([]);
    expect(c.usage).toBeUndefined();
    const d = decodeChatChunk({ choices: [{ delta: "x" }, { delta: { tool_calls: [1, { function: 2 }] } }] });
    expect(d.choices).toHaveLength(2);
    // non-object tool calls are skipped; the index defaults to the position among the rest
    expect(d.choices[1]!.delta!.toolCalls).toEqual([expect.objectContaining({ index: 0, id: "", name: "", arguments: undefined })]);
  });
});

// BUG (server/wire/openai/chat-response.ts num()/decodeUsage/decodeChoice/
// decodeChoiceDelta, and server/wire/openai/embeddings.ts decodeEmbedResponse):
// numbers from the provider are copied into uint32/int64 canonical fields
// without checking they are non-negative integers in range, so the decoded
// message cannot be serialised: on the RPC path (connect serialises the
// returned message) a misbehaving provider yields Code.Internal ("cannot
// encode field ... invalid uint32: -1") instead of an upstream_error, which
// breaks the module's contract "anything off-shape is an upstream error, never
// a crash". Expected: decode throws upstream_error (or clamps/drops the value);
// actual: decode succeeds and toBinary throws a plain Error.
describe("decoded upstream answers are valid canonical messages", () => {
  /** Passes when decode rejects with upstream_error, or its result serialises. */
  function decodesToValidOrRejects<T>(decode: () => T, serialise: (v: T) => unknown): void {
    let decoded: T;
    try {
      decoded = decode();
    } catch (err) {
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe("upstream_error");
      return;
    }
    expect(() => serialise(decoded)).not.toThrow();
  }

  const cases: [string, () => void][] = [
    ["negative usage tokens", () => decodesToValidOrRejects(() => decodeChatCompletion({ choices: [], usage: { prompt_tokens: -1, completion_tokens: 1 } }), (c) => toBinary(ChatCompletionSchema, c))],
    ["fractional usage tokens", () => decodesToValidOrRejects(() => decodeChatCompletion({ choices: [], usage: { prompt_tokens: 1.5, completion_tokens: 1 } }), (c) => toBinary(ChatCompletionSchema, c))],
    ["usage tokens above uint32", () => decodesToValidOrRejects(() => decodeChatCompletion({ choices: [], usage: { prompt_tokens: 2 ** 33 } }), (c) => toBinary(ChatCompletionSchema, c))],
    ["fractional choice index", () => decodesToValidOrRejects(() => decodeChatCompletion({ choices: [{ index: 1.5, message: { content: "x" } }] }), (c) => toBinary(ChatCompletionSchema, c))],
    ["created beyond int64", () => decodesToValidOrRejects(() => decodeChatCompletion({ created: 1e20, choices: [] }), (c) => toBinary(ChatCompletionSchema, c))],
    ["negative tool call delta index", () => decodesToValidOrRejects(() => decodeChatChunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: -1, function: { arguments: "x" } }] } }] }), (c) => toBinary(ChatChunkSchema, c))],
    ["negative embedding index", () => decodesToValidOrRejects(() => decodeEmbedResponse({ data: [{ index: -1, embedding: [1] }] }), (r) => toBinary(EmbedResponseSchema, r))],
  ];
  for (const [name, run] of cases) it(name, run);

  it("an embedding with non-numeric elements is an upstream error", () => {
    // Today the strings/nulls are passed to REST callers as the embedding
    // (and become NaN with encoding_format base64).
    const err = gatewayError(() => decodeEmbedResponse({ data: [{ index: 0, embedding: [0.5, "a", null] }] }));
    expect(err.code).toBe("upstream_error");
  });
});

// ---------------------------------------------------------------------------
// Embeddings

describe("decodeEmbedRequest", () => {
  it("accepts a string", () => {
    const { request, encoding } = decodeEmbedRequest({ model: "text-embedding-3-small", input: "hello" });
    expect(encoding).toBe("float");
    expect(request.input).toEqual(["hello"]);
    expect(request.tokenInputs).toEqual([]);
  });

  it("accepts an array of strings", () => {
    const { request } = decodeEmbedRequest({ model: "m", input: ["a", "b", "c"] });
    expect(request.input).toEqual(["a", "b", "c"]);
    expect(request.tokenInputs).toEqual([]);
  });

  it("accepts one token array", () => {
    const { request } = decodeEmbedRequest({ model: "m", input: [1, 2, 3] });
    expect(request.input).toEqual([]);
    expect(request.tokenInputs.map((t) => t.ids)).toEqual([[1, 2, 3]]);
  });

  it("accepts several token arrays", () => {
    const { request } = decodeEmbedRequest({ model: "m", input: [[1, 2], [3], [0, 4_294_967_295]] });
    expect(request.tokenInputs.map((t) => t.ids)).toEqual([[1, 2], [3], [0, 4_294_967_295]]);
  });

  it("reads encoding_format float and base64, default float", () => {
    expect(decodeEmbedRequest({ model: "m", input: "x", encoding_format: "float" }).encoding).toBe("float");
    expect(decodeEmbedRequest({ model: "m", input: "x", encoding_format: "base64" }).encoding).toBe("base64");
    expect(decodeEmbedRequest({ model: "m", input: "x", encoding_format: null }).encoding).toBe("float");
  });

  it("keeps dimensions, user and unknown keys; asks providers for floats", () => {
    const body = { model: "m", input: ["a", "b"], dimensions: 256, user: "u-1", encoding_format: "base64", x_extra: { k: 1 } };
    const { request } = decodeEmbedRequest(body);
    expect(request.dimensions).toBe(256);
    expect(request.user).toBe("u-1");
    expect(request.extra).toEqual({ x_extra: { k: 1 } });
    expect(encodeEmbedRequest(request, "provider-model")).toEqual({
      model: "provider-model",
      input: ["a", "b"],
      dimensions: 256,
      user: "u-1",
      encoding_format: "float",
      x_extra: { k: 1 },
    });
  });

  it("re-encodes each input shape as it came", () => {
    for (const input of ["one", ["a", "b"], [1, 2], [[1], [2, 3]]]) {
      const { request } = decodeEmbedRequest({ model: "m", input });
      expect(encodeEmbedRequest(request, "m")["input"], JSON.stringify(input)).toEqual(input);
    }
  });

  it("normalises a batch of one to the single form (same meaning: one embedding)", () => {
    expect(encodeEmbedRequest(decodeEmbedRequest({ model: "m", input: ["only"] }).request, "m")["input"]).toBe("only");
    expect(encodeEmbedRequest(decodeEmbedRequest({ model: "m", input: [[1, 2]] }).request, "m")["input"]).toEqual([1, 2]);
  });

  const errors: [string, unknown, string][] = [
    ["body an array", [], "body"],
    ["model missing", { input: "x" }, "model"],
    ["model empty", { model: "", input: "x" }, "model"],
    ["input missing", { model: "m" }, "input"],
    ["input empty array", { model: "m", input: [] }, "input"],
    ["input a number", { model: "m", input: 5 }, "input"],
    ["input an object", { model: "m", input: { text: "x" } }, "input"],
    ["input mixed", { model: "m", input: ["a", 1] }, "input"],
    ["empty token array", { model: "m", input: [[1], []] }, "input[1]"],
    ["negative token", { model: "m", input: [1, -1] }, "input[1]"],
    ["fractional token", { model: "m", input: [[1, 2.5]] }, "input[0][1]"],
    ["string token", { model: "m", input: [["a"]] }, "input[0][0]"],
    ["encoding_format invalid", { model: "m", input: "x", encoding_format: "hex" }, "encoding_format"],
    ["encoding_format a number", { model: "m", input: "x", encoding_format: 1 }, "encoding_format"],
    ["dimensions negative", { model: "m", input: "x", dimensions: -3 }, "dimensions"],
  ];
  for (const [name, body, param] of errors) {
    it(`error: ${name} (${param})`, () => {
      const err = gatewayError(() => decodeEmbedRequest(body));
      expect(err.code).toBe("invalid_request");
      expect(err.param).toBe(param);
    });
  }
});

describe("embedding responses", () => {
  const vectors = [
    [0.1, -2.5, 3.14159265, 1e-8, 0, -0, 65504.5, 1 / 3],
    [1, 2, 3],
    Array.from({ length: 1536 }, (_, i) => Math.sin(i) / (i + 1)),
  ];
  const response = create(EmbedResponseSchema, {
    data: vectors.map((vector, index) => ({ index, vector })),
    model: "text-embedding-3-small",
    usage: { promptTokens: 8, totalTokens: 8 },
  });

  it("encodes floats as given", () => {
    const out = encodeEmbedResponse(response, "float");
    expect(out).toEqual({
      object: "list",
      data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
      model: "text-embedding-3-small",
      usage: { prompt_tokens: 8, total_tokens: 8 },
    });
  });

  it("encodes base64 as little-endian float32 bytes", () => {
    const out = encodeEmbedResponse(response, "base64") as { data: { embedding: string; index: number; object: string }[] };
    expect(out.data).toHaveLength(vectors.length);
    out.data.forEach((d, i) => {
      expect(d.object).toBe("embedding");
      expect(d.index).toBe(i);
      expect(typeof d.embedding).toBe("string");
      const bytes = Buffer.from(d.embedding, "base64");
      expect(bytes.length).toBe(vectors[i]!.length * 4);
      const floats = Array.from({ length: bytes.length / 4 }, (_, j) => bytes.readFloatLE(j * 4));
      expect(floats).toEqual(vectors[i]!.map((v) => Math.fround(v)));
    });
  });

  it("decodeEmbedResponse accepts float arrays and base64 strings", () => {
    const floats = [0.5, -1.25, 3.14159265];
    const buf = Buffer.alloc(floats.length * 4);
    floats.forEach((v, i) => buf.writeFloatLE(v, i * 4));
    const r = decodeEmbedResponse({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: floats },
        { object: "embedding", index: 1, embedding: buf.toString("base64") },
        { object: "embedding", embedding: [] },
      ],
      model: "text-embedding-3-small",
      usage: { prompt_tokens: 5, total_tokens: 5 },
    });
    expect(r.model).toBe("text-embedding-3-small");
    expect(r.usage).toMatchObject({ promptTokens: 5, totalTokens: 5 });
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(r.data[0]!.vector).toEqual(floats);
    expect(r.data[1]!.vector).toEqual(floats.map((v) => Math.fround(v)));
    expect(r.data[2]!.vector).toEqual([]);
  });

  it("base64 survives encode -> decode for every vector", () => {
    const encoded = encodeEmbedResponse(response, "base64");
    const decoded = decodeEmbedResponse(encoded);
    decoded.data.forEach((d, i) => expect(d.vector).toEqual(vectors[i]!.map((v) => Math.fround(v))));
  });

  it("a malformed embeddings response is an upstream error", () => {
    for (const body of [null, {}, { data: "x" }, { data: [5] }, { data: [{ embedding: 5 }] }, { data: [{ embedding: null }] }]) {
      expect(gatewayError(() => decodeEmbedResponse(body)).code, JSON.stringify(body)).toBe("upstream_error");
    }
  });
});

// ---------------------------------------------------------------------------
// Error mappings

interface Expected {
  status: number;
  type: string;
  code: string;
  connect: Code;
}

/** Every ErrorCode: a Record, so the compiler fails this file when a code is added. */
const ALL_CODES: Record<ErrorCode, Expected> = {
  invalid_request: { status: 400, type: "invalid_request_error", code: "", connect: Code.InvalidArgument },
  unsupported: { status: 400, type: "invalid_request_error", code: "unsupported_value", connect: Code.InvalidArgument },
  unauthenticated: { status: 401, type: "invalid_request_error", code: "invalid_api_key", connect: Code.Unauthenticated },
  permission_denied: { status: 403, type: "permission_error", code: "permission_denied", connect: Code.PermissionDenied },
  not_found: { status: 404, type: "invalid_request_error", code: "unknown_url", connect: Code.NotFound },
  model_not_found: { status: 404, type: "invalid_request_error", code: "model_not_found", connect: Code.NotFound },
  method_not_allowed: { status: 405, type: "invalid_request_error", code: "method_not_allowed", connect: Code.Unimplemented },
  payload_too_large: { status: 413, type: "invalid_request_error", code: "request_too_large", connect: Code.ResourceExhausted },
  rate_limited: { status: 429, type: "rate_limit_error", code: "rate_limit_exceeded", connect: Code.ResourceExhausted },
  budget_exceeded: { status: 429, type: "insufficient_quota", code: "budget_exceeded", connect: Code.ResourceExhausted },
  canceled: { status: 499, type: "invalid_request_error", code: "request_canceled", connect: Code.Canceled },
  internal: { status: 500, type: "server_error", code: "internal_error", connect: Code.Internal },
  unavailable: { status: 503, type: "server_error", code: "service_unavailable", connect: Code.Unavailable },
  upstream_error: { status: 502, type: "upstream_error", code: "upstream_error", connect: Code.Unavailable },
  upstream_unavailable: { status: 503, type: "upstream_error", code: "upstream_unavailable", connect: Code.Unavailable },
  upstream_timeout: { status: 504, type: "timeout_error", code: "upstream_timeout", connect: Code.DeadlineExceeded },
};

describe("error mappings", () => {
  const codes = Object.keys(ALL_CODES) as ErrorCode[];

  it("lists all sixteen codes", () => {
    expect(codes).toHaveLength(16);
  });

  for (const code of codes) {
    const want = ALL_CODES[code];
    it(`${code} -> HTTP ${want.status}, Connect ${Code[want.connect]}`, () => {
      const { status, body } = toOpenAIError(new GatewayError(code, `something about ${code}`));
      expect(status).toBe(want.status);
      expect(Object.keys(body)).toEqual(["error"]);
      expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(body.error).toEqual({ message: `something about ${code}`, type: want.type, param: null, code: want.code || null });
      expect(httpMapping(code).status).toBe(want.status);
      expect(connectCode(code)).toBe(want.connect);
    });
  }

  it("the body is valid JSON with the four keys when param and provider code are set", () => {
    const err = new GatewayError("invalid_request", "bad", { param: "messages[0].role", providerCode: "context_length_exceeded" });
    const { body } = JSON.parse(JSON.stringify(toOpenAIError(err))) as { body: { error: Json } };
    expect(body.error).toEqual({ message: "bad", type: "invalid_request_error", param: "messages[0].role", code: "context_length_exceeded" });
  });

  it("a decode error maps to a 400 naming the param", () => {
    const err = gatewayError(() => decodeChatRequest({ model: "m", messages: [{ role: "wizard", content: "x" }] }));
    const { status, body } = toOpenAIError(err);
    expect(status).toBe(400);
    expect(body.error.param).toBe("messages[0].role");
    expect(body.error.type).toBe("invalid_request_error");
  });

  it("toConnectError carries the code, the param and retry-after", () => {
    const ce = toConnectError(new GatewayError("rate_limited", "slow down", { param: "model", retryAfter: "7" }));
    expect(ce.code).toBe(Code.ResourceExhausted);
    expect(ce.rawMessage).toBe("slow down (param: model)");
    expect(ce.metadata.get("retry-after")).toBe("7");
    const plain = toConnectError(new GatewayError("internal", "oops"));
    expect(plain.rawMessage).toBe("oops");
    expect(plain.metadata.get("retry-after")).toBeNull();
  });

  it("GatewayError.from hides anything that is not a GatewayError", () => {
    const secret = new TypeError("Cannot read properties of undefined (reading 'sk-secret')");
    const err = GatewayError.from(secret);
    expect(err.code).toBe("internal");
    expect(err.message).toBe("internal gateway error");
    expect(err.cause).toBe(secret);
    expect(JSON.stringify(toOpenAIError(err).body)).not.toContain("sk-secret");
    const same = new GatewayError("not_found", "x");
    expect(GatewayError.from(same)).toBe(same);
  });
});
