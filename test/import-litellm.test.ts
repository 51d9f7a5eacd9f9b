/**
 * `switchyard import litellm`: LiteLLM's own documented example configs
 * (test/fixtures/litellm, each naming its source) import into configurations
 * that validate and pass `switchyard config check`; the mappings that matter
 * (fallbacks, os.environ keys, weighted routes, retries, breaker, cache) are
 * asserted, and what cannot be carried over is listed, never dropped silently.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { formatConfig, formatReport, importLiteLLM, readLiteLLMFile, type ImportResult } from "../server/config/import-litellm.ts";
import { loadConfig, validateConfig } from "../server/config/load.ts";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
const fixtures = join(root, "test/fixtures/litellm");
const dir = mkdtempSync(join(tmpdir(), "sy-import-"));

/** Values for every variable the fixtures reference (shapes the schema accepts: URLs, a region). */
const ENV: Record<string, string> = {
  AZURE_API_BASE: "https://example-resource.openai.azure.com",
  AWS_REGION_NAME: "us-west-2",
};
const envFor = (r: ImportResult): Record<string, string> => Object.fromEntries(r.report.env.map((n) => [n, ENV[n] ?? `test-value-for-${n}`]));

async function imported(name: string): Promise<ImportResult & { text: string; report: ImportResult["report"] & { text: string } }> {
  const r = importLiteLLM(await readLiteLLMFile(join(fixtures, name)));
  return { ...r, text: formatConfig(r, name), report: { ...r.report, text: formatReport(r.report) } };
}

/** The `${NAME}` references replaced, as loadConfig does at start. */
function expand(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === "string") return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, n: string) => env[n]!);
  if (Array.isArray(value)) return value.map((v) => expand(v, env));
  if (value !== null && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expand(v, env)]));
  return value;
}

const notCarried = (r: ImportResult): string[] => r.report.notCarried.map((d) => d.setting);

describe("every vendored LiteLLM example", () => {
  const files = readdirSync(fixtures).filter((f) => f.endsWith(".yaml"));

  it("has its source named in a header comment", async () => {
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const f of files) {
      const text = readFileSync(join(fixtures, f), "utf8");
      expect(text, f).toMatch(/^# Source: (https:\/\/docs\.litellm\.ai\/|https:\/\/github\.com\/BerriAI\/litellm\/)/m);
      expect(text, f).toMatch(/BerriAI\/litellm /);
    }
  });

  it.each(readdirSync(fixtures).filter((f) => f.endsWith(".yaml")))("%s imports, validates and passes `switchyard config check`", async (f) => {
    const r = await imported(f);
    const env = envFor(r);
    // The object itself, with its variables expanded.
    expect(() => validateConfig(expand(r.config, env) as Record<string, unknown>, f)).not.toThrow();
    // The file as written, through the loader start uses.
    const out = join(dir, f.replace(/\.yaml$/, ".switchyard.yaml"));
    writeFileSync(out, r.text);
    await expect(loadConfig({ file: out, env })).resolves.toBeDefined();
    const check = await run(process.execPath, ["server/cli.ts", "config", "check", out], { cwd: root, env: { PATH: process.env["PATH"], ...env } });
    expect(check.stdout).toMatch(/^ok: /);
  });
});

