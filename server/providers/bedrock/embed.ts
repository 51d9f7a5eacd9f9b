import type { EmbedRequest, EmbedResponse, Embedding } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord } from "../../wire/openai/json.ts";
import type { TitanEmbedRequest } from "./wire.ts";

/**
 * Embeddings on Bedrock go through InvokeModel with a body each model family
 * defines. Only Amazon Titan Text Embeddings (v1, v2) is implemented: one
 * request per input. Other families (Cohere, Nova multimodal) are refused.
 */

export function isTitanTextEmbedding(model: string): boolean {
  return /(^|\.)amazon\.titan-embed-text-v[12]/.test(model);
}

export function toTitanBodies(req: EmbedRequest): TitanEmbedRequest[] {
  if (!isTitanTextEmbedding(req.model)) {
    throw new GatewayError("unsupported", `model '${req.model}': the Bedrock provider embeds with Amazon Titan Text Embeddings only (amazon.titan-embed-text-v2:0, v1)`, { param: "model" });
  }
  if (req.tokenInputs.length > 0) throw new GatewayError("unsupported", "input: Titan embeddings take text, not token ids", { param: "input" });
  const v2 = req.model.includes("titan-embed-text-v2");
  if (req.dimensions !== undefined && !v2) throw new GatewayError("unsupported", "dimensions: only Titan Text Embeddings v2 can shorten its vectors", { param: "dimensions" });
  const normalize = req.extra?.["normalize"];
  return req.input.map((inputText) => ({
    inputText,
    ...(req.dimensions === undefined ? {} : { dimensions: req.dimensions }),
    ...(v2 && typeof normalize === "boolean" ? { normalize } : {}),
  }));
}

/** One Titan answer: {"embedding": [...], "inputTextTokenCount": n}. */
export function fromTitanAnswer(body: unknown, index: number): { embedding: Embedding; tokens: number } {
  if (!isRecord(body) || !Array.isArray(body["embedding"]) || !body["embedding"].every((x) => typeof x === "number")) {
    throw new GatewayError("upstream_error", "Bedrock returned a malformed embedding");
  }
  const n = body["inputTextTokenCount"];
  return {
    embedding: { $typeName: "switchyard.v1.Embedding", index, vector: body["embedding"] as number[] },
    tokens: typeof n === "number" && Number.isInteger(n) && n >= 0 ? n : 0,
  };
}

export function embedResponse(model: string, answers: { embedding: Embedding; tokens: number }[]): EmbedResponse {
  const prompt = Math.min(answers.reduce((s, a) => s + a.tokens, 0), 0xffff_ffff);
  return {
    $typeName: "switchyard.v1.EmbedResponse",
    data: answers.map((a) => a.embedding),
    model,
    usage: { $typeName: "switchyard.v1.Usage", promptTokens: prompt, completionTokens: 0, totalTokens: prompt, cachedTokens: 0, reasoningTokens: 0, cacheWriteTokens: 0 },
  };
}
