import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { randomUUID } from "node:crypto";
import type { Pool } from "pg";
import type { Grant } from "./types.ts";

/**
 * The admin plane's own records: people, admin API keys and sessions. In
 * SQLite by default (admin.db in the data directory; ":memory:" in tests),
 * plain synchronous statements behind the async interface; in PostgreSQL
 * when database.url is set (store-pg.ts), shared by every instance. The
 * audit log and admin-made providers live in the same database (audit.ts,
 * providers-store.ts). Nothing here is on the inference path.
 */

/** Where the admin plane's records are: one SQLite file, or the shared PostgreSQL. */
export type AdminBackend = { kind: "sqlite"; db: DatabaseSync } | { kind: "postgres"; pool: Pool };

/** Admin-plane ids: a kind prefix and 16 random hex digits ("usr_3f9a…", "adk_…"). */
export function newAdminId(kind: "usr" | "adk"): string {
  return `${kind}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

/** An email as stored (trimmed, lower case), or undefined when it is not one. */
export function normalEmail(email: string): string | undefined {
  const e = email.trim().toLowerCase();
  return EMAIL.test(e) ? e : undefined;
}

export interface User {
  id: string;
  email: string;
  name: string;
  passwordHash?: string | undefined;
  ssoSubject?: string | undefined;
  grants: Grant[];
  disabled: boolean;
  createdAt: number;
  updatedAt: number;
  lastLoginAt?: number | undefined;
}

export interface ApiKeyRecord {
  id: string;
  hash: string;
  hint: string;
  name: string;
  grants: Grant[];
  createdBy: string;
  createdAt: number;
  expiresAt?: number | undefined;
  revokedAt?: number | undefined;
}

export interface Session {
  /** SHA-256 of the cookie's token: the token itself is never stored. */
  id: string;
  userId: string;
  csrf: string;
  createdAt: number;
  /** Absolute end. */
  expiresAt: number;
  /** Ends earlier when unused for the idle time. */
  idleUntil: number;
}

export interface AdminStore {
  readonly backend: AdminBackend;
  createUser(u: User): Promise<void>;
  getUser(id: string): Promise<User | undefined>;
  userByEmail(email: string): Promise<User | undefined>;
  userBySubject(subject: string): Promise<User | undefined>;
  listUsers(pageSize: number, after: string | undefined): Promise<User[]>;
  updateUser(u: User): Promise<void>;
  deleteUser(id: string): Promise<void>;
  userCount(): Promise<number>;
  createApiKey(k: ApiKeyRecord): Promise<void>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  apiKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(includeRevoked: boolean): Promise<ApiKeyRecord[]>;
  updateApiKey(k: ApiKeyRecord): Promise<void>;
  apiKeyCount(): Promise<number>;
  createSession(s: Session): Promise<void>;
  getSession(id: string): Promise<Session | undefined>;
  touchSession(id: string, idleUntil: number): Promise<void>;
  deleteSession(id: string): Promise<void>;
  /** Ends a user's sessions (disabled, deleted, password changed), except one. */
  deleteSessionsOf(userId: string, except?: string | undefined): Promise<void>;
  /** Removes ended sessions. */
  sweepSessions(now: number): Promise<void>;
  /**
   * Changes when people or admin API keys may have changed elsewhere: SQLite's
   * data version (another connection, the CLI, committed to the file); in
   * PostgreSQL a counter every instance bumps with each such write. A cheap read.
   */
  changeVersion(): Promise<number>;
  /**
   * Runs `fn` while no other change to people runs, on this instance or any
   * other (a PostgreSQL advisory lock; in-process with SQLite): rules that
   * read and then write, such as "the last enabled owner stays", hold.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** Releases the store's own handles (a PostgreSQL pool belongs to its opener). */
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  email TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name TEXT NOT NULL,
  password_hash TEXT,
  sso_subject TEXT UNIQUE,
  grants TEXT NOT NULL,
  disabled INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  last_login_at INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  hint TEXT NOT NULL,
  name TEXT NOT NULL,
  grants TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER,
  revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  idle_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions(user_id);
`;

type Row = Record<string, unknown>;
const opt = <T>(v: unknown): T | undefined => (v === null || v === undefined ? undefined : (v as T));
/** Numbers arrive as numbers from SQLite and as strings from PostgreSQL's BIGINT. */
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));

/** Row mappers shared by both databases (SQLite's 0/1 and PostgreSQL's booleans and BIGINT strings alike). */
export function userOf(r: Row): User {
  return {
    id: r["id"] as string,
    email: r["email"] as string,
    name: r["name"] as string,
    passwordHash: opt<string>(r["password_hash"]),
    ssoSubject: opt<string>(r["sso_subject"]),
    grants: JSON.parse(r["grants"] as string) as Grant[],
    disabled: r["disabled"] === 1 || r["disabled"] === true,
    createdAt: Number(r["created_at"]),
    updatedAt: Number(r["updated_at"]),
    lastLoginAt: optNum(r["last_login_at"]),
  };
}

export function apiKeyOf(r: Row): ApiKeyRecord {
  return {
    id: r["id"] as string,
    hash: r["hash"] as string,
    hint: r["hint"] as string,
    name: r["name"] as string,
    grants: JSON.parse(r["grants"] as string) as Grant[],
    createdBy: r["created_by"] as string,
    createdAt: Number(r["created_at"]),
    expiresAt: optNum(r["expires_at"]),
    revokedAt: optNum(r["revoked_at"]),
  };
}

