import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RequestRecord } from "../server/pipeline/pipeline.ts";
import type { AggregateRow, Bucket, GroupBy } from "../server/telemetry/log-aggregate.ts";
import { migrateLogToPostgres, type MigrateProgress } from "../server/telemetry/log-migrate.ts";
import { openPgLogStore } from "../server/telemetry/log-store-pg.ts";
import { openLogStore, type LogFilter, type LogRow } from "../server/telemetry/log-store.ts";
import { silentLogger } from "../server/telemetry/log.ts";
import { createRequestLog } from "../server/telemetry/request-log.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { adminCall, chat } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { startPostgres, type RunningPostgres } from "./support/postgres.ts";
import { row } from "./support/log-rows.ts";

// The request log on PostgreSQL: the same rows, filters, page tokens,
// aggregates and retention as the SQLite store, checked against it on the
// same random rows; the writer behind the gateway; several instances on one
// database; and copying an existing SQLite log across.

let postgres: RunningPostgres;
const pools: pg.Pool[] = [];

beforeAll(async () => {
  postgres = await startPostgres();
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(pools.map((p) => p.end()));
  await postgres?.stop();
});

/** A pool on a fresh, empty database (or on `url`). */
async function newPool(url?: string, max = 4): Promise<pg.Pool> {
  const pool = new pg.Pool({ connectionString: url ?? (await postgres.newDatabase()), max });
  pools.push(pool);
  return pool;
}

const dbPath = () => join(mkdtempSync(join(tmpdir(), "sy-logpg-")), "requests.db");


/** A small deterministic generator, so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rows of every kind: errors, streams, cache hits, no upstream time, repeated latencies, groups of 1 to hundreds. */
function randomRows(n: number, seed: number): LogRow[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const t0 = 1_700_000_000_000;
  return Array.from({ length: n }, (_, i) => {
    const status = r() < 0.15 ? pick(["upstream_error", "rate_limited", "timeout"]) : "ok";
    const cacheStatus = pick(["", "", "", "miss", "hit", "semantic-hit", "bypass"]);
    const hit = cacheStatus === "hit" || cacheStatus === "semantic-hit";
    // Whole milliseconds half the time (ties), fractions otherwise.
    const latencyMs = r() < 0.5 ? Math.floor(r() * 50) : r() * 3000;
    const stream = r() < 0.3;
    return row(i, {
      recordId: `rnd-${seed}-${i}`,
      // About three days, so day, hour and minute buckets all split.
      timeMs: t0 + Math.floor(r() * 3 * 86_400_000),
      key: pick(["key:aaaa", "key:bbbb", "key:cccc", "key:dddd", "key:Zed", "key:émile"]),
      team: pick(["", "team-a", "team-b", "Team-B"]),
      customer: pick(["", "acme", "globex", "initech"]),
      // One model only a few rows use, so some groups hold a single row.
      model: r() < 0.01 ? "rare-model" : pick(["gpt-4o", "gpt-4o-mini", "claude-3-5", "gemini-2"]),
      provider: pick(["openai", "anthropic", "gemini", "azure"]),
      status,
      promptTokens: Math.floor(r() * 2000),
      completionTokens: Math.floor(r() * 500),
      costUsd: r() * 0.01,
      latencyMs,
      firstChunkMs: stream ? latencyMs * r() : null,
      upstreamMs: hit || r() < 0.1 ? null : latencyMs - r() * 20 + 5, // sometimes more than the whole: clamped to 0
      cacheStatus,
      targets: pick([["openai/gpt-4o"], ["openai/gpt-4o", "azure/gpt-4o"], []]),
    });
  });
}

