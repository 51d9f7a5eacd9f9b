import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { MessageSchema, Role, type ChatCompletion } from "../../gen/switchyard/v1/chat_pb.ts";
import { StreamAssembler } from "../cache/replay.ts";
import { GatewayError } from "../errors/errors.ts";
import { tenantScope, type ScopeLevel } from "../governance/scope.ts";
import type { ResponseStore } from "../responses/store.ts";
import { decodeResponsesRequest, untranslatable, type DecodedResponsesRequest } from "../wire/openai/responses-request.ts";
import { echoRequest, encodeResponse, newItemId, newResponseId, responseErrorCode } from "../wire/openai/responses-response.ts";
import { createResponsesStreamEncoder } from "../wire/openai/responses-stream.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { startSse, writeFrame } from "./sse.ts";

/** Where stored responses live and who may read them. */
export interface ResponsesDeps {
  store: ResponseStore;
  scope: ScopeLevel;
  ttlMs: number;
}

/**
 * POST /v1/responses, OpenAI's Responses API, for every provider: the
 * request is decoded to the canonical chat request (a previous response's
 * conversation first, when `previous_response_id` names one of the caller's
 * own), runs the one pipeline, and the answer is encoded as a Response
 * object or its typed event stream. With `store` (the default) the response
 * and its conversation are kept for follow-ups and GET/DELETE.
 */
export async function handleResponses(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  entry.api = "responses";
  const r = need(deps);
  const decoded = decodeResponsesRequest(await readJsonBody(req, deps.maxBodyBytes));
  // Every provider is reached through the canonical request (OpenAI's own Responses service is not
  // passed through yet), so what it cannot carry is refused up front, by name.
  const cannot = untranslatable(decoded.raw);
  if (cannot !== undefined) throw new GatewayError("unsupported", `${cannot}; this gateway translates the Responses API for every provider and cannot carry it`);
  const scope = tenantScope(entry.principal, r.scope);
  await continueFrom(decoded, r, scope);
  const id = newResponseId();
  const createdAt = Math.floor(Date.now() / 1000);
  const echo = echoRequest(decoded.raw);

  if (!decoded.stream) {
    const completion = await deps.pipeline.complete(decoded.request, entry);
    const response = encodeResponse(completion, { id, createdAt, request: echo });
    if (decoded.store) await keep(r, scope, id, decoded, completion, response);
    sendJson(res, 200, response, gatewayHeaders(completion.gateway));
    return;
  }

  const chunks = await deps.pipeline.stream(decoded.request, { includeUsage: true }, entry);
  const encoder = createResponsesStreamEncoder({ id, createdAt, request: echo });
  const whole = decoded.store ? new StreamAssembler() : undefined;
  let started = false;
  let last: string | undefined;
  const send = async (frames: string[]): Promise<void> => {
    for (const f of frames) {
      last = f;
      const wait = writeFrame(res, f);
      if (wait) await wait;
    }
  };
  try {
    for await (const chunk of chunks) {
      if (!started) {
        startSse(res, gatewayHeaders(chunk.gateway));
        started = true;
      }
      whole?.push(chunk);
      await send(encoder.push(chunk));
      if (entry.signal.aborted) break;
    }
    if (!entry.signal.aborted) {
      if (!started) startSse(res, {});
      started = true;
      await send(encoder.end());
      const completion = whole?.result();
      const response = last === undefined ? undefined : finalResponse(last);
      if (completion !== undefined && response !== undefined) await keep(r, scope, id, decoded, completion, response);
    }
    res.end();
  } catch (err) {
    const e = GatewayError.from(err);
    if (!started) throw e; // nothing sent yet: an ordinary HTTP error
    if (!entry.signal.aborted) for (const f of encoder.fail({ code: responseErrorCode(e.code), message: e.message })) res.write(f);
    res.end();
  }
}

