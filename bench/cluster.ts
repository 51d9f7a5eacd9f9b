// Scale-out bench: one gateway against three sharing Redis (and PostgreSQL
// for the request log), at the same rates, each against direct traffic to
// the stand-in in the same run. Prints what Redis adds to one instance's
// added latency and the highest rate each layout served without errors.
//
//   node bench/cluster.ts [--rates 500,1000,2000] [--duration 10] [--warmup 2] [--no-pin]
//
// Every gateway runs on CPU 1 and everything else on CPU 0 (a 2-core
// machine): three instances share one core, so this measures what scale-out
// costs per request, not the capacity more machines would add.

import { writeFileSync, mkdirSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { startPostgres } from "../test/support/postgres.ts";
import { createBenchKey } from "./lib/bench-key.ts";
import { type LoadgenResult, loadgenArgv } from "./lib/loadgen.ts";
import { freePort, killAllSync, runCollecting, spawnLogged, startStandin, stopAll, stopChild, waitForHealth, type Child } from "./lib/processes.ts";
import { BENCH_DIR, buildGo, pinnedArgv, pinSelfToCpu0, probeTaskset, ROOT } from "./lib/rig.ts";

const ADMIN_KEY = "sy-bench-cluster-admin-key-0123456789";
const RESULTS_DIR = path.join(BENCH_DIR, "results");

interface Layout {
  name: string;
  instances: number;
  governance: "embedded" | "redis";
  postgres: boolean;
}

const LAYOUTS: readonly Layout[] = [
  { name: "1 instance, embedded", instances: 1, governance: "embedded", postgres: false },
  { name: "1 instance, Redis", instances: 1, governance: "redis", postgres: false },
  { name: "1 instance, Redis + Postgres", instances: 1, governance: "redis", postgres: true },
  { name: "3 instances, Redis + Postgres", instances: 3, governance: "redis", postgres: true },
];

const { values } = parseArgs({
  options: {
    rates: { type: "string", default: "500,1000,2000" },
    duration: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    "no-pin": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help) {
  console.log("usage: node bench/cluster.ts [--rates 500,1000,2000] [--duration 10] [--warmup 2] [--no-pin]");
  process.exit(0);
}
const rates = values.rates.split(",").map(Number);
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const pin = !values["no-pin"] && probeTaskset() === "ok";

async function load(url: string, rate: number, key: string): Promise<LoadgenResult> {
  const argv = loadgenArgv(pin, { url, mode: "chat", rate, durationS, warmupS, timeout: "10s", headers: [`Authorization: Bearer ${key}`] });
  const { child, out, err } = await runCollecting("loadgen", argv, () => {});
  if (child.exitInfo !== "exit code 0") throw new Error(`load generator failed (${child.exitInfo}): ${err.trim() || out.trim()}`);
  return JSON.parse(out) as LoadgenResult;
}

async function startLayout(layout: Layout, upstream: string, redisUrl: string, databaseUrl: string | undefined, logFile: string): Promise<{ urls: string[]; children: Child[] }> {
  const children: Child[] = [];
  const urls: string[] = [];
  const dir = path.join(RESULTS_DIR, `cluster-${process.pid}-${layout.name.replace(/\W+/g, "-")}`);
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < layout.instances; i++) {
    const port = await freePort();
    const config = {
      server: { host: "127.0.0.1", port },
      dataDir: path.join(dir, `data-${i}`),
      admin: { key: ADMIN_KEY },
      providers: [{ id: "openai", type: "openai", baseUrl: upstream, keys: ["sk-bench"] }],
      governance: { store: layout.governance, redis: { url: redisUrl, prefix: `b${process.pid}${layout.name.length}` } },
      ...(layout.postgres && databaseUrl !== undefined ? { database: { url: databaseUrl } } : {}),
    };
    const file = path.join(dir, `config-${i}.json`);
    writeFileSync(file, JSON.stringify(config));
    const child = spawnLogged(`gateway ${i}`, pinnedArgv(pin, 1, [process.execPath, "server/main.ts", "--config", file]), { cwd: ROOT, env: { ...process.env, LOG_LEVEL: "warn" } }, logFile);
    children.push(child);
    // One at a time: the first creates the database schema the others find.
    const up = await waitForHealth(child, `http://127.0.0.1:${port}/healthz`, 20_000);
    if (up.status !== "up") throw new Error(`${layout.name}: gateway ${i} did not start (${up.status} ${up.last}); see ${logFile}`);
    urls.push(`http://127.0.0.1:${port}`);
  }
  return { urls, children };
}

const fmt = (n: number): string => (n >= 0 ? "+" : "") + n.toFixed(3);

async function main(): Promise<void> {
  if (pin) pinSelfToCpu0();
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const logFile = path.join(RESULTS_DIR, `${stamp}.cluster.log`);
  console.log(`Switchyard cluster bench: rates ${rates.join(", ")}/s, ${durationS} s recorded after ${warmupS} s warm-up, chat (~1 KB), ${pin ? "gateways on CPU 1, the rest on CPU 0" : "not pinned"}`);
  buildGo();
  const standin = await startStandin("stand-in", pin, ["-delay", "0ms"]);
  const upstream = `http://127.0.0.1:${standin.port}/v1`;
  const redisPort = await freePort();
  spawnLogged("redis", pinnedArgv(pin, 0, ["redis-server", "--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]), { cwd: ROOT, env: process.env }, logFile);
  const redisUrl = `redis://127.0.0.1:${redisPort}`;
  const postgres = await startPostgres();
  await sleep(300);

  const direct = new Map<number, LoadgenResult>();
  for (const rate of rates) {
    process.stdout.write(`direct @ ${rate}/s ...`);
    const r = await load(upstream, rate, "sk-bench");
    direct.set(rate, r);
    console.log(` p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, errors ${r.errors}`);
  }

  const rows: { layout: string; rate: number; r: LoadgenResult }[] = [];
  try {
    for (const layout of LAYOUTS) {
      const database = layout.postgres ? await postgres.newDatabase() : undefined;
      const { urls, children } = await startLayout(layout, upstream, redisUrl, database, logFile);
      const key = await createBenchKey(urls[0]!, ADMIN_KEY);
      for (const rate of rates) {
        process.stdout.write(`${layout.name} @ ${rate}/s ...`);
        const r = await load(urls.map((u) => `${u}/v1`).join(","), rate, key);
        rows.push({ layout: layout.name, rate, r });
        console.log(` p50 ${r.p50.toFixed(3)} ms, p99 ${r.p99.toFixed(3)} ms, errors ${r.errors}`);
      }
      await Promise.all(children.map((c) => stopChild(c, 10_000)));
    }
  } finally {
    await postgres.stop();
  }

  const header = "| layout | rate/s | p50 ms | p99 ms | added p50 | added p99 | errors | achieved/s |";
  const lines = [header, "|---|---:|---:|---:|---:|---:|---:|---:|"];
  for (const rate of rates) {
    const d = direct.get(rate)!;
    lines.push(`| direct | ${rate} | ${d.p50.toFixed(3)} | ${d.p99.toFixed(3)} | | | ${d.errors} | ${d.achievedRate.toFixed(0)} |`);
    for (const { layout, r } of rows.filter((x) => x.rate === rate)) {
      lines.push(`| ${layout} | ${rate} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${fmt(r.p50 - d.p50)} | ${fmt(r.p99 - d.p99)} | ${r.errors} | ${r.achievedRate.toFixed(0)} |`);
    }
  }
  console.log("\n" + lines.join("\n"));
  console.log("\nhighest rate served with no errors and added p99 ≤ 5 ms:");
  for (const layout of LAYOUTS) {
    const ok = rows.filter((x) => x.layout === layout.name && x.r.errors === 0 && x.r.p99 - direct.get(x.rate)!.p99 <= 5).map((x) => x.rate);
    console.log(`  ${layout.name}: ${ok.length ? `${Math.max(...ok)}/s` : "none of the rates tried"}`);
  }
  const redisAdds = rates.map((rate) => {
    const one = (name: string) => rows.find((x) => x.layout === name && x.rate === rate)!.r.p50;
    return `${rate}/s ${fmt(one("1 instance, Redis") - one("1 instance, embedded"))} ms`;
  });
  console.log(`Redis adds to added p50 (1 instance, Redis − embedded): ${redisAdds.join(", ")}`);
  const file = path.join(RESULTS_DIR, `${stamp}.cluster.json`);
  writeFileSync(file, JSON.stringify({ rates, durationS, warmupS, pin, direct: Object.fromEntries(direct), rows }, null, 2) + "\n");
  console.log(`raw results: ${path.relative(ROOT, file)}`);
}

process.on("exit", killAllSync);
main().then(
  async () => {
    await stopAll();
    process.exit(0);
  },
  async (err: unknown) => {
    console.error(`\ncluster bench failed: ${err instanceof Error ? err.message : String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
