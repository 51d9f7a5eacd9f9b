import type { Attributes } from "@opentelemetry/api";
import { toJson } from "@bufbuild/protobuf";
import { ChatCompletionSchema, ChatRequestSchema, FinishReason, type ChatChunk, type ChatCompletion, type ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import type { GatewayInfo, Usage } from "../../gen/switchyard/v1/common_pb.ts";
import { EmbedRequestSchema, type EmbedRequest, type EmbedResponse } from "../../gen/switchyard/v1/embeddings_pb.ts";
import type { Model } from "../../gen/switchyard/v1/models_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import type { Principal } from "../governance/authenticate.ts";
import { estimateEmbedTokens, estimatePromptTokens, textBytes } from "../governance/estimate.ts";
import type { Units } from "../governance/pricing.ts";
import type { Admission, Authorized, Governor } from "../governance/governor.ts";
import type { CacheDirectives, CacheTicket, ResponseCache } from "../cache/cache.ts";
import { completionToChunks, StreamAssembler } from "../cache/replay.ts";
import type { ModelCatalog } from "../routing/catalog.ts";
import type { HealthRegistry } from "../routing/health.ts";
import type { PlanInput } from "../routing/plan.ts";
import type { Target } from "../routing/resolve.ts";
import type { ForwardPath } from "../providers/types.ts";
import type { Logger } from "../telemetry/log.ts";
import type { SpanOutcome, Tracing } from "../telemetry/tracing.ts";
import { invoke, type AttemptState, type InvokeDeps, type RetryPolicy } from "./invoke.ts";
import { validateChatRequest, validateEmbedRequest } from "./validate.ts";

/** A provider stream whose first chunk is already in hand. */
interface OpenedStream {
  it: AsyncIterator<ChatChunk>;
  first: IteratorResult<ChatChunk>;
}

/**
 * The one path every request takes, whichever transport brought it:
 *
 *   entry (REST or RPC: decode, authenticate at the edge)
 *   -> validate -> plan targets -> governance (allowed? reserve worst case)
 *   -> invoke (breakers, retries, fallbacks) -> provider
 *   -> settle actual cost -> record -> response
 *
 * Entry points hand in a canonical request and an authenticated principal;
 * nothing reaches a provider another way, so no route skips governance.
 */
export interface Pipeline {
  complete(req: ChatRequest, entry: Entry): Promise<ChatCompletion>;
  /** Resolves once the provider accepted the request; see Provider.chatStream. */
  stream(req: ChatRequest, options: { includeUsage: boolean }, entry: Entry): Promise<AsyncIterable<ChatChunk>>;
  embed(req: EmbedRequest, entry: Entry): Promise<EmbedResponse>;
  listModels(entry: Entry): Promise<Model[]>;
  /**
   * OpenAI endpoints forwarded to the providers that serve them (legacy
   * completions, moderations, image generation), through the same routing,
   * governance and accounting as chat. `body.model` names the model.
   */
  forward(path: ForwardPath, body: Record<string, unknown>, entry: Entry, form?: FormData): Promise<Forwarded>;
}

/** A forwarded answer: JSON, or a byte stream (SSE) whose end finishes the request. */
export type Forwarded = (
  | { kind: "json"; json: unknown }
  | { kind: "stream"; contentType: string; body: AsyncIterable<Uint8Array> }
) & { gateway: GatewayInfo };

/** What an entry point knows about the call before the pipeline runs. */
export interface Entry {
  principal: Principal;
  requestId: string;
  /** Aborts when the caller goes away. */
  signal: AbortSignal;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** The caller's W3C trace context, continued by the request span and passed upstream. */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  /** The caller's session (x-session-id), for routes that keep a session on one target. */
  sessionId?: string | undefined;
  /** Per-request timeouts (x-switchyard-*-timeout-ms headers); they only tighten the provider's. */
  timeouts?: { firstByteMs?: number | undefined; idleMs?: number | undefined; totalMs?: number | undefined } | undefined;
  /** Which API the request came in as, when it is not Chat Completions (Anthropic Messages and RPC are chat too). The cache keeps APIs apart. */
  api?: "responses" | undefined;
  /** The caller's cache headers (Cache-Control, x-switchyard-cache-ttl/-threshold), when it sent any. */
  cache?: CacheDirectives | undefined;
  /** Sets a response header (rate-limit state), before the response starts. */
  setHeader?: ((name: string, value: string) => void) | undefined;
}

export type Operation = "chat" | "chat_stream" | "embed" | "completions" | "moderations" | "images" | "speech" | "transcriptions" | "responses";

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
  /** The caller's key name, team and customer (virtual keys) as they are now, for the request log. */
  keyName: string;
  team: string;
  customer: string;
  /** What the request cost, USD (0 when unpriced, or a cache hit). */
  costUsd: number;
  /** hit, semantic-hit, miss, bypass, or "" when the cache is off for the request. */
  cacheStatus: string;
  /** On a cache hit: what the answer cost when it was made. */
  savedUsd: number;
  /** Upstream attempts made, and the targets they went to ("provider/model"), in order. */
  attempts: number;
  tried: string[];
  /** Prompt and answer as JSON values, only when body capture is on. */
  bodies?: { request: unknown; response: unknown } | undefined;
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
  /** The ordered targets for a request (routes, fallbacks). */
  plan: (input: PlanInput) => Target[];
  health: HealthRegistry;
  /** Read once per request as it starts its attempts: may be a getter returning the live configuration's. */
  readonly retry: RetryPolicy;
  catalog: ModelCatalog;
  observer: PipelineObserver;
  tracing: Tracing;
  /** Attach prompts and answers to records (for the request log); off by default: it costs a serialisation. */
  captureBodies?: boolean;
  /** Internal errors are logged with their cause here; callers only ever see a generic message. */
  logger: Logger;
  /** Virtual keys: what they may use, budgets and rate limits. Absent: nothing is governed. */
  governor?: Governor | undefined;
  /** The response cache. Absent: no caching. */
  cache?: ResponseCache | undefined;
  /**
   * Aborts when the gateway's shutdown grace ends, with a GatewayError as its
   * reason: streams still open (chat, forwarded) stop their upstream and fail
   * with that error, so each protocol ends them with its own error event
   * instead of a cut connection. Absent: streams run until they end.
   */
  shutdown?: AbortSignal | undefined;
}