/** GET /v1/responses/{id}, GET /v1/responses/{id}/input_items, DELETE /v1/responses/{id}: the caller's own stored responses only. */
export async function handleStoredResponse(req: Req, res: Res, deps: RestDeps, startedAt: number, id: string, part: "" | "input_items"): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const r = need(deps);
  const scope = tenantScope(entry.principal, r.scope);
  const method = req.method ?? "GET";
  if (method === "DELETE" && part === "") {
    if (!(await r.store.delete(id, scope))) throw notFound(id);
    return sendJson(res, 200, { id, object: "response", deleted: true });
  }
  if (method !== "GET") throw new GatewayError("method_not_allowed", `${method} is not allowed on this path; use GET${part === "" ? " or DELETE" : ""}`);
  const stored = await r.store.get(id, scope, Date.now());
  if (stored === undefined) throw notFound(id);
  if (part === "") return sendJson(res, 200, stored.response);
  // Newest first, as OpenAI lists them by default.
  const data = [...stored.inputItems].reverse();
  sendJson(res, 200, { object: "list", data, first_id: data[0]?.["id"] ?? null, last_id: data.at(-1)?.["id"] ?? null, has_more: false });
}

function need(deps: RestDeps): ResponsesDeps {
  if (deps.responses === undefined) throw new GatewayError("not_found", "the Responses API is not enabled on this gateway");
  return deps.responses;
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
  const history = prev.conversation.map((m) => fromJson(MessageSchema, m as JsonValue));
  const msgs = d.request.messages;
  const lead = typeof d.raw["instructions"] === "string" && d.raw["instructions"] !== "" && msgs[0]?.role === Role.SYSTEM ? 1 : 0;
  d.request.messages = [...msgs.slice(0, lead), ...history, ...msgs.slice(lead)];
}

/** Keeps a response with the conversation it ends (instructions excluded), for follow-ups on any provider. */
async function keep(r: ResponsesDeps, scope: string, id: string, d: DecodedResponsesRequest, c: ChatCompletion, response: Record<string, unknown>): Promise<void> {
  const msgs = d.request.messages;
  const lead = typeof d.raw["instructions"] === "string" && d.raw["instructions"] !== "" && msgs[0]?.role === Role.SYSTEM ? 1 : 0;
  // The request's messages already begin with the previous conversation.
  const conversation = msgs.slice(lead);
  const answer = c.choices.find((ch) => ch.index === 0)?.message;
  if (answer !== undefined) conversation.push(answer);
  const now = Date.now();
  try {
    await r.store.put({
      id,
      scope,
      createdAt: now,
      expiresAt: now + r.ttlMs,
      response,
      inputItems: inputItems(d.raw["input"]),
      conversation: conversation.map((m) => toJson(MessageSchema, m)),
    });
  } catch {
    // The answer is good; only follow-ups will miss it. The caller still gets it.
  }
}

/** The input as a list of items with ids, for GET …/input_items. */
function inputItems(input: unknown): Record<string, unknown>[] {
  const items: unknown[] = typeof input === "string" ? [{ type: "message", role: "user", content: [{ type: "input_text", text: input }] }] : Array.isArray(input) ? input : [];
  return items.map((it) => {
    const item = { ...(it as Record<string, unknown>) };
    if (item["type"] === undefined) item["type"] = "message";
    if (typeof item["id"] !== "string") item["id"] = newItemId(item["type"] === "function_call" ? "fc" : "msg");
    return item;
  });
}

/** The Response object inside the stream's last frame (response.completed or response.incomplete). */
function finalResponse(frame: string): Record<string, unknown> | undefined {
  const data = frame.slice(frame.indexOf("data: ") + 6).trim();
  try {
    const event = JSON.parse(data) as { type?: string; response?: Record<string, unknown> };
    return event.type === "response.completed" || event.type === "response.incomplete" ? event.response : undefined;
  } catch {
    return undefined;
  }
}
