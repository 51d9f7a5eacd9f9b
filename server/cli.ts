/**
 * The `switchyard` command: `start` (the default) runs the gateway; `admin`
 * and `audit` work on the admin records a gateway's configuration names (its
 * data directory's admin.db, or PostgreSQL with database.url), so they run
 * beside live gateways or without one; `config check` and `import`
 * work on files; `keys` calls a running gateway's KeyService.
 *
 *   switchyard [start] [--config FILE] [--port N] …
 *   switchyard admin create-owner --email EMAIL [--name NAME] [--config FILE]
 *   switchyard audit verify|export [--config FILE]
 *   switchyard config check FILE
 *   switchyard import litellm CONFIG.yaml [--out FILE]
 *   switchyard keys create|list|revoke [--url URL] [--admin-key KEY] …
 *   switchyard db migrate-log [--from FILE] [--config FILE]
 *   switchyard db migrate-admin [--from FILE] [--config FILE]
 */
import { readdirSync, readFileSync } from "node:fs";
import { semanticEmbeddingModel } from "./cache/cache.ts";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GENESIS, verifyChain, type AuditEntry, type AuditLog, type VerifyResult } from "./admin/audit.ts";
import { openAuditLog, openStore } from "./admin/backend.ts";
import { hashPassword, passwordProblem } from "./admin/passwords.ts";
import { newAdminId, normalEmail, type AdminStore } from "./admin/store.ts";
import { checkExposure } from "./config/exposure.ts";
import { ConfigError, loadConfig } from "./config/load.ts";
import type { Config } from "./config/schema.ts";
import { createProvider } from "./providers/registry.ts";
import { checkRoutes } from "./routing/plan.ts";
import { createResolver } from "./routing/resolve.ts";

const HELP = `Usage: switchyard <command> [options]

Commands:
  start                     run the gateway (default; see switchyard start --help)
  admin create-owner        add the first owner (a person who signs in to the web UI)
      --email EMAIL           required
      --name NAME             shown in the UI and the audit log
      The password is read from SWITCHYARD_OWNER_PASSWORD, or from standard input
      (at least 12 characters). The gateway never ships a default password.
  audit verify              check the audit log's hash chain, archives included;
                            exits 1 and names the first bad entry when it was altered
  audit export              print every retained audit entry as JSON Lines
  config check FILE         validate a configuration file as start would (see config --help)
  import litellm FILE       convert a LiteLLM proxy config.yaml (see import --help)
  keys create|list|revoke   manage virtual keys on a running gateway (see keys --help)
  db migrate-log            copy a SQLite request log into PostgreSQL (see db --help)
  db migrate-admin          copy admin.db (people, keys, providers, audit log) into
                            PostgreSQL (see db migrate-admin --help)

Options for admin and audit:
  --config FILE             the gateway's configuration (its data directory, or
                            database.url: then the admin plane in PostgreSQL);
                            without it, SWITCHYARD_DATABASE_URL, else
                            SWITCHYARD_DATA_DIR or .data
  -h, --help                show this help
`;

const HELP_CONFIG = `Usage: switchyard config check FILE

Loads FILE (.yaml, .yml or .json) exactly as \`switchyard start --config FILE\` would:
\${NAME} references are expanded from the environment, SWITCHYARD_* and PORT/HOST
overrides apply, every field is validated, and route targets, fallbacks, aliases
and the semantic cache's embedding model must name configured providers.
Prints "ok" and a summary, or every problem with its field path.

Exit codes: 0 valid, 1 invalid (or unreadable), 2 usage error.
Options:
  -h, --help                show this help
`;

