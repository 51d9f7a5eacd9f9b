// Cold start and idle memory of the gateway, from source and as installed
// from its npm tarball.
//
//   node bench/cold-start.ts [--runs 7] [--idle-ms 2000] [--installed DIR] [--why]
//
// For each variant it spawns the gateway N times on a fixed free port and
// records the time from spawn() to the first `GET /readyz` = 200 (polled
// every 5 ms), then the process's resident set (VmRSS) after `--idle-ms` of
// idling, then stops it. Variants:
//   source     node server/main.ts               (type stripping, the checkout)
//   installed  <DIR>/node_modules/.bin/switchyard start   (compiled JS; the
//              bin goes through `#!/usr/bin/env node`, as npx would)
// Without --installed it runs `npm pack` and `npm install`s the tarball into
// a temporary folder first (the registry must be reachable).
// --why also times `import()` of each runtime dependency alone, in a fresh
// Node, to show what start-up time goes on.
//
// Targets (STACK/README): cold start <= 300 ms, idle RSS <= 60 MB.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { startOpenAIStandin } from "../test/standins/openai.ts";
import { freePort } from "./lib/processes.ts";
import { ROOT } from "./lib/rig.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "7" },
    "idle-ms": { type: "string", default: "2000" },
    installed: { type: "string" },
    why: { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const IDLE_MS = Number(values["idle-ms"]);
const PATH = `${path.dirname(process.execPath)}:${process.env["PATH"] ?? ""}`;

interface Variant {
  name: string;
  cwd: string;
  argv: (port: number) => [string, string[]];
}

interface Sample {
  readyMs: number;
  rssMb: number;
}

/** npm pack + npm install into a fresh folder; returns the project folder (its parent holds the tarball). */
function installFromTarball(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "sy-cold-"));
  const env = { ...process.env, PATH };
  process.stderr.write(`packing and installing into ${dir} ...\n`);
  execFileSync("npm", ["pack", "--pack-destination", dir], { cwd: ROOT, env, stdio: "pipe" });
  const tgz = readdirSync(dir).find((f) => f.endsWith(".tgz"))!;
  const project = path.join(dir, "project");
  mkdirSync(project);
  writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "cold-start", private: true }));
  execFileSync("npm", ["install", path.join(dir, tgz), "--no-audit", "--no-fund"], { cwd: project, env, stdio: "pipe" });
  return project;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

