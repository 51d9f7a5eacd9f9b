import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import { connectRedis } from "../redis/connect.ts";
import type { WriterCall, WriterConfig, WriterReply, WriterRequest, WriterRow } from "./response-store-writer.ts";

/**
 * Stored responses (the Responses API's `store`): what a response said and
 * the conversation that led to it, so `previous_response_id` continues it
 * on any provider, and GET/DELETE /v1/responses/{id} work. Every record
 * belongs to one tenant scope; reads from another scope see nothing.
 */
export interface StoredResponse {
  id: string;
  /** The tenant boundary ("customer:…", "team:…", "key:…", or the principal id). */
  scope: string;
  createdAt: number;
  expiresAt: number;
  /** The Response object as returned. */
  response: Record<string, unknown>;
  /**
   * `response` as JSON, when the caller has it already (a stream's final
   * event carries it): written in its place instead of encoding it again.
   * Not itself stored.
   */
  responseJson?: string | undefined;
  /** The input items as sent (ids added), for GET …/input_items. */
  inputItems: Record<string, unknown>[];
  /** The conversation so far, this response's output included: canonical messages, proto JSON. */
  conversation: unknown[];
  /**
   * Set when the response came from OpenAI's own Responses API, passed
   * through (the provider id): it keeps the conversation, so a follow-up
   * must go back to that provider.
   */
  origin?: string | undefined;
}

/** How long stored responses wait in memory before they are written (a crash loses at most this much). */
const FLUSH_MS = 50;
/** After a failed write (or a writer that died): the batch waits this long before it is tried again. */
const RETRY_MS = 5_000;
const SWEEP_EVERY_MS = 60_000;

