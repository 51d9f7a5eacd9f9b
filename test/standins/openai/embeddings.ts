/**
 * `POST /v1/embeddings` for the stand-in: validation, deterministic vectors and
 * OpenAI's two encodings. The official SDK asks for `base64` by default and
 * decodes it itself, so both encodings must carry the very same float32 values.
 */
import { createHash } from "node:crypto";
import { type ErrorAnswer, estimateTokens, openAIErrors } from "./wire.ts";

type Json = Record<string, unknown>;
type Validated<T> = { ok: true; value: T } | { ok: false; error: ErrorAnswer };

/** What the stand-in reads from an embeddings request once it passed validation. */
export interface EmbeddingsRequestView {
  model: string;
  /** One key per input: the text, or `tokens:1,2,3` for a token array. */
  keys: string[];
  /** Prompt tokens per input: {@link estimateTokens} for text, the length for token arrays. */
  tokens: number[];
  encoding: "float" | "base64";
  dimensions: number;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const isTokenArray = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((t) => Number.isInteger(t));

/** Accepts what OpenAI accepts for `input`: a string, strings, a token array, token arrays (none empty). */
function readInputs(input: unknown): { keys: string[]; tokens: number[] } | undefined {
  if (typeof input === "string") return input === "" ? undefined : { keys: [input], tokens: [estimateTokens(input)] };
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((s) => typeof s === "string")) {
    if (input.some((s) => s === "")) return undefined;
    return { keys: input, tokens: input.map(estimateTokens) };
  }
  if (isTokenArray(input)) return { keys: [`tokens:${input.join(",")}`], tokens: [input.length] };
  if (input.every(isTokenArray)) return { keys: input.map((t) => `tokens:${t.join(",")}`), tokens: input.map((t) => t.length) };
  return undefined;
}

/** Validates like OpenAI; `defaultDimensions` applies when the request has no `dimensions`. */
export function parseEmbeddingsRequest(body: unknown, models: ReadonlySet<string>, defaultDimensions: number): Validated<EmbeddingsRequestView> {
  const fail = (error: ErrorAnswer): Validated<EmbeddingsRequestView> => ({ ok: false, error });
  if (!isObject(body)) return fail(openAIErrors.invalidType("body", "an object", body));
  if (body.model === undefined || body.model === null || body.model === "") return fail(openAIErrors.missingModel());
  if (typeof body.model !== "string") return fail(openAIErrors.invalidType("model", "a string", body.model));
  if (body.input === undefined || body.input === null) return fail(openAIErrors.missingParam("input"));
  const inputs = readInputs(body.input);
  if (!inputs) return fail(openAIErrors.invalidInput());
  const encoding = body.encoding_format ?? "float";
  if (encoding !== "float" && encoding !== "base64") return fail(openAIErrors.invalidValue("encoding_format", encoding, ["float", "base64"]));
  let dimensions = defaultDimensions;
  if (body.dimensions !== undefined && body.dimensions !== null) {
    if (typeof body.dimensions !== "number" || !Number.isInteger(body.dimensions)) {
      return fail(openAIErrors.invalidType("dimensions", "an integer", body.dimensions));
    }
    if (body.dimensions < 1) return fail(openAIErrors.belowMin("dimensions", 1, body.dimensions));
    dimensions = body.dimensions;
  }
  if (!models.has(body.model)) return fail(openAIErrors.modelNotFound(body.model));
  return { ok: true, value: { model: body.model, ...inputs, encoding, dimensions } };
}

/**
 * The stand-in's embedding of `key`: `dimensions` float32 values drawn from
 * SHA-256 of the key, then L2-normalized like OpenAI's. Same key, same vector;
 * exported so tests can predict what an input embeds to.
 */
export function fakeEmbedding(key: string, dimensions: number): number[] {
  const raw: number[] = [];
  for (let block = 0; raw.length < dimensions; block++) {
    const digest = createHash("sha256").update(`${block}\u0000${key}`).digest();
    for (let i = 0; i + 4 <= digest.length && raw.length < dimensions; i += 4) {
      raw.push(digest.readUInt32LE(i) / 0x8000_0000 - 1); // [-1, 1)
    }
  }
  const norm = Math.sqrt(raw.reduce((sum, v) => sum + v * v, 0)) || 1;
  return raw.map((v) => Math.fround(v / norm));
}

/**
 * For models named "bow-…": a bag-of-words vector (each lower-cased word adds
 * one to a dimension chosen by its hash), so texts that share most words are
 * close and unrelated texts are not. Semantic-cache tests rely on that.
 */
export function wordsEmbedding(text: string, dimensions: number): number[] {
  const v = new Array<number>(dimensions).fill(0);
  for (const word of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    v[createHash("sha256").update(word).digest().readUInt32LE(0) % dimensions]! += 1;
  }
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;
  return v.map((x) => Math.fround(x / norm));
}

/** Little-endian float32 bytes in base64: OpenAI's `encoding_format: "base64"`. */
export function toBase64Float32(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString("base64");
}

/** The `list` of `embedding` objects OpenAI returns, keys in OpenAI's order. */
export function renderEmbeddings(req: EmbeddingsRequestView): Json {
  const promptTokens = req.tokens.reduce((a, b) => a + b, 0);
  return {
    object: "list",
    data: req.keys.map((key, index) => {
      const vector = req.model.startsWith("bow-") ? wordsEmbedding(key, req.dimensions) : fakeEmbedding(key, req.dimensions);
      return { object: "embedding", index, embedding: req.encoding === "base64" ? toBase64Float32(vector) : vector };
    }),
    model: req.model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}
