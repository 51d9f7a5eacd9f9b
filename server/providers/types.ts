import type { ChatChunk, ChatCompletion, ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../gen/switchyard/v1/embeddings_pb.ts";

/**
 * The one provider interface. A provider translates the canonical request to
 * its own wire format and back; it knows nothing of callers or routing. It
 * rotates over its keys unless the call names one (`CallOptions.keyIndex`).
 * `request.model` is already the provider's own model name.
 */
export interface Provider {
  /** Id from the configuration, e.g. "openai". */
  readonly id: string;
  /** Models the configuration says it serves; empty means "ask it" (listModels). */
  readonly declaredModels: readonly string[];
  /**
   * How many keys (or credential sets) it rotates over; 0 for keyless local
   * servers. Valid `CallOptions.keyIndex` values are 0 .. keyCount-1.
   */
  readonly keyCount: number;
  chat(request: ChatRequest, call: CallOptions): Promise<ChatCompletion>;
  /**
   * Resolves once the provider has accepted the request (status 2xx, headers
   * in), so failures before the first byte are ordinary errors; later
   * failures are thrown by the iterator. Returning early from the iterator
   * aborts the upstream request. Providers always ask for usage when they can
   * and yield it; whether the caller sees it is the pipeline's choice.
   */
  chatStream(request: ChatRequest, call: CallOptions): Promise<AsyncIterable<ChatChunk>>;
  embed(request: EmbedRequest, call: CallOptions): Promise<EmbedResponse>;
  listModels(call: CallOptions): Promise<ProviderModel[]>;
  /**
   * The provider's own count of the request's input tokens (prompt, system,
   * tools), without generating anything. Only providers with a counting API
   * have it (POST /v1/messages/count_tokens answers 400 for the others).
   */
  countTokens?(request: ChatRequest, call: CallOptions): Promise<number>;
  /**
   * OpenAI-format endpoints other than chat and embeddings, forwarded as
   * they are (the body's `model` is already the provider's). Only providers
   * that serve OpenAI's paths have it.
   */
  forward?(request: ForwardRequest, call: CallOptions): Promise<ForwardResponse>;
  close(): Promise<void>;
}

/** OpenAI endpoints the gateway forwards to OpenAI-format providers. */
export type ForwardPath = "completions" | "moderations" | "images/generations" | "audio/speech" | "audio/transcriptions" | "responses";

export interface ForwardRequest {
  path: ForwardPath;
  /** The JSON body; for multipart uploads, the scalar fields routing reads (model, stream). */
  body: Record<string, unknown>;
  /** Multipart uploads (transcriptions): every field as sent; `model` is replaced by `body.model`. */
  form?: FormData | undefined;
}

/** A 2xx answer: JSON already parsed, or a stream of bytes (SSE) to pass on. */
export type ForwardResponse =
  | { kind: "json"; json: unknown }
  | { kind: "stream"; contentType: string; body: AsyncIterable<Uint8Array> };

export interface CallOptions {
  /** Aborts when the caller goes away; the upstream request is aborted with it. */
  signal: AbortSignal;
  requestId: string;
  /** Headers to add to the upstream request (W3C trace context); set by the pipeline. */
  headers?: Readonly<Record<string, string>> | undefined;
  /**
   * Which of the provider's keys (or credential sets) to use for this call,
   * 0 .. keyCount-1; set by routing. When unset (or out of range) the provider
   * rotates as before.
   */
  keyIndex?: number | undefined;
  /** The caller's own limits; they can only tighten the provider's configured timeouts. */
  timeouts?: { firstByteMs?: number | undefined; idleMs?: number | undefined; totalMs?: number | undefined } | undefined;
}

export interface ProviderModel {
  id: string;
  created: number;
  ownedBy: string;
}
