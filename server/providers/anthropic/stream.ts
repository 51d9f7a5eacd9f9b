import type { ChatChunk } from "../../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../../errors/errors.ts";
import { createStreamDecoder } from "../../wire/anthropic/stream-decode.ts";
import { readSse } from "../shared/sse.ts";
import { parseStreamEvent, type OpenStream } from "../shared/upstream.ts";
import { streamError } from "./errors.ts";

/**
 * An Anthropic event stream -> canonical chunks, each yielded as its event
 * arrives. An `event: error`, invalid JSON, or a body that ends before
 * message_stop throws a GatewayError; the upstream request is released
 * (and aborted unless complete) however the iteration ends.
 */
export async function* anthropicChunks(provider: string, stream: OpenStream): AsyncGenerator<ChatChunk> {
  const decoder = createStreamDecoder();
  try {
    for await (const event of readSse(stream.body)) {
      const payload = parseStreamEvent(event.data, provider);
      const type = event.event ?? (typeof (payload as { type?: unknown })?.type === "string" ? (payload as { type: string }).type : "");
      if (type === "error") throw streamError(provider, payload);
      for (const chunk of decoder.push(type, payload)) yield chunk;
      if (decoder.done) return;
    }
    throw new GatewayError("upstream_error", `provider '${provider}' ended the stream before it was complete`);
  } catch (err) {
    throw err instanceof GatewayError ? err : stream.failure(err);
  } finally {
    stream.release(decoder.done);
  }
}