describe("PostgreSQL log store", () => {
  it("searches newest first with filters and stable pagination", async () => {
    const store = await openPgLogStore(await newPool());
    expect(await store.insert(Array.from({ length: 25 }, (_, i) => row(i)))).toBe(25);
    const all: LogRow[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = await store.search({ key: "key:aaaa" }, 5, token);
      all.push(...page.entries);
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(all.map((r) => r.requestId)).toEqual(Array.from({ length: 13 }, (_, i) => `req-${24 - 2 * i}`));
    expect((await store.search({ status: "error" }, 100, "")).entries.every((r) => r.status !== "ok")).toBe(true);
    expect((await store.search({ status: "upstream_error", model: "gpt-4o" }, 100, "")).entries.map((r) => r.requestId)).toEqual(["req-15", "req-0"]);
    expect((await store.search({ startTimeMs: 1_700_000_020_000 }, 100, "")).entries).toHaveLength(5);
    expect((await store.search({ startTimeMs: 1_700_000_010_000, endTimeMs: 1_700_000_012_000 }, 100, "")).entries.map((r) => r.requestId)).toEqual(["req-11", "req-10"]);
    expect((await store.search({ requestId: "req-7" }, 100, "")).entries.map((r) => r.recordId)).toEqual(["rec-7"]);
    await expect(store.search({}, 10, "garbage!")).rejects.toThrow(/invalid page token/);
    // Filter values are data, never SQL.
    expect((await store.search({ key: "' OR 1=1 --" }, 10, "")).entries).toHaveLength(0);
  });

  it("returns every field as written, and pages through rows that share a millisecond", async () => {
    const store = await openPgLogStore(await newPool());
    const full = row(1, {
      keyName: "ci key", team: "t1", customer: "c1", operation: "chat_stream", modelAsked: "fast", targets: ["openai/gpt-4o", "azure/gpt-4o"],
      promptTokens: 123, completionTokens: 45, cachedTokens: 6, costUsd: 0.0123456789, savedUsd: 0.5, latencyMs: 1234.5678, firstChunkMs: 98.7,
      upstreamMs: 90.25, cacheStatus: "miss", attempts: 2, requestBody: '{"messages":[{"role":"user","content":"hé"}]}', responseBody: '{"ok":true}',
    });
    const bare = row(2, { upstreamMs: null, targets: [], requestBody: null, responseBody: null });
    await store.insert([full, bare]);
    const { entries } = await store.search({}, 10, "");
    expect(entries).toEqual([bare, full]);
    // The same time for all: the id orders them, and no row is skipped or repeated across pages.
    await store.insert(Array.from({ length: 7 }, (_, i) => row(100 + i, { timeMs: 1_800_000_000_000 })));
    const seen: string[] = [];
    let token = "";
    do {
      const page = await store.search({ startTimeMs: 1_800_000_000_000 }, 3, token);
      seen.push(...page.entries.map((e) => e.recordId));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(Array.from({ length: 7 }, (_, i) => `rec-${106 - i}`));
  });

  it("writes a record once however often its write is retried, but never merges callers' request ids", async () => {
    const store = await openPgLogStore(await newPool());
    expect(await store.insert([row(1)])).toBe(1);
    expect(await store.insert([row(1), row(2)])).toBe(1);
    // A batch that repeats a record within itself.
    expect(await store.insert([row(3), row(3)])).toBe(1);
    expect((await store.search({}, 10, "")).entries).toHaveLength(3);
    expect(await store.insert([row(4, { requestId: "req-1" })])).toBe(1);
    expect((await store.search({ requestId: "req-1" }, 10, "")).entries).toHaveLength(2);
  });

  it("stores what PostgreSQL refuses (NUL, lone surrogates, fractional counts, NaN) without losing the batch", async () => {
    const store = await openPgLogStore(await newPool());
    const odd = row(1, {
      modelAsked: "a\0b", key: "k\uD800", targets: ["x\0/y"], promptTokens: 1.5, completionTokens: Number.NaN,
      costUsd: Number.NaN, latencyMs: Number.POSITIVE_INFINITY, firstChunkMs: Number.NaN,
      // Escapes written out in a body are text like any other, kept as they are.
      requestBody: '{"content":"\\u0000 and \\ud800"}',
    });
    expect(await store.insert([odd, row(2)])).toBe(2);
    const [, first] = (await store.search({}, 10, "")).entries;
    expect(first).toMatchObject({
      modelAsked: "a\uFFFDb", key: "k\uFFFD", targets: ["x\uFFFD/y"], promptTokens: 2, completionTokens: 0,
      costUsd: 0, latencyMs: 0, firstChunkMs: null, requestBody: '{"content":"\\u0000 and \\ud800"}',
    });
  });

  it("creates its schema once when several instances start at the same moment", async () => {
    const url = await postgres.newDatabase();
    const many = await Promise.all(Array.from({ length: 6 }, async () => openPgLogStore(await newPool(url, 2))));
    await Promise.all(many.map((s, k) => s.insert([row(k)])));
    expect((await many[0]!.search({}, 10, "")).entries).toHaveLength(6);
    // And opening it again finds it made.
    await openPgLogStore(await newPool(url, 1));
  });

  it("aggregates exactly as the SQLite store does on the same rows", async () => {
    const rows = randomRows(4000, 42);
    // Groups of exactly 100 and 200 rows: p99's rank is then a whole number (99 and 198).
    for (const [n, model] of [[100, "exactly-100"], [200, "exactly-200"]] as const) {
      rows.push(...randomRows(n, n).map((r) => ({ ...r, recordId: `${model}-${r.recordId}`, model, timeMs: 1_700_000_000_000 + (r.timeMs % 60_000) })));
    }
    const sqlite = openLogStore(dbPath());
    sqlite.insert(rows);
    const store = await openPgLogStore(await newPool());
    await store.insert(rows);
    const cases: [LogFilter, GroupBy, Bucket][] = [];
    for (const groupBy of ["key", "team", "customer", "model", "provider"] as const) {
      for (const bucket of ["none", "minute", "hour", "day"] as const) cases.push([{}, groupBy, bucket]);
    }
    cases.push(
      [{ status: "error" }, "model", "hour"],
      [{ status: "ok", provider: "openai" }, "key", "day"],
      [{ team: "team-b", startTimeMs: 1_700_050_000_000, endTimeMs: 1_700_150_000_000 }, "customer", "hour"],
      [{ key: "nobody" }, "key", "none"],
    );
    for (const [filter, groupBy, bucket] of cases) {
      // Sums of costs may differ in the last bits (addition order); everything else is exact.
      const want = sqlite.aggregate(filter, groupBy, bucket).map((r) => ({ ...r, costUsd: expect.closeTo(r.costUsd, 9) }));
      expect(await store.aggregate(filter, groupBy, bucket), `${JSON.stringify(filter)} by ${groupBy} per ${bucket}`).toEqual(want);
    }
    const byModel = await store.aggregate({}, "model", "none");
    // The checks above are not vacuous: overheads, cache hits and errors are there.
    expect(byModel.some((r) => r.overheadP99Ms > 0 && r.cacheHits > 0 && r.errors > 0)).toBe(true);
    expect(byModel.find((r) => r.group === "exactly-100")!.requests).toBe(100);
    sqlite.close();
  });

  it("gives the nearest-rank percentiles of the SQLite store's own test", async () => {
    const store = await openPgLogStore(await newPool());
    const t0 = 1_700_000_040_000;
    let i = 0;
    const at = (timeMs: number, model: string, over: Partial<LogRow>): LogRow => row(i++, { timeMs, model, status: "ok", ...over });
    await store.insert([
      ...Array.from({ length: 100 }, (_, k) => (k * 37) % 100 + 1).map((ms) => at(t0 + ms * 10, "gpt-4o", { latencyMs: ms, upstreamMs: ms - 1 })),
      at(t0 + 60_000, "gpt-4o", { latencyMs: 5, upstreamMs: 3 }),
      at(t0 + 61_000, "gpt-4o", { latencyMs: 1, upstreamMs: 5 }),
      at(t0 + 62_000, "gpt-4o", { latencyMs: 300, firstChunkMs: 9, upstreamMs: 3, cacheStatus: "miss" }),
      at(t0 + 63_000, "gpt-4o", { latencyMs: 900, upstreamMs: 100, status: "upstream_error" }),
      at(t0 + 64_000, "gpt-4o", { latencyMs: 2, upstreamMs: null, cacheStatus: "hit" }),
      at(t0 + 1000, "gpt-4o-mini", { latencyMs: 7, upstreamMs: null, cacheStatus: "semantic-hit" }),
      at(t0 + 2000, "gpt-4o-mini", { latencyMs: 8, upstreamMs: 4, status: "rate_limited", cacheStatus: "bypass" }),
    ]);
    const pick = (r: AggregateRow) => [r.group, r.bucketStartMs - t0, r.requests, r.latencyP50Ms, r.latencyP99Ms, r.overheadP50Ms, r.overheadP99Ms, r.cacheHits];
    expect((await store.aggregate({}, "model", "minute")).map(pick)).toEqual([
      ["gpt-4o", 0, 100, 50, 99, 1, 1, 0],
      ["gpt-4o-mini", 0, 2, 7, 8, 0, 0, 1],
      ["gpt-4o", 60_000, 5, 5, 900, 2, 6, 1],
    ]);
    expect((await store.aggregate({ model: "gpt-4o" }, "model", "none")).map(pick)).toEqual([["gpt-4o", -t0, 105, 50, 300, 1, 2, 1]]);
  });

  it("keeps rows by age and by count, as the SQLite store does", async () => {
    const rows = Array.from({ length: 100 }, (_, i) => row(i));
    const store = await openPgLogStore(await newPool());
    const sqlite = openLogStore(dbPath());
    await store.insert(rows);
    sqlite.insert(rows);
    const now = 1_700_000_000_000 + 100_000;
    expect(await store.retain(50_000, 1_000_000, now)).toBe(sqlite.retain(50_000, 1_000_000, now));
    expect(await store.retain(1e12, 20, now)).toBe(sqlite.retain(1e12, 20, now));
    const left = (await store.search({}, 100, "")).entries;
    expect(left.map((r) => r.requestId)).toEqual(sqlite.search({}, 100, "").entries.map((r) => r.requestId));
    expect(left).toHaveLength(20);
    expect(left[0]!.requestId).toBe("req-99");
    sqlite.close();
  });

  it("deletes in chunks past the chunk size, and lets one instance at a time apply retention", async () => {
    const pool = await newPool();
    const store = await openPgLogStore(pool);
    for (let b = 0; b < 3; b++) await store.insert(Array.from({ length: 10_000 }, (_, i) => row(b * 10_000 + i, { timeMs: 1_000 + b * 10_000 + i })));
    // Another instance holds the retention lock: this one skips at once.
    const other = await pool.connect();
    await other.query("SELECT pg_advisory_lock(hashtextextended('switchyard.sy_requests.retention', 0))");
    expect(await store.retain(0, 0, 1e12)).toBe(0);
    await other.query("SELECT pg_advisory_unlock(hashtextextended('switchyard.sy_requests.retention', 0))");
    other.release();
    expect(await store.retain(1e12, 5, 1e12)).toBe(29_995);
    expect((await store.search({}, 10, "")).entries.map((e) => e.timeMs)).toEqual([30_999, 30_998, 30_997, 30_996, 30_995]);
    expect(await store.retain(1, 1_000_000, 30_998)).toBe(2); // older than 30,997
  });
});

function record(i: number, over: Partial<RequestRecord> = {}): RequestRecord {
  return {
    requestId: `r-${i}`, principal: "anonymous", keyName: "", team: "", customer: "", costUsd: 0, cacheStatus: "", savedUsd: 0, operation: "chat", modelAsked: "m", provider: "p", model: "m",
    ok: true, errorCode: undefined, usage: undefined, latencyMs: 1, firstChunkMs: undefined, upstreamMs: 1, attempts: 1, tried: ["p/m"],
    ...over,
  };
}

describe("request log writer on PostgreSQL", () => {
  it("never blocks or throws when flooded: excess records are dropped and counted; close leaves the pool open", async () => {
    const pool = await newPool();
    const log = createRequestLog({ path: "/nonexistent/unused.db", pool, queueMax: 5_000, flushMs: 10_000, logger: silentLogger });
    for (let i = 0; i < 20_000; i++) log.add(record(i));
    expect(log.dropped()).toBe(15_000);
    await log.flush();
    const page = await log.search({}, 1000, "");
    expect(page.entries).toHaveLength(1000);
    expect(page.entries[0]!.upstreamMs).toBe(1);
    expect((await log.aggregate({}, "provider", "none"))[0]!.requests).toBe(5_000);
    await log.close();
    expect(log.dropped()).toBe(15_000);
    await expect(log.search({}, 1, "")).rejects.toThrow(/closed/);
    // The pool is its owner's to end.
    expect((await pool.query("SELECT count(*)::int AS n FROM sy_requests")).rows[0].n).toBe(5_000);
  });

  it("writes what is queued at close, applies retention on demand, and counts the rows of a failed write as dropped", async () => {
    const pool = await newPool();
    const log = createRequestLog({ path: "", pool, maxRows: 10, flushMs: 10_000, logger: silentLogger });
    for (let i = 0; i < 30; i++) log.add(record(i));
    await log.flush();
    expect(await log.retain()).toBe(20);
    for (let i = 0; i < 5; i++) log.add(record(100 + i));
    await log.close();
    expect((await pool.query("SELECT count(*)::int AS n FROM sy_requests")).rows[0].n).toBe(15);

    // A database that refuses the write: those rows are counted, the gateway carries on.
    const broken = await newPool();
    const failing = createRequestLog({ path: "", pool: broken, flushMs: 10_000, logger: silentLogger });
    await failing.search({}, 1, ""); // the table exists
    await broken.query("ALTER TABLE sy_requests ADD CONSTRAINT no_rows CHECK (false) NOT VALID");
    for (let i = 0; i < 3; i++) failing.add(record(i));
    await failing.flush();
    expect(failing.dropped()).toBe(3);
    await failing.close();
  });
});

const KEY = "sk-gateway-logpg-test-0123456789";
const ADMIN = "sy-admin-logpg-test-0123456789";

interface SearchJson {
  entries?: { requestId: string; model: string; status: string; targets?: string[] }[];
  nextPageToken?: string;
}

describe("gateways on PostgreSQL", () => {
  let standin: OpenAIStandin;
  const gateways: TestGateway[] = [];
  beforeAll(async () => {
    standin = await startOpenAIStandin();
  });
  afterAll(async () => {
    await Promise.allSettled(gateways.map((g) => g.close()));
    await standin?.close();
  });

  const start = async (url: string, dataDir?: string): Promise<TestGateway> => {
    const gw = await startTestGateway({
      dataDir,
      auth: { keys: [KEY] },
      admin: { key: ADMIN },
      database: { url },
      providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini", "gpt-4o"] })],
    });
    gateways.push(gw);
    return gw;
  };
  const search = async (gw: TestGateway, filter: object, pageSize = 100): Promise<SearchJson> => {
    const r = await adminCall<SearchJson>(gw.url, ADMIN, "LogService/SearchRequests", { filter, pageSize });
    expect(r.status).toBe(200);
    return r.body;
  };
  async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
    for (let i = 0; i < 100; i++) {
      const v = await fn();
      if (ok(v)) return v;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error("condition not met");
  }

  it("records requests searchable and aggregated through LogService", async () => {
    const url = await postgres.newDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), "sy-logpg-gw-"));
    const gw = await start(url, dataDir);
    for (const model of ["gpt-4o-mini", "gpt-4o-mini", "gpt-4o"]) {
      expect((await chat(gw.url, KEY, { model }, { "x-request-id": `pg-one-${model}` })).status).toBe(200);
    }
    standin.setBehavior({ kind: "status", status: 500, times: 1, path: "/v1/chat/completions" });
    expect((await chat(gw.url, KEY, { model: "gpt-4o" })).status).toBeGreaterThanOrEqual(500);
    const all = await eventually(() => search(gw, {}), (r) => (r.entries ?? []).length >= 4);
    expect(all.entries).toHaveLength(4);
    expect(all.entries![0]!.status).toBe("upstream_error");
    const mini = await search(gw, { model: "gpt-4o-mini" }, 1);
    expect(mini.entries).toHaveLength(1);
    expect(mini.nextPageToken).not.toBe("");
    const rest = (await adminCall<SearchJson>(gw.url, ADMIN, "LogService/SearchRequests", { filter: { model: "gpt-4o-mini" }, pageSize: 1, pageToken: mini.nextPageToken })).body;
    expect(rest.entries!.map((e) => e.requestId)).toEqual(["pg-one-gpt-4o-mini"]);
    expect(rest.nextPageToken ?? "").toBe("");
    const agg = await adminCall<{ rows: { group: string; requests: string; errors?: string }[] }>(gw.url, ADMIN, "LogService/AggregateRequests", { groupBy: "GROUP_BY_MODEL" });
    expect(agg.status).toBe(200);
    expect(Object.fromEntries(agg.body.rows.map((r) => [r.group, [r.requests, r.errors ?? "0"]]))).toEqual({ "gpt-4o": ["2", "1"], "gpt-4o-mini": ["2", "0"] });
    expect((await search(gw, { requestId: "pg-one-gpt-4o" })).entries![0]!.targets).toEqual(["openai/gpt-4o"]);
    // The rows are in PostgreSQL, and nothing went to a SQLite file.
    expect((await (await newPool(url, 1)).query("SELECT count(*)::int AS n FROM sy_requests")).rows[0].n).toBe(4);
    expect(existsSync(join(dataDir, "requests.db"))).toBe(false);
  });

  it("shares one log between instances: each instance's records are visible from either", async () => {
    const url = await postgres.newDatabase();
    // Started together on an empty database: both make the schema at once.
    const [a, b] = await Promise.all([start(url), start(url)]);
    for (let i = 0; i < 3; i++) {
      expect((await chat(a!.url, KEY, {}, { "x-request-id": `via-a-${i}` })).status).toBe(200);
      expect((await chat(b!.url, KEY, {}, { "x-request-id": `via-b-${i}` })).status).toBe(200);
    }
    for (const gw of [a!, b!]) {
      const seen = await eventually(() => search(gw, {}), (r) => (r.entries ?? []).length >= 6);
      expect(seen.entries!.map((e) => e.requestId).sort()).toEqual(["via-a-0", "via-a-1", "via-a-2", "via-b-0", "via-b-1", "via-b-2"]);
    }
    // An instance that stops writes what it had queued first; the other still sees it.
    expect((await chat(b!.url, KEY, {}, { "x-request-id": "via-b-last" })).status).toBe(200);
    await b!.close();
    expect((await search(a!, { requestId: "via-b-last" })).entries).toHaveLength(1);
  });
});