/** Per-request bookkeeping shared by the steps. */
interface Run extends AttemptState {
  entry: Entry;
  op: Operation;
  asked: string;
  upstreamMs: number | undefined;
  bodies: { request: unknown; response: unknown } | undefined;
  /** What governance allowed (virtual keys), until it is reserved. */
  authorized: Authorized | undefined;
  /** The governance reservation, while the request holds one. */
  admission: Admission | undefined;
  costUsd: number;
  cache: CacheTicket | undefined;
  /** Streams whose answer may be stored: the whole answer, rebuilt from its chunks. */
  assembler: StreamAssembler | undefined;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { catalog, observer, tracing, logger, health } = deps;
  const capture = deps.captureBodies === true;
  const { governor, cache } = deps;
  // `retry` is read when each request starts invoking (deps.retry may be a getter over the live configuration).
  const invokeDeps: InvokeDeps = {
    health,
    get retry() {
      return deps.retry;
    },
    tracingEnabled: tracing.enabled,
  };

  /** Streams (and forwarded answers, which may stream) also stop at the shutdown deadline; see PipelineDeps.shutdown. */
  function untilShutdown(run: Run): Run {
    if (deps.shutdown !== undefined) run.signal = AbortSignal.any([run.entry.signal, deps.shutdown]);
    return run;
  }

  function begin(entry: Entry, op: Operation, asked: string): Run {
    observer.started(op);
    const trace = tracing.startRequest(op === "embed" ? "embeddings" : "chat", entry.traceparent, entry.tracestate);
    return {
      entry, op, asked, signal: entry.signal, requestId: entry.requestId, trace, timeouts: entry.timeouts, startedAt: entry.startedAt, token: undefined,
      attempt: undefined, target: undefined, key: undefined, attempts: 0, tried: [], upstreamStart: 0, upstreamMs: undefined, bodies: undefined,
      authorized: undefined, admission: undefined, costUsd: 0, cache: undefined, assembler: undefined,
    };
  }

