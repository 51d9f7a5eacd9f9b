// Request-log throughput: feeds records at a fixed rate into the real writer
// (queue -> worker thread -> SQLite) and reports what it kept, dropped, and
// what adding records cost the calling thread. Run: node bench/request-log.ts [--rate 5000] [--duration 10]
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { RequestRecord } from "../server/pipeline/pipeline.ts";
import { silentLogger } from "../server/telemetry/log.ts";
import { createRequestLog } from "../server/telemetry/request-log.ts";

const { values } = parseArgs({ options: { rate: { type: "string", default: "5000" }, duration: { type: "string", default: "10" } } });
const rate = Number(values.rate);
const duration = Number(values.duration);
const dir = mkdtempSync(join(tmpdir(), "sy-bench-log-"));
const path = join(dir, "requests.db");
const log = createRequestLog({ path, logger: silentLogger });

const usage = { $typeName: "switchyard.v1.Usage", promptTokens: 250, completionTokens: 230, totalTokens: 480, cachedTokens: 0, reasoningTokens: 0, cacheWriteTokens: 0 } as const;
const record = (i: number): RequestRecord => ({
  requestId: `bench-${i}`, principal: `key:${(i % 50).toString(16).padStart(8, "0")}`, keyName: "", team: "", customer: "", costUsd: 0, cacheStatus: "", savedUsd: 0, operation: i % 3 === 0 ? "chat_stream" : "chat",
  modelAsked: "gpt-4o-mini", provider: "openai", model: "gpt-4o-mini", ok: i % 20 !== 0, errorCode: i % 20 === 0 ? "upstream_error" : undefined,
  usage, latencyMs: 120 + (i % 40), firstChunkMs: i % 3 === 0 ? 80 : undefined, upstreamMs: 119, attempts: 1, tried: ["openai/gpt-4o-mini"],
});

const perTick = rate / 100; // 10 ms ticks
let sent = 0;
let addNs = 0n;
const start = performance.now();
while (performance.now() - start < duration * 1000) {
  const due = Math.floor(((performance.now() - start) / 1000) * rate);
  const t0 = process.hrtime.bigint();
  while (sent < due && sent - due < perTick) log.add(record(sent++));
  addNs += process.hrtime.bigint() - t0;
  await new Promise((r) => setTimeout(r, 10));
}
const flushStart = performance.now();
await log.flush();
const flushMs = performance.now() - flushStart;
const stored = (await log.aggregate({}, "provider", "none"))[0]?.requests ?? 0;
const dropped = log.dropped();
await log.close();
const size = statSync(path).size;
rmSync(dir, { recursive: true, force: true });

const elapsed = (performance.now() - start - flushMs) / 1000;
console.log("request log   target/s  sent     stored   dropped  achieved/s  add() µs/record  drain after end ms  db MB");
console.log(
  `worker+sqlite  ${String(rate).padEnd(8)}  ${String(sent).padEnd(7)}  ${String(stored).padEnd(7)}  ${String(dropped).padEnd(7)}  ${(stored / elapsed).toFixed(0).padEnd(10)}  ${(Number(addNs) / 1000 / Math.max(sent, 1)).toFixed(3).padEnd(15)}  ${flushMs.toFixed(1).padEnd(18)}  ${(size / 1e6).toFixed(1)}`,
);
