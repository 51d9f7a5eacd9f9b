import type { ChatChunk, ChatCompletion, ChatRequest } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { encodeChatRequest } from "../../wire/openai/chat-request.ts";
import { decodeChatChunk, decodeChatCompletion } from "../../wire/openai/chat-response.ts";
import { decodeEmbedResponse, encodeEmbedRequest } from "../../wire/openai/embeddings.ts";
import { isRecord, shown } from "../../wire/openai/json.ts";
import { readSse } from "../shared/sse.ts";
import { parseStreamEvent, createUpstream, keyRing, type OpenStream, type UpstreamRequest } from "../shared/upstream.ts";
import type { CallOptions, ForwardPath, ForwardRequest, ForwardResponse, Provider, ProviderModel } from "../types.ts";
import { providerError, streamError } from "./errors.ts";

/** What an OpenAI-format provider needs to know; Azure and the presets fill it in their own way. */
export interface OpenAIFormatOptions {
  id: string;
  baseUrl: string;
  keys: readonly string[];
  models: readonly string[];
  headers: Readonly<Record<string, string>>;
  timeouts: { connectMs: number; firstByteMs: number; idleMs: number; totalMs: number };
  maxConnections: number;
  /** How the key is sent. Default: `Authorization: Bearer <key>`. */
  authHeader?: (key: string) => Record<string, string>;
  /** The URL of an operation for a model. Default: `${baseUrl}/${path}`. */
  url?: (path: "chat/completions" | "embeddings" | "models", model: string) => string;
}

/**
 * The OpenAI provider, also used for any server that speaks OpenAI's format
 * (vLLM, Ollama, the hosted presets, Azure) by base URL. Streamed bodies are
 * read event by event and never buffered whole.
 */
export function createOpenAIProvider(options: OpenAIFormatOptions): Provider {
  const { id } = options;
  const upstream = createUpstream({
    id,
    timeouts: options.timeouts,
    maxConnections: options.maxConnections,
    mapError: (status, headers, text) => providerError(id, status, headers, text),
  });
  const base = options.baseUrl.replace(/\/+$/, "");
  const url = options.url ?? ((path: string) => `${base}/${path}`);
  const nextKey = keyRing(options.keys);
  const authHeader = options.authHeader ?? ((key: string) => ({ authorization: `Bearer ${key}` }));
  const staticHeaders: Record<string, string> = { ...options.headers, "content-type": "application/json" };

  function post(path: "chat/completions" | "embeddings" | ForwardPath, model: string, body: unknown, call: CallOptions): UpstreamRequest {
    const key = nextKey(call);
    return {
      url: path === "chat/completions" || path === "embeddings" ? url(path, model) : `${base}/${path}`,
      method: "POST",
      headers: key === undefined ? staticHeaders : { ...staticHeaders, ...authHeader(key) },
      body: JSON.stringify(body),
    };
  }

  return {
    id,
    declaredModels: options.models,
    keyCount: options.keys.length,

    async chat(req: ChatRequest, call: CallOptions): Promise<ChatCompletion> {
      const body = encodeChatRequest(req, req.model, { stream: false, includeUsage: false });
      return decodeChatCompletion(await upstream.json(post("chat/completions", req.model, body, call), call));
    },

    async chatStream(req: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>> {
      // Always ask for usage: the gateway needs it for accounting even when the caller does not.
      const body = encodeChatRequest(req, req.model, { stream: true, includeUsage: true });
      const stream = await upstream.open(post("chat/completions", req.model, body, call), call);
      if (!String(stream.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        stream.release(false);
        throw new GatewayError("upstream_error", `provider '${id}' did not answer with an event stream`);
      }
      return chunks(stream);
    },

    async embed(req: EmbedRequest, call: CallOptions): Promise<EmbedResponse> {
      return decodeEmbedResponse(await upstream.json(post("embeddings", req.model, encodeEmbedRequest(req, req.model), call), call));
    },

    async listModels(call: CallOptions): Promise<ProviderModel[]> {
      const key = nextKey(call);
      const body = await upstream.json({ url: url("models", ""), method: "GET", headers: key === undefined ? staticHeaders : { ...staticHeaders, ...authHeader(key) } }, call);
      if (!isRecord(body) || !Array.isArray(body["data"])) {
        throw new GatewayError("upstream_error", `provider '${id}' returned a malformed model list`);
      }
      return body["data"].filter(isRecord).map((m) => ({
        id: shown(m["id"] ?? ""),
        created: typeof m["created"] === "number" ? m["created"] : 0,
        ownedBy: typeof m["owned_by"] === "string" ? m["owned_by"] : id,
      })).filter((m) => m.id !== "");
    },

    // Servers addressed by deployment URLs (Azure) do not serve OpenAI's other paths this way.
    ...(options.url === undefined ? { forward } : {}),

    close: () => upstream.close(),
  };

  async function forward(req: ForwardRequest, call: CallOptions): Promise<ForwardResponse> {
    const upstreamReq = req.form === undefined ? post(req.path, "", req.body, call) : await multipart(req, call);
    // Speech answers audio bytes; anything asked to stream answers SSE: both are passed on as they come.
    if (req.path !== "audio/speech" && req.body["stream"] !== true) return { kind: "json", json: await upstream.json(upstreamReq, call) };
    const stream = await upstream.open(upstreamReq, call);
    return { kind: "stream", contentType: String(stream.headers["content-type"] ?? "application/octet-stream"), body: bytes(stream) };
  }

  /** A multipart upload re-encoded with the provider's model name (the form's boundary changes with it). */
  async function multipart(req: ForwardRequest, call: CallOptions): Promise<UpstreamRequest> {
    const form = new FormData();
    for (const [k, v] of req.form!) if (k !== "model") form.append(k, v);
    form.set("model", String(req.body["model"]));
    const encoded = new Response(form);
    const key = nextKey(call);
    const headers: Record<string, string> = { ...options.headers, "content-type": encoded.headers.get("content-type") ?? "multipart/form-data" };
    return {
      url: `${base}/${req.path}`,
      method: "POST",
      headers: key === undefined ? headers : { ...headers, ...authHeader(key) },
      body: new Uint8Array(await encoded.arrayBuffer()),
    };
  }

  /** A forwarded stream's bytes as they come; a cut or failed body is an error, never a clean end. */
  async function* bytes(stream: OpenStream): AsyncGenerator<Uint8Array> {
    let completed = false;
    try {
      for await (const chunk of stream.body) yield chunk as Uint8Array;
      completed = true;
    } catch (err) {
      throw err instanceof GatewayError ? err : stream.failure(err);
    } finally {
      stream.release(completed);
    }
  }

  async function* chunks(stream: OpenStream): AsyncGenerator<ChatChunk> {
    let completed = false;
    try {
      for await (const event of readSse(stream.body)) {
        if (event.data === "[DONE]") {
          completed = true;
          return;
        }
        const payload = parseStreamEvent(event.data, id);
        if (event.event === "error" || (isRecord(payload) && payload["error"] !== undefined && payload["choices"] === undefined)) {
          throw streamError(id, payload);
        }
        yield decodeChatChunk(payload);
      }
      // The body ended without [DONE]: a cut stream is a failure, never a clean end.
      throw new GatewayError("upstream_error", `provider '${id}' ended the stream before it was complete`);
    } catch (err) {
      throw err instanceof GatewayError ? err : stream.failure(err);
    } finally {
      stream.release(completed);
    }
  }
}
