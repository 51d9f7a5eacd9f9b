import { createHash } from "node:crypto";
import { appendFileSync, mkdirSync, openSync, fsyncSync, closeSync } from "node:fs";
import { join } from "node:path";
import type { DatabaseSync } from "node:sqlite";

/**
 * The audit log: every change of state and every login, hash-chained. Each
 * entry's hash covers its fields and the previous entry's hash, and the head
 * (last seq and hash) is written in the same transaction, so verify() finds
 * an edited entry (its hash), an inserted or deleted one (the chain or the
 * sequence breaks) and a removed tail (the head no longer matches).
 *
 * Retention archives: old entries move to JSON Lines files and the anchor
 * (the last archived seq and hash) stays in the database, so the retained
 * chain still verifies and the archive can be checked against it.
 *
 * SQLite (admin.db) here; PostgreSQL, where several instances append to one
 * chain, in audit-pg.ts. Both behind the same async interface.
 */

export interface AuditInput {
  actorId: string;
  actorLabel: string;
  action: string;
  target: string;
  before?: unknown;
  after?: unknown;
  sourceIp?: string | undefined;
  requestId?: string | undefined;
  /** "ok", or the error code of a refused change. */
  outcome?: string | undefined;
}

export interface AuditEntry {
  seq: number;
  timeMs: number;
  actorId: string;
  actorLabel: string;
  action: string;
  target: string;
  beforeJson: string;
  afterJson: string;
  sourceIp: string;
  requestId: string;
  outcome: string;
  prevHash: string;
  hash: string;
}

export interface AuditFilter {
  startTimeMs?: number | undefined;
  endTimeMs?: number | undefined;
  actorId?: string | undefined;
  /** An action, or a prefix ending in "." */
  action?: string | undefined;
  target?: string | undefined;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  firstBadSeq?: number | undefined;
  problem?: string | undefined;
  headSeq: number;
  headHash: string;
  /** Where the checked run starts: the archive anchor (seq 0 and GENESIS when nothing was archived). */
  from?: { seq: number; hash: string } | undefined;
}

export interface AuditLog {
  record(input: AuditInput): Promise<AuditEntry>;
  /** Newest first; `before` is the seq to page from (exclusive). */
  list(filter: AuditFilter, pageSize: number, before?: number | undefined): Promise<AuditEntry[]>;
  /** Checks the retained chain from the anchor to the head (entries are streamed, never all loaded). */
  verify(): Promise<VerifyResult>;
  /** Oldest first, streamed. */
  entries(filter?: AuditFilter): AsyncIterable<AuditEntry>;
  /** Moves entries older than `cutoffMs` into a JSON Lines file under `dir`; returns how many. */
  archive(cutoffMs: number, dir: string): Promise<{ archived: number; file?: string | undefined }>;
}

export const GENESIS = "0".repeat(64);

/** Field names whose values never reach the audit log. */
const SECRET_FIELDS = /^(secret|headers|password|passwordHash|password_hash|hash|adminKey|admin_key|apiKeys?|api_keys?|clientSecret|client_secret|token|csrf|csrfToken|csrf_token|authorization|secretAccessKey|sessionToken|accessKeyId)$/i;

/** A deep copy with secret-named fields replaced by "[redacted]". */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_FIELDS.test(k) ? "[redacted]" : redactSecrets(v);
    return out;
  }
  return typeof value === "bigint" ? value.toString() : value;
}

function json(v: unknown): string {
  return v === undefined ? "" : JSON.stringify(redactSecrets(v));
}