const HELP_IMPORT = `Usage: switchyard import litellm CONFIG.yaml [--out switchyard.yaml]

Converts a LiteLLM proxy configuration into a Switchyard one: model_list
deployments become providers (one per type and endpoint, several keys rotated),
model names become aliases or weighted routes with fallbacks, and router,
litellm and general settings map onto routing, cache, pricing and logLevel where
Switchyard has an equivalent. os.environ/NAME becomes \${NAME}.

Every setting that is not carried over is printed as
  not carried over: <setting>: <why>
followed by notes on changed behaviour and the environment variables to set.
Without --out the configuration goes to standard output and the report to
standard error. Check the result with: switchyard config check FILE

Exit codes: 0 converted (possibly with warnings), 2 unreadable input or usage error.
Options:
  --out FILE                write the configuration to FILE (the report to standard output)
  -h, --help                show this help
`;

const HELP_KEYS = `Usage: switchyard keys <create|list|revoke> [options]

Manages virtual keys on a running gateway (KeyService over Connect JSON).

  keys create --name NAME [--team ID] [--budget-usd N [--period P]] [--models M1,M2]
                            prints the new key's secret, once
  keys list [--team ID] [--all]
                            a table of keys (never secrets); --all adds revoked keys
  keys revoke ID            revoke a key for good

Options:
  --url URL                 the gateway (default http://127.0.0.1:8080, or SWITCHYARD_URL)
  --admin-key KEY           the admin key, or an admin API key (sk-sya-…);
                            default SWITCHYARD_ADMIN_KEY
  --period P                minute, hour, day, week, month (default) or lifetime
  --models LIST             allowed models, comma-separated ("gpt-4o", "openai/gpt-4o", "gpt-4o*")
  -h, --help                show this help

Exit codes: 0 done, 1 the gateway refused or could not be reached (its message is
printed), 2 usage error.
`;

const HELP_DB = `Usage: switchyard db migrate-log [--from FILE] [--config FILE]

Copies a gateway's request log from its SQLite file into the PostgreSQL
database the configuration names (database.url, or SWITCHYARD_DATABASE_URL),
so every instance sharing that database sees the history. The file is only
read (a gateway may still be writing it); files from older versions are read
as they are. Rows already in PostgreSQL (same record id) are skipped, so a
second run, say after the last instance has switched over, copies only what
is new. Run it once per instance's file.

Options:
  --from FILE               the SQLite request log (default: the configuration's
                            requestLog.path, or <dataDir>/requests.db)
  --config FILE             the gateway's configuration (database.url, dataDir);
                            without it, SWITCHYARD_DATABASE_URL and SWITCHYARD_DATA_DIR or .data
  -h, --help                show this help

Exit codes: 0 copied, 1 the file or the database could not be read or written,
2 usage error (no database configured, unknown option).
`;

const HELP_MIGRATE_ADMIN = `Usage: switchyard db migrate-admin [--from FILE] [--config FILE]

Copies a gateway's admin plane from its SQLite file (admin.db) into the
PostgreSQL database the configuration names (database.url, or
SWITCHYARD_DATABASE_URL), in one transaction: people, admin API keys,
providers, aliases and routes made through the API, and the audit log entry
for entry, so its hash chain (and archive files made before) still verifies
there. Sessions are not copied: people sign in again.

Provider keys stay sealed under the master key they were written with: the
instances on PostgreSQL need it too (SWITCHYARD_MASTER_KEY, or the contents of
<dataDir>/master.key). The copy is refused when they do not open with it.

Run it before the instances write to PostgreSQL. Rows already there (same id,
or same email) are kept; the audit log is copied only into an empty one (a
second run leaves it when it already ends where the file's does).

Options:
  --from FILE               the admin database (default: <dataDir>/admin.db)
  --config FILE             the gateway's configuration (database.url, dataDir);
                            without it, SWITCHYARD_DATABASE_URL and SWITCHYARD_DATA_DIR or .data
  -h, --help                show this help

Exit codes: 0 copied, 1 the file or the database could not be read or written,
or the audit log cannot be copied, 2 usage error (no database configured).
`;

/** A failure whose message is the whole story (no stack), with its exit code. */
class CommandError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const print = (text: string): number => (process.stdout.write(text), 0);

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

