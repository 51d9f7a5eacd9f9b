// Switchyard benchmark harness: added latency of the gateway over a cheap
// stand-in upstream, measured open-loop on a 2-core machine.
//
//   node bench/run.ts --rate 1000 --duration 15 [--warmup 3] [--delay 0ms]
//                     [--scenarios chat,stream,embed] [--gateway-cmd "<cmd>"] [--peer]
//
// See bench/README.md for what it measures and how to read the table.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import {
  type Child,
  freePort,
  killAllSync,
  runCollecting,
  spawnLogged,
  startStandin as startStandinProcess,
  stopAll,
  stopChild,
  waitForHealth,
} from "./lib/processes.ts";
import { CompleteRequestSchema, Role } from "../gen/switchyard/v1/chat_pb.ts";
import { createBenchKey } from "./lib/bench-key.ts";
import { type LoadgenResult, loadgenArgv } from "./lib/loadgen.ts";
import { ensurePeer, PEER_NAME, PEER_SKIPS, PEER_VERSION, peerArgv, peerEnv, peerHeaders } from "./lib/peer.ts";
import { BENCH_DIR, BIN_DIR, buildGo, pinnedArgv, pinSelfToCpu0, probeTaskset, ROOT } from "./lib/rig.ts";

const RESULTS_DIR = path.join(BENCH_DIR, "results");

const ALL_SCENARIOS = ["chat", "stream", "embed", "responses", "responses-stream", "grpc", "connect"] as const;
/** Scenarios the stand-in cannot answer itself: "direct" runs their Chat Completions equivalent. */
const DIRECT_EQUIVALENT: Partial<Record<Scenario, Scenario>> = {
  responses: "chat",
  "responses-stream": "stream",
  grpc: "chat",
  connect: "chat",
};
/** ChatService.Complete over gRPC (h2c) or Connect (JSON): the loadgen sends a body run.ts builds (rpcBodies). */
const RPC = new Set<string>(["grpc", "connect"]);
const STREAMED = new Set<string>(["stream", "responses-stream"]);
type Scenario = (typeof ALL_SCENARIOS)[number];
/** Who answers a run: the stand-in itself, Switchyard in front of it, or the peer gateway (--peer) in front of it. */
type Target = "direct" | "gateway" | "peer";

/** --sweep's bar: direct p99, or the added p99 of gateway and peer, in ms (total latency, streams included). */
const SWEEP_P99_MS = 1;

const DEFAULT_GATEWAY_CMD = "node server/main.ts --port {port} --host 127.0.0.1";

// ---------------------------------------------------------------- options

interface Options {
  rate: number;
  duration: number;
  warmup: number;
  delay: string;
  chunks: number;
  chunkGap: string;
  timeout: string;
  scenarios: Scenario[];
  gatewayCmd: string | undefined;
  headers: string[];
  pin: boolean;
  governance: "none" | "embedded" | "redis";
  cache: "off" | "exact";
  unique: boolean;
  /** Set SWITCHYARD_ADMIN_KEY and send inference with it (the gateway is then closed). */
  admin: boolean;
  /** The web UI's overview open in headless Chromium during every run, refreshed every 2 s. */
  uiOpen: boolean;
  /** Also run every scenario through Portkey's gateway (bench/lib/peer.ts), after Switchyard's runs. */
  peer: boolean;
  /** --sweep: the rates to run, ascending, in place of --rate; undefined without --sweep. */
  sweep: number[] | undefined;
}

const USAGE = `usage: node bench/run.ts [options]

  --rate N            requests per second, per run (default 1000)
  --duration S        recorded seconds per run (default 15)
  --warmup S          unrecorded warm-up seconds before each run (default 3)
  --delay D           stand-in delay before answering, e.g. 0ms, 50ms (default 0ms)
  --chunks N          SSE content chunks per streamed answer (default 20)
  --chunk-gap D       stand-in delay between SSE content chunks (default 0ms)
  --timeout D         per-request timeout in the load generator (default 10s)
  --scenarios LIST    comma-separated subset of chat,stream,embed,responses,responses-stream,
                      grpc,connect (default chat,stream,embed). The responses scenarios
                      send /v1/responses through the gateway (translated to chat
                      completions); grpc and connect send the chat request to
                      ChatService.Complete over gRPC (h2c) or Connect (JSON). All
                      four compare with direct chat completions

  --gateway-cmd CMD   how to start the gateway, run by /bin/sh; placeholders
                      {port} {host} {upstream} (default:
                      "${DEFAULT_GATEWAY_CMD}")
  --header "N: v"     extra request header for both targets (repeatable;
                      default "Authorization: Bearer sk-bench")
  --governance G      none | embedded | redis (default none): with embedded or
                      redis, requests use a virtual key under a team and a
                      customer, each with a budget and rate limits, so every
                      request is authenticated, reserved and settled at three
                      levels (redis: a redis-server on a free port, CPU 0)
  --cache MODE        off | exact (default off): SWITCHYARD_CACHE for the gateway
  --unique            every request's prompt distinct (with --cache: all misses);
                      otherwise every request is the same (with --cache: hits)
  --admin             start the gateway with an admin key and send inference with
                      it (the baseline for --ui-open)
  --ui-open           --admin, and the web UI's overview page open in headless
                      Chromium (on CPU 0) through every run, refreshed every 2 s:
                      what admin traffic adds to inference
  --peer              also run the scenarios through Portkey's open-source gateway
                      (@portkey-ai/gateway ${PEER_VERSION}, installed on first use into
                      bench/.peer/), on CPU 1 after Switchyard has stopped, against
                      the same stand-in: rows "peer" and "peer added"
  --sweep RATES       comma-separated rates (e.g. 500,1000,2000,3000,4000) run in
                      place of --rate, each for every target, then a table: the
                      highest rate with no errors and p99 <= ${SWEEP_P99_MS} ms (direct) or
                      added p99 <= ${SWEEP_P99_MS} ms (gateway, peer). A target that has
                      errors at a rate is not run at higher ones
  --no-pin            do not pin with taskset
  -h, --help          this text
`;

