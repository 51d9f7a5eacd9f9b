import type { Pool } from "pg";
import type { Logger } from "../telemetry/log.ts";

/**
 * The shared PostgreSQL connection pool, when `database.url` is set: the
 * request log and the admin plane (people, sessions, admin keys, providers,
 * audit) then live there, so every instance sees the same records. Without
 * it they stay in SQLite files under the data directory.
 */
export interface DatabaseOptions {
  url: string;
  /** Connections this instance may hold. */
  poolSize: number;
  /** A statement running longer is cancelled by the server. */
  statementTimeoutMs: number;
  logger: Logger;
}

export type { Pool };

export async function openDatabase(o: DatabaseOptions): Promise<Pool> {
  // Loaded only when configured: most installs never use it, and cold start pays for every module.
  const { default: pg } = await import("pg");
  const pool = new pg.Pool({
    connectionString: o.url,
    max: o.poolSize,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: o.statementTimeoutMs,
    application_name: "switchyard",
  });
  // An idle connection dropped by the server emits here; unhandled, it would end the process.
  pool.on("error", (err) => o.logger.warn("postgres connection lost; it will be replaced", { error: err.message }));
  // Fail at start, with the reason, rather than on the first request.
  const client = await pool.connect().catch((err: Error) => {
    void pool.end();
    throw new Error(`cannot connect to PostgreSQL at ${redactUrl(o.url)}: ${err.message}`);
  });
  client.release();
  return pool;
}

/** The URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable URL)";
  }
}
