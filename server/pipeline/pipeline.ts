import type { ChatChunk, ChatCompletion, ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import type { GatewayInfo, Usage } from "../../gen/switchyard/v1/common_pb.ts";
import type { EmbedRequest, EmbedResponse } from "../../gen/switchyard/v1/embeddings_pb.ts";
import type { Model } from "../../gen/switchyard/v1/models_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import type { Principal } from "../governance/authenticate.ts";
import type { ModelCatalog } from "../routing/catalog.ts";
import type { Target } from "../routing/resolve.ts";
import type { Logger } from "../telemetry/log.ts";
import { validateChatRequest, validateEmbedRequest } from "./validate.ts";

/**
 * The one path every request takes, whichever transport brought it:
 *
 *   entry (REST or RPC: decode, authenticate at the edge)
 *   -> validate -> route -> provider -> usage -> record -> response
 *
 * Entry points hand in a canonical request and an authenticated principal;
 * nothing reaches a provider another way. Budgets, rate limits, retries and
 * fallbacks slot in here as further steps.
 */
export interface Pipeline {
  complete(req: ChatRequest, entry: Entry): Promise<ChatCompletion>;
  /** Resolves once the provider accepted the request; see Provider.chatStream. */
  stream(req: ChatRequest, options: { includeUsage: boolean }, entry: Entry): Promise<AsyncIterable<ChatChunk>>;
  embed(req: EmbedRequest, entry: Entry): Promise<EmbedResponse>;
  listModels(entry: Entry): Promise<Model[]>;
}

/** What an entry point knows about the call before the pipeline runs. */
export interface Entry {
  principal: Principal;
  requestId: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** performance.now() when the request arrived. */
  startedAt: number;
}

/** One finished request, as accounting and logs will see it. */
export interface RequestRecord {
  requestId: string;
  principal: string;
  operation: "chat" | "chat_stream" | "embed";
  modelAsked: string;
  provider: string;
  model: string;
  ok: boolean;
  errorCode: string | undefined;
  usage: Usage | undefined;
  latencyMs: number;
  /** Streams only: time to the first chunk. */
  firstChunkMs: number | undefined;
}

export interface PipelineDeps {
  resolve: (model: string) => Target;
  catalog: ModelCatalog;
  /** Called once per request, success or failure, after the response is complete. */
  record: (r: RequestRecord) => void;
  /** Internal errors are logged with their cause here; callers only ever see a generic message. */
  logger: Logger;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { resolve, catalog, record, logger } = deps;

  function finish(entry: Entry, op: RequestRecord["operation"], asked: string, target: Target | undefined, usage: Usage | undefined, err: unknown, firstChunkMs?: number): void {
    if (err !== undefined && GatewayError.from(err).code === "internal") {
      logger.error("internal error", { requestId: entry.requestId, operation: op, error: err, cause: (err as Error).cause });
    }
    record({
      requestId: entry.requestId,
      principal: entry.principal.id,
      operation: op,
      modelAsked: asked,
      provider: target?.provider.id ?? "",
      model: target?.model ?? "",
      ok: err === undefined,
      errorCode: err === undefined ? undefined : GatewayError.from(err).code,
      usage,
      latencyMs: performance.now() - entry.startedAt,
      firstChunkMs,
    });
  }

  return {
    async complete(req, entry) {
      let target: Target | undefined;
      try {
        validateChatRequest(req);
        target = resolve(req.model);
        const upstream: ChatRequest = { ...req, model: target.model };
        const completion = await target.provider.chat(upstream, { signal: entry.signal, requestId: entry.requestId });
        completion.gateway = gatewayInfo(entry, target);
        finish(entry, "chat", req.model, target, completion.usage, undefined);
        return completion;
      } catch (err) {
        finish(entry, "chat", req.model, target, undefined, err);
        throw GatewayError.from(err);
      }
    },

    async stream(req, options, entry) {
      let target: Target | undefined;
      let chunks: AsyncIterable<ChatChunk>;
      try {
        validateChatRequest(req);
        target = resolve(req.model);
        const upstream: ChatRequest = { ...req, model: target.model };
        chunks = await target.provider.chatStream(upstream, { signal: entry.signal, requestId: entry.requestId });
      } catch (err) {
        finish(entry, "chat_stream", req.model, target, undefined, err);
        throw GatewayError.from(err);
      }
      return relay(chunks, entry, target, options.includeUsage, (usage, err, firstChunkMs) =>
        finish(entry, "chat_stream", req.model, target, usage, err, firstChunkMs));
    },

    async embed(req, entry) {
      let target: Target | undefined;
      try {
        validateEmbedRequest(req);
        target = resolve(req.model);
        const upstream: EmbedRequest = { ...req, model: target.model };
        const res = await target.provider.embed(upstream, { signal: entry.signal, requestId: entry.requestId });
        res.gateway = gatewayInfo(entry, target);
        finish(entry, "embed", req.model, target, res.usage, undefined);
        return res;
      } catch (err) {
        finish(entry, "embed", req.model, target, undefined, err);
        throw GatewayError.from(err);
      }
    },

    async listModels() {
      return catalog.list();
    },
  };
}

/**
 * Passes chunks on as they come, stamping the first with gateway info and
 * taking the usage for accounting. The usage-only chunk reaches the caller
 * only if it asked for it. Exactly one record is written, however the stream
 * ends (completed, failed, or abandoned by the caller).
 */
async function* relay(
  chunks: AsyncIterable<ChatChunk>,
  entry: Entry,
  target: Target,
  includeUsage: boolean,
  done: (usage: Usage | undefined, err: unknown, firstChunkMs: number | undefined) => void,
): AsyncGenerator<ChatChunk> {
  let usage: Usage | undefined;
  let firstChunkMs: number | undefined;
  let failure: unknown;
  let completed = false;
  try {
    for await (const chunk of chunks) {
      if (firstChunkMs === undefined) {
        firstChunkMs = performance.now() - entry.startedAt;
        chunk.gateway = gatewayInfo(entry, target);
      }
      if (chunk.usage !== undefined) {
        usage = chunk.usage;
        if (!includeUsage) {
          chunk.usage = undefined;
          if (chunk.choices.length === 0) continue;
        }
      }
      yield chunk;
    }
    completed = true;
  } catch (err) {
    failure = err;
    throw GatewayError.from(err);
  } finally {
    // Abandoned by the caller (generator returned early): a cancel, not a success.
    const err = completed ? undefined : failure ?? new GatewayError("canceled", "the caller canceled the stream");
    done(usage, err, firstChunkMs);
  }
}

function gatewayInfo(entry: Entry, target: Target): GatewayInfo {
  return {
    $typeName: "switchyard.v1.GatewayInfo",
    requestId: entry.requestId,
    provider: target.provider.id,
    model: target.model,
    attempts: 1,
    latencyMs: Math.round((performance.now() - entry.startedAt) * 1000) / 1000,
  };
}
