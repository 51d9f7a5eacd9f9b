import type { JsonObject } from "@bufbuild/protobuf";
import { createClient as createServiceClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ChatService, Role, type ChatChunk } from "../../gen/switchyard/v1/chat_pb.ts";
import { EmbeddingsService } from "../../gen/switchyard/v1/embeddings_pb.ts";
import { ModelService } from "../../gen/switchyard/v1/models_pb.ts";
import { ResponsesService } from "../../gen/switchyard/v1/responses_pb.ts";

export * from "../../gen/switchyard/v1/chat_pb.ts";
export * from "../../gen/switchyard/v1/common_pb.ts";
export * from "../../gen/switchyard/v1/embeddings_pb.ts";
export * from "../../gen/switchyard/v1/models_pb.ts";
export * from "../../gen/switchyard/v1/responses_pb.ts";
export { ConnectError, Code } from "@connectrpc/connect";

/** The wire protocol to speak. gRPC needs HTTP/2 (h2c against a plain-text gateway). */
export type Protocol = "connect" | "grpc" | "grpc-web";

export interface ClientOptions {
  /** The gateway's address, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  /** A gateway API key, sent as `Authorization: Bearer`. */
  apiKey?: string;
  /** Default "connect". */
  protocol?: Protocol;
  /** HTTP version for connect and grpc-web (gRPC always uses "2"). Default "2" for connect, "1.1" for grpc-web. */
  httpVersion?: "1.1" | "2";
  /** Default deadline per call, in milliseconds. */
  timeoutMs?: number;
  /** Extra interceptors, run after the one that adds the API key. */
  interceptors?: Interceptor[];
}

/** Typed clients for the gateway's services. */
export interface SwitchyardClient {
  chat: Client<typeof ChatService>;
  embeddings: Client<typeof EmbeddingsService>;
  models: Client<typeof ModelService>;
  /** OpenAI's Responses API; bodies and answers are its JSON as google.protobuf.Struct (plain objects here). */
  responses: Client<typeof ResponsesService>;
  /**
   * Streams a chat completion as an async iterator of chunks.
   * `for await (const chunk of client.streamChat(req)) process(chunk)`.
   */
  streamChat(request: ChatRequestInit, options?: { includeUsage?: boolean; signal?: AbortSignal }): AsyncIterable<ChatChunk>;
  /** Streams only the text deltas of the first choice. */
  streamText(request: ChatRequestInit, options?: { signal?: AbortSignal }): AsyncIterable<string>;
  /**
   * Creates a response from a POST /v1/responses body and returns the
   * Response object, both as plain JSON (`stream` in the body is ignored).
   * `const r = await sy.createResponse({ model: "openai/gpt-4o-mini", input: "Hi" })`.
   */
  createResponse(body: Record<string, unknown>, options?: { signal?: AbortSignal }): Promise<Record<string, unknown>>;
  /**
   * Streams a response as the Responses API's typed events, in order
   * (`response.created` first; `response.completed`, `response.incomplete`
   * or `response.failed` last). A failure after the first event arrives as
   * a `response.failed` event, not as an error.
   */
  streamResponse(body: Record<string, unknown>, options?: { signal?: AbortSignal }): AsyncIterable<ResponseStreamEvent>;
}

/** One Responses API stream event: its type and the whole event object (the REST stream's SSE `data`). */
export interface ResponseStreamEvent {
  type: string;
  event: Record<string, unknown>;
}

/** A ChatRequest as a plain object literal; `$typeName` and defaults are filled in. */
export type ChatRequestInit = Parameters<Client<typeof ChatService>["complete"]>[0]["request"] & {};

/**
 * Creates clients for the gateway over Connect, gRPC or gRPC-Web.
 *
 * ```ts
 * const sy = createClient({ baseUrl: "http://127.0.0.1:8080", apiKey: process.env.SWITCHYARD_API_KEY });
 * const { completion } = await sy.chat.complete({ request: { model: "openai/gpt-4o-mini", messages: [userText("Hi")] } });
 * ```
 */
export function createClient(options: ClientOptions): SwitchyardClient {
  const transport = createTransport(options);
  const chat = createServiceClient(ChatService, transport);
  const responses = createServiceClient(ResponsesService, transport);
  return {
    chat,
    embeddings: createServiceClient(EmbeddingsService, transport),
    models: createServiceClient(ModelService, transport),
    responses,
    async createResponse(body, opts = {}) {
      const res = await responses.createResponse({ body: jsonObject(body) }, opts.signal ? { signal: opts.signal } : {});
      return res.response ?? {};
    },
    async *streamResponse(body, opts = {}) {
      const stream = responses.streamResponse({ body: jsonObject(body) }, opts.signal ? { signal: opts.signal } : {});
      for await (const res of stream) yield { type: res.type, event: res.event ?? {} };
    },
    async *streamChat(request, opts = {}) {
      const stream = chat.stream({ request, includeUsage: opts.includeUsage ?? false }, opts.signal ? { signal: opts.signal } : {});
      for await (const res of stream) if (res.chunk) yield res.chunk;
    },
    async *streamText(request, opts = {}) {
      const stream = chat.stream({ request }, opts.signal ? { signal: opts.signal } : {});
      for await (const res of stream) {
        const content = res.chunk?.choices[0]?.delta?.content;
        if (content) yield content;
      }
    },
  };
}

/**
 * A body as the JSON it stands for: what JSON.stringify would send over REST
 * (undefined properties dropped, toJSON applied), since a Struct would turn
 * an undefined property into null.
 */
function jsonObject(body: Record<string, unknown>): JsonObject {
  return JSON.parse(JSON.stringify(body)) as JsonObject;
}

function createTransport(options: ClientOptions): Transport {
  const auth: Interceptor = (next) => (req) => {
    if (options.apiKey) req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
  const interceptors = [auth, ...(options.interceptors ?? [])];
  const common = {
    baseUrl: options.baseUrl,
    interceptors,
    ...(options.timeoutMs === undefined ? {} : { defaultTimeoutMs: options.timeoutMs }),
  };
  switch (options.protocol ?? "connect") {
    case "connect":
      return createConnectTransport({ ...common, httpVersion: options.httpVersion ?? "2" });
    case "grpc":
      return createGrpcTransport(common);
    case "grpc-web":
      return createGrpcWebTransport({ ...common, httpVersion: options.httpVersion ?? "1.1" });
  }
}

/** A user message with text content: the common case, without the message boilerplate. */
export function userText(text: string) {
  return { role: Role.USER, content: [{ part: { case: "text" as const, value: text } }] };
}

/** A system message with text content. */
export function systemText(text: string) {
  return { role: Role.SYSTEM, content: [{ part: { case: "text" as const, value: text } }] };
}
