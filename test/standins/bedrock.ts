/**
 * A stand-in AWS Bedrock Runtime (and the control plane's ListFoundationModels)
 * for tests (node:http, loopback only).
 *
 * Why: the Bedrock provider must be tested against something that checks what
 * real Bedrock checks — a SigV4 signature recomputed independently from the
 * received bytes (bedrock/sigv4.ts), Converse's validation rules — and that
 * answers in Bedrock's wire format: JSON with `x-amzn-ErrorType` errors, and
 * ConverseStream as `application/vnd.amazon.eventstream` binary messages
 * (encoded with EventStreamCodec, CRCs and all), with failures on demand.
 *
 * Routes: POST /model/{modelId}/converse, POST /model/{modelId}/converse-stream,
 * POST /model/{modelId}/invoke (Titan Text Embeddings), GET /foundation-models.
 */
import { EventStreamCodec } from "@smithy/eventstream-codec";
import { fromUtf8, toUtf8 } from "@smithy/util-utf8";
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { defaultErrorFor, estimateTokens, parseConverse, planConverse, renderEvents, renderResponse, titanEmbedding, validation, type BedrockError } from "./bedrock/converse.ts";
import { verifySigV4, type StandinCredentials } from "./bedrock/sigv4.ts";
import { BehaviorSlot } from "./shared/behavior.ts";
import { cutConnection, type Exchange, pause, readBody, StandinLifecycle, write } from "./shared/lifecycle.ts";

export type { StandinCredentials } from "./bedrock/sigv4.ts";

export interface BedrockStandinOptions {
  /** Credential sets that are accepted. Default one: AKIDSTANDIN0000000001 / "standin-secret". */
  credentials?: StandinCredentials[];
  /** Region the signature must be scoped to. Default "us-east-1". */
  region?: string;
  /** Model ids that exist. Default: a Claude model, an inference profile, Nova Lite, Titan embeddings v2. */
  models?: string[];
  /** Characters per streamed delta. Default 4. */
  streamChunkChars?: number;
  /** Context window in stand-in tokens (4 chars each); larger prompts get "Input is too long". Default 2000. */
  maxInputTokens?: number;
}

interface BehaviorScope {
  /** Apply to this many requests (after signature checks), then go back to normal. Default until reset. */
  times?: number;
}

/**
 * Failures to inject on the next correctly signed requests.
 * - `status`: answer `status` with Bedrock's error body; `type`/`message` override the defaults.
 * - `hang`: never answer.
 * - `delay`: wait `ms`, then answer normally.
 * - `guardrail`: the answer is a guardrail's: "Sorry, I can't help with that." with stopReason guardrail_intervened.
 * - `stream-cut`: send `afterEvents` events, then destroy the socket.
 * - `stream-end`: send `afterEvents` events, then end the body cleanly (a truncated but well-framed stream).
 * - `stream-error`: send `afterEvents` events, then an exception message (`exceptionType`, e.g. "throttlingException").
 * - `slow-stream`: wait `gapMs` before each event after the first.
 * - `split-frames`: write every event message in pieces of `pieceBytes`, `gapMs` apart (frames cross TCP writes).
 */
export type BedrockBehavior = BehaviorScope &
  (
    | { kind: "status"; status: number; type?: string; message?: string; headers?: Record<string, string> }
    | { kind: "hang" }
    | { kind: "delay"; ms: number }
    | { kind: "guardrail" }
    | { kind: "stream-cut"; afterEvents: number }
    | { kind: "stream-end"; afterEvents: number }
    | { kind: "stream-error"; afterEvents: number; exceptionType: string; message?: string }
    | { kind: "slow-stream"; gapMs: number }
    | { kind: "split-frames"; pieceBytes: number; gapMs: number }
  );

export interface BedrockRecordedRequest {
  method: string;
  /** Raw path as received (model ids stay percent-encoded). */
  path: string;
  /** Decoded model id, for /model/... routes. */
  modelId: string | undefined;
  headers: IncomingHttpHeaders;
  body: unknown;
  /** The access key id of a valid signature; undefined when the signature was refused. */
  signedBy: string | undefined;
  receivedAt: number;
}