  function finish(run: Run, usage: Usage | undefined, err: unknown, firstChunkMs?: number, result?: SpanOutcome): void {
    const { entry } = run;
    // Whatever path ended the request, a reservation never outlives it (settled ones ignore this).
    run.admission?.release();
    const error = err === undefined ? undefined : GatewayError.from(err);
    if (error?.code === "internal") {
      logger.error("internal error", { requestId: entry.requestId, operation: run.op, error: err, cause: (err as Error).cause });
    }
    const outcome: SpanOutcome = { ...result, usage, errorCode: error?.code, errorMessage: error?.message };
    run.attempt?.end(outcome);
    run.trace.end(outcome);
    observer.finished({
      requestId: entry.requestId,
      principal: entry.principal.id,
      keyName: entry.principal.key?.name ?? "",
      team: entry.principal.team?.id ?? "",
      customer: entry.principal.customer?.id ?? "",
      // A hit costs what was charged for it (nothing by default); anything else what it used.
      costUsd: run.cache?.completion !== undefined ? run.costUsd : costOf(run, usage),
      cacheStatus: run.cache?.status ?? "",
      savedUsd: run.cache?.savedUsd ?? 0,
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
      attempts: run.attempts,
      tried: run.tried,
      bodies: run.bodies,
    });
  }

  /**
   * The request's targets: routing's plan, then, for virtual keys, what the
   * key may use (403 otherwise). Nothing is reserved yet: a cache hit
   * reserves nothing.
   */
  function route(run: Run, model: string, fallbacks: readonly string[], user: string, promptTokens: () => number, maxOutputTokens: number | undefined, choices = 1, units?: Units): Target[] {
    const input = { model, fallbacks, user, sessionId: run.entry.sessionId };
    const targets = deps.plan(input);
    const { principal } = run.entry;
    if (governor === undefined || principal.kind !== "virtual") return targets;
    const models = fallbacks.length === 0 ? [model] : [model, ...fallbacks];
    // The caller's fallbacks never lend their permission to the model it asked for.
    const primary = fallbacks.length === 0 ? targets : deps.plan({ ...input, fallbacks: [] });
    run.authorized = governor.authorize(principal, { models, targets, primary, promptTokens: promptTokens(), maxOutputTokens, choices, units });
    return run.authorized.targets;
  }

  /** Reserves the worst case at every level before the request leaves (a refusal is final: it never falls back). */
  function reserve(run: Run): void | Promise<void> {
    const a = run.authorized;
    if (a === undefined || run.admission !== undefined) return; // nothing to govern, or reserved already
    return governor!.reserve(a, run.entry.setHeader).then((admission) => {
      run.admission = admission;
    });
  }

  /** What an answer cost: settled spend for virtual keys, else priced from usage (what a cache hit on it saves). */
  function costOf(run: Run, usage: Usage | undefined): number {
    if (run.authorized !== undefined) return run.costUsd;
    return governor === undefined || run.target === undefined ? 0 : governor.costOf(run.target, usage);
  }

  /** A cache hit on a stream: the stored answer replayed as chunks; the first carries gateway info. */
  async function* replay(run: Run, hit: ChatCompletion, includeUsage: boolean): AsyncGenerator<ChatChunk> {
    const chunks = completionToChunks(hit, includeUsage);
    let firstChunkMs: number | undefined;
    let err: unknown = new GatewayError("canceled", "the caller canceled the stream");
    try {
      for (const chunk of chunks) {
        if (firstChunkMs === undefined) {
          firstChunkMs = performance.now() - run.entry.startedAt;
          chunk.gateway = gatewayInfo(run);
        }
        yield chunk;
      }
      err = undefined;
    } finally {
      finish(run, hit.usage, err, firstChunkMs);
    }
  }

