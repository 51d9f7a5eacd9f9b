/**
 * A stand-in for Google's Gemini API (generativelanguage.googleapis.com,
 * v1beta, API-key auth) for tests (node:http, loopback only).
 *
 * Why: the Gemini provider must be tested against something that speaks
 * Gemini's wire format (paths like `/v1beta/models/{model}:generateContent`
 * and `:countTokens`,
 * `x-goog-api-key`, Google's `{"error":{code,message,status,details}}` bodies
 * with ErrorInfo/RetryInfo details, SSE of whole GenerateContentResponse
 * objects with CRLF framing and no [DONE]), that rejects what Gemini rejects
 * (unknown fields, bad roles, function-response turns that do not follow a
 * call turn, unsupported schema keys), and that fails on demand.
 *
 * Answers are deterministic (see `planGenerate` in gemini/chat.ts): an echo
 * of the last user text, a function call when tools are offered and the text
 * says "call" (or mode ANY), a summary of tool results, "BLOCK_PROMPT" ->
 * promptFeedback.blockReason, "BLOCK_ANSWER" -> finishReason SAFETY.
 */
import { randomBytes } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { errorForStatus, estimate, googleErrors, parseGenerate, planGenerate, type GoogleErrorAnswer, type Plan } from "./gemini/chat.ts";
import { BehaviorSlot } from "./shared/behavior.ts";
import { cutConnection, type Exchange, pause, readBody, StandinLifecycle, write } from "./shared/lifecycle.ts";

export { googleErrors } from "./gemini/chat.ts";

export interface GeminiStandinOptions {
  /** Accepted API keys. Default `["gemini-test-key"]`. */
  apiKeys?: string[];
  /** Model ids (without "models/"). Default gemini-2.0-flash, gemini-2.5-pro, text-embedding-004. */
  models?: string[];
  /** inputTokenLimit of every model; past it, Gemini's 400 "input token count exceeds". Default 1 048 576. */
  inputTokenLimit?: number;
  /** Characters of text per streamed event. Default 4. */
  streamChunkChars?: number;
  /** Models per page of GET /models when the request asks for more. Default 50 (Google's default page size). */
  maxPageSize?: number;
}

interface Scope {
  /** Only requests whose path contains this (e.g. ":streamGenerateContent"); default all. */
  path?: string;
  /** This many matching requests, then back to normal; default until setBehavior(null). */
  times?: number;
}

/**
 * Failures to inject (after auth):
 * - status: answer `status` with Google's body for it (or `body`).
 * - hang: never answer. delay: wait `ms`, then answer.
 * - stream-cut: send `afterEvents` events, then destroy the socket (with `clean`,
 *   end the body normally: a stream without its finishReason).
 * - stream-error: send `afterEvents` events, then an error object: `data: {"error":...}`
 *   or, with `bare`, the pretty-printed JSON outside SSE framing; then end the body.
 * - slow-stream: wait `gapMs` before each event after the first.
 */
export type GeminiBehavior = Scope &
  (
    | { kind: "status"; status: number; body?: object }
    | { kind: "hang" }
    | { kind: "delay"; ms: number }
    | { kind: "stream-cut"; afterEvents: number; clean?: boolean }
    | { kind: "stream-error"; afterEvents: number; error?: GoogleErrorAnswer["body"]["error"]; bare?: boolean }
    | { kind: "slow-stream"; gapMs: number }
  );

export interface GeminiRecordedRequest {
  method: string;
  /** Without the query, e.g. "/v1beta/models/gemini-2.0-flash:generateContent". */
  path: string;
  /** With its "?", or "". */
  query: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  receivedAt: number;
}

