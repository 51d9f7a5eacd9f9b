import type { ChatChunk, ChatCompletion, ChatRequest } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import type { ProviderOf } from "../../config/schema.ts";
import { GatewayError } from "../../errors/errors.ts";
import { createUpstream, keyRing, type UpstreamRequest } from "../shared/upstream.ts";
import type { CallOptions, Provider, ProviderModel } from "../types.ts";
import { geminiError } from "./errors.ts";
import { toChatCompletion, toEmbedResponse } from "./from-gemini.ts";
import { geminiChunks } from "./stream.ts";
import { toGeminiEmbed, toGeminiRequest } from "./to-gemini.ts";

/** Pages of GET /models followed at most (1000 models a page). */
const MAX_MODEL_PAGES = 5;

/**
 * Google's Gemini API with an API key (generativelanguage.googleapis.com, not
 * Vertex AI). The key travels in the `x-goog-api-key` header, never in the
 * URL, where it would end up in access logs.
 */
export function createGeminiProvider(config: ProviderOf<"gemini">): Provider {
  const { id } = config;
  const upstream = createUpstream({
    id,
    timeouts: config.timeouts,
    maxConnections: config.maxConnections,
    mapError: (status, headers, text) => geminiError(id, status, headers, text),
  });
  const base = config.baseUrl.replace(/\/+$/, "");
  const nextKey = keyRing(config.keys);
  const staticHeaders: Record<string, string> = { ...config.headers, "content-type": "application/json" };

  function headers(call: CallOptions): Record<string, string> {
    const key = nextKey(call);
    return key === undefined ? staticHeaders : { ...staticHeaders, "x-goog-api-key": key };
  }

  function post(call: CallOptions, resource: string, method: string, body: unknown, query = ""): UpstreamRequest {
    return { url: `${base}/${resource}:${method}${query}`, method: "POST", headers: headers(call), body: JSON.stringify(body) };
  }

  return {
    id,
    declaredModels: config.models,
    keyCount: config.keys.length,

    async chat(req: ChatRequest, call: CallOptions): Promise<ChatCompletion> {
      const body = toGeminiRequest(req);
      return toChatCompletion(await upstream.json(post(call, resourceOf(req.model), "generateContent", body), call), req.model);
    },

    async chatStream(req: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>> {
      const body = toGeminiRequest(req);
      const stream = await upstream.open(post(call, resourceOf(req.model), "streamGenerateContent", body, "?alt=sse"), call);
      if (!String(stream.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        stream.release(false);
        throw new GatewayError("upstream_error", `provider '${id}' did not answer with an event stream`);
      }
      return geminiChunks(id, req.model, stream);
    },

    async countTokens(req: ChatRequest, call: CallOptions): Promise<number> {
      const resource = resourceOf(req.model);
      // A whole generateContentRequest rather than bare `contents`, so the system instruction and tools count too.
      const body = { generateContentRequest: { model: resource, ...toGeminiRequest(req) } };
      const answer = await upstream.json(post(call, resource, "countTokens", body), call);
      if (typeof answer !== "object" || answer === null) throw new GatewayError("upstream_error", `provider '${id}' returned a malformed token count`);
      // proto3 JSON leaves out zero values: no totalTokens means 0.
      const n = (answer as Record<string, unknown>)["totalTokens"] ?? 0;
      if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new GatewayError("upstream_error", `provider '${id}' returned a malformed token count`);
      return n;
    },

    async embed(req: EmbedRequest, call: CallOptions): Promise<EmbedResponse> {
      const resource = resourceOf(req.model);
      const body = toGeminiEmbed(req, resource);
      return toEmbedResponse(await upstream.json(post(call, resource, "batchEmbedContents", body), call), req.model, req.input.length);
    },

    async listModels(call: CallOptions): Promise<ProviderModel[]> {
      const out: ProviderModel[] = [];
      let pageToken = "";
      for (let page = 0; page < MAX_MODEL_PAGES; page++) {
        const query = `?pageSize=1000${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ""}`;
        const body = await upstream.json({ url: `${base}/models${query}`, method: "GET", headers: headers(call) }, call);
        const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
        if (!Array.isArray(b["models"]) && b["models"] !== undefined) {
          throw new GatewayError("upstream_error", `provider '${id}' returned a malformed model list`);
        }
        for (const m of (b["models"] ?? []) as unknown[]) {
          const name = typeof m === "object" && m !== null ? (m as Record<string, unknown>)["name"] : undefined;
          if (typeof name === "string" && name !== "") out.push({ id: name.replace(/^models\//, ""), created: 0, ownedBy: "google" });
        }
        pageToken = typeof b["nextPageToken"] === "string" ? b["nextPageToken"] : "";
        if (pageToken === "") break;
      }
      return out;
    },

    close: () => upstream.close(),
  };
}

/**
 * The model's resource path: "gemini-2.0-flash" and "models/gemini-2.0-flash"
 * both become "models/gemini-2.0-flash"; "tunedModels/x" stays. Each segment
 * is URL-encoded, so a model name cannot change the path.
 */
function resourceOf(model: string): string {
  const [collection, ...rest] = model.includes("/") ? model.split("/") : ["models", model];
  if (!(collection === "models" || collection === "tunedModels") || rest.length !== 1 || rest[0] === "") {
    throw new GatewayError("model_not_found", `'${model}' is not a Gemini model name`, { param: "model" });
  }
  return `${collection}/${encodeURIComponent(rest[0]!)}`;
}
