import { bump, ensureAdminSchema, num, PEOPLE_LOCK, type Pool } from "./pg.ts";
import { apiKeyOf, sessionOf, userOf, type AdminStore, type ApiKeyRecord, type User } from "./store.ts";

/**
 * People, admin API keys and sessions in PostgreSQL, shared by every
 * instance: a session made on one instance, a key revoked or a user disabled
 * on another, is read from here when it is next checked. Every write of a
 * user or key bumps the "people" counter in the same statement, so other
 * instances notice (adminsExist) with one cheap poll. Creates the schema.
 */
export async function openPgAdminStore(pool: Pool): Promise<AdminStore> {
  await ensureAdminSchema(pool);
  type Row = Record<string, unknown>;
  const rows = async (sql: string, params: unknown[] = []): Promise<Row[]> => (await pool.query(sql, params)).rows as Row[];
  const first = async <T>(sql: string, params: unknown[], of: (r: Row) => T): Promise<T | undefined> => {
    const r = (await rows(sql, params))[0];
    return r === undefined ? undefined : of(r);
  };
  const exec = async (sql: string, params: unknown[]): Promise<void> => void (await pool.query(sql, params));

  const userParams = (u: User): unknown[] => [
    u.id, u.email, u.name, u.passwordHash ?? null, u.ssoSubject ?? null, JSON.stringify(u.grants), u.disabled, u.createdAt, u.updatedAt, u.lastLoginAt ?? null,
  ];
  const keyParams = (k: ApiKeyRecord): unknown[] => [
    k.id, k.hash, k.hint, k.name, JSON.stringify(k.grants), k.createdBy, k.createdAt, k.expiresAt ?? null, k.revokedAt ?? null,
  ];

  return {
    backend: { kind: "postgres", pool },
    async exclusive(fn) {
      // A session lock held on one connection while fn reads and writes through the pool's others.
      const c = await pool.connect();
      try {
        await c.query("SELECT pg_advisory_lock($1::bigint)", [PEOPLE_LOCK]);
        try {
          return await fn();
        } finally {
          await c.query("SELECT pg_advisory_unlock($1::bigint)", [PEOPLE_LOCK]);
        }
      } finally {
        c.release();
      }
    },
    createUser: (u) =>
      exec(`WITH w AS (INSERT INTO sy_users (id, email, name, password_hash, sso_subject, grants, disabled, created_at, updated_at, last_login_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)) ${bump("people")}`, userParams(u)),
    getUser: (id) => first("SELECT * FROM sy_users WHERE id = $1", [id], userOf),
    userByEmail: (email) => first("SELECT * FROM sy_users WHERE lower(email) = lower($1)", [email], userOf),
    userBySubject: (subject) => first("SELECT * FROM sy_users WHERE sso_subject = $1", [subject], userOf),
    listUsers: async (pageSize, after) => (await rows("SELECT * FROM sy_users WHERE id > $1 ORDER BY id LIMIT $2", [after ?? "", pageSize])).map(userOf),
    // An update, never an insert: a user deleted meanwhile on another instance stays deleted.
    updateUser: (u) =>
      exec(`WITH w AS (UPDATE sy_users SET email = $2, name = $3, password_hash = $4, sso_subject = $5, grants = $6, disabled = $7,
        created_at = $8, updated_at = $9, last_login_at = $10 WHERE id = $1) ${bump("people")}`, userParams(u)),
    deleteUser: (id) => exec(`WITH w AS (DELETE FROM sy_users WHERE id = $1) ${bump("people")}`, [id]),
    userCount: async () => num((await rows("SELECT count(*) AS n FROM sy_users"))[0]!["n"]),
    createApiKey: (k) =>
      exec(`WITH w AS (INSERT INTO sy_api_keys (id, hash, hint, name, grants, created_by, created_at, expires_at, revoked_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)) ${bump("people")}`, keyParams(k)),
    getApiKey: (id) => first("SELECT * FROM sy_api_keys WHERE id = $1", [id], apiKeyOf),
    apiKeyByHash: (hash) => first("SELECT * FROM sy_api_keys WHERE hash = $1", [hash], apiKeyOf),
    listApiKeys: async (includeRevoked) =>
      (await rows("SELECT * FROM sy_api_keys WHERE $1::boolean OR revoked_at IS NULL ORDER BY created_at, id", [includeRevoked])).map(apiKeyOf),
    updateApiKey: (k) =>
      exec(`WITH w AS (UPDATE sy_api_keys SET hash = $2, hint = $3, name = $4, grants = $5, created_by = $6, created_at = $7, expires_at = $8,
        revoked_at = $9 WHERE id = $1) ${bump("people")}`, keyParams(k)),
    apiKeyCount: async () => num((await rows("SELECT count(*) AS n FROM sy_api_keys WHERE revoked_at IS NULL"))[0]!["n"]),
    createSession: (x) =>
      exec("INSERT INTO sy_sessions (id, user_id, csrf, created_at, expires_at, idle_until) VALUES ($1, $2, $3, $4, $5, $6)", [x.id, x.userId, x.csrf, x.createdAt, x.expiresAt, x.idleUntil]),
    getSession: (id) => first("SELECT * FROM sy_sessions WHERE id = $1", [id], sessionOf),
    touchSession: (id, idleUntil) => exec("UPDATE sy_sessions SET idle_until = $2 WHERE id = $1 AND idle_until < $2", [id, idleUntil]),
    deleteSession: (id) => exec("DELETE FROM sy_sessions WHERE id = $1", [id]),
    deleteSessionsOf: (userId, except) => exec("DELETE FROM sy_sessions WHERE user_id = $1 AND id <> $2", [userId, except ?? ""]),
    sweepSessions: (now) => exec("DELETE FROM sy_sessions WHERE expires_at <= $1 OR idle_until <= $1", [now]),
    changeVersion: async () => num((await rows("SELECT version FROM sy_admin_version WHERE name = 'people'"))[0]?.["version"] ?? 0),
    close: () => {},
  };
}
