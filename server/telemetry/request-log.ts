import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { Worker } from "node:worker_threads";
import type { Pool } from "../database/postgres.ts";
import type { RequestRecord } from "../pipeline/pipeline.ts";
import type { AggregateRow, Bucket, GroupBy } from "./log-aggregate.ts";
import type { LogFilter, LogRow } from "./log-store.ts";
import type { PgLogStore } from "./log-store-pg.ts";
import type { Logger } from "./log.ts";
import type { WorkerConfig, WorkerReply, WorkerRequest } from "./request-log-worker.ts";

export interface RequestLogOptions {
  /** SQLite file; its folder is created. Unused with a pool. */
  path: string;
  /**
   * PostgreSQL (database.url): the log goes to its sy_requests table, shared
   * by every instance, instead of the SQLite file. The pool stays open at close: its owner ends it.
   */
  pool?: Pool;
  /** Records kept this long (default 14 days). */
  maxAgeMs?: number;
  /** And at most this many (default 2 million, roughly 1 GB). */
  maxRows?: number;
  /** Records waiting to be written; beyond it new ones are dropped and counted (default 20,000). */
  queueMax?: number;
  /** How often waiting records are sent to the writer (default 200 ms). */
  flushMs?: number;
  /** Applied to prompts and answers before they are stored (records carry them only when body logging is on). */
  redact?: (text: string) => string;
  logger: Logger;
}

export interface RequestLog {
  /** Queues one record; never blocks, never throws. */
  add(r: RequestRecord): void;
  /** Writes everything queued so far; resolves when it is on disk. */
  flush(): Promise<void>;
  search(filter: LogFilter, pageSize: number, pageToken: string): Promise<{ entries: LogRow[]; nextPageToken: string }>;
  aggregate(filter: LogFilter, groupBy: GroupBy, bucket: Bucket): Promise<AggregateRow[]>;
  /** Applies retention now (normally every few minutes). */
  retain(now?: number): Promise<number>;
  /** Records dropped because the queue was full, since start. */
  dropped(): number;
  close(): Promise<void>;
}

const BATCH = 1000;
/** Batches sent but not yet written; past this the writer is behind and records queue (then drop). */
const MAX_IN_FLIGHT = 8;

/**
 * The request log: one row per request, written off the hot path. Records
 * go to a bounded in-memory queue and from there, in batches, to a worker
 * thread that owns the SQLite database. A slow or failing disk can only
 * cost log rows (counted), never a request.
 */
