import { createParser, type EventSourceMessage } from "eventsource-parser";
import { FinishReason, Role, type ChatChunk, type ChoiceDelta } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { parseStreamEvent, type OpenStream } from "../shared/upstream.ts";
import { asGoogleError, geminiStreamError } from "./errors.ts";
import { finishReason, promptBlocked, readParts, toUsage } from "./from-gemini.ts";
import type { GeminiGenerateContentResponse } from "./wire.ts";

/**
 * streamGenerateContent?alt=sse -> canonical chunks, one per event, as each
 * arrives. Every event is a whole GenerateContentResponse holding the new
 * parts; function calls arrive whole (one ToolCallDelta with id, name and all
 * arguments). There is no [DONE]: the stream is complete when every candidate
 * has had a finishReason and the body ends; a body that ends earlier is a cut
 * stream (upstream_error). usageMetadata rides on the events (the last one
 * counts) and is yielded as a final usage chunk.
 *
 * Errors mid-stream come as `data: {"error":{...}}`, or (as Google's SDKs
 * also expect) as a bare JSON error object in the body, outside SSE framing.
 */
export async function* geminiChunks(provider: string, requestModel: string, stream: OpenStream): AsyncGenerator<ChatChunk> {
  let completed = false;
  const queue: EventSourceMessage[] = [];
  // Lines outside SSE framing (the bare-JSON error case) are reported as unknown fields.
  let unframed = "";
  const parser = createParser({
    onEvent: (e) => queue.push(e),
    onError: (err) => {
      if (err.type === "unknown-field" && err.line !== undefined) unframed += `${err.line}\n`;
    },
  });
  const started = new Set<number>();
  const finished = new Set<number>();
  const callsSoFar = new Map<number, number>();
  let usage: Usage | undefined;
  let id = "";
  let model = requestModel;
  const created = BigInt(Math.floor(Date.now() / 1000));

  const chunk = (choices: ChoiceDelta[], u?: Usage): ChatChunk => ({
    $typeName: "switchyard.v1.ChatChunk", id, created, model, choices, usage: u, systemFingerprint: "", gateway: undefined,
  });

  try {
    stream.body.setEncoding("utf8");
    for await (const text of stream.body as AsyncIterable<string>) {
      parser.feed(text);
      while (queue.length > 0) {
        const event = queue.shift()!;
        const payload = parseStreamEvent(event.data, provider);
        const error = asGoogleError(payload);
        if (error) throw geminiStreamError(provider, error);
        if (typeof payload !== "object" || payload === null || Array.isArray(payload)) {
          throw new GatewayError("upstream_error", `provider '${provider}' sent a stream event that is not an object`);
        }
        const body = payload as GeminiGenerateContentResponse;
        const blocked = promptBlocked(body);
        if (blocked) throw blocked;
        if (typeof body.responseId === "string") id = body.responseId;
        if (typeof body.modelVersion === "string" && body.modelVersion !== "") model = body.modelVersion;
        if (body.usageMetadata !== undefined) usage = toUsage(body.usageMetadata);
        const choices: ChoiceDelta[] = [];
        for (const [i, c] of (Array.isArray(body.candidates) ? body.candidates : []).entries()) {
          const index = typeof c?.index === "number" ? c.index : i;
          const first = callsSoFar.get(index) ?? 0;
          const parts = readParts(c?.content?.parts, `candidates[${i}].content.parts`, first);
          callsSoFar.set(index, first + parts.calls.length);
          const reason = finishReason(c?.finishReason, (callsSoFar.get(index) ?? 0) > 0);
          if (reason !== FinishReason.UNSPECIFIED) finished.add(index);
          choices.push({
            $typeName: "switchyard.v1.ChoiceDelta",
            index,
            delta: {
              $typeName: "switchyard.v1.Delta",
              role: started.has(index) ? Role.UNSPECIFIED : Role.ASSISTANT,
              content: parts.text === "" ? undefined : parts.text,
              toolCalls: parts.calls.map((t, k) => ({
                $typeName: "switchyard.v1.ToolCallDelta",
                index: first + k,
                id: t.id,
                name: t.function?.name ?? "",
                arguments: t.function?.arguments ?? "{}",
              })),
              refusal: undefined,
              reasoningContent: parts.thoughts === "" ? undefined : parts.thoughts,
            },
            finishReason: reason,
            extra: undefined,
          });
          started.add(index);
        }
        if (choices.length > 0) yield chunk(choices);
      }
      // After the events that came before it, so they reach the caller first.
      const bare = bareError(unframed);
      if (bare) throw geminiStreamError(provider, bare);
    }
    const bare = bareError(unframed, true);
    if (bare) throw geminiStreamError(provider, bare);
    if (started.size === 0 || finished.size < started.size) {
      throw new GatewayError("upstream_error", `provider '${provider}' ended the stream before it was complete`);
    }
    completed = true;
    if (usage) yield chunk([], usage);
  } catch (err) {
    throw err instanceof GatewayError ? err : stream.failure(err);
  } finally {
    stream.release(completed);
  }
}

/** A Google error object in the unframed text, once it parses (or, at the end, whatever there is). */
function bareError(text: string, atEnd = false): ReturnType<typeof asGoogleError> {
  const t = text.trim();
  if (t === "" || (!atEnd && !/[}\]]$/.test(t))) return undefined;
  try {
    return asGoogleError(JSON.parse(t)) ?? (atEnd ? { message: t.slice(0, 200) } : undefined);
  } catch {
    return atEnd ? { message: "the stream ended with text that is not an event" } : undefined;
  }
}
