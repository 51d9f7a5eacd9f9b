import type { Readable } from "node:stream";
import { createParser, type EventSourceMessage } from "eventsource-parser";

/**
 * Server-sent events from an upstream body, one at a time, as they arrive.
 * Nothing is buffered beyond what the parser needs to complete an event, so
 * the consumer's pace is the upstream's pace (backpressure).
 */
export async function* readSse(body: Readable): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => queue.push(e) });
  body.setEncoding("utf8");
  for await (const chunk of body as AsyncIterable<string>) {
    parser.feed(chunk);
    while (queue.length > 0) yield queue.shift()!;
  }
}