/** The admin plane's records as the gateway's configuration places them: PostgreSQL (database.url), else <dataDir>/admin.db. */
interface AdminFiles {
  dataDir: string;
  store: AdminStore;
  audit: AuditLog;
  close(): Promise<void>;
}

async function openAdmin(configFile: string | undefined): Promise<AdminFiles> {
  const config = await loadConfig({ file: configFile });
  const url = config.database.url;
  let pool: import("./database/postgres.ts").Pool | undefined;
  if (url !== undefined) {
    const [{ openDatabase }, { silentLogger }] = await Promise.all([import("./database/postgres.ts"), import("./telemetry/log.ts")]);
    try {
      pool = await openDatabase({ url, poolSize: 2, statementTimeoutMs: config.database.statementTimeoutMs, logger: silentLogger });
    } catch (err) {
      throw new CommandError((err as Error).message);
    }
  }
  try {
    const store = await openStore({ database: pool, path: join(config.dataDir, "admin.db") });
    return {
      dataDir: config.dataDir,
      store,
      audit: openAuditLog(store.backend),
      async close() {
        store.close();
        await pool?.end();
      },
    };
  } catch (err) {
    await pool?.end();
    throw err;
  }
}

async function createOwner(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { email: { type: "string" }, name: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void process.stdout.write(HELP), 0;
  const email = normalEmail(values.email ?? "");
  if (email === undefined) throw new ConfigError("--email: an email address is required");
  const password = process.env["SWITCHYARD_OWNER_PASSWORD"] ?? (await readStdin());
  const problem = passwordProblem(password);
  if (problem) throw new ConfigError(problem);
  const admin = await openAdmin(values.config);
  const { store } = admin;
  try {
    if ((await store.userByEmail(email)) !== undefined) throw new ConfigError(`a user with email ${email} exists`);
    const now = Date.now();
    const user = {
      id: newAdminId("usr"),
      email,
      name: values.name ?? email,
      passwordHash: await hashPassword(password),
      grants: [{ role: "owner" as const, scope: { kind: "global" as const } }],
      disabled: false,
      createdAt: now,
      updatedAt: now,
    };
    await store.createUser(user);
    const { passwordHash: _, ...shown } = user;
    await admin.audit.record({ actorId: "cli", actorLabel: `switchyard admin create-owner (${process.env["USER"] ?? "unknown user"})`, action: "user.create", target: `user:${user.id}`, after: shown });
    process.stdout.write(`owner ${email} created (${user.id}); sign in at /ui/\n`);
    return 0;
  } finally {
    await admin.close();
  }
}

/** The archive files, oldest first, then the database: one chain from the first entry ever written. */
async function verifyAll(admin: AdminFiles): Promise<VerifyResult & { archived: number }> {
  const archiveDir = join(admin.dataDir, "audit-archive");
  let files: string[] = [];
  try {
    files = readdirSync(archiveDir).filter((f) => /^audit-\d+-\d+\.jsonl$/.test(f)).sort();
  } catch {
    // No archive yet.
  }
  let head = { seq: 0, hash: GENESIS };
  let archived = 0;
  for (const f of files) {
    const entries = readFileSync(join(archiveDir, f), "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as AuditEntry);
    const r = verifyChain(entries, head);
    if (!r.ok) return { ...r, problem: `${f}: ${r.problem}`, archived };
    archived += r.checked;
    head = { seq: r.headSeq, hash: r.headHash };
  }
  // The database's own check starts at its anchor (the last archived entry), which must be where the files end.
  const r = await admin.audit.verify();
  const anchor = r.from;
  if (anchor !== undefined && anchor.seq > 0 && (anchor.seq !== head.seq || anchor.hash !== head.hash)) {
    return { ok: false, checked: archived, firstBadSeq: head.seq + 1, problem: `the archive ends at entry ${head.seq} but the database continues from entry ${anchor.seq} (archive files missing or altered)`, headSeq: head.seq, headHash: head.hash, archived };
  }
  return { ...r, archived };
}

async function audit(sub: string | undefined, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void process.stdout.write(HELP), 0;
  if (sub !== "verify" && sub !== "export") throw new ConfigError(`unknown command 'audit ${sub ?? ""}': verify or export`);
  const admin = await openAdmin(values.config);
  try {
    if (sub === "verify") {
      const r = await verifyAll(admin);
      if (r.ok) {
        process.stdout.write(`audit log OK: ${r.checked} entries in the database, ${r.archived} archived; head ${r.headSeq} ${r.headHash}\n`);
        return 0;
      }
      process.stdout.write(`audit log ALTERED at entry ${r.firstBadSeq}: ${r.problem}\n`);
      return 1;
    }
    for await (const e of admin.audit.entries()) {
      // Waits when stdout is a slow pipe, so a long log is never buffered whole.
      if (!process.stdout.write(JSON.stringify(e) + "\n")) await new Promise((r) => process.stdout.once("drain", r));
    }
    return 0;
  } finally {
    await admin.close();
  }
}

/** `config check FILE`: load and validate as start does; 0 valid, 1 invalid. */
async function configCheck(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) return print(HELP_CONFIG);
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new ConfigError("config check: name one file: switchyard config check FILE");
  let config: Config;
  try {
    config = await loadConfig({ file });
    checkExposure(config);
    await checkRouting(config);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    return 1;
  }
  const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;
  const aliases = Object.keys(config.aliases).length;
  const routes = Object.keys(config.routes).length;
  return print(`ok: ${file}: ${count(config.providers.length, "provider", "providers")}, ${count(aliases, "alias", "aliases")}, ${count(routes, "route", "routes")}\n`);
}

/**
 * What the gateway checks when it builds routing at start: route targets and
 * fallbacks resolve to configured providers, and so does the semantic
 * cache's embedding model. Providers are built (no connection is opened) and closed.
 */
async function checkRouting(config: Config): Promise<void> {
  const providers = new Map(config.providers.map((p) => [p.id, createProvider(p)]));
  try {
    const resolve = createResolver(providers, config.aliases, { has: () => false });
    checkRoutes(config.routes, resolve);
    const { mode, semantic } = config.cache;
    const embedding = semanticEmbeddingModel(semantic.embeddingModel, providers);
    if ((mode === "semantic" || mode === "both") && embedding === undefined) {
      throw new ConfigError("invalid configuration: cache.semantic.embeddingModel: the semantic cache needs one of the gateway's embedding models (\"provider/model\")");
    }
    if (semantic.embeddingModel !== undefined) {
      try {
        resolve(semantic.embeddingModel);
      } catch (err) {
        throw new ConfigError(`invalid configuration: cache.semantic.embeddingModel: ${(err as Error).message}`);
      }
    }
  } finally {
    await Promise.all([...providers.values()].map((p) => p.close()));
  }
}

/** `import litellm FILE [--out FILE]`: 0 converted (warnings allowed), 2 unreadable input. */
async function importCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return print(HELP_IMPORT);
  const file = positionals[0];
  if (file === undefined || positionals.length > 1) throw new ConfigError("import litellm: name one LiteLLM config file: switchyard import litellm CONFIG.yaml [--out FILE]");
  // Loaded here, not at start-up: the importer and its YAML parser serve this command only.
  const { formatConfig, formatReport, importLiteLLM, ImportInputError, readLiteLLMFile } = await import("./config/import-litellm.ts");
  let input: Record<string, unknown>;
  try {
    input = await readLiteLLMFile(file);
  } catch (err) {
    if (err instanceof ImportInputError) throw new CommandError(err.message, 2);
    throw err;
  }
  const result = importLiteLLM(input);
  const text = formatConfig(result, file);
  const report = formatReport(result.report);
  if (values.out === undefined) {
    process.stdout.write(text);
    process.stderr.write(report);
    return 0;
  }
  try {
    await writeFile(values.out, text);
  } catch (err) {
    throw new CommandError(`cannot write ${values.out}: ${(err as Error).message}`);
  }
  const c = result.config;
  const size = (k: string): number => (Array.isArray(c[k]) ? (c[k] as unknown[]).length : Object.keys((c[k] as object | undefined) ?? {}).length);
  process.stdout.write(report);
  return print(`wrote ${values.out}: ${size("providers")} providers, ${size("aliases")} aliases, ${size("routes")} routes, ${result.report.notCarried.length} settings not carried over; check it with: switchyard config check ${values.out}\n`);
}