export interface GeminiStandin {
  /** Base URL ending in /v1beta. */
  readonly url: string;
  readonly requests: GeminiRecordedRequest[];
  /** Timestamps (Date.now()) of each streamed event written, last stream only. */
  readonly sentAt: number[];
  readonly aborted: number;
  setBehavior(b: GeminiBehavior | null): void;
  waitForAborted(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const DEFAULT_MODELS = ["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"];

export async function startGeminiStandin(opts: GeminiStandinOptions = {}): Promise<GeminiStandin> {
  const keys = new Set(opts.apiKeys ?? ["gemini-test-key"]);
  const models = opts.models ?? DEFAULT_MODELS;
  const limit = opts.inputTokenLimit ?? 1_048_576;
  const chunkChars = Math.max(1, opts.streamChunkChars ?? 4);
  const requests: GeminiRecordedRequest[] = [];
  const sentAt: number[] = [];
  const life = new StandinLifecycle("gemini stand-in");
  /** A behaviour's `path` matches every request path that contains it. */
  const behavior = new BehaviorSlot<GeminiBehavior>((scopePath, path) => path.includes(scopePath));

  function json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body, null, 2) + "\n";
    res.writeHead(status, { "content-type": "application/json; charset=UTF-8", "content-length": String(Buffer.byteLength(text)), server: "scaffolding on HTTPServer2", vary: "Origin, X-Origin, Referer" });
    res.end(text);
  }

  function models_(modelId: string) {
    const embed = modelId.includes("embedding");
    return {
      name: `models/${modelId}`,
      version: "001",
      displayName: modelId,
      description: `Stand-in ${modelId}`,
      inputTokenLimit: limit,
      outputTokenLimit: embed ? 1 : 8192,
      supportedGenerationMethods: embed ? ["embedContent", "batchEmbedContents"] : ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
    };
  }

  function render(plan: Plan, model: string, responseId: string): object {
    const usage = usageOf(plan);
    if (plan.blockReason) {
      return { promptFeedback: { blockReason: plan.blockReason, safetyRatings: safety() }, usageMetadata: { promptTokenCount: plan.promptTokens, totalTokenCount: plan.promptTokens }, modelVersion: model, responseId };
    }
    return { candidates: candidates(plan, partsOf(plan), plan.finishReason), usageMetadata: usage, modelVersion: model, responseId };
  }

  /** The events of a streamed answer: thought, text in pieces, a whole function call; finishReason and full usage on the last. */
  function renderEvents(plan: Plan, model: string, responseId: string): object[] {
    if (plan.blockReason) return [render(plan, model, responseId)];
    const partial = { promptTokenCount: plan.promptTokens, totalTokenCount: plan.promptTokens };
    const pieces: object[][] = [];
    if (plan.thought) pieces.push([{ text: plan.thought, thought: true }]);
    for (let i = 0; i < plan.text.length; i += chunkChars) pieces.push([{ text: plan.text.slice(i, i + chunkChars) }]);
    if (plan.call) pieces.push([{ functionCall: plan.call }]);
    if (pieces.length === 0) pieces.push([]);
    return pieces.map((parts, i) => {
      const last = i === pieces.length - 1;
      return { candidates: candidates(plan, parts, last ? plan.finishReason : undefined), usageMetadata: last ? usageOf(plan) : partial, modelVersion: model, responseId };
    });
  }

  function candidates(plan: Plan, parts: object[], finishReason: string | undefined): object[] {
    return Array.from({ length: plan.candidateCount }, (_, index) => ({
      ...(parts.length > 0 ? { content: { parts, role: "model" } } : {}),
      ...(finishReason ? { finishReason } : {}),
      ...(finishReason === "SAFETY" ? { safetyRatings: safety() } : {}),
      index,
    }));
  }