  /** The cache's answer for a chat request, if the cache is on for the caller; undefined otherwise. */
  async function lookup(run: Run, req: ChatRequest, targets: Target[]): Promise<ChatCompletion | undefined> {
    if (cache === undefined || targets.length === 0) return undefined;
    const t = targets[0]!;
    // A semantic lookup pays for an embedding: a caller over its limits or budget is refused before it.
    run.cache = await cache.lookup(run.entry.principal, req, `${t.provider.id}/${t.model}`, run.entry.cache, run.signal, run.entry.api ?? "chat", () => reserve(run));
    const hit = run.cache?.completion;
    if (hit === undefined) return undefined;
    run.target = t;
    // Charged hits go through the budget and limits like any answer (refused when spent); by default hits are free.
    if (governor?.chargeHits === true && run.authorized !== undefined) {
      await reserve(run);
      await settle(run, hit.usage, 0);
    } else {
      run.admission?.release();
      run.admission = undefined;
    }
    return hit;
  }

  /** Charges what the served request cost; awaited before answering, so a served request is always accounted. */
  async function settle(run: Run, usage: Usage | undefined, outputBytes: number, units?: Units): Promise<void> {
    const a = run.admission;
    if (a === undefined) return;
    run.costUsd = await a.settle(run.target!, usage, outputBytes, units);
    run.admission = undefined;
  }

