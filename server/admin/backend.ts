import type { Pool } from "pg";
import { createAuditLog, type AuditLog } from "./audit.ts";
import { createPgAuditLog } from "./audit-pg.ts";
import { openProviderStore, type Keyring, type ProviderStore } from "./providers-store.ts";
import { createPgProviderStore } from "./providers-store-pg.ts";
import { openAdminStore, type AdminBackend, type AdminStore } from "./store.ts";
import { openPgAdminStore } from "./store-pg.ts";

/**
 * The admin plane's database, one of two: SQLite (admin.db in the data
 * directory, the default) or the shared PostgreSQL pool when database.url is
 * set. People, sessions, admin API keys, the audit log and admin-made
 * providers all live in the one chosen.
 */
export function openStore(o: { database?: Pool | undefined; path: string }): Promise<AdminStore> {
  return o.database === undefined ? Promise.resolve(openAdminStore(o.path)) : openPgAdminStore(o.database);
}

/** The audit log in the store's database (its tables exist once the store is open). */
export function openAuditLog(backend: AdminBackend): AuditLog {
  return backend.kind === "sqlite" ? createAuditLog(backend.db) : createPgAuditLog(backend.pool);
}

/** Admin-made providers, aliases and routes in the store's database. */
export function openProviders(backend: AdminBackend, keyring: Keyring): ProviderStore {
  return backend.kind === "sqlite" ? openProviderStore(backend.db, keyring) : createPgProviderStore(backend.pool, keyring);
}