function durationArg(v: string): string {
  // Bare numbers are milliseconds for --delay/--chunk-gap, as in "--delay 50".
  return /^\d+(\.\d+)?$/.test(v) ? `${v}ms` : v;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      rate: { type: "string", default: "1000" },
      duration: { type: "string", default: "15" },
      warmup: { type: "string", default: "3" },
      delay: { type: "string", default: "0ms" },
      chunks: { type: "string", default: "20" },
      "chunk-gap": { type: "string", default: "0ms" },
      timeout: { type: "string", default: "10s" },
      scenarios: { type: "string", default: "chat,stream,embed" },
      "gateway-cmd": { type: "string" },
      header: { type: "string", multiple: true },
      "no-pin": { type: "boolean", default: false },
      governance: { type: "string", default: "none" },
      cache: { type: "string", default: "off" },
      unique: { type: "boolean", default: false },
      admin: { type: "boolean", default: false },
      "ui-open": { type: "boolean", default: false },
      peer: { type: "boolean", default: false },
      sweep: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${JSON.stringify(v)}`);
    return n;
  };
  const scenarios = values.scenarios.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of scenarios) {
    if (!(ALL_SCENARIOS as readonly string[]).includes(s)) {
      throw new Error(`unknown scenario ${JSON.stringify(s)} (known: ${ALL_SCENARIOS.join(", ")})`);
    }
  }
  if (!["none", "embedded", "redis"].includes(values.governance)) throw new Error(`--governance must be none, embedded or redis`);
  const rate = num("rate", values.rate, 0.001);
  const sweep = values.sweep?.split(",").map((v) => v.trim()).filter(Boolean).map((v) => num("sweep", v, 0.001));
  if (sweep !== undefined && sweep.length === 0) throw new Error("--sweep needs at least one rate");
  sweep?.sort((a, b) => a - b);
  const duration = num("duration", values.duration, 0.001);
  if (Math.min(rate, ...(sweep ?? [])) * duration < 1) throw new Error("--rate × --duration must be at least one request");
  return {
    rate,
    duration,
    warmup: num("warmup", values.warmup, 0),
    delay: durationArg(values.delay),
    chunks: num("chunks", values.chunks, 1),
    chunkGap: durationArg(values["chunk-gap"]),
    timeout: values.timeout,
    scenarios: scenarios as Scenario[],
    gatewayCmd: values["gateway-cmd"],
    headers: ["Authorization: Bearer sk-bench", ...(values.header ?? [])],
    pin: !values["no-pin"],
    governance: values.governance as Options["governance"],
    cache: values.cache === "exact" ? "exact" : "off",
    unique: values.unique,
    admin: values.admin || values["ui-open"],
    uiOpen: values["ui-open"],
    peer: values.peer,
    sweep: sweep === undefined ? undefined : [...new Set(sweep)],
  };
}

// ---------------------------------------------------------------- rig

interface Rig {
  pinned: boolean;
  pinNote: string;
  clkTck: number;
  cpus: number;
}

function probeRig(wantPin: boolean): Rig {
  const cpus = availableParallelism();
  const getconf = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const clkTck = Number(getconf.stdout?.trim()) || 100;
  if (!wantPin) return { pinned: false, pinNote: "not pinned (--no-pin)", clkTck, cpus };
  const taskset = probeTaskset();
  if (taskset === "missing") {
    return { pinned: false, pinNote: "NOT PINNED: taskset is missing or failed; numbers are noisier", clkTck, cpus };
  }
  if (taskset === "no-cpu1") {
    return { pinned: false, pinNote: "NOT PINNED: CPU 1 is not available to this process; numbers are noisier", clkTck, cpus };
  }
  // Keep this orchestrator (and its 10 Hz sampling) off the gateway's core.
  pinSelfToCpu0();
  return { pinned: true, pinNote: "pinned: gateway on CPU 1; stand-in, load generator and this script on CPU 0", clkTck, cpus };
}

function pinned(rig: Rig, cpu: number, argv: string[]): string[] {
  return pinnedArgv(rig.pinned, cpu, argv);
}

// ---------------------------------------------------------------- /proc sampling

interface ProcSample {
  cpuTicks: number; // utime + stime, summed over the process tree
  rssKb: number; // VmRSS, summed over the process tree
  pids: number[];
}

const SHELLS = new Set(["sh", "dash", "bash", "taskset"]);

function readStat(pid: number): { ppid: number; comm: string; ticks: number } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  const close = text.lastIndexOf(")");
  const comm = text.slice(text.indexOf("(") + 1, close);
  // Fields after "comm)": state(3) ppid(4) ... utime(14) stime(15), 1-based.
  const rest = text.slice(close + 2).split(" ");
  return { ppid: Number(rest[1]), comm, ticks: Number(rest[11]) + Number(rest[12]) };
}

function readRssKb(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

// The process tree under root (root included). There is no
// /proc/PID/task/TID/children on every kernel, so scan the ppids.
function processTree(root: number): number[] {
  const byParent = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    const list = byParent.get(st.ppid) ?? [];
    list.push(Number(name));
    byParent.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(byParent.get(pid) ?? []));
  }
  return out;
}

// Sum CPU and RSS over the tree, leaving out wrapper shells (a custom
// --gateway-cmd runs under /bin/sh) unless nothing else is there.
// Scanning /proc costs ~0.5 ms of CPU 0, so the tree is looked up once per
// run (measuredPids) and each 10 Hz sample reads only those pids.
function measuredPids(root: number | undefined): number[] {
  if (root === undefined) return [];
  const stats = processTree(root).map((pid) => ({ pid, st: readStat(pid) })).filter((x) => x.st !== undefined);
  let chosen = stats.filter((x) => !SHELLS.has(x.st!.comm));
  if (chosen.length === 0) chosen = stats;
  return chosen.map((x) => x.pid);
}

function sample(pids: number[]): ProcSample {
  let cpuTicks = 0;
  let rssKb = 0;
  for (const pid of pids) {
    const st = readStat(pid);
    if (!st) continue;
    cpuTicks += st.ticks;
    rssKb += readRssKb(pid);
  }
  return { cpuTicks, rssKb, pids };
}

function sampleTree(root: number | undefined): ProcSample {
  return sample(measuredPids(root));
}

// Per-CPU time from /proc/stat, in ticks: busy = user+nice+system (irq and
// softirq left out: loopback networking lands there and is ours anyway).
interface CpuTimes {
  busy: number;
  steal: number;
  total: number;
}

function readCpuTimes(): Map<number, CpuTimes> {
  const out = new Map<number, CpuTimes>();
  let text = "";
  try {
    text = readFileSync("/proc/stat", "utf8");
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].split(/\s+/).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = f;
    out.set(Number(m[1]), {
      busy: user + nice + system,
      steal: steal ?? 0,
      total: user + nice + system + idle + iowait + irq + softirq + (steal ?? 0),
    });
  }
  return out;
}

function cpuPct(a: Map<number, CpuTimes>, b: Map<number, CpuTimes>, cpu: number, field: "busy" | "steal"): number {
  const x = a.get(cpu);
  const y = b.get(cpu);
  if (!x || !y || y.total <= x.total) return 0;
  return ((y[field] - x[field]) * 100) / (y.total - x.total);
}

// ---------------------------------------------------------------- stand-in and gateway

async function startStandin(rig: Rig, opts: Options): Promise<{ child: Child; port: number }> {
  return await startStandinProcess("stand-in", rig.pinned, [
    "-delay", opts.delay,
    "-chunks", String(opts.chunks),
    "-chunk-gap", opts.chunkGap,
  ]);
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function startGateway(
  rig: Rig,
  opts: Options,
  port: number,
  upstream: string,
  logFile: string,
  redisUrl: string | undefined,
): Promise<{ child: Child; command: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, OPENAI_API_KEY: "sk-bench", OPENAI_BASE_URL: upstream };
  // The stand-in speaks Chat Completions only: without a key the provider is openai-compatible, so
  // /v1/responses is translated (as for every provider but OpenAI itself) rather than passed through.
  if (opts.scenarios.some((s) => s in DIRECT_EQUIVALENT)) delete env["OPENAI_API_KEY"];
  if (opts.cache !== "off") env["SWITCHYARD_CACHE"] = opts.cache;
  if (opts.governance !== "none" || opts.admin) {
    env["SWITCHYARD_ADMIN_KEY"] = BENCH_ADMIN_KEY;
    env["SWITCHYARD_DATA_DIR"] = path.join(RESULTS_DIR, `data-${process.pid}-${port}`);
    if (redisUrl !== undefined) env["SWITCHYARD_REDIS_URL"] = redisUrl;
  }
  let argv: string[];
  if (opts.gatewayCmd === undefined) {
    // Spawned without a shell, so the measured pid is the gateway itself.
    argv = pinned(rig, 1, [process.execPath, "server/main.ts", "--port", String(port), "--host", "127.0.0.1"]);
  } else {
    const cmd = opts.gatewayCmd
      .replaceAll("{port}", String(port))
      .replaceAll("{host}", "127.0.0.1")
      .replaceAll("{upstream}", upstream);
    argv = pinned(rig, 1, ["/bin/sh", "-c", cmd]);
  }
  const command = argv.map(shellQuote).join(" ");
  const child = spawnLogged("gateway", argv, { cwd: ROOT, env }, logFile);

  const url = `http://127.0.0.1:${port}/healthz`;
  const { status, last } = await waitForHealth(child, url, 15_000);
  if (status === "up") return { child, command };
  if (status === "exited") {
    throw new Error(`gateway exited during start-up (${child.exitInfo}); command: ${command}\n--- ${logFile} ---\n${tail(logFile)}`);
  }
  throw new Error(`gateway did not answer 200 on ${url} within 15 s (last: ${last}); command: ${command}\n--- ${logFile} ---\n${tail(logFile)}`);
}

