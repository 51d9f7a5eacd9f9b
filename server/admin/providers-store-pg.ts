import { bump, num, transaction, type Pool, type PoolClient } from "./pg.ts";
import { routingOf, sealKeys, type Keyring, type ProviderStore } from "./providers-store.ts";

/**
 * Admin-made providers, aliases and routes in PostgreSQL (sy_admin_*; made
 * by ensureAdminSchema), shared by every instance. Each write bumps the
 * "providers" counter in the same statement and returns it; instances poll
 * the counter and reload when it moved. Keys are sealed as in SQLite, so
 * every instance needs the same master key (SWITCHYARD_MASTER_KEY).
 */
export function createPgProviderStore(pool: Pool, keyring: Keyring): ProviderStore {
  const write = async (sql: string, params: unknown[]): Promise<number> =>
    num(((await pool.query(`WITH w AS (${sql}) ${bump("providers")}`, params)).rows[0] as { version: unknown }).version);
  const version = async (c: Pool | PoolClient = pool): Promise<number> =>
    num(((await c.query("SELECT version FROM sy_admin_version WHERE name = 'providers'")).rows[0] as { version: unknown } | undefined)?.version ?? 0);

  return {
    shared: true,
    load() {
      // One snapshot of the three tables and the counter it is as of.
      return transaction(pool, async (c) => {
        const v = await version(c);
        const providers = (await c.query("SELECT * FROM sy_admin_providers ORDER BY id")).rows as Record<string, unknown>[];
        const aliases = (await c.query("SELECT name, target, created_at, updated_at FROM sy_admin_aliases ORDER BY name")).rows as Record<string, unknown>[];
        const routes = (await c.query("SELECT name, spec, created_at, updated_at FROM sy_admin_routes ORDER BY name")).rows as Record<string, unknown>[];
        return { ...routingOf(keyring, providers, aliases, routes), version: v };
      }, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    },
    version: () => version(),
    putProvider: (p) =>
      write(`INSERT INTO sy_admin_providers (id, type, base_url, models, headers, sealed_keys, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
        ON CONFLICT (id) DO UPDATE SET type = excluded.type, base_url = excluded.base_url, models = excluded.models,
          headers = excluded.headers, sealed_keys = excluded.sealed_keys, updated_at = excluded.updated_at`,
        [p.id, p.type, p.baseUrl, JSON.stringify(p.models), JSON.stringify(p.headers), Buffer.from(sealKeys(keyring, p)), p.createdAt, p.updatedAt]),
    deleteProvider: (id) => write("DELETE FROM sy_admin_providers WHERE id = $1", [id]),
    putAlias: (a) =>
      write(`INSERT INTO sy_admin_aliases (name, target, created_at, updated_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (name) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at`, [a.name, a.target, a.createdAt, a.updatedAt]),
    deleteAlias: (name) => write("DELETE FROM sy_admin_aliases WHERE name = $1", [name]),
    putRoute: (r) =>
      write(`INSERT INTO sy_admin_routes (name, spec, created_at, updated_at) VALUES ($1, $2, $3, $4)
        ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, [r.name, JSON.stringify(r.route), r.createdAt, r.updatedAt]),
    deleteRoute: (name) => write("DELETE FROM sy_admin_routes WHERE name = $1", [name]),
  };
}
