import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface GatewayProcess {
  url: string;
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGKILL: no drain, no cleanup, as a crash. */
  kill(): Promise<void>;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
}

/**
 * Runs `node server/main.ts --config <file>` as its own process on a free
 * port, as an operator would, and resolves with its URL once it listens.
 */
export async function startGatewayProcess(config: Record<string, unknown>): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), "sy-proc-"));
  const file = join(dir, "config.json");
  writeFileSync(file, JSON.stringify({ dataDir: join(dir, "data"), ...config, server: { host: "127.0.0.1", port: 0, ...(config["server"] as object) } }));
  const child = spawn(process.execPath, ["server/main.ts", "--config", file], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_LEVEL: "info" } });
  let out = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${out}`)), 15_000);
    const onData = (): void => {
      const m = /"msg":"switchyard listening".*?"url":"([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout!.off("data", onData);
        resolve(m[1]!);
      }
    };
    child.stdout!.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}:\n${out}`));
    });
  });
  return {
    url,
    child,
    output: () => out,
    async kill() {
      child.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}
