import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { RequestRecord } from "../server/pipeline/pipeline.ts";
import { openLogStore, type LogRow } from "../server/telemetry/log-store.ts";
import { silentLogger } from "../server/telemetry/log.ts";
import { createRequestLog } from "../server/telemetry/request-log.ts";

const dbPath = () => join(mkdtempSync(join(tmpdir(), "sy-log-")), "requests.db");

function row(i: number, over: Partial<LogRow> = {}): LogRow {
  return {
    recordId: `rec-${i}`,
    timeMs: 1_700_000_000_000 + i * 1000,
    requestId: `req-${i}`,
    key: i % 2 === 0 ? "key:aaaa" : "key:bbbb",
    team: "",
    customer: "",
    operation: "chat",
    modelAsked: "gpt-4o-mini",
    provider: "openai",
    model: i % 3 === 0 ? "gpt-4o" : "gpt-4o-mini",
    status: i % 5 === 0 ? "upstream_error" : "ok",
    promptTokens: 10,
    completionTokens: 5,
    cachedTokens: 0,
    costUsd: 0.001,
    savedUsd: 0,
    latencyMs: 12.5,
    firstChunkMs: null,
    cacheStatus: "",
    attempts: 1,
    requestBody: null,
    responseBody: null,
    ...over,
  };
}

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
    expect(byModel).toEqual([
      { group: "gpt-4o", bucketStartMs: 0, requests: 40, errors: 8, promptTokens: 400, completionTokens: 200, costUsd: expect.closeTo(0.04, 6) },
      { group: "gpt-4o-mini", bucketStartMs: 0, requests: 80, errors: 16, promptTokens: 800, completionTokens: 400, costUsd: expect.closeTo(0.08, 6) },
    ]);
    const perMinute = store.aggregate({ key: "key:aaaa" }, "key", "minute");
    expect(perMinute.reduce((n, r) => n + r.requests, 0)).toBe(60);
    expect(perMinute.every((r) => r.bucketStartMs % 60_000 === 0)).toBe(true);
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
    requestId: `r-${i}`, principal: "anonymous", team: "", customer: "", costUsd: 0, cacheStatus: "", savedUsd: 0, operation: "chat", modelAsked: "m", provider: "p", model: "m",
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
});
