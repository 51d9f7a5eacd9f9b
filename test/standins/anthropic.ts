/**
 * A stand-in Anthropic API server for tests (node:http, loopback only).
 *
 * Speaks the Messages API as documented (https://docs.anthropic.com/en/api):
 * `POST /v1/messages` (JSON or, with `stream: true`, the SSE event sequence
 * `event: <type>\ndata: <json>`), `POST /v1/messages/count_tokens`
 * (`{"input_tokens"}`: the prompt figure of a messages answer's usage, with
 * no cache deduction), `GET /v1/models`; `x-api-key` and
 * `anthropic-version` headers are required; errors are
 * `{"type":"error","error":{"type","message"}}` with Anthropic's statuses, and
 * `request-id` is on every answer. Validation is strict where the gateway's
 * encoding matters: roles must alternate, every tool_use needs its
 * tool_result in the next message, images need a known media type, the prompt
 * has a size limit ("prompt is too long"). Failures are injected with
 * `setBehavior`, like the OpenAI stand-in. Content is deterministic (see
 * anthropic/messages.ts `planMessage`).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import {
  defaultErrorFor,
  errorAnswer,
  newId,
  parseMessagesRequest,
  planMessage,
  promptEstimate,
  renderEvents,
  renderMessage,
  type AnthropicErrorType,
  type ErrorAnswer,
} from "./anthropic/messages.ts";
import { BehaviorSlot, type BehaviorScope } from "./shared/behavior.ts";
import { cutConnection, type Exchange as BaseExchange, pause, readBody, StandinLifecycle, write } from "./shared/lifecycle.ts";

export interface AnthropicStandinOptions {
  /** Accepted x-api-key values. Default `["sk-ant-test"]`. */
  apiKeys?: string[];
  /** Model ids that exist. Default `["claude-sonnet-4-5", "claude-haiku-4-5"]`. */
  models?: string[];
  /** Characters per text / input_json delta. Default 4. */
  streamChunkChars?: number;
  /** Above this prompt estimate the answer is 400 "prompt is too long". Default 200 000. */
  maxPromptTokens?: number;
}

/**
 * A failure to inject on the next authenticated requests:
 * - `status`: that status with Anthropic's body for it (429 sends retry-after).
 * - `hang`: never answer. `delay`: wait `ms`, then answer normally.
 * - `stream-cut`: send `afterEvents` events, then destroy the socket.
 * - `stream-error`: send `afterEvents` events, then `event: error` (default overloaded_error) and end.
 * - `slow-stream`: wait `gapMs` before every event after the first.
 * - `refusal`: answer with stop_reason "refusal" (the model declined).
 */
export type Behavior = BehaviorScope & (
  | { kind: "status"; status: number; body?: object; headers?: Record<string, string> }
  | { kind: "hang" }
  | { kind: "delay"; ms: number }
  | { kind: "stream-cut"; afterEvents: number }
  | { kind: "stream-error"; afterEvents: number; error?: { type: AnthropicErrorType; message: string } }
  | { kind: "slow-stream"; gapMs: number }
  | { kind: "refusal" }
);

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  headers: IncomingHttpHeaders;
  body: unknown;
  receivedAt: number;
  /** The client's port: requests that share it came over one kept-alive connection. */
  remotePort: number | undefined;
}

