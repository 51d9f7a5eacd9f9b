import { GatewayError } from "../errors/errors.ts";
import { isFinalEvent, type ResponsesApi } from "../responses/service.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { endWithFrame, sendNow, startSse, writeFrame } from "./sse.ts";


/**
 * POST /v1/responses, OpenAI's Responses API, for every provider: the REST
 * face of server/responses/service.ts. A Response object as JSON, or with
 * `stream: true` its typed events as SSE; errors before the first event are
 * ordinary HTTP errors, a failure after it ends the stream with
 * `response.failed`.
 */
export async function handleResponses(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  entry.api = "responses";
  const responses = api(deps);
  const body = await readJsonBody(req, deps.maxBodyBytes);
  // The decoder checks `stream` itself; anything but `true` is a plain request (or refused there).
  if (!(typeof body === "object" && body !== null && (body as Record<string, unknown>)["stream"] === true)) {
    const { response, gateway } = await responses.create(body, entry);
    return sendJson(res, 200, response, gatewayHeaders(gateway));
  }
  const events = await responses.stream(body, entry);
  startSse(res, gatewayHeaders(events.gateway));
  let first = true;
  for await (const batch of events) {
    const frames = batch.length === 1 ? batch[0]!.frame : batch.map((e) => e.frame).join("");
    if (isFinalEvent(batch[batch.length - 1]!.type)) {
      // The caller has the whole stream now; the loop goes on only while the service stores it (issue 13).
      endWithFrame(res, frames);
      continue;
    }
    const wait = writeFrame(res, frames);
    if (first) sendNow(res); // headers, response.created and response.in_progress: one packet, at once
    first = false;
    if (wait) await wait;
  }
  if (!res.writableEnded) res.end();
}

/** GET /v1/responses/{id}, GET /v1/responses/{id}/input_items, DELETE /v1/responses/{id}: the caller's own stored responses only. */
export async function handleStoredResponse(req: Req, res: Res, deps: RestDeps, startedAt: number, id: string, part: "" | "input_items"): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const responses = api(deps);
  const method = req.method ?? "GET";
  if (method === "DELETE" && part === "") {
    await responses.remove(id, entry);
    return sendJson(res, 200, { id, object: "response", deleted: true });
  }
  if (method !== "GET") throw new GatewayError("method_not_allowed", `${method} is not allowed on this path; use GET${part === "" ? " or DELETE" : ""}`);
  sendJson(res, 200, part === "" ? await responses.get(id, entry) : await responses.inputItems(id, entry));
}

function api(deps: RestDeps): ResponsesApi {
  if (deps.responses === undefined) throw new GatewayError("not_found", "the Responses API is not enabled on this gateway");
  return deps.responses;
}
