// A redis-server for the soak (bench/soak.ts) that keeps its data across a
// restart: append-only file in a directory of the caller's, fsynced on every
// write, so stopping and starting it again on the same port loses nothing.
// It can also be paused (SIGSTOP: connections stay open, nothing answers).

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ping } from "../../test/support/redis.ts";
import { type Child, freePort, signalGroup, stopChild, track } from "./processes.ts";

export interface PersistentRedis {
  readonly port: number;
  readonly url: string;
  /** The running server's pid (changes on restart). */
  pid(): number;
  /** SIGSTOP. */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
  /** SIGTERM (redis writes its append-only file and exits), down for downMs, then the same server again on the same port. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export function findRedisServer(): string {
  for (const dir of [...(process.env.PATH ?? "").split(path.delimiter).filter(Boolean), "/usr/bin", "/usr/local/bin"]) {
    const candidate = path.join(dir, "redis-server");
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("redis-server not found on PATH (apt-get install redis-server)");
}

/** Starts redis-server on a free loopback port, its data in dir, and resolves once it answers PING. */
export async function startPersistentRedis(dir: string): Promise<PersistentRedis> {
  const bin = findRedisServer();
  const port = await freePort();
  const argv = [
    "--port", String(port), "--bind", "127.0.0.1", "--dir", dir,
    "--save", "", "--appendonly", "yes", "--appendfsync", "always",
    "--logfile", path.join(dir, "redis.log"),
  ];
  let child: Child;
  const launch = async (): Promise<void> => {
    child = track("redis-server", spawn(bin, argv, { detached: true, stdio: "ignore" }));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exited) throw new Error(`redis-server exited (${child.exitInfo}); see ${path.join(dir, "redis.log")}`);
      if (await ping(port)) return;
      await sleep(25);
    }
    throw new Error(`redis-server did not answer PING on port ${port} within 10 s`);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child.proc.pid ?? 0,
    pause: () => signalGroup(child, "SIGSTOP"),
    resume: () => signalGroup(child, "SIGCONT"),
    async restart(downMs) {
      signalGroup(child, "SIGCONT");
      await stopChild(child, 10_000);
      await sleep(downMs);
      await launch();
    },
    async stop() {
      signalGroup(child, "SIGCONT");
      await stopChild(child);
    },
  };
}