const PERIODS: Record<string, string> = { minute: "PERIOD_MINUTE", hour: "PERIOD_HOUR", day: "PERIOD_DAY", week: "PERIOD_WEEK", month: "PERIOD_MONTH", lifetime: "PERIOD_NONE" };

/** A virtual key as KeyService's JSON shows it (fields at their defaults are left out). */
interface KeyJson {
  id: string;
  name: string;
  hint?: string;
  teamId?: string;
  allowedModels?: string[];
  budget?: { limitUsd?: number; period?: string };
  enabled?: boolean;
  revokedAt?: string;
  expiresAt?: string;
  createdAt?: string;
}

/** `keys create|list|revoke` against a running gateway; 1 when it refuses or cannot be reached. */
async function keysCommand(sub: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      url: { type: "string" }, "admin-key": { type: "string" }, name: { type: "string" }, team: { type: "string" },
      "budget-usd": { type: "string" }, period: { type: "string" }, models: { type: "string" }, all: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return print(HELP_KEYS);
  if (!["create", "list", "revoke"].includes(sub)) throw new ConfigError(`unknown command 'keys ${sub}': create, list or revoke`);
  const url = (values.url ?? process.env["SWITCHYARD_URL"] ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  const adminKey = values["admin-key"] ?? process.env["SWITCHYARD_ADMIN_KEY"];
  if (adminKey === undefined || adminKey === "") throw new CommandError("keys: no admin credential: pass --admin-key or set SWITCHYARD_ADMIN_KEY (the admin key, or an admin API key sk-sya-…)");
  const call = <T>(method: string, body: object): Promise<T> => keyService<T>(url, adminKey, method, body);

  if (sub === "create") {
    const name = values.name ?? positionals[0];
    if (name === undefined) throw new ConfigError("keys create: --name is required");
    const body: Record<string, unknown> = { name };
    if (values.team !== undefined) body["teamId"] = values.team;
    if (values.models !== undefined) body["allowedModels"] = values.models.split(",").map((m) => m.trim()).filter((m) => m !== "");
    if (values["budget-usd"] !== undefined) {
      const limitUsd = Number(values["budget-usd"]);
      if (!Number.isFinite(limitUsd) || limitUsd < 0) throw new ConfigError(`--budget-usd: '${values["budget-usd"]}' is not an amount in USD`);
      const period = PERIODS[values.period ?? "month"];
      if (period === undefined) throw new ConfigError(`--period: '${values.period}' must be one of ${Object.keys(PERIODS).join(", ")}`);
      body["budget"] = { limitUsd, period };
    } else if (values.period !== undefined) throw new ConfigError("--period goes with --budget-usd");
    const r = await call<{ key: KeyJson; secret: string }>("CreateKey", body);
    return print(`created ${r.key.id} (${r.key.name})\nsecret: ${r.secret}\nThe secret is shown only now; the gateway keeps only its hash.\n`);
  }
  if (sub === "revoke") {
    const id = positionals[0];
    if (id === undefined) throw new ConfigError("keys revoke: name the key: switchyard keys revoke ID");
    const r = await call<{ key: KeyJson }>("RevokeKey", { id });
    return print(`revoked ${r.key.id} (${r.key.name})\n`);
  }
  const keys: KeyJson[] = [];
  let pageToken = "";
  do {
    const r = await call<{ keys?: KeyJson[]; nextPageToken?: string }>("ListKeys", { teamId: values.team ?? "", includeRevoked: values.all === true, pageSize: 1000, pageToken });
    keys.push(...(r.keys ?? []));
    pageToken = r.nextPageToken ?? "";
  } while (pageToken !== "");
  return print(keyTable(keys));
}

/** POST /switchyard.v1.KeyService/<method>; the server's own message on failure. */
async function keyService<T>(url: string, adminKey: string, method: string, body: object): Promise<T> {
  let res: Response;
  try {
    res = await fetch(`${url}/switchyard.v1.KeyService/${method}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${adminKey}` },
      body: JSON.stringify(body),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message ?? (err as Error).message;
    throw new CommandError(`cannot reach the gateway at ${url}: ${cause}`);
  }
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json ?? {}) as { code?: string; message?: string };
    throw new CommandError(`${method}: ${e.message ?? `HTTP ${res.status}`}${e.code ? ` (${e.code})` : ""}`);
  }
  return json as T;
}