async function once(v: Variant, env: NodeJS.ProcessEnv): Promise<Sample> {
  const port = await freePort();
  const [cmd, args] = v.argv(port);
  const started = performance.now();
  const child = spawn(cmd, args, { cwd: v.cwd, env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    let readyMs = NaN;
    while (performance.now() - started < 20_000) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) {
        readyMs = performance.now() - started;
        break;
      }
      if (child.exitCode !== null) throw new Error(`${v.name} exited with ${child.exitCode}: ${err}`);
      await sleep(5);
    }
    if (Number.isNaN(readyMs)) throw new Error(`${v.name}: no /readyz 200 within 20 s: ${err}`);
    await sleep(IDLE_MS);
    return { readyMs, rssMb: rssMb(child.pid!) };
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Milliseconds to import `spec` alone in a fresh Node, started from `cwd` (median of 5). */
function importMs(spec: string, cwd: string): number {
  const code = `const t=performance.now();await import(${JSON.stringify(spec)});process.stdout.write(String(performance.now()-t))`;
  const xs = [0, 1, 2, 3, 4].map(() => Number(execFileSync(process.execPath, ["--input-type=module", "-e", code], { cwd, encoding: "utf8" })));
  return quantile(xs, 0.5);
}

/**
 * Preloaded into one gateway start: a synchronous module hook (ESM and
 * require) that counts the files and source bytes loaded per package, and
 * prints them when the process exits (main thread only: the request-log
 * worker gets the preload too).
 */
const CENSUS = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from "node:module";
import { isMainThread } from "node:worker_threads";
const by = new Map();
if (isMainThread) registerHooks({ load(url, context, next) {
  const r = next(url, context);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(url);
  const key = url.startsWith("node:") ? "node: builtins" : m ? m[1] : "(outside node_modules)";
  const e = by.get(key) ?? { files: 0, bytes: 0 };
  e.files++; e.bytes += r.source == null ? 0 : r.source.length;
  by.set(key, e);
  return r;
} });
if (isMainThread) process.on("exit", () => process.stderr.write("CENSUS " + JSON.stringify([...by]) + "\\n"));
`)}`;

/** What one start of the installed gateway loads, per package: [package, files, bytes], most bytes first. */
async function census(installed: string, env: NodeJS.ProcessEnv): Promise<[string, number, number][]> {
  const cli = path.join(installed, "node_modules", "switchyard", "dist", "server", "cli.js");
  const port = await freePort();
  const child = spawn(process.execPath, ["--import", CENSUS, cli, "start", "--port", String(port), "--host", "127.0.0.1"], { cwd: installed, env, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  for (let i = 0; i < 400; i++) {
    if (await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false)) break;
    await sleep(25);
  }
  child.kill("SIGTERM");
  await exited;
  const line = err.split("\n").find((l) => l.startsWith("CENSUS "));
  if (line === undefined) throw new Error(`no census from the gateway: ${err}`);
  const entries = JSON.parse(line.slice(7)) as [string, { files: number; bytes: number }][];
  return entries.map(([k, e]): [string, number, number] => [k, e.files, e.bytes]).sort((a, b) => b[2] - a[2]);
}

async function why(installed: string, env: NodeJS.ProcessEnv): Promise<void> {
  const pkg = path.join(installed, "node_modules", "switchyard");
  const data = mkdtempSync(path.join(tmpdir(), "sy-cold-census-"));
  const loaded = await census(installed, { ...env, SWITCHYARD_DATA_DIR: data }).finally(() => rmSync(data, { recursive: true, force: true }));
  const files = loaded.reduce((n, r) => n + r[1], 0);
  const bytes = loaded.reduce((n, r) => n + r[2], 0);
  process.stdout.write(`\nLoaded by one start of the installed gateway: ${files} modules, ${(bytes / 1e6).toFixed(1)} MB of source.\n`);
  process.stdout.write("import() alone = that package imported by itself in a fresh Node (median of 5; includes its own dependencies).\n\n");
  process.stdout.write("| package | files | source KB | import() alone ms |\n|---|---|---|---|\n");
  const baseline = importMs("node:http", pkg);
  for (const [name, n, b] of loaded) {
    let ms = "";
    try {
      if (name !== "switchyard" && !name.includes(" ")) ms = importMs(name, pkg).toFixed(0);
    } catch {
      ms = "(not importable alone)";
    }
    process.stdout.write(`| ${name} | ${n} | ${(b / 1024).toFixed(0)} | ${ms} |\n`);
  }
  process.stdout.write(`| (baseline: node:http alone) | | | ${baseline.toFixed(0)} |\n`);
  process.stdout.write(`| (whole graph: import dist/server/app.js) | | | ${importMs("./dist/server/app.js", pkg).toFixed(0)} |\n`);
}

async function main(): Promise<void> {
  const installed = values.installed ?? installFromTarball();
  try {
    await measure(installed);
  } finally {
    // A folder this run made is removed; one passed with --installed is left alone.
    if (values.installed === undefined) rmSync(path.dirname(installed), { recursive: true, force: true });
  }
}

async function measure(installed: string): Promise<void> {
  const bin = path.join(installed, "node_modules", ".bin", "switchyard");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: pass --installed with a folder where the tarball is installed`);
  const standin = await startOpenAIStandin();
  const data = mkdtempSync(path.join(tmpdir(), "sy-cold-data-"));
  const env = { PATH, HOME: process.env["HOME"], OPENAI_BASE_URL: standin.url, OPENAI_API_KEY: "sk-test", LOG_LEVEL: "warn" };
  const variants: Variant[] = [
    { name: "source (node server/main.ts)", cwd: ROOT, argv: (p) => [process.execPath, ["server/main.ts", "--port", String(p), "--host", "127.0.0.1"]] },
    { name: "installed (switchyard start)", cwd: installed, argv: (p) => [bin, ["start", "--port", String(p), "--host", "127.0.0.1"]] },
  ];
  const rows: string[] = [];
  try {
    for (const v of variants) {
      const samples: Sample[] = [];
      const dir = path.join(data, v.name.split(" ")[0]!);
      await once(v, { ...env, SWITCHYARD_DATA_DIR: dir }); // warm-up: creates the data directory, fills the page cache
      for (let i = 0; i < RUNS; i++) samples.push(await once(v, { ...env, SWITCHYARD_DATA_DIR: dir }));
      const ready = samples.map((s) => s.readyMs);
      const rss = samples.map((s) => s.rssMb);
      rows.push(`| ${v.name} | ${RUNS} | ${quantile(ready, 0.5).toFixed(0)} | ${Math.max(...ready).toFixed(0)} | ${quantile(rss, 0.5).toFixed(1)} | ${Math.max(...rss).toFixed(1)} |`);
    }
  } finally {
    await standin.close();
    rmSync(data, { recursive: true, force: true });
  }
  process.stdout.write(`\nNode ${process.version}; spawn -> GET /readyz 200; RSS after ${IDLE_MS} ms idle (targets: <= 300 ms, <= 60 MB)\n\n`);
  process.stdout.write("| variant | runs | ready p50 ms | ready max ms | RSS p50 MB | RSS max MB |\n|---|---|---|---|---|---|\n");
  process.stdout.write(rows.join("\n") + "\n");

  if (values.why) await why(installed, env);
}

await main();
