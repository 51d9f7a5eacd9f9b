import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";

// The container image, as users get it: the Dockerfile built with buildah
// (deploy/image/build.sh; local stand-ins for the base images, since no image
// registry is reachable here), then the image's own entrypoint and command run
// in a container that shares this machine's network, against a stand-in
// OpenAI upstream on the host. `buildah run --isolation chroot` is the runner:
// podman run and Docker are not available here. It checks what the image
// promises: non-root, /data, the healthcheck, the gateway answering /readyz
// and a chat completion, the web UI, the warmed code cache, a clean SIGTERM,
// and the size (at most 80 MB compressed).
//
// Needs root, buildah and debootstrap (or the base images already built). The
// image is tagged with a hash of its build inputs and reused while they do not
// change; a fresh machine builds the bases and the image (about 2 minutes).

const root = join(import.meta.dirname, "..");
const run = promisify(execFile);
const STORAGE = ["--storage-driver", "vfs"];
const has = (cmd: string): boolean => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const canBuild = process.platform === "linux" && process.getuid?.() === 0 && has("buildah") && has("debootstrap") && process.env["SWITCHYARD_SKIP_IMAGE_TEST"] !== "1";
const REPO = "localhost/switchyard-gateway";
/** What the Dockerfile reads (keep in step with .dockerignore). */
const INPUTS = ["Dockerfile", ".dockerignore", "package.json", "package-lock.json", "tsconfig.json", "scripts", "gen", "server", "ui/dist", "deploy/image"];
const API_KEY = "sk-image-test-0123456789";

interface ImageConfig {
  User: string;
  Env: string[];
  Entrypoint: string[];
  Cmd: string[];
  WorkingDir: string;
  Volumes: Record<string, unknown>;
  ExposedPorts: Record<string, unknown>;
  Healthcheck?: { Test: string[] };
}

let image: string;
let config: ImageConfig;
let standin: OpenAIStandin;
let port: number;
let url: string;
const containers: string[] = [];
let ctr: string;
let runner: ChildProcess | undefined;
let runnerExit: Promise<number | null>;
let out = "";

function buildah(args: string[], timeout = 120_000): Promise<{ stdout: string; stderr: string }> {
  return run("buildah", [...STORAGE, ...args], { maxBuffer: 64 << 20, timeout });
}

/** sha256 over the build inputs' paths and contents (tracked and untracked, not ignored). */
function inputsHash(): string {
  const files = spawnSync("git", ["ls-files", "-co", "--exclude-standard", "--", ...INPUTS], { cwd: root, encoding: "utf8" })
    .stdout.split("\n")
    .filter((f) => f !== "" && !f.endsWith(".test.ts"))
    .sort();
  const h = createHash("sha256");
  for (const f of files) {
    h.update(f + "\0");
    try {
      h.update(readFileSync(join(root, f)));
    } catch {
      h.update("(deleted)");
    }
  }
  return h.digest("hex").slice(0, 16);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port: p } = srv.address() as { port: number };
      srv.close(() => resolve(p));
    });
    srv.on("error", reject);
  });
}

/** `buildah from` the image; the container is removed in afterAll. */
async function container(): Promise<string> {
  const { stdout } = await buildah(["from", "--pull=never", "--quiet", image]);
  const name = stdout.trim();
  containers.push(name);
  return name;
}

