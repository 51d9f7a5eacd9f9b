import type { Pool, PoolClient } from "pg";
import { aggregateRowOf, BUCKET_MS, GROUP_COLUMN, type AggregateRow, type Bucket, type GroupBy } from "./log-aggregate.ts";
import { decodeToken, encodeToken, logRowOf, type LogFilter, type LogRow } from "./log-store.ts";

/**
 * The request log's PostgreSQL store: one table (sy_requests) shared by
 * every gateway instance. Same rows, filters, page tokens and aggregates as
 * the SQLite store (log-store.ts, log-aggregate.ts); the pool belongs to the
 * caller. Every query is parameterised.
 */
export interface PgLogStore {
  /** Writes the rows in one statement; a record id already stored is skipped. Returns how many were new. */
  insert(rows: readonly LogRow[]): Promise<number>;
  search(filter: LogFilter, pageSize: number, pageToken: string): Promise<{ entries: LogRow[]; nextPageToken: string }>;
  aggregate(filter: LogFilter, groupBy: GroupBy, bucket: Bucket): Promise<AggregateRow[]>;
  /**
   * Deletes rows older than maxAgeMs and the oldest beyond maxRows, a chunk
   * per statement; returns how many went. One instance at a time: while
   * another holds the retention lock this returns 0 at once. An aborted
   * signal stops it between chunks.
   */
  retain(maxAgeMs: number, maxRows: number, now?: number, signal?: AbortSignal): Promise<number>;
}

/** Advisory lock names (hashed to the 64-bit keys PostgreSQL locks on). */
const SCHEMA_LOCK = "switchyard.sy_requests.schema";
const RETENTION_LOCK = "switchyard.sy_requests.retention";
/** Rows per DELETE: each statement stays short (statement timeout, lock time, WAL per transaction). */
const DELETE_CHUNK = 10_000;