export interface AnthropicStandin {
  /** Base URL without a version path, e.g. `http://127.0.0.1:40123` (Anthropic's baseURL). */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests whose client left before the answer finished. */
  readonly aborted: number;
  /** Cache usage reported on every answer (input_tokens is reduced by it, as Anthropic counts). */
  cache: { read: number; creation: number };
  /** `Date.now()` of each stream event of the last streamed answer. */
  readonly eventTimes: number[];
  setBehavior(b: Behavior | null): void;
  waitForAborted(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

interface Exchange extends BaseExchange {
  requestId: string;
}

export async function startAnthropicStandin(opts: AnthropicStandinOptions = {}): Promise<AnthropicStandin> {
  const apiKeys = new Set(opts.apiKeys ?? ["sk-ant-test"]);
  const modelIds = opts.models ?? ["claude-sonnet-4-5", "claude-haiku-4-5"];
  const models = new Set(modelIds);
  const chunkChars = Math.max(1, opts.streamChunkChars ?? 4);
  const maxPromptTokens = opts.maxPromptTokens ?? 200_000;
  const requests: RecordedRequest[] = [];
  const eventTimes: number[] = [];
  const life = new StandinLifecycle();
  const behavior = new BehaviorSlot<Behavior>();
  const state = { cache: { read: 0, creation: 0 } };

  function sendJson(x: Exchange, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    x.res.writeHead(status, {
      "request-id": x.requestId,
      "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
      ...headers,
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
    });
    x.res.end(text);
  }

  const sendError = (x: Exchange, e: ErrorAnswer): void => sendJson(x, e.status, e.body, e.headers);

  async function sendStream(x: Exchange, events: ReturnType<typeof renderEvents>, fault: Behavior | null): Promise<void> {
    x.res.writeHead(200, { "request-id": x.requestId, "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    x.res.flushHeaders();
    eventTimes.length = 0;
    const stopAt = fault?.kind === "stream-cut" || fault?.kind === "stream-error" ? Math.min(fault.afterEvents, events.length) : -1;
    for (let i = 0; i <= events.length; i++) {
      if (fault?.kind === "slow-stream" && i > 0 && i < events.length && !(await pause(x, fault.gapMs))) return;
      if (x.gone.signal.aborted) return;
      if (i === stopAt && fault?.kind === "stream-cut") {
        cutConnection(x);
        return;
      }
      if (i === stopAt && fault?.kind === "stream-error") {
        const error = fault.error ?? { type: "overloaded_error", message: "Overloaded" };
        x.res.end(`event: error\ndata: ${JSON.stringify({ type: "error", error })}\n\n`);
        return;
      }
      if (i === events.length) break;
      const e = events[i]!;
      eventTimes.push(Date.now());
      await write(x, `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`);
    }
    x.res.end();
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x: Exchange = life.open(req, res, { requestId: newId.request() });
    const raw = (await readBody(req))?.toString("utf8");
    if (raw === undefined) return;
    const [path = "/", query = ""] = (req.url ?? "/").split(/\?(.*)/s, 2);
    let body: unknown;
    let badJson = false;
    if (raw.trim() !== "") {
      try {
        body = JSON.parse(raw);
      } catch {
        badJson = true;
        body = raw;
      }
    }
    const method = req.method ?? "GET";
    requests.push({ method, path, query: query ? `?${query}` : "", headers: req.headers, body, receivedAt: Date.now(), remotePort: req.socket.remotePort });

    const key = req.headers["x-api-key"];
    if (typeof key !== "string" || key === "") return sendError(x, errorAnswer(401, "authentication_error", "x-api-key header is required"));
    if (!apiKeys.has(key)) return sendError(x, errorAnswer(401, "authentication_error", "invalid x-api-key"));
    if (typeof req.headers["anthropic-version"] !== "string") return sendError(x, errorAnswer(400, "invalid_request_error", "anthropic-version: header is required"));

    const fault = behavior.take(path);
    if (fault?.kind === "hang") return;
    if (fault?.kind === "status") {
      const base = defaultErrorFor(fault.status);
      return sendJson(x, fault.status, fault.body ?? base.body, { ...base.headers, ...fault.headers });
    }
    if (fault?.kind === "delay" && !(await pause(x, fault.ms))) return;

    if (method === "GET" && path === "/v1/models") {
      const data = modelIds.map((id, i) => ({ type: "model", id, display_name: id.replace(/-/g, " "), created_at: new Date(Date.UTC(2025, 0, 1 + i)).toISOString() }));
      return sendJson(x, 200, { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null });
    }
    if (method === "POST" && path === "/v1/messages") {
      if (badJson) return sendError(x, errorAnswer(400, "invalid_request_error", "There was an error parsing the body of your request."));
      const parsed = parseMessagesRequest(body, models, maxPromptTokens);
      if (!parsed.ok) return sendError(x, parsed.error);
      const plan = planMessage(parsed.value, state.cache, fault?.kind === "refusal");
      if (!parsed.value.stream) {
        if (fault?.kind === "stream-error") return sendError(x, errorAnswer(529, fault.error?.type ?? "overloaded_error", fault.error?.message ?? "Overloaded"));
        return sendJson(x, 200, renderMessage(plan));
      }
      return sendStream(x, renderEvents(plan, chunkChars), fault);
    }
    if (method === "POST" && path === "/v1/messages/count_tokens") {
      if (badJson) return sendError(x, errorAnswer(400, "invalid_request_error", "There was an error parsing the body of your request."));
      const parsed = parseMessagesRequest(body, models, maxPromptTokens, true);
      if (!parsed.ok) return sendError(x, parsed.error);
      return sendJson(x, 200, { input_tokens: promptEstimate(parsed.value.raw) });
    }
    return sendError(x, errorAnswer(404, "not_found_error", "Not Found"));
  }

  const port = await life.listen(handle);

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    eventTimes,
    get aborted() {
      return life.aborted;
    },
    get cache() {
      return state.cache;
    },
    set cache(c) {
      state.cache = c;
    },
    setBehavior: (b) => behavior.set(b),
    waitForAborted: (count, timeoutMs) => life.waitForAborted(count, timeoutMs),
    close: () => life.close(),
  };
}