/** A request log file as an older gateway left it: the first release's columns, no record ids. */
function oldLogFile(path: string, rows: number, latencyMs: number): void {
  const old = new DatabaseSync(path);
  old.exec(`CREATE TABLE requests (
      id INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, request_id TEXT NOT NULL,
      key TEXT NOT NULL, team TEXT NOT NULL, customer TEXT NOT NULL,
      operation TEXT NOT NULL, model_asked TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
      status TEXT NOT NULL,
      prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
      cost_usd REAL NOT NULL, latency_ms REAL NOT NULL, first_chunk_ms REAL,
      cache_status TEXT NOT NULL, attempts INTEGER NOT NULL,
      request_body TEXT, response_body TEXT
    );`);
  const insert = old.prepare(`INSERT INTO requests (time_ms, request_id, key, team, customer, operation, model_asked, provider, model, status,
    prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, first_chunk_ms, cache_status, attempts, request_body, response_body)
    VALUES (?, 'same-id', 'key:old', '', '', 'chat', 'm', 'openai', 'm', 'ok', 10, 5, 0, 0.001, ?, NULL, '', 1, NULL, NULL)`);
  for (let k = 0; k < rows; k++) insert.run(1_600_000_000_000 + k, latencyMs + k);
  old.close();
}

