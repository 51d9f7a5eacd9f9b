/**
 * The chaos soak: steady traffic through two gateways while everything
 * around them fails, then an account of what was served, what was charged
 * and what the gateway kept.
 *
 *   node bench/soak.ts [--minutes 10] [--rate 40] [--json FILE] [--keep]
 *
 * What runs (all on loopback, in a temporary directory):
 * - redis-server with an append-only file (fsync always), so a restart loses
 *   nothing (bench/lib/redis-server.ts);
 * - two stand-in upstreams (bench/standin, built into the temporary
 *   directory): "primary" injects faults into 30 % of chat calls (see
 *   PRIMARY_FAULTS: HTTP 500, hangs, resets before the answer, resets right
 *   after the headers, resets mid-answer, slow first bytes, truncated and
 *   garbage bodies) and, at times, storms (every call answered 429 with
 *   Retry-After, or hanging, or 500); "healthy" never fails. Both answer after
 *   50 ms, and stream 20 content chunks 10 ms apart;
 * - two gateway processes, A and B, on the same Redis (governance.store
 *   redis, budgets allowed while it is unreachable, spend queued until it is
 *   back, reservations expiring 5 s after their gateway stops renewing them),
 *   route gpt-4o-mini -> primary, falling back to healthy; retries 0 (as in
 *   bench/chaos.ts: the fallback is the cheaper second try), breakers at their
 *   defaults, primary's first-byte timeout 1 s;
 * - a customer, a team and two virtual keys with budgets and limits, priced
 *   at $1 / $10 per million input / output tokens;
 * - bench/lib/soak-client.ts --mode steady: open-loop chat completions at
 *   --rate per second, half streamed (with include_usage), alternating
 *   between A and B; a request refused or reset before any answer is sent
 *   once more to the other gateway (as clients and load balancers do);
 * - bench/lib/soak-client.ts --mode rude, on its own key: abandoned streams,
 *   aborted requests, slowloris headers, slow and stalled bodies, oversized
 *   headers and bodies.
 *
 * Events, per cycle (one cycle per 5 minutes, at least one): a 429 storm on
 * primary, Redis paused (SIGSTOP) for a few seconds, a hang storm on primary,
 * Redis restarted (SIGTERM, down 2 s, started again), gateway B killed with
 * SIGKILL and started again, a 500 storm on primary.
 *
 * Checks (each PASS or FAIL; the exit code is 1 when any fails):
 * - success: >= 99.9 % of steady requests succeed, leaving out the ones no
 *   gateway can save (a stream reset by the provider after content reached the
 *   caller: the caller gets an error event, never a clean end) and the ones
 *   that were inside gateway B when it was killed (both reported);
 * - every stream the provider reset mid-answer ended as an error at the caller;
 * - spend: what Redis recorded for the steady key equals what was served,
 *   to the nano-dollar: the usage of every successful answer, plus, for
 *   streams reset mid-answer, the gateway's documented estimate (its prompt
 *   estimate and a token per 3 bytes of content relayed); requests that were
 *   inside B at the kill may or may not have been charged, and bound the
 *   difference; the rude key's spend lies between what its callers can have
 *   been served at least and at most; team and customer equal the keys' sum;
 * - no reservation is left (reserved 0, in flight 0 at every level) once the
 *   reservation TTL has passed, and no spend is waiting or given up on;
 * - gateway A (never killed): open file descriptors back to their idle count
 *   after the soak; and, idle and after a full garbage collection (A runs
 *   with --inspect on loopback; bench/lib/inspector.ts), RSS within 16 MB and
 *   heap used within 8 MB of what they were before the load. RSS under load
 *   swings with garbage not yet collected: it is reported, not checked;
 * - the rude callers got what they should: 431 for oversized headers, 413
 *   for oversized bodies, slow bodies served, slowloris connections closed by
 *   the gateway (node:http's headersTimeout, 66 s, checked every 30 s).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { costUsd, type Price } from "../server/governance/pricing.ts";
import { estimatePromptTokens, outputTokensFromBytes } from "../server/governance/estimate.ts";
import { Agent, fetch as undiciFetch, type RequestInit } from "undici";
import { decodeChatRequest } from "../server/wire/openai/chat-request.ts";
import { type Child, freePort, killAllSync, signalGroup, spawnLogged, startStandin, stopAll, stopChild, track } from "./lib/processes.ts";
import { memoryAfterGc, type MemoryAfterGc } from "./lib/inspector.ts";
import { type PersistentRedis, startPersistentRedis } from "./lib/redis-server.ts";
import { BENCH_DIR, ROOT } from "./lib/rig.ts";
import type { Exchange, RudeRecord, SteadyRecord } from "./lib/soak-client.ts";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "40" },
    json: { type: "string" },
    keep: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});
if (args.help) {
  console.log(readFileSync(fileURLToPath(import.meta.url), "utf8").split("*/")[0]!.replace(/^\/\*\*|^ \* ?/gm, ""));
  process.exit(0);
}
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
if (!(MINUTES > 0) || !(RATE > 0)) throw new Error("--minutes and --rate must be positive numbers");
const SECONDS = Math.round(MINUTES * 60);

/** What the primary stand-in injects per chat call (30 % in all), before storms. */
const PRIMARY_FAULTS: Record<string, number> = {
  "fail-rate": 0.05, // HTTP 500
  "hang-rate": 0.02, // no answer until the gateway gives up (first-byte timeout)
  "reset-rate": 0.05, // RST before any answer
  "headers-reset-rate": 0.04, // 200 + headers, then RST
  "cut-rate": 0.01, // RST mid-answer: streams after the role chunk and half the content
  "slow-rate": 0.04, // first byte after up to 2 s (the gateway waits 1 s)
  "truncate-rate": 0.04, // the body ends early, cleanly
  "garbage-rate": 0.05, // 200 and a body that is not JSON
};
const FIRST_BYTE_MS = 1000;
const RESERVATION_TTL_MS = 5000;
const PRICE: Price = { input: 1, output: 10 };
/** The stand-in's answer: 900 characters of content, usage 220 prompt + 200 completion tokens. */
const STANDIN_CONTENT_BYTES = 900;
const ADMIN_KEY = "sy-admin-soak-0123456789abcdef";
const NANOS = 1e9;