export function sessionOf(r: Row): Session {
  return {
    id: r["id"] as string,
    userId: r["user_id"] as string,
    csrf: r["csrf"] as string,
    createdAt: Number(r["created_at"]),
    expiresAt: Number(r["expires_at"]),
    idleUntil: Number(r["idle_until"]),
  };
}

export function openAdminStore(path: string): AdminStore {
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;");
  db.exec(SCHEMA);

  const userParams = (u: User) => [
    u.id, u.email, u.name, u.passwordHash ?? null, u.ssoSubject ?? null, JSON.stringify(u.grants), u.disabled ? 1 : 0, u.createdAt, u.updatedAt, u.lastLoginAt ?? null,
  ] as const;
  const keyParams = (k: ApiKeyRecord) => [
    k.id, k.hash, k.hint, k.name, JSON.stringify(k.grants), k.createdBy, k.createdAt, k.expiresAt ?? null, k.revokedAt ?? null,
  ] as const;

  const s = {
    insertUser: db.prepare("INSERT INTO users (id, email, name, password_hash, sso_subject, grants, disabled, created_at, updated_at, last_login_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    replaceUser: db.prepare("REPLACE INTO users (id, email, name, password_hash, sso_subject, grants, disabled, created_at, updated_at, last_login_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    user: db.prepare("SELECT * FROM users WHERE id = ?"),
    userByEmail: db.prepare("SELECT * FROM users WHERE email = ?"),
    userBySubject: db.prepare("SELECT * FROM users WHERE sso_subject = ?"),
    users: db.prepare("SELECT * FROM users WHERE id > ? ORDER BY id LIMIT ?"),
    deleteUser: db.prepare("DELETE FROM users WHERE id = ?"),
    userCount: db.prepare("SELECT count(*) AS n FROM users"),
    insertKey: db.prepare("INSERT INTO api_keys (id, hash, hint, name, grants, created_by, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    replaceKey: db.prepare("REPLACE INTO api_keys (id, hash, hint, name, grants, created_by, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
    key: db.prepare("SELECT * FROM api_keys WHERE id = ?"),
    keyByHash: db.prepare("SELECT * FROM api_keys WHERE hash = ?"),
    keys: db.prepare("SELECT * FROM api_keys WHERE ? OR revoked_at IS NULL ORDER BY created_at, id"),
    keyCount: db.prepare("SELECT count(*) AS n FROM api_keys WHERE revoked_at IS NULL"),
    insertSession: db.prepare("INSERT INTO sessions (id, user_id, csrf, created_at, expires_at, idle_until) VALUES (?, ?, ?, ?, ?, ?)"),
    session: db.prepare("SELECT * FROM sessions WHERE id = ?"),
    touchSession: db.prepare("UPDATE sessions SET idle_until = ? WHERE id = ?"),
    deleteSession: db.prepare("DELETE FROM sessions WHERE id = ?"),
    deleteSessionsOf: db.prepare("DELETE FROM sessions WHERE user_id = ? AND id != ?"),
    sweepSessions: db.prepare("DELETE FROM sessions WHERE expires_at <= ? OR idle_until <= ?"),
    dataVersion: db.prepare("PRAGMA data_version"),
  };
  const one = <T>(row: Row | undefined, of: (r: Row) => T): T | undefined => (row === undefined ? undefined : of(row));

  let turn: Promise<unknown> = Promise.resolve();
  return {
    backend: { kind: "sqlite", db },
    exclusive(fn) {
      // One process owns the file's people changes (the CLI only adds owners): an in-process queue.
      const run = turn.then(fn, fn);
      turn = run.catch(() => undefined);
      return run;
    },
    createUser: async (u) => void s.insertUser.run(...userParams(u)),
    getUser: async (id) => one(s.user.get(id) as Row | undefined, userOf),
    userByEmail: async (email) => one(s.userByEmail.get(email) as Row | undefined, userOf),
    userBySubject: async (subject) => one(s.userBySubject.get(subject) as Row | undefined, userOf),
    listUsers: async (pageSize, after) => (s.users.all(after ?? "", pageSize) as Row[]).map(userOf),
    updateUser: async (u) => void s.replaceUser.run(...userParams(u)),
    deleteUser: async (id) => void s.deleteUser.run(id),
    userCount: async () => (s.userCount.get() as { n: number }).n,
    createApiKey: async (k) => void s.insertKey.run(...keyParams(k)),
    getApiKey: async (id) => one(s.key.get(id) as Row | undefined, apiKeyOf),
    apiKeyByHash: async (hash) => one(s.keyByHash.get(hash) as Row | undefined, apiKeyOf),
    listApiKeys: async (includeRevoked) => (s.keys.all(includeRevoked ? 1 : 0) as Row[]).map(apiKeyOf),
    updateApiKey: async (k) => void s.replaceKey.run(...keyParams(k)),
    apiKeyCount: async () => (s.keyCount.get() as { n: number }).n,
    createSession: async (x) => void s.insertSession.run(x.id, x.userId, x.csrf, x.createdAt, x.expiresAt, x.idleUntil),
    getSession: async (id) => one(s.session.get(id) as Row | undefined, sessionOf),
    touchSession: async (id, idleUntil) => void s.touchSession.run(idleUntil, id),
    deleteSession: async (id) => void s.deleteSession.run(id),
    deleteSessionsOf: async (userId, except) => void s.deleteSessionsOf.run(userId, except ?? ""),
    sweepSessions: async (now) => void s.sweepSessions.run(now, now),
    changeVersion: async () => (s.dataVersion.get() as { data_version: number }).data_version,
    close: () => db.close(),
  };
}
