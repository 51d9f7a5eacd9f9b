import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./redis.ts";

export interface RunningPostgres {
  /** Superuser URL of the default database. */
  url: string;
  port: number;
  /** A fresh, empty database on this server; its URL. */
  newDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Starts a throwaway PostgreSQL (Debian's package) on a free loopback port,
 * trust authentication, data in a temporary folder. PostgreSQL refuses to
 * run as root, so as root it runs as the `postgres` user the package makes.
 */
export async function startPostgres(): Promise<RunningPostgres> {
  const bin = findBin();
  const dir = mkdtempSync(join(tmpdir(), "sy-pg-"));
  const asRoot = process.getuid?.() === 0;
  const run = (cmd: string, args: string[]): void => {
    const argv = asRoot ? ["-u", "postgres", "--", join(bin, cmd), ...args] : args;
    const r = spawnSync(asRoot ? "runuser" : join(bin, cmd), argv, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${cmd} failed (${r.status}): ${r.stderr || r.stdout}`);
  };
  if (asRoot) {
    const pwUid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const pwGid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, pwUid, pwGid);
  }
  const data = join(dir, "data");
  run("initdb", ["-D", data, "-A", "trust", "-U", "app", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"]);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      // fsync off: a test server need not survive a power cut, and it is much faster.
      run("pg_ctl", ["-D", data, "-l", join(dir, "log"), "-w", "-t", "30", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, "start"]);
    } catch (err) {
      if (attempt >= 3) throw err;
      continue;
    }
    const url = `postgres://app@127.0.0.1:${port}/postgres`;
    let n = 0;
    return {
      url,
      port,
      async newDatabase() {
        const name = `t${process.pid}_${++n}_${Date.now().toString(36)}`;
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE ${name}`);
        } finally {
          await client.end();
        }
        return `postgres://app@127.0.0.1:${port}/${name}`;
      },
      async stop() {
        try {
          run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    };
  }
}

function findBin(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions.length === 0) throw new Error("PostgreSQL not found under /usr/lib/postgresql; .ci/run installs it with apt-get install postgresql");
  return join(root, versions[0]!, "bin");
}