describe("migrating a SQLite request log", () => {
  it("copies every row as it was, once, however often it runs", async () => {
    const pool = await newPool();
    const path = dbPath();
    const rows = randomRows(2500, 7);
    const sqlite = openLogStore(path);
    sqlite.insert(rows);
    const progress: MigrateProgress[] = [];
    expect(await migrateLogToPostgres(path, pool, (p) => progress.push(p))).toEqual({ read: 2500, inserted: 2500, skipped: 0 });
    expect(progress.map((p) => p.read)).toEqual([1000, 2000, 2500]);
    // Everything arrived as it was: rows, and so every aggregate.
    const store = await openPgLogStore(pool);
    const copied: LogRow[] = [];
    let token = "";
    do {
      const page = await store.search({}, 1000, token);
      copied.push(...page.entries);
      token = page.nextPageToken;
    } while (token);
    expect(copied.toSorted((x, y) => x.recordId.localeCompare(y.recordId))).toEqual(rows.toSorted((x, y) => x.recordId.localeCompare(y.recordId)));
    const want = sqlite.aggregate({}, "model", "hour").map((r) => ({ ...r, costUsd: expect.closeTo(r.costUsd, 9) }));
    expect(await store.aggregate({}, "model", "hour")).toEqual(want);

    // Again, after more traffic: only what is new.
    sqlite.insert([row(90_001), row(90_002)]);
    sqlite.close();
    expect(await migrateLogToPostgres(path, pool)).toEqual({ read: 2502, inserted: 2, skipped: 2500 });
    expect(await migrateLogToPostgres(path, pool)).toEqual({ read: 2502, inserted: 0, skipped: 2502 });
  });

  it("reads a file from the first release as it is (read-only), and keeps two instances' old rows apart", async () => {
    const pool = await newPool();
    const [first, second] = [dbPath(), dbPath()];
    oldLogFile(first, 3, 10);
    expect(await migrateLogToPostgres(first, pool)).toEqual({ read: 3, inserted: 3, skipped: 0 });
    // The file was not upgraded: it still has no record_id column.
    const check = new DatabaseSync(first, { readOnly: true });
    expect(check.prepare("PRAGMA table_info(requests)").all().map((c) => c["name"])).not.toContain("record_id");
    check.close();
    expect(await migrateLogToPostgres(first, pool)).toEqual({ read: 3, inserted: 0, skipped: 3 });
    // Once a current gateway has opened the file (record ids legacy-1…3, new columns at their defaults), its rows are still the same rows.
    openLogStore(first).close();
    expect(await migrateLogToPostgres(first, pool)).toEqual({ read: 3, inserted: 0, skipped: 3 });

    // Another instance's old file: the same row ids (and legacy-1…3 once opened), other requests. Nothing of it is skipped.
    oldLogFile(second, 3, 20);
    openLogStore(second).close();
    expect(await migrateLogToPostgres(second, pool)).toEqual({ read: 3, inserted: 3, skipped: 0 });
    expect(await migrateLogToPostgres(second, pool)).toEqual({ read: 3, inserted: 0, skipped: 3 });
    const entries = (await (await openPgLogStore(pool)).search({}, 10, "")).entries;
    expect(entries.map((e) => [e.latencyMs, e.upstreamMs, e.keyName, e.savedUsd, e.targets])).toEqual(
      [22, 12, 21, 11, 20, 10].map((ms) => [ms, null, "", 0, []]),
    );
    expect(new Set(entries.map((e) => e.recordId)).size).toBe(6);
    expect(entries.every((e) => /^legacy-[\w-]{32}$/.test(e.recordId))).toBe(true);
  });

  it("says what is wrong with a missing file or one that is not a request log", async () => {
    const pool = await newPool();
    await expect(migrateLogToPostgres("/nonexistent/requests.db", pool)).rejects.toThrow("no request log at /nonexistent/requests.db");
    const other = dbPath();
    const db = new DatabaseSync(other);
    db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY)");
    db.close();
    await expect(migrateLogToPostgres(other, pool)).rejects.toThrow(/not a request log/);
  });
});