/**
 * Starts the peer gateway (installing it first if needed) on CPU 1 like the
 * gateway, and waits for its `GET /` to answer 200 (it has no /healthz).
 */
async function startPeer(rig: Rig, port: number, logFile: string): Promise<{ child: Child; command: string }> {
  const argv = pinned(rig, 1, peerArgv(ensurePeer(), port));
  const command = argv.map(shellQuote).join(" ");
  const child = spawnLogged("peer", argv, { cwd: ROOT, env: peerEnv() }, logFile);
  const url = `http://127.0.0.1:${port}/`;
  const { status, last } = await waitForHealth(child, url, 15_000);
  if (status === "up") return { child, command };
  const why = status === "exited" ? `exited during start-up (${child.exitInfo})` : `did not answer 200 on ${url} within 15 s (last: ${last})`;
  throw new Error(`peer ${why}; command: ${command}\n--- ${logFile} ---\n${tail(logFile)}`);
}

// ---------------------------------------------------------------- gRPC and Connect bodies

/** The loadgen's chat prompt (bench/loadgen/main.go chatBody): 900 characters. */
const CHAT_PROMPT = "You are helping me plan a small benchmark. ".repeat(22).slice(0, 900);

/**
 * Writes the chat scenario's request as ChatService.Complete bodies into
 * bench/.bin/: the gRPC message frame (flag 0 = uncompressed, 4-byte
 * big-endian length, protobuf) and the Connect JSON. Built with the generated
 * schema, so the loadgen stays protobuf-free.
 */
