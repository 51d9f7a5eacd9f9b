/**
 * The `switchyard` command: `start` (the default) runs the gateway; the
 * others work on the data directory of a gateway's configuration, so they run
 * beside a live gateway or without one.
 *
 *   switchyard [start] [--config FILE] [--port N] …
 *   switchyard admin create-owner --email EMAIL [--name NAME] [--config FILE]
 *   switchyard audit verify [--config FILE]
 *   switchyard audit export [--config FILE]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createAuditLog, GENESIS, verifyChain, type AuditEntry, type VerifyResult } from "./admin/audit.ts";
import { hashPassword, passwordProblem } from "./admin/passwords.ts";
import { newAdminId, normalEmail, openAdminStore } from "./admin/store.ts";
import { ConfigError, loadConfig } from "./config/load.ts";

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

Options for admin and audit:
  --config FILE             the gateway's configuration (for its data directory);
                            without it, SWITCHYARD_DATA_DIR or .data
  -h, --help                show this help
`;

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
}

async function dataDir(config: string | undefined): Promise<string> {
  return (await loadConfig({ file: config })).dataDir;
}

async function createOwner(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { email: { type: "string" }, name: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void process.stdout.write(HELP), 0;
  const email = normalEmail(values.email ?? "");
  if (email === undefined) throw new ConfigError("--email: an email address is required");
  const password = process.env["SWITCHYARD_OWNER_PASSWORD"] ?? (await readStdin());
  const problem = passwordProblem(password);
  if (problem) throw new ConfigError(problem);
  const store = openAdminStore(join(await dataDir(values.config), "admin.db"));
  try {
    if (store.userByEmail(email) !== undefined) throw new ConfigError(`a user with email ${email} exists`);
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
    store.createUser(user);
    const { passwordHash: _, ...shown } = user;
    createAuditLog(store.db).record({ actorId: "cli", actorLabel: `switchyard admin create-owner (${process.env["USER"] ?? "unknown user"})`, action: "user.create", target: `user:${user.id}`, after: shown });
    process.stdout.write(`owner ${email} created (${user.id}); sign in at /ui/\n`);
    return 0;
  } finally {
    store.close();
  }
}

/** The archive files, oldest first, then the database: one chain from the first entry ever written. */
function verifyAll(dir: string): VerifyResult & { archived: number } {
  const archiveDir = join(dir, "audit-archive");
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
  const store = openAdminStore(join(dir, "admin.db"));
  try {
    const log = createAuditLog(store.db);
    const anchor = store.db.prepare("SELECT seq, hash FROM audit_meta WHERE name = 'anchor'").get() as { seq: number; hash: string } | undefined;
    if (anchor !== undefined && (anchor.seq !== head.seq || anchor.hash !== head.hash)) {
      return { ok: false, checked: archived, firstBadSeq: head.seq + 1, problem: `the archive ends at entry ${head.seq} but the database continues from entry ${anchor.seq} (archive files missing or altered)`, headSeq: head.seq, headHash: head.hash, archived };
    }
    return { ...log.verify(), archived };
  } finally {
    store.close();
  }
}

async function audit(sub: string | undefined, args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void process.stdout.write(HELP), 0;
  const dir = await dataDir(values.config);
  if (sub === "verify") {
    const r = verifyAll(dir);
    if (r.ok) {
      process.stdout.write(`audit log OK: ${r.checked} entries in the database, ${r.archived} archived; head ${r.headSeq} ${r.headHash}\n`);
      return 0;
    }
    process.stdout.write(`audit log ALTERED at entry ${r.firstBadSeq}: ${r.problem}\n`);
    return 1;
  }
  if (sub === "export") {
    const store = openAdminStore(join(dir, "admin.db"));
    try {
      for (const e of createAuditLog(store.db).entries()) process.stdout.write(JSON.stringify(e) + "\n");
    } finally {
      store.close();
    }
    return 0;
  }
  throw new ConfigError(`unknown command 'audit ${sub ?? ""}': verify or export`);
}

async function run(argv: string[]): Promise<number> {
  const [cmd, sub, ...rest] = argv;
  if (cmd === "-h" || cmd === "--help" || cmd === "help") return void process.stdout.write(HELP), 0;
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
    process.stderr.write(`switchyard: ${err instanceof ConfigError ? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
