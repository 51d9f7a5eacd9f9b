import type { ChatChunk, ChatCompletion, ChatRequest } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import type { ProviderOf } from "../../config/schema.ts";
import { GatewayError } from "../../errors/errors.ts";
import { encodeMessagesRequest } from "../../wire/anthropic/request-encode.ts";
import { decodeMessagesResponse } from "../../wire/anthropic/response.ts";
import { isRecord, type JsonRecord } from "../../wire/openai/json.ts";
import { createUpstream, keyRing, type UpstreamRequest } from "../shared/upstream.ts";
import type { CallOptions, Provider, ProviderModel } from "../types.ts";
import { providerError } from "./errors.ts";
import { anthropicChunks } from "./stream.ts";

/**
 * Messages fields that count_tokens does not take
 * (https://docs.anthropic.com/en/api/messages-count-tokens).
 */
const GENERATION_ONLY = ["max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences", "metadata", "service_tier"] as const;

/**
 * The Anthropic Messages API provider: POST {baseUrl}/v1/messages with
 * x-api-key and anthropic-version; POST {baseUrl}/v1/messages/count_tokens;
 * GET {baseUrl}/v1/models. The wire codec is server/wire/anthropic (shared
 * with the inbound /v1/messages route).
 */
export function createAnthropicProvider(config: ProviderOf<"anthropic">): Provider {
  const { id } = config;
  const upstream = createUpstream({
    id,
    timeouts: config.timeouts,
    maxConnections: config.maxConnections,
    mapError: (status, headers, text) => providerError(id, status, headers, text),
  });
  const base = config.baseUrl.replace(/\/+$/, "");
  const nextKey = keyRing(config.keys);
  const staticHeaders: Record<string, string> = {
    ...config.headers,
    "anthropic-version": config.anthropicVersion,
    "content-type": "application/json",
  };

  function request(call: CallOptions, method: "GET" | "POST", path: string, body?: unknown): UpstreamRequest {
    const key = nextKey(call);
    const headers = key === undefined ? staticHeaders : { ...staticHeaders, "x-api-key": key };
    return { url: `${base}${path}`, method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) };
  }

  function messagesBody(req: ChatRequest, stream: boolean): JsonRecord {
    return encodeMessagesRequest(req, req.model, { stream, defaultMaxTokens: config.defaultMaxTokens });
  }

  return {
    id,
    declaredModels: config.models,
    keyCount: config.keys.length,

    async chat(req: ChatRequest, call: CallOptions): Promise<ChatCompletion> {
      return decodeMessagesResponse(await upstream.json(request(call, "POST", "/v1/messages", messagesBody(req, false)), call));
    },

    async chatStream(req: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>> {
      const stream = await upstream.open(request(call, "POST", "/v1/messages", messagesBody(req, true)), call);
      if (!String(stream.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        stream.release(false);
        throw new GatewayError("upstream_error", `provider '${id}' did not answer with an event stream`);
      }
      return anthropicChunks(id, stream);
    },

    async countTokens(req: ChatRequest, call: CallOptions): Promise<number> {
      // count_tokens takes a messages body without the fields that only shape generation; it refuses them as extra inputs.
      const body = messagesBody(req, false);
      for (const k of GENERATION_ONLY) delete body[k];
      const answer = await upstream.json(request(call, "POST", "/v1/messages/count_tokens", body), call);
      const n = isRecord(answer) ? answer["input_tokens"] : undefined;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
        throw new GatewayError("upstream_error", `provider '${id}' returned a malformed token count`);
      }
      return n;
    },

    async embed(): Promise<EmbedResponse> {
      throw new GatewayError("unsupported", `provider '${id}' (Anthropic) has no embeddings API`, { param: "model" });
    },

    async listModels(call: CallOptions): Promise<ProviderModel[]> {
      const models: ProviderModel[] = [];
      let after: string | undefined;
      for (let page = 0; page < 20; page++) {
        const query = `?limit=1000${after === undefined ? "" : `&after_id=${encodeURIComponent(after)}`}`;
        const body = await upstream.json(request(call, "GET", `/v1/models${query}`), call);
        if (!isRecord(body) || !Array.isArray(body["data"])) {
          throw new GatewayError("upstream_error", `provider '${id}' returned a malformed model list`);
        }
        for (const m of body["data"].filter(isRecord)) {
          if (typeof m["id"] !== "string" || m["id"] === "") continue;
          const created = typeof m["created_at"] === "string" ? Date.parse(m["created_at"]) : NaN;
          models.push({ id: m["id"], created: Number.isNaN(created) ? 0 : Math.floor(created / 1000), ownedBy: "anthropic" });
        }
        if (body["has_more"] !== true || typeof body["last_id"] !== "string") break;
        after = body["last_id"];
      }
      return models;
    },

    close: () => upstream.close(),
  };
}
