import { createHash } from "node:crypto";
import type { Pool, PoolClient } from "pg";

/**
 * The admin plane on PostgreSQL (database.url): the same records as admin.db,
 * in tables prefixed `sy_`, shared by every instance. Only types come from
 * `pg` here: the pool is opened (and the driver loaded) by
 * server/database/postgres.ts.
 *
 * Several instances start at once, so the schema is made in one transaction
 * holding an advisory lock: CREATE TABLE IF NOT EXISTS alone races (two
 * sessions may both find the table missing).
 */

export type { Pool, PoolClient };

/** A stable advisory-lock key per purpose (64 bits of a hash; a string for pg's bigint). */
export function lockKey(purpose: string): string {
  return createHash("sha256").update(`switchyard:${purpose}`).digest().readBigInt64BE(0).toString();
}

export const SCHEMA_LOCK = lockKey("admin-schema");
export const ARCHIVE_LOCK = lockKey("audit-archive");
export const PEOPLE_LOCK = lockKey("people-changes");

/**
 * Version counters bumped in the same statement as every write: "people"
 * (users, admin API keys; instances recount whether admins exist) and
 * "providers" (admin-made providers, aliases, routes; instances reload
 * routing). A poll is one primary-key read.
 */
export type VersionName = "people" | "providers";

/** A data-modifying CTE `w` followed by this bumps a counter in the same statement (one transaction). */
export const bump = (name: VersionName): string => `UPDATE sy_admin_version SET version = version + 1 WHERE name = '${name}' RETURNING version`;

const GENESIS = "0".repeat(64);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sy_users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  password_hash TEXT,
  sso_subject TEXT UNIQUE,
  grants TEXT NOT NULL,
  disabled BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_login_at BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS sy_users_email ON sy_users (lower(email));
CREATE TABLE IF NOT EXISTS sy_api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  hint TEXT NOT NULL,
  name TEXT NOT NULL,
  grants TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT,
  revoked_at BIGINT
);
CREATE TABLE IF NOT EXISTS sy_sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  idle_until BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sy_sessions_user ON sy_sessions (user_id);
CREATE TABLE IF NOT EXISTS sy_admin_version (name TEXT PRIMARY KEY, version BIGINT NOT NULL);
INSERT INTO sy_admin_version (name, version) VALUES ('people', 0), ('providers', 0) ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS sy_audit (
  seq BIGINT PRIMARY KEY,
  time_ms BIGINT NOT NULL,
  actor_id TEXT NOT NULL,
  actor_label TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  request_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sy_audit_time ON sy_audit (time_ms);
CREATE TABLE IF NOT EXISTS sy_audit_meta (name TEXT PRIMARY KEY, seq BIGINT NOT NULL, hash TEXT NOT NULL);
INSERT INTO sy_audit_meta (name, seq, hash) VALUES ('head', 0, '${GENESIS}') ON CONFLICT (name) DO NOTHING;
CREATE TABLE IF NOT EXISTS sy_admin_providers (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  base_url TEXT NOT NULL,
  models TEXT NOT NULL,
  headers TEXT NOT NULL,
  sealed_keys BYTEA NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sy_admin_aliases (
  name TEXT PRIMARY KEY,
  target TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sy_admin_routes (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
`;

/** Creates the admin tables when missing; safe to call from every instance at once. */
export async function ensureAdminSchema(pool: Pool): Promise<void> {
  await transaction(pool, async (c) => {
    await c.query("SELECT pg_advisory_xact_lock($1::bigint)", [SCHEMA_LOCK]);
    await c.query(SCHEMA);
  });
}

/**
 * Runs `fn` in a transaction on one connection: COMMIT when it returns,
 * ROLLBACK when it throws. A connection whose ROLLBACK fails is discarded.
 */
export async function transaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>, begin = "BEGIN"): Promise<T> {
  const c = await pool.connect();
  let broken: Error | undefined;
  try {
    await c.query(begin);
    const out = await fn(c);
    await c.query("COMMIT");
    return out;
  } catch (err) {
    await c.query("ROLLBACK").catch((e: Error) => {
      broken = e;
    });
    throw err;
  } finally {
    c.release(broken);
  }
}

/** BIGINT columns arrive as strings (pg keeps 64 bits exact); ours are milliseconds and counters. */
export const num = (v: unknown): number => Number(v);
export const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
export const optStr = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : (v as string));
