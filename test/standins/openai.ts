/**
 * A stand-in OpenAI API server for tests (node:http, loopback only).
 *
 * Why: the gateway's OpenAI provider must be tested against something that
 * speaks OpenAI's wire format byte for byte — ids, headers, error bodies,
 * the exact streaming chunk sequence, base64 embeddings — and that can be made
 * to fail on demand (error statuses, hangs, cut or slow streams). Real OpenAI
 * is neither reachable from tests nor deterministic. The shapes follow OpenAI's
 * API reference and `shared/spec/openai-openapi.yaml`; `openai.test.ts` checks
 * them against the spec and drives them with the official `openai` SDK.
 *
 * Answers are deterministic in content (see `planChat` and `fakeEmbedding`);
 * ids, `created` and `obfuscation` vary like OpenAI's.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { parseChatRequest, planChat, renderChunks, renderCompletion } from "./openai/chat.ts";
import { parseEmbeddingsRequest, renderEmbeddings } from "./openai/embeddings.ts";
import { parseMultipart, renderImages, renderModeration, renderResponse, renderResponseEvents, renderSpeech, renderTextCompletion, renderTextCompletionChunks, renderTranscription } from "./openai/other.ts";
import { renderModelList, retrieveModel } from "./openai/models.ts";
import { RateLimiter } from "./openai/ratelimit.ts";
import { defaultErrorFor, type ErrorAnswer, estimateTokens, newId, openAIErrors, type OpenAIErrorBody } from "./openai/wire.ts";
import { BehaviorSlot, type BehaviorScope } from "./shared/behavior.ts";
import { cutConnection, type Exchange as BaseExchange, pause, readBody, StandinLifecycle, write } from "./shared/lifecycle.ts";

export { estimateTokens, SYSTEM_FINGERPRINT, type OpenAIErrorBody } from "./openai/wire.ts";
export { deriveToolArguments, messageText, splitText } from "./openai/chat.ts";
export { fakeEmbedding, toBase64Float32 } from "./openai/embeddings.ts";

/** Options of {@link startOpenAIStandin}; every field is optional. */
export interface OpenAIStandinOptions {
  /** Accepted bearer keys. Default `["sk-test"]`. */
  apiKeys?: string[];
  /** Model ids that exist. Default `["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]`. */
  models?: string[];
  /** Embedding size when a request has no `dimensions`. Default 8. */
  embeddingDimensions?: number;
  /** Characters of content (or tool-call arguments) per streamed chunk. Default 4. */
  streamChunkChars?: number;
  /** Send OpenAI's `obfuscation` field in stream chunks unless the request opts out. Default true. */
  obfuscation?: boolean;
  /** Per-minute limits reported in `x-ratelimit-*`; past `requests` the stand-in answers 429. Default 10 000 req, 30 000 000 tokens. */
  rateLimits?: { requests?: number; tokens?: number };
  /** Listen port. Default 0 (a free port). Always binds 127.0.0.1. */
  port?: number;
}

/**
 * A failure to inject on the next authenticated requests (auth is checked
 * first). Each kind also has a meaning for non-streaming (JSON) answers.
 * - `status`: answer `status` with `body` (default: OpenAI's body for that
 *   status, e.g. 429 rate_limit_exceeded, 503 "The engine is currently
 *   overloaded") and `headers` merged over the defaults (429 sends `retry-after: 1`).
 * - `hang`: read the request, never answer, until the client goes away.
 * - `stream-cut`: send `afterChunks` chunk events, then destroy the socket
 *   (no `[DONE]`); JSON answers are cut after the headers and half the body.
 * - `slow-stream`: wait `gapMs` before every event after the first; JSON
 *   answers wait `gapMs` once. A client that leaves meanwhile counts in `aborted`.
 * - `delay`: wait `ms` before answering normally.
 * - `stream-error`: send `afterChunks` chunk events, then OpenAI's in-stream
 *   error event `data: {"error":{...}}` and end without `[DONE]`; JSON answers
 *   get that error with HTTP 500.
 */
export type Behavior = BehaviorScope &
  (
    | { kind: "status"; status: number; body?: object; headers?: Record<string, string> }
    | { kind: "hang" }
    | { kind: "stream-cut"; afterChunks: number }
    | { kind: "slow-stream"; gapMs: number }
    | { kind: "delay"; ms: number }
    | { kind: "stream-error"; afterChunks: number; error?: OpenAIErrorBody["error"] }
  );

