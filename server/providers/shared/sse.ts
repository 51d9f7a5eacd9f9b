import type { Readable } from "node:stream";
import { createParser, type EventSourceMessage } from "eventsource-parser";

/**
 * Server-sent events from an upstream body, one at a time, as they arrive.
 * Nothing is buffered beyond what the parser needs to complete an event, so
 * the consumer's pace is the upstream's pace (backpressure).
 *
 * A consumer that stops early leaves the body as it is: it must drain it
 * (the stream had ended, e.g. at `[DONE]`, so the connection can serve the
 * next request) or destroy it (the caller left) itself: OpenStream.release
 * does. Destroying at every clean end cost an aborted request, an error with
 * its stack trace and a new upstream connection per stream.
 */
export async function* readSse(body: Readable): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (e) => queue.push(e) });
  body.setEncoding("utf8");
  for await (const chunk of body.iterator({ destroyOnReturn: false }) as AsyncIterable<string>) {
    parser.feed(chunk);
    while (queue.length > 0) yield queue.shift()!;
  }
}
