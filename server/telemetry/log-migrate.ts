import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import type { Pool } from "../database/postgres.ts";
import { openPgLogStore } from "./log-store-pg.ts";
import { logRowOf, type LogRow } from "./log-store.ts";

/**
 * `switchyard db migrate-log`: copies a gateway's SQLite request log into
 * PostgreSQL's sy_requests, so instances sharing the database see the
 * history. The file is opened read-only (a gateway may still be writing
 * it) and read as whatever version wrote it. Rows are keyed by record id,
 * so a second run, or a run after more rows arrived, copies nothing twice.
 */
export interface MigrateProgress {
  /** Rows read from the SQLite file so far. */
  read: number;
  /** Of those, rows PostgreSQL did not have. */
  inserted: number;
  /** Of those, rows already there (same record id). */
  skipped: number;
}

const BATCH = 1000;

/**
 * Every column the request log has had, with what a file from before it
 * reads instead (as log-store.ts's ADDED_COLUMNS gives old rows when it
 * opens their file). Columns without a fallback were in the first release.
 */
const COLUMNS: readonly (readonly [name: string, fallback?: string])[] = [
  ["record_id", "''"], ["time_ms"], ["request_id"], ["key"], ["team"], ["customer"], ["operation"], ["model_asked"], ["provider"], ["model"],
  ["status"], ["prompt_tokens"], ["completion_tokens"], ["cached_tokens"], ["cost_usd"], ["latency_ms"], ["first_chunk_ms"],
  ["upstream_ms", "NULL"], ["cache_status"], ["attempts"], ["saved_usd", "0"], ["key_name", "''"], ["targets", "'[]'"],
  ["request_body"], ["response_body"],
];

export async function migrateLogToPostgres(sqlitePath: string, pool: Pool, onProgress?: (p: MigrateProgress) => void): Promise<MigrateProgress> {
  // Read-only open would not create a missing file, but its message would not say what was expected.
  if (!existsSync(sqlitePath)) throw new Error(`no request log at ${sqlitePath}`);
  const db = new DatabaseSync(sqlitePath, { readOnly: true });
  try {
    const hasTable = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'requests'").get() !== undefined;
    if (!hasTable) throw new Error(`${sqlitePath} is not a request log (it has no requests table)`);
    const present = new Set(db.prepare("PRAGMA table_info(requests)").all().map((c) => String(c["name"])));
    const select = COLUMNS.map(([name, fallback]) => {
      if (present.has(name)) return name;
      if (fallback === undefined) throw new Error(`${sqlitePath} is not a request log (its requests table has no ${name} column)`);
      return `${fallback} AS ${name}`;
    });
    const page = db.prepare(`SELECT id, ${select.join(", ")} FROM requests WHERE id > ? ORDER BY id LIMIT ${BATCH}`);
    const store = await openPgLogStore(pool);
    const progress: MigrateProgress = { read: 0, inserted: 0, skipped: 0 };
    let after = -1;
    for (;;) {
      const raw = page.all(after) as Record<string, number | string | null>[];
      if (raw.length === 0) break;
      after = Number(raw.at(-1)!["id"]);
      const rows = raw.map(toRow);
      const inserted = await store.insert(rows);
      progress.read += rows.length;
      progress.inserted += inserted;
      progress.skipped += rows.length - inserted;
      onProgress?.({ ...progress });
    }
    return progress;
  } finally {
    db.close();
  }
}

function toRow(r: Record<string, number | string | null>): LogRow {
  let targets: string[] = [];
  try {
    const parsed = JSON.parse(String(r["targets"] ?? "[]")) as unknown;
    if (Array.isArray(parsed)) targets = parsed.map(String);
  } catch {
    // A damaged value: the row is still worth having.
  }
  const row = logRowOf(r, targets);
  return legacyId(row, Number(r["id"]));
}

/**
 * Rows from before record ids have none (or "legacy-<row id>", given when a
 * newer gateway opened the file). Row ids repeat across files, and every
 * instance's file goes into the one table: such a row is named by its row id
 * and its content instead, the same on every run over the same file.
 */
function legacyId(row: LogRow, id: number): LogRow {
  if (row.recordId !== "" && !/^legacy-\d+$/.test(row.recordId)) return row;
  const { recordId: _, ...content } = row;
  const hash = createHash("sha256").update(JSON.stringify([id, content])).digest("base64url").slice(0, 32);
  return { ...row, recordId: `legacy-${hash}` };
}
