import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import type { RequestRecord } from "../server/pipeline/pipeline.ts";
import type { AggregateRow } from "../server/telemetry/log-aggregate.ts";
import { openLogStore, type LogRow } from "../server/telemetry/log-store.ts";
import { silentLogger } from "../server/telemetry/log.ts";
import { createRequestLog } from "../server/telemetry/request-log.ts";
import { row } from "./support/log-rows.ts";

const dbPath = () => join(mkdtempSync(join(tmpdir(), "sy-log-")), "requests.db");


describe("log store", () => {
  it("searches newest first with filters and stable pagination", () => {
    const store = openLogStore(dbPath());
    store.insert(Array.from({ length: 25 }, (_, i) => row(i)));
    const all: LogRow[] = [];
    let token = "";
    let pages = 0;
    do {
      const page = store.search({ key: "key:aaaa" }, 5, token);
      all.push(...page.entries);
      token = page.nextPageToken;
      pages++;
    } while (token);
    expect(pages).toBe(3);
    expect(all.map((r) => r.requestId)).toEqual(Array.from({ length: 13 }, (_, i) => `req-${24 - 2 * i}`));
    expect(store.search({ status: "error" }, 100, "").entries.every((r) => r.status !== "ok")).toBe(true);
    expect(store.search({ status: "upstream_error", model: "gpt-4o" }, 100, "").entries.map((r) => r.requestId)).toEqual(["req-15", "req-0"]);
    expect(store.search({ startTimeMs: 1_700_000_020_000 }, 100, "").entries).toHaveLength(5);
    expect(() => store.search({}, 10, "garbage!")).toThrow(/invalid page token/);
    store.close();
  });

  it("treats filter values as data, never SQL", () => {
    const store = openLogStore(dbPath());
    store.insert([row(1)]);
    expect(store.search({ key: "' OR 1=1 --" }, 10, "").entries).toHaveLength(0);
    expect(store.search({}, 10, "").entries).toHaveLength(1);
    store.close();
  });

  it("aggregates per group and time bucket", () => {
    const store = openLogStore(dbPath());
    store.insert(Array.from({ length: 120 }, (_, i) => row(i)));
    const byModel = store.aggregate({}, "model", "none");
    const same = { latencyP50Ms: 12.5, latencyP99Ms: 12.5, overheadP50Ms: 2.5, overheadP99Ms: 2.5, cacheHits: 0 };
    expect(byModel).toEqual([
      { group: "gpt-4o", bucketStartMs: 0, requests: 40, errors: 8, promptTokens: 400, completionTokens: 200, costUsd: expect.closeTo(0.04, 6), ...same },
      { group: "gpt-4o-mini", bucketStartMs: 0, requests: 80, errors: 16, promptTokens: 800, completionTokens: 400, costUsd: expect.closeTo(0.08, 6), ...same },
    ]);
    const perMinute = store.aggregate({ key: "key:aaaa" }, "key", "minute");
    expect(perMinute.reduce((n, r) => n + r.requests, 0)).toBe(60);
    expect(perMinute.every((r) => r.bucketStartMs % 60_000 === 0)).toBe(true);
    store.close();
  });

  it("gives nearest-rank latency percentiles per group and bucket, overhead from successful upstream calls only, and cache hits", () => {
    const store = openLogStore(dbPath());
    const t0 = 1_700_000_040_000; // a minute boundary
    let i = 0;
    const at = (timeMs: number, model: string, over: Partial<LogRow>): LogRow => row(i++, { timeMs, model, status: "ok", ...over });
    store.insert([
      // gpt-4o, first minute: latencies 1..100 (shuffled), upstream 1 ms less each: overhead 1 for all.
      ...Array.from({ length: 100 }, (_, k) => (k * 37) % 100 + 1).map((ms) => at(t0 + ms * 10, "gpt-4o", { latencyMs: ms, upstreamMs: ms - 1 })),
      // gpt-4o, second minute: three requests, overhead 2, 0 (clamped from -4) and 6 (a stream: first chunk minus upstream).
      at(t0 + 60_000, "gpt-4o", { latencyMs: 5, upstreamMs: 3 }),
      at(t0 + 61_000, "gpt-4o", { latencyMs: 1, upstreamMs: 5 }),
      at(t0 + 62_000, "gpt-4o", { latencyMs: 300, firstChunkMs: 9, upstreamMs: 3, cacheStatus: "miss" }),
      // Neither counts toward overhead: an error (however slow), and a cache hit that never went upstream.
      at(t0 + 63_000, "gpt-4o", { latencyMs: 900, upstreamMs: 100, status: "upstream_error" }),
      at(t0 + 64_000, "gpt-4o", { latencyMs: 2, upstreamMs: null, cacheStatus: "hit" }),
      // gpt-4o-mini, first minute: one semantic hit and one bypass; no request qualifies for overhead.
      at(t0 + 1000, "gpt-4o-mini", { latencyMs: 7, upstreamMs: null, cacheStatus: "semantic-hit" }),
      at(t0 + 2000, "gpt-4o-mini", { latencyMs: 8, upstreamMs: 4, status: "rate_limited", cacheStatus: "bypass" }),
    ]);
    const pick = (r: AggregateRow) => [r.group, r.bucketStartMs - t0, r.requests, r.latencyP50Ms, r.latencyP99Ms, r.overheadP50Ms, r.overheadP99Ms, r.cacheHits];
    expect(store.aggregate({}, "model", "minute").map(pick)).toEqual([
      ["gpt-4o", 0, 100, 50, 99, 1, 1, 0],
      ["gpt-4o-mini", 0, 2, 7, 8, 0, 0, 1],
      // latencies 1 2 5 300 900: rank ceil(2.5) = 3 and ceil(4.95) = 5; overheads 0 2 6: ranks 2 and 3.
      ["gpt-4o", 60_000, 5, 5, 900, 2, 6, 1],
    ]);
    // One bucket over the whole range: 105 latencies for gpt-4o (1, 2 and 5 twice), rank ceil(52.5) = 53 -> 50,
    // rank ceil(103.95) = 104 -> 300; overheads 0, 1 (x100), 2, 6: ranks 52 and 102.
    expect(store.aggregate({ model: "gpt-4o" }, "model", "none").map(pick)).toEqual([["gpt-4o", -t0, 105, 50, 300, 1, 2, 1]]);
    store.close();
  });

  it("opens a database file written before upstream times were stored, keeping its rows", () => {
    const path = dbPath();
    // The schema as the previous version created it.
    const old = new DatabaseSync(path);
    old.exec(`PRAGMA journal_mode = WAL;
      CREATE TABLE requests (
        id INTEGER PRIMARY KEY, record_id TEXT NOT NULL, time_ms INTEGER NOT NULL, request_id TEXT NOT NULL,
        key TEXT NOT NULL, team TEXT NOT NULL, customer TEXT NOT NULL,
        operation TEXT NOT NULL, model_asked TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
        status TEXT NOT NULL,
        prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,
        cost_usd REAL NOT NULL, latency_ms REAL NOT NULL, first_chunk_ms REAL,
        cache_status TEXT NOT NULL, attempts INTEGER NOT NULL,
        request_body TEXT, response_body TEXT,
        saved_usd REAL NOT NULL DEFAULT 0
      );
      CREATE UNIQUE INDEX requests_record_id ON requests(record_id);
      CREATE INDEX requests_time ON requests(time_ms);`);
    const insertOld = old.prepare(`INSERT INTO requests (record_id, time_ms, request_id, key, team, customer, operation, model_asked, provider, model, status,
      prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, first_chunk_ms, cache_status, attempts, request_body, response_body, saved_usd)
      VALUES (?, ?, ?, 'key:aaaa', '', '', 'chat', 'm', 'openai', 'm', 'ok', 10, 5, 0, 0.001, ?, NULL, ?, 1, '{"old":true}', NULL, 0)`);
    for (let k = 0; k < 3; k++) insertOld.run(`old-${k}`, 1_700_000_000_000 + k, `req-old-${k}`, 10 * (k + 1), k === 0 ? "hit" : "");
    old.close();

    const store = openLogStore(path);
    const before = store.search({}, 10, "").entries;
    expect(before.map((e) => [e.requestId, e.latencyMs, e.upstreamMs])).toEqual([["req-old-2", 30, null], ["req-old-1", 20, null], ["req-old-0", 10, null]]);
    // Old rows have no upstream time: they count everywhere except in overhead.
    expect(store.aggregate({}, "provider", "none")).toEqual([expect.objectContaining({ requests: 3, latencyP50Ms: 20, overheadP50Ms: 0, cacheHits: 1 })]);
    store.insert([row(1, { timeMs: 1_700_000_000_100, latencyMs: 40, upstreamMs: 36, provider: "openai" })]);
    store.close();

    // Opening it again is a no-op for the schema; everything written so far is there.
    const again = openLogStore(path);
    expect(again.search({}, 10, "").entries.map((e) => [e.requestId, e.upstreamMs])).toEqual([["req-1", 36], ["req-old-2", null], ["req-old-1", null], ["req-old-0", null]]);
    expect(again.aggregate({}, "provider", "none")).toEqual([expect.objectContaining({ requests: 4, latencyP50Ms: 20, latencyP99Ms: 40, overheadP50Ms: 4, overheadP99Ms: 4 })]);
    again.close();
  });

  it("opens the first release's database file (no record ids), numbering its rows so none is lost", () => {
    const path = dbPath();
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
      );
      CREATE INDEX requests_time ON requests(time_ms);`);
    const insertOld = old.prepare(`INSERT INTO requests (time_ms, request_id, key, team, customer, operation, model_asked, provider, model, status,
      prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, first_chunk_ms, cache_status, attempts, request_body, response_body)
      VALUES (?, 'same-id', 'key:aaaa', '', '', 'chat', 'm', 'openai', 'm', 'ok', 10, 5, 0, 0.001, 10, NULL, '', 1, NULL, NULL)`);
    for (let k = 0; k < 3; k++) insertOld.run(1_700_000_000_000 + k);
    old.close();

    const store = openLogStore(path);
    expect(store.search({}, 10, "").entries.map((e) => [e.recordId, e.keyName, e.savedUsd])).toEqual([["legacy-3", "", 0], ["legacy-2", "", 0], ["legacy-1", "", 0]]);
    store.insert([row(1, { timeMs: 1_700_000_000_100 })]);
    expect(store.search({}, 10, "").entries).toHaveLength(4);
    store.close();
  });

  it("writes a record once however often its write is retried, but never merges callers' request ids", () => {
    const store = openLogStore(dbPath());
    store.insert([row(1)]);
    store.insert([row(1), row(2)]);
    expect(store.search({}, 10, "").entries).toHaveLength(2);
    // Two requests that reuse one x-request-id are two rows: a caller cannot hide requests from the log.
    store.insert([row(3, { requestId: "req-1" })]);
    expect(store.search({}, 10, "").entries.filter((e) => e.requestId === "req-1")).toHaveLength(2);
    store.close();
  });

  it("keeps rows by age and by count", () => {
    const store = openLogStore(dbPath());
    store.insert(Array.from({ length: 100 }, (_, i) => row(i)));
    const now = 1_700_000_000_000 + 100_000;
    expect(store.retain(50_000, 1_000_000, now)).toBe(50); // rows older than 50 s
    expect(store.retain(1e12, 20, now)).toBe(30); // then the oldest beyond 20
    const left = store.search({}, 100, "").entries.map((r) => r.requestId);
    expect(left[0]).toBe("req-99");
    expect(left).toHaveLength(20);
    store.close();
  });
});

function record(i: number): RequestRecord {
  return {
    requestId: `r-${i}`, principal: "anonymous", keyName: "", team: "", customer: "", costUsd: 0, cacheStatus: "", savedUsd: 0, operation: "chat", modelAsked: "m", provider: "p", model: "m",
    ok: true, errorCode: undefined, usage: undefined, latencyMs: 1, firstChunkMs: undefined, upstreamMs: 1, attempts: 1, tried: ["p/m"],
  };
}

describe("request log writer", () => {
  it("never blocks or throws when flooded: excess records are dropped and counted", async () => {
    const log = createRequestLog({ path: dbPath(), queueMax: 5_000, flushMs: 10_000, logger: silentLogger });
    for (let i = 0; i < 20_000; i++) log.add(record(i));
    expect(log.dropped()).toBe(15_000);
    await log.flush();
    const page = await log.search({}, 1000, "");
    expect(page.entries).toHaveLength(1000);
    expect(page.entries[0]!.upstreamMs).toBe(1);
    const total = (await log.aggregate({}, "provider", "none"))[0]!.requests;
    expect(total).toBe(5_000);
    await log.close();
  });

  it("sustains thousands of records per second through the worker", async () => {
    const log = createRequestLog({ path: dbPath(), flushMs: 20, logger: silentLogger });
    for (let s = 0; s < 10; s++) {
      for (let i = 0; i < 1000; i++) log.add(record(s * 1000 + i));
      await new Promise((r) => setTimeout(r, 25));
    }
    await log.flush();
    expect(log.dropped()).toBe(0);
    expect((await log.aggregate({}, "provider", "none"))[0]!.requests).toBe(10_000);
    await log.close();
  });

  it("starts its worker thread with the first record or query, not before, and applies retention before it answers", async () => {
    let started = 0;
    const onWorker = (): void => void started++;
    subscribe("worker_threads", onWorker);
    try {
      const idle = createRequestLog({ path: dbPath(), flushMs: 5, logger: silentLogger });
      await new Promise((r) => setTimeout(r, 30));
      await idle.flush();
      expect(idle.dropped()).toBe(0);
      expect(started).toBe(0);
      await idle.close();
      expect(started).toBe(0);

      const written = createRequestLog({ path: dbPath(), flushMs: 5, logger: silentLogger });
      written.add(record(1));
      await written.flush();
      expect(started).toBe(1);
      await written.close();

      // A row past retention, left by an earlier run: the first query already finds it gone.
      const path = dbPath();
      const old = openLogStore(path);
      old.insert([row(1, { recordId: "old", timeMs: Date.now() - 3 * 86_400_000 }), row(2, { recordId: "new", timeMs: Date.now() })]);
      old.close();
      const queried = createRequestLog({ path, maxAgeMs: 86_400_000, logger: silentLogger });
      const page = await queried.search({}, 10, "");
      expect(started).toBe(2);
      expect(page.entries.map((e) => e.recordId)).toEqual(["new"]);
      await queried.close();
    } finally {
      unsubscribe("worker_threads", onWorker);
    }
  });
});
