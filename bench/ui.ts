/**
 * The web UI's first load, measured in headless Chromium on loopback:
 * a gateway on embedded defaults with a day of request-log rows, a signed-in
 * session, and N cold browser contexts opening /ui/. For each: the HTML and
 * scripts loaded (bytes as transferred, i.e. compressed) and the time until
 * the overview shows its first data (the totals drawn from
 * LogService.AggregateRequests). Run by hand: node bench/ui.ts [--runs N] [--rows N]
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startGateway } from "../server/app.ts";
import { validateConfig } from "../server/config/load.ts";
import { openLogStore } from "../server/telemetry/log-store.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "10" }, rows: { type: "string", default: "20000" } } });
const RUNS = Number(values.runs);
const ROWS = Number(values.rows);
const CHROMIUM = "/usr/bin/chromium";
const ADMIN = "bench-ui-admin-key-0123456789abcdef";
if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium`);

// A day of traffic in the request log, so the overview has real data to aggregate.
const dataDir = mkdtempSync(join(tmpdir(), "sy-bench-ui-"));
const log = openLogStore(join(dataDir, "requests.db"));
const now = Date.now();
const rows = Array.from({ length: ROWS }, (_, i) => ({
  recordId: `r${i}`, timeMs: now - Math.floor((i / ROWS) * 86_400_000), requestId: `q${i}`, key: `key_${i % 20}`, keyName: `k${i % 20}`, targets: ["openai/gpt-4o-mini"], team: `t${i % 4}`, customer: "c",
  operation: "chat", modelAsked: "gpt-4o-mini", provider: i % 3 === 0 ? "anthropic" : "openai", model: "gpt-4o-mini", status: i % 50 === 0 ? "upstream_error" : "ok",
  promptTokens: 250, completionTokens: 120, cachedTokens: 0, costUsd: 0.0001, latencyMs: 300 + (i % 200), firstChunkMs: null, upstreamMs: 299 + (i % 200),
  cacheStatus: i % 10 === 0 ? "hit" : "miss", savedUsd: 0, attempts: 1, requestBody: null, responseBody: null,
}));
for (let i = 0; i < rows.length; i += 5000) log.insert(rows.slice(i, i + 5000));
log.close();

const gw = await startGateway(validateConfig({ dataDir, server: { host: "127.0.0.1", port: 0 }, admin: { key: ADMIN } }, "bench"));
const login = await fetch(`${gw.url}/switchyard.v1.AuthService/Login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ adminKey: ADMIN }) });
const cookie = login.headers.get("set-cookie")!.split(";")[0]!.split("=");

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
interface Run { ms: number; htmlBytes: number; scriptBytes: number; cssBytes: number; requests: number }
const results: Run[] = [];
try {
  for (let i = 0; i < RUNS + 1; i++) {
    const context = await browser.newContext();
    await context.addCookies([{ name: cookie[0]!, value: cookie[1]!, url: gw.url }]);
    const page = await context.newPage();
    const run: Run = { ms: 0, htmlBytes: 0, scriptBytes: 0, cssBytes: 0, requests: 0 };
    page.on("requestfinished", async (req) => {
      const sizes = await req.sizes();
      const transferred = sizes.responseBodySize; // as sent: compressed when the server compressed it
      run.requests++;
      const type = req.resourceType();
      if (type === "document") run.htmlBytes += transferred;
      else if (type === "script") run.scriptBytes += transferred;
      else if (type === "stylesheet") run.cssBytes += transferred;
    });
    const started = performance.now();
    await page.goto(`${gw.url}/ui/`);
    await page.getByTestId("overview-totals").waitFor({ timeout: 10_000 });
    run.ms = performance.now() - started;
    await context.close();
    if (i > 0) results.push(run); // the first run warms the browser binary's own caches
  }
} finally {
  await browser.close();
  await gw.close();
}

const sorted = results.map((r) => r.ms).sort((a, b) => a - b);
const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const r0 = results[0]!;
const kb = (n: number): string => (n / 1024).toFixed(1);
console.log(`web UI first load: ${RUNS} cold browser contexts, signed in, overview over ${ROWS} request-log rows (24 h)`);
console.log("");
console.log("| measure | value |");
console.log("|---|---|");
console.log(`| first load to overview data, p50 | ${pct(50).toFixed(0)} ms |`);
console.log(`| first load to overview data, max | ${sorted[sorted.length - 1]!.toFixed(0)} ms |`);
console.log(`| HTML transferred | ${kb(r0.htmlBytes)} KB |`);
console.log(`| script transferred (compressed) | ${kb(r0.scriptBytes)} KB |`);
console.log(`| CSS transferred (compressed) | ${kb(r0.cssBytes)} KB |`);
console.log(`| requests per load | ${r0.requests} |`);
