import { DatabaseSync, type StatementSync } from "node:sqlite";
import { aggregate, registerAggregateFunctions, type AggregateRow, type Bucket, type GroupBy } from "./log-aggregate.ts";

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
  /** Waiting on the provider (for streams: until its first chunk); null when nothing went upstream, or for rows from before it was stored. */
  upstreamMs: number | null;
  cacheStatus: string;
  savedUsd: number;
  /** The key's name when the request was made: stays after the key is renamed, rotated or revoked. */
  keyName: string;
  /** Every target tried, in order ("provider/model"). */
  targets: string[];
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
  requestId?: string;
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
  -- Before the bodies, so aggregates read it without walking a body's overflow pages
  -- (files migrated from before it have it last: ADDED_COLUMNS).
  upstream_ms REAL,
  cache_status TEXT NOT NULL, attempts INTEGER NOT NULL,
  request_body TEXT, response_body TEXT,
  saved_usd REAL NOT NULL DEFAULT 0,
  key_name TEXT NOT NULL DEFAULT '',
  targets TEXT NOT NULL DEFAULT '[]'
);
`;

/** Indexes, created after migrate() so an older file has every column they name. */
const INDEXES = `
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
  request_body, response_body, saved_usd, upstream_ms, key_name, targets`;

/**
 * Columns added after the first release, in order: a database file from an
 * older version gets them (ALTER TABLE ADD COLUMN) when opened; its rows
 * keep their values and read the column's default.
 */
const ADDED_COLUMNS: readonly (readonly [name: string, definition: string, fill?: string])[] = [
  // The gateway's own record id (unique); rows from before it get one from their row id.
  ["record_id", "TEXT NOT NULL DEFAULT ''", "UPDATE requests SET record_id = 'legacy-' || id WHERE record_id = ''"],
  ["saved_usd", "REAL NOT NULL DEFAULT 0"], // the response cache
  ["upstream_ms", "REAL"], // overhead percentiles in aggregates
  ["key_name", "TEXT NOT NULL DEFAULT ''"], // the key's name as it was (audit of spend)
  ["targets", "TEXT NOT NULL DEFAULT '[]'"], // every target tried, for the detail view
];

export function openLogStore(path: string): LogStore {
  const db = new DatabaseSync(path);
  // WAL: readers do not block the writer; NORMAL sync is durable across process crashes.
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec(SCHEMA);
  migrate(db);
  db.exec(INDEXES);
  registerAggregateFunctions(db);
  const insertStmt = db.prepare(`INSERT OR IGNORE INTO requests (${COLUMNS}) VALUES (${Array(25).fill("?").join(", ")})`);
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
            r.requestBody, r.responseBody, r.savedUsd, r.upstreamMs, r.keyName, JSON.stringify(r.targets));
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
      return aggregate(prepared, where, params, groupBy, bucket);
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

/**
 * Brings a database file written by an older version up to SCHEMA's
 * columns. IMMEDIATE: two processes opening one old file do not both add a column.
 */
function migrate(db: DatabaseSync): void {
  db.exec("BEGIN IMMEDIATE");
  try {
    const present = new Set(db.prepare("PRAGMA table_info(requests)").all().map((c) => String(c["name"])));
    for (const [name, definition, fill] of ADDED_COLUMNS) {
      if (present.has(name)) continue;
      db.exec(`ALTER TABLE requests ADD COLUMN ${name} ${definition}`);
      if (fill !== undefined) db.exec(fill);
    }
    db.exec("COMMIT");
  } catch (err) {
    db.exec("ROLLBACK");
    throw err;
  }
}

function whereClause(f: LogFilter): { where: string[]; params: (string | number)[] } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  if (f.startTimeMs) (where.push("time_ms >= ?"), params.push(f.startTimeMs));
  if (f.endTimeMs) (where.push("time_ms < ?"), params.push(f.endTimeMs));
  if (f.requestId) (where.push("request_id = ?"), params.push(f.requestId));
  for (const col of ["key", "team", "customer", "model", "provider"] as const) {
    const v = f[col];
    if (v) (where.push(`${col} = ?`), params.push(v));
  }
  if (f.status === "error") where.push("status <> 'ok'");
  else if (f.status) (where.push("status = ?"), params.push(f.status));
  return { where, params };
}

function toRow(r: Record<string, number | string | null>): LogRow {
  return logRowOf(r, JSON.parse(String(r["targets"] ?? "[]")) as string[]);
}

/**
 * A stored row's columns (as SQL names them) as a LogRow: one mapping for
 * the SQLite store, the PostgreSQL store and the migration between them.
 * `targets` comes decoded (JSON text in SQLite, jsonb in PostgreSQL).
 */
export function logRowOf(r: Record<string, unknown>, targets: string[]): LogRow {
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  return {
    recordId: String(r["record_id"] ?? ""),
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
    firstChunkMs: num(r["first_chunk_ms"]),
    upstreamMs: num(r["upstream_ms"]),
    cacheStatus: String(r["cache_status"]),
    savedUsd: Number(r["saved_usd"] ?? 0),
    keyName: String(r["key_name"] ?? ""),
    targets,
    attempts: Number(r["attempts"]),
    requestBody: text(r["request_body"]),
    responseBody: text(r["response_body"]),
  };
}

/** Keyset pagination: the position after the last row of a page (PostgreSQL's store uses the same tokens). */
export function encodeToken(timeMs: number, id: number): string {
  return Buffer.from(`${timeMs}:${id}`).toString("base64url");
}

export function decodeToken(token: string): { timeMs: number; id: number } | undefined {
  if (!token) return undefined;
  const m = /^(\d+):(\d+)$/.exec(Buffer.from(token, "base64url").toString());
  if (!m) throw new RangeError("invalid page token");
  return { timeMs: Number(m[1]), id: Number(m[2]) };
}
