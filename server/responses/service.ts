import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { MessageSchema, type ChatChunk, type ChatCompletion } from "../../gen/switchyard/v1/chat_pb.ts";
import type { GatewayInfo } from "../../gen/switchyard/v1/common_pb.ts";
import { StreamAssembler } from "../cache/replay.ts";
import { GatewayError } from "../errors/errors.ts";
import { tenantScope, type ScopeLevel } from "../governance/scope.ts";
import type { Entry, Pipeline } from "../pipeline/pipeline.ts";
import { decodeResponsesRequest, instructionsCount, untranslatable, withHistory, type DecodedResponsesRequest } from "../wire/openai/responses-request.ts";
import { echoRequest, encodeResponse, newItemId, newResponseId, responseErrorCode, type RequestEcho } from "../wire/openai/responses-response.ts";
import { createResponsesStreamEncoder } from "../wire/openai/responses-stream.ts";
import type { ResponseStore } from "./store.ts";

/** Where stored responses live and who may read them. */
export interface ResponsesDeps {
  store: ResponseStore;
  scope: ScopeLevel;
  ttlMs: number;
  /**
   * The provider id when a model is served by OpenAI's own Responses API:
   * such requests pass through untouched (built-in tools, unknown items,
   * `store` as sent). Undefined: translated through the canonical request.
   */
  passthrough?: ((model: string) => string | undefined) | undefined;
}

/** One event of a Responses stream. */
export interface ResponseEvent {
  /** The event's type, e.g. "response.output_text.delta". */
  readonly type: string;
  /** The event as the SSE `data` carries it (`type` and `sequence_number` included); parsed on first read. */
  readonly event: Record<string, unknown>;
  /** The event as one SSE frame, `event: <type>\ndata: <json>\n\n`, exactly as REST sends it. */
  readonly frame: string;
}

/**
 * A started Responses stream, in batches: each holds the events one
 * upstream chunk made (never none), so a transport can send them in one
 * write. It never throws: a failure after the first event ends it with
 * `response.failed` (nothing more when the caller went away). When `store`
 * is on, the response is kept before the iteration ends, after the batch
 * with the final event (`isFinalEvent`) was yielded: a transport that
 * finishes its response on that event keeps the store off its caller's path.
 */
export interface ResponseStream extends AsyncIterable<readonly ResponseEvent[]> {
  /** How the first chunk was served; undefined when the provider ended the stream without one. */
  readonly gateway: GatewayInfo | undefined;
}

const FINAL_EVENTS = new Set(["response.completed", "response.incomplete", "response.failed"]);

/** Whether an event type ends a Responses stream: nothing follows it. */
export function isFinalEvent(type: string): boolean {
  return FINAL_EVENTS.has(type);
}

/**
 * OpenAI's Responses API without a transport: REST (server/rest/responses.ts)
 * and RPC (server/rpc/responses.ts) are thin adapters over it, so both share
 * one behaviour and one store. Every method works in the caller's tenant
 * scope (server/governance/scope.ts) and throws GatewayErrors.
 */
export interface ResponsesApi {
  /** A finished Response object for a POST /v1/responses body (its `stream` is ignored). */
  create(body: unknown, entry: Entry): Promise<{ response: Record<string, unknown>; gateway: GatewayInfo | undefined }>;
  /**
   * The typed event stream for a POST /v1/responses body (its `stream` is
   * ignored). Resolves once the first chunk is in hand, so every error before
   * the first event is a rejection the transport reports as its own error.
   */
  stream(body: unknown, entry: Entry): Promise<ResponseStream>;
  /** A stored Response object; not_found when absent, expired or another tenant's. */
  get(id: string, entry: Entry): Promise<Record<string, unknown>>;
  /** Deletes a stored response; not_found when absent, expired or another tenant's. */
  remove(id: string, entry: Entry): Promise<void>;
  /** The input items of a stored response as OpenAI's list object, newest first. */
  inputItems(id: string, entry: Entry): Promise<Record<string, unknown>>;
}

/** A request decoded, checked and continued from its previous response, ready to run. */
interface Prepared {
  decoded: DecodedResponsesRequest;
  scope: string;
  id: string;
  /** Unix seconds. */
  createdAt: number;
  echo: RequestEcho;
}

