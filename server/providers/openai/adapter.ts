import { request } from "undici";
import type { ChatChunk, ChatCompletion, ChatRequest } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../../gen/switchyard/v1/embeddings_pb.ts";
import type { ProviderConfig } from "../../config/schema.ts";
import { GatewayError } from "../../errors/errors.ts";
import { encodeChatRequest } from "../../wire/openai/chat-request.ts";
import { decodeChatChunk, decodeChatCompletion } from "../../wire/openai/chat-response.ts";
import { decodeEmbedResponse, encodeEmbedRequest } from "../../wire/openai/embeddings.ts";
import { isRecord } from "../../wire/openai/json.ts";
import { createUpstreamAgent, transportError, upstreamAbort, type UpstreamAbort } from "../shared/http.ts";
import { readSse } from "../shared/sse.ts";
import type { CallOptions, Provider, ProviderModel } from "../types.ts";
import { providerError, streamError } from "./errors.ts";

type UpstreamResponse = Awaited<ReturnType<typeof request>>;

/**
 * The OpenAI provider, also used for any server that speaks OpenAI's format
 * (vLLM, Ollama, LM Studio, ...) by base URL. Requests go out on a
 * keep-alive undici pool; streamed bodies are read event by event and never
 * buffered whole.
 */
export function createOpenAIProvider(config: ProviderConfig): Provider {
  const agent = createUpstreamAgent(config.timeouts, config.maxConnections);
  const base = config.baseUrl.replace(/\/+$/, "");
  const keys = config.keys;
  let nextKey = 0;
  const staticHeaders: Record<string, string> = { ...config.headers, "content-type": "application/json" };

  function headersFor(): Record<string, string> {
    if (keys.length === 0) return staticHeaders;
    // Round-robin across the provider's keys; smarter balancing is routing's job.
    const key = keys[nextKey++ % keys.length]!;
    return { ...staticHeaders, authorization: `Bearer ${key}` };
  }

  /** Sends one request; resolves with a 2xx response or throws a GatewayError. */
  async function send(path: string, method: "GET" | "POST", body: unknown, call: CallOptions, abort: UpstreamAbort): Promise<UpstreamResponse> {
    let res: UpstreamResponse;
    try {
      res = await request(base + path, {
        method,
        dispatcher: agent,
        headers: headersFor(),
        body: body === undefined ? null : JSON.stringify(body),
        signal: abort.signal,
      });
    } catch (err) {
      throw transportError(err, config.id, call.signal, config.timeouts);
    }
    if (res.statusCode >= 300) {
      let text = "";
      try {
        text = await res.body.text();
      } catch (err) {
        throw transportError(err, config.id, call.signal, config.timeouts);
      }
      throw providerError(config.id, res.statusCode, res.headers, text);
    }
    return res;
  }

  async function sendJson(path: string, method: "GET" | "POST", body: unknown, call: CallOptions): Promise<unknown> {
    const abort = upstreamAbort(call.signal, config.timeouts.totalMs);
    try {
      const res = await send(path, method, body, call, abort);
      try {
        return await res.body.json();
      } catch (err) {
        if (err instanceof SyntaxError) throw new GatewayError("upstream_error", `provider '${config.id}' returned invalid JSON`, { cause: err });
        throw transportError(err, config.id, call.signal, config.timeouts);
      }
    } finally {
      abort.done();
    }
  }

  return {
    id: config.id,
    declaredModels: config.models,

    async chat(req: ChatRequest, call: CallOptions): Promise<ChatCompletion> {
      const body = encodeChatRequest(req, req.model, { stream: false, includeUsage: false });
      return decodeChatCompletion(await sendJson("/chat/completions", "POST", body, call));
    },

    async chatStream(req: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>> {
      // Always ask for usage: the gateway needs it for accounting even when the caller does not.
      const body = encodeChatRequest(req, req.model, { stream: true, includeUsage: true });
      const abort = upstreamAbort(call.signal, config.timeouts.totalMs);
      let res: UpstreamResponse;
      try {
        res = await send("/chat/completions", "POST", body, call, abort);
      } catch (err) {
        abort.done();
        throw err;
      }
      const contentType = String(res.headers["content-type"] ?? "");
      if (!contentType.startsWith("text/event-stream")) {
        abort.done();
        await res.body.dump().catch(() => {});
        throw new GatewayError("upstream_error", `provider '${config.id}' did not answer with an event stream`);
      }
      return streamChunks(res, call, abort);
    },

    async embed(req: EmbedRequest, call: CallOptions): Promise<EmbedResponse> {
      return decodeEmbedResponse(await sendJson("/embeddings", "POST", encodeEmbedRequest(req, req.model), call));
    },

    async listModels(call: CallOptions): Promise<ProviderModel[]> {
      const body = await sendJson("/models", "GET", undefined, call);
      if (!isRecord(body) || !Array.isArray(body["data"])) {
        throw new GatewayError("upstream_error", `provider '${config.id}' returned a malformed model list`);
      }
      return body["data"].filter(isRecord).map((m) => ({
        id: String(m["id"] ?? ""),
        created: typeof m["created"] === "number" ? m["created"] : 0,
        ownedBy: typeof m["owned_by"] === "string" ? m["owned_by"] : config.id,
      })).filter((m) => m.id !== "");
    },

    async close(): Promise<void> {
      await agent.close();
    },
  };

  async function* streamChunks(res: UpstreamResponse, call: CallOptions, abort: UpstreamAbort): AsyncGenerator<ChatChunk> {
    let finished = false;
    try {
      for await (const event of readSse(res.body)) {
        if (event.data === "[DONE]") {
          finished = true;
          return;
        }
        let payload: unknown;
        try {
          payload = JSON.parse(event.data);
        } catch (err) {
          throw new GatewayError("upstream_error", `provider '${config.id}' sent an invalid stream event`, { cause: err });
        }
        if (event.event === "error" || (isRecord(payload) && payload["error"] !== undefined && payload["choices"] === undefined)) {
          throw streamError(config.id, payload);
        }
        yield decodeChatChunk(payload);
      }
      // The body ended without [DONE]: a cut stream is a failure, never a clean end.
      throw new GatewayError("upstream_error", `provider '${config.id}' ended the stream before it was complete`);
    } catch (err) {
      throw transportError(err, config.id, call.signal, config.timeouts);
    } finally {
      abort.done();
      if (!finished) res.body.destroy();
    }
  }
}