describe("switchyard db migrate-log", () => {
  const root = resolve(import.meta.dirname, "..");
  function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((done) => {
      execFile(process.execPath, ["server/cli.ts", ...args], { cwd: root, env: { PATH: process.env["PATH"] ?? "", ...env } }, (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1;
        done({ code, stdout, stderr });
      });
    });
  }

  it("copies <dataDir>/requests.db to database.url, twice without duplicates, never printing the password", async () => {
    const url = await postgres.newDatabase();
    // Trust authentication: any password is accepted, and none may be printed.
    const withPassword = url.replace("postgres://app@", "postgres://app:s3cret-pw@");
    const dataDir = mkdtempSync(join(tmpdir(), "sy-logpg-cli-"));
    const sqlite = openLogStore(join(dataDir, "requests.db"));
    sqlite.insert(Array.from({ length: 1200 }, (_, i) => row(i)));
    sqlite.close();
    const config = join(dataDir, "switchyard.yaml");
    writeFileSync(config, `dataDir: ${JSON.stringify(dataDir)}\ndatabase:\n  url: ${JSON.stringify(withPassword)}\n`);

    const first = await cli(["db", "migrate-log", "--config", config]);
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout).toContain(`copied the request log ${join(dataDir, "requests.db")} to postgres://app:***@127.0.0.1:${postgres.port}/`);
    expect(first.stdout).toContain("1200 rows read, 1200 copied, 0 already there");
    expect(first.stdout).not.toContain("s3cret-pw");
    // From the environment this time, and a file named with --from.
    const again = await cli(["db", "migrate-log", "--from", join(dataDir, "requests.db")], { SWITCHYARD_DATABASE_URL: withPassword, SWITCHYARD_DATA_DIR: "/nonexistent" });
    expect(again).toMatchObject({ code: 0, stderr: "" });
    expect(again.stdout).toContain("1200 rows read, 0 copied, 1200 already there");
    expect(again.stdout).not.toContain("s3cret-pw");
    const pool = await newPool(url);
    expect((await pool.query("SELECT count(*)::int AS n FROM sy_requests")).rows[0].n).toBe(1200);
  });

  it("explains a missing database, file or server, and has --help", async () => {
    const none = await cli(["db", "migrate-log"], { SWITCHYARD_DATA_DIR: "/nonexistent" });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("no PostgreSQL to copy to: set database.url in the configuration (--config FILE) or SWITCHYARD_DATABASE_URL");
    const noFile = await cli(["db", "migrate-log"], { SWITCHYARD_DATABASE_URL: await postgres.newDatabase(), SWITCHYARD_DATA_DIR: "/nonexistent" });
    expect(noFile.code).toBe(1);
    expect(noFile.stderr).toContain("no request log at /nonexistent/requests.db");
    const down = await cli(["db", "migrate-log", "--from", dbPath()], { SWITCHYARD_DATABASE_URL: "postgres://app:hunter2-pw@127.0.0.1:1/x" });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/x");
    expect(down.stderr).not.toContain("hunter2-pw");
    const other = await cli(["db", "vacuum"], { SWITCHYARD_DATA_DIR: "/nonexistent" });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("unknown command 'db vacuum': migrate-log");
    for (const args of [["db", "--help"], ["db"], ["db", "migrate-log", "--help"]]) {
      const help = await cli(args);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain("Usage: switchyard db migrate-log [--from FILE] [--config FILE]");
    }
    expect((await cli(["--help"])).stdout).toContain("db migrate-log");
  });
});