/** `buildah run` in a container (chroot isolation: this machine's network), with extra environment. */
function runIn(name: string, env: Record<string, string>, argv: string[]): ChildProcess {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
  return spawn("buildah", [...STORAGE, "run", "--isolation", "chroot", ...envArgs, name, "--", ...argv], { stdio: ["ignore", "pipe", "pipe"] });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** The gateway's Node process on this machine: runs the image's entrypoint with our PORT. */
function gatewayPid(): number | undefined {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (cmd[0] !== config.Entrypoint[0] || cmd[1] !== config.Entrypoint[1]) continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").includes(`PORT=${port}`)) return Number(d);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}

describe.skipIf(!canBuild)("container image (Dockerfile, buildah)", () => {
  beforeAll(async () => {
    image = `${REPO}:test-${inputsHash()}`;
    const exists = spawnSync("buildah", [...STORAGE, "inspect", "--type", "image", image], { stdio: "ignore" }).status === 0;
    if (!exists) {
      const started = Date.now();
      const build = await run(join(root, "deploy", "image", "build.sh"), [image], { cwd: root, maxBuffer: 64 << 20, timeout: 15 * 60_000 }).catch((err: { stdout?: string; stderr?: string; message: string }) => {
        throw new Error(`image build failed: ${err.message}\n${err.stdout ?? ""}\n${err.stderr ?? ""}`);
      });
      process.stderr.write(`image.test: built ${image} in ${((Date.now() - started) / 1000).toFixed(0)} s\n${build.stdout.split("\n").filter((l) => /^(bases|build\.sh|warm-code-cache):/.test(l)).join("\n")}\n`);
      // Earlier test images (other inputs) only take space: vfs keeps every layer uncompressed.
      const { stdout } = await buildah(["images", "--format", "{{.Name}}:{{.Tag}}"]);
      for (const old of stdout.split("\n").filter((n) => n.startsWith(`${REPO}:test-`) && n !== image)) {
        await buildah(["rmi", old]).catch(() => {});
      }
    }
    const inspected = JSON.parse((await buildah(["inspect", "--type", "image", image])).stdout) as { Docker: { config: ImageConfig } };
    config = inspected.Docker.config;

    standin = await startOpenAIStandin();
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    ctr = await container();
    // The image's own entrypoint and command; the environment adds only the port, the upstream and a key.
    runner = runIn(ctr, { PORT: String(port), OPENAI_BASE_URL: standin.url, OPENAI_API_KEY: "sk-test", SWITCHYARD_API_KEYS: API_KEY, NODE_DEBUG: "switchyard" }, [...config.Entrypoint, ...config.Cmd]);
    runner.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    runner.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    runnerExit = exitOf(runner);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && runner.exitCode === null) {
      if ((await fetch(`${url}/readyz`).then((r) => r.status, () => 0)) === 200) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`the gateway in the image did not answer /readyz 200:\n${out}`);
  }, 16 * 60_000);

  afterAll(async () => {
    if (runner && runner.exitCode === null && runner.signalCode === null) {
      const pid = gatewayPid();
      if (pid !== undefined) process.kill(pid, "SIGKILL");
      runner.kill("SIGKILL");
      await runnerExit;
    }
    for (const c of containers) await buildah(["rm", c]).catch(() => {});
    await standin?.close();
  });

  it("is configured as documented: non-root, /data volume, port 8080, healthcheck, exec-form entrypoint", () => {
    expect(config.User).toBe("65532:65532");
    expect(config.Env).toEqual(expect.arrayContaining(["SWITCHYARD_DATA_DIR=/data", "HOST=0.0.0.0"]));
    expect(Object.keys(config.Volumes)).toEqual(["/data"]);
    expect(Object.keys(config.ExposedPorts)).toEqual(["8080/tcp"]);
    expect(config.Healthcheck?.Test).toEqual(["CMD", "/usr/local/bin/node", "/app/healthcheck.cjs"]);
    expect(config.Entrypoint).toEqual(["/usr/local/bin/node", "/app/dist/server/cli.cjs"]);
    expect(config.Cmd).toEqual(["start"]);
  });

  it("runs the gateway as the non-root user, from the code cache warmed at build time", () => {
    const pid = gatewayPid();
    expect(pid).toBeDefined();
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    expect(uid).toBe("65532");
    expect(out).toMatch(/code cache accepted: \/app\/code-cache\//);
  });

  it("answers /readyz, and a chat completion through the stand-in upstream (with a gateway key, as it listens on 0.0.0.0)", async () => {
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const ask = (key?: string): Promise<Response> =>
      fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "from the image" }] }),
      });
    expect((await ask()).status).toBe(401);
    const res = await ask(API_KEY);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe("echo: from the image");
  });

  it("serves the web UI", async () => {
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/<script[^>]+src="[^"]+\.js"/);
  });

  it("writes its data to /data as the non-root user", async () => {
    // As the process sees it (buildah run mounts the image's volumes over the container's /data).
    const data = `/proc/${gatewayPid()}/root/data`;
    const deadline = Date.now() + 5_000;
    while (!readdirSync(data).includes("requests.db") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(readdirSync(data)).toContain("requests.db");
    expect(statSync(data).uid).toBe(65532);
    expect(statSync(join(data, "requests.db")).uid).toBe(65532);
  });

  it("the HEALTHCHECK command exits 0 while the gateway is ready, 1 where nothing listens", async () => {
    const check = await container();
    const argv = config.Healthcheck!.Test.slice(1);
    const ok = runIn(check, { PORT: String(port) }, argv);
    expect(await exitOf(ok)).toBe(0);
    const bad = runIn(check, { PORT: String(await freePort()) }, argv);
    expect(await exitOf(bad)).not.toBe(0);
  }, 60_000);

  it("compresses to at most 80 MB", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sy-image-"));
    try {
      await buildah(["push", "--quiet", image, `oci:${join(dir, "oci")}`]);
      const blobs = join(dir, "oci", "blobs", "sha256");
      const index = JSON.parse(readFileSync(join(dir, "oci", "index.json"), "utf8")) as { manifests: { digest: string }[] };
      const manifest = JSON.parse(readFileSync(join(blobs, index.manifests[0]!.digest.slice(7)), "utf8")) as { layers: { size: number; mediaType: string }[] };
      const compressed = manifest.layers.reduce((n, l) => n + l.size, 0);
      process.stderr.write(`image.test: ${image}: ${manifest.layers.length} layers, ${(compressed / 1e6).toFixed(1)} MB compressed (${manifest.layers.map((l) => l.mediaType).join(", ")})\n`);
      expect(manifest.layers.every((l) => l.mediaType.endsWith("gzip"))).toBe(true);
      expect(compressed).toBeLessThanOrEqual(80e6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("drains and exits 0 on SIGTERM", async () => {
    const pid = gatewayPid();
    expect(pid).toBeDefined();
    process.kill(pid!, "SIGTERM");
    expect(await runnerExit).toBe(0);
    expect(out).toMatch(/"msg":"draining","signal":"SIGTERM"/);
    expect(out).toMatch(/"msg":"stopped","signal":"SIGTERM"/);
  }, 60_000);
});