function rpcBodies(): Record<"grpc" | "connect", string> {
  const req = create(CompleteRequestSchema, {
    request: {
      model: "gpt-4o-mini",
      messages: [{ role: Role.USER, content: [{ part: { case: "text", value: CHAT_PROMPT } }], contentIsText: true }],
    },
  });
  const message = toBinary(CompleteRequestSchema, req);
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  const files = { grpc: path.join(BIN_DIR, "grpc-complete.bin"), connect: path.join(BIN_DIR, "connect-complete.json") };
  writeFileSync(files.grpc, frame);
  writeFileSync(files.connect, toJsonString(CompleteRequestSchema, req));
  return files;
}

// ---------------------------------------------------------------- load runs

/** One load run: what is sent (scenario, rate), to whom (target, base URL) and with which extra headers. */
interface LoadRun {
  scenario: Scenario;
  target: Target;
  rate: number;
  url: string;
  headers: string[];
  /** grpc, connect: the request body's file (gateway runs only; direct runs send chat). */
  body?: string;
}

/** The process on CPU 1 during a run (the gateway, or the peer in its runs): its CPU and RSS are sampled. */
interface Proxy {
  pid: number;
  child: Child;
}

interface RunResult {
  target: Target;
  load: LoadgenResult;
  // The process tree on CPU 1 (the gateway; the peer in peer runs), sampled at 10 Hz.
  gatewayRssPeakMb: number;
  gatewayRssAfterMb: number;
  gatewayCpuPct: number; // % of one core, over the recorded window
  // CPU 0 = stand-in + load generator; over the whole run incl. warm-up.
  standinCpuPct: number;
  loadgenCpuPct: number;
  core0Pct: number;
  // Whole-run CPU use of the two cores by anything that is not ours
  // (another build or test run on the machine), and hypervisor steal;
  // only measured when pinned.
  foreignCpu0Pct: number;
  foreignCpu1Pct: number;
  stealPct: number;
}

const mb = (kb: number): number => Math.round((kb / 1024) * 10) / 10;

async function runLoad(rig: Rig, opts: Options, run: LoadRun, standinPid: number, proxy: Proxy): Promise<RunResult> {
  const { scenario, target } = run;
  const argv = loadgenArgv(rig.pinned, {
    url: run.url,
    mode: target === "direct" ? (DIRECT_EQUIVALENT[scenario] ?? scenario) : scenario,
    rate: run.rate,
    durationS: opts.duration,
    warmupS: opts.warmup,
    timeout: opts.timeout,
    headers: run.headers,
    unique: opts.unique,
    body: run.body,
  });

  const gwPids = measuredPids(proxy.pid);
  const standinPids = measuredPids(standinPid);
  const t0 = performance.now();
  const cpus0 = readCpuTimes();
  const self0 = process.cpuUsage();
  const gwStart = sample(gwPids).cpuTicks;
  const standin0 = sample(standinPids).cpuTicks;
  let gw0: { ticks: number; t: number } | undefined;
  let gw1: { ticks: number; t: number } | undefined;
  let rssPeak = 0;

  const warmupMs = opts.warmup * 1000;
  const { child, out, err } = await runCollecting(`load generator (${scenario}, ${target})`, argv, () => {
    const s = sample(gwPids);
    rssPeak = Math.max(rssPeak, s.rssKb);
    const now = performance.now();
    if (!gw0 && now - t0 >= warmupMs) gw0 = { ticks: s.cpuTicks, t: now };
  });
  const end = sample(gwPids);
  gw1 = { ticks: end.cpuTicks, t: performance.now() };
  rssPeak = Math.max(rssPeak, end.rssKb);
  const standin1 = sample(standinPids).cpuTicks;
  const self1 = process.cpuUsage(self0);
  const cpus1 = readCpuTimes();
  const wallMs = performance.now() - t0;

  if (child.exitInfo !== "exit code 0") {
    throw new Error(`load generator failed (${child.exitInfo}): ${err.trim() || out.trim()}`);
  }
  const load = JSON.parse(out) as LoadgenResult;

  if (proxy.child.exited) {
    throw new Error(`${proxy.child.name} died during the ${scenario} run (${proxy.child.exitInfo})`);
  }
  // RSS a second after the load stops: does memory come back down?
  await sleep(1000);
  const after = sample(gwPids);

  const tickMs = 1000 / rig.clkTck;
  let gatewayCpuPct = 0;
  if (gw0 && gw1 && gw1.t > gw0.t) gatewayCpuPct = ((gw1.ticks - gw0.ticks) * tickMs * 100) / (gw1.t - gw0.t);
  const standinCpuPct = ((standin1 - standin0) * tickMs * 100) / wallMs;
  const loadgenCpuPct = (load.cpu_ms * 100) / wallMs;
  const selfCpuPct = ((self1.user + self1.system) / 1000 * 100) / wallMs;
  const gwWholePct = ((end.cpuTicks - gwStart) * tickMs * 100) / wallMs;
  const r1 = (v: number): number => Math.round(v * 10) / 10;
  let foreignCpu0Pct = 0;
  let foreignCpu1Pct = 0;
  let stealPct = 0;
  if (rig.pinned) {
    foreignCpu0Pct = Math.max(0, cpuPct(cpus0, cpus1, 0, "busy") - standinCpuPct - loadgenCpuPct - selfCpuPct);
    foreignCpu1Pct = Math.max(0, cpuPct(cpus0, cpus1, 1, "busy") - gwWholePct);
    stealPct = Math.max(cpuPct(cpus0, cpus1, 0, "steal"), cpuPct(cpus0, cpus1, 1, "steal"));
  }
  return {
    target,
    load,
    gatewayRssPeakMb: mb(rssPeak),
    gatewayRssAfterMb: mb(after.rssKb),
    gatewayCpuPct: Math.round(gatewayCpuPct * 10) / 10,
    standinCpuPct: Math.round(standinCpuPct * 10) / 10,
    loadgenCpuPct: Math.round(loadgenCpuPct * 10) / 10,
    core0Pct: Math.round((standinCpuPct + loadgenCpuPct) * 10) / 10,
    foreignCpu0Pct: r1(foreignCpu0Pct),
    foreignCpu1Pct: r1(foreignCpu1Pct),
    stealPct: r1(stealPct),
  };
}

