import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";

// The published packages, tested as users get them: `npm pack` both (which
// compiles through `prepack`), `npm install` each tarball into an empty
// folder, then run the installed `switchyard` command and an .mjs script on
// the installed SDK. Type stripping stops at node_modules, so this is the
// only test that proves the bundle (scripts/build.ts), its runtime files
// (price table, web UI, request-log worker), the launcher's code cache and the
// CLI's shebang are right.

const root = join(import.meta.dirname, "..");
const run = promisify(execFile);
const npmWorks = spawnSync("npm", ["--version"], { encoding: "utf8" }).status === 0;
/** The child's PATH starts with this Node, so the bin's `#!/usr/bin/env node` finds it. */
const PATH = `${dirname(process.execPath)}:${process.env["PATH"] ?? ""}`;

let work: string;
let gatewayTgz: string;
let sdkTgz: string;
let installed: string;
let standin: OpenAIStandin;
let gateway: ChildProcess | undefined;
let gatewayOut = "";
let url: string;

async function npm(args: string[], cwd: string): Promise<void> {
  await run("npm", args, { cwd, env: { ...process.env, PATH }, maxBuffer: 64 << 20, timeout: 120_000 });
}

/** `npm pack` of the package in `dir` into an empty folder; resolves with the tarball's path. */
async function pack(dir: string, name: string): Promise<string> {
  const dest = join(work, `pack-${name}`);
  mkdirSync(dest);
  await npm(["pack", "--pack-destination", dest], dir);
  const [tgz] = readdirSync(dest).filter((f) => f.endsWith(".tgz"));
  return join(dest, tgz!);
}

/** An empty project with `tgz` installed from its tarball (dependencies from the registry). */
async function installInto(name: string, tgz: string): Promise<string> {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, private: true, type: "module" }));
  await npm(["install", tgz, "--no-audit", "--no-fund"], dir);
  return dir;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

