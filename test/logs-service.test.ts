import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient as createServiceClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AggregateRequestsRequest_Bucket, AggregateRequestsRequest_GroupBy, LogService } from "../gen/switchyard/v1/logs_pb.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The request log through the gateway: known traffic is searchable and
// aggregated by LogService, over RPC and as plain JSON over HTTP; bodies are
// stored only when enabled, and redacted.

const KEY = "sk-gateway-logs-test-0123456789";
const ADMIN = "sy-admin-logs-test-0123456789";
const dataDir = mkdtempSync(join(tmpdir(), "sy-logs-"));
let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    admin: { key: ADMIN },
    dataDir,
    providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"] })],
    requestLog: { bodies: true, redact: ["secrets", "email"] },
  });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

const logs = () => createServiceClient(LogService, createConnectTransport({
  baseUrl: gw.url,
  httpVersion: "1.1",
  interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${ADMIN}`), next(req))],
}));

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = await fn();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("condition not met");
}

describe("LogService", () => {
  it("finds and aggregates known traffic, with bodies redacted", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: `mail me at jo${i}@example.com` }] });
    }
    await client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "my key is sk-live-abcdefghijklmnop" }] });
    const stream = await client.chat.completions.create({ model: "gpt-4o", stream: true, messages: [{ role: "user", content: "streamed" }] });
    for await (const _ of stream) { /* drain */ }
    standin.setBehavior({ kind: "status", status: 500, times: 1, path: "/v1/chat/completions" });
    await expect(client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "fails" }] })).rejects.toThrow();

    const filter = { startTimeMs: BigInt(started - 1000) };
    const all = await eventually(() => logs().searchRequests({ filter, pageSize: 100 }), (r) => r.entries.length >= 6);
    expect(all.entries).toHaveLength(6);
    expect(all.entries[0]!.status).toBe("upstream_error"); // newest first
    expect(all.entries.every((e) => e.key.startsWith("key:") && !e.key.includes(KEY))).toBe(true);

    const mini = await logs().searchRequests({ filter: { ...filter, model: "gpt-4o-mini" }, pageSize: 2 });
    expect(mini.entries).toHaveLength(2);
    const rest = await logs().searchRequests({ filter: { ...filter, model: "gpt-4o-mini" }, pageSize: 2, pageToken: mini.nextPageToken });
    expect(rest.entries).toHaveLength(1);
    expect(rest.nextPageToken).toBe("");

    // Pages carry no bodies; one request's detail does, redacted, with the targets it tried.
    expect(all.entries.every((e) => e.requestBody === "" && e.responseBody === "")).toBe(true);
    const secretRow = all.entries.find((e) => e.model === "gpt-4o" && e.operation === "chat" && e.status === "ok")!;
    const detail = await logs().searchRequests({ filter: { ...filter, requestId: secretRow.requestId }, includeBodies: true });
    expect(detail.entries).toHaveLength(1);
    expect(detail.entries[0]!.requestBody).toContain("my key is");
    expect(detail.entries[0]!.requestBody).not.toContain("sk-live-abcdefghijklmnop");
    expect(detail.entries[0]!.responseBody).not.toBe("");
    expect(detail.entries[0]!.targets).toEqual(["openai/gpt-4o"]);

    const errors = await logs().searchRequests({ filter: { ...filter, status: "error" } });
    expect(errors.entries.map((e) => e.status)).toEqual(["upstream_error"]);
    const streamed = (await logs().searchRequests({ filter: { ...filter, model: "gpt-4o", status: "ok" } })).entries.find((e) => e.operation === "chat_stream")!;
    expect(streamed.firstChunkMs).toBeGreaterThan(0);
    expect(streamed.completionTokens).toBeGreaterThan(0);

    const byModel = await logs().aggregateRequests({ filter, groupBy: AggregateRequestsRequest_GroupBy.MODEL });
    const rows = Object.fromEntries(byModel.rows.map((r) => [r.group, r]));
    expect(rows["gpt-4o-mini"]).toMatchObject({ requests: 3n, errors: 0n });
    expect(rows["gpt-4o"]).toMatchObject({ requests: 3n, errors: 1n });
    for (const r of byModel.rows) {
      expect(r.latencyP50Ms).toBeGreaterThan(0);
      expect(r.latencyP99Ms).toBeGreaterThanOrEqual(r.latencyP50Ms);
      // The gateway's own share: never negative, never more than the whole request.
      expect(r.overheadP50Ms).toBeGreaterThanOrEqual(0);
      expect(r.overheadP99Ms).toBeGreaterThanOrEqual(r.overheadP50Ms);
      expect(r.overheadP99Ms).toBeLessThanOrEqual(r.latencyP99Ms);
      expect(r.cacheHits).toBe(0n);
    }
    const perMinute = await logs().aggregateRequests({ filter, groupBy: AggregateRequestsRequest_GroupBy.PROVIDER, bucket: AggregateRequestsRequest_Bucket.MINUTE });
    expect(perMinute.rows.reduce((n, r) => n + r.requests, 0n)).toBe(6n);
  });

  it("answers plain JSON over HTTP (Connect protocol), and refuses callers without admin credentials", async () => {
    const res = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ pageSize: 1 }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { entries: { requestId: string }[]; nextPageToken: string };
    expect(body.entries).toHaveLength(1);
    expect(body.nextPageToken).not.toBe("");
    const denied = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(denied.status).toBe(401);
    // A gateway key is an inference key: the log (every tenant's traffic) is for admins.
    const inference = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` }, body: "{}" });
    expect(inference.status).toBe(403);
    const bad = await fetch(`${gw.url}/switchyard.v1.LogService/SearchRequests`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ pageToken: "not-a-token" }),
    });
    expect(bad.status).toBe(400);
  });

  it("a flooded log writer never slows or fails requests: it drops records and counts them", async () => {
    const tiny = await startTestGateway({ providers: [openaiProvider(standin.url)], requestLog: { queueMax: 5 } });
    try {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) =>
        fetch(`${tiny.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `flood ${i}` }] }),
        }).then((r) => r.status)));
      expect(results.every((s) => s === 200)).toBe(true);
      const metrics = await (await fetch(`${tiny.url}/metrics`)).text();
      const dropped = Number(/switchyard_request_log_dropped_total (\d+)/.exec(metrics)?.[1]);
      expect(dropped).toBeGreaterThan(0);
    } finally {
      await tiny.close();
    }
  });

  it("stores prompts and answers only redacted", async () => {
    // Bodies are not part of the search API; read them from the database file the gateway writes.
    const db = new DatabaseSync(join(dataDir, "requests.db"), { readOnly: true });
    const rows = db.prepare("SELECT request_body, response_body FROM requests WHERE operation LIKE 'chat%'").all() as { request_body: string; response_body: string | null }[];
    db.close();
    expect(rows.length).toBeGreaterThanOrEqual(6);
    const text = rows.map((r) => `${r.request_body} ${r.response_body ?? ""}`).join("\n");
    expect(text).toContain("mail me at [redacted]");
    expect(text).not.toMatch(/jo\d@example\.com/);
    expect(text).not.toContain("sk-live-abcdefghijklmnop");
    expect(text).toContain("streamed"); // the streamed answer was assembled and stored
  });

  it("stores the upstream time of every request that reached the provider", () => {
    const db = new DatabaseSync(join(dataDir, "requests.db"), { readOnly: true });
    const rows = db.prepare("SELECT status, latency_ms, first_chunk_ms, upstream_ms FROM requests WHERE operation LIKE 'chat%'").all() as
      { status: string; latency_ms: number; first_chunk_ms: number | null; upstream_ms: number | null }[];
    db.close();
    const ok = rows.filter((r) => r.status === "ok");
    expect(ok.length).toBeGreaterThanOrEqual(5);
    for (const r of ok) {
      expect(r.upstream_ms).toBeGreaterThan(0);
      expect(r.upstream_ms).toBeLessThanOrEqual(r.first_chunk_ms ?? r.latency_ms);
    }
  });
});