export interface ResponseStore {
  get(id: string, scope: string, now: number): Promise<StoredResponse | undefined>;
  put(r: StoredResponse): Promise<void>;
  /** True when it existed in that scope. */
  delete(id: string, scope: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * The embedded store: SQLite under the data directory (expired rows are
 * swept every minute). Writes are batched: kept in memory (and served from
 * there) and written every FLUSH_MS in one transaction by a writer thread
 * (./response-store-writer.ts), started with the first write; this thread
 * only reads, so neither the inserts nor the WAL checkpoints' fsyncs hold up
 * the streams it serves (issue 13).
 */
export function createSqliteResponseStore(path: string): ResponseStore {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;");
  db.exec(`CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY, scope TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, body TEXT NOT NULL
  ); CREATE INDEX IF NOT EXISTS responses_expires ON responses(expires_at);`);
  const getStmt = db.prepare("SELECT body FROM responses WHERE id = ? AND scope = ? AND expires_at > ?");
  const writer = createWriter(path);
  /** Not yet sent to the writer. */
  const pending = new Map<string, StoredResponse>();
  /** Sent, not yet written: still served from here. */
  const writing = new Map<string, StoredResponse>();
  let flushing: NodeJS.Timeout | undefined;

  const flush = (): void => {
    flushing = undefined;
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending.clear();
    for (const r of batch) writing.set(r.id, r);
    const rows = batch.map((r): WriterRow => [r.id, r.scope, r.createdAt, r.expiresAt, recordJson(r)]);
    void writer.call({ type: "put", rows }).then(
      () => {
        for (const r of batch) if (writing.get(r.id) === r) writing.delete(r.id);
      },
      () => {
        // Kept for a later flush, unless deleted or replaced meanwhile.
        for (const r of batch) {
          if (writing.get(r.id) !== r) continue;
          writing.delete(r.id);
          if (!pending.has(r.id)) pending.set(r.id, r);
        }
        schedule(RETRY_MS);
      },
    );
  };
  const schedule = (delayMs = FLUSH_MS): void => {
    if (flushing !== undefined || writer.closed) return;
    flushing = setTimeout(flush, delayMs);
    flushing.unref();
  };
  /** The unwritten record, if any, in either map. */
  const unwritten = (id: string): StoredResponse | undefined => pending.get(id) ?? writing.get(id);

  return {
    async get(id, scope, now) {
      const p = unwritten(id);
      if (p !== undefined) return p.scope === scope && p.expiresAt > now ? p : undefined;
      const row = getStmt.get(id, scope, now);
      return row === undefined ? undefined : (JSON.parse(String(row["body"])) as StoredResponse);
    },
    async put(r) {
      // A newer version of a record being written: served from here until it is written too (after the older).
      writing.delete(r.id);
      pending.set(r.id, r);
      schedule();
    },
    async delete(id, scope) {
      const p = unwritten(id);
      const inMemory = p !== undefined && p.scope === scope;
      if (inMemory) {
        pending.delete(id);
        writing.delete(id);
      }
      // After any write of it already sent: the writer takes requests in order.
      return (await writer.call({ type: "delete", key: id, scope })) > 0 || inMemory;
    },
    async close() {
      if (flushing !== undefined) clearTimeout(flushing);
      flush();
      await writer.close();
      db.close();
    },
  };
}

interface Writer {
  /** Resolves with the rows the writer changed. */
  call(req: WriterCall): Promise<number>;
  /** Waits for every request sent, then stops the thread. */
  close(): Promise<void>;
  readonly closed: boolean;
}

/**
 * The writer thread, started on the first request (a gateway that stores
 * nothing starts no thread) and again after it died. While it owes an
 * answer it keeps the process alive, so a batch sent is not lost at exit.
 */
function createWriter(path: string): Writer {
  const config: WriterConfig = { path, sweepEveryMs: SWEEP_EVERY_MS };
  const waiting = new Map<number, { resolve: (changes: number) => void; reject: (e: Error) => void }>();
  let worker: Worker | undefined;
  let nextId = 1;
  let closed = false;

  /** Every request waiting was sent to the current worker: they fail with it. */
  const failAll = (err: Error): void => {
    worker = undefined;
    for (const w of waiting.values()) w.reject(err);
    waiting.clear();
  };

  function start(): Worker {
    // The worker's file has this module's own extension: .ts from source, .js once compiled.
    const w = new Worker(new URL(`./response-store-writer${import.meta.url.slice(import.meta.url.lastIndexOf("."))}`, import.meta.url), { workerData: config });
    w.unref();
    w.on("message", (reply: WriterReply) => {
      const p = waiting.get(reply.id);
      if (p === undefined) return;
      waiting.delete(reply.id);
      if (waiting.size === 0 && !closed) w.unref();
      if (reply.ok) p.resolve(reply.changes);
      else p.reject(new Error(reply.error));
    });
    // An "exit" follows an "error": only the first fails the requests (a new worker may run by then).
    w.on("error", (err) => {
      if (worker === w) failAll(err);
    });
    w.on("exit", (code) => {
      if (worker === w) failAll(new Error(`response store writer exited (code ${code})`));
    });
    return w;
  }

  return {
    get closed() {
      return closed;
    },
    call(req) {
      if (closed) return Promise.reject(new Error("response store is closed"));
      const w = (worker ??= start());
      const id = nextId++;
      return new Promise<number>((resolve, reject) => {
        if (waiting.size === 0) w.ref();
        waiting.set(id, { resolve, reject });
        w.postMessage({ ...req, id });
      });
    },
    async close() {
      closed = true;
      const w = worker;
      if (w === undefined) return; // never started: nothing was written
      w.removeAllListeners("exit");
      w.ref();
      const exited = new Promise<void>((resolve) => w.once("exit", () => resolve()));
      w.postMessage({ type: "close" } satisfies WriterRequest);
      await exited;
      failAll(new Error("response store is closed"));
    },
  };
}

/** A record as stored: `JSON.stringify(r)`, with `responseJson` (when given) as `response`. */
function recordJson(r: StoredResponse): string {
  if (r.responseJson === undefined) return JSON.stringify(r);
  const { response: _object, responseJson, ...rest } = r;
  return `${JSON.stringify(rest).slice(0, -1)},"response":${responseJson}}`;
}

/** Shared by every instance: one JSON value per response, expiring by itself. */
export async function createRedisResponseStore(options: { url: string; prefix: string; commandTimeoutMs: number }): Promise<ResponseStore> {
  const P = `{${options.prefix}}:resp:`;
  const redis = await connectRedis(options.url, options.commandTimeoutMs);
  return {
    async get(id, scope, now) {
      const raw = await redis.get(P + id);
      if (raw === null) return undefined;
      const r = JSON.parse(raw) as StoredResponse;
      return r.scope === scope && r.expiresAt > now ? r : undefined;
    },
    async put(r) {
      await redis.set(P + r.id, recordJson(r), "PX", Math.max(1, r.expiresAt - Date.now()));
    },
    async delete(id, scope) {
      const raw = await redis.get(P + id);
      if (raw === null || (JSON.parse(raw) as StoredResponse).scope !== scope) return false;
      return (await redis.del(P + id)) > 0;
    },
    async close() {
      redis.disconnect();
    },
  };
}
