import { existsSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { checkHead, entryOf, GENESIS, verifyChain, type AuditEntry, type VerifyResult } from "./audit.ts";
import { createPgAuditLog } from "./audit-pg.ts";
import { ensureAdminSchema, num, transaction, type Pool, type PoolClient } from "./pg.ts";
import { openKeys, type Keyring } from "./providers-store.ts";
import { apiKeyOf, userOf } from "./store.ts";

/**
 * `switchyard db migrate-admin`: the admin plane of one SQLite file
 * (admin.db) copied into PostgreSQL, in one transaction: people, admin API
 * keys, admin-made providers (keys copied still sealed), aliases, routes,
 * and the audit log entry for entry, so its hash chain (and the archive
 * files before it) still verifies there. Sessions are not copied: people
 * sign in again.
 *
 * Safe to run twice: rows already there (same id, or same email) are kept
 * as they are, and the audit log is copied only into an empty one, or left
 * when it already ends where the file's does. A PostgreSQL log with other
 * entries is refused: its chain cannot take the file's in front of it.
 */

export interface MigrateAdminResult {
  users: Counts;
  apiKeys: Counts;
  providers: Counts;
  aliases: Counts;
  routes: Counts;
  /** Entries copied; "already": PostgreSQL's log already ends where the file's does. */
  audit: { copied: number; already: boolean };
  /** PostgreSQL's audit log checked after the copy. */
  verified: VerifyResult;
}

export interface Counts {
  read: number;
  inserted: number;
}

/** Rows per INSERT (13 audit columns × 500 stays far below PostgreSQL's 65535 parameters). */
const BATCH = 500;

type Row = Record<string, unknown>;

export class MigrateError extends Error {}

export async function migrateAdminToPostgres(file: string, pool: Pool, keyring: Keyring): Promise<MigrateAdminResult> {
  if (!existsSync(file)) throw new MigrateError(`${file}: no such file`);
  // Read-only: a gateway may still be running on the file.
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const has = (table: string): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
    const all = (table: string, order: string): Row[] => (has(table) ? (db.prepare(`SELECT * FROM ${table} ORDER BY ${order}`).all() as Row[]) : []);
    const meta = (name: string): { seq: number; hash: string } | undefined =>
      has("audit_meta") ? (db.prepare("SELECT seq, hash FROM audit_meta WHERE name = ?").get(name) as { seq: number; hash: string } | undefined) : undefined;
    const audit = function* (): Iterable<AuditEntry> {
      if (has("audit")) for (const r of db.prepare("SELECT * FROM audit ORDER BY seq").iterate()) yield entryOf(r as Row);
    };

    // Nothing is copied from a log that does not verify, nor providers whose keys do not open here.
    const head = meta("head") ?? { seq: 0, hash: GENESIS };
    const anchor = meta("anchor");
    const source = checkHead(verifyChain(audit(), anchor ?? { seq: 0, hash: GENESIS }), head);
    if (!source.ok) throw new MigrateError(`${file}: the audit log does not verify (entry ${source.firstBadSeq}: ${source.problem}); nothing was copied`);
    const providerRows = all("admin_providers", "id");
    try {
      openKeys(keyring, providerRows as unknown as { id: string; sealed_keys: Uint8Array }[]);
    } catch (err) {
      throw new MigrateError(`${(err as Error).message}; nothing was copied (the instances on PostgreSQL need the master key this file was written with)`);
    }

    await ensureAdminSchema(pool);
    const result = await transaction(pool, async (c) => {
      // The chain's lock: no instance appends while the file's entries go in front.
      const target = (await c.query("SELECT seq, hash FROM sy_audit_meta WHERE name = 'head' FOR UPDATE")).rows[0] as Row | undefined;
      const targetHead = { seq: num(target?.["seq"] ?? 0), hash: (target?.["hash"] as string | undefined) ?? GENESIS };
      const count = num((await c.query("SELECT count(*) AS n FROM sy_audit")).rows[0].n);
      const already = head.seq > 0 && targetHead.seq === head.seq && targetHead.hash === head.hash;
      if (!already && (targetHead.seq > 0 || count > 0)) {
        throw new MigrateError(`PostgreSQL's audit log already has entries (up to ${targetHead.seq}) that are not this file's: copy the file before instances write there, or into a fresh database; nothing was copied`);
      }

      const users = all("users", "id").map(userOf);
      const keys = all("api_keys", "created_at, id").map(apiKeyOf);
      const aliases = all("admin_aliases", "name");
      const routes = all("admin_routes", "name");
      const out = {
        users: { read: users.length, inserted: await insert(c, "sy_users", ["id", "email", "name", "password_hash", "sso_subject", "grants", "disabled", "created_at", "updated_at", "last_login_at"],
          users.map((u) => [u.id, u.email, u.name, u.passwordHash ?? null, u.ssoSubject ?? null, JSON.stringify(u.grants), u.disabled, u.createdAt, u.updatedAt, u.lastLoginAt ?? null])) },
        apiKeys: { read: keys.length, inserted: await insert(c, "sy_api_keys", ["id", "hash", "hint", "name", "grants", "created_by", "created_at", "expires_at", "revoked_at"],
          keys.map((k) => [k.id, k.hash, k.hint, k.name, JSON.stringify(k.grants), k.createdBy, k.createdAt, k.expiresAt ?? null, k.revokedAt ?? null])) },
        providers: { read: providerRows.length, inserted: await insert(c, "sy_admin_providers", ["id", "type", "base_url", "models", "headers", "sealed_keys", "created_at", "updated_at"],
          providerRows.map((r) => [r["id"], r["type"], r["base_url"], r["models"], r["headers"], Buffer.from(r["sealed_keys"] as Uint8Array), r["created_at"], r["updated_at"]])) },
        aliases: { read: aliases.length, inserted: await insert(c, "sy_admin_aliases", ["name", "target", "created_at", "updated_at"], aliases.map((r) => [r["name"], r["target"], r["created_at"], r["updated_at"]])) },
        routes: { read: routes.length, inserted: await insert(c, "sy_admin_routes", ["name", "spec", "created_at", "updated_at"], routes.map((r) => [r["name"], r["spec"], r["created_at"], r["updated_at"]])) },
        audit: { copied: 0, already },
      };

      if (!already) {
        const cols = ["seq", "time_ms", "actor_id", "actor_label", "action", "target", "before_json", "after_json", "source_ip", "request_id", "outcome", "prev_hash", "hash"];
        let batch: unknown[][] = [];
        const flush = async (): Promise<void> => {
          out.audit.copied += await insert(c, "sy_audit", cols, batch, "");
          batch = [];
        };
        for (const e of audit()) {
          batch.push([e.seq, e.timeMs, e.actorId, e.actorLabel, e.action, e.target, e.beforeJson, e.afterJson, e.sourceIp, e.requestId, e.outcome, e.prevHash, e.hash]);
          if (batch.length === BATCH) await flush();
        }
        if (batch.length > 0) await flush();
        const setMeta = "INSERT INTO sy_audit_meta (name, seq, hash) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, hash = excluded.hash";
        await c.query(setMeta, ["head", head.seq, head.hash]);
        // The archive files end at the anchor: PostgreSQL's chain continues from it.
        if (anchor !== undefined) await c.query(setMeta, ["anchor", anchor.seq, anchor.hash]);
      }
      // Running instances notice the new people and providers at their next poll.
      await c.query("UPDATE sy_admin_version SET version = version + 1");
      return out;
    });
    return { ...result, verified: await createPgAuditLog(pool).verify() };
  } finally {
    db.close();
  }
}

/** Multi-row INSERTs, all parameters bound; returns the rows inserted. */
async function insert(c: PoolClient, table: string, cols: string[], rows: unknown[][], conflict = "ON CONFLICT DO NOTHING"): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < rows.length; i += BATCH) {
    const params: unknown[] = [];
    const values = rows.slice(i, i + BATCH).map((r) => `(${r.map((v) => (params.push(v), `$${params.length}`)).join(", ")})`);
    inserted += (await c.query(`INSERT INTO ${table} (${cols.join(", ")}) VALUES ${values.join(", ")} ${conflict}`, params)).rowCount ?? 0;
  }
  return inserted;
}