describe("mappings", () => {
  it("os.environ/NAME becomes ${NAME} and is listed as a variable to set (Azure)", async () => {
    const r = await imported("azure_config.yaml");
    const providers = r.config["providers"] as Record<string, unknown>[];
    expect(providers).toHaveLength(2); // two endpoints, two providers
    expect(providers.map((p) => p["keys"])).toEqual([["${AZURE_API_KEY}"], ["${AZURE_API_KEY}"]]);
    expect(providers[0]).toMatchObject({ type: "azure", baseUrl: "https://openai-gpt-4-test-v-1.openai.azure.com/", apiVersion: "2023-05-15", models: ["chatgpt-v-2"], timeouts: { totalMs: 5000 } });
    expect(r.report.env).toEqual(["AZURE_API_KEY"]);
    expect(r.config["aliases"]).toEqual({ "gpt-4-team1": `${providers[0]!["id"]}/chatgpt-v-2`, "gpt-4-team2": `${providers[1]!["id"]}/gpt-4` });
    expect(notCarried(r)).toEqual(expect.arrayContaining(["model_list[0].litellm_params.stream_timeout", "model_list[0].litellm_params.max_retries", "model_list[0].litellm_params.tpm"]));
    expect(r.report.text).toContain("environment: set AZURE_API_KEY");
  });

  it("a model_name shared by deployments becomes a weighted route (rpm weights, tpm weights)", async () => {
    const lb = await imported("configs-load-balancing.yaml");
    const zephyr = (lb.config["routes"] as Record<string, { targets: { model: string; weight: number }[] }>)["zephyr-beta"]!;
    expect(zephyr.targets.map((t) => t.weight)).toEqual([60, 600, 60000]);
    expect(new Set(zephyr.targets.map((t) => t.model.split("/")[0])).size).toBe(3); // three servers, three providers
    const tpm = await imported("azure_config_with_tpm.yaml");
    expect((tpm.config["routes"] as Record<string, unknown>)["gpt-3.5-turbo"]).toEqual({
      targets: [
        { model: "azure-my-endpoint-canada-berri992/gpt-35-1", weight: 80000 },
        { model: "azure-my-endpoint-europe-berri-992/gpt-35-2", weight: 80000 },
      ],
    });
  });

  it("deployments of one provider with different keys collapse into one provider with several keys", async () => {
    const r = await imported("load_balancer.yaml");
    const providers = r.config["providers"] as Record<string, unknown>[];
    expect(providers.filter((p) => p["type"] === "openai")).toEqual([{ id: "openai", type: "openai", keys: ["sk-uj6F", "sk-Imn"], models: ["gpt-3.5-turbo"] }]);
    expect((r.config["routes"] as Record<string, unknown>)["gpt-3.5-turbo"]).toEqual({
      targets: [{ model: "openai/gpt-3.5-turbo", weight: 2 }, { model: "openrouter/gpt-3.5-turbo", weight: 1 }],
    });
    expect(notCarried(r)).toEqual(expect.arrayContaining(["model_list[3].litellm_params.model", "litellm_settings.drop_params", "environment_variables.REDIS_PASSWORD"]));
    // Values are never echoed: the report names settings, not secrets.
    expect(r.report.text).not.toContain("eYVX71");
    expect(r.report.text).not.toContain("sk-uj6F");
  });

  it("a fallback becomes a route fallback (expanded to provider/model)", async () => {
    const lb = await imported("configs-load-balancing.yaml");
    expect((lb.config["routes"] as Record<string, { fallbacks: string[] }>)["zephyr-beta"]!.fallbacks).toEqual(["openai/gpt-4o"]);
    const wild = await imported("reliability-wildcard-fallbacks.yaml");
    expect((wild.config["routes"] as Record<string, unknown>)["gpt-4o"]).toEqual({ targets: [{ model: "openai/gpt-4o", weight: 1 }], fallbacks: ["azure/gpt-4o"] });
    // azure/* serves any model: no models list.
    expect((wild.config["providers"] as Record<string, unknown>[]).find((p) => p["id"] === "azure")).toEqual({ id: "azure", type: "azure", baseUrl: "${AZURE_API_BASE}", keys: ["${AZURE_API_KEY}"] });
  });

  it("router_settings win over litellm_settings; retries, timeout, aliases and what has no equivalent are reported", async () => {
    const r = await imported("configs-load-balancing.yaml");
    expect(r.config["routing"]).toEqual({ retries: 2, breaker: { minRequests: 4, windowMs: 60_000 } });
    expect((r.config["aliases"] as Record<string, string>)["gpt-4"]).toBe("openai/gpt-4o"); // model_group_alias
    for (const p of r.config["providers"] as { timeouts: { totalMs: number } }[]) expect(p.timeouts.totalMs).toBe(30_000);
    expect(notCarried(r)).toEqual(expect.arrayContaining([
      "litellm_settings.num_retries", "litellm_settings.request_timeout", "litellm_settings.context_window_fallbacks",
      "router_settings.redis_host", "router_settings.redis_password", "router_settings.redis_port",
    ]));
    expect(r.report.text).toMatch(/^not carried over: litellm_settings\.context_window_fallbacks: .+$/m);
  });

  it("allowed_fails and cooldown_time become the circuit breaker; num_retries the retries", async () => {
    const r = await imported("reliability-cooldowns.yaml");
    expect(r.config["routing"]).toEqual({ retries: 3, breaker: { minRequests: 4, windowMs: 60_000, cooldownMs: 30_000 } });
    expect((r.config["routes"] as Record<string, { fallbacks: string[] }>)["zephyr-beta"]!.fallbacks).toEqual(["openai/gpt-3.5-turbo"]);
    expect(r.report.notCarried).toEqual([]);
    expect(r.report.notes.join("\n")).toContain("routing.breaker");
  });

  it("router_settings.fallbacks from a deployment that cannot be carried over is reported, with the deployment", async () => {
    const r = await imported("reliability-quick-start.yaml");
    expect(notCarried(r)).toEqual(expect.arrayContaining(["model_list[0].litellm_params.api_base", "router_settings.fallbacks.gpt-3.5-turbo"]));
    expect(r.config["aliases"]).toEqual({ "gpt-4": "azure/gpt-4-ca" });
  });

  it("litellm_settings cache maps to the response cache (semantic with its embedding model; exact with a TTL)", async () => {
    const sem = await imported("caching-redis-semantic.yaml");
    expect(sem.config["cache"]).toEqual({ mode: "semantic", semantic: { embeddingModel: "azure/azure-embedding-model", threshold: 0.8 } });
    expect(sem.config["logLevel"]).toBe("debug"); // set_verbose
    expect(sem.report.env).toEqual(expect.arrayContaining(["OPENAI_API_KEY", "AZURE_API_BASE", "AZURE_API_KEY"]));
    expect(notCarried(sem)).toContain("litellm_settings.cache_params.type");
    const ttl = await imported("caching-redis-ttl.yaml");
    expect(ttl.config["cache"]).toEqual({ mode: "exact", ttlSeconds: 600 });
  });

  it("several providers, the '*' wildcard, master_key and callbacks (the docs' quick start)", async () => {
    const r = await imported("configs-quick-start.yaml");
    const providers = r.config["providers"] as Record<string, unknown>[];
    expect(providers.map((p) => p["type"]).sort()).toEqual(["azure", "azure", "bedrock", "bedrock", "openai-compatible"]);
    expect(providers.find((p) => p["type"] === "openai-compatible")).toMatchObject({ baseUrl: "http://0.0.0.0:4000/v1", models: ["facebook/opt-125m"] });
    expect(providers.find((p) => p["region"] === "us-east-1")).toMatchObject({ credentials: [{ accessKeyId: "${AWS_ACCESS_KEY_ID}", secretAccessKey: "${AWS_SECRET_ACCESS_KEY}" }] });
    expect((r.config["routes"] as Record<string, { targets: unknown[] }>)["gpt-4o"]!.targets).toHaveLength(2);
    expect(notCarried(r)).toEqual(expect.arrayContaining([
      "model_list[5].litellm_params.model", "model_list[4].model_info", "litellm_settings.drop_params",
      "litellm_settings.success_callback", "general_settings.master_key", "general_settings.alerting",
    ]));
    expect(r.report.text).toMatch(/general_settings\.master_key: .*SWITCHYARD_ADMIN_KEY/);
    expect(r.report.text).not.toContain("sk-1234");
  });

  it("unknown top-level sections and deployment fields are reported too", () => {
    const r = importLiteLLM({
      model_list: [{ model_name: "m", litellm_params: { model: "vertex_ai/gemini-pro", vertex_project: "p" } }, { model_name: "n", litellm_params: { model: "groq/llama3", temperature: 0.2 } }],
      guardrails: [],
      litellm_settings: { max_budget: 100, json_logs: true },
    });
    expect(notCarried(r)).toEqual(expect.arrayContaining(["guardrails", "model_list[0].litellm_params.model", "model_list[1].litellm_params.temperature", "litellm_settings.max_budget", "litellm_settings.json_logs"]));
    expect(r.config["providers"]).toEqual([{ id: "groq", type: "groq", keys: ["${GROQ_API_KEY}"], models: ["llama3"] }]);
  });
});