  async function stream(x: Exchange, events: object[], fault: GeminiBehavior | null): Promise<void> {
    const res = x.res;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", server: "scaffolding on HTTPServer2" });
    res.flushHeaders();
    sentAt.length = 0;
    const stopAt = fault?.kind === "stream-cut" || fault?.kind === "stream-error" ? Math.min(fault.afterEvents, events.length) : -1;
    for (let i = 0; i <= events.length; i++) {
      if (i === stopAt && fault?.kind === "stream-cut") {
        if (!fault.clean) return cutConnection(x);
        x.cutByServer = true; // a clean end without finishReason: not a client abort either
        res.end();
        return;
      }
      if (i === stopAt && fault?.kind === "stream-error") {
        const error = fault.error ?? googleErrors.internal().body.error;
        res.end(fault.bare ? JSON.stringify({ error }, null, 2) + "\n" : `data: ${JSON.stringify({ error })}\r\n\r\n`);
        return;
      }
      if (i === events.length) break;
      if (fault?.kind === "slow-stream" && i > 0 && !(await pause(x, fault.gapMs))) return;
      if (res.destroyed || x.gone.signal.aborted) return;
      await write(x, `data: ${JSON.stringify(events[i])}\r\n\r\n`);
      sentAt.push(Date.now());
    }
    res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = life.open(req, res);
    const raw = (await readBody(req))?.toString("utf8");
    if (raw === undefined) return;
    const [path = "/", q = ""] = (req.url ?? "/").split(/\?(.*)/s, 2);
    const query = new URLSearchParams(q);
    let body: unknown;
    try {
      body = raw === "" ? undefined : JSON.parse(raw);
    } catch {
      body = raw;
    }
    requests.push({ method: req.method ?? "GET", path, query: q ? `?${q}` : "", headers: req.headers, body, receivedAt: Date.now() });
    const send = (e: GoogleErrorAnswer): void => json(res, e.status, e.body);

    const key = (req.headers["x-goog-api-key"] as string | undefined) ?? query.get("key") ?? undefined;
    if (key === undefined) return send(googleErrors.missingKey());
    if (!keys.has(key)) return send(googleErrors.invalidKey());

    const fault = behavior.take(path);
    if (fault?.kind === "hang") return;
    if (fault?.kind === "delay" && !(await pause(x, fault.ms))) return;
    if (fault?.kind === "status") {
      const e = errorForStatus(fault.status);
      return json(res, fault.status, fault.body ?? e.body);
    }

    if (req.method === "GET" && path === "/v1beta/models") {
      const size = Math.min(Number(query.get("pageSize") ?? 50) || 50, opts.maxPageSize ?? 50, 1000);
      const start = Number(query.get("pageToken") ?? 0) || 0;
      const page = models.slice(start, start + size).map(models_);
      return json(res, 200, { models: page, ...(start + size < models.length ? { nextPageToken: String(start + size) } : {}) });
    }
    const m = /^\/v1beta\/models\/([^/:]+)(?::(\w+))?$/.exec(path);
    if (!m) return json(res, 404, "<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title>");
    const model = decodeURIComponent(m[1]!);
    const method = m[2];
    if (req.method === "GET" && method === undefined) {
      return models.includes(model) ? json(res, 200, models_(model)) : send(googleErrors.modelNotFound(model, "get"));
    }
    if (req.method !== "POST" || method === undefined) return send(googleErrors.invalid("Method not allowed"));
    if (!models.includes(model) || (model.includes("embedding") !== method.toLowerCase().includes("embed"))) return send(googleErrors.modelNotFound(model, method));

    if (method === "batchEmbedContents") {
      const reqs = typeof body === "object" && body !== null ? (body as { requests?: unknown }).requests : undefined;
      if (!Array.isArray(reqs) || reqs.length === 0) return send(googleErrors.invalid("* BatchEmbedContentsRequest.requests: at least one request is required\n"));
      const out: { values: number[] }[] = [];
      for (const [i, r] of reqs.entries()) {
        const rr = r as { model?: unknown; content?: { parts?: { text?: unknown }[] }; outputDimensionality?: unknown };
        if (rr.model !== `models/${model}`) return send(googleErrors.invalid(`* BatchEmbedContentsRequest.requests[${i}].model: model must be the same as the batch model (models/${model})\n`));
        const text = (rr.content?.parts ?? []).map((p) => String(p.text ?? "")).join("");
        out.push({ values: fakeEmbedding(text, typeof rr.outputDimensionality === "number" ? rr.outputDimensionality : 8) });
      }
      return json(res, 200, { embeddings: out });
    }
    if (method === "countTokens") {
      const counted = countTokens(body, model);
      return "status" in counted ? send(counted) : json(res, 200, counted);
    }
    if (method !== "generateContent" && method !== "streamGenerateContent") return send(googleErrors.modelNotFound(model, method));
    const parsed = parseGenerate(body);
    if ("status" in parsed) return send(parsed);
    const plan = planGenerate(parsed);
    if (plan.promptTokens > limit) return send(googleErrors.tooLong(plan.promptTokens, limit));
    const responseId = randomBytes(12).toString("base64url");
    if (method === "generateContent") return json(res, 200, render(plan, model, responseId));
    const events = renderEvents(plan, model, responseId);
    // Without alt=sse Google streams one JSON array; clients of this stand-in use SSE.
    if (query.get("alt") !== "sse") return json(res, 200, events);
    return stream(x, events, fault);
  }

