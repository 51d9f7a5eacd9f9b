// Image build step: start the gateway once, wait until GET /readyz answers 200,
// stop it, and check that the launcher wrote V8's code cache on the way out
// (SWITCHYARD_CODE_CACHE_WRITE=exit; see scripts/launcher.ts). Run with the
// Node binary and the V8 flags the image runs with, or V8 rejects the cache.
//
//   SWITCHYARD_CODE_CACHE=DIR node deploy/image/warm-code-cache.mjs dist/server/cli.cjs
//
// A provider pointing at a closed port is configured so that start-up runs
// (and caches) the provider code a real deployment runs; the failed model
// discovery is expected.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const cli = process.argv[2];
const cacheDir = process.env.SWITCHYARD_CODE_CACHE;
if (!cli || !cacheDir) {
  process.stderr.write("usage: SWITCHYARD_CODE_CACHE=DIR node warm-code-cache.mjs PATH/TO/cli.cjs\n");
  process.exit(2);
}
const data = mkdtempSync(join(tmpdir(), "switchyard-warm-"));
const child = spawn(process.execPath, [cli, "start", "--host", "127.0.0.1", "--port", "0"], {
  env: { ...process.env, SWITCHYARD_DATA_DIR: data, SWITCHYARD_CODE_CACHE_WRITE: "exit", NODE_DEBUG: "switchyard", OPENAI_API_KEY: "sk-warm-up", OPENAI_BASE_URL: "http://127.0.0.1:9/v1" },
  stdio: ["ignore", "pipe", "pipe"],
});
let log = "";
child.stdout.on("data", (d) => (log += d));
child.stderr.on("data", (d) => (log += d));
const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));

const started = Date.now();
let ready = false;
while (!ready && Date.now() - started < 120_000 && child.exitCode === null) {
  const url = /"msg":"switchyard listening","url":"([^"]+)"/.exec(log)?.[1];
  if (url) ready = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
  if (!ready) await sleep(20);
}
const readyMs = Date.now() - started;
child.kill("SIGTERM");
const { code, signal } = await exited;
rmSync(data, { recursive: true, force: true });
const files = readdirSync(cacheDir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith(".v8cache"));
if (!ready || files.length === 0) {
  process.stderr.write(`warm-code-cache: ${ready ? "no cache file was written" : "the gateway never answered /readyz 200"} (exit ${code ?? signal})\n${log}`);
  process.exit(1);
}
process.stdout.write(`warm-code-cache: ready after ${readyMs} ms; wrote ${files.map((f) => f.name).join(", ")}\n`);
