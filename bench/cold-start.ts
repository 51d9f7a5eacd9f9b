// Cold start and idle memory of the gateway: from source, as installed from
// its npm tarball, and from its container image.
//
//   node bench/cold-start.ts [--runs 7] [--idle-ms 2000[,12000...]] [--variants source,installed,...]
//                            [--installed DIR] [--image NAME] [--why]
//
// For each variant it spawns the gateway N times on a fresh free port and
// records the time from spawn() to the first `GET /readyz` = 200 (polled
// every 5 ms) and the process's CPU time (user + system, all threads) at that
// moment, then its resident set after `--idle-ms` of idling (VmRSS, and the
// anonymous part RssAnon: VmRSS less the pages mapped from files, mostly the
// node binary's own code and ICU data, which are shared and reclaimable),
// then stops it (several --idle-ms points: the resident set at each, measured
// from the moment it was ready). One warm-up start per variant is not counted (it creates the
// data directory, fills the page cache, and writes the code cache). Variants:
//   source              node server/main.ts (type stripping, the checkout)
//   installed, no cache <DIR>/node_modules/.bin/switchyard start with
//                       SWITCHYARD_CODE_CACHE=off: the bundle compiled from scratch
//                       (what the very first start after installing costs)
//   installed           the same with its V8 code cache (scripts/launcher.ts), as
//                       every later start runs
//   image (chroot)      --image NAME: the image's entrypoint and environment, run
//                       as its user by chroot(8) in the image's root file system
//                       (`buildah mount`): the image's node, bundle and code cache
//                       without a container runtime's own set-up
//   image (buildah run) the same through `buildah run --isolation chroot`, which
//                       adds buildah's set-up (mounts, /etc files) to every start
// Without --installed it runs `npm pack` and `npm install`s the tarball into a
// temporary folder first (the npm registry must be reachable). --image needs
// root and buildah, and an image built by deploy/image/build.sh.
// --variants keeps the variants whose name starts with one of the given words
// (source, installed, image; "installed," alone also keeps "installed, no code cache").
// --why adds what start-up goes on: bare Node, and the bundle loaded without
// starting the server (`switchyard --help`), with and without the code cache.
//
// Targets (issue 12): cold start <= 300 ms, idle RSS <= 60 MB.

import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
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
    image: { type: "string" },
    variants: { type: "string" },
    why: { type: "boolean", default: false },
  },
});
const RUNS = Number(values.runs);
const IDLE_MS = values["idle-ms"].split(",").map(Number);
const ONLY = values.variants?.split(",").map((w) => w.trim()).filter((w) => w !== "");
const PATH = `${path.dirname(process.execPath)}:${process.env["PATH"] ?? ""}`;
const BUILDAH = ["--storage-driver", "vfs"];
const CLK_TCK = 100;

interface Variant {
  name: string;
  cwd: string;
  /** Command and arguments for a start on `port`. */
  argv: (port: number) => [string, string[]];
  env?: NodeJS.ProcessEnv;
  /** The gateway's own pid when it is not the spawned process (buildah run). */
  pid?: (port: number, spawned: number) => number | undefined;
}

interface Sample {
  readyMs: number;
  cpuMs: number;
  /** At each IDLE_MS point. */
  rssMb: number[];
  anonMb: number[];
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

function memory(pid: number): { rssMb: number; anonMb: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rssMb: kb("VmRSS") / 1024, anonMb: kb("RssAnon") / 1024 };
}

