// Child processes of the bench harnesses: tracking, stopping (whole process
// groups), the stand-in, the load generator, and waiting for a gateway.
// Shared by bench/run.ts and bench/chaos.ts.

import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BIN_DIR, pinnedArgv } from "./rig.ts";

/** A tracked child process; exited/exitInfo are filled in when it exits or fails to spawn. */
export interface Child {
  name: string;
  proc: ChildProcess;
  exited: boolean;
  exitInfo: string;
}

const children = new Set<Child>();

/** Starts tracking proc so that stopAll/killAllSync reach it. */
export function track(name: string, proc: ChildProcess): Child {
  const c: Child = { name, proc, exited: false, exitInfo: "" };
  children.add(c);
  proc.on("exit", (code, signal) => {
    c.exited = true;
    c.exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
  });
  proc.on("error", (err) => {
    c.exited = true;
    c.exitInfo = err.message;
  });
  return c;
}

/** Stops tracking c without signalling it (it has finished on its own). */
export function untrack(c: Child): void {
  children.delete(c);
}

/**
 * Sends sig to c's process group. Every child is spawned detached, i.e. as
 * the leader of its own process group, so a signal to -pid also reaches
 * anything it started (a shell's children, a gateway's workers).
 */
export function signalGroup(c: Child, sig: NodeJS.Signals): void {
  if (c.exited || c.proc.pid === undefined) return;
  try {
    process.kill(-c.proc.pid, sig);
  } catch {
    try {
      c.proc.kill(sig);
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM to c's group, SIGKILL after graceMs if it is still there; then untracks it. */
export async function stopChild(c: Child, graceMs = 3000): Promise<void> {
  if (!c.exited) {
    signalGroup(c, "SIGTERM");
    const deadline = Date.now() + graceMs;
    while (!c.exited && Date.now() < deadline) await sleep(25);
    if (!c.exited) signalGroup(c, "SIGKILL");
  }
  children.delete(c);
}

/** Stops every tracked child (in parallel). */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

/** SIGKILL to every tracked child: the last resort when the process is exiting and cannot wait. */
export function killAllSync(): void {
  for (const c of children) signalGroup(c, "SIGKILL");
  children.clear();
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts bench/.bin/standin (or bin) on 127.0.0.1 with a random port (on CPU 0
 * when pin), passing extra flags, and resolves once it prints `LISTENING <port>`.
 */
export async function startStandin(name: string, pin: boolean, extra: string[], bin = path.join(BIN_DIR, "standin")): Promise<{ child: Child; port: number }> {
  const argv = pinnedArgv(pin, 0, [bin, "-addr", "127.0.0.1:0", ...extra]);
  const proc = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", "pipe", "inherit"] });
  const child = track(name, proc);
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not print LISTENING within 10 s`)), 10_000);
    proc.stdout!.setEncoding("utf8");
    proc.stdout!.on("data", (d: string) => {
      buf += d;
      const m = /^LISTENING (\d+)$/m.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on("exit", () => {
      clearTimeout(timer);
      reject(new Error(`${name} exited before listening (${child.exitInfo})`));
    });
  });
  proc.stdout!.resume();
  return { child, port };
}

/** Spawns argv detached with stdout and stderr appended to logFile, and tracks it as name. */
export function spawnLogged(
  name: string,
  argv: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
  logFile: string,
): Child {
  const fd = openSync(logFile, "a");
  const proc = spawn(argv[0], argv.slice(1), { ...options, detached: true, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  return track(name, proc);
}

/**
 * Polls url every 100 ms until it answers 200 ("up"), child exits
 * ("exited") or timeoutMs pass ("timeout"); last is the last failure seen.
 */
export async function waitForHealth(
  child: Child,
  url: string,
  timeoutMs = 15_000,
): Promise<{ status: "up" | "exited" | "timeout"; last: string }> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (child.exited) return { status: "exited", last };
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return { status: "up", last };
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).cause ? String((err as Error).cause) : String(err);
    }
    await sleep(100);
  }
  return { status: "timeout", last };
}

/**
 * Runs argv detached to completion, collecting stdout and stderr; calls tick
 * right away and then every ~100 ms until it closes. The child is untracked
 * when it returns; check child.exitInfo for how it ended.
 */
export async function runCollecting(
  name: string,
  argv: string[],
  tick: () => void | Promise<void>,
): Promise<{ child: Child; out: string; err: string }> {
  const proc = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const child = track(name, proc);
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  const done = new Promise<void>((resolve) => proc.on("close", () => resolve()));
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    await tick();
    await Promise.race([sleep(100), done]);
  }
  children.delete(child);
  return { child, out, err };
}