/** One request as the stand-in received it. */
export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. "/v1/chat/completions". */
  path: string;
  /** The query string with its "?", or "". */
  query: string;
  /** Node's lower-cased request headers. */
  headers: IncomingHttpHeaders;
  /** The parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** `Date.now()` when the body had been read. */
  receivedAt: number;
  /** The client's port: requests that share it came over one kept-alive connection. */
  remotePort: number | undefined;
}

/** A running stand-in. */
export interface OpenAIStandin {
  /** Base URL ending in `/v1`, e.g. `http://127.0.0.1:40123/v1` (the SDK's `baseURL`). */
  readonly url: string;
  readonly port: number;
  /** Every request received, in arrival order (including rejected ones). Clear with `requests.length = 0`. */
  readonly requests: RecordedRequest[];
  /** Requests whose client closed the connection before the response finished (live count). */
  readonly aborted: number;
  /** Injects a failure for the next requests; `null` restores normal answers. */
  setBehavior(b: Behavior | null): void;
  /** Resolves once `aborted >= count`; rejects after `timeoutMs` (default 5000). */
  waitForAborted(count: number, timeoutMs?: number): Promise<void>;
  /** Stops listening and destroys every open socket (hung requests included). Idempotent. */
  close(): Promise<void>;
}

const DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];

/** Per-request state: the shared exchange plus OpenAI's request id and start time. */
interface Exchange extends BaseExchange {
  requestId: string;
  startedAt: number;
}

/**
 * Starts a stand-in OpenAI server on 127.0.0.1 and resolves once it listens.
 * Routes: `GET /v1/models`, `GET /v1/models/{id}`, `POST /v1/chat/completions`,
 * `POST /v1/embeddings`; anything else is OpenAI's 404 "Invalid URL".
 */
