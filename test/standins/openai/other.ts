/**
 * The stand-in's answers for OpenAI's other endpoints: legacy completions
 * (JSON and SSE), moderations and image generation, shaped as OpenAI's API
 * reference and `shared/spec/openai-openapi.yaml` describe them.
 */
import { randomBytes } from "node:crypto";
import { estimateTokens } from "./wire.ts";

type Json = Record<string, unknown>;

const id = (prefix: string): string => `${prefix}-${randomBytes(12).toString("base64url")}`;

/** "echo: <prompt>", cut to max_tokens (4 characters a token), like the chat stand-in. */
export function completionPlan(body: Json): { model: string; text: string; finish: "stop" | "length"; prompt: number; completion: number } {
  const prompt = Array.isArray(body["prompt"]) ? body["prompt"].join("\n") : String(body["prompt"] ?? "");
  let text = `echo: ${prompt}`;
  let finish: "stop" | "length" = "stop";
  const max = typeof body["max_tokens"] === "number" ? body["max_tokens"] : 16; // OpenAI's default for completions
  if (estimateTokens(text) > max) {
    text = text.slice(0, max * 4);
    finish = "length";
  }
  return { model: String(body["model"]), text, finish, prompt: estimateTokens(prompt), completion: estimateTokens(text) };
}

export function renderTextCompletion(body: Json): Json {
  const p = completionPlan(body);
  return {
    id: id("cmpl"),
    object: "text_completion",
    created: Math.floor(Date.now() / 1000),
    model: p.model,
    system_fingerprint: "fp_standin",
    choices: [{ text: p.text, index: 0, logprobs: null, finish_reason: p.finish }],
    usage: { prompt_tokens: p.prompt, completion_tokens: p.completion, total_tokens: p.prompt + p.completion },
  };
}

/** SSE events (without the trailing [DONE]): a chunk per 4 characters, the finish, then usage when asked. */
export function renderTextCompletionChunks(body: Json): Json[] {
  const p = completionPlan(body);
  const base = { id: id("cmpl"), object: "text_completion", created: Math.floor(Date.now() / 1000), model: p.model, system_fingerprint: "fp_standin" };
  const chunks: Json[] = [];
  for (let i = 0; i < p.text.length; i += 4) chunks.push({ ...base, choices: [{ text: p.text.slice(i, i + 4), index: 0, logprobs: null, finish_reason: null }] });
  chunks.push({ ...base, choices: [{ text: "", index: 0, logprobs: null, finish_reason: p.finish }] });
  const opts = body["stream_options"] as Json | undefined;
  if (opts?.["include_usage"] === true) {
    chunks.push({ ...base, choices: [], usage: { prompt_tokens: p.prompt, completion_tokens: p.completion, total_tokens: p.prompt + p.completion } });
  }
  return chunks;
}

const CATEGORIES = [
  "hate", "hate/threatening", "harassment", "harassment/threatening", "illicit", "illicit/violent", "self-harm",
  "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
];

/** Every input unflagged, except text containing "kill", which is flagged for violence. */
export function renderModeration(body: Json): Json {
  const inputs = Array.isArray(body["input"]) ? body["input"] : [body["input"]];
  return {
    id: id("modr"),
    model: String(body["model"] ?? "omni-moderation-latest"),
    results: inputs.map((input) => {
      const violent = typeof input === "string" && /\bkill\b/i.test(input);
      return {
        flagged: violent,
        categories: Object.fromEntries(CATEGORIES.map((c) => [c, violent && c === "violence"])),
        category_scores: Object.fromEntries(CATEGORIES.map((c) => [c, violent && c === "violence" ? 0.93 : 0.0001])),
        category_applied_input_types: Object.fromEntries(CATEGORIES.map((c) => [c, ["text"]])),
      };
    }),
  };
}

/** n images (1 by default), as b64_json for gpt-image-1 (with token usage) and as URLs otherwise. */
export function renderImages(body: Json): Json {
  const n = typeof body["n"] === "number" ? body["n"] : 1;
  const model = String(body["model"] ?? "dall-e-2");
  const b64 = model.startsWith("gpt-image") || body["response_format"] === "b64_json";
  const data = Array.from({ length: n }, (_, i) => (b64 ? { b64_json: Buffer.from(`png ${i}`).toString("base64") } : { url: `https://images.standin.invalid/${id("img")}.png` }));
  const prompt = estimateTokens(String(body["prompt"] ?? ""));
  return {
    created: Math.floor(Date.now() / 1000),
    data,
    ...(model.startsWith("gpt-image") ? { usage: { total_tokens: prompt + 1056 * n, input_tokens: prompt, output_tokens: 1056 * n, input_tokens_details: { text_tokens: prompt, image_tokens: 0 } } } : {}),
  };
}

/** A multipart body as a plain record: text fields as strings, files as { filename, size, type }. */
export async function parseMultipart(raw: Buffer, contentType: string): Promise<Json | undefined> {
  try {
    const form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
    const out: Json = {};
    for (const [k, v] of form) out[k] = typeof v === "string" ? v : { filename: (v as File).name, size: v.size, type: v.type };
    return out;
  } catch {
    return undefined;
  }
}

