import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { ChatRequest, Message } from "../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest } from "../../gen/switchyard/v1/embeddings_pb.ts";

/**
 * Token estimates for budget and rate-limit reservations, made before the
 * provider has counted anything. They must not fall short (a reservation
 * below the real cost lets a key overspend its budget) and must be cheap
 * (they run on every request), so there is no tokenizer: text is measured
 * in UTF-8 bytes and the request is walked field by field; only JSON
 * schemas (already objects) are serialised. The settled cost always comes
 * from the provider's own usage figures.
 *
 * Why ceil(bytes / 2): English runs ~4 bytes a token and code ~3 on every
 * current tokenizer (OpenAI o200k/cl100k, Anthropic, Gemini, Llama). CJK
 * characters are 3 bytes each in UTF-8 and cost about one token each
 * (sometimes two on older vocabularies such as cl100k), so a "one token per
 * 3-4 bytes" rule undercounts them while bytes / 2 still covers 1.5 tokens
 * per character. Byte-level BPE's hard bound is one token per byte, and
 * strings of rare characters approach it (12 rare CJK ideographs: 36 bytes,
 * 28 cl100k tokens); ordinary prose, code and JSON in any script stay
 * below bytes / 2 (measured in test/governance-pricing.test.ts).
 */

/** Per message: role markers and separators in the chat template (OpenAI documents 3-4; templates of other models use up to ~8). */
export const MESSAGE_OVERHEAD_TOKENS = 8;
/** Per request: the primer of the reply ("<|start|>assistant"), BOS, and the like. */
export const REQUEST_OVERHEAD_TOKENS = 8;
/** Per tool definition, beyond its serialised name, description and schema. */
export const TOOL_OVERHEAD_TOKENS = 16;
/**
 * Once per request that defines tools: the system prompt providers add for
 * tool use (Anthropic documents 313-346 tokens for Claude 4 models).
 */
export const TOOLS_PROMPT_TOKENS = 400;
/**
 * Per image. Anthropic caps an image at ~1,600 tokens (≈1.15 MP / 750),
 * OpenAI's tile models spend at most 1,105 on gpt-4o (85 + 6 × 170) and
 * 630 on gpt-5 class models at high detail, Gemini 258 per 768 px tile. Models
 * that count image tokens with a multiplier (gpt-4o-mini, gpt-4.1-mini)
 * report more tokens at a lower per-token price; their reservation in USD
 * can still fall short by a fraction of a cent per image, which settlement
 * corrects.
 */
export const IMAGE_TOKENS = 1600;
/**
 * Per audio or file part (OpenAI `input_audio`, `file`). Their size in
 * tokens depends on duration or page count that only the provider sees;
 * this is an allowance, not a bound (about 160 s of OpenAI audio, or one
 * PDF page with its image on Anthropic).
 */
export const MEDIA_PART_TOKENS = 1600;

/** Bytes -> tokens, rounding up (see the module comment). */
function textTokens(bytes: number): number {
  return Math.ceil(bytes / 2);
}

function bytes(s: string | undefined): number {
  return s === undefined || s.length === 0 ? 0 : Buffer.byteLength(s, "utf8");
}

function schemaBytes(o: JsonObject | undefined): number {
  return o === undefined ? 0 : Buffer.byteLength(JSON.stringify(o), "utf8");
}

/** An over-estimate of the prompt tokens `req` will be billed for. */
export function estimatePromptTokens(req: ChatRequest): number {
  let textBytes = 0;
  let fixed = REQUEST_OVERHEAD_TOKENS;
  for (const m of req.messages) {
    fixed += MESSAGE_OVERHEAD_TOKENS;
    textBytes += bytes(m.name) + bytes(m.toolCallId) + bytes(m.refusal) + bytes(m.reasoningContent);
    for (const part of m.content) {
      const p = part.part;
      if (p.case === "text") textBytes += bytes(p.value);
      else if (p.case === "imageUrl") fixed += IMAGE_TOKENS;
      else if (p.case === "raw") {
        const r = rawPart(p.value);
        textBytes += r.textBytes;
        fixed += r.tokens;
      }
    }
    for (const call of m.toolCalls) {
      textBytes += bytes(call.id) + bytes(call.function?.name) + bytes(call.function?.arguments);
    }
    fixed += extraImages(m) * IMAGE_TOKENS;
  }
  if (req.tools.length > 0) fixed += TOOLS_PROMPT_TOKENS;
  for (const t of req.tools) {
    fixed += TOOL_OVERHEAD_TOKENS;
    const f = t.function;
    if (f !== undefined) textBytes += bytes(f.name) + bytes(f.description) + schemaBytes(f.parameters);
  }
  const tc = req.toolChoice?.choice;
  if (tc?.case === "function") textBytes += bytes(tc.value);
  const js = req.responseFormat?.jsonSchema;
  if (js !== undefined) textBytes += bytes(js.name) + bytes(js.description) + schemaBytes(js.schema);
  return fixed + textTokens(textBytes);
}

/** A raw content part: a refusal is text; audio and files get the media allowance. */
function rawPart(v: JsonObject): { textBytes: number; tokens: number } {
  const type = v["type"];
  if (type === "refusal" || type === "text") {
    const text = v[type];
    return { textBytes: typeof text === "string" ? bytes(text) : 0, tokens: 0 };
  }
  return { textBytes: 0, tokens: MEDIA_PART_TOKENS };
}

/**
 * Images that only the original Anthropic blocks carry (inside a
 * tool_result); images that are also content parts are counted there.
 */
function extraImages(m: Message): number {
  const blocks = m.toolCallId === "" ? undefined : m.extra?.["content"];
  if (!Array.isArray(blocks)) return 0;
  let n = 0;
  for (const b of blocks) {
    const inner = isObject(b) && b["type"] === "tool_result" ? b["content"] : undefined;
    if (!Array.isArray(inner)) continue;
    for (const c of inner) if (isObject(c) && c["type"] === "image") n++;
  }
  return n;
}

function isObject(v: JsonValue): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Per input: special tokens some embedding models add (BOS/EOS, CLS/SEP). */
const EMBED_INPUT_OVERHEAD_TOKENS = 2;

/** An over-estimate of the tokens an embeddings request will be billed for; pre-tokenised inputs count exactly. */
export function estimateEmbedTokens(req: EmbedRequest): number {
  let tokens = 0;
  for (const s of req.input) tokens += textTokens(bytes(s)) + EMBED_INPUT_OVERHEAD_TOKENS;
  for (const t of req.tokenInputs) tokens += t.ids.length;
  return tokens;
}

/**
 * Output tokens of a stream that ended without a usage report, from the
 * text it delivered: ceil(UTF-8 bytes / 3), between English (~4 bytes a
 * token) and CJK (~3 bytes a token).
 */
export function estimateOutputTokensFromText(text: string): number {
  return outputTokensFromBytes(bytes(text));
}

/** The same estimate from a byte count gathered piece by piece (a stream's deltas). */
export function outputTokensFromBytes(utf8Bytes: number): number {
  return Math.ceil(utf8Bytes / 3);
}

/** UTF-8 length of a piece of text. */
export function textBytes(s: string | undefined): number {
  return bytes(s);
}
