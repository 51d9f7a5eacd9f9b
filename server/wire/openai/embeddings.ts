import { create, type JsonObject } from "@bufbuild/protobuf";
import { EmbedRequestSchema, type EmbedRequest, type EmbedResponse, type TokenIds } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError, invalid } from "../../errors/errors.ts";
import { decodeFallbacks } from "./chat-request.ts";
import { count, decodeUsage } from "./chat-response.ts";
import { expectRecord, expectString, isRecord, optCount, optString, typeName, type JsonRecord } from "./json.ts";

/**
 * OpenAI embeddings JSON <-> canonical EmbedRequest/EmbedResponse.
 * `encoding_format` is a presentation choice of the caller's edge, so it stays
 * out of the canonical request: providers are always asked for floats (every
 * OpenAI-compatible server supports them) and the REST edge re-encodes.
 */

export type EncodingFormat = "float" | "base64";

const TYPED_KEYS = new Set(["model", "input", "dimensions", "user", "encoding_format", "fallbacks"]);

export function decodeEmbedRequest(body: unknown): { request: EmbedRequest; encoding: EncodingFormat } {
  const b = expectRecord(body, "body");
  const model = expectString(b["model"] ?? fail("model: required", "model"), "model");
  if (model.length === 0) throw invalid("model: must not be empty", "model");
  const raw = b["input"];
  let input: string[] = [];
  let tokenInputs: TokenIds[] = [];
  if (typeof raw === "string") {
    if (raw.length === 0) throw invalid("input: must not be empty", "input");
    input = [raw];
  }
  else if (Array.isArray(raw) && raw.length > 0) {
    if (raw.every((x) => typeof x === "string")) input = raw as string[];
    else if (raw.every((x) => typeof x === "number")) tokenInputs = [tokenIds(raw, "input")];
    else if (raw.every(Array.isArray)) tokenInputs = raw.map((t, i) => tokenIds(t as unknown[], `input[${i}]`));
    else throw invalid("input: expected a string, an array of strings, or token arrays", "input");
  } else if (Array.isArray(raw)) {
    throw invalid("input: must not be empty", "input");
  } else {
    throw invalid(`input: expected a string or an array, got ${typeName(raw)}`, "input");
  }
  const enc = optString(b["encoding_format"], "encoding_format") ?? "float";
  if (enc !== "float" && enc !== "base64") throw invalid(`encoding_format: '${enc}' is not one of float, base64`, "encoding_format");
  let extra: JsonObject | undefined;
  for (const k in b) if (!TYPED_KEYS.has(k)) (extra ??= {})[k] = b[k] as JsonObject[string];
  const request = create(EmbedRequestSchema, {
    model,
    input,
    tokenInputs,
    dimensions: optCount(b["dimensions"], "dimensions"),
    user: optString(b["user"], "user") ?? "",
    extra,
    fallbacks: decodeFallbacks(b["fallbacks"]),
  });
  return { request, encoding: enc };
}

function fail(message: string, param: string): never {
  throw invalid(message, param);
}

function tokenIds(arr: unknown[], p: string): TokenIds {
  for (let i = 0; i < arr.length; i++) optCount(arr[i], `${p}[${i}]`);
  if (arr.length === 0) throw invalid(`${p}: must not be empty`, p);
  return { $typeName: "switchyard.v1.TokenIds", ids: arr as number[] };
}

export function encodeEmbedRequest(req: EmbedRequest, model: string): JsonRecord {
  const out: JsonRecord = req.extra ? { ...req.extra } : {};
  out["model"] = model;
  if (req.tokenInputs.length > 0) {
    out["input"] = req.tokenInputs.length === 1 ? req.tokenInputs[0]!.ids : req.tokenInputs.map((t) => t.ids);
  } else {
    out["input"] = req.input.length === 1 ? req.input[0] : req.input;
  }
  if (req.dimensions !== undefined) out["dimensions"] = req.dimensions;
  if (req.user) out["user"] = req.user;
  out["encoding_format"] = "float";
  return out;
}

export function decodeEmbedResponse(body: unknown): EmbedResponse {
  if (!isRecord(body) || !Array.isArray(body["data"])) {
    throw new GatewayError("upstream_error", "provider returned a malformed embeddings response");
  }
  return {
    $typeName: "switchyard.v1.EmbedResponse",
    data: body["data"].map((d, i) => {
      if (!isRecord(d)) throw new GatewayError("upstream_error", `provider returned a malformed embedding at data[${i}]`);
      const e = d["embedding"];
      let vector: number[];
      if (Array.isArray(e) && e.every(Number.isFinite)) vector = e as number[];
      else if (typeof e === "string") vector = Array.from(base64ToFloats(e));
      else throw new GatewayError("upstream_error", `provider returned a malformed embedding at data[${i}]`);
      return { $typeName: "switchyard.v1.Embedding", index: d["index"] === undefined ? i : count(d["index"], `data[${i}].index`), vector };
    }),
    model: typeof body["model"] === "string" ? body["model"] : "",
    usage: decodeUsage(body["usage"]),
    gateway: undefined,
  };
}

export function encodeEmbedResponse(res: EmbedResponse, encoding: EncodingFormat): JsonRecord {
  return {
    object: "list",
    data: res.data.map((d) => ({
      object: "embedding",
      index: d.index,
      embedding: encoding === "base64" ? floatsToBase64(d.vector) : d.vector,
    })),
    model: res.model,
    usage: { prompt_tokens: res.usage?.promptTokens ?? 0, total_tokens: res.usage?.totalTokens ?? 0 },
  };
}

/** OpenAI's base64 embeddings are little-endian float32 bytes. */
function floatsToBase64(v: readonly number[]): string {
  const f = new Float32Array(v);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString("base64");
}

function base64ToFloats(s: string): Float32Array {
  const bytes = Buffer.from(s, "base64");
  const copy = new Uint8Array(bytes); // aligned copy for Float32Array
  return new Float32Array(copy.buffer, 0, copy.byteLength >> 2);
}
