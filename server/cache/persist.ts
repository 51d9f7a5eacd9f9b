import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { CacheEntry } from "./types.ts";

/**
 * The memory cache's optional SQLite file (node:sqlite: no native build). It
 * is a warm start, not a source of truth: the store writes its changes in the
 * background and reads the file once at creation. One process per file.
 */
export interface CacheDisk {
  /** Every entry still live at `now`, oldest first (so the newest end up most recently used). */
  load(now: number): Array<[string, CacheEntry]>;
  /**
   * Writes the current state of the changed keys in one transaction: an entry
   * is upserted, `undefined` deletes the row. Rows expired by `now` go too.
   */
  write(changes: Iterable<[string, CacheEntry | undefined]>, now: number): void;
  close(): void;
}

/** Opens (creating the folder and file if needed) the cache file at `path`. */
export function openCacheDisk(path: string): CacheDisk {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  // WAL + NORMAL: a crash may lose the last few seconds of entries, never corrupt the file; losing cache entries is harmless.
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS cache_entries (
      key TEXT PRIMARY KEY,
      scope TEXT NOT NULL, key_id TEXT NOT NULL, team_id TEXT NOT NULL, customer_id TEXT NOT NULL, model TEXT NOT NULL,
      cost_usd REAL NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL,
      value BLOB NOT NULL
    );
  `);
  const upsert = db.prepare(
    `INSERT INTO cache_entries (key, scope, key_id, team_id, customer_id, model, cost_usd, created_at, expires_at, value)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET scope = excluded.scope, key_id = excluded.key_id, team_id = excluded.team_id,
       customer_id = excluded.customer_id, model = excluded.model, cost_usd = excluded.cost_usd,
       created_at = excluded.created_at, expires_at = excluded.expires_at, value = excluded.value`,
  );
  const remove = db.prepare("DELETE FROM cache_entries WHERE key = ?");
  const removeExpired = db.prepare("DELETE FROM cache_entries WHERE expires_at <= ?");

  return {
    load(now) {
      const rows = db.prepare("SELECT * FROM cache_entries WHERE expires_at > ? ORDER BY created_at").all(now);
      return rows.map((r): [string, CacheEntry] => [
        String(r.key),
        {
          labels: {
            scope: String(r.scope),
            keyId: String(r.key_id),
            teamId: String(r.team_id),
            customerId: String(r.customer_id),
            model: String(r.model),
          },
          value: new Uint8Array(r.value as Uint8Array),
          costUsd: Number(r.cost_usd),
          createdAt: Number(r.created_at),
          expiresAt: Number(r.expires_at),
        },
      ]);
    },

    write(changes, now) {
      db.exec("BEGIN");
      try {
        for (const [key, e] of changes) {
          if (e === undefined) remove.run(key);
          else {
            const l = e.labels;
            upsert.run(key, l.scope, l.keyId, l.teamId, l.customerId, l.model, e.costUsd, e.createdAt, e.expiresAt, e.value);
          }
        }
        removeExpired.run(now);
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },

    close: () => db.close(),
  };
}