/** The hash over an entry's fields and its predecessor's hash. */
export function entryHash(e: Omit<AuditEntry, "hash">): string {
  const fields = [e.seq, e.timeMs, e.actorId, e.actorLabel, e.action, e.target, e.beforeJson, e.afterJson, e.sourceIp, e.requestId, e.outcome, e.prevHash];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

/** An entry from its input, following `head`: the fields the hash covers, and the hash. */
export function nextEntry(input: AuditInput, head: { seq: number; hash: string }, timeMs = Date.now()): AuditEntry {
  const e: Omit<AuditEntry, "hash"> = {
    seq: head.seq + 1,
    timeMs,
    actorId: input.actorId,
    actorLabel: input.actorLabel,
    action: input.action,
    target: input.target,
    beforeJson: json(input.before),
    afterJson: json(input.after),
    sourceIp: input.sourceIp ?? "",
    requestId: input.requestId ?? "",
    outcome: input.outcome ?? "ok",
    prevHash: head.hash,
  };
  return { ...e, hash: entryHash(e) };
}

/**
 * Checks a run of entries fed one at a time, oldest first, against the seq
 * and hash they must follow: the database checks stream through it, so a
 * long log is never held in memory. `add` returns false at the first bad entry.
 */
export function chainChecker(after: { seq: number; hash: string }): { add(e: AuditEntry): boolean; result(): VerifyResult } {
  let prev = after;
  let checked = 0;
  let bad: VerifyResult | undefined;
  return {
    add(e) {
      if (bad !== undefined) return false;
      const fail = (problem: string): boolean => {
        bad = { ok: false, checked, firstBadSeq: e.seq, problem, headSeq: prev.seq, headHash: prev.hash, from: after };
        return false;
      };
      if (e.seq !== prev.seq + 1) return fail(e.seq > prev.seq + 1 ? `entries ${prev.seq + 1}..${e.seq - 1} are missing` : `entry ${e.seq} is out of order`);
      if (e.prevHash !== prev.hash) return fail(`entry ${e.seq} does not follow entry ${prev.seq} (inserted, or its predecessor changed)`);
      if (entryHash(e) !== e.hash) return fail(`entry ${e.seq} was changed after it was written`);
      checked++;
      prev = { seq: e.seq, hash: e.hash };
      return true;
    },
    result: () => bad ?? { ok: true, checked, headSeq: prev.seq, headHash: prev.hash, from: after },
  };
}

/**
 * Checks a run of entries, oldest first, against the seq and hash they must
 * follow. Shared by the database check and the archive files' check.
 */
export function verifyChain(entries: Iterable<AuditEntry>, after: { seq: number; hash: string }): VerifyResult {
  const c = chainChecker(after);
  for (const e of entries) if (!c.add(e)) break;
  return c.result();
}

/** The checked chain must end where the head says the last entry was written. */
export function checkHead(result: VerifyResult, head: { seq: number; hash: string }): VerifyResult {
  if (!result.ok || (head.seq === result.headSeq && head.hash === result.headHash)) return result;
  return { ...result, ok: false, firstBadSeq: result.headSeq + 1, problem: `the log ends at entry ${result.headSeq} but entry ${head.seq} was written (entries removed from the end)` };
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER NOT NULL,
  actor_id TEXT NOT NULL,
  actor_label TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  before_json TEXT NOT NULL,
  after_json TEXT NOT NULL,
  source_ip TEXT NOT NULL,
  request_id TEXT NOT NULL,
  outcome TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(time_ms);
CREATE TABLE IF NOT EXISTS audit_meta (name TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
`;

type Row = Record<string, unknown>;

/** A row of either database (PostgreSQL's BIGINT arrives as a string). */
export function entryOf(r: Row): AuditEntry {
  return {
    seq: Number(r["seq"]),
    timeMs: Number(r["time_ms"]),
    actorId: r["actor_id"] as string,
    actorLabel: r["actor_label"] as string,
    action: r["action"] as string,
    target: r["target"] as string,
    beforeJson: r["before_json"] as string,
    afterJson: r["after_json"] as string,
    sourceIp: r["source_ip"] as string,
    requestId: r["request_id"] as string,
    outcome: r["outcome"] as string,
    prevHash: r["prev_hash"] as string,
    hash: r["hash"] as string,
  };
}

/** The filter as SQL conditions; `ph` makes each placeholder ("?" for SQLite, "$n" for PostgreSQL). */
export function auditWhere(f: AuditFilter, params: (string | number)[], ph: () => string = () => "?"): string {
  const c: string[] = [];
  const add = (sql: (...p: string[]) => string, ...values: (string | number)[]): void => {
    const names = values.map((v) => (params.push(v), ph()));
    c.push(sql(...names));
  };
  if (f.startTimeMs) add((a) => `time_ms >= ${a}`, f.startTimeMs);
  if (f.endTimeMs) add((a) => `time_ms < ${a}`, f.endTimeMs);
  if (f.actorId) add((a) => `actor_id = ${a}`, f.actorId);
  if (f.action) {
    if (f.action.endsWith(".")) add((n, a) => `substr(action, 1, ${n}) = ${a}`, f.action.length, f.action);
    else add((a) => `action = ${a}`, f.action);
  }
  if (f.target) add((a) => `target = ${a}`, f.target);
  return c.length === 0 ? "TRUE" : c.join(" AND ");
}

export function createAuditLog(db: DatabaseSync): AuditLog {
  db.exec(SCHEMA);
  const s = {
    meta: db.prepare("SELECT seq, hash FROM audit_meta WHERE name = ?"),
    setMeta: db.prepare("REPLACE INTO audit_meta (name, seq, hash) VALUES (?, ?, ?)"),
    insert: db.prepare(
      "INSERT INTO audit (seq, time_ms, actor_id, actor_label, action, target, before_json, after_json, source_ip, request_id, outcome, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    all: db.prepare("SELECT * FROM audit ORDER BY seq"),
    upTo: db.prepare("SELECT * FROM audit WHERE time_ms < ? ORDER BY seq"),
    deleteUpTo: db.prepare("DELETE FROM audit WHERE seq <= ?"),
  };
  const meta = (name: "head" | "anchor"): { seq: number; hash: string } => {
    const r = s.meta.get(name) as { seq: number; hash: string } | undefined;
    return r ?? { seq: 0, hash: GENESIS };
  };

  function tx<T>(fn: () => T): T {
    // IMMEDIATE: another process on the same file (the CLI) waits rather than forking the chain.
    db.exec("BEGIN IMMEDIATE");
    try {
      const out = fn();
      db.exec("COMMIT");
      return out;
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }

  function* iterate(filter: AuditFilter = {}): Iterable<AuditEntry> {
    const params: (string | number)[] = [];
    const stmt = db.prepare(`SELECT * FROM audit WHERE ${auditWhere(filter, params)} ORDER BY seq`);
    for (const r of stmt.iterate(...params)) yield entryOf(r as Row);
  }

  return {
    async record(input) {
      return tx(() => {
        const entry = nextEntry(input, meta("head"));
        s.insert.run(entry.seq, entry.timeMs, entry.actorId, entry.actorLabel, entry.action, entry.target, entry.beforeJson, entry.afterJson, entry.sourceIp, entry.requestId, entry.outcome, entry.prevHash, entry.hash);
        s.setMeta.run("head", entry.seq, entry.hash);
        return entry;
      });
    },
    async list(filter, pageSize, before) {
      const params: (string | number)[] = [];
      let w = auditWhere(filter, params);
      if (before !== undefined) (w += " AND seq < ?"), params.push(before);
      params.push(pageSize);
      return (db.prepare(`SELECT * FROM audit WHERE ${w} ORDER BY seq DESC LIMIT ?`).all(...params) as Row[]).map(entryOf);
    },
    async verify() {
      const result = verifyChain((function* () { for (const r of s.all.iterate()) yield entryOf(r as Row); })(), meta("anchor"));
      return checkHead(result, meta("head"));
    },
    async *entries(filter) {
      yield* iterate(filter);
    },
    async archive(cutoffMs, dir) {
      const old = (s.upTo.all(cutoffMs) as Row[]).map(entryOf);
      if (old.length === 0) return { archived: 0 };
      const last = old[old.length - 1]!;
      const file = archiveFile(dir, old[0]!.seq, last.seq);
      // Written and synced before anything is deleted: retention never drops an entry silently.
      appendFileSync(file, old.map((e) => JSON.stringify(e) + "\n").join(""));
      syncFile(file);
      tx(() => {
        s.deleteUpTo.run(last.seq);
        s.setMeta.run("anchor", last.seq, last.hash);
      });
      return { archived: old.length, file };
    },
  };
}

/** The archive file for entries first..last (made in `dir`). */
export function archiveFile(dir: string, first: number, last: number): string {
  mkdirSync(dir, { recursive: true });
  return join(dir, `audit-${String(first).padStart(12, "0")}-${String(last).padStart(12, "0")}.jsonl`);
}

export function syncFile(file: string): void {
  const fd = openSync(file, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
