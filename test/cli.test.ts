/**
 * The `switchyard` command as a real process: `config check` (ok, errors
 * with field paths, exit codes), `keys create|list|revoke` against a gateway
 * running in this process (so the child is spawned asynchronously), and
 * `--help` on every subcommand.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, chat } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

const root = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "sy-cli-"));
const ADMIN = "sy-admin-cli-test-key-0123456789";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI without the test's environment (SWITCHYARD_* or PORT would change what it does). */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, ["server/cli.ts", ...args], { cwd: root, env: { PATH: process.env["PATH"] ?? "", ...env } }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : -1;
      done({ code, stdout, stderr });
    });
  });
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("config check", () => {
  it("prints ok and exits 0 for a valid file", async () => {
    const f = file("ok.yaml", [
      "providers:",
      "  - type: openai",
      "    keys: [\"${TEST_OPENAI_KEY}\"]",
      "    models: [gpt-4o, gpt-4o-mini]",
      "aliases: { fast: openai/gpt-4o-mini }",
      "routes:",
      "  smart: { targets: [{ model: openai/gpt-4o }], fallbacks: [openai/gpt-4o-mini] }",
    ].join("\n"));
    const r = await cli(["config", "check", f], { TEST_OPENAI_KEY: "sk-test" });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe(`ok: ${f}: 1 provider, 1 alias, 1 route\n`);
  });

  it("prints every schema error with its field path and exits 1", async () => {
    const f = file("bad.yaml", ["providers:", "  - type: openai", "  - type: azure", "    keys: [k]", "routing: { retries: 99 }", "colour: blue"].join("\n"));
    const r = await cli(["config", "check", f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`invalid configuration (${f}):`);
    expect(r.stderr).toMatch(/^ {2}providers\[0\]\.keys: the openai provider needs at least one API key/m);
    expect(r.stderr).toMatch(/^ {2}providers\[1\]\.baseUrl: the azure provider needs its resource endpoint/m);
    expect(r.stderr).toMatch(/^ {2}routing\.retries: /m);
    expect(r.stderr).toMatch(/^ {2}\(top level\): unknown key 'colour'/m);
  });

  it("checks what start checks beyond the schema: routes, the semantic cache's model, unset variables", async () => {
    const base = ["providers:", "  - { type: openai, keys: [k], models: [gpt-4o] }"];
    const route = await cli(["config", "check", file("route.yaml", [...base, "routes:", "  r: { targets: [{ model: openai/gpt-4o }], fallbacks: [anthropic/claude] }"].join("\n"))]);
    expect(route.code).toBe(1);
    expect(route.stderr).toMatch(/routes\.r\.fallbacks\[0\]: /);
    const cache = await cli(["config", "check", file("cache.yaml", [...base, "cache: { mode: semantic, semantic: { embeddingModel: openai/nope } }"].join("\n"))]);
    expect(cache.code).toBe(1);
    expect(cache.stderr).toMatch(/cache\.semantic\.embeddingModel: /);
    const unset = await cli(["config", "check", file("env.yaml", ["providers:", "  - { type: openai, keys: [\"${NOT_SET_ANYWHERE}\"] }"].join("\n"))]);
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain("providers[0].keys[0]: environment variable NOT_SET_ANYWHERE is not set");
    const exposed = await cli(["config", "check", file("exposed.yaml", [...base, "server: { host: 0.0.0.0 }"].join("\n"))]);
    expect(exposed.code).toBe(1);
    expect(exposed.stderr).toContain("refusing to listen on 0.0.0.0 without keys");
  });

  it("exits 1 for a file it cannot read and 2 for a usage error", async () => {
    const missing = await cli(["config", "check", join(dir, "missing.yaml")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("cannot read config file");
    expect((await cli(["config", "check"])).code).toBe(2);
    expect((await cli(["config", "lint", "x"])).code).toBe(2);
  });
});

describe("keys against a running gateway", () => {
  let standin: OpenAIStandin;
  let gw: TestGateway;
  const as = (args: string[], env: Record<string, string> = {}) => cli(["keys", ...args, "--url", gw.url], env);

  beforeAll(async () => {
    standin = await startOpenAIStandin({ models: ["gpt-4o-mini", "gpt-4o"] });
    gw = await startTestGateway({ admin: { key: ADMIN }, providers: [openaiProvider(standin.url)], governance: { pricing: { "gpt-4o-mini": { input: 0, output: 1 } } } });
    await admin(gw.url, ADMIN, "OrgService/CreateTeam", { id: "research", name: "Research" });
  });

  afterAll(async () => {
    await gw?.close();
    await standin?.close();
  });

  it("create prints the secret once; list shows a table without secrets; revoke stops the key", async () => {
    const created = await as(["create", "--name", "notebook", "--team", "research", "--budget-usd", "20", "--period", "day", "--models", "gpt-4o-mini", "--admin-key", ADMIN]);
    expect(created.code).toBe(0);
    const secret = /^secret: (sk-sy-\S+)$/m.exec(created.stdout)?.[1];
    const id = /^created (key_[0-9a-f]+) \(notebook\)$/m.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(id).toBeDefined();
    expect((await chat(gw.url, secret)).status).toBe(200);
    expect((await chat(gw.url, secret, { model: "gpt-4o" })).status).toBe(403); // --models

    // The credential from the environment this time.
    const list = await as(["list"], { SWITCHYARD_ADMIN_KEY: ADMIN });
    expect(list.code).toBe(0);
    const [header, ...rows] = list.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^ID\s+NAME\s+TEAM\s+MODELS\s+BUDGET\s+STATUS\s+HINT\s+CREATED$/);
    const row = rows.find((r) => r.startsWith(id!));
    expect(row).toMatch(/notebook\s+research\s+gpt-4o-mini\s+\$20\/day\s+active\s+sk-sy-/);
    expect(list.stdout).not.toContain(secret!);

    const revoked = await as(["revoke", id!, "--admin-key", ADMIN]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked ${id} (notebook)\n` });
    expect((await chat(gw.url, secret)).status).toBe(403);
    expect((await as(["list", "--admin-key", ADMIN])).stdout).not.toContain(id!);
    expect((await as(["list", "--all", "--admin-key", ADMIN])).stdout).toMatch(new RegExp(`^${id}.*\\brevoked\\b`, "m"));
  });

  it("prints the server's message and exits 1 when the gateway refuses", async () => {
    const wrongKey = await as(["list", "--admin-key", "not-the-admin-key-at-all"]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stderr).toMatch(/^switchyard: ListKeys: .+\(unauthenticated\)$/m);
    const noTeam = await as(["create", "--name", "x", "--team", "no-such-team", "--admin-key", ADMIN]);
    expect(noTeam.code).toBe(1);
    expect(noTeam.stderr).toMatch(/^switchyard: CreateKey: .*no-such-team/m);
    const unknown = await as(["revoke", "key_0000000000000000", "--admin-key", ADMIN]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^switchyard: RevokeKey: .+\(not_found\)$/m);
  });

  it("exits 1 without a credential or a reachable gateway, 2 on usage errors", async () => {
    expect(await as(["list"])).toMatchObject({ code: 1, stderr: expect.stringContaining("no admin credential") });
    const down = await cli(["keys", "list", "--url", "http://127.0.0.1:9", "--admin-key", ADMIN]);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain("cannot reach the gateway at http://127.0.0.1:9");
    expect((await as(["create", "--admin-key", ADMIN])).code).toBe(2); // no --name
    expect((await as(["create", "--name", "x", "--budget-usd", "5", "--period", "fortnight", "--admin-key", ADMIN])).code).toBe(2);
    expect((await as(["rotate", "--admin-key", ADMIN])).code).toBe(2);
  });
});

describe("--help", () => {
  it.each([
    [["--help"], "Usage: switchyard <command>"],
    [["help"], "Usage: switchyard <command>"],
    [["start", "--help"], "Usage: node server/main.ts"],
    [["admin", "--help"], "admin create-owner"],
    [["admin", "create-owner", "--help"], "admin create-owner"],
    [["audit", "--help"], "audit verify"],
    [["audit", "verify", "--help"], "audit verify"],
    [["audit", "export", "--help"], "audit export"],
    [["config", "--help"], "Usage: switchyard config check FILE"],
    [["config", "check", "--help"], "Usage: switchyard config check FILE"],
    [["import", "--help"], "Usage: switchyard import litellm"],
    [["import", "litellm", "--help"], "Usage: switchyard import litellm"],
    [["keys", "--help"], "Usage: switchyard keys"],
    [["keys", "create", "--help"], "keys create --name NAME"],
    [["keys", "list", "--help"], "keys list"],
    [["keys", "revoke", "--help"], "keys revoke ID"],
  ])("switchyard %j", async (args, expected) => {
    const r = await cli(args);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(expected);
  });
});
