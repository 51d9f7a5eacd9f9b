import { parentPort, workerData } from "node:worker_threads";
import { lowerOwnThreadPriority } from "../transport/thread-priority.ts";
import { openLogStore, type LogRow } from "./log-store.ts";

/**
 * The request log's writer thread: owns the SQLite connection, writes the
 * batches the main thread sends, answers queries, and applies retention.
 * Nothing here runs on the thread that serves requests.
 */
export interface WorkerConfig {
  path: string;
  maxAgeMs: number;
  maxRows: number;
  retentionEveryMs: number;
}

export type WorkerRequest =
  | { type: "insert"; id: number; rows: LogRow[] }
  | { type: "search"; id: number; filter: object; pageSize: number; pageToken: string }
  | { type: "aggregate"; id: number; filter: object; groupBy: string; bucket: string }
  | { type: "retain"; id: number; now?: number };

export type WorkerReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

// Writing the log can wait; requests cannot (see thread-priority.ts).
lowerOwnThreadPriority();
const config = workerData as WorkerConfig;
const store = openLogStore(config.path);
const port = parentPort!;

function retain(now?: number): number {
  return store.retain(config.maxAgeMs, config.maxRows, now);
}

retain();
const timer = setInterval(() => retain(), config.retentionEveryMs);

port.on("message", (msg: WorkerRequest | { type: "close" }) => {
  if (msg.type === "close") {
    clearInterval(timer);
    store.close();
    port.close();
    return;
  }
  let reply: WorkerReply;
  try {
    let result: unknown;
    if (msg.type === "insert") result = (store.insert(msg.rows), msg.rows.length);
    else if (msg.type === "search") result = store.search(msg.filter, msg.pageSize, msg.pageToken);
    else if (msg.type === "aggregate") result = store.aggregate(msg.filter, msg.groupBy as never, msg.bucket as never);
    else result = retain(msg.now);
    reply = { id: msg.id, ok: true, result };
  } catch (err) {
    reply = { id: msg.id, ok: false, error: (err as Error).message };
  }
  port.postMessage(reply);
});
