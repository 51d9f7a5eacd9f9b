import { DatabaseSync } from "node:sqlite";
import { parentPort, workerData } from "node:worker_threads";
import { lowerOwnThreadPriority } from "../transport/thread-priority.ts";

/**
 * The stored responses' writer thread (see createSqliteResponseStore in
 * ./store.ts): owns the SQLite connection that writes. Inserts, deletes, the
 * expiry sweep and the WAL checkpoints that commits trigger (an fsync each,
 * which stalled the event loop for 10–25 ms every few seconds at 500 streams/s,
 * issue 13) never run on the thread that serves requests.
 */
export interface WriterConfig {
  path: string;
  sweepEveryMs: number;
}

/** One row as written: id, scope, created_at, expires_at, body (the record as JSON). */
export type WriterRow = [id: string, scope: string, createdAt: number, expiresAt: number, body: string];

/** What the store asks of the writer; each gets a WriterReply with the same `id`. */
export type WriterCall = { type: "put"; rows: WriterRow[] } | { type: "delete"; key: string; scope: string };

export type WriterRequest = (WriterCall & { id: number }) | { type: "close" };

/** `changes`: rows written (put) or deleted (delete). */
export type WriterReply = { id: number; ok: true; changes: number } | { id: number; ok: false; error: string };

// Writing can wait; requests cannot (see thread-priority.ts).
lowerOwnThreadPriority();
const config = workerData as WriterConfig;
const db = new DatabaseSync(config.path);
db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
const putStmt = db.prepare("INSERT OR REPLACE INTO responses (id, scope, created_at, expires_at, body) VALUES (?, ?, ?, ?, ?)");
const delStmt = db.prepare("DELETE FROM responses WHERE id = ? AND scope = ?");
const sweepStmt = db.prepare("DELETE FROM responses WHERE expires_at <= ?");
const timer = setInterval(() => sweepStmt.run(Date.now()), config.sweepEveryMs);
const port = parentPort!;

/** One transaction per batch: a commit per response would cost more than the rest of the write. */
function put(rows: WriterRow[]): number {
  db.exec("BEGIN");
  try {
    for (const r of rows) putStmt.run(...r);
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
  return rows.length;
}

port.on("message", (msg: WriterRequest) => {
  if (msg.type === "close") {
    clearInterval(timer);
    db.close();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    const changes = msg.type === "put" ? put(msg.rows) : Number(delStmt.run(msg.key, msg.scope).changes);
    reply = { id: msg.id, ok: true, changes };
  } catch (err) {
    reply = { id: msg.id, ok: false, error: (err as Error).message };
  }
  port.postMessage(reply);
});
