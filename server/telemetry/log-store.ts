import { DatabaseSync, type StatementSync } from "node:sqlite";

/**
 * The request log's SQLite store (node:sqlite: no native build). Only the
 * request-log worker thread uses it, so inserts and queries never block the
 * thread that serves requests. Every query is parameterised.
 */

/** One row: what the gateway knows about a finished request. Never a key, prompt or answer. */
export interface LogRow {
  /** The gateway's own id for this record: retried writes of it are no-ops. */
  recordId: string;
  timeMs: number;
  requestId: string;
  key: string;
  team: string;
  customer: string;
  operation: string;
  modelAsked: string;
  provider: string;
  model: string;
  status: string;
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  costUsd: number;
  latencyMs: number;
  firstChunkMs: number | null;
  cacheStatus: string;
  savedUsd: number;
  attempts: number;
  /** Prompt and answer as JSON, redacted; null unless body logging is on. */
  requestBody: string | null;
  responseBody: string | null;
}

export interface LogFilter {
  startTimeMs?: number;
  endTimeMs?: number;
  key?: string;
  team?: string;
  customer?: string;
  model?: string;
  provider?: string;
  /** "ok", "error", or one error code. */
  status?: string;
}

export type GroupBy = "key" | "team" | "customer" | "model" | "provider";
export type Bucket = "none" | "minute" | "hour" | "day";

