import type { ChatCompletion } from "../../gen/switchyard/v1/chat_pb.ts";
import type { GatewayInfo } from "../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import { toOpenAIError } from "../errors/to-openai.ts";
import { decodeChatRequest } from "../wire/openai/chat-request.ts";
import { encodeChatChunk, encodeChatCompletion } from "../wire/openai/chat-response.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { startSse, writeEvent } from "./sse.ts";

/**
 * POST /v1/chat/completions, OpenAI's Chat Completions API. Errors before the
 * stream starts are ordinary HTTP errors; after the first byte the status is
 * already 200, so a failure ends the stream with an `{"error":...}` event and
 * no `[DONE]`, and clients see it as an error, never as a clean finish.
 */
export async function handleChatCompletions(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const body = await readJsonBody(req, deps.maxBodyBytes);
  const { request, stream } = decodeChatRequest(body);

  if (!stream.stream) {
    const completion: ChatCompletion = await deps.pipeline.complete(request, entry);
    sendJson(res, 200, encodeChatCompletion(completion), gatewayHeaders(completion.gateway));
    return;
  }

  const chunks = await deps.pipeline.stream(request, { includeUsage: stream.includeUsage }, entry);
  let started = false;
  try {
    for await (const chunk of chunks) {
      if (!started) {
        startSse(res, gatewayHeaders(chunk.gateway));
        started = true;
      }
      const wait = writeEvent(res, JSON.stringify(encodeChatChunk(chunk)));
      if (wait) await wait;
      if (entry.signal.aborted) break;
    }
    if (!started) startSse(res, {});
    if (!entry.signal.aborted) res.write("data: [DONE]\n\n");
    res.end();
  } catch (err) {
    const e = GatewayError.from(err);
    if (!started) throw e; // nothing sent yet: an ordinary HTTP error
    if (!entry.signal.aborted) res.write(`data: ${JSON.stringify(toOpenAIError(e).body)}\n\n`);
    res.end();
  }
}

/** Response headers that say how the gateway served the request. */
export function gatewayHeaders(g: GatewayInfo | undefined): Record<string, string> {
  if (g === undefined) return {};
  const h: Record<string, string> = {
    "x-switchyard-provider": g.provider,
    "x-switchyard-model": g.model,
    "x-switchyard-attempts": String(g.attempts),
    "x-switchyard-tried": g.tried.join(","),
  };
  if (g.cache !== "") h["x-switchyard-cache"] = g.cache;
  if (g.cacheSimilarity !== undefined) h["x-switchyard-cache-similarity"] = g.cacheSimilarity.toFixed(4);
  return h;
}