// ---------------------------------------------------------------- report

type Metric = "total" | "ttft";
const PCTS = ["p50", "p90", "p99", "max"] as const;

function pick(r: LoadgenResult, metric: Metric): Record<(typeof PCTS)[number], number> {
  if (metric === "ttft") {
    return { p50: r.ttft_p50 ?? 0, p90: r.ttft_p90 ?? 0, p99: r.ttft_p99 ?? 0, max: r.ttft_max ?? 0 };
  }
  return { p50: r.p50, p90: r.p90, p99: r.p99, max: r.max };
}

type Added = Partial<Record<Metric, Record<(typeof PCTS)[number], number> | null>>;

interface ScenarioResult {
  scenario: Scenario;
  rate: number;
  direct: RunResult;
  /** Missing when --sweep stopped the gateway at a lower rate (errors there). */
  gateway?: RunResult;
  // null when either side had no successful request to compare.
  added?: Added;
  /** --peer: the peer's run and what it adds over the same direct run, or why the scenario was skipped for it. */
  peer?: RunResult;
  peerAdded?: Added;
  peerSkipped?: string;
}

function addedFor(direct: LoadgenResult, gateway: LoadgenResult, metric: Metric): Record<(typeof PCTS)[number], number> | null {
  if (direct.ok === 0 || gateway.ok === 0) return null;
  const d = pick(direct, metric);
  const g = pick(gateway, metric);
  const r3 = (v: number): number => Math.round(v * 1000) / 1000;
  return { p50: r3(g.p50 - d.p50), p90: r3(g.p90 - d.p90), p99: r3(g.p99 - d.p99), max: r3(g.max - d.max) };
}

/** What run adds over direct, for every metric the scenario reports. */
function addedAll(scenario: Scenario, direct: LoadgenResult, run: LoadgenResult): Added {
  const added: Added = { total: addedFor(direct, run, "total") };
  if (STREAMED.has(scenario)) added.ttft = addedFor(direct, run, "ttft");
  return added;
}