/**
 * The Responses API for every provider: a request is decoded to the
 * canonical chat request (a previous response's conversation first, when
 * `previous_response_id` names one of the caller's own), runs the one
 * pipeline, and the answer is encoded as a Response object or its typed
 * event stream. With `store` (the default) the response and its
 * conversation are kept for follow-ups and get/remove.
 */
export function createResponsesApi(deps: { pipeline: Pipeline; responses: ResponsesDeps }): ResponsesApi {
  const { pipeline, responses: r } = deps;

  /**
   * Whether a request goes to OpenAI's own Responses API as it is: its model
   * is OpenAI's, or it continues a response that came from there (which
   * only that provider can continue: never silently elsewhere).
   */
  async function passthroughTo(decoded: DecodedResponsesRequest, entry: Entry): Promise<string | undefined> {
    const provider = r.passthrough?.(decoded.request.model);
    if (decoded.previousResponseId === undefined) return provider;
    const prev = await r.store.get(decoded.previousResponseId, tenantScope(entry.principal, r.scope), Date.now());
    // Unknown here (made at OpenAI directly, or not stored): OpenAI's models ask OpenAI, others get "not found".
    if (prev === undefined) return provider;
    if (prev.origin === undefined) return undefined; // ours, translated: continued on any provider
    if (provider !== prev.origin) {
      throw new GatewayError("invalid_request", `Previous response '${decoded.previousResponseId}' was made by provider '${prev.origin}', which keeps its conversation; continue it with one of that provider's models.`, { param: "previous_response_id" });
    }
    return provider;
  }

  /** Keeps what a passed-through response needs here: who made it and what it said (the provider keeps the conversation). */
  async function pin(provider: string, scope: string, raw: Record<string, unknown>, response: unknown): Promise<void> {
    const res = response as Record<string, unknown> | null;
    if (raw["store"] === false || res === null || typeof res["id"] !== "string") return;
    const now = Date.now();
    await r.store.put({ id: res["id"], scope, createdAt: now, expiresAt: now + r.ttlMs, response: res, inputItems: inputItemsOf(raw["input"]), conversation: [], origin: provider }).catch(() => undefined);
  }

  async function prepare(decoded: DecodedResponsesRequest, entry: Entry): Promise<Prepared> {
    // Every provider is reached through the canonical request (OpenAI's own Responses service is not
    // passed through yet), so what it cannot carry is refused up front, by name.
    const cannot = untranslatable(decoded.raw);
    if (cannot !== undefined) throw new GatewayError("unsupported", `${cannot}; this gateway translates the Responses API for every provider and cannot carry it`);
    const scope = tenantScope(entry.principal, r.scope);
    await continueFrom(decoded, r, scope);
    return { decoded, scope, id: newResponseId(), createdAt: Math.floor(Date.now() / 1000), echo: echoRequest(decoded.raw) };
  }

  async function* events(p: Prepared, it: AsyncIterator<ChatChunk>, first: IteratorResult<ChatChunk>, entry: Entry): AsyncGenerator<readonly ResponseEvent[]> {
    const encoder = createResponsesStreamEncoder({ id: p.id, createdAt: p.createdAt, request: p.echo });
    const whole = p.decoded.store ? new StreamAssembler() : undefined;
    let drained = false; // the upstream iterator ended or threw: nothing to let go of
    const pull = async (): Promise<IteratorResult<ChatChunk>> => {
      try {
        return await it.next();
      } catch (err) {
        drained = true;
        throw err;
      }
    };
    try {
      for (let next = first; !next.done; next = await pull()) {
        whole?.push(next.value);
        const frames = encoder.push(next.value);
        if (frames.length > 0) yield frames.map(toEvent);
        if (entry.signal.aborted) return;
      }
      drained = true;
      if (entry.signal.aborted) return;
      const closing = encoder.end();
      if (closing.length > 0) yield closing.map(toEvent);
      // Kept after the final event was yielded: REST has ended the response by then (isFinalEvent).
      const completion = whole?.result();
      const response = encoder.response;
      if (completion !== undefined && response !== undefined) await keep(r, p, completion, response.object, response.json);
    } catch (err) {
      if (entry.signal.aborted) return;
      const e = GatewayError.from(err);
      const frames = encoder.fail({ code: responseErrorCode(e.code), message: e.message });
      if (frames.length > 0) yield frames.map(toEvent);
    } finally {
      // Stopped early (caller gone, or the transport stopped reading): let go of the upstream request.
      if (!drained) await it.return?.().catch(() => undefined);
    }
  }

  /** The raw body with the provider's model name, for OpenAI's own Responses API. */
  function passBody(decoded: DecodedResponsesRequest, stream: boolean): Record<string, unknown> {
    const { fallbacks: _gatewayOnly, ...body } = decoded.raw;
    return { ...body, stream };
  }

  return {
    async create(body, entry) {
      entry.api = "responses";
      const decoded = decodeResponsesRequest(body);
      const provider = await passthroughTo(decoded, entry);
      if (provider !== undefined) {
        const out = await pipeline.forward("responses", passBody(decoded, false), entry);
        if (out.kind !== "json") throw new GatewayError("upstream_error", `provider '${provider}' answered a Responses request with a stream`);
        await pin(provider, tenantScope(entry.principal, r.scope), decoded.raw, out.json);
        return { response: out.json as Record<string, unknown>, gateway: out.gateway };
      }
      const p = await prepare(decoded, entry);
      const completion = await pipeline.complete(p.decoded.request, entry);
      const response = encodeResponse(completion, { id: p.id, createdAt: p.createdAt, request: p.echo });
      if (p.decoded.store) await keep(r, p, completion, response, undefined);
      return { response, gateway: completion.gateway };
    },
    async stream(body, entry) {
      entry.api = "responses";
      const decoded = decodeResponsesRequest(body);
      const provider = await passthroughTo(decoded, entry);
      if (provider !== undefined) {
        const out = await pipeline.forward("responses", passBody(decoded, true), entry);
        if (out.kind !== "stream") throw new GatewayError("upstream_error", `provider '${provider}' did not stream a streamed Responses request`);
        const gen = passedEvents(out.body, entry, (final) => pin(provider, tenantScope(entry.principal, r.scope), decoded.raw, final));
        return { gateway: out.gateway, [Symbol.asyncIterator]: () => gen };
      }
      const p = await prepare(decoded, entry);
      const chunks = await pipeline.stream(p.decoded.request, { includeUsage: true }, entry);
      const it = chunks[Symbol.asyncIterator]();
      const first = await it.next();
      const gen = events(p, it, first, entry);
      return { gateway: first.done ? undefined : first.value.gateway, [Symbol.asyncIterator]: () => gen };
    },
    async get(id, entry) {
      const stored = await r.store.get(id, tenantScope(entry.principal, r.scope), Date.now());
      if (stored === undefined) throw notFound(id);
      return stored.response;
    },
    async remove(id, entry) {
      if (!(await r.store.delete(id, tenantScope(entry.principal, r.scope)))) throw notFound(id);
    },
    async inputItems(id, entry) {
      const stored = await r.store.get(id, tenantScope(entry.principal, r.scope), Date.now());
      if (stored === undefined) throw notFound(id);
      // Newest first, as OpenAI lists them by default.
      const data = [...stored.inputItems].reverse();
      return { object: "list", data, first_id: data[0]?.["id"] ?? null, last_id: data.at(-1)?.["id"] ?? null, has_more: false };
    },
  };
}

