// Where the bench lives, how its Go programs are built, and taskset pinning:
// shared by bench/run.ts and bench/chaos.ts.

import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The bench/ directory. */
export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The repository root (the gateway is started from here). */
export const ROOT = path.resolve(BENCH_DIR, "..");
/** Where the Go programs (standin, loadgen) are built. */
export const BIN_DIR = path.join(BENCH_DIR, ".bin");

/** Builds bench/standin and bench/loadgen into bench/.bin/ (CGO off); throws if Go is missing or a build fails. */
export function buildGo(): void {
  mkdirSync(BIN_DIR, { recursive: true });
  for (const prog of ["standin", "loadgen"]) {
    const r = spawnSync("go", ["build", "-o", path.join(BIN_DIR, prog), `./${prog}`], {
      cwd: BENCH_DIR,
      env: { ...process.env, CGO_ENABLED: "0" },
      stdio: ["ignore", "inherit", "inherit"],
    });
    if (r.error) throw new Error(`go build ${prog}: ${r.error.message} (is Go installed?)`);
    if (r.status !== 0) throw new Error(`go build ${prog} failed with exit code ${r.status}`);
  }
}

/**
 * Whether this process can pin work to CPUs 0 and 1 with taskset:
 * "ok", "missing" (taskset absent or failing on CPU 0) or "no-cpu1".
 */
export function probeTaskset(): "ok" | "missing" | "no-cpu1" {
  const has = spawnSync("taskset", ["-c", "0", "true"]);
  if (has.error || has.status !== 0) return "missing";
  const core1 = spawnSync("taskset", ["-c", "1", "true"]);
  return core1.status === 0 ? "ok" : "no-cpu1";
}

/** Moves every thread of this process onto CPU 0, off the gateway's core. */
export function pinSelfToCpu0(): void {
  spawnSync("taskset", ["-a", "-cp", "0", String(process.pid)], { stdio: "ignore" });
}

/** argv prefixed with `taskset -c <cpu>` when pin is true, else argv unchanged. */
export function pinnedArgv(pin: boolean, cpu: number, argv: string[]): string[] {
  return pin ? ["taskset", "-c", String(cpu), ...argv] : argv;
}