function keyTable(keys: KeyJson[]): string {
  if (keys.length === 0) return "no keys\n";
  const now = Date.now();
  const status = (k: KeyJson): string =>
    k.revokedAt ? "revoked" : k.enabled === false ? "disabled" : k.expiresAt && Date.parse(k.expiresAt) <= now ? "expired" : "active";
  const budget = (k: KeyJson): string => {
    if (k.budget === undefined) return "-";
    const period = (k.budget.period ?? "").replace(/^PERIOD_/, "").toLowerCase();
    return `$${k.budget.limitUsd ?? 0}${period === "none" ? " lifetime" : period ? `/${period}` : ""}`;
  };
  const rows = [["ID", "NAME", "TEAM", "MODELS", "BUDGET", "STATUS", "HINT", "CREATED"]];
  for (const k of keys) {
    rows.push([k.id, k.name, k.teamId || "-", k.allowedModels?.join(",") || "any", budget(k), status(k), k.hint ?? "", (k.createdAt ?? "").slice(0, 10)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

/** `db migrate-log`: the SQLite request log into PostgreSQL; never prints the URL's password. */
async function dbCommand(sub: string, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return print(HELP_DB);
  if (sub !== "migrate-log") throw new ConfigError(`unknown command 'db ${sub}': migrate-log`);
  const config = await loadConfig({ file: values.config });
  const url = config.database.url;
  if (url === undefined) {
    throw new ConfigError("db migrate-log: no PostgreSQL to copy to: set database.url in the configuration (--config FILE) or SWITCHYARD_DATABASE_URL");
  }
  const from = values.from ?? config.requestLog.path ?? join(config.dataDir, "requests.db");
  const [{ openDatabase, redactUrl }, { migrateLogToPostgres }, { silentLogger }] = await Promise.all([
    import("./database/postgres.ts"), import("./telemetry/log-migrate.ts"), import("./telemetry/log.ts"),
  ]);
  let pool;
  try {
    pool = await openDatabase({ url, poolSize: 2, statementTimeoutMs: config.database.statementTimeoutMs, logger: silentLogger });
  } catch (err) {
    throw new CommandError(`db migrate-log: ${(err as Error).message}`);
  }
  try {
    let reported = 0;
    const r = await migrateLogToPostgres(from, pool, (p) => {
      if (p.read - reported < 50_000) return;
      reported = p.read;
      process.stderr.write(`${p.read} rows read, ${p.inserted} copied\n`);
    });
    return print(`copied the request log ${from} to ${redactUrl(url)}: ${r.read} rows read, ${r.inserted} copied, ${r.skipped} already there\n`);
  } catch (err) {
    throw new CommandError(`db migrate-log: ${(err as Error).message}`);
  } finally {
    await pool.end();
  }
}

/** `db migrate-admin`: admin.db into PostgreSQL; never prints the URL's password. */
async function migrateAdmin(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { from: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return print(HELP_MIGRATE_ADMIN);
  const config = await loadConfig({ file: values.config });
  const url = config.database.url;
  if (url === undefined) {
    throw new ConfigError("db migrate-admin: no PostgreSQL to copy to: set database.url in the configuration (--config FILE) or SWITCHYARD_DATABASE_URL");
  }
  const from = values.from ?? join(config.dataDir, "admin.db");
  const [{ openDatabase, redactUrl }, { migrateAdminToPostgres }, { createKeyring }, { silentLogger }] = await Promise.all([
    import("./database/postgres.ts"), import("./admin/migrate.ts"), import("./admin/providers-store.ts"), import("./telemetry/log.ts"),
  ]);
  let pool;
  try {
    pool = await openDatabase({ url, poolSize: 2, statementTimeoutMs: config.database.statementTimeoutMs, logger: silentLogger });
  } catch (err) {
    throw new CommandError(`db migrate-admin: ${(err as Error).message}`);
  }
  try {
    const r = await migrateAdminToPostgres(from, pool, createKeyring(config.dataDir));
    const c = (n: { read: number; inserted: number }, what: string): string => `${n.inserted} of ${n.read} ${what}`;
    const audit = r.audit.already ? "the audit log was already there" : `${r.audit.copied} audit entries`;
    print(`copied ${from} to ${redactUrl(url)}: ${c(r.users, "people")}, ${c(r.apiKeys, "admin API keys")}, ${c(r.providers, "providers")}, ${c(r.aliases, "aliases")}, ${c(r.routes, "routes")}, ${audit}\n`);
    if (!r.verified.ok) throw new CommandError(`db migrate-admin: the audit log in PostgreSQL does not verify (entry ${r.verified.firstBadSeq}: ${r.verified.problem})`);
    return print(`audit log OK in PostgreSQL: ${r.verified.checked} entries; head ${r.verified.headSeq} ${r.verified.headHash}\n`);
  } catch (err) {
    throw err instanceof CommandError ? err : new CommandError(`db migrate-admin: ${(err as Error).message}`);
  } finally {
    await pool.end();
  }
}

async function run(argv: string[]): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  const wantsHelp = (s: string | undefined): boolean => s === "-h" || s === "--help" || s === undefined;
  if (cmd === "-h" || cmd === "--help" || cmd === "help") return void process.stdout.write(HELP), 0;
  if (cmd === "config") {
    if (wantsHelp(sub)) return print(HELP_CONFIG);
    if (sub === "check") return configCheck(rest);
    throw new ConfigError(`unknown command 'config ${sub ?? ""}': check`);
  }
  if (cmd === "import") {
    if (wantsHelp(sub)) return print(HELP_IMPORT);
    if (sub === "litellm") return importCommand(rest);
    throw new ConfigError(`unknown command 'import ${sub ?? ""}': litellm`);
  }
  if (cmd === "keys") {
    if (wantsHelp(sub)) return print(HELP_KEYS);
    return keysCommand(sub!, rest);
  }
  if (cmd === "db" && sub === "migrate-admin") return migrateAdmin(rest);
  if (cmd === "db") {
    if (wantsHelp(sub)) return print(HELP_DB);
    return dbCommand(sub!, rest);
  }
  if ((cmd === "admin" || cmd === "audit") && wantsHelp(sub)) return print(HELP);
  if (cmd === "admin") {
    if (sub === "create-owner") return createOwner(rest);
    throw new ConfigError(`unknown command 'admin ${sub ?? ""}': create-owner`);
  }
  if (cmd === "audit") return audit(sub, rest);
  // Anything else runs the gateway; "start" itself is optional.
  process.argv.splice(2, cmd === "start" ? 1 : 0);
  await import("./main.ts");
  return -1;
}

run(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`switchyard: ${err instanceof ConfigError || err instanceof CommandError ? err.message : String(err)}\n`);
    process.exitCode = err instanceof CommandError ? err.exitCode : 2;
  },
);