/**
 * OpenAI's own event stream, frame by frame as it came (nothing re-encoded);
 * the final Response is kept (pinned) once `response.completed` has passed.
 */
async function* passedEvents(body: AsyncIterable<Uint8Array>, entry: Entry, keep: (response: unknown) => Promise<void>): AsyncGenerator<readonly ResponseEvent[]> {
  const decoder = new TextDecoder();
  let pending = "";
  let last: FrameEvent | undefined;
  for await (const chunk of body) {
    pending += decoder.decode(chunk, { stream: true }).replaceAll("\r\n", "\n");
    const batch: FrameEvent[] = [];
    for (let end = pending.indexOf("\n\n"); end !== -1; end = pending.indexOf("\n\n")) {
      const frame = pending.slice(0, end + 2);
      pending = pending.slice(end + 2);
      if (!frame.includes("data: ")) continue;
      batch.push((last = new FrameEvent(frame.startsWith("event: ") ? frame : `event: ${eventType(frame)}\n${frame}`)));
    }
    if (batch.length > 0) yield batch;
    if (entry.signal.aborted) return;
  }
  if (last !== undefined && last.type === "response.completed") await keep(last.event["response"]);
}

/** A frame without an `event:` line names its type in its data. */
function eventType(frame: string): string {
  try {
    return String((JSON.parse(frame.slice(frame.indexOf("data: ") + 6)) as { type?: unknown }).type ?? "message");
  } catch {
    return "message";
  }
}