export interface AggregateRow {
  group: string;
  bucketStartMs: number;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface LogStore {
  insert(rows: readonly LogRow[]): void;
  search(filter: LogFilter, pageSize: number, pageToken: string): { entries: LogRow[]; nextPageToken: string };
  aggregate(filter: LogFilter, groupBy: GroupBy, bucket: Bucket): AggregateRow[];
  /** Deletes rows older than maxAgeMs and the oldest beyond maxRows; returns how many went. */
  retain(maxAgeMs: number, maxRows: number, now?: number): number;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS requests (
  id INTEGER PRIMARY KEY,
  record_id TEXT NOT NULL,
  time_ms INTEGER NOT NULL,
  request_id TEXT NOT NULL,
  key TEXT NOT NULL, team TEXT NOT NULL, customer TEXT NOT NULL,
  operation TEXT NOT NULL, model_asked TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
  status TEXT NOT NULL,
  prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
  cost_usd REAL NOT NULL, latency_ms REAL NOT NULL, first_chunk_ms REAL,
  cache_status TEXT NOT NULL, attempts INTEGER NOT NULL,
  request_body TEXT, response_body TEXT,
  saved_usd REAL NOT NULL DEFAULT 0
);
-- A retried write of the same record is a no-op (idempotent accounting). Keyed on the gateway's
-- own id: request_id comes from callers (x-request-id) and may repeat.
CREATE UNIQUE INDEX IF NOT EXISTS requests_record_id ON requests(record_id);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests(request_id);
CREATE INDEX IF NOT EXISTS requests_time ON requests(time_ms);
CREATE INDEX IF NOT EXISTS requests_key_time ON requests(key, time_ms);
CREATE INDEX IF NOT EXISTS requests_team_time ON requests(team, time_ms);
CREATE INDEX IF NOT EXISTS requests_model_time ON requests(model, time_ms);
CREATE INDEX IF NOT EXISTS requests_provider_time ON requests(provider, time_ms);
`;

const COLUMNS = `record_id, time_ms, request_id, key, team, customer, operation, model_asked, provider, model, status,
  prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, first_chunk_ms, cache_status, attempts,
  request_body, response_body, saved_usd`;

const GROUP_COLUMN: Record<GroupBy, string> = { key: "key", team: "team", customer: "customer", model: "model", provider: "provider" };
const BUCKET_MS: Record<Bucket, number> = { none: 0, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

export function openLogStore(path: string): LogStore {
  const db = new DatabaseSync(path);
  // WAL: readers do not block the writer; NORMAL sync is durable across process crashes.
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec(SCHEMA);
  // Databases from before the cache existed lack saved_usd.
  if (!db.prepare("PRAGMA table_info(requests)").all().some((c) => c["name"] === "saved_usd")) {
    db.exec("ALTER TABLE requests ADD COLUMN saved_usd REAL NOT NULL DEFAULT 0");
  }
  const insertStmt = db.prepare(`INSERT OR IGNORE INTO requests (${COLUMNS}) VALUES (${Array(22).fill("?").join(", ")})`);
  const cache = new Map<string, StatementSync>();
  const prepared = (sql: string): StatementSync => {
    let s = cache.get(sql);
    if (s === undefined) cache.set(sql, (s = db.prepare(sql)));
    return s;
  };

  return {
    insert(rows) {
      db.exec("BEGIN");
      try {
        for (const r of rows) {
          insertStmt.run(r.recordId, r.timeMs, r.requestId, r.key, r.team, r.customer, r.operation, r.modelAsked, r.provider, r.model, r.status,
            r.promptTokens, r.completionTokens, r.cachedTokens, r.costUsd, r.latencyMs, r.firstChunkMs, r.cacheStatus, r.attempts,
            r.requestBody, r.responseBody, r.savedUsd);
        }
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },

    search(filter, pageSize, pageToken) {
      const { where, params } = whereClause(filter);
      const cursor = decodeToken(pageToken);
      if (cursor) {
        where.push("(time_ms < ? OR (time_ms = ? AND id < ?))");
        params.push(cursor.timeMs, cursor.timeMs, cursor.id);
      }
      const sql = `SELECT id, ${COLUMNS} FROM requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY time_ms DESC, id DESC LIMIT ?`;
      const raw = prepared(sql).all(...params, pageSize + 1) as Record<string, number | string | null>[];
      const more = raw.length > pageSize;
      const page = more ? raw.slice(0, pageSize) : raw;
      const last = page.at(-1);
      return {
        entries: page.map(toRow),
        nextPageToken: more && last ? encodeToken(Number(last["time_ms"]), Number(last["id"])) : "",
      };
    },

    aggregate(filter, groupBy, bucket) {
      const { where, params } = whereClause(filter);
      const size = BUCKET_MS[bucket];
      const bucketExpr = size === 0 ? "0" : `(time_ms / ${size}) * ${size}`;
      const col = GROUP_COLUMN[groupBy];
      const sql = `SELECT ${col} AS grp, ${bucketExpr} AS bucket, COUNT(*) AS requests,
          SUM(status <> 'ok') AS errors, SUM(prompt_tokens) AS prompt, SUM(completion_tokens) AS completion, SUM(cost_usd) AS cost
        FROM requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        GROUP BY grp, bucket ORDER BY bucket, grp`;
      return (prepared(sql).all(...params) as Record<string, number | string>[]).map((r) => ({
        group: String(r["grp"]),
        bucketStartMs: Number(r["bucket"]),
        requests: Number(r["requests"]),
        errors: Number(r["errors"]),
        promptTokens: Number(r["prompt"]),
        completionTokens: Number(r["completion"]),
        costUsd: Number(r["cost"]),
      }));
    },

    retain(maxAgeMs, maxRows, now = Date.now()) {
      let deleted = Number(prepared("DELETE FROM requests WHERE time_ms < ?").run(now - maxAgeMs).changes);
      const count = Number((prepared("SELECT COUNT(*) AS n FROM requests").get() as { n: number }).n);
      if (count > maxRows) {
        deleted += Number(prepared("DELETE FROM requests WHERE id IN (SELECT id FROM requests ORDER BY time_ms ASC, id ASC LIMIT ?)").run(count - maxRows).changes);
      }
      if (deleted > 0) db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      return deleted;
    },

    close() {
      db.close();
    },
  };
}

function whereClause(f: LogFilter): { where: string[]; params: (string | number)[] } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (f.startTimeMs) (where.push("time_ms >= ?"), params.push(f.startTimeMs));
  if (f.endTimeMs) (where.push("time_ms < ?"), params.push(f.endTimeMs));
  for (const col of ["key", "team", "customer", "model", "provider"] as const) {
    const v = f[col];
    if (v) (where.push(`${col} = ?`), params.push(v));
  }
  if (f.status === "error") where.push("status <> 'ok'");
  else if (f.status) (where.push("status = ?"), params.push(f.status));
  return { where, params };
}

function toRow(r: Record<string, number | string | null>): LogRow {
  return {
    recordId: String(r["record_id"]),
    timeMs: Number(r["time_ms"]),
    requestId: String(r["request_id"]),
    key: String(r["key"]),
    team: String(r["team"]),
    customer: String(r["customer"]),
    operation: String(r["operation"]),
    modelAsked: String(r["model_asked"]),
    provider: String(r["provider"]),
    model: String(r["model"]),
    status: String(r["status"]),
    promptTokens: Number(r["prompt_tokens"]),
    completionTokens: Number(r["completion_tokens"]),
    cachedTokens: Number(r["cached_tokens"]),
    costUsd: Number(r["cost_usd"]),
    latencyMs: Number(r["latency_ms"]),
    firstChunkMs: r["first_chunk_ms"] === null ? null : Number(r["first_chunk_ms"]),
    cacheStatus: String(r["cache_status"]),
    savedUsd: Number(r["saved_usd"]),
    attempts: Number(r["attempts"]),
    requestBody: r["request_body"] === null ? null : String(r["request_body"]),
    responseBody: r["response_body"] === null ? null : String(r["response_body"]),
  };
}

/** Keyset pagination: the position after the last row of a page. */
function encodeToken(timeMs: number, id: number): string {
  return Buffer.from(`${timeMs}:${id}`).toString("base64url");
}

function decodeToken(token: string): { timeMs: number; id: number } | undefined {
  if (!token) return undefined;
  const m = /^(\d+):(\d+)$/.exec(Buffer.from(token, "base64url").toString());
  if (!m) throw new RangeError("invalid page token");
  return { timeMs: Number(m[1]), id: Number(m[2]) };
}