/** User + system CPU time of the whole process (all its threads), in ms. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

async function once(v: Variant, env: NodeJS.ProcessEnv): Promise<Sample> {
  const port = await freePort();
  const [cmd, args] = v.argv(port);
  const started = performance.now();
  const child = spawn(cmd, args, { cwd: v.cwd, env: { ...env, ...v.env, PORT: String(port) }, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  let pid: number | undefined = child.pid!;
  try {
    let readyMs = NaN;
    let cpu = NaN;
    while (performance.now() - started < 20_000) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status === 200, () => false);
      if (ok) {
        readyMs = performance.now() - started;
        pid = v.pid ? v.pid(port, child.pid!) : child.pid!;
        cpu = pid === undefined ? NaN : cpuMs(pid);
        break;
      }
      if (child.exitCode !== null) throw new Error(`${v.name} exited with ${child.exitCode}: ${err}`);
      await sleep(5);
    }
    if (Number.isNaN(readyMs)) throw new Error(`${v.name}: no /readyz 200 within 20 s: ${err}`);
    const rssMb: number[] = [];
    const anonMb: number[] = [];
    const readyAt = performance.now();
    for (const ms of IDLE_MS) {
      await sleep(Math.max(0, ms - (performance.now() - readyAt)));
      const m = memory(pid!);
      rssMb.push(m.rssMb);
      anonMb.push(m.anonMb);
    }
    return { readyMs, cpuMs: cpu, rssMb, anonMb };
  } finally {
    // The gateway itself gets the signal (buildah run would forward it, but only after its own set-up).
    if (pid !== undefined && pid !== child.pid) process.kill(pid, "SIGTERM");
    else child.kill("SIGTERM");
    await exited;
  }
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/** Wall milliseconds of a short command (median of 5, after one warm-up). */
function commandMs(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const xs: number[] = [];
  for (let i = 0; i < 6; i++) {
    const t = performance.now();
    execFileSync(cmd, args, { env, stdio: "ignore" });
    if (i > 0) xs.push(performance.now() - t);
  }
  return quantile(xs, 0.5);
}

/** The image's root file system (buildah mount of a new container), its config, and a clean-up. */
function mountImage(name: string): { rootfs: string; ctr: string; env: Record<string, string>; user: string; argv: string[]; done: () => void } {
  const buildah = (...args: string[]): string => execFileSync("buildah", [...BUILDAH, ...args], { encoding: "utf8" }).trim();
  const config = (JSON.parse(buildah("inspect", "--type", "image", name)) as { Docker: { config: { Env: string[]; User: string; Entrypoint: string[]; Cmd: string[] } } }).Docker.config;
  const ctr = buildah("from", "--pull=never", "--quiet", name);
  const rootfs = buildah("mount", ctr);
  const env = Object.fromEntries(config.Env.map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]));
  return { rootfs, ctr, env, user: config.User, argv: [...config.Entrypoint, ...config.Cmd], done: () => void buildah("rm", ctr) };
}