/**
 * Types as SQLite stores them, widened where PostgreSQL is strict: bigint for
 * times and token counts, double precision for REAL, jsonb for the targets.
 * The id orders rows with equal time_ms for keyset paging, as SQLite's rowid does.
 * Bodies are TOASTed out of line, so aggregates never read them.
 */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS sy_requests (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  record_id text NOT NULL,
  time_ms bigint NOT NULL,
  request_id text NOT NULL,
  key text NOT NULL, team text NOT NULL, customer text NOT NULL,
  operation text NOT NULL, model_asked text NOT NULL, provider text NOT NULL, model text NOT NULL,
  status text NOT NULL,
  prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL, cached_tokens bigint NOT NULL,
  cost_usd double precision NOT NULL, latency_ms double precision NOT NULL,
  first_chunk_ms double precision, upstream_ms double precision,
  cache_status text NOT NULL, attempts integer NOT NULL,
  saved_usd double precision NOT NULL DEFAULT 0,
  key_name text NOT NULL DEFAULT '',
  targets jsonb NOT NULL DEFAULT '[]',
  request_body text, response_body text
);
-- A retried write of the same record is a no-op (idempotent accounting), across instances too.
CREATE UNIQUE INDEX IF NOT EXISTS sy_requests_record_id ON sy_requests (record_id);
CREATE INDEX IF NOT EXISTS sy_requests_request_id ON sy_requests (request_id);
-- SQLite's indexes end in the rowid implicitly; here the id is explicit, so keyset pages and
-- count retention walk an index in (time_ms, id) order.
CREATE INDEX IF NOT EXISTS sy_requests_time ON sy_requests (time_ms, id);
CREATE INDEX IF NOT EXISTS sy_requests_key_time ON sy_requests (key, time_ms, id);
CREATE INDEX IF NOT EXISTS sy_requests_team_time ON sy_requests (team, time_ms, id);
CREATE INDEX IF NOT EXISTS sy_requests_model_time ON sy_requests (model, time_ms, id);
CREATE INDEX IF NOT EXISTS sy_requests_provider_time ON sy_requests (provider, time_ms, id);
`;

/** Inserted columns, in order, with their types. */
const INSERT_COLUMNS: readonly (readonly [column: string, type: string])[] = [
  ["record_id", "text"], ["time_ms", "bigint"], ["request_id", "text"], ["key", "text"], ["team", "text"], ["customer", "text"],
  ["operation", "text"], ["model_asked", "text"], ["provider", "text"], ["model", "text"], ["status", "text"],
  ["prompt_tokens", "bigint"], ["completion_tokens", "bigint"], ["cached_tokens", "bigint"],
  ["cost_usd", "float8"], ["latency_ms", "float8"], ["first_chunk_ms", "float8"], ["upstream_ms", "float8"],
  ["cache_status", "text"], ["attempts", "integer"], ["saved_usd", "float8"], ["key_name", "text"], ["targets", "jsonb"],
  ["request_body", "text"], ["response_body", "text"],
];

/**
 * One statement and one parameter per batch, whatever its size: the rows as
 * a JSON array of objects keyed by column. JSON.stringify is native, so
 * this costs the thread that serves requests about a third of what
 * serialising one array per column (UNNEST) did (about 2 ms against 6 per 1000 rows).
 */
const INSERT_SQL = `INSERT INTO sy_requests (${INSERT_COLUMNS.map(([c]) => c).join(", ")})
  SELECT ${INSERT_COLUMNS.map(([c]) => c).join(", ")}
  FROM json_to_recordset($1::json) AS r(${INSERT_COLUMNS.map(([c, t]) => `${c} ${t}`).join(", ")})
  ON CONFLICT (record_id) DO NOTHING`;

const SELECT_COLUMNS = `id, ${INSERT_COLUMNS.map(([c]) => c).join(", ")}`;

/**
 * The gateway's own time for one row, as log-aggregate.ts's OVERHEAD:
 * successful requests with an upstream time only, (first chunk or end)
 * minus upstream, clamped at 0; NULL otherwise, which the percentile skips.
 */
const OVERHEAD = `CASE WHEN status = 'ok' AND upstream_ms IS NOT NULL
  THEN GREATEST(0, COALESCE(first_chunk_ms, latency_ms) - upstream_ms) END`;

/**
 * Creates the table and its indexes if missing, then returns the store.
 * Safe when several instances start at once: the schema transaction holds
 * an advisory lock, so one creates and the others find it made.
 */
export async function openPgLogStore(pool: Pool): Promise<PgLogStore> {
  await inTransaction(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [SCHEMA_LOCK]);
    await client.query(SCHEMA);
  });

  return {
    async insert(rows) {
      if (rows.length === 0) return 0;
      const json = JSON.stringify(rows.map((r) => ({
        record_id: text(r.recordId), time_ms: int(r.timeMs), request_id: text(r.requestId),
        key: text(r.key), team: text(r.team), customer: text(r.customer),
        operation: text(r.operation), model_asked: text(r.modelAsked), provider: text(r.provider), model: text(r.model), status: text(r.status),
        prompt_tokens: int(r.promptTokens), completion_tokens: int(r.completionTokens), cached_tokens: int(r.cachedTokens),
        cost_usd: real(r.costUsd), latency_ms: real(r.latencyMs), first_chunk_ms: realOrNull(r.firstChunkMs), upstream_ms: realOrNull(r.upstreamMs),
        cache_status: text(r.cacheStatus), attempts: int(r.attempts), saved_usd: real(r.savedUsd), key_name: text(r.keyName), targets: r.targets.map(text),
        request_body: r.requestBody === null ? null : text(r.requestBody), response_body: r.responseBody === null ? null : text(r.responseBody),
      })));
      const res = await pool.query(INSERT_SQL, [json]);
      return res.rowCount ?? 0;
    },

    async search(filter, pageSize, pageToken) {
      const { where, params } = whereClause(filter);
      const cursor = decodeToken(pageToken);
      if (cursor) {
        params.push(cursor.timeMs, cursor.id);
        where.push(`(time_ms, id) < ($${params.length - 1}, $${params.length})`);
      }
      params.push(pageSize + 1);
      const sql = `SELECT ${SELECT_COLUMNS} FROM sy_requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        ORDER BY time_ms DESC, id DESC LIMIT $${params.length}`;
      const raw = (await pool.query(sql, params)).rows as Record<string, unknown>[];
      const more = raw.length > pageSize;
      const page = more ? raw.slice(0, pageSize) : raw;
      const last = page.at(-1);
      return {
        entries: page.map(toRow),
        nextPageToken: more && last ? encodeToken(Number(last["time_ms"]), Number(last["id"])) : "",
      };
    },

    async aggregate(filter, groupBy, bucket) {
      const { where, params } = whereClause(filter);
      const size = BUCKET_MS[bucket];
      // bigint division truncates toward zero, as SQLite's integer division does.
      const bucketExpr = size === 0 ? "0::bigint" : `(time_ms / ${size}) * ${size}`;
      // Groups compare and sort bytewise, as SQLite's BINARY collation does, whatever the database's collation.
      // percentile_disc is nearest-rank: the first value whose cumulative share reaches p, rank ceil(p * n).
      const sql = `SELECT ${GROUP_COLUMN[groupBy]} COLLATE "C" AS grp, ${bucketExpr} AS bucket, count(*) AS requests,
          count(*) FILTER (WHERE status <> 'ok') AS errors, sum(prompt_tokens) AS prompt, sum(completion_tokens) AS completion,
          sum(cost_usd) AS cost, count(*) FILTER (WHERE cache_status IN ('hit', 'semantic-hit')) AS cache_hits,
          percentile_disc(ARRAY[0.5, 0.99]::float8[]) WITHIN GROUP (ORDER BY latency_ms) AS latency,
          percentile_disc(ARRAY[0.5, 0.99]::float8[]) WITHIN GROUP (ORDER BY ${OVERHEAD}) AS overhead
        FROM sy_requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
        GROUP BY grp, bucket ORDER BY bucket, grp`;
      return ((await pool.query(sql, params)).rows as Record<string, unknown>[]).map((r) =>
        aggregateRowOf(r, percentiles(r["latency"]), percentiles(r["overhead"])),
      );
    },

    async retain(maxAgeMs, maxRows, now = Date.now(), signal) {
      // A session lock on one connection: held across the chunks (each its own short transaction), and
      // released by the server should this connection die.
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const locked = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok", [RETENTION_LOCK]);
        if (!locked.rows[0]!.ok) return 0;
        try {
          let deleted = 0;
          for (;;) {
            if (signal?.aborted) return deleted;
            const n = (await client.query(
              "DELETE FROM sy_requests WHERE id IN (SELECT id FROM sy_requests WHERE time_ms < $1 ORDER BY time_ms, id LIMIT $2)",
              [Math.round(now - maxAgeMs), DELETE_CHUNK],
            )).rowCount ?? 0;
            deleted += n;
            if (n < DELETE_CHUNK) break;
          }
          const count = Number((await client.query<{ n: string }>("SELECT count(*) AS n FROM sy_requests")).rows[0]!.n);
          let excess = count - maxRows;
          while (excess > 0 && !signal?.aborted) {
            const n = (await client.query(
              "DELETE FROM sy_requests WHERE id IN (SELECT id FROM sy_requests ORDER BY time_ms, id LIMIT $1)",
              [Math.min(excess, DELETE_CHUNK)],
            )).rowCount ?? 0;
            deleted += n;
            excess -= n;
            if (n === 0) break;
          }
          return deleted;
        } finally {
          await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [RETENTION_LOCK]).catch((err: Error) => {
            broken = err;
          });
        }
      } catch (err) {
        broken = err as Error;
        throw err;
      } finally {
        // A connection that failed mid-way is closed, not pooled: its lock goes with it.
        client.release(broken);
      }
    },
  };
}

async function inTransaction(pool: Pool, body: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    try {
      await body(client);
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    }
  } catch (err) {
    broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}

function whereClause(f: LogFilter): { where: string[]; params: (string | number)[] } {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const add = (condition: (p: string) => string, value: string | number): void => {
    params.push(value);
    where.push(condition(`$${params.length}`));
  };
  if (f.startTimeMs) add((p) => `time_ms >= ${p}`, f.startTimeMs);
  if (f.endTimeMs) add((p) => `time_ms < ${p}`, f.endTimeMs);
  if (f.requestId) add((p) => `request_id = ${p}`, f.requestId);
  for (const col of ["key", "team", "customer", "model", "provider"] as const) {
    const v = f[col];
    if (v) add((p) => `${col} = ${p}`, v);
  }
  if (f.status === "error") where.push("status <> 'ok'");
  else if (f.status) add((p) => `status = ${p}`, f.status);
  return { where, params };
}

/**
 * PostgreSQL text cannot hold NUL, nor can its JSON carry a lone surrogate
 * (JSON.stringify escapes one); SQLite stores both. One odd string (a model
 * name from a request body) must not cost the whole batch.
 */
function text(s: string): string {
  return (s.includes("\0") ? s.replaceAll("\0", "\uFFFD") : s).toWellFormed();
}

/** A bigint column refuses 1.5, and JSON has no NaN (it would arrive as null, refused by NOT NULL). */
function int(n: number): number {
  return Number.isFinite(n) ? Math.round(n) : 0;
}

function real(n: number): number {
  return Number.isFinite(n) ? n : 0;
}

function realOrNull(n: number | null | undefined): number | null {
  return n === null || n === undefined || !Number.isFinite(n) ? null : n;
}

function toRow(r: Record<string, unknown>): LogRow {
  const targets = r["targets"];
  return logRowOf(r, Array.isArray(targets) ? targets.map(String) : []);
}

/** percentile_disc over an array of fractions gives an array; NULL (or NULL elements) when no row qualifies. */
function percentiles(v: unknown): [number, number] {
  if (!Array.isArray(v)) return [0, 0];
  return [v[0] === null ? 0 : Number(v[0]), v[1] === null ? 0 : Number(v[1])];
}