async function waitReady(base: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the installed gateway did not answer /readyz 200 within ${timeoutMs} ms:\n${gatewayOut}`);
}

describe.skipIf(!npmWorks)("npm packages (npm pack + npm install)", () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), "sy-pack-"));
    [gatewayTgz, sdkTgz] = await Promise.all([pack(root, "gateway"), pack(join(root, "sdk-ts"), "sdk")]);
    installed = await installInto("gateway-install", gatewayTgz);
    standin = await startOpenAIStandin();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    const bin = join(installed, "node_modules", ".bin", "switchyard");
    const env = { PATH, HOME: process.env["HOME"] ?? work, SWITCHYARD_DATA_DIR: join(work, "data"), SWITCHYARD_CODE_CACHE: join(work, "code-cache"), NODE_DEBUG: "switchyard", OPENAI_BASE_URL: standin.url, OPENAI_API_KEY: "sk-test" };
    gateway = spawn(bin, ["start", "--port", String(port), "--host", "127.0.0.1"], { cwd: installed, env, stdio: ["ignore", "pipe", "pipe"] });
    gateway.stdout!.on("data", (d: Buffer) => (gatewayOut += d.toString()));
    gateway.stderr!.on("data", (d: Buffer) => (gatewayOut += d.toString()));
    await waitReady(url, 20_000);
  }, 180_000);

  afterAll(async () => {
    if (gateway && gateway.exitCode === null && gateway.signalCode === null) {
      const exited = new Promise((r) => gateway!.once("exit", r));
      gateway.kill("SIGTERM");
      await exited;
    }
    await standin?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("the gateway tarball holds the bundle, its runtime files and the web UI, no TypeScript or tests", async () => {
    const { stdout } = await run("tar", ["tzf", gatewayTgz]);
    const files = stdout.split("\n").filter((f) => f !== "");
    const server = files.filter((f) => f.startsWith("package/dist/server/")).sort();
    expect(server).toEqual([
      "package/dist/server/cli.cjs",
      "package/dist/server/pricing-table.json",
      "package/dist/server/request-log-worker.cjs",
      "package/dist/server/request-log-worker.cjs.map",
      "package/dist/server/response-store-writer.cjs",
      "package/dist/server/response-store-writer.cjs.map",
      "package/dist/server/switchyard.cjs",
      "package/dist/server/switchyard.cjs.map",
      "package/dist/server/vendor/ioredis.cjs",
      "package/dist/server/vendor/openid-client.cjs",
      "package/dist/server/vendor/pg.cjs",
      "package/dist/server/vendor/yaml.cjs",
    ]);
    expect(files).toContain("package/dist/ui/dist/index.html");
    expect(files.some((f) => f.endsWith(".js.br"))).toBe(true);
    expect(files.some((f) => f.endsWith(".js.gz"))).toBe(true);
    expect(files.filter((f) => f.endsWith(".ts") || f.includes("/test/") || f.includes("/bench/"))).toEqual([]);
  });

  it("`switchyard --help` prints the usage", async () => {
    const { stdout } = await run(join(installed, "node_modules", ".bin", "switchyard"), ["--help"], { env: { PATH } });
    expect(stdout).toMatch(/^Usage: switchyard <command>/);
  });

  it("the installed gateway answers a chat completion through the stand-in", async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "from the tarball" }] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe("echo: from the tarball");

    // The request log is written by a worker thread loaded by URL (request-log-worker.js once compiled),
    // started with the first record: the database file appears then.
    const file = join(work, "data", "requests.db");
    const deadline = Date.now() + 5_000;
    while (!existsSync(file) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const db = new DatabaseSync(file, { readOnly: true });
    try {
      const count = (): number => {
        try {
          return (db.prepare("SELECT count(*) AS n FROM requests").get() as { n: number }).n;
        } catch {
          return 0; // The worker has made the file but not yet its table.
        }
      };
      while (count() === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(count()).toBe(1);
    } finally {
      db.close();
    }
    expect(gatewayOut).not.toContain('"level":"error"');
  });

  it("the command writes V8's code cache once the gateway is up, and the next start uses it", async () => {
    const deadline = Date.now() + 10_000;
    while (!gatewayOut.includes("code cache written") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(gatewayOut).toMatch(/code cache missing: .*switchyard-[0-9a-f]{16}-v\d+\.\d+\.\d+-\w+\.v8cache/);
    expect(gatewayOut).toContain("code cache written");
    const env = { PATH, SWITCHYARD_CODE_CACHE: join(work, "code-cache"), NODE_DEBUG: "switchyard" };
    const { stdout, stderr } = await run(join(installed, "node_modules", ".bin", "switchyard"), ["--help"], { env });
    expect(stdout).toMatch(/^Usage: switchyard <command>/);
    expect(stderr).toMatch(/code cache accepted/);
  });

  it("serves the web UI and its precompressed assets", async () => {
    const page = await fetch(`${url}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await page.text();
    const script = /src="([^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(new URL(script!, `${url}/ui/`), { headers: { "accept-encoding": "br" } });
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-encoding")).toBe("br");
  });

  it("the installed SDK calls the gateway's ChatService over Connect, and its types check", async () => {
    const project = await installInto("sdk-project", sdkTgz);
    writeFileSync(
      join(project, "chat.mjs"),
      `import { createClient, userText } from "@switchyard/sdk";
const sy = createClient({ baseUrl: process.argv[2] });
const { completion } = await sy.chat.complete({ request: { model: "gpt-4o-mini", messages: [userText("from the sdk tarball")] } });
const part = completion.choices[0].message.content[0].part;
process.stdout.write(JSON.stringify({ text: part.value, provider: completion.gateway.provider }));
`,
    );
    const { stdout } = await run(process.execPath, ["chat.mjs", url], { cwd: project, timeout: 30_000 });
    expect(JSON.parse(stdout)).toEqual({ text: "echo: from the sdk tarball", provider: "openai" });

    // The .d.ts files resolve for a consumer without allowImportingTsExtensions or @types/node.
    writeFileSync(join(project, "check.ts"), `import { createClient, userText, type ChatRequestInit } from "@switchyard/sdk";\nconst r: ChatRequestInit = { model: "m", messages: [userText("hi")] };\nexport const p: Promise<unknown> = createClient({ baseUrl: "http://x" }).chat.complete({ request: r });\n`);
    writeFileSync(join(project, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "es2022", module: "nodenext", strict: true, noEmit: true, skipLibCheck: false, types: [] }, files: ["check.ts"] }));
    await run(join(root, "node_modules", ".bin", "tsc"), ["-p", project], { cwd: project });
  }, 120_000);
});
