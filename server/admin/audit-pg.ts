import { closeSync, openSync, writeSync } from "node:fs";
import {
  archiveFile,
  auditWhere,
  chainChecker,
  checkHead,
  entryOf,
  GENESIS,
  nextEntry,
  syncFile,
  type AuditEntry,
  type AuditLog,
} from "./audit.ts";
import { ARCHIVE_LOCK, num, transaction, type Pool, type PoolClient } from "./pg.ts";

/**
 * The audit log in PostgreSQL (tables sy_audit, sy_audit_meta; made by
 * ensureAdminSchema), written by every instance into ONE chain: record()
 * locks the head row (SELECT … FOR UPDATE) in the transaction that appends,
 * so concurrent writers queue on it and each entry follows the one committed
 * before it. verify() reads one consistent snapshot (REPEATABLE READ) in
 * pages by seq; archive() runs on one instance at a time (an advisory lock;
 * the others skip).
 */

/** Rows per page when streaming (verify, export, archive). */
const PAGE = 1000;

type Row = Record<string, unknown>;
type Mark = { seq: number; hash: string };

const INSERT = `INSERT INTO sy_audit (seq, time_ms, actor_id, actor_label, action, target, before_json, after_json, source_ip, request_id, outcome, prev_hash, hash)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;

async function meta(c: Pool | PoolClient, name: "head" | "anchor", lock = false): Promise<Mark | undefined> {
  const r = (await c.query(`SELECT seq, hash FROM sy_audit_meta WHERE name = $1${lock ? " FOR UPDATE" : ""}`, [name])).rows[0] as Row | undefined;
  return r === undefined ? undefined : { seq: num(r["seq"]), hash: r["hash"] as string };
}

/** Entries matching `where` after `after`, oldest first, a page at a time. */
async function* pages(c: Pool | PoolClient, where: string, params: (string | number)[], after = 0): AsyncGenerator<AuditEntry> {
  let last = after;
  for (;;) {
    const n = params.length;
    const rows = (await c.query(`SELECT * FROM sy_audit WHERE ${where} AND seq > $${n + 1} ORDER BY seq LIMIT ${PAGE}`, [...params, last])).rows as Row[];
    for (const r of rows) yield entryOf(r);
    if (rows.length < PAGE) return;
    last = num(rows[rows.length - 1]!["seq"]);
  }
}

export function createPgAuditLog(pool: Pool): AuditLog {
  const ph = (params: unknown[]) => () => `$${params.length}`;

  return {
    record(input) {
      return transaction(pool, async (c) => {
        // The head row is the chain's lock: a second writer waits here until the first commits.
        const head = await meta(c, "head", true);
        if (head === undefined) throw new Error("the audit head row (sy_audit_meta 'head') is missing: the log was tampered with");
        const e = nextEntry(input, head);
        await c.query(INSERT, [e.seq, e.timeMs, e.actorId, e.actorLabel, e.action, e.target, e.beforeJson, e.afterJson, e.sourceIp, e.requestId, e.outcome, e.prevHash, e.hash]);
        await c.query("UPDATE sy_audit_meta SET seq = $1, hash = $2 WHERE name = 'head'", [e.seq, e.hash]);
        return e;
      });
    },
    async list(filter, pageSize, before) {
      const params: (string | number)[] = [];
      let w = auditWhere(filter, params, ph(params));
      if (before !== undefined) (params.push(before), (w += ` AND seq < $${params.length}`));
      params.push(pageSize);
      return ((await pool.query(`SELECT * FROM sy_audit WHERE ${w} ORDER BY seq DESC LIMIT $${params.length}`, params)).rows as Row[]).map(entryOf);
    },
    verify() {
      // One snapshot for anchor, entries and head: writers and an archive running meanwhile do not show.
      return transaction(pool, async (c) => {
        const from = (await meta(c, "anchor")) ?? { seq: 0, hash: GENESIS };
        const check = chainChecker(from);
        // Every row, not only those after the anchor: one left at or below it is out of order.
        for await (const e of pages(c, "TRUE", [], Number.MIN_SAFE_INTEGER)) if (!check.add(e)) break;
        return checkHead(check.result(), (await meta(c, "head")) ?? { seq: 0, hash: GENESIS });
      }, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    },
    async *entries(filter = {}) {
      const params: (string | number)[] = [];
      const w = auditWhere(filter, params, ph(params));
      yield* pages(pool, w, params);
    },
    archive(cutoffMs, dir) {
      return transaction(pool, async (c) => {
        // One instance archives; the others find the lock taken and leave it to that one.
        const locked = (await c.query("SELECT pg_try_advisory_xact_lock($1::bigint) AS ok", [ARCHIVE_LOCK])).rows[0] as { ok: boolean };
        if (!locked.ok) return { archived: 0 };
        // A prefix of the chain: everything up to the last entry older than the cutoff (clocks of
        // instances differ a little, so an entry in between is taken along rather than left behind).
        const upTo = optSeq((await c.query("SELECT max(seq) AS s FROM sy_audit WHERE time_ms < $1", [cutoffMs])).rows[0] as Row);
        if (upTo === undefined) return { archived: 0 };
        const firstSeq = optSeq((await c.query("SELECT min(seq) AS s FROM sy_audit", [])).rows[0] as Row)!;
        const file = archiveFile(dir, firstSeq, upTo);
        // Written and synced before anything is deleted: retention never drops an entry silently.
        const fd = openSync(file, "a");
        let last: AuditEntry | undefined;
        let archived = 0;
        try {
          for await (const e of pages(c, "seq <= $1", [upTo])) {
            writeSync(fd, JSON.stringify(e) + "\n");
            last = e;
            archived++;
          }
        } finally {
          closeSync(fd);
        }
        syncFile(file);
        if (last === undefined) return { archived: 0 };
        await c.query("DELETE FROM sy_audit WHERE seq <= $1", [last.seq]);
        await c.query(
          "INSERT INTO sy_audit_meta (name, seq, hash) VALUES ('anchor', $1, $2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
          [last.seq, last.hash],
        );
        return { archived, file };
      });
    },
  };
}

const optSeq = (r: Row | undefined): number | undefined => (r?.["s"] === null || r?.["s"] === undefined ? undefined : num(r["s"]));

/** For callers that page themselves (the migration): entries after `after`. */
export function auditPages(pool: Pool, after = 0): AsyncGenerator<AuditEntry> {
  return pages(pool, "TRUE", [], after);
}
