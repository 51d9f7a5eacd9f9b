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

export type Operation = "chat" | "chat_stream" | "embed";

/** One finished request, as accounting, metrics and logs see it. */
export interface RequestRecord {
  requestId: string;
  principal: string;
  operation: Operation;
  modelAsked: string;
  provider: string;
  model: string;
  ok: boolean;
  errorCode: string | undefined;
  usage: Usage | undefined;
  /** Arrival to the end of the pipeline's work (for streams: the last chunk). */
  latencyMs: number;
  /** Streams only: arrival to the first chunk. */
  firstChunkMs: number | undefined;
  /** Waiting on the provider: until its answer, or for streams until its first chunk. */
  upstreamMs: number | undefined;
}

/**
 * What the pipeline reports as requests go through it (metrics, logs,
 * accounting). Implementations must be cheap and must not throw.
 */
export interface PipelineObserver {
  /** A request entered the pipeline. */
  started(op: Operation): void;
  /** Time between two chunks of a provider's stream. */
  chunkGap(provider: string, ms: number): void;
  /** Exactly once per started request, success or failure, after the last chunk. */
  finished(r: RequestRecord): void;
}

export interface PipelineDeps {
  resolve: (model: string) => Target;
  catalog: ModelCatalog;
  observer: PipelineObserver;
  /** Internal errors are logged with their cause here; callers only ever see a generic message. */
  logger: Logger;
}

/** Per-request bookkeeping shared by the steps. */
interface Run {
  entry: Entry;
  op: Operation;
  asked: string;
  target: Target | undefined;
  upstreamStart: number;
  upstreamMs: number | undefined;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { resolve, catalog, observer, logger } = deps;

  function begin(entry: Entry, op: Operation, asked: string): Run {
    observer.started(op);
    return { entry, op, asked, target: undefined, upstreamStart: 0, upstreamMs: undefined };
  }

  function finish(run: Run, usage: Usage | undefined, err: unknown, firstChunkMs?: number): void {
    const { entry } = run;
    if (err !== undefined && GatewayError.from(err).code === "internal") {
      logger.error("internal error", { requestId: entry.requestId, operation: run.op, error: err, cause: (err as Error).cause });
    }
    observer.finished({
      requestId: entry.requestId,
      principal: entry.principal.id,
      operation: run.op,
      modelAsked: run.asked,
      provider: run.target?.provider.id ?? "",
      model: run.target?.model ?? "",
      ok: err === undefined,
      errorCode: err === undefined ? undefined : GatewayError.from(err).code,
      usage,
      latencyMs: performance.now() - entry.startedAt,
      firstChunkMs,
      upstreamMs: run.upstreamMs,
    });
  }

  /** Validation and routing, shared by every operation: returns the provider's view of the request. */
  function route<R extends { model: string }>(run: Run, req: R, validate: (r: R) => void): R {
    validate(req);
    run.target = resolve(req.model);
    run.upstreamStart = performance.now();
    return { ...req, model: run.target.model };
  }

  return {
    async complete(req, entry) {
      const run = begin(entry, "chat", req.model);
      try {
        const upstream = route(run, req, validateChatRequest);
        const completion = await run.target!.provider.chat(upstream, { signal: entry.signal, requestId: entry.requestId });
        run.upstreamMs = performance.now() - run.upstreamStart;
        completion.gateway = gatewayInfo(entry, run.target!);
        finish(run, completion.usage, undefined);
        return completion;
      } catch (err) {
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
    },

    async stream(req, options, entry) {
      const run = begin(entry, "chat_stream", req.model);
      let chunks: AsyncIterable<ChatChunk>;
      try {
        const upstream = route(run, req, validateChatRequest);
        chunks = await run.target!.provider.chatStream(upstream, { signal: entry.signal, requestId: entry.requestId });
      } catch (err) {
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
      return relay(chunks, run, options.includeUsage, observer, (usage, err, firstChunkMs) => finish(run, usage, err, firstChunkMs));
    },

    async embed(req, entry) {
      const run = begin(entry, "embed", req.model);
      try {
        const upstream = route(run, req, validateEmbedRequest);
        const res = await run.target!.provider.embed(upstream, { signal: entry.signal, requestId: entry.requestId });
        run.upstreamMs = performance.now() - run.upstreamStart;
        res.gateway = gatewayInfo(entry, run.target!);
        finish(run, res.usage, undefined);
        return res;
      } catch (err) {
        finish(run, undefined, err);
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
  run: Run,
  includeUsage: boolean,
  observer: PipelineObserver,
  done: (usage: Usage | undefined, err: unknown, firstChunkMs: number | undefined) => void,
): AsyncGenerator<ChatChunk> {
  const { entry } = run;
  const target = run.target!;
  let usage: Usage | undefined;
  let firstChunkMs: number | undefined;
  let last = 0;
  let failure: unknown;
  let completed = false;
  try {
    for await (const chunk of chunks) {
      const now = performance.now();
      if (firstChunkMs === undefined) {
        firstChunkMs = now - entry.startedAt;
        run.upstreamMs = now - run.upstreamStart;
        chunk.gateway = gatewayInfo(entry, target);
      } else {
        observer.chunkGap(target.provider.id, now - last);
      }
      last = now;
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