function table(rows: string[][], rightAlignFrom: number): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows
    .map((r, ri) => {
      const line = r
        .map((cell, i) => (i >= rightAlignFrom && ri > 0 ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
        .join("  ")
        .trimEnd();
      return ri === 0 ? `${line}\n${"-".repeat(line.length)}` : line;
    })
    .join("\n");
}

/** The runs of a scenario, in table order: direct, gateway, and the peer's when it ran. */
function runsOf(r: ScenarioResult): RunResult[] {
  return [r.direct, r.gateway, r.peer].filter((run) => run !== undefined);
}

/** A target's run in a scenario result (undefined when it did not run). */
function runOf(r: ScenarioResult, target: Target): RunResult | undefined {
  return target === "direct" ? r.direct : target === "gateway" ? r.gateway : r.peer;
}

/** What a proxying target (gateway, peer) added over direct. */
function addedOf(r: ScenarioResult, target: Exclude<Target, "direct">): Added | undefined {
  return target === "gateway" ? r.added : r.peerAdded;
}

/** Milliseconds as the tables print them, and with a sign for added figures. */
const f = (v: number): string => v.toFixed(3);
const signed = (v: number): string => (v >= 0 ? "+" : "") + v.toFixed(3);

function report(results: ScenarioResult[]): string {
  const lat: string[][] = [["scenario", "rate", "target", "metric", "p50 ms", "p90 ms", "p99 ms", "max ms", "ok/sent", "errors"]];
  const runRow = (r: ScenarioResult, run: RunResult, metric: Metric): string[] => {
    const p = pick(run.load, metric);
    const none = run.load.ok === 0;
    return [
      r.scenario, String(r.rate), run.target, metric,
      ...(none ? ["-", "-", "-", "-"] : [f(p.p50), f(p.p90), f(p.p99), f(p.max)]),
      `${run.load.ok}/${run.load.sent}`, String(run.load.errors),
    ];
  };
  const addedRow = (r: ScenarioResult, label: string, a: Added[Metric], metric: Metric): string[] => [
    r.scenario, String(r.rate), label, metric,
    ...(a ? [signed(a.p50), signed(a.p90), signed(a.p99), signed(a.max)] : ["n/a", "n/a", "n/a", "n/a"]),
    "", "",
  ];
  for (const r of results) {
    const metrics: Metric[] = STREAMED.has(r.scenario) ? ["ttft", "total"] : ["total"];
    for (const metric of metrics) {
      lat.push(runRow(r, r.direct, metric));
      if (r.gateway) lat.push(runRow(r, r.gateway, metric), addedRow(r, "added", r.added?.[metric], metric));
      if (r.peer) lat.push(runRow(r, r.peer, metric), addedRow(r, "peer added", r.peerAdded?.[metric], metric));
    }
  }
  const withPeer = results.some((r) => r.peer);
  const slash = (r: ScenarioResult, v: (run: RunResult) => string): string =>
    [r.direct, r.gateway, ...(withPeer ? [r.peer] : [])].map((run) => (run ? v(run) : "-")).join(" / ");
  const res: string[][] = [[
    "scenario", "rate", "gw CPU % (1 core)", "gw RSS peak MB", "gw RSS after MB",
    ...(withPeer ? ["peer CPU %", "peer RSS peak MB", "peer RSS after MB"] : []),
    "CPU0 % direct", withPeer ? "CPU0 % gw / peer" : "CPU0 % gateway",
    `send lag p99 ms (d/g${withPeer ? "/p" : ""})`, `achieved rate (d/g${withPeer ? "/p" : ""})`,
  ]];
  for (const r of results) {
    const proxyCols = (run: RunResult | undefined): string[] =>
      run ? [run.gatewayCpuPct.toFixed(1), run.gatewayRssPeakMb.toFixed(1), run.gatewayRssAfterMb.toFixed(1)] : ["-", "-", "-"];
    res.push([
      r.scenario,
      String(r.rate),
      ...proxyCols(r.gateway),
      ...(withPeer ? proxyCols(r.peer) : []),
      r.direct.core0Pct.toFixed(1),
      [r.gateway, ...(withPeer ? [r.peer] : [])].map((run) => run?.core0Pct.toFixed(1) ?? "-").join(" / "),
      slash(r, (run) => run.load.sendLag_p99.toFixed(3)),
      slash(r, (run) => String(run.load.achievedRate)),
    ]);
  }
  const notes: string[] = [];
  for (const r of results) {
    if (r.peerSkipped) notes.push(`${r.scenario}/peer: skipped: ${r.peerSkipped}`);
    for (const run of runsOf(r)) {
      if (run.load.errors > 0) {
        notes.push(`${r.scenario}/${run.target} at ${r.rate}/s: ${run.load.errors} errors, e.g. ${run.load.errorSamples.map((s) => JSON.stringify(s)).join("; ")}`);
      }
      if (run.core0Pct > 85 || run.load.sendLag_p99 > 5 || run.load.achievedRate < 0.97 * r.rate) {
        notes.push(
          `${r.scenario}/${run.target} at ${r.rate}/s: RIG-LIMITED: CPU 0 (stand-in + load generator) at ${run.core0Pct.toFixed(0)}%, ` +
            `send lag p99 ${run.load.sendLag_p99.toFixed(3)} ms, achieved ${run.load.achievedRate}/s; ` +
            `latencies here measure the rig, not the gateway`,
        );
      }
    }
    for (const run of runsOf(r)) {
      const foreign = Math.max(run.foreignCpu0Pct, run.foreignCpu1Pct);
      if (foreign > 10 || run.stealPct > 5) {
        notes.push(
          `${r.scenario}/${run.target} at ${r.rate}/s: NOISY: other processes used ${run.foreignCpu0Pct.toFixed(0)}% of CPU 0 and ` +
            `${run.foreignCpu1Pct.toFixed(0)}% of CPU 1, steal ${run.stealPct.toFixed(0)}%; rerun on a quiet machine`,
        );
      }
    }
    for (const run of runsOf(r).slice(1)) {
      if (run.gatewayCpuPct > 90) {
        notes.push(`${r.scenario}/${run.target} at ${r.rate}/s: its core is saturated (${run.gatewayCpuPct.toFixed(0)}% of CPU 1): queueing shows in the percentiles`);
      }
    }
  }
  return [
    table(lat, 4),
    "",
    table(res, 2),
    ...(notes.length ? ["", ...[...new Set(notes)].map((n) => `! ${n}`)] : []),
  ].join("\n");
}

// ---------------------------------------------------------------- sweep

/** --sweep: which (scenario, target) pairs had errors, so are not run at higher rates. */
class StopList {
  #stopped = new Set<string>();
  /** Records run's errors; says so once. */
  note(scenario: Scenario, run: RunResult): void {
    if (run.load.errors === 0 || this.has(scenario, run.target)) return;
    this.#stopped.add(`${scenario}/${run.target}`);
    console.log(`  ${scenario} → ${run.target}: ${run.load.errors} errors at ${run.load.rate}/s; not run at higher rates`);
  }
  has(scenario: Scenario, target: Target): boolean {
    return this.#stopped.has(`${scenario}/${target}`) || this.#stopped.has(`${scenario}/direct`);
  }
}

/**
 * Whether a run meets the sweep's bar: no errors (its own, nor direct's at
 * that rate) and p99 (direct) or added p99 (gateway, peer) at most
 * SWEEP_P99_MS, on total latency.
 */
function meetsBar(r: ScenarioResult, target: Target): boolean {
  const run = runOf(r, target);
  if (!run || run.load.errors > 0 || r.direct.load.errors > 0 || run.load.ok === 0) return false;
  if (target === "direct") return run.load.p99 <= SWEEP_P99_MS;
  const added = addedOf(r, target)?.total;
  return added != null && added.p99 <= SWEEP_P99_MS;
}

/**
 * The sweep's table: per scenario and target, the highest rate meeting the
 * bar, then each rate's p50/p99 (direct) or added p50/p99 (gateway, peer)
 * and errors; "-" where the target was not run (stopped, or skipped).
 */
function sweepReport(results: ScenarioResult[], rates: number[], peer: boolean): string {
  const rows: string[][] = [["scenario", "target", "best rate", ...rates.map((rate) => `${rate}/s`)]];
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  const targets: Target[] = peer ? ["direct", "gateway", "peer"] : ["direct", "gateway"];
  for (const scenario of scenarios) {
    for (const target of targets) {
      const at = rates.map((rate) => results.find((r) => r.scenario === scenario && r.rate === rate));
      const passing = at.filter((r) => r !== undefined && meetsBar(r, target)).map((r) => r!.rate);
      const cells = at.map((r) => {
        const run = r && runOf(r, target);
        if (!r || !run) return "-";
        const errs = run.load.errors > 0 ? ` ${run.load.errors} err` : "";
        if (target === "direct") return `${f(run.load.p50)}/${f(run.load.p99)}${errs}`;
        const a = addedOf(r, target)?.total;
        return `${a ? `${signed(a.p50)}/${signed(a.p99)}` : "n/a"}${errs}`;
      });
      const skipped = target === "peer" && at.some((r) => r?.peerSkipped !== undefined);
      rows.push([scenario, target, passing.length ? String(Math.max(...passing)) : skipped ? "skipped" : "none", ...cells]);
    }
  }
  return [
    `sweep: highest rate with no errors and p99 <= ${SWEEP_P99_MS} ms (direct) or added p99 <= ${SWEEP_P99_MS} ms (gateway, peer), total latency;`,
    `cells: p50/p99 ms for direct, added p50/p99 ms for the others, then errors; - = not run (stopped or skipped)`,
    "",
    table(rows, 2),
  ].join("\n");
}

// ---------------------------------------------------------------- main

const BENCH_ADMIN_KEY = "bench-admin-key-0123456789abcdef";

/**
 * A virtual key whose every level has a budget and limits (all far above the
 * run's needs), so each request is checked and charged three times over.
 */
/**
 * Signs in to the web UI with the admin key and keeps the overview open,
 * pressing its Refresh button every 2 s. Chromium runs on CPU 0 (with the
 * load generator), so what it adds to the gateway is its admin traffic.
 */
async function openOverview(rig: Rig, base: string): Promise<{ refreshes(): number; close(): Promise<void> }> {
  const executable = "/usr/bin/chromium";
  if (!existsSync(executable)) throw new Error(`--ui-open needs Chromium at ${executable} (apt-get install chromium)`);
  const wrapper = path.join(RESULTS_DIR, "chromium-cpu0.sh");
  const pin = pinned(rig, 0, [executable]).map(shellQuote).join(" ");
  writeFileSync(wrapper, `#!/bin/sh\nexec ${pin} "$@"\n`, { mode: 0o755 });
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: wrapper, args: ["--no-sandbox"] });
  const page = await browser.newPage();
  await page.goto(`${base}/ui/`);
  await page.getByLabel("Admin key", { exact: true }).fill(BENCH_ADMIN_KEY);
  await page.getByRole("button", { name: "Sign in with admin key" }).click();
  await page.getByTestId("overview-totals").waitFor({ timeout: 10_000 });
  let refreshes = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      await sleep(2000);
      if (stopped) break;
      await page.getByRole("button", { name: "Refresh" }).click().catch(() => {});
      refreshes++;
    }
  })();
  return {
    refreshes: () => refreshes,
    async close() {
      stopped = true;
      await loop;
      await browser.close();
    },
  };
}