  const port = await life.listen(handle);

  return {
    url: `http://127.0.0.1:${port}/v1beta`,
    requests,
    sentAt,
    get aborted() {
      return life.aborted;
    },
    setBehavior: (b) => behavior.set(b),
    waitForAborted: (count, timeoutMs) => life.waitForAborted(count, timeoutMs),
    close: () => life.close(),
  };
}

/**
 * models.countTokens (https://ai.google.dev/api/tokens): bare `contents`, or
 * a whole `generateContentRequest` (whose `model` must name the same model),
 * never both. totalTokens is the prompt figure a generateContent answer
 * reports as promptTokenCount.
 */
function countTokens(body: unknown, model: string): object | GoogleErrorAnswer {
  const b = typeof body === "object" && body !== null ? (body as Record<string, unknown>) : {};
  for (const k of Object.keys(b)) if (k !== "contents" && k !== "generateContentRequest") return googleErrors.unknownField(k, "");
  if (b["contents"] !== undefined && b["generateContentRequest"] !== undefined) {
    return googleErrors.invalid("contents and generate_content_request cannot both be set.");
  }
  let request = b["generateContentRequest"];
  if (request === undefined) request = { contents: b["contents"] };
  else {
    const { model: named, ...rest } = typeof request === "object" && request !== null ? (request as Record<string, unknown>) : {};
    if (named !== `models/${model}`) return googleErrors.invalid(`* CountTokensRequest.generate_content_request.model: model must be the same as the request model (models/${model})\n`);
    request = rest;
  }
  const parsed = parseGenerate(request);
  if ("status" in parsed) return parsed;
  const total = planGenerate(parsed).promptTokens;
  return { totalTokens: total, promptTokensDetails: [{ modality: "TEXT", tokenCount: total }] };
}

function usageOf(plan: Plan): object {
  const candidates = (plan.text ? estimate(plan.text) : 0) + (plan.call ? estimate(JSON.stringify(plan.call)) : 0);
  const thoughts = plan.thought ? estimate(plan.thought) : 0;
  const perCandidate = candidates * plan.candidateCount;
  return {
    promptTokenCount: plan.promptTokens,
    candidatesTokenCount: perCandidate,
    totalTokenCount: plan.promptTokens + perCandidate + thoughts,
    ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
    promptTokensDetails: [{ modality: "TEXT", tokenCount: plan.promptTokens }],
  };
}

function partsOf(plan: Plan): object[] {
  return [
    ...(plan.thought ? [{ text: plan.thought, thought: true }] : []),
    ...(plan.text ? [{ text: plan.text }] : []),
    ...(plan.call ? [{ functionCall: plan.call }] : []),
  ];
}

function safety(): object[] {
  return [
    { category: "HARM_CATEGORY_HARASSMENT", probability: "NEGLIGIBLE" },
    { category: "HARM_CATEGORY_DANGEROUS_CONTENT", probability: "HIGH", blocked: true },
  ];
}

/** A deterministic unit-ish vector from the text. */
export function fakeEmbedding(text: string, dims: number): number[] {
  let h = 2166136261;
  for (const ch of text) h = Math.imul(h ^ ch.codePointAt(0)!, 16777619);
  return Array.from({ length: dims }, (_, i) => Math.round(Math.sin(h + i) * 1e6) / 1e6);
}