export function createRequestLog(options: RequestLogOptions): RequestLog {
  if (options.pool !== undefined) return createPgRequestLog(options, options.pool);
  const queueMax = options.queueMax ?? 20_000;
  const redact = options.redact ?? ((t: string) => t);
  mkdirSync(dirname(options.path), { recursive: true });
  const workerConfig: WorkerConfig = {
    path: options.path,
    maxAgeMs: options.maxAgeMs ?? 14 * 86_400_000,
    maxRows: options.maxRows ?? 2_000_000,
    retentionEveryMs: 5 * 60_000,
  };
  // The worker's file has this module's own extension: .ts from source, .js once compiled.
  const worker = new Worker(new URL(`./request-log-worker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url), { workerData: workerConfig });
  worker.unref();
  let queue: LogRow[] = [];
  let droppedCount = 0;
  let inFlight = 0;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let closed = false;

  worker.on("message", (reply: WorkerReply) => {
    const p = pending.get(reply.id);
    if (p === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    if (reply.ok) p.resolve(reply.result);
    else p.reject(new Error(reply.error));
  });
  const fail = (err: Error): void => {
    if (closed) return;
    options.logger.error("request log writer stopped", { error: err });
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    // What was still queued can no longer be written: counted, never silently lost.
    droppedCount += queue.length;
    queue = [];
    inFlight = 0;
    closed = true;
  };
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`request log writer exited (code ${code})`)));

  function call<T>(msg: Omit<WorkerRequest, "id"> & { type: WorkerRequest["type"] }): Promise<T> {
    if (closed) return Promise.reject(new Error("request log is closed"));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      // While the writer owes an answer, the process stays alive: records are not lost at exit.
      if (pending.size === 0) worker.ref();
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.postMessage({ ...msg, id });
    });
  }

  function sendBatch(): Promise<void> | undefined {
    if (queue.length === 0 || inFlight >= MAX_IN_FLIGHT || closed) return undefined;
    const rows = queue.length <= BATCH ? queue : queue.slice(0, BATCH);
    queue = queue.length <= BATCH ? [] : queue.slice(BATCH);
    inFlight++;
    return call<number>({ type: "insert", rows } as WorkerRequest).then(
      () => {
        inFlight--;
      },
      (err: unknown) => {
        inFlight--;
        droppedCount += rows.length;
        options.logger.error("request log write failed", { error: err, rows: rows.length });
      },
    );
  }

  const timer = setInterval(() => {
    while (sendBatch() !== undefined);
  }, options.flushMs ?? 200);
  timer.unref();

  return {
    add(r) {
      if (closed || queue.length >= queueMax) {
        droppedCount++;
        return;
      }
      queue.push(toRow(r, redact));
    },
    async flush() {
      while (!closed && (queue.length > 0 || inFlight > 0)) {
        const sent = sendBatch();
        if (sent) await sent;
        else await new Promise((r) => setTimeout(r, 5));
      }
    },
    search: (filter, pageSize, pageToken) => call({ type: "search", filter, pageSize, pageToken } as WorkerRequest),
    aggregate: (filter, groupBy, bucket) => call({ type: "aggregate", filter, groupBy, bucket } as WorkerRequest),
    retain: (now) => call({ type: "retain", now } as WorkerRequest),
    dropped: () => droppedCount,
    async close() {
      clearInterval(timer);
      if (closed) return;
      await this.flush().catch(() => {});
      closed = true;
      worker.removeAllListeners("exit");
      worker.ref();
      worker.postMessage({ type: "close" });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 2000);
        worker.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/** How often each instance tries to apply retention (the one holding the lock does; the others skip). */
const RETENTION_EVERY_MS = 5 * 60_000;

/**
 * The request log on PostgreSQL: the same bounded queue and batches, sent
 * from this thread (the driver's I/O does not block it) to the shared
 * table. A slow or unreachable database can only cost log rows (counted),
 * never a request. Retention runs in the background on one instance at a time.
 */
function createPgRequestLog(options: RequestLogOptions, pool: Pool): RequestLog {
  const queueMax = options.queueMax ?? 20_000;
  const redact = options.redact ?? ((t: string) => t);
  const maxAgeMs = options.maxAgeMs ?? 14 * 86_400_000;
  const maxRows = options.maxRows ?? 2_000_000;
  // Batches in flight each hold a pooled connection: half the pool at most, so the log never starves
  // the pool's other users (the admin plane) however far behind it falls.
  const maxInFlight = Math.max(1, Math.min(MAX_IN_FLIGHT, Math.floor((pool.options.max ?? 10) / 2)));
  let queue: LogRow[] = [];
  let droppedCount = 0;
  let inFlight = 0;
  let closed = false;
  const stopRetention = new AbortController();
  let retaining: Promise<number> | undefined;

  // The schema is made (or found) once; ready again on the next use if that failed (the database was away).
  let opening: Promise<PgLogStore> | undefined;
  const store = (): Promise<PgLogStore> => {
    opening ??= import("./log-store-pg.ts").then((m) => m.openPgLogStore(pool)).catch((err: unknown) => {
      opening = undefined;
      throw err;
    });
    return opening;
  };
  // Made at once, not at the first record: a start against a database that refuses it says so early.
  store().catch((err: unknown) => options.logger.error("request log: cannot create its PostgreSQL table", { error: err }));

  function sendBatch(): Promise<void> | undefined {
    if (queue.length === 0 || inFlight >= maxInFlight) return undefined;
    const rows = queue.length <= BATCH ? queue : queue.slice(0, BATCH);
    queue = queue.length <= BATCH ? [] : queue.slice(BATCH);
    inFlight++;
    return store().then((s) => s.insert(rows)).then(
      () => {
        inFlight--;
      },
      (err: unknown) => {
        inFlight--;
        droppedCount += rows.length;
        options.logger.error("request log write failed", { error: err, rows: rows.length });
      },
    );
  }

  function retain(now?: number): Promise<number> {
    // One run at a time on this instance; pg_try_advisory_lock makes it one across instances.
    retaining ??= store()
      .then((s) => s.retain(maxAgeMs, maxRows, now, stopRetention.signal))
      .finally(() => {
        retaining = undefined;
      });
    return retaining;
  }
  const background = (): void => {
    if (closed) return;
    retain().catch((err: unknown) => options.logger.warn("request log retention failed; it runs again later", { error: err }));
  };
  // The first run a little after start, not during it; then every few minutes.
  const firstRetention = setTimeout(background, 10_000);
  firstRetention.unref();
  const retentionTimer = setInterval(background, RETENTION_EVERY_MS);
  retentionTimer.unref();

  const timer = setInterval(() => {
    while (sendBatch() !== undefined);
  }, options.flushMs ?? 200);
  timer.unref();

  const flush = async (): Promise<void> => {
    while (queue.length > 0 || inFlight > 0) {
      const sent = sendBatch();
      if (sent) await sent;
      else await new Promise((r) => setTimeout(r, 5));
    }
  };
  const open = <T>(fn: (s: PgLogStore) => Promise<T>): Promise<T> =>
    closed ? Promise.reject(new Error("request log is closed")) : store().then(fn);

  return {
    add(r) {
      if (closed || queue.length >= queueMax) {
        droppedCount++;
        return;
      }
      queue.push(toRow(r, redact));
    },
    flush,
    search: (filter, pageSize, pageToken) => open((s) => s.search(filter, pageSize, pageToken)),
    aggregate: (filter, groupBy, bucket) => open((s) => s.aggregate(filter, groupBy, bucket)),
    retain: (now) => open(() => retain(now)),
    dropped: () => droppedCount,
    async close() {
      clearInterval(timer);
      clearInterval(retentionTimer);
      clearTimeout(firstRetention);
      if (closed) return;
      closed = true;
      stopRetention.abort();
      // Everything queued is written (or counted as dropped) before the pool's owner ends it.
      await flush().catch(() => {});
      await retaining?.catch(() => {});
    },
  };
}

function toRow(r: RequestRecord, redact: (text: string) => string): LogRow {
  const u = r.usage;
  return {
    recordId: randomUUID(),
    timeMs: Math.round(Date.now() - r.latencyMs),
    requestId: r.requestId,
    key: r.principal,
    team: r.team,
    customer: r.customer,
    operation: r.operation,
    modelAsked: r.modelAsked,
    provider: r.provider,
    model: r.model,
    status: r.ok ? "ok" : r.errorCode ?? "internal",
    promptTokens: u?.promptTokens ?? 0,
    completionTokens: u?.completionTokens ?? 0,
    cachedTokens: u?.cachedTokens ?? 0,
    costUsd: r.costUsd,
    latencyMs: r.latencyMs,
    firstChunkMs: r.firstChunkMs ?? null,
    upstreamMs: r.upstreamMs ?? null,
    cacheStatus: r.cacheStatus,
    savedUsd: r.savedUsd,
    keyName: r.keyName,
    targets: r.tried,
    attempts: r.attempts,
    requestBody: r.bodies ? redact(JSON.stringify(r.bodies.request)) : null,
    responseBody: r.bodies && r.bodies.response !== null ? redact(JSON.stringify(r.bodies.response)) : null,
  };
}
