import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { randomUUID } from "node:crypto";
import type { Grant } from "./types.ts";

/**
 * The admin plane's own records: people, admin API keys and sessions, in
 * SQLite (admin.db in the data directory; ":memory:" in tests). The audit
 * log shares the file (audit.ts). Admin traffic is light, so every call is a
 * plain synchronous statement; nothing here is on the inference path.
 */

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
  readonly db: DatabaseSync;
  createUser(u: User): void;
  getUser(id: string): User | undefined;
  userByEmail(email: string): User | undefined;
  userBySubject(subject: string): User | undefined;
  listUsers(pageSize: number, after: string | undefined): User[];
  updateUser(u: User): void;
  deleteUser(id: string): void;
  userCount(): number;
  createApiKey(k: ApiKeyRecord): void;
  getApiKey(id: string): ApiKeyRecord | undefined;
  apiKeyByHash(hash: string): ApiKeyRecord | undefined;
  listApiKeys(includeRevoked: boolean): ApiKeyRecord[];
  updateApiKey(k: ApiKeyRecord): void;
  apiKeyCount(): number;
  createSession(s: Session): void;
  getSession(id: string): Session | undefined;
  touchSession(id: string, idleUntil: number): void;
  deleteSession(id: string): void;
  /** Ends a user's sessions (disabled, deleted, password changed), except one. */
  deleteSessionsOf(userId: string, except?: string | undefined): void;
  /** Removes ended sessions. */
  sweepSessions(now: number): void;
  /** Changes when another connection (the CLI) commits to the file; a cheap read, no lock. */
  dataVersion(): number;
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

function userOf(r: Row): User {
  return {
    id: r["id"] as string,
    email: r["email"] as string,
    name: r["name"] as string,
    passwordHash: opt<string>(r["password_hash"]),
    ssoSubject: opt<string>(r["sso_subject"]),
    grants: JSON.parse(r["grants"] as string) as Grant[],
    disabled: r["disabled"] === 1,
    createdAt: r["created_at"] as number,
    updatedAt: r["updated_at"] as number,
    lastLoginAt: opt<number>(r["last_login_at"]),
  };
}

function apiKeyOf(r: Row): ApiKeyRecord {
  return {
    id: r["id"] as string,
    hash: r["hash"] as string,
    hint: r["hint"] as string,
    name: r["name"] as string,
    grants: JSON.parse(r["grants"] as string) as Grant[],
    createdBy: r["created_by"] as string,
    createdAt: r["created_at"] as number,
    expiresAt: opt<number>(r["expires_at"]),
    revokedAt: opt<number>(r["revoked_at"]),
  };
}

function sessionOf(r: Row): Session {
  return {
    id: r["id"] as string,
    userId: r["user_id"] as string,
    csrf: r["csrf"] as string,
    createdAt: r["created_at"] as number,
    expiresAt: r["expires_at"] as number,
    idleUntil: r["idle_until"] as number,
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

  return {
    db,
    createUser: (u) => void s.insertUser.run(...userParams(u)),
    getUser: (id) => one(s.user.get(id) as Row | undefined, userOf),
    userByEmail: (email) => one(s.userByEmail.get(email) as Row | undefined, userOf),
    userBySubject: (subject) => one(s.userBySubject.get(subject) as Row | undefined, userOf),
    listUsers: (pageSize, after) => (s.users.all(after ?? "", pageSize) as Row[]).map(userOf),
    updateUser: (u) => void s.replaceUser.run(...userParams(u)),
    deleteUser: (id) => void s.deleteUser.run(id),
    userCount: () => (s.userCount.get() as { n: number }).n,
    createApiKey: (k) => void s.insertKey.run(...keyParams(k)),
    getApiKey: (id) => one(s.key.get(id) as Row | undefined, apiKeyOf),
    apiKeyByHash: (hash) => one(s.keyByHash.get(hash) as Row | undefined, apiKeyOf),
    listApiKeys: (includeRevoked) => (s.keys.all(includeRevoked ? 1 : 0) as Row[]).map(apiKeyOf),
    updateApiKey: (k) => void s.replaceKey.run(...keyParams(k)),
    apiKeyCount: () => (s.keyCount.get() as { n: number }).n,
    createSession: (x) => void s.insertSession.run(x.id, x.userId, x.csrf, x.createdAt, x.expiresAt, x.idleUntil),
    getSession: (id) => one(s.session.get(id) as Row | undefined, sessionOf),
    touchSession: (id, idleUntil) => void s.touchSession.run(idleUntil, id),
    deleteSession: (id) => void s.deleteSession.run(id),
    deleteSessionsOf: (userId, except) => void s.deleteSessionsOf.run(userId, except ?? ""),
    sweepSessions: (now) => void s.sweepSessions.run(now, now),
    dataVersion: () => (s.dataVersion.get() as { data_version: number }).data_version,
    close: () => db.close(),
  };
}
