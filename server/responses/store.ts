import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { connectRedis } from "../redis/connect.ts";

/**
 * Stored responses (the Responses API's `store`): what a response said and
 * the conversation that led to it, so `previous_response_id` continues it
 * on any provider, and GET/DELETE /v1/responses/{id} work. Every record
 * belongs to one tenant scope; reads from another scope see nothing.
 */
export interface StoredResponse {
  id: string;
  /** The tenant boundary ("customer:…", "team:…", "key:…", or the principal id). */
  scope: string;
  createdAt: number;
  expiresAt: number;
  /** The Response object as returned. */
  response: Record<string, unknown>;
  /** The input items as sent (ids added), for GET …/input_items. */
  inputItems: Record<string, unknown>[];
  /** The conversation so far, this response's output included: canonical messages, proto JSON. */
  conversation: unknown[];
  /**
   * Set when the response came from OpenAI's own Responses API, passed
   * through (the provider id): it keeps the conversation, so a follow-up
   * must go back to that provider.
   */
  origin?: string | undefined;
}

/** How long stored responses wait in memory before they are written (a crash loses at most this much). */
const FLUSH_MS = 50;

export interface ResponseStore {
  get(id: string, scope: string, now: number): Promise<StoredResponse | undefined>;
  put(r: StoredResponse): Promise<void>;
  /** True when it existed in that scope. */
  delete(id: string, scope: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The embedded store: SQLite under the data directory (expired rows are
 * swept every minute). Writes are batched: kept in memory (and served from
 * there) and written every FLUSH_MS in one transaction, since a commit per
 * response would cost more than the rest of the request.
 */
export function createSqliteResponseStore(path: string): ResponseStore {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec(`CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL
  ); CREATE INDEX IF NOT EXISTS responses_expires ON responses(expires_at);`);
  const getStmt = db.prepare("SELECT body FROM responses WHERE id = ? AND scope = ? AND expires_at > ?");
  const putStmt = db.prepare("INSERT OR REPLACE INTO responses (id, scope, created_at, expires_at, body) VALUES (?, ?, ?, ?, ?)");
  const delStmt = db.prepare("DELETE FROM responses WHERE id = ? AND scope = ?");
  const sweepStmt = db.prepare("DELETE FROM responses WHERE expires_at <= ?");
  const timer = setInterval(() => sweepStmt.run(Date.now()), 60_000);
  timer.unref();
  const pending = new Map<string, StoredResponse>();
  let flushing: NodeJS.Timeout | undefined;
  const flush = (): void => {
    flushing = undefined;
    if (pending.size === 0) return;
    db.exec("BEGIN");
    try {
      for (const r of pending.values()) putStmt.run(r.id, r.scope, r.createdAt, r.expiresAt, JSON.stringify(r));
      db.exec("COMMIT");
      pending.clear();
    } catch {
      db.exec("ROLLBACK"); // kept for the next flush
    }
  };
  return {
    async get(id, scope, now) {
      const p = pending.get(id);
      if (p !== undefined) return p.scope === scope && p.expiresAt > now ? p : undefined;
      const row = getStmt.get(id, scope, now);
      return row === undefined ? undefined : (JSON.parse(String(row["body"])) as StoredResponse);
    },
    async put(r) {
      pending.set(r.id, r);
      if (flushing === undefined) {
        flushing = setTimeout(flush, FLUSH_MS);
        flushing.unref();
      }
    },
    async delete(id, scope) {
      const p = pending.get(id);
      if (p !== undefined && p.scope === scope) pending.delete(id);
      return Number(delStmt.run(id, scope).changes) > 0 || (p !== undefined && p.scope === scope);
    },
    async close() {
      clearInterval(timer);
      if (flushing !== undefined) clearTimeout(flushing);
      flush();
      db.close();
    },
  };
}

/** Shared by every instance: one JSON value per response, expiring by itself. */
export async function createRedisResponseStore(options: { url: string; prefix: string; commandTimeoutMs: number }): Promise<ResponseStore> {
  const P = `{${options.prefix}}:resp:`;
  const redis = await connectRedis(options.url, options.commandTimeoutMs);
  return {
    async get(id, scope, now) {
      const raw = await redis.get(P + id);
      if (raw === null) return undefined;
      const r = JSON.parse(raw) as StoredResponse;
      return r.scope === scope && r.expiresAt > now ? r : undefined;
    },
    async put(r) {
      await redis.set(P + r.id, JSON.stringify(r), "PX", Math.max(1, r.expiresAt - Date.now()));
    },
    async delete(id, scope) {
      const raw = await redis.get(P + id);
      if (raw === null || (JSON.parse(raw) as StoredResponse).scope !== scope) return false;
      return (await redis.del(P + id)) > 0;
    },
    async close() {
      redis.disconnect();
    },
  };
}