// ---------------------------------------------------------------- small helpers

/** The soak's own calls (admin, metrics, control) hold no connection open: the gateway's fd count stays the callers'. */
const noKeepAlive = new Agent({ pipelining: 0 });
const fetch = (url: string, init: RequestInit = {}) => undiciFetch(url, { ...init, dispatcher: noKeepAlive });

const t0 = Date.now();
let loadStart = 0;
const since = (t: number): string => `${((t - (loadStart || t0)) / 1000).toFixed(1)}s`;
const timeline: string[] = [];
function log(line: string): void {
  const entry = `${loadStart === 0 ? "setup" : `+${since(Date.now())}`}  ${line}`;
  timeline.push(entry);
  console.log(entry);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd()).join("\n");
}

function metricSum(text: string, name: string, filter: (labels: string) => boolean = () => true): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${name}(?:\\{([^}]*)\\})? ([0-9.eE+-]+)$`).exec(line);
    if (m && filter(m[1] ?? "")) sum += Number(m[2]);
  }
  return sum;
}

async function metrics(base: string): Promise<string> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) });
  return res.text();
}

async function rpc<T = any>(base: string, method: string, body: object): Promise<T> {
  const res = await fetch(`${base}/switchyard.v1.${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** VmRSS in bytes and the number of open file descriptors of pid. */
function procStats(pid: number): { rss: number; fds: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
    return { rss: kb * 1024, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return undefined;
  }
}

/** /proc/net/tcp states worth naming (established and listening go unsaid). */
const TCP_STATES: Record<string, string> = { "01": "", "0A": "", "02": "syn-sent", "04": "fin-wait-1", "05": "fin-wait-2", "06": "time-wait", "07": "close", "08": "close-wait", "09": "last-ack", "0B": "closing" };

/**
 * What pid's file descriptors point at, one label each: files by path (under
 * the soak's directory, relative), TCP sockets by their peer (named after
 * the soak's processes when it is one of them), else the link's kind.
 */
function fdLabels(pid: number, names: Map<number, string>, tmp: string): string[] {
  const peers = new Map<string, string>();
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = parseInt(f[1]!.split(":")[1]!, 16);
      const remote = parseInt(f[2]!.split(":")[1]!, 16);
      const label = f[3] === "0A" ? `listening :${local}` : names.has(remote) ? `tcp to ${names.get(remote)}` : names.has(local) ? `tcp from a client` : `tcp :${remote}`;
      const state = TCP_STATES[f[3]!] ?? f[3]!;
      peers.set(f[9]!, state === "" ? label : `${label} (${state})`);
    }
  }
  const out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of entries) {
    let link = "";
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const sock = /^socket:\[(\d+)\]$/.exec(link);
    if (sock) out.push(peers.get(sock[1]!) ?? "socket (not TCP)");
    else if (link.startsWith(tmp)) out.push(path.relative(tmp, link));
    else out.push(link.replace(/\[\d+\]$/, "").replace(/^\/dev\/pts\/\d+$/, "tty"));
  }
  return out.sort();
}

/** a - b as multisets, "label xN". */
function labelDiff(a: string[], b: string[]): string[] {
  const count = new Map<string, number>();
  for (const x of a) count.set(x, (count.get(x) ?? 0) + 1);
  for (const x of b) count.set(x, (count.get(x) ?? 0) - 1);
  return [...count.entries()].filter(([, n]) => n > 0).map(([k, n]) => (n === 1 ? k : `${k} x${n}`));
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const pct = (sorted: number[], p: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!);
const mb = (b: number): string => `${(b / 1048576).toFixed(1)} MB`;
const usd = (nanos: number): string => `$${(nanos / NANOS).toFixed(6)}`;

// ---------------------------------------------------------------- processes

function buildStandin(dir: string): string {
  const bin = path.join(dir, "standin");
  // Built into the soak's own directory: other benches rebuild bench/.bin/ at any time.
  const r = spawnSync("go", ["build", "-o", bin, "./standin"], { cwd: BENCH_DIR, env: { ...process.env, CGO_ENABLED: "0" }, stdio: ["ignore", "inherit", "inherit"] });
  if (r.error) throw new Error(`go build standin: ${r.error.message} (is Go installed?)`);
  if (r.status !== 0) throw new Error(`go build standin failed with exit code ${r.status}`);
  return bin;
}

/** The environment gateways get: nothing that would override their configuration file. */
function gatewayEnv(): NodeJS.ProcessEnv {
  const keep = ["PATH", "HOME", "TMPDIR", "LANG", "NODE_OPTIONS"];
  return Object.fromEntries(keep.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]]));
}

interface Gateway {
  name: string;
  url: string;
  configFile: string;
  logFile: string;
  child: Child;
}

async function startGateway(g: Omit<Gateway, "child">, nodeFlags: string[] = []): Promise<Gateway> {
  const child = spawnLogged(`gateway ${g.name}`, [process.execPath, ...nodeFlags, "server/main.ts", "--config", g.configFile], { cwd: ROOT, env: gatewayEnv() }, g.logFile);
  const deadline = Date.now() + 30_000;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exited) throw new Error(`gateway ${g.name} exited during start-up (${child.exitInfo}):\n${readFileSync(g.logFile, "utf8").slice(-3000)}`);
    try {
      const res = await fetch(`${g.url}/readyz`, { signal: AbortSignal.timeout(1000) });
      last = `${res.status} ${await res.text()}`;
      if (res.status === 200) return { ...g, child };
    } catch (err) {
      last = String((err as Error).cause ?? err);
    }
    await sleep(100);
  }
  throw new Error(`gateway ${g.name} was not ready within 30 s (last: ${last}); see ${g.logFile}`);
}

