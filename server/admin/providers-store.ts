import type { DatabaseSync } from "node:sqlite";
import { loadMasterSecret } from "../config/master-key.ts";
import type { Route } from "../routing/plan.ts";
import { createSecretBox, type SecretBox } from "./secret-box.ts";

/**
 * Providers, aliases and routes made through ProviderService, in the admin
 * database (admin.db, next to people and the audit log; or PostgreSQL, see
 * providers-store-pg.ts). API keys are sealed with AES-256-GCM
 * (secret-box.ts) under the master key; everything else is in clear. Admin
 * writes are rare: in SQLite, plain synchronous statements behind the async
 * interface.
 */

/** A provider as it was asked for: the type's defaults are applied when it is built. */
export interface StoredProvider {
  id: string;
  type: string;
  /** "": the type's default. */
  baseUrl: string;
  keys: string[];
  models: string[];
  headers: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

/** An admin-made alias: name -> "provider/model". */
export interface StoredAlias {
  name: string;
  target: string;
  createdAt: number;
  updatedAt: number;
}

/** An admin-made route, in the configuration's `routes` shape. */
export interface StoredRoute {
  name: string;
  route: Route;
  createdAt: number;
  updatedAt: number;
}

/** Everything the store holds, loaded at start (and, when shared, again whenever it changed). */
export interface StoredRouting {
  providers: StoredProvider[];
  aliases: StoredAlias[];
  routes: StoredRoute[];
  /** Shared stores: the change counter this content is as of. */
  version?: number | undefined;
}

/**
 * Reads and writes of the admin routing tables; writes are upserts and
 * deletes by name. A shared store (PostgreSQL) is written by other instances
 * too: its `version` moves with every write, and each write returns the
 * version it made.
 */
export interface ProviderStore {
  /** Other instances write here too: poll version() and reload when it moves. */
  readonly shared: boolean;
  /** Everything, keys decrypted. Throws when the master key cannot open them. */
  load(): Promise<StoredRouting>;
  /** The change counter (shared stores); undefined when only this process writes. */
  version(): Promise<number | undefined>;
  putProvider(p: StoredProvider): Promise<number | undefined>;
  deleteProvider(id: string): Promise<number | undefined>;
  putAlias(a: StoredAlias): Promise<number | undefined>;
  deleteAlias(name: string): Promise<number | undefined>;
  putRoute(r: StoredRoute): Promise<number | undefined>;
  deleteRoute(name: string): Promise<number | undefined>;
}

/**
 * The master key, derived on first use: `create` is false when only reading,
 * so a gateway that never stores a key never writes a key file.
 */
export type Keyring = (create: boolean) => { box: SecretBox; origin: string } | undefined;

/** The keyring of a data directory: SWITCHYARD_MASTER_KEY, else <dataDir>/master.key (see master-key.ts). */
export function createKeyring(dataDir: string): Keyring {
  let k: { box: SecretBox; origin: string } | undefined;
  return (create) => {
    if (k !== undefined) return k;
    const m = loadMasterSecret(dataDir, create);
    return m === undefined ? undefined : (k = { box: createSecretBox(m.secret), origin: m.origin === "master.key" ? `${dataDir}/master.key` : m.origin });
  };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS admin_providers (
  id TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  base_url TEXT NOT NULL,
  models TEXT NOT NULL,
  headers TEXT NOT NULL,
  sealed_keys BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS admin_aliases (
  name TEXT PRIMARY KEY,
  target TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS admin_routes (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;
`;

interface ProviderRow {
  id: string;
  type: string;
  base_url: string;
  models: string;
  headers: string;
  sealed_keys: Uint8Array;
  created_at: number | string;
  updated_at: number | string;
}

/** The associated data that ties a sealed value to its provider. */
const context = (id: string): string => `switchyard:provider:${id}:keys`;

/** A provider's keys, sealed for its row. */
export function sealKeys(keyring: Keyring, p: StoredProvider): Uint8Array {
  return keyring(true)!.box.seal(JSON.stringify(p.keys), context(p.id));
}

/** Opens every row's keys, or throws naming the provider that does not open (a changed master key). */
export function openKeys(keyring: Keyring, rows: readonly { id: string; sealed_keys: Uint8Array }[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (rows.length === 0) return out;
  const k = keyring(false);
  if (k === undefined) {
    throw new Error("cannot decrypt provider keys: SWITCHYARD_MASTER_KEY is not set and <dataDir>/master.key is missing (was the key file deleted?)");
  }
  for (const r of rows) {
    try {
      out.set(r.id, JSON.parse(k.box.open(r.sealed_keys, context(r.id))) as string[]);
    } catch {
      // Fail the start: serving with garbage keys would only turn into 401s from every provider.
      throw new Error(`cannot decrypt provider keys: SWITCHYARD_MASTER_KEY changed? (provider '${r.id}' does not open with the key from ${k.origin})`);
    }
  }
  return out;
}

/** Rows of either database as stored records (numbers may arrive as strings from PostgreSQL). */
export function routingOf(
  keyring: Keyring,
  providers: readonly Record<string, unknown>[],
  aliases: readonly Record<string, unknown>[],
  routes: readonly Record<string, unknown>[],
): StoredRouting {
  const keys = openKeys(keyring, providers as unknown as ProviderRow[]);
  return {
    providers: (providers as unknown as ProviderRow[]).map((r) => ({
      id: r.id,
      type: r.type,
      baseUrl: r.base_url,
      keys: keys.get(r.id) ?? [],
      models: JSON.parse(r.models) as string[],
      headers: JSON.parse(r.headers) as Record<string, string>,
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
    })),
    aliases: aliases.map((r) => ({ name: r["name"] as string, target: r["target"] as string, createdAt: Number(r["created_at"]), updatedAt: Number(r["updated_at"]) })),
    routes: routes.map((r) => ({ name: r["name"] as string, route: JSON.parse(r["spec"] as string) as Route, createdAt: Number(r["created_at"]), updatedAt: Number(r["updated_at"]) })),
  };
}

/** Creates the tables when missing (admin.db is shared with people and the audit log) and returns the store. */
export function openProviderStore(db: DatabaseSync, keyring: Keyring): ProviderStore {
  db.exec(SCHEMA);
  const q = {
    providers: db.prepare("SELECT * FROM admin_providers ORDER BY id"),
    aliases: db.prepare("SELECT name, target, created_at, updated_at FROM admin_aliases ORDER BY name"),
    routes: db.prepare("SELECT name, spec, created_at, updated_at FROM admin_routes ORDER BY name"),
    putProvider: db.prepare(`INSERT INTO admin_providers (id, type, base_url, models, headers, sealed_keys, created_at, updated_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (id) DO UPDATE SET type = excluded.type, base_url = excluded.base_url, models = excluded.models,
        headers = excluded.headers, sealed_keys = excluded.sealed_keys, updated_at = excluded.updated_at`),
    deleteProvider: db.prepare("DELETE FROM admin_providers WHERE id = ?"),
    putAlias: db.prepare(`INSERT INTO admin_aliases (name, target, created_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET target = excluded.target, updated_at = excluded.updated_at`),
    deleteAlias: db.prepare("DELETE FROM admin_aliases WHERE name = ?"),
    putRoute: db.prepare(`INSERT INTO admin_routes (name, spec, created_at, updated_at) VALUES (?, ?, ?, ?)
      ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`),
    deleteRoute: db.prepare("DELETE FROM admin_routes WHERE name = ?"),
  };

  return {
    shared: false,
    load: async () => routingOf(keyring, q.providers.all() as Record<string, unknown>[], q.aliases.all() as Record<string, unknown>[], q.routes.all() as Record<string, unknown>[]),
    version: async () => undefined,
    async putProvider(p) {
      q.putProvider.run(p.id, p.type, p.baseUrl, JSON.stringify(p.models), JSON.stringify(p.headers), sealKeys(keyring, p), p.createdAt, p.updatedAt);
      return undefined;
    },
    deleteProvider: async (id) => void q.deleteProvider.run(id),
    putAlias: async (a) => void q.putAlias.run(a.name, a.target, a.createdAt, a.updatedAt),
    deleteAlias: async (name) => void q.deleteAlias.run(name),
    putRoute: async (r) => void q.putRoute.run(r.name, JSON.stringify(r.route), r.createdAt, r.updatedAt),
    deleteRoute: async (name) => void q.deleteRoute.run(name),
  };
}
