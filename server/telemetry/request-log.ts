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
/** How often retention runs (on PostgreSQL: on the instance holding the lock; the others skip). */
const RETENTION_EVERY_MS = 5 * 60_000;

/** Where batches go and queries are answered: a worker thread with SQLite, or PostgreSQL. */
interface LogBackend {
  /** Batches it may be writing at once. */
  readonly maxInFlight: number;
  insert(rows: LogRow[]): Promise<unknown>;
  search(filter: LogFilter, pageSize: number, pageToken: string): Promise<{ entries: LogRow[]; nextPageToken: string }>;
  aggregate(filter: LogFilter, groupBy: GroupBy, bucket: Bucket): Promise<AggregateRow[]>;
  retain(now?: number): Promise<number>;
  /** Called once the queue is written (or counted as dropped). */
  close(): Promise<void>;
}

/**
 * The request log: one row per request, written off the hot path. Records
 * go to a bounded in-memory queue and from there, in batches, to the
 * backend: a worker thread that owns the SQLite database, or PostgreSQL
 * (database.url), shared by every instance. A slow or failing store can only
 * cost log rows (counted), never a request.
 */
export function createRequestLog(options: RequestLogOptions): RequestLog {
  const queueMax = options.queueMax ?? 20_000;
  const redact = options.redact ?? ((t: string) => t);
  let queue: LogRow[] = [];
  let droppedCount = 0;
  let inFlight = 0;
  let closed = false;
  // The worker died: what was still queued can no longer be written, so it is counted, never silently lost.
  const stopped = (): void => {
    droppedCount += queue.length;
    queue = [];
    inFlight = 0;
    closed = true;
  };
  const backend = options.pool !== undefined ? pgBackend(options, options.pool) : workerBackend(options, stopped);

  function sendBatch(): Promise<void> | undefined {
    if (queue.length === 0 || inFlight >= backend.maxInFlight) return undefined;
    const rows = queue.length <= BATCH ? queue : queue.slice(0, BATCH);
    queue = queue.length <= BATCH ? [] : queue.slice(BATCH);
    inFlight++;
    return backend.insert(rows).then(
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

  const flush = async (): Promise<void> => {
    while (queue.length > 0 || inFlight > 0) {
      const sent = sendBatch();
      if (sent) await sent;
      else await new Promise((r) => setTimeout(r, 5));
    }
  };
  const ifOpen = <T>(fn: () => Promise<T>): Promise<T> => (closed ? Promise.reject(new Error("request log is closed")) : fn());

  return {
    add(r) {
      if (closed || queue.length >= queueMax) {
        droppedCount++;
        return;
      }
      queue.push(toRow(r, redact));
    },
    flush: () => (closed ? Promise.resolve() : flush()),
    search: (filter, pageSize, pageToken) => ifOpen(() => backend.search(filter, pageSize, pageToken)),
    aggregate: (filter, groupBy, bucket) => ifOpen(() => backend.aggregate(filter, groupBy, bucket)),
    retain: (now) => ifOpen(() => backend.retain(now)),
    dropped: () => droppedCount,
    async close() {
      clearInterval(timer);
      if (closed) return;
      // Everything queued is written (or counted as dropped) before the store closes.
      await flush().catch(() => {});
      closed = true;
      await backend.close();
    },
  };
}

/**
 * SQLite in a worker thread, so inserts and queries never block the thread
 * that serves requests. The worker applies retention itself.
 *
 * The worker starts with the first call (the first batch of records, or the
 * first query), not with the gateway: a thread with its own V8 heap and
 * SQLite costs about 18 MB of memory, which a gateway that serves nothing
 * does not need. Retention runs as the worker starts, before it answers, so
 * a query never sees rows past retention.
 */
function workerBackend(options: RequestLogOptions, stopped: () => void): LogBackend {
  // Made now, so a data directory that cannot be created stops the start.
  mkdirSync(dirname(options.path), { recursive: true });
  const workerConfig: WorkerConfig = {
    path: options.path,
    maxAgeMs: options.maxAgeMs ?? 14 * 86_400_000,
    maxRows: options.maxRows ?? 2_000_000,
    retentionEveryMs: RETENTION_EVERY_MS,
  };
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let dead = false;

  const fail = (err: Error): void => {
    if (dead) return;
    dead = true;
    options.logger.error("request log writer stopped", { error: err });
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    stopped();
  };

  function start(): Worker {
    // The worker's file has this module's own extension: .ts from source, .js once compiled.
    const w = new Worker(new URL(`./request-log-worker${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url), { workerData: workerConfig });
    w.unref();
    w.on("message", (reply: WorkerReply) => {
      const p = pending.get(reply.id);
      if (p === undefined) return;
      pending.delete(reply.id);
      if (pending.size === 0) w.unref();
      if (reply.ok) p.resolve(reply.result);
      else p.reject(new Error(reply.error));
    });
    w.on("error", fail);
    w.on("exit", (code) => fail(new Error(`request log writer exited (code ${code})`)));
    return w;
  }

  function call<T>(msg: Omit<WorkerRequest, "id"> & { type: WorkerRequest["type"] }): Promise<T> {
    if (dead) return Promise.reject(new Error("request log is closed"));
    const w = (worker ??= start());
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      // While the writer owes an answer, the process stays alive: records are not lost at exit.
      if (pending.size === 0) w.ref();
      pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      w.postMessage({ ...msg, id });
    });
  }

  return {
    maxInFlight: MAX_IN_FLIGHT,
    insert: (rows) => call({ type: "insert", rows } as WorkerRequest),
    search: (filter, pageSize, pageToken) => call({ type: "search", filter, pageSize, pageToken } as WorkerRequest),
    aggregate: (filter, groupBy, bucket) => call({ type: "aggregate", filter, groupBy, bucket } as WorkerRequest),
    retain: (now) => call({ type: "retain", now } as WorkerRequest),
    async close() {
      if (dead) return;
      dead = true;
      const w = worker;
      // Never started: nothing was written, nothing to close.
      if (w === undefined) return;
      w.removeAllListeners("exit");
      w.ref();
      w.postMessage({ type: "close" });
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void w.terminate().then(() => resolve()), 2000);
        w.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

/**
 * PostgreSQL: batches go from this thread (the driver's I/O does not block
 * it) to the shared table. Retention runs in the background, one instance at
 * a time. The pool stays open at close: its owner ends it.
 */
function pgBackend(options: RequestLogOptions, pool: Pool): LogBackend {
  const maxAgeMs = options.maxAgeMs ?? 14 * 86_400_000;
  const maxRows = options.maxRows ?? 2_000_000;
  const stopRetention = new AbortController();
  let retaining: Promise<number> | undefined;
  let closing = false;

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
    if (closing) return;
    retain().catch((err: unknown) => options.logger.warn("request log retention failed; it runs again later", { error: err }));
  };
  // The first run a little after start, not during it; then every few minutes.
  const firstRetention = setTimeout(background, 10_000);
  firstRetention.unref();
  const retentionTimer = setInterval(background, RETENTION_EVERY_MS);
  retentionTimer.unref();

  return {
    // Batches in flight each hold a pooled connection: half the pool at most, so the log never starves
    // the pool's other users (the admin plane) however far behind it falls.
    maxInFlight: Math.max(1, Math.min(MAX_IN_FLIGHT, Math.floor((pool.options.max ?? 10) / 2))),
    insert: (rows) => store().then((s) => s.insert(rows)),
    search: (filter, pageSize, pageToken) => store().then((s) => s.search(filter, pageSize, pageToken)),
    aggregate: (filter, groupBy, bucket) => store().then((s) => s.aggregate(filter, groupBy, bucket)),
    retain,
    async close() {
      closing = true;
      clearInterval(retentionTimer);
      clearTimeout(firstRetention);
      stopRetention.abort();
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