export async function startOpenAIStandin(opts: OpenAIStandinOptions = {}): Promise<OpenAIStandin> {
  const apiKeys = new Set(opts.apiKeys ?? ["sk-test"]);
  const modelIds = opts.models ?? DEFAULT_MODELS;
  const models = new Set(modelIds);
  const dimensions = opts.embeddingDimensions ?? 8;
  const chunkChars = Math.max(1, opts.streamChunkChars ?? 4);
  const obfuscation = opts.obfuscation ?? true;
  const limiter = new RateLimiter({ requests: opts.rateLimits?.requests ?? 10_000, tokens: opts.rateLimits?.tokens ?? 30_000_000 });

  const requests: RecordedRequest[] = [];
  const life = new StandinLifecycle();
  const behavior = new BehaviorSlot<Behavior>();

  function commonHeaders(x: Exchange): Record<string, string> {
    return {
      "x-request-id": x.requestId,
      "openai-version": "2020-10-01",
      "openai-organization": "org-standin",
      "openai-project": "proj_standin",
      "openai-processing-ms": String(Date.now() - x.startedAt),
      "access-control-expose-headers": "X-Request-ID",
    };
  }

  function sendJson(x: Exchange, status: number, body: unknown, extra: Record<string, string> = {}, cut = false): void {
    // OpenAI pretty-prints: 2 spaces for objects, 4 for error bodies.
    const text = JSON.stringify(body, null, status >= 400 ? 4 : 2) + "\n";
    x.res.writeHead(status, {
      ...commonHeaders(x),
      ...(status < 400 || status === 429 ? limiter.headers() : {}),
      ...extra,
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
    });
    if (!cut) {
      x.res.end(text);
      return;
    }
    x.res.write(text.slice(0, Math.floor(text.length / 2)), () => cutConnection(x));
  }

  function sendError(x: Exchange, e: ErrorAnswer): void {
    sendJson(x, e.status, e.body, e.headers);
  }

  /** Writes SSE events honoring stream faults; resolves when done or abandoned. */
  async function sendStream(x: Exchange, chunks: object[], fault: Behavior | null): Promise<void> {
    x.res.writeHead(200, { ...commonHeaders(x), ...limiter.headers(), "content-type": "text/event-stream; charset=utf-8" });
    x.res.flushHeaders();
    const events = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`);
    events.push("data: [DONE]\n\n");
    const stopAt = fault && (fault.kind === "stream-cut" || fault.kind === "stream-error") ? Math.min(Math.max(0, fault.afterChunks), chunks.length) : -1;
    for (let i = 0; i < events.length; i++) {
      if (fault?.kind === "slow-stream" && i > 0 && !(await pause(x, fault.gapMs))) return;
      if (x.gone.signal.aborted) return;
      if (i === stopAt && fault?.kind === "stream-cut") {
        // Everything before the cut was flushed (each write is awaited), so the
        // client gets exactly `afterChunks` events, then a dead connection.
        cutConnection(x);
        return;
      }
      if (i === stopAt && fault?.kind === "stream-error") {
        const error = fault.error ?? openAIErrors.serverError().body.error;
        x.res.end(`data: ${JSON.stringify({ error })}\n\n`);
        return;
      }
      await write(x, events[i]!);
    }
    x.res.end();
  }

  async function route(x: Exchange, method: string, path: string, body: unknown, fault: Behavior | null): Promise<void> {
    if (fault?.kind === "delay" && !(await pause(x, fault.ms))) return;
    if (fault?.kind === "slow-stream" && !(method === "POST" && path === "/v1/chat/completions" && isStreaming(body)) && !(await pause(x, fault.gapMs))) return;
    const cut = fault?.kind === "stream-cut";
    if (fault?.kind === "stream-error" && !isStreaming(body)) {
      const e = openAIErrors.serverError();
      return sendJson(x, 500, { error: fault.error ?? e.body.error });
    }
    if (method === "GET" && path === "/v1/models") return sendJson(x, 200, renderModelList(modelIds), {}, cut);
    if (method === "GET" && path.startsWith("/v1/models/")) {
      const found = retrieveModel(models, decodeURIComponent(path.slice("/v1/models/".length)));
      return "status" in found ? sendError(x, found) : sendJson(x, 200, found, {}, cut);
    }
    if (method === "POST" && path === "/v1/chat/completions") {
      if (body === INVALID_JSON) return sendError(x, openAIErrors.invalidJson());
      const parsed = parseChatRequest(body ?? {}, models);
      if (!parsed.ok) return sendError(x, parsed.error);
      const plan = planChat(parsed.value);
      if (!parsed.value.stream) return sendJson(x, 200, renderCompletion(plan), {}, cut);
      const chunks = renderChunks(plan, { includeUsage: parsed.value.includeUsage, obfuscation: obfuscation && parsed.value.includeObfuscation, chunkChars });
      return sendStream(x, chunks, fault);
    }
    if (method === "POST" && path === "/v1/embeddings") {
      if (body === INVALID_JSON) return sendError(x, openAIErrors.invalidJson());
      const parsed = parseEmbeddingsRequest(body ?? {}, models, dimensions);
      if (!parsed.ok) return sendError(x, parsed.error);
      return sendJson(x, 200, renderEmbeddings(parsed.value), {}, cut);
    }
    if (method === "POST" && path === "/v1/responses") {
      if (body === INVALID_JSON) return sendError(x, openAIErrors.invalidJson());
      const b = (body ?? {}) as Record<string, unknown>;
      if (typeof b["model"] !== "string" || !models.has(b["model"])) {
        return sendError(x, { status: 400, body: { error: { message: `The requested model '${String(b["model"])}' does not exist.`, type: "invalid_request_error", param: "model", code: "model_not_found" } } });
      }
      if (b["stream"] !== true) return sendJson(x, 200, renderResponse(b), {}, cut);
      x.res.writeHead(200, { ...commonHeaders(x), "content-type": "text/event-stream; charset=utf-8" });
      for (const frame of renderResponseEvents(b)) x.res.write(frame);
      x.res.end();
      return;
    }
    if (method === "POST" && path === "/v1/audio/speech") {
      const b = (body ?? {}) as Record<string, unknown>;
      if (typeof b["input"] !== "string" || typeof b["voice"] !== "string") {
        return sendError(x, { status: 400, body: { error: { message: "input and voice are required", type: "invalid_request_error", param: null, code: null } } });
      }
      const audio = renderSpeech(b);
      x.res.writeHead(200, { ...commonHeaders(x), "content-type": "audio/mpeg", "transfer-encoding": "chunked" });
      x.res.write(audio.subarray(0, 4));
      x.res.end(audio.subarray(4));
      return;
    }
    if (method === "POST" && path === "/v1/audio/transcriptions") {
      const b = body === INVALID_JSON ? undefined : (body as Record<string, unknown> | undefined);
      if (b === undefined || typeof b["file"] !== "object") {
        return sendError(x, { status: 400, body: { error: { message: "Could not parse multipart form", type: "invalid_request_error", param: null, code: null } } });
      }
      return sendJson(x, 200, renderTranscription(b), {}, cut);
    }
    if (method === "POST" && (path === "/v1/completions" || path === "/v1/moderations" || path === "/v1/images/generations")) {
      if (body === INVALID_JSON) return sendError(x, openAIErrors.invalidJson());
      const b = (body ?? {}) as Record<string, unknown>;
      if (path !== "/v1/moderations" && (typeof b["model"] !== "string" || !models.has(b["model"]))) {
        return sendError(x, { status: 404, headers: {}, body: { error: { message: `The model \`${String(b["model"])}\` does not exist or you do not have access to it.`, type: "invalid_request_error", param: null, code: "model_not_found" } } });
      }
      if (path === "/v1/moderations") return sendJson(x, 200, renderModeration(b), {}, cut);
      if (path === "/v1/images/generations") return sendJson(x, 200, renderImages(b), {}, cut);
      if (b["stream"] !== true) return sendJson(x, 200, renderTextCompletion(b), {}, cut);
      return sendStream(x, renderTextCompletionChunks(b), fault);
    }
    return sendError(x, openAIErrors.unknownUrl(method, path));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x: Exchange = life.open(req, res, { requestId: newId.request(), startedAt: Date.now() });
    const raw = await readBody(req);
    if (raw === undefined) return; // the client left while sending
    const rawBody = raw.toString("utf8");
    const [path = "/", query = ""] = (req.url ?? "/").split(/\?(.*)/s, 2);
    const type = String(req.headers["content-type"] ?? "");
    const body = type.startsWith("multipart/form-data") ? ((await parseMultipart(raw, type)) ?? INVALID_JSON) : parseBody(rawBody);
    requests.push({
      method: req.method ?? "GET",
      path,
      query: query ? `?${query}` : "",
      headers: req.headers,
      body: body === INVALID_JSON ? rawBody : body,
      receivedAt: Date.now(),
      remotePort: req.socket.remotePort,
    });

    const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "");
    if (!auth) return sendError(x, openAIErrors.missingKey());
    if (!apiKeys.has(auth[1]!.trim())) return sendError(x, openAIErrors.invalidKey(auth[1]!.trim()));

    const admitted = limiter.admit(requestTokens(body));
    if (!admitted.ok) return sendError(x, openAIErrors.rateLimited(admitted.retryAfterSeconds, limiter.limits.requests));

    const fault = behavior.take(path);
    if (fault?.kind === "hang") return; // never answer; the close listener counts the client leaving
    if (fault?.kind === "status") {
      const base = defaultErrorFor(fault.status);
      return sendJson(x, fault.status, fault.body ?? base.body, { ...base.headers, ...fault.headers });
    }
    await route(x, req.method ?? "GET", path, body, fault);
  }

  const port = await life.listen(handle, { port: opts.port, keepAliveTimeout: 30_000 });

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    get aborted() {
      return life.aborted;
    },
    setBehavior: (b) => behavior.set(b),
    waitForAborted: (count, timeoutMs) => life.waitForAborted(count, timeoutMs),
    close: () => life.close(),
  };
}

/** Marker for a body that is not JSON (answered with OpenAI's 400 on POST routes). */
const INVALID_JSON: unique symbol = Symbol("invalid JSON");

function parseBody(raw: string): unknown {
  if (raw.trim() === "") return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return INVALID_JSON;
  }
}

function isStreaming(body: unknown): boolean {
  return typeof body === "object" && body !== null && (body as { stream?: unknown }).stream === true;
}

/** The token estimate a request spends from the per-minute token budget. */
function requestTokens(body: unknown): number {
  if (typeof body !== "object" || body === null) return 0;
  return estimateTokens(JSON.stringify(body));
}
