import type { ChatChunk, ChatCompletion, ChatRequest } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import type { ProviderOf } from "../../config/schema.ts";
import { GatewayError } from "../../errors/errors.ts";
import { isRecord, shown } from "../../wire/openai/json.ts";
import { createUpstream, type UpstreamRequest } from "../shared/upstream.ts";
import type { CallOptions, Provider, ProviderModel } from "../types.ts";
import { createSigner } from "./auth.ts";
import { embedResponse, fromTitanAnswer, toTitanBodies } from "./embed.ts";
import { providerError } from "./errors.ts";
import { fromConverseResponse } from "./from-bedrock.ts";
import { converseChunks } from "./stream.ts";
import { toConverseRequest } from "./to-bedrock.ts";

/** Titan embeddings are one request per input; this many run at once. */
const EMBED_CONCURRENCY = 4;

/**
 * AWS Bedrock through the Converse and ConverseStream APIs, every request
 * signed with SigV4 (service "bedrock"), rotating over the configured
 * credential sets (or using the one the call names). Embeddings: Titan Text through InvokeModel (embed.ts).
 * Models: the declared list, or ListFoundationModels on the control-plane
 * host (bedrock.<region>.amazonaws.com; with a custom baseUrl, that same URL).
 */
export function createBedrockProvider(config: ProviderOf<"bedrock">): Provider {
  const { id } = config;
  const upstream = createUpstream({
    id,
    timeouts: config.timeouts,
    maxConnections: config.maxConnections,
    mapError: (status, headers, text) => providerError(id, status, headers, text),
  });
  const runtime = (config.baseUrl ?? `https://bedrock-runtime.${config.region}.amazonaws.com`).replace(/\/+$/, "");
  const control = runtime.replace(/^(https?:\/\/)bedrock-runtime\./, "$1bedrock.");
  const sign = createSigner("bedrock", config.region, config.credentials);

  async function signed(call: CallOptions, method: "GET" | "POST", url: string, body?: unknown, accept = "application/json"): Promise<UpstreamRequest> {
    const bytes = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
    const headers: Record<string, string> = { ...config.headers, accept };
    if (bytes !== undefined) headers["content-type"] = "application/json";
    // The signature covers these exact bytes; they are sent as they are.
    return { method, url, headers: await sign({ method, url, headers, ...(bytes === undefined ? {} : { body: bytes }) }, call), ...(bytes === undefined ? {} : { body: bytes }) };
  }

  const modelUrl = (model: string, op: "converse" | "converse-stream" | "invoke"): string => `${runtime}/model/${encodeURIComponent(model)}/${op}`;

  return {
    id,
    declaredModels: config.models,
    keyCount: config.credentials.length,

    async chat(req: ChatRequest, call: CallOptions): Promise<ChatCompletion> {
      const body = toConverseRequest(req);
      return fromConverseResponse(await upstream.json(await signed(call, "POST", modelUrl(req.model, "converse"), body), call), req.model);
    },

    async chatStream(req: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>> {
      const body = toConverseRequest(req);
      const request = await signed(call, "POST", modelUrl(req.model, "converse-stream"), body, "application/vnd.amazon.eventstream");
      const stream = await upstream.open(request, call);
      if (!String(stream.headers["content-type"] ?? "").startsWith("application/vnd.amazon.eventstream")) {
        stream.release(false);
        throw new GatewayError("upstream_error", `provider '${id}' did not answer with an event stream`);
      }
      return converseChunks(id, req.model, stream);
    },

    async embed(req: EmbedRequest, call: CallOptions): Promise<EmbedResponse> {
      const bodies = toTitanBodies(req);
      const answers: ReturnType<typeof fromTitanAnswer>[] = [];
      for (let i = 0; i < bodies.length; i += EMBED_CONCURRENCY) {
        const batch = bodies.slice(i, i + EMBED_CONCURRENCY).map(async (b, j) =>
          fromTitanAnswer(await upstream.json(await signed(call, "POST", modelUrl(req.model, "invoke"), b), call), i + j));
        answers.push(...(await Promise.all(batch)));
      }
      return embedResponse(req.model, answers);
    },

    async listModels(call: CallOptions): Promise<ProviderModel[]> {
      const body = await upstream.json(await signed(call, "GET", `${control}/foundation-models`), call);
      if (!isRecord(body) || !Array.isArray(body["modelSummaries"])) {
        throw new GatewayError("upstream_error", `provider '${id}' returned a malformed model list`);
      }
      return body["modelSummaries"].filter(isRecord)
        // Models only callable with provisioned throughput cannot be invoked by id.
        .filter((m) => !Array.isArray(m["inferenceTypesSupported"]) || m["inferenceTypesSupported"].includes("ON_DEMAND"))
        .map((m) => ({ id: shown(m["modelId"] ?? ""), created: 0, ownedBy: typeof m["providerName"] === "string" ? m["providerName"] : id }))
        .filter((m) => m.id !== "");
    },

    close: () => upstream.close(),
  };
}