export interface BedrockStandin {
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly credentials: readonly StandinCredentials[];
  readonly requests: BedrockRecordedRequest[];
  /** Requests whose client left before the answer finished. */
  readonly aborted: number;
  /** `Date.now()` when each stream event of the latest stream was written. */
  readonly eventTimes: number[];
  setBehavior(b: BedrockBehavior | null): void;
  waitForAborted(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export const DEFAULT_CREDENTIALS: StandinCredentials = { accessKeyId: "AKIDSTANDIN0000000001", secretAccessKey: "standin-secret" };
const DEFAULT_MODELS = ["anthropic.claude-3-5-sonnet-20240620-v1:0", "us.anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-lite-v1:0", "amazon.titan-embed-text-v2:0"];
const ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/";

export async function startBedrockStandin(opts: BedrockStandinOptions = {}): Promise<BedrockStandin> {
  const credentials = opts.credentials ?? [DEFAULT_CREDENTIALS];
  const region = opts.region ?? "us-east-1";
  const models = new Set(opts.models ?? DEFAULT_MODELS);
  const chunkChars = Math.max(1, opts.streamChunkChars ?? 4);
  const maxInputTokens = opts.maxInputTokens ?? 2000;
  const codec = new EventStreamCodec(toUtf8, fromUtf8);
  const requests: BedrockRecordedRequest[] = [];
  const life = new StandinLifecycle("bedrock stand-in");
  /** Bedrock behaviours have no `path`: they apply to every request. */
  const behavior = new BehaviorSlot<BedrockBehavior>();
  let eventTimes: number[] = [];

  function sendJson(x: Exchange, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    x.res.writeHead(status, { "x-amzn-requestid": randomUUID(), date: new Date().toUTCString(), ...extra, "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
    x.res.end(text);
  }

  function sendError(x: Exchange, e: BedrockError, extra: Record<string, string> = {}): void {
    sendJson(x, e.status, { message: e.message }, { "x-amzn-errortype": `${e.type}:${ERROR_NAMESPACE}`, ...extra });
  }

  function frame(headers: Record<string, string>, payload: unknown): Uint8Array {
    const h: Record<string, { type: "string"; value: string }> = {};
    for (const [k, v] of Object.entries(headers)) h[k] = { type: "string", value: v };
    return codec.encode({ headers: h, body: fromUtf8(JSON.stringify(payload)) });
  }

  async function sendStream(x: Exchange, events: [string, object][], fault: BedrockBehavior | null): Promise<void> {
    x.res.writeHead(200, { "x-amzn-requestid": randomUUID(), date: new Date().toUTCString(), "content-type": "application/vnd.amazon.eventstream", "x-amzn-bedrock-content-type": "application/json" });
    x.res.flushHeaders();
    eventTimes = [];
    const stopAt = fault?.kind === "stream-cut" || fault?.kind === "stream-end" || fault?.kind === "stream-error" ? Math.min(fault.afterEvents, events.length) : -1;
    for (let i = 0; i <= events.length; i++) {
      if (x.gone.signal.aborted) return;
      if (i === stopAt && fault?.kind === "stream-cut") {
        cutConnection(x);
        return;
      }
      if (i === stopAt && fault?.kind === "stream-end") break;
      if (i === stopAt && fault?.kind === "stream-error") {
        x.res.end(frame({ ":exception-type": fault.exceptionType, ":content-type": "application/json", ":message-type": "exception" }, { message: fault.message ?? defaultStreamMessage(fault.exceptionType) }));
        return;
      }
      if (i === events.length) break;
      if (fault?.kind === "slow-stream" && i > 0 && !(await pause(x, fault.gapMs))) return;
      const [type, payload] = events[i]!;
      const bytes = frame({ ":event-type": type, ":content-type": "application/json", ":message-type": "event" }, payload);
      if (fault?.kind === "split-frames") {
        for (let at = 0; at < bytes.length; at += fault.pieceBytes) {
          await write(x, bytes.subarray(at, at + fault.pieceBytes));
          if (!(await pause(x, fault.gapMs))) return;
        }
      } else {
        await write(x, bytes);
      }
      eventTimes.push(Date.now());
    }
    x.res.end();
  }

  async function route(x: Exchange, method: string, path: string, modelId: string | undefined, op: string | undefined, body: unknown, fault: BedrockBehavior | null): Promise<void> {
    if (fault?.kind === "delay" && !(await pause(x, fault.ms))) return;
    const started = Date.now();
    if (method === "GET" && path === "/foundation-models") {
      return sendJson(x, 200, {
        modelSummaries: [...models].filter((m) => !/^(us|eu|apac)\./.test(m)).map((modelId) => ({
          modelArn: `arn:aws:bedrock:${region}::foundation-model/${modelId}`,
          modelId,
          modelName: modelId,
          providerName: modelId.startsWith("amazon.") ? "Amazon" : "Anthropic",
          inputModalities: ["TEXT"],
          outputModalities: [modelId.includes("embed") ? "EMBEDDING" : "TEXT"],
          responseStreamingSupported: !modelId.includes("embed"),
          customizationsSupported: [],
          inferenceTypesSupported: ["ON_DEMAND"],
          modelLifecycle: { status: "ACTIVE" },
        })),
      });
    }
    if (method !== "POST" || modelId === undefined || op === undefined) return sendError(x, { status: 404, type: "UnknownOperationException", message: "Unknown operation" });
    if (!models.has(modelId)) return sendError(x, validation("The provided model identifier is invalid."));
    if (body === INVALID_JSON) return sendError(x, { status: 400, type: "SerializationException", message: "Unexpected character while parsing JSON" });
    if (op === "invoke") {
      if (!modelId.startsWith("amazon.titan-embed-text")) return sendError(x, validation("This stand-in invokes Titan Text Embeddings only."));
      const b = body as { inputText?: unknown; dimensions?: unknown };
      if (typeof b?.inputText !== "string" || b.inputText === "") return sendError(x, validation("Malformed input request: #: required key [inputText] not found, please reformat your input and try again."));
      const dims = b.dimensions ?? 1024;
      if (dims !== 256 && dims !== 512 && dims !== 1024) return sendError(x, validation(`Malformed input request: #/dimensions: ${String(dims)} is not a valid enum value, please reformat your input and try again.`));
      const embedding = titanEmbedding(b.inputText, dims);
      return sendJson(x, 200, { embedding, embeddingsByType: { float: embedding }, inputTextTokenCount: estimateTokens(b.inputText) });
    }
    if (op !== "converse" && op !== "converse-stream") return sendError(x, { status: 404, type: "UnknownOperationException", message: "Unknown operation" });
    const parsed = parseConverse(modelId, body, maxInputTokens);
    if (!parsed.ok) return sendError(x, parsed.error);
    const plan = planConverse(parsed.value);
    if (fault?.kind === "guardrail") Object.assign(plan, { text: "Sorry, I can't help with that.", toolUse: null, reasoning: null, stopReason: "guardrail_intervened" });
    if (op === "converse") return sendJson(x, 200, renderResponse(plan, Date.now() - started));
    return sendStream(x, renderEvents(plan, chunkChars, Date.now() - started), fault);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = life.open(req, res);
    const raw = await readBody(req);
    if (raw === undefined) return;
    const url = req.url ?? "/";
    const path = url.split("?")[0]!;
    const m = /^\/model\/([^/]+)\/([a-z-]+)$/.exec(path);
    const modelId = m ? decodeURIComponent(m[1]!) : undefined;
    const body = raw.length === 0 ? undefined : parseJson(raw.toString("utf8"));
    const verdict = verifySigV4({ method: req.method ?? "GET", url, headers: req.headers, body: raw }, credentials, region, "bedrock");
    requests.push({ method: req.method ?? "GET", path, modelId, headers: req.headers, body, signedBy: verdict.ok ? verdict.accessKeyId : undefined, receivedAt: Date.now() });
    if (!verdict.ok) return sendError(x, { status: 403, type: verdict.type, message: verdict.message });

    const fault = behavior.take(path);
    if (fault?.kind === "hang") return;
    if (fault?.kind === "status") {
      const base = defaultErrorFor(fault.status);
      return sendError(x, { status: fault.status, type: fault.type ?? base.type, message: fault.message ?? base.message }, fault.headers);
    }
    await route(x, req.method ?? "GET", path, modelId, m?.[2], body, fault);
  }

  const port = await life.listen(handle);

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    region,
    credentials,
    requests,
    get aborted() {
      return life.aborted;
    },
    get eventTimes() {
      return eventTimes;
    },
    setBehavior: (b) => behavior.set(b),
    waitForAborted: (count, timeoutMs) => life.waitForAborted(count, timeoutMs),
    close: () => life.close(),
  };
}

function defaultStreamMessage(type: string): string {
  switch (type) {
    case "throttlingException": return "Too many tokens, please wait before trying again.";
    case "modelStreamErrorException": return "The model returned an error while streaming.";
    case "validationException": return "Input is too long for requested model.";
    case "serviceUnavailableException": return "Bedrock is unable to process your request.";
    default: return "The server encountered an internal error while processing the request.";
  }
}

const INVALID_JSON: unique symbol = Symbol("invalid JSON");

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return INVALID_JSON;
  }
}