/**
 * The --peer pass: stops the gateway (only one of the two is ever on CPU 1),
 * starts the peer there, and runs each scenario's load through it, recording
 * the run and what it adds over the scenario's direct run into results.
 */
async function runPeer(
  rig: Rig,
  opts: Options,
  gateway: Child,
  results: ScenarioResult[],
  upstream: string,
  stamp: string,
  measure: (run: LoadRun, proxy: Proxy) => Promise<RunResult>,
): Promise<{ name: string; version: string; command: string; port: number; idleRssMb: number; log: string }> {
  await stopChild(gateway);
  const port = await freePort();
  const logFile = path.join(RESULTS_DIR, `${stamp}.peer.log`);
  const peer = await startPeer(rig, port, logFile);
  const pid = peer.child.proc.pid!;
  const idle = sampleTree(pid);
  console.log(`peer: ${PEER_NAME} ${PEER_VERSION} on :${port} (pids ${idle.pids.join(",")}, idle RSS ${mb(idle.rssKb)} MB); log ${path.relative(ROOT, logFile)}`);
  console.log(`peer command: ${peer.command}`);
  const stopped = new StopList();
  for (const r of results) {
    const skip = PEER_SKIPS[r.scenario];
    if (skip !== undefined) {
      if (r === results.find((x) => x.scenario === r.scenario)) console.log(`skipping ${r.scenario} → peer: ${skip}`);
      r.peerSkipped = skip;
      continue;
    }
    if (stopped.has(r.scenario, "peer")) continue;
    const headers = [...opts.headers, ...peerHeaders(upstream)];
    r.peer = await measure({ scenario: r.scenario, target: "peer", rate: r.rate, url: `http://127.0.0.1:${port}/v1`, headers }, { pid, child: peer.child });
    r.peerAdded = addedAll(r.scenario, r.direct.load, r.peer.load);
    stopped.note(r.scenario, r.peer);
  }
  await stopChild(peer.child);
  return { name: PEER_NAME, version: PEER_VERSION, command: peer.command, port, idleRssMb: mb(idle.rssKb), log: path.relative(ROOT, logFile) };
}