/** The pid of the process running `argv` with PORT=port in its environment (the gateway under buildah run). */
function pidByPort(argv: string[], port: number): number | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (cmd[0] !== argv[0] || cmd[1] !== argv[1]) continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").includes(`PORT=${port}`)) return Number(d);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
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
  const codeCache = path.join(data, "code-cache");
  // The host's stand-in on loopback; the image variants share this machine's network.
  const env = { PATH, HOME: process.env["HOME"], OPENAI_BASE_URL: standin.url, OPENAI_API_KEY: "sk-test", LOG_LEVEL: "warn" };
  const host = (p: number): string[] => ["start", "--port", String(p), "--host", "127.0.0.1"];
  const variants: Variant[] = [
    { name: "source (node server/main.ts)", cwd: ROOT, argv: (p) => [process.execPath, ["server/main.ts", ...host(p).slice(1)]] },
    { name: "installed, no code cache", cwd: installed, argv: (p) => [bin, host(p)], env: { SWITCHYARD_CODE_CACHE: "off" } },
    { name: "installed (switchyard start)", cwd: installed, argv: (p) => [bin, host(p)], env: { SWITCHYARD_CODE_CACHE: codeCache } },
  ];
  const image = values.image === undefined ? undefined : mountImage(values.image);
  if (image !== undefined) {
    // HOST=0.0.0.0 from the image: the gateway then wants a key.
    const imageEnv = { ...image.env, OPENAI_BASE_URL: standin.url, OPENAI_API_KEY: "sk-test", LOG_LEVEL: "warn", SWITCHYARD_API_KEYS: "sk-cold-start-0123456789" };
    variants.push({ name: "image (chroot)", cwd: "/", argv: () => ["chroot", [`--userspec=${image.user}`, image.rootfs, ...image.argv]], env: imageEnv });
    const envArgs = Object.entries(imageEnv).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    variants.push({
      name: "image (buildah run)",
      cwd: "/",
      argv: (p) => ["buildah", [...BUILDAH, "run", "--isolation", "chroot", ...envArgs, "--env", `PORT=${p}`, image.ctr, "--", ...image.argv]],
      env: imageEnv,
      pid: (p) => pidByPort(image.argv, p),
    });
  }
  const rows: string[] = [];
  try {
    for (const v of variants) {
      if (ONLY !== undefined && !ONLY.some((w) => v.name.startsWith(w))) continue;
      const samples: Sample[] = [];
      const dir = path.join(data, v.name.split(" ")[0]!);
      await once(v, { ...env, SWITCHYARD_DATA_DIR: dir }); // warm-up (not counted)
      for (let i = 0; i < RUNS; i++) samples.push(await once(v, { ...env, SWITCHYARD_DATA_DIR: dir }));
      const col = (k: "readyMs" | "cpuMs"): number[] => samples.map((s) => s[k]);
      const mem = IDLE_MS.map((_, i) => `${quantile(samples.map((s) => s.rssMb[i]!), 0.5).toFixed(1)} | ${quantile(samples.map((s) => s.anonMb[i]!), 0.5).toFixed(1)}`).join(" | ");
      rows.push(`| ${v.name} | ${RUNS} | ${quantile(col("readyMs"), 0.5).toFixed(0)} | ${Math.min(...col("readyMs")).toFixed(0)} | ${Math.max(...col("readyMs")).toFixed(0)} | ${quantile(col("cpuMs"), 0.5).toFixed(0)} | ${mem} |`);
    }
  } finally {
    await standin.close();
    image?.done();
    rmSync(data, { recursive: true, force: true });
  }
  process.stdout.write(`\nNode ${process.version}; spawn -> GET /readyz 200; RSS after ${IDLE_MS.join(", ")} ms idle (targets: <= 300 ms, <= 60 MB); load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}\n\n`);
  const memHead = IDLE_MS.map((ms) => `RSS p50 MB at ${ms / 1000} s | RssAnon p50 MB at ${ms / 1000} s`).join(" | ");
  process.stdout.write(`| variant | runs | ready p50 ms | ready min ms | ready max ms | CPU at ready p50 ms | ${memHead} |\n|${"---|".repeat(6 + 2 * IDLE_MS.length)}\n`);
  process.stdout.write(rows.join("\n") + "\n");

  if (values.why) {
    const cache = mkdtempSync(path.join(tmpdir(), "sy-cold-why-"));
    try {
      const bare = commandMs(process.execPath, ["-e", "0"], env);
      const noCache = commandMs(bin, ["--help"], { ...env, SWITCHYARD_CODE_CACHE: "off" });
      // `--help` exits before the launcher's timer would write the cache: write it at exit.
      execFileSync(bin, ["--help"], { env: { ...env, SWITCHYARD_CODE_CACHE: cache, SWITCHYARD_CODE_CACHE_WRITE: "exit" }, stdio: "ignore" });
      const withCache = commandMs(bin, ["--help"], { ...env, SWITCHYARD_CODE_CACHE: cache });
      process.stdout.write("\nWhere start-up goes (wall ms, median of 5):\n\n| step | ms |\n|---|---|\n");
      process.stdout.write(`| node -e 0 (bare Node) | ${bare.toFixed(0)} |\n| switchyard --help, no code cache (read + compile + run the bundle's top level) | ${noCache.toFixed(0)} |\n| switchyard --help, code cache of --help | ${withCache.toFixed(0)} |\n`);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }
}

await main();