/** Runs a soak-client process; resolves with its summary line once it exits. */
function runClient(name: string, argv: string[]): { child: Child; done: Promise<string> } {
  const proc = spawn(process.execPath, [path.join(BENCH_DIR, "lib", "soak-client.ts"), ...argv], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const child = track(name, proc);
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const done = new Promise<string>((resolve, reject) =>
    proc.on("close", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${name} failed (exit ${code}): ${err.trim().slice(-2000)}`)))),
  );
  return { child, done };
}

async function standinLog(port: number): Promise<StandinEntry[]> {
  const res = await fetch(`http://127.0.0.1:${port}/_soak/log`);
  return (await res.text()).split("\n").filter(Boolean).map((l) => JSON.parse(l) as StandinEntry);
}

interface StandinEntry {
  id: string;
  fault: string;
  stream: boolean;
  done: boolean;
  ms: number;
}

// ---------------------------------------------------------------- money

const costNanos = (input: number, output: number): number => Math.round(costUsd(PRICE, { inputTokens: input, outputTokens: output }) * NANOS);
const promptEstimate = new Map<string, number>();
/** The gateway's prompt estimate for a request body (its reservation and the charge of a stream without usage). */
function estimatedPrompt(body: string): number {
  let n = promptEstimate.get(body);
  if (n === undefined) {
    n = estimatePromptTokens(decodeChatRequest(JSON.parse(body)).request);
    promptEstimate.set(body, n);
  }
  return n;
}
/** What the gateway charges a stream that ended without usage after relaying contentBytes of content. */
const streamEstimateNanos = (body: string, contentBytes: number): number => costNanos(estimatedPrompt(body), outputTokensFromBytes(contentBytes));
const usageNanos = (x: Exchange): number => costNanos(x.usage!.prompt, x.usage!.completion);
/** The most one request can have been charged: its usage (220 + 200) or a whole stream's estimate. */
const maxNanos = (body: string): number => Math.max(costNanos(220, 200), streamEstimateNanos(body, STANDIN_CONTENT_BYTES));

// ---------------------------------------------------------------- the soak

interface Check {
  name: string;
  value: string;
  target: string;
  pass: boolean;
}

interface Sample {
  t: number;
  rss: number;
  fds: number;
  /** nodejs_heap_size_used_bytes from A's /metrics (NaN when the scrape failed). */
  heap: number;
}

async function main(): Promise<number> {
  const tmp = mkdtempSync(path.join(tmpdir(), "sy-soak-"));
  let failed = true;
  try {
    console.log(`soak: ${MINUTES} min at ${RATE}/s; working in ${tmp}`);
    const bin = buildStandin(tmp);
    mkdirSync(path.join(tmp, "redis"));
    const redis: PersistentRedis = await startPersistentRedis(path.join(tmp, "redis"));
    const faultFlags = Object.entries(PRIMARY_FAULTS).flatMap(([k, v]) => [`-${k}`, String(v)]);
    const common = ["-soak", "-delay", "50ms", "-chunk-gap", "10ms", "-chunks", "20"];
    const primary = await startStandin("primary stand-in", false, [...common, ...faultFlags, "-slow-max", "2s"], bin);
    const healthy = await startStandin("healthy stand-in", false, common, bin);
    log(`redis-server on ${redis.port} (append-only, fsync always); primary stand-in on ${primary.port} (${Object.values(PRIMARY_FAULTS).reduce((a, b) => a + b, 0) * 100} % faults), healthy on ${healthy.port}`);

    const ports = [await freePort(), await freePort()];
    // A is inspected (loopback only) so its heap can be read after a full GC: a leak, unlike a grown heap, survives one.
    const inspectPort = await freePort();
    const gateways: Gateway[] = [];
    for (const [i, name] of ["A", "B"].entries()) {
      const dir = path.join(tmp, `gateway-${name}`);
      mkdirSync(dir);
      const config = {
        dataDir: path.join(dir, "data"),
        logLevel: "warn",
        server: { host: "127.0.0.1", port: ports[i] },
        admin: { key: ADMIN_KEY },
        providers: [
          { id: "primary", type: "openai", baseUrl: `http://127.0.0.1:${primary.port}/v1`, keys: ["sk-soak"], models: ["gpt-4o-mini"], timeouts: { firstByteMs: FIRST_BYTE_MS, idleMs: 5000 } },
          { id: "healthy", type: "openai", baseUrl: `http://127.0.0.1:${healthy.port}/v1`, keys: ["sk-soak"], models: ["gpt-4o-mini"] },
        ],
        routes: { "gpt-4o-mini": { targets: [{ model: "primary/gpt-4o-mini" }], fallbacks: ["healthy/gpt-4o-mini"] } },
        routing: { retries: 0 },
        governance: {
          store: "redis",
          redis: { url: redis.url },
          pricing: { "gpt-4o-mini": PRICE },
          whenStoreDown: { rateLimits: "local", budgets: "allow" },
          reservationTtlMs: RESERVATION_TTL_MS,
        },
      };
      const configFile = path.join(dir, "switchyard.json");
      writeFileSync(configFile, JSON.stringify(config, null, 2));
      gateways.push(await startGateway({ name, url: `http://127.0.0.1:${ports[i]}`, configFile, logFile: path.join(dir, "gateway.log") },
        name === "A" ? [`--inspect=127.0.0.1:${inspectPort}`] : []));
    }
    const [A, B] = gateways as [Gateway, Gateway];
    log(`gateway A on ${ports[0]} (pid ${A.child.proc.pid}), gateway B on ${ports[1]} (pid ${B.child.proc.pid})`);

    // Who pays: a customer, a team, a key for the steady load and one for the rude callers.
    const budget = { limitUsd: 1_000_000, period: "PERIOD_NONE" };
    const limits = { rpm: 1_000_000, tpm: "10000000000", maxConcurrent: 100_000 };
    const { customer } = await rpc(A.url, "OrgService/CreateCustomer", { name: "soak", budget });
    const { team } = await rpc(A.url, "OrgService/CreateTeam", { name: "soak", customerId: customer.id, budget, limits });
    const steadyKey = await rpc(A.url, "KeyService/CreateKey", { name: "soak-steady", teamId: team.id, budget, limits });
    const rudeKey = await rpc(A.url, "KeyService/CreateKey", { name: "soak-rude", teamId: team.id, budget, limits });
    // Both gateways serve the new keys (B learns of them through Redis).
    for (const g of gateways) {
      const deadline = Date.now() + 10_000;
      for (;;) {
        const res = await fetch(`${g.url}/v1/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${steadyKey.secret}` },
          body: JSON.stringify({ model: "healthy/gpt-4o-mini", messages: [{ role: "user", content: "warm-up" }], max_tokens: 200 }),
        });
        await res.arrayBuffer();
        if (res.status === 200) break;
        if (Date.now() > deadline) throw new Error(`gateway ${g.name} does not serve the soak key: HTTP ${res.status}`);
        await sleep(200);
      }
    }
    // The warm-up calls are charged too; the spend check starts from here.
    const steadyBefore = (await rpc(A.url, "BudgetService/GetBudget", { keyId: steadyKey.key.id })).spentUsd ?? 0;
    const rudeBefore = (await rpc(A.url, "BudgetService/GetBudget", { keyId: rudeKey.key.id })).spentUsd ?? 0;
    log(`customer ${customer.id}, team ${team.id}, keys soak-steady ${steadyKey.key.id} and soak-rude ${rudeKey.key.id}`);

    // Idle baseline of A (never killed).
    const pidA = A.child.proc.pid!;
    await sleep(1000);
    const idleBefore = procStats(pidA)!;
    const peerNames = new Map<number, string>([[redis.port, "redis"], [primary.port, "primary"], [healthy.port, "healthy"], [ports[0]!, "gateway A"], [ports[1]!, "gateway B"]]);
    const fdsBefore = fdLabels(pidA, peerNames, tmp);
    const heapBefore = await memoryAfterGc(inspectPort);

    // ------------------------------------------------------------ load and events
    const urls = gateways.map((g) => g.url).join(",");
    const steadyOut = path.join(tmp, "steady.jsonl");
    const rudeOut = path.join(tmp, "rude.jsonl");
    loadStart = Date.now();
    const steady = runClient("steady client", ["--mode", "steady", "--urls", urls, "--key", steadyKey.secret, "--seconds", String(SECONDS), "--rate", String(RATE), "--out", steadyOut]);
    const rude = runClient("rude client", ["--mode", "rude", "--urls", urls, "--key", rudeKey.secret, "--seconds", String(SECONDS), "--out", rudeOut]);
    log(`load: steady ${RATE}/s (half streamed) over A and B, and the rude callers, for ${SECONDS} s`);

    const samples: Sample[] = [];
    const breaker: string[] = [];
    let breakerState = "";
    let breakerOpened = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const s = procStats(pidA);
        let heap = NaN;
        try {
          heap = metricSum(await metrics(A.url), "nodejs_heap_size_used_bytes");
        } catch {
          // A busy moment; the next sample tries again.
        }
        if (s) samples.push({ t: Date.now(), ...s, heap });
        try {
          const h = await rpc<{ providers?: { provider: string; targets?: { model: string; state: string }[] }[] }>(A.url, "RoutingService/GetHealth", {});
          const st = (h.providers?.find((p) => p.provider === "primary")?.targets?.[0]?.state ?? "").replace("CIRCUIT_STATE_", "").toLowerCase();
          if (st !== "" && st !== breakerState) {
            if (st === "open") breakerOpened++;
            breaker.push(`+${since(Date.now())} ${st}`);
            breakerState = st;
          }
        } catch {
          // A busy moment; the next sample tries again.
        }
        await sleep(1000);
      }
    })();

    let kills = 0;
    const killWindows: { from: number; to: number }[] = [];
    const cycles = Math.max(1, Math.round(MINUTES / 5));
    const cycle = SECONDS / cycles;
    const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));
    const stormS = Math.round(clamp(cycle * 0.06, 5, 15));
    const pauseS = Math.round(clamp(cycle * 0.05, 4, 10));
    const storm = async (kind: string, seconds: number): Promise<void> => {
      await fetch(`http://127.0.0.1:${primary.port}/_soak/storm?kind=${kind}&seconds=${seconds}&retry-after=2`, { method: "POST" });
      log(`primary stand-in: ${kind} storm for ${seconds} s${kind === "429" ? " (Retry-After: 2)" : ""}`);
    };
    const events: { at: number; run: () => Promise<void> }[] = [];
    for (let c = 0; c < cycles; c++) {
      const at = (f: number): number => loadStart + (c * cycle + f * cycle) * 1000;
      events.push(
        { at: at(0.12), run: () => storm("429", stormS) },
        {
          at: at(0.25),
          run: async () => {
            redis.pause();
            log(`redis-server: SIGSTOP (paused) for ${pauseS} s`);
            await sleep(pauseS * 1000);
            redis.resume();
            log("redis-server: SIGCONT");
          },
        },
        { at: at(0.4), run: () => storm("hang", stormS) },
        {
          at: at(0.55),
          run: async () => {
            const s = Date.now();
            log("redis-server: SIGTERM (writes its append-only file), down 2 s, then started again on the same port");
            await redis.restart(2000);
            log(`redis-server: answering again (pid ${redis.pid()}), ${((Date.now() - s) / 1000).toFixed(1)} s after the SIGTERM`);
          },
        },
        {
          at: at(0.72),
          run: async () => {
            // Spend queued while Redis was away lives in memory: a kill then would lose it (documented), so wait for it to drain.
            const d = Date.now() + 20_000;
            let pending = NaN;
            while (Date.now() < d) {
              pending = metricSum(await metrics(B.url), "switchyard_governance_pending_settles");
              if (pending === 0) break;
              await sleep(250);
            }
            const from = Date.now();
            signalGroup(B.child, "SIGKILL");
            kills++;
            log(`gateway B: SIGKILL (pid ${B.child.proc.pid}; pending settles ${pending})`);
            while (!B.child.exited) await sleep(10);
            await stopChild(B.child, 0);
            await sleep(1000);
            const restarted = await startGateway(B);
            B.child = restarted.child;
            gateways[1] = B;
            const to = Date.now();
            killWindows.push({ from, to });
            log(`gateway B: started again (pid ${B.child.proc.pid}), ready ${((to - from) / 1000).toFixed(1)} s after the kill`);
          },
        },
        { at: at(0.86), run: () => storm("500", Math.round(clamp(cycle * 0.04, 4, 10))) },
      );
    }
    for (const e of events) {
      const wait = e.at - Date.now();
      if (wait > 0) await sleep(wait);
      await e.run();
    }
    const [steadySummary, rudeSummary] = await Promise.all([steady.done, rude.done]);
    const loadEnd = Date.now();
    log(`load ended: steady ${steadySummary}; rude ${rudeSummary}`);
    sampling = false;
    await sampler;

    // ------------------------------------------------------------ settle down
    let pending = [NaN, NaN];
    const pendDeadline = Date.now() + 30_000;
    while (Date.now() < pendDeadline) {
      pending = await Promise.all(gateways.map(async (g) => metricSum(await metrics(g.url), "switchyard_governance_pending_settles")));
      if (pending.every((p) => p === 0)) break;
      await sleep(250);
    }
    const scopes = [
      { name: "key soak-steady", q: { keyId: steadyKey.key.id } },
      { name: "key soak-rude", q: { keyId: rudeKey.key.id } },
      { name: "team", q: { teamId: team.id } },
      { name: "customer", q: { customerId: customer.id } },
    ];
    type BudgetView = { spentUsd?: number; reservedUsd?: number; inFlight?: number };
    let budgets: BudgetView[] = [];
    const resDeadline = loadEnd + RESERVATION_TTL_MS + 15_000;
    for (;;) {
      budgets = await Promise.all(scopes.map((s) => rpc<BudgetView>(A.url, "BudgetService/GetBudget", s.q)));
      const clear = budgets.every((b) => (b.reservedUsd ?? 0) === 0 && (b.inFlight ?? 0) === 0);
      if (clear || Date.now() > resDeadline) break;
      await sleep(500);
    }
    const reservationsClearAfter = Date.now() - loadEnd;
    const endMetrics = await Promise.all(gateways.map((g) => metrics(g.url)));
    log(`spend settled (pending ${pending.join(", ")}); reservations read ${(reservationsClearAfter / 1000).toFixed(1)} s after the load`);

    // Idle again: client connections are gone; the upstream pool's idle sockets close after 30 s.
    let idleAfter = procStats(pidA)!;
    const idleDeadline = Date.now() + 45_000;
    while (Date.now() < idleDeadline) {
      idleAfter = procStats(pidA)!;
      if (idleAfter.fds <= idleBefore.fds) break;
      await sleep(1000);
    }
    const fdsAfter = fdLabels(pidA, peerNames, tmp);
    const heapAfter = await memoryAfterGc(inspectPort);
    const fdsGained = labelDiff(fdsAfter, fdsBefore);
    const fdsLost = labelDiff(fdsBefore, fdsAfter);
    log(`gateway A idle: ${idleAfter.fds} fds (before the load: ${idleBefore.fds})` +
      (fdsGained.length + fdsLost.length > 0 ? `; fds gained: ${fdsGained.join(", ") || "none"}; lost: ${fdsLost.join(", ") || "none"}` : ""));

    // ------------------------------------------------------------ the account
    const steadyRecs = readFileSync(steadyOut, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as SteadyRecord);
    const rudeRecs = readFileSync(rudeOut, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as RudeRecord);
    const primaryLog = await standinLog(primary.port);
    const healthyLog = await standinLog(healthy.port);
    const faultsById = new Map<string, string[]>();
    for (const e of primaryLog) if (e.fault !== "") faultsById.set(e.id, [...(faultsById.get(e.id) ?? []), e.fault]);

    const inKill = (x: Exchange): boolean => x.gw === 1 && killWindows.some((w) => x.t1 >= w.from - 1000 && x.t0 <= w.to + 1000);
    const ok: SteadyRecord[] = [];
    const cut: SteadyRecord[] = [];
    const killed: SteadyRecord[] = [];
    const unexplained: SteadyRecord[] = [];
    for (const r of steadyRecs) {
      if (r.ok) ok.push(r);
      else if (r.stream && r.final.provider === "primary" && r.final.contentChunks > 0 && (faultsById.get(r.id) ?? []).includes("cut") && r.final.phase === "done" && r.final.streamError !== undefined && !r.final.sawDone) cut.push(r);
      else if (inKill(r.final) && r.final.phase !== "done") killed.push(r);
      else unexplained.push(r);
    }
    const retried = steadyRecs.filter((r) => r.retried !== undefined);
    const counted = steadyRecs.length - cut.length - killed.length;
    const successRate = counted === 0 ? 0 : (100 * ok.length) / counted;
    const steadyIds = new Set(steadyRecs.map((r) => r.id));
    const cutInjected = new Set(primaryLog.filter((e) => e.fault === "cut" && e.stream && steadyIds.has(e.id)).map((e) => e.id));
    const cutOk = steadyRecs.filter((r) => r.ok && cutInjected.has(r.id) && r.final.provider === "primary").length;
    const cutKilled = killed.filter((r) => cutInjected.has(r.id)).length;

    // Steady spend: exact for everything but the requests B may have charged before it died.
    let exact = 0;
    for (const r of ok) exact += usageNanos(r.final);
    for (const r of cut) exact += streamEstimateNanos(r.body, r.final.contentBytes);
    let ambiguousMax = 0;
    let ambiguousN = 0;
    // An error answer (4xx/5xx) served nothing and must cost nothing; a cut one may have been charged.
    for (const r of [...killed, ...unexplained.filter((r) => r.final.status === 0 || r.final.status === 200)]) {
      ambiguousMax += maxNanos(r.body);
      ambiguousN++;
    }
    for (const r of retried) {
      // Refused connections never reached a gateway; a reset one may have been served and charged just before the kill.
      if (r.retried!.error !== "ECONNREFUSED") {
        ambiguousMax += maxNanos(r.body);
        ambiguousN++;
      }
    }
    const [bSteady, bRude, bTeam, bCustomer] = budgets as [BudgetView, BudgetView, BudgetView, BudgetView];
    const recordedSteady = Math.round(((bSteady.spentUsd ?? 0) - steadyBefore) * NANOS);
    const steadyDiff = recordedSteady - exact;

    // Rude spend: between what its callers were surely served and the most they can have been.
    let rudeLo = 0;
    let rudeHi = 0;
    for (const r of rudeRecs) {
      if (r.body === undefined) continue;
      const x = r.x;
      const full = costNanos(220, 200);
      if (x.phase === "done" && x.status === 200 && x.usage !== undefined && (r.kind !== "disconnect" || x.sawDone)) {
        rudeLo += usageNanos(x);
        rudeHi += usageNanos(x);
      } else if (r.kind === "disconnect" && x.phase === "left") {
        rudeLo += Math.min(full, streamEstimateNanos(r.body, x.contentBytes));
        rudeHi += maxNanos(r.body);
      } else if (x.status !== 413 && x.status !== 431) {
        rudeHi += maxNanos(r.body);
      }
    }
    const recordedRude = Math.round(((bRude.spentUsd ?? 0) - rudeBefore) * NANOS);
    const levelsAgree = Math.abs((bTeam.spentUsd ?? 0) - (bSteady.spentUsd ?? 0) - (bRude.spentUsd ?? 0)) < 1e-9 &&
      Math.abs((bCustomer.spentUsd ?? 0) - (bTeam.spentUsd ?? 0)) < 1e-9;
    const leftover = budgets.map((b, i) => `${scopes[i]!.name} ${usd(Math.round((b.reservedUsd ?? 0) * NANOS))}/${b.inFlight ?? 0}`);
    const reservationsClear = budgets.every((b) => (b.reservedUsd ?? 0) === 0 && (b.inFlight ?? 0) === 0);
    const settleFailures = endMetrics.map((m) => metricSum(m, "switchyard_governance_settle_failures_total"));

    // RSS and fds of A: early in the load (after 5 s, before the first event) against its last stretch.
    const early = samples.filter((s) => s.t >= loadStart + 5000 && s.t < loadStart + Math.max(10_000, cycle * 0.12 * 1000));
    const late = samples.filter((s) => s.t >= loadEnd - Math.max(10_000, SECONDS * 100));
    const rssEarly = median(early.map((s) => s.rss));
    const rssLate = median(late.map((s) => s.rss));
    const rssPeak = Math.max(...samples.map((s) => s.rss));
    const fdsEarly = median(early.map((s) => s.fds));
    const fdsLate = median(late.map((s) => s.fds));
    const fdsPeak = Math.max(...samples.map((s) => s.fds));
    const RSS_ALLOWED = 16 * 1048576;
    const HEAP_ALLOWED = 8 * 1048576;

    // Rude callers.
    const rudeBy = (k: string): RudeRecord[] => rudeRecs.filter((r) => r.kind === k);
    const bigHeaders = rudeBy("big-headers");
    const bigBody = rudeBy("big-body");
    const slowBody = rudeBy("slow-body").filter((r) => r.closedByServer);
    const killedRude = (r: RudeRecord): boolean => inKill(r.x);
    // Connections on B when it was killed were closed by the kill, not by a timeout: left out.
    const slowHeaders = rudeBy("slow-headers").filter((r) => !killedRude(r));
    const slowHeadersClosed = slowHeaders.filter((r) => r.closedByServer);
    const slowHeaders408 = slowHeadersClosed.filter((r) => r.x.status === 408).length;
    const slowHeadersHeld = slowHeadersClosed.map((r) => r.heldMs ?? 0);
    const slowHeadersTooLong = slowHeaders.filter((r) => (r.heldMs ?? 0) > 100_000).length;
    const stalled = rudeBy("stalled-body").filter((r) => !killedRude(r));
    const stalledMax = Math.max(0, ...stalled.map((r) => r.heldMs ?? 0));
    const statusOk = (rs: RudeRecord[], status: number): number => rs.filter((r) => r.x.status === status || killedRude(r)).length;

    // Latency of successful steady requests.
    const lat = ok.map((r) => r.final.t1 - r.final.t0).sort((a, b) => a - b);

    const checks: Check[] = [
      {
        name: "steady requests succeeded",
        value: `${successRate.toFixed(3)} % (${ok.length} of ${counted}; ${unexplained.length} failed)`,
        target: ">= 99.9 %",
        pass: successRate >= 99.9,
      },
      {
        name: "mid-stream resets reached callers as errors",
        value: `${cut.length} error events for ${cutInjected.size - cutKilled} resets injected into steady streams (${cutKilled} more cut by the kill); ${cutOk} reported as a success`,
        target: "every one, none as success",
        pass: cutOk === 0 && cut.length === cutInjected.size - cutKilled,
      },
      {
        name: "steady spend = served usage",
        value: `recorded ${usd(recordedSteady)}, served ${usd(exact)}, difference ${usd(steadyDiff)}` +
          (steadyDiff > 0 && steadyDiff % costNanos(220, 200) === 0 ? ` = ${steadyDiff / costNanos(220, 200)} x ${usd(costNanos(220, 200))}` : "") +
          (ambiguousN > 0 ? ` (${ambiguousN} requests cut by the kill or failed, which the gateway may have charged before its answer was lost: up to ${usd(ambiguousMax)})` : ""),
        target: "equal (to the nano-dollar, beyond requests cut by the kill)",
        pass: steadyDiff >= 0 && steadyDiff <= ambiguousMax,
      },
      {
        name: "rude spend within what was served",
        value: `recorded ${usd(recordedRude)}, served at least ${usd(rudeLo)} and at most ${usd(rudeHi)}`,
        target: "within",
        pass: recordedRude >= rudeLo && recordedRude <= rudeHi,
      },
      {
        name: "team and customer = sum of keys",
        value: `team ${usd(Math.round((bTeam.spentUsd ?? 0) * NANOS))}, customer ${usd(Math.round((bCustomer.spentUsd ?? 0) * NANOS))}, keys ${usd(Math.round(((bSteady.spentUsd ?? 0) + (bRude.spentUsd ?? 0)) * NANOS))}`,
        target: "equal",
        pass: levelsAgree,
      },
      {
        name: "stuck reservations",
        value: `${leftover.join(", ")} (reserved/in flight, ${(reservationsClearAfter / 1000).toFixed(1)} s after the load)`,
        target: `none once the TTL (${RESERVATION_TTL_MS / 1000} s) has passed`,
        pass: reservationsClear,
      },
      {
        name: "spend waiting or given up",
        value: `pending ${pending.join(" / ")}, settle failures ${settleFailures.join(" / ")} (A / B)`,
        target: "0",
        pass: pending.every((p) => p === 0) && settleFailures.every((f) => f === 0),
      },
      {
        name: "gateway A open fds (idle)",
        value: `${idleBefore.fds} before -> ${idleAfter.fds} after${fdsGained.length > 0 ? ` (gained: ${fdsGained.join(", ")})` : ""} (under load ${fdsEarly} early, ${fdsLate} late, peak ${fdsPeak})`,
        target: "back to the idle count",
        pass: idleAfter.fds <= idleBefore.fds,
      },
      {
        name: "gateway A memory (idle, after a full GC)",
        value: `RSS ${mb(heapBefore.rss)} before the load -> ${mb(heapAfter.rss)} after, heap used ${mb(heapBefore.heapUsed)} -> ${mb(heapAfter.heapUsed)} ` +
          `(under load, garbage included: RSS ${mb(rssEarly)} early, ${mb(rssLate)} late, peak ${mb(rssPeak)})`,
        target: `RSS growth <= ${mb(RSS_ALLOWED)}, heap growth <= ${mb(HEAP_ALLOWED)}`,
        pass: heapAfter.rss - heapBefore.rss <= RSS_ALLOWED && heapAfter.heapUsed - heapBefore.heapUsed <= HEAP_ALLOWED,
      },
      {
        name: "oversized headers refused",
        value: `${statusOk(bigHeaders, 431)} of ${bigHeaders.length} got 431`,
        target: "all",
        pass: bigHeaders.length > 0 && statusOk(bigHeaders, 431) === bigHeaders.length,
      },
      {
        name: "oversized bodies refused",
        value: `${statusOk(bigBody, 413)} of ${bigBody.length} got 413`,
        target: "all",
        pass: bigBody.length > 0 && statusOk(bigBody, 413) === bigBody.length,
      },
      {
        name: "slow bodies served",
        value: `${statusOk(slowBody, 200)} of ${slowBody.length} got 200`,
        target: "all",
        pass: slowBody.length > 0 && statusOk(slowBody, 200) === slowBody.length,
      },
      {
        name: "slowloris connections closed by the gateway",
        value: `${slowHeadersClosed.length} closed by the gateway (${slowHeaders408} with 408) after ` +
          `${slowHeadersHeld.length === 0 ? "-" : `${(Math.min(...slowHeadersHeld) / 1000).toFixed(0)}-${(Math.max(...slowHeadersHeld) / 1000).toFixed(0)} s`}, ` +
          `${slowHeaders.length - slowHeadersClosed.length} still open at the end; ${slowHeadersTooLong} held past 100 s`,
        target: "none held past 100 s",
        pass: slowHeadersTooLong === 0,
      },
    ];

    // ------------------------------------------------------------ report
    const byFault = new Map<string, number>();
    for (const e of primaryLog) byFault.set(e.fault || "none", (byFault.get(e.fault || "none") ?? 0) + 1);
    const faulted = primaryLog.filter((e) => e.fault !== "").length;
    const rudeCounts = ["disconnect", "abort", "slow-headers", "slow-body", "stalled-body", "big-headers", "big-body"].map((k) => `${k} ${rudeBy(k).length}`).join(", ");
    const fallbacks = metricSum(endMetrics[0]!, "switchyard_fallbacks_total") + metricSum(endMetrics[1]!, "switchyard_fallbacks_total");
    const degraded = endMetrics.map((m) => metricSum(m, "switchyard_governance_degraded_requests_total"));
    const errorLines = gateways.map((g) => readFileSync(g.logFile, "utf8").split("\n").filter((l) => l.includes('"level":"error"')).length);
    const samplesOf = (rs: SteadyRecord[]): string => [...new Set(rs.map((r) => `${r.final.status || r.final.phase}: ${r.final.error ?? r.final.streamError ?? ""}`))].slice(0, 4).join(" | ");

    console.log("");
    console.log(`SOAK REPORT: ${MINUTES} min, steady ${RATE}/s over gateways A and B, ${cycles} cycle(s) of events`);
    console.log("");
    console.log("what it did:");
    for (const line of timeline) console.log(`  ${line}`);
    console.log(`  primary breaker on A (sampled each second): ${breaker.join(", ")}; opened ${breakerOpened} time(s)`);
    console.log("");
    console.log("faults injected by the primary stand-in (per call):");
    const inStorms = primaryLog.filter((e) => e.fault.startsWith("storm-")).length;
    console.log(`  ${primaryLog.length} calls, ${faulted} faulted (${((100 * faulted) / Math.max(1, primaryLog.length)).toFixed(1)} %; ` +
      `outside storms ${(((faulted - inStorms) * 100) / Math.max(1, primaryLog.length - inStorms)).toFixed(1)} % of ${primaryLog.length - inStorms}): ` +
      [...byFault.entries()].filter(([k]) => k !== "none").sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(", "));
    console.log(`  healthy stand-in answered ${healthyLog.length} calls; gateways counted ${fallbacks} fallbacks (B's count since its restart)`);
    // Each fault against what the steady caller it hit saw in the end.
    const recById = new Map(steadyRecs.map((r) => [r.id, r]));
    const killedIds = new Set(killed.map((r) => r.id));
    const perFault = new Map<string, { calls: number; errors: number }>();
    for (const e of primaryLog) {
      const r = recById.get(e.id);
      if (e.fault === "" || r === undefined || killedIds.has(r.id)) continue;
      const k = e.fault === "cut" ? `cut (${e.stream ? "stream, after content" : "JSON body"})` : e.fault;
      const v = perFault.get(k) ?? { calls: 0, errors: 0 };
      v.calls++;
      if (!r.ok) v.errors++;
      perFault.set(k, v);
    }
    console.log("");
    console.log(table([["  fault (steady calls)", "injected", "callers saw an error"],
      ...[...perFault.entries()].sort((a, b) => b[1].calls - a[1].calls).map(([k, v]) => [`  ${k}`, String(v.calls), String(v.errors)])]));
    console.log("");
    console.log("what the steady callers saw:");
    console.log(`  ${steadyRecs.length} requests (${steadyRecs.filter((r) => r.stream).length} streamed): ${ok.length} succeeded, ` +
      `${cut.length} reset mid-stream by the provider (error event after content), ${killed.length} inside B at the kill, ${unexplained.length} other failures`);
    console.log(`  raw success rate ${((100 * ok.length) / Math.max(1, steadyRecs.length)).toFixed(3)} %; ${retried.length} requests sent again to the other gateway after a refused or reset connection ` +
      `(${retried.filter((r) => r.ok).length} of them then succeeded)`);
    if (unexplained.length > 0) console.log(`  other failures: ${samplesOf(unexplained)}`);
    const describe = (x: Exchange): string =>
      `${x.status || "no answer"}${x.contentChunks > 0 ? `, ${x.contentChunks} content chunks` : ""}${x.usage ? ", usage seen" : ""}, ${x.error ?? x.streamError ?? x.phase}`;
    for (const r of killed) console.log(`  cut by the kill: ${r.id} (${r.stream ? "stream" : "JSON"}): ${describe(r.final)}`);
    for (const r of retried.filter((r) => r.retried!.error !== "ECONNREFUSED")) console.log(`  sent again after a reset: ${r.id} (${r.stream ? "stream" : "JSON"}): ${describe(r.retried!)}`);
    console.log(`  latency of successes: p50 ${pct(lat, 0.5)} ms, p99 ${pct(lat, 0.99)} ms, max ${pct(lat, 1)} ms`);
    console.log(`  requests admitted on local counters while Redis was away: ${degraded.join(" / ")} (A / B since its restart)`);
    console.log(`  error lines in the gateway logs: A ${errorLines[0]}, B ${errorLines[1]}`);
    console.log("");
    const step = Math.max(1, Math.round(samples.length / 12));
    console.log(`gateway A over the load, RSS / heap used (MB) every ${step} s: ` +
      samples.filter((_, i) => i % step === 0).map((x) => `${(x.rss / 1048576).toFixed(0)}/${(x.heap / 1048576).toFixed(0)}`).join(" "));
    console.log(`gateway A idle after a full GC, before the load -> after: RSS ${mb(heapBefore.rss)} -> ${mb(heapAfter.rss)}, heap used ${mb(heapBefore.heapUsed)} -> ${mb(heapAfter.heapUsed)}, ` +
      `external ${mb(heapBefore.external)} -> ${mb(heapAfter.external)}, array buffers ${mb(heapBefore.arrayBuffers)} -> ${mb(heapAfter.arrayBuffers)}`);
    console.log("");
    console.log(`rude callers (own key): ${rudeCounts}`);
    console.log(`  bodies stalled half-way: held open by the gateway up to ${(stalledMax / 1000).toFixed(0)} s, ` +
      `${stalled.filter((r) => r.closedByServer).length} of ${stalled.length} closed by it (it sets no timeout on request bodies: server.requestTimeout 0)`);
    console.log("");
    console.log("checks:");
    const w = Math.max(...checks.map((c) => c.name.length));
    for (const c of checks) console.log(`  ${c.pass ? "PASS" : "FAIL"}  ${c.name.padEnd(w)}  ${c.value}  [target: ${c.target}]`);
    const allPass = checks.every((c) => c.pass);
    console.log("");
    console.log(allPass ? "SOAK PASSED" : `SOAK FAILED: ${checks.filter((c) => !c.pass).map((c) => c.name).join("; ")}`);

    if (args.json !== undefined) {
      writeFileSync(args.json, JSON.stringify({
        minutes: MINUTES, rate: RATE, pass: allPass, checks, timeline, breaker,
        figures: {
          steady: { sent: steadyRecs.length, ok: ok.length, cut: cut.length, killed: killed.length, unexplained: unexplained.length, retried: retried.length, successRate },
          primary: { calls: primaryLog.length, faulted, byFault: Object.fromEntries(byFault) },
          healthyCalls: healthyLog.length,
          spend: { recordedSteady, exact, ambiguousMax, recordedRude, rudeLo, rudeHi },
          gatewayA: { idleBefore, idleAfter, fdsBefore, fdsAfter, heapBefore, heapAfter, rssEarly, rssLate, rssPeak, fdsEarly, fdsLate, fdsPeak },
          kills,
        },
      }, null, 2));
    }
    failed = !allPass;
    if (failed) console.log(`logs kept in ${tmp}`);
    return allPass ? 0 : 1;
  } catch (err) {
    console.error(String(err instanceof Error ? err.stack : err));
    console.error(`logs kept in ${tmp}`);
    return 1;
  } finally {
    await stopAll();
    if (!failed && !args.keep) rmSync(tmp, { recursive: true, force: true });
  }
}

process.on("SIGINT", () => {
  killAllSync();
  process.exit(130);
});
process.exitCode = await main();