function redactHeader(h: string): string {
  const [name] = h.split(":", 1);
  return /^(authorization|api-key|x-api-key|proxy-authorization)$/i.test(name.trim()) ? `${name}: <redacted>` : h;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const rig = probeRig(opts.pin);
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  mkdirSync(RESULTS_DIR, { recursive: true });
  const logFile = path.join(RESULTS_DIR, `${stamp}.gateway.log`);

  if (opts.gatewayCmd === undefined && !existsSync(path.join(ROOT, "server", "main.ts"))) {
    throw new Error("server/main.ts does not exist yet; pass --gateway-cmd to benchmark something else");
  }

  const rates = opts.sweep ? `rates ${opts.sweep.join(",")}/s (sweep)` : `rate ${opts.rate}/s`;
  console.log(`Switchyard bench: ${rates}, ${opts.duration} s recorded after ${opts.warmup} s warm-up, ` +
    `stand-in delay ${opts.delay}, scenarios ${opts.scenarios.join(",")}`);
  console.log(`rig: ${rig.cpus} CPUs, ${rig.pinNote}`);
  if (rig.cpus > 2 && rig.pinned) console.log("note: more than 2 CPUs; only CPUs 0 and 1 are used");

  console.log("building Go programs into bench/.bin/ ...");
  buildGo();

  const standin = await startStandin(rig, opts);
  const upstream = `http://127.0.0.1:${standin.port}/v1`;
  let redisUrl: string | undefined;
  if (opts.governance === "redis") {
    const redisPort = await freePort();
    spawnLogged("redis", pinned(rig, 0, ["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]), { cwd: ROOT, env: process.env }, logFile);
    redisUrl = `redis://127.0.0.1:${redisPort}`;
    await sleep(300);
  }
  const gwPort = await freePort();
  const gateway = await startGateway(rig, opts, gwPort, upstream, logFile, redisUrl);
  if (opts.governance !== "none") {
    const secret = await createBenchKey(`http://127.0.0.1:${gwPort}`, BENCH_ADMIN_KEY);
    opts.headers = [`Authorization: Bearer ${secret}`, ...opts.headers.filter((h) => !/^authorization:/i.test(h))];
    console.log(`governance: ${opts.governance} store; virtual key under a team and a customer, budgets and rate limits at every level`);
  }
  if (opts.admin && opts.governance === "none") {
    opts.headers = [`Authorization: Bearer ${BENCH_ADMIN_KEY}`, ...opts.headers.filter((h) => !/^authorization:/i.test(h))];
  }
  const ui = opts.uiOpen ? await openOverview(rig, `http://127.0.0.1:${gwPort}`) : undefined;
  if (ui !== undefined) console.log("web UI: overview open in headless Chromium, refreshed every 2 s");
  const gwPid = gateway.child.proc.pid!;
  const idle = sampleTree(gwPid);
  console.log(`stand-in on :${standin.port}; gateway on :${gwPort} (pids ${idle.pids.join(",")}, idle RSS ${mb(idle.rssKb)} MB); log ${path.relative(ROOT, logFile)}`);
  console.log(`gateway command: ${gateway.command}`);

  const standinPid = standin.child.proc.pid!;
  const measure = async (run: LoadRun, proxy: Proxy): Promise<RunResult> => {
    process.stdout.write(`running ${run.scenario} → ${run.target} ...`);
    const r = await runLoad(rig, opts, run, standinPid, proxy);
    console.log(` p50 ${r.load.p50.toFixed(3)} ms, p99 ${r.load.p99.toFixed(3)} ms, errors ${r.load.errors}`);
    return r;
  };

  const results: ScenarioResult[] = [];
  const gwProxy: Proxy = { pid: gwPid, child: gateway.child };
  const bodies = rpcBodies();
  // --sweep: a target with errors at a rate is not run at higher ones (per
  // scenario). Without direct runs there is no baseline, so that stops all.
  const stopped = new StopList();
  for (const rate of opts.sweep ?? [opts.rate]) {
    for (const scenario of opts.scenarios) {
      if (stopped.has(scenario, "direct")) continue;
      const at = { scenario, rate, headers: opts.headers };
      const direct = await measure({ ...at, target: "direct", url: upstream }, gwProxy);
      stopped.note(scenario, direct);
      const r: ScenarioResult = { scenario, rate, direct };
      if (!stopped.has(scenario, "gateway")) {
        // RPCs are served at /<service>/<method> off the root, on the same port.
        const gwRun: LoadRun = RPC.has(scenario)
          ? { ...at, target: "gateway", url: `http://127.0.0.1:${gwPort}`, body: bodies[scenario as "grpc" | "connect"] }
          : { ...at, target: "gateway", url: `http://127.0.0.1:${gwPort}/v1` };
        r.gateway = await measure(gwRun, gwProxy);
        r.added = addedAll(scenario, direct.load, r.gateway.load);
        stopped.note(scenario, r.gateway);
      }
      results.push(r);
    }
  }

  if (ui !== undefined) {
    console.log(`web UI: ${ui.refreshes()} overview refreshes during the runs`);
    await ui.close();
  }
  const peer = opts.peer ? await runPeer(rig, opts, gateway.child, results, upstream, stamp, measure) : undefined;
  console.log("");
  console.log(report(results));
  if (opts.sweep !== undefined) console.log("\n" + sweepReport(results, opts.sweep, opts.peer));

  const file = path.join(RESULTS_DIR, `${stamp}.json`);
  const raw = {
    startedAt: startedAt.toISOString(),
    options: { ...opts, headers: opts.headers.map(redactHeader) },
    rig: { ...rig, node: process.version, go: spawnSync("go", ["version"], { encoding: "utf8" }).stdout?.trim() },
    gateway: { command: gateway.command, port: gwPort, idleRssMb: mb(idle.rssKb), log: path.relative(ROOT, logFile) },
    peer,
    standin: { port: standin.port },
    results,
  };
  writeFileSync(file, JSON.stringify(raw, null, 2) + "\n");
  console.log(`\nraw results: ${path.relative(ROOT, file)}`);
}

let stopping: Promise<never> | undefined;
function shutdown(code: number): Promise<never> {
  stopping ??= (async (): Promise<never> => {
    await stopAll();
    process.exit(code);
  })();
  return stopping;
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(sig, () => {
    if (!stopping) console.error(`\n${sig}: stopping child processes`);
    void shutdown(130);
  });
}
process.on("exit", killAllSync);

main().then(
  () => shutdown(0),
  (err: unknown) => {
    // After a signal, the failures of the children we just stopped are noise.
    if (!stopping) console.error(`\nbench failed: ${err instanceof Error ? err.message : String(err)}`);
    void shutdown(1);
  },
);
