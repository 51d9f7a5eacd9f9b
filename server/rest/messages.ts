import { GatewayError } from "../errors/errors.ts";
import { toAnthropicError } from "../wire/anthropic/errors.ts";
import { decodeMessagesRequest } from "../wire/anthropic/request-decode.ts";
import { encodeMessagesResponse } from "../wire/anthropic/response.ts";
import { createStreamEncoder, sseFrame } from "../wire/anthropic/stream-encode.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, retryHeaders, sendJson, type Req, type Res } from "./http.ts";
import { startSse, writeFrame } from "./sse.ts";

/**
 * POST /v1/messages, Anthropic's Messages API, for any provider: the request
 * is decoded to the canonical form, runs the same pipeline as every other
 * entry, and the answer (from Anthropic, OpenAI, or anything else) is encoded
 * in Anthropic's format. Errors are Anthropic's error JSON with Anthropic's
 * statuses (see wire/anthropic/errors.ts); after the stream started they are
 * an `event: error` and the stream ends without message_stop. The request id
 * goes out as `request-id` (what Anthropic SDKs read) and `x-request-id`.
 */
export async function handleMessages(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  try {
    await serve(req, res, deps, startedAt);
  } catch (err) {
    const e = GatewayError.from(err);
    if (e.code === "internal" && !(err instanceof GatewayError)) deps.logger.error("internal error in /v1/messages", { error: err });
    sendAnthropicError(res, e);
  }
}

async function serve(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  res.setHeader("request-id", entry.requestId);
  const body = await readJsonBody(req, deps.maxBodyBytes);
  const { request, stream } = decodeMessagesRequest(body);

  if (!stream) {
    const completion = await deps.pipeline.complete(request, entry);
    sendJson(res, 200, encodeMessagesResponse(completion), gatewayHeaders(completion.gateway));
    return;
  }

  // Usage always: Anthropic's message_delta carries it.
  const chunks = await deps.pipeline.stream(request, { includeUsage: true }, entry);
  const encoder = createStreamEncoder();
  let started = false;
  try {
    for await (const chunk of chunks) {
      const frames = encoder.push(chunk);
      if (!started) {
        startSse(res, gatewayHeaders(chunk.gateway));
        started = true;
      }
      for (const f of frames) {
        const wait = writeFrame(res, f);
        if (wait) await wait;
      }
      if (entry.signal.aborted) break;
    }
    if (!entry.signal.aborted) {
      const frames = encoder.end();
      if (!started) startSse(res, {});
      for (const f of frames) res.write(f);
    }
    res.end();
  } catch (err) {
    const e = GatewayError.from(err);
    if (!started) throw e; // nothing sent yet: an ordinary HTTP error
    if (!entry.signal.aborted) res.write(sseFrame("error", { ...toAnthropicError(e).body }));
    res.end();
  }
}

/** Anthropic's error JSON with Anthropic's status, and its `request-id` header, unless the response has started. */
export function sendAnthropicError(res: Res, err: GatewayError): void {
  if (res.headersSent || res.destroyed) return;
  const { status, body } = toAnthropicError(err);
  const headers: Record<string, string> = {};
  const id = res.getHeader("x-request-id");
  if (typeof id === "string") headers["request-id"] = id;
  sendJson(res, status, body, { ...headers, ...retryHeaders(err) });
}