/** Deterministic "audio": the input text's bytes behind an MP3-like header, sent in two writes. */
export function renderSpeech(body: Json): Buffer {
  return Buffer.concat([Buffer.from([0x49, 0x44, 0x33, 0x04]), Buffer.from(String(body["input"] ?? ""), "utf8")]);
}

/** whisper-1 answers text only; gpt-4o-transcribe also reports token usage, as OpenAI does. */
export function renderTranscription(body: Json): Json {
  const file = body["file"] as { filename?: string; size?: number } | undefined;
  const text = `transcribed ${file?.filename ?? "audio"} (${file?.size ?? 0} bytes)`;
  if (String(body["model"]).startsWith("gpt-4o")) {
    return { text, usage: { type: "tokens", input_tokens: 100, output_tokens: estimateTokens(text), total_tokens: 100 + estimateTokens(text), input_token_details: { text_tokens: 0, audio_tokens: 100 } } };
  }
  // whisper-1 reports the audio's duration (here: a 4 kB/s recording).
  return { text, usage: { type: "duration", seconds: Math.ceil((file?.size ?? 0) / 4000) } };
}

/** The text of the last user input of a Responses request (a string input, or the last user message's text parts). */
function lastUserText(input: unknown): string {
  if (typeof input === "string") return input;
  if (!Array.isArray(input)) return "";
  for (let i = input.length - 1; i >= 0; i--) {
    const item = input[i] as Json;
    if (item["role"] !== "user") continue;
    const c = item["content"];
    if (typeof c === "string") return c;
    if (Array.isArray(c)) return c.map((p) => (typeof (p as Json)["text"] === "string" ? (p as Json)["text"] : "")).join("");
  }
  return "";
}

/**
 * OpenAI's own Responses API, for passthrough tests: "echo: <last user
 * text>" as a message item, preceded by a web_search_call item when the
 * request has a web_search tool (a built-in tool only OpenAI runs).
 */
export function renderResponse(body: Json): Json {
  const text = `echo: ${lastUserText(body["input"])}`;
  const tools = Array.isArray(body["tools"]) ? (body["tools"] as Json[]) : [];
  const output: Json[] = [];
  if (tools.some((t) => t["type"] === "web_search")) {
    output.push({ type: "web_search_call", id: id("ws"), status: "completed", action: { type: "search", query: lastUserText(body["input"]) } });
  }
  output.push({ type: "message", id: id("msg"), status: "completed", role: "assistant", content: [{ type: "output_text", text, annotations: [], logprobs: [] }] });
  const input = estimateTokens(JSON.stringify(body["input"] ?? ""));
  const out = estimateTokens(text);
  return {
    id: `resp_${randomBytes(16).toString("hex")}`,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    status: "completed",
    error: null,
    incomplete_details: null,
    instructions: body["instructions"] ?? null,
    model: String(body["model"]),
    output,
    parallel_tool_calls: true,
    previous_response_id: body["previous_response_id"] ?? null,
    store: body["store"] ?? true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools,
    top_p: 1,
    truncation: "disabled",
    usage: { input_tokens: input, input_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 }, output_tokens: out, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: input + out },
    metadata: body["metadata"] ?? {},
  };
}

/** The same Response as OpenAI's typed event stream (whole frames, with sequence numbers). */
export function renderResponseEvents(body: Json): string[] {
  const done = renderResponse(body);
  const start = { ...done, status: "in_progress", output: [], usage: null };
  let seq = 0;
  const events: Json[] = [{ type: "response.created", response: start }, { type: "response.in_progress", response: start }];
  (done["output"] as Json[]).forEach((item, outputIndex) => {
    if (item["type"] !== "message") {
      events.push({ type: "response.output_item.added", output_index: outputIndex, item }, { type: "response.output_item.done", output_index: outputIndex, item });
      return;
    }
    const text = ((item["content"] as Json[])[0] as Json)["text"] as string;
    events.push({ type: "response.output_item.added", output_index: outputIndex, item: { ...item, status: "in_progress", content: [] } });
    events.push({ type: "response.content_part.added", item_id: item["id"], output_index: outputIndex, content_index: 0, part: { type: "output_text", text: "", annotations: [], logprobs: [] } });
    for (let i = 0; i < text.length; i += 4) {
      events.push({ type: "response.output_text.delta", item_id: item["id"], output_index: outputIndex, content_index: 0, delta: text.slice(i, i + 4), logprobs: [] });
    }
    events.push({ type: "response.output_text.done", item_id: item["id"], output_index: outputIndex, content_index: 0, text, logprobs: [] });
    events.push({ type: "response.content_part.done", item_id: item["id"], output_index: outputIndex, content_index: 0, part: { type: "output_text", text, annotations: [], logprobs: [] } });
    events.push({ type: "response.output_item.done", output_index: outputIndex, item });
  });
  events.push({ type: "response.completed", response: done });
  return events.map((e) => `event: ${String(e["type"])}\ndata: ${JSON.stringify({ ...e, sequence_number: seq++ })}\n\n`);
}