  return {
    async complete(req, entry) {
      const run = begin(entry, "chat", req.model);
      try {
        if (capture) run.bodies = { request: toJson(ChatRequestSchema, req), response: null };
        validateChatRequest(req);
        const targets = route(run, req.model, req.fallbacks, req.user, () => estimatePromptTokens(req), req.maxCompletionTokens ?? req.maxTokens, req.n ?? 1);
        const hit = await lookup(run, req, targets);
        if (hit !== undefined) {
          hit.gateway = gatewayInfo(run);
          finish(run, hit.usage, undefined, undefined, { responseModel: hit.model, responseId: hit.id });
          return hit;
        }
        await reserve(run);
        const completion = await invoke(invokeDeps, run, targets, req.model, tracing.enabled ? chatAttributes(req) : undefined,
          (t, call) => t.provider.chat({ ...req, model: t.model }, call));
        run.upstreamMs = performance.now() - run.upstreamStart;
        await settle(run, completion.usage, completionBytes(completion));
        // An answer from a fallback is not stored under the primary target's key.
        if (run.cache?.store !== undefined && run.target === targets[0]) cache!.save(run.cache, completion, costOf(run, completion.usage));
        completion.gateway = gatewayInfo(run);
        if (run.bodies) run.bodies.response = toJson(ChatCompletionSchema, completion);
        finish(run, completion.usage, undefined, undefined, {
          responseModel: completion.model,
          responseId: completion.id,
          finishReasons: completion.choices.map((c) => FINISH_NAMES[c.finishReason] ?? "unknown"),
        });
        return completion;
      } catch (err) {
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
    },

    async stream(req, options, entry) {
      const run = untilShutdown(begin(entry, "chat_stream", req.model));
      let opened: OpenedStream;
      let primary: Target | undefined;
      try {
        if (capture) run.bodies = { request: toJson(ChatRequestSchema, req), response: null };
        validateChatRequest(req);
        const targets = route(run, req.model, req.fallbacks, req.user, () => estimatePromptTokens(req), req.maxCompletionTokens ?? req.maxTokens, req.n ?? 1);
        const hit = await lookup(run, req, targets);
        if (hit !== undefined) return replay(run, hit, options.includeUsage);
        await reserve(run);
        if (run.cache?.store !== undefined) run.assembler = new StreamAssembler();
        primary = targets[0];
        // A stream counts as started only once its first chunk is in: a failure before that falls back like any other.
        opened = await invoke(invokeDeps, run, targets, req.model, tracing.enabled ? chatAttributes(req) : undefined,
          async (t, call) => {
            const it = (await t.provider.chatStream({ ...req, model: t.model }, call))[Symbol.asyncIterator]();
            try {
              return { it, first: await it.next() };
            } catch (err) {
              await it.return?.();
              throw err;
            }
          }, true);
      } catch (e) {
        const err = stoppedBy(run, e);
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
      const { target, key, token } = run;
      return relay(opened, run, options.includeUsage, observer, async (usage, err, firstChunkMs, outputBytes) => {
        // The breakers heard "success" at the first chunk; a failure after it still counts (never as a probe's).
        if (err !== undefined) health.settle(target!, key, GatewayError.from(err), token!);
        health.done(target!, key);
        // Once a stream has opened the provider bills at least its prompt: a stream cut short (by the
        // caller or the provider) is charged the prompt and what came of the answer, never released.
        await settle(run, usage, outputBytes);
        // Only a stream that finished cleanly, from the target the cache key names, is stored.
        if (err === undefined && run.assembler !== undefined && run.target === primary) {
          const whole = run.assembler.result();
          if (whole !== undefined) cache!.save(run.cache!, whole, costOf(run, usage));
        }
        finish(run, usage, err, firstChunkMs);
      });
    },

    async embed(req, entry) {
      const run = begin(entry, "embed", req.model);
      try {
        // Embedding vectors are not logged: large, and not what anyone searches for.
        if (capture) run.bodies = { request: toJson(EmbedRequestSchema, req), response: null };
        validateEmbedRequest(req);
        const targets = route(run, req.model, req.fallbacks, req.user, () => estimateEmbedTokens(req), 0);
        await reserve(run);
        const res = await invoke(invokeDeps, run, targets, req.model, undefined,
          (t, call) => t.provider.embed({ ...req, model: t.model }, call));
        run.upstreamMs = performance.now() - run.upstreamStart;
        await settle(run, res.usage, 0);
        res.gateway = gatewayInfo(run);
        finish(run, res.usage, undefined, undefined, { responseModel: res.model });
        return res;
      } catch (err) {
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
    },

    async listModels(entry) {
      const all = await catalog.list();
      const p = entry.principal;
      // A virtual key sees the models it may use, nothing else.
      if (governor === undefined || p.kind !== "virtual") return all;
      return all.filter((m) => {
        const target = m.target === "" ? m.id : m.target; // aliases name their target
        return governor.allowsModel(p, m.provider, target.slice(target.indexOf("/") + 1), m.id);
      });
    },

    async forward(path, body, entry, form) {
      const op: Operation = FORWARD_OPS[path];
      const model = typeof body["model"] === "string" ? body["model"] : "";
      const run = untilShutdown(begin(entry, op, model));
      try {
        if (model === "") throw new GatewayError("invalid_request", "model: required", { param: "model" });
        const maxTokens = typeof body["max_tokens"] === "number" ? body["max_tokens"] : undefined;
        // A coarse over-estimate of the prompt: the body's size (no tokenizer on the hot path).
        const count = (v: unknown): number => (typeof v === "number" && Number.isInteger(v) && v > 0 ? v : 1);
        // Completions answer best_of (or n) choices; images come n at a time and are priced by their output tokens.
        const choices = Math.max(count(body["n"]), count(body["best_of"]));
        const maxOutput = typeof body["max_output_tokens"] === "number" ? body["max_output_tokens"] : undefined;
        const maxOut = path === "completions" ? maxTokens : path === "responses" ? maxOutput : path === "images/generations" ? undefined : 0;
        // Images, speech and transcription may be priced by their units: the most they can be billed is reserved.
        const units = unitsOf(path, body, form, choices);
        const all = route(run, model, [], typeof body["user"] === "string" ? body["user"] : "", () => Math.ceil(JSON.stringify(body).length / 2), maxOut, choices, units);
        const targets = all.filter((t) => t.provider.forward !== undefined);
        if (targets.length === 0) {
          const t = all[0];
          throw new GatewayError("unsupported", `${path} is not available for provider '${t?.provider.id ?? "?"}' (model '${model}'); it is served by OpenAI-format providers`, { param: "model" });
        }
        await reserve(run);
        const res = await invoke(invokeDeps, run, targets, model, undefined, (t, call) => t.provider.forward!({ path, body: { ...body, model: t.model }, form }, call));
        run.upstreamMs = performance.now() - run.upstreamStart;
        if (res.kind === "json") {
          const usage = forwardedUsage(res.json);
          await settleForwarded(run, usage, units === undefined ? undefined : billedUnits(units, res.json));
          finish(run, usage, undefined);
          return { ...res, gateway: gatewayInfo(run) };
        }
        return { ...res, body: relayBytes(run, res.body, units), gateway: gatewayInfo(run) };
      } catch (e) {
        const err = stoppedBy(run, e);
        finish(run, undefined, err);
        throw GatewayError.from(err);
      }
    },
  };

  /**
   * Charges a forwarded answer: from its usage when it reports one; without
   * usage, at the reserved worst case, so an answer is never charged less
   * than it may have cost.
   */
  async function settleForwarded(run: Run, usage: Usage | undefined, units?: Units): Promise<void> {
    const a = run.admission;
    if (a === undefined) return;
    // Unit-priced answers are charged by their units (with usage too, when they report tokens).
    if (units !== undefined) return settle(run, usage, 0, units);
    if (usage === undefined) {
      run.costUsd = await a.settleReserved();
      run.admission = undefined;
      return;
    }
    await settle(run, usage, 0);
  }

  /** Passes a forwarded stream's bytes on; its usage (when the last event has one) is charged at the end. */
  async function* relayBytes(run: Run, body: AsyncIterable<Uint8Array>, units: Units | undefined): AsyncGenerator<Uint8Array> {
    let err: unknown = new GatewayError("canceled", "the caller canceled the stream");
    let usage: Usage | undefined;
    let pending = "";
    let withUsage = "";
    const decoder = new TextDecoder();
    try {
      for await (const chunk of body) {
        // Usage comes in one of the last events (it may hold a whole Response): keep the latest
        // complete event that mentions it, and the incomplete rest, bounded.
        pending += decoder.decode(chunk, { stream: true });
        const end = pending.lastIndexOf("\n\n");
        if (end !== -1) {
          const complete = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const at = complete.lastIndexOf('"usage"');
          if (at !== -1) withUsage = complete.slice(complete.lastIndexOf("\n\n", at) + 1);
        }
        if (pending.length > MAX_EVENT_CHARS) pending = "";
        yield chunk;
      }
      usage = streamUsage(withUsage);
      err = undefined;
    } catch (e) {
      err = stoppedBy(run, e);
      throw GatewayError.from(err);
    } finally {
      // Bytes already went out: without usage, the reserved worst case is charged (never less than it may have cost).
      await settleForwarded(run, usage, units);
      finish(run, usage, err);
    }
  }
}

const FORWARD_OPS: Record<ForwardPath, Operation> = {
  "completions": "completions",
  "moderations": "moderations",
  "images/generations": "images",
  "audio/speech": "speech",
  "audio/transcriptions": "transcriptions",
  "responses": "responses",
};

/**
 * The most units a unit-priced request can be billed: images asked for,
 * characters to speak, and seconds of audio to transcribe (estimated from
 * the upload at 16 kbit/s, as low a bitrate as speech is sent at, so it
 * over-estimates). Undefined for token-priced endpoints.
 */
function unitsOf(path: ForwardPath, body: Record<string, unknown>, form: FormData | undefined, n: number): Units | undefined {
  switch (path) {
    case "images/generations":
      return { images: n };
    case "audio/speech":
      return { characters: typeof body["input"] === "string" ? body["input"].length : 0 };
    case "audio/transcriptions": {
      const file = form?.get("file");
      return { audioSeconds: file instanceof Blob ? Math.ceil(file.size / 2_000) : 0 };
    }
    default:
      return undefined;
  }
}

/** The units an answer was billed: images returned, and the audio duration a transcription reports. */
function billedUnits(worst: Units, json: unknown): Units {
  const j = json as { data?: unknown; duration?: unknown; usage?: { type?: unknown; seconds?: unknown } } | null;
  const units: Units = { ...worst };
  if (worst.images !== undefined && Array.isArray(j?.data)) units.images = j.data.length;
  if (worst.audioSeconds !== undefined) {
    const seconds = j?.usage?.type === "duration" ? j.usage.seconds : j?.duration;
    if (typeof seconds === "number" && seconds >= 0) units.audioSeconds = seconds;
  }
  return units;
}

/** Usage as OpenAI's other endpoints report it (prompt/completion tokens, or input/output tokens). */
function forwardedUsage(json: unknown): Usage | undefined {
  const j = json as { usage?: Record<string, unknown>; response?: { usage?: Record<string, unknown> } } | null;
  // The Responses API reports usage in the Response object, which its last event carries.
  const u = j?.usage ?? j?.response?.usage;
  if (u === null || typeof u !== "object") return undefined;
  const n = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.min(Math.floor(v), 0xffff_ffff) : 0);
  const prompt = n(u["prompt_tokens"] ?? u["input_tokens"]);
  const completion = n(u["completion_tokens"] ?? u["output_tokens"]);
  return { $typeName: "switchyard.v1.Usage", promptTokens: prompt, completionTokens: completion, totalTokens: prompt + completion, cachedTokens: 0, reasoningTokens: 0, cacheWriteTokens: 0 };
}

/** Longest SSE event searched for usage (a Response object with its whole output). */
const MAX_EVENT_CHARS = 4 * 1024 * 1024;

/** The usage in the last `data:` line of an SSE event that has one. */
function streamUsage(tail: string): Usage | undefined {
  const events = tail.split("\n").filter((l) => l.startsWith("data: {"));
  for (let i = events.length - 1; i >= 0; i--) {
    try {
      const u = forwardedUsage(JSON.parse(events[i]!.slice(6)));
      if (u !== undefined) return u;
    } catch {
      // A partial line at the start of the tail.
    }
  }
  return undefined;
}

/**
 * Passes chunks on as they come, stamping the first with gateway info and
 * taking the usage for accounting. The usage-only chunk reaches the caller
 * only if it asked for it. Exactly one record is written, however the stream
 * ends (completed, failed, or abandoned by the caller).
 */
async function* relay(
  opened: OpenedStream,
  run: Run,
  includeUsage: boolean,
  observer: PipelineObserver,
  done: (usage: Usage | undefined, err: unknown, firstChunkMs: number | undefined, outputBytes: number) => Promise<void>,
): AsyncGenerator<ChatChunk> {
  const { entry } = run;
  const target = run.target!;
  let usage: Usage | undefined;
  let firstChunkMs: number | undefined;
  let last = 0;
  let failure: unknown;
  let completed = false;
  /** UTF-8 bytes of output, to estimate tokens if the stream ends without usage. */
  let outputBytes = 0;
  const { it } = opened;
  let next = opened.first;
  try {
    for (; !next.done; next = await it.next()) {
      const chunk = next.value;
      const now = performance.now();
      if (firstChunkMs === undefined) {
        firstChunkMs = now - entry.startedAt;
        run.upstreamMs = now - run.upstreamStart;
        chunk.gateway = gatewayInfo(run);
      } else {
        observer.chunkGap(target.provider.id, now - last);
      }
      last = now;
      if (run.bodies) collect(run.bodies, chunk);
      run.assembler?.push(chunk);
      if (usage === undefined) outputBytes += chunkBytes(chunk);
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
    failure = stoppedBy(run, err);
    throw GatewayError.from(failure);
  } finally {
    // Abandoned by the caller (generator returned early): a cancel, not a success.
    const err = completed ? undefined : failure ?? new GatewayError("canceled", "the caller canceled the stream");
    // Stops the provider's stream (and its upstream request) unless it ran to its end: the caller
    // left, or this relay failed. Harmless when the provider's iterator already finished.
    if (!completed) await it.return?.().catch(() => undefined);
    await done(usage, err, firstChunkMs, outputBytes);
  }
}

/**
 * What a request failed with: the shutdown deadline's error when that is
 * what stopped it (its signal aborted, the caller's did not), so it ends as
 * `unavailable` "gateway shutting down" rather than as a cancel; else `err`.
 */
function stoppedBy(run: Run, err: unknown): unknown {
  const { signal, entry } = run;
  if (signal === entry.signal || !signal.aborted || entry.signal.aborted) return err;
  return signal.reason instanceof GatewayError ? signal.reason : err;
}

/** UTF-8 bytes of a chunk's output (text, reasoning, tool calls), for the token estimate of streams without usage. */
function chunkBytes(chunk: ChatChunk): number {
  let n = 0;
  for (const c of chunk.choices) {
    const d = c.delta;
    if (d === undefined) continue;
    n += textBytes(d.content) + textBytes(d.reasoningContent);
    for (const t of d.toolCalls) n += textBytes(t.name) + textBytes(t.arguments);
  }
  return n;
}

/** UTF-8 bytes of a completion's output, for providers that answer without usage. */
function completionBytes(c: ChatCompletion): number {
  if (c.usage !== undefined) return 0;
  let n = 0;
  for (const ch of c.choices) {
    const m = ch.message;
    if (m === undefined) continue;
    for (const p of m.content) if (p.part.case === "text") n += textBytes(p.part.value);
    n += textBytes(m.reasoningContent);
    for (const t of m.toolCalls) n += textBytes(t.function?.name) + textBytes(t.function?.arguments);
  }
  return n;
}


/** Streams with body capture on: the answer as text and tool-call arguments, assembled. */
function collect(bodies: { response: unknown }, chunk: ChatChunk): void {
  const acc = (bodies.response ??= { content: "", toolCalls: {} as Record<number, { name: string; arguments: string }> }) as {
    content: string;
    toolCalls: Record<number, { name: string; arguments: string }>;
  };
  const delta = chunk.choices[0]?.delta;
  if (delta === undefined) return;
  if (delta.content) acc.content += delta.content;
  for (const t of delta.toolCalls) {
    const call = (acc.toolCalls[t.index] ??= { name: "", arguments: "" });
    if (t.name) call.name = t.name;
    if (t.arguments) call.arguments += t.arguments;
  }
}

const FINISH_NAMES: Record<number, string> = {
  [FinishReason.STOP]: "stop",
  [FinishReason.LENGTH]: "length",
  [FinishReason.TOOL_CALLS]: "tool_calls",
  [FinishReason.CONTENT_FILTER]: "content_filter",
  [FinishReason.FUNCTION_CALL]: "function_call",
};

/** GenAI request attributes of a chat span (only computed when tracing is on). */
function chatAttributes(req: ChatRequest): Attributes {
  const a: Attributes = {};
  const maxTokens = req.maxCompletionTokens ?? req.maxTokens;
  if (maxTokens !== undefined) a["gen_ai.request.max_tokens"] = maxTokens;
  if (req.temperature !== undefined) a["gen_ai.request.temperature"] = req.temperature;
  if (req.topP !== undefined) a["gen_ai.request.top_p"] = req.topP;
  if (req.topK !== undefined) a["gen_ai.request.top_k"] = req.topK;
  if (req.stop.length > 0) a["gen_ai.request.stop_sequences"] = req.stop;
  if (req.seed !== undefined) a["gen_ai.request.seed"] = Number(req.seed);
  if (req.presencePenalty !== undefined) a["gen_ai.request.presence_penalty"] = req.presencePenalty;
  if (req.frequencyPenalty !== undefined) a["gen_ai.request.frequency_penalty"] = req.frequencyPenalty;
  if (req.n !== undefined && req.n !== 1) a["gen_ai.request.choice.count"] = req.n;
  return a;
}

function gatewayInfo(run: Run): GatewayInfo {
  return {
    $typeName: "switchyard.v1.GatewayInfo",
    requestId: run.requestId,
    provider: run.target!.provider.id,
    model: run.target!.model,
    attempts: run.attempts,
    latencyMs: Math.round((performance.now() - run.entry.startedAt) * 1000) / 1000,
    tried: run.tried,
    cache: run.cache?.status ?? "",
    ...(run.cache?.similarity === undefined ? {} : { cacheSimilarity: run.cache.similarity }),
  };
}