/**
 * A frame from the stream encoder. REST sends the frame as it is, so only
 * RPC callers pay for parsing the event back (once, on first read); its
 * type is read when asked for (REST asks only the last of each batch).
 */
class FrameEvent implements ResponseEvent {
  readonly frame: string;
  #type: string | undefined;
  #event: Record<string, unknown> | undefined;

  constructor(frame: string) {
    this.frame = frame;
  }

  get type(): string {
    this.#type ??= this.frame.slice("event: ".length, this.frame.indexOf("\n"));
    return this.#type;
  }

  get event(): Record<string, unknown> {
    this.#event ??= JSON.parse(this.frame.slice(this.frame.indexOf("\ndata: ") + "\ndata: ".length)) as Record<string, unknown>;
    return this.#event;
  }
}

function toEvent(frame: string): ResponseEvent {
  return new FrameEvent(frame);
}

function notFound(id: string): GatewayError {
  return new GatewayError("not_found", `No response found with id '${id}'.`);
}

/**
 * The conversation a follow-up continues: the named response's (the
 * caller's own, still kept), placed after the new request's instructions
 * (a previous response's instructions are not carried over, as OpenAI does).
 */
async function continueFrom(d: DecodedResponsesRequest, r: ResponsesDeps, scope: string): Promise<void> {
  if (d.previousResponseId === undefined) return;
  const prev = await r.store.get(d.previousResponseId, scope, Date.now());
  if (prev === undefined) {
    throw new GatewayError("invalid_request", `Previous response with id '${d.previousResponseId}' not found.`, { param: "previous_response_id" });
  }
  d.request = withHistory(d, prev.conversation.map((m) => fromJson(MessageSchema, m as JsonValue)));
}

/** Keeps a response with the conversation it ends (instructions excluded), for follow-ups on any provider. */
async function keep(r: ResponsesDeps, p: Prepared, c: ChatCompletion, response: Record<string, unknown>, responseJson: string | undefined): Promise<void> {
  // The request's messages already begin with the previous conversation.
  const conversation = p.decoded.request.messages.slice(instructionsCount(p.decoded));
  const answer = c.choices.find((ch) => ch.index === 0)?.message;
  if (answer !== undefined) conversation.push(answer);
  const now = Date.now();
  try {
    await r.store.put({
      id: p.id,
      scope: p.scope,
      createdAt: now,
      expiresAt: now + r.ttlMs,
      response,
      responseJson,
      inputItems: inputItemsOf(p.decoded.raw["input"]),
      conversation: conversation.map((m) => toJson(MessageSchema, m)),
    });
  } catch {
    // The answer is good; only follow-ups will miss it. The caller still gets it.
  }
}

/** The input as a list of items with ids, for inputItems. */
function inputItemsOf(input: unknown): Record<string, unknown>[] {
  const items: unknown[] = typeof input === "string" ? [{ type: "message", role: "user", content: [{ type: "input_text", text: input }] }] : Array.isArray(input) ? input : [];
  return items.map((it) => {
    const item = { ...(it as Record<string, unknown>) };
    if (item["type"] === undefined) item["type"] = "message";
    if (typeof item["id"] !== "string") item["id"] = newItemId(item["type"] === "function_call" ? "fc" : "msg");
    return item;
  });
}