describe("the command", () => {
  const cli = (...args: string[]) => run(process.execPath, ["server/cli.ts", ...args], { cwd: root }).then(
    (r) => ({ code: 0, ...r }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

  it("writes --out and prints the report; exit 0 with warnings", async () => {
    const out = join(dir, "cli-out.yaml");
    const r = await cli("import", "litellm", join(fixtures, "configs-quick-start.yaml"), "--out", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^not carried over: general_settings\.master_key: /m);
    expect(r.stdout).toContain(`wrote ${out}`);
    expect(readFileSync(out, "utf8")).toMatch(/^# Switchyard configuration imported from the LiteLLM config/);
  });

  it("without --out: the configuration on stdout, the report on stderr", async () => {
    const r = await cli("import", "litellm", join(fixtures, "caching-redis-ttl.yaml"));
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("ttlSeconds: 600");
    expect(r.stderr).toMatch(/^not carried over: litellm_settings\.cache_params\.type: /m);
  });

  it("exits 2 on unreadable input: missing, not YAML, not a mapping", async () => {
    const notYaml = join(dir, "bad.yaml");
    writeFileSync(notYaml, "model_list: [\n  - {");
    const list = join(dir, "list.yaml");
    writeFileSync(list, "- a\n- b\n");
    for (const f of [join(dir, "missing.yaml"), notYaml, list]) {
      const r = await cli("import", "litellm", f);
      expect(r.code, f).toBe(2);
      expect(r.stderr, f).toMatch(/^switchyard: /);
    }
  });
});
