/**
 * Configuration: schema validation and defaults, file loading (YAML and JSON,
 * `${VAR}` interpolation), zero-config from the environment, the exposure
 * guard, and the CLI entry point run as a real process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { checkExposure } from "../server/config/exposure.ts";
import { ConfigError, loadConfig, validateConfig } from "../server/config/load.ts";
import { OPENAI_PRESETS, PROVIDER_TYPES, type Config, type OpenAIPreset, type ProviderConfig } from "../server/config/schema.ts";

const repoRoot = path.resolve(import.meta.dirname, "..");

/** Runs `fn`, expects a ConfigError, and returns its message. */
function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError, nothing was thrown");
}

async function configErrorAsync(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error("expected a ConfigError, nothing was thrown");
}

/** The keys of a provider that has them (every type but bedrock). */
function keysOf(p: ProviderConfig | undefined): readonly string[] {
  if (p === undefined || !("keys" in p)) throw new Error(`provider ${p?.id} has no keys`);
  return p.keys;
}

const goodProvider = { id: "local", type: "openai-compatible", baseUrl: "http://127.0.0.1:8000/v1" } as const;

// ---------------------------------------------------------------------------

describe("validateConfig", () => {
  it("fills every default from an empty object", () => {
    const c = validateConfig({});
    expect(c).toEqual({
      server: { host: "127.0.0.1", port: 8080, maxBodyBytes: 8 * 1024 * 1024, shutdownGraceMs: 30_000, drainDelayMs: 2_000 },
      auth: { keys: [], allowUnauthenticated: false },
      admin: { sessionHours: 12, sessionIdleMinutes: 120, secureCookies: false, auditRetentionDays: 365 },
      responses: { ttlDays: 30, scope: "customer" },
      cache: {
        mode: "off", ttlSeconds: 3_600, scope: "customer", maxBytes: 256 * 1024 * 1024, persist: false, chargeHits: false, storeMultipleChoices: false,
        semantic: { threshold: 0.95, prompt: "last_user", withTools: false, maxTemperature: 0, maxEntries: 100_000 },
      },
      governance: {
        store: "embedded", redis: { url: "redis://127.0.0.1:6379", prefix: "sy", commandTimeoutMs: 500 },
        reservationTtlMs: 30_000, leases: true, defaultMaxOutputTokens: 8_192, unpricedModels: "refuse", pricing: {},
        whenStoreDown: { rateLimits: "local", budgets: "refuse", localShare: 0.25 },
      },
      providers: [],
      aliases: {},
      database: { poolSize: 10, statementTimeoutMs: 10_000 },
      dataDir: ".data",
      logLevel: "info",
      requestLog: { enabled: true, retentionDays: 14, maxRows: 2_000_000, queueMax: 20_000, bodies: false, redact: ["secrets"] },
      tracing: { serviceName: "switchyard", headers: {} },
      routes: {},
      routing: {
        retries: 1, backoffMs: 200, maxBackoffMs: 5_000, deadlineMs: 60_000, keyBalance: "round-robin",
        breaker: { failureRate: 0.5, minRequests: 5, windowMs: 30_000, cooldownMs: 15_000 }, healthCheckIntervalMs: 0,
      },
    });
  });

  it("takes the admin key and a shared Redis store from the environment", async () => {
    const c = await loadConfig({ env: { SWITCHYARD_ADMIN_KEY: "admin-key-0123456789", SWITCHYARD_REDIS_URL: "redis://cache:6380/2" } });
    expect(c.admin.key).toBe("admin-key-0123456789");
    expect(c.governance.store).toBe("redis");
    expect(c.governance.redis.url).toBe("redis://cache:6380/2");
    expect(() => validateConfig({ admin: { key: "short" } })).toThrow(/admin\.key: the admin key must be at least 16 characters/);
    expect(() => validateConfig({ governance: { redis: { url: "http://x" } } })).toThrow(/governance\.redis\.url/);
  });

  it("takes the data directory, log level and OpenTelemetry settings from the environment", async () => {
    const c = await loadConfig({
      env: {
        SWITCHYARD_DATA_DIR: "/var/lib/switchyard",
        LOG_LEVEL: "debug",
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
        OTEL_SERVICE_NAME: "gw-eu",
        OTEL_EXPORTER_OTLP_HEADERS: "authorization=Bearer%20t,x-team=ai",
      },
    });
    expect(c.dataDir).toBe("/var/lib/switchyard");
    expect(c.logLevel).toBe("debug");
    expect(c.tracing).toEqual({ endpoint: "http://collector:4318", serviceName: "gw-eu", headers: { authorization: "Bearer t", "x-team": "ai" } });
    await expect(loadConfig({ env: { LOG_LEVEL: "loud" } })).rejects.toThrow(/logLevel/);
  });

  it("fills provider defaults, including every timeout", () => {
    const c = validateConfig({ providers: [{ ...goodProvider }] });
    expect(c.providers[0]).toEqual({
      id: "local",
      type: "openai-compatible",
      baseUrl: "http://127.0.0.1:8000/v1",
      keys: [],
      models: [],
      headers: {},
      timeouts: { connectMs: 10_000, firstByteMs: 120_000, idleMs: 60_000, totalMs: 600_000 },
      maxConnections: 256,
    });
  });

  it("keeps given timeouts and defaults only the missing ones", () => {
    const c = validateConfig({ providers: [{ ...goodProvider, timeouts: { connectMs: 5 } }] });
    expect(c.providers[0]!.timeouts).toEqual({ connectMs: 5, firstByteMs: 120_000, idleMs: 60_000, totalMs: 600_000 });
  });

  it("returns a deeply frozen value", () => {
    const c = validateConfig({ providers: [{ ...goodProvider }] });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.server)).toBe(true);
    expect(Object.isFrozen(c.providers[0]!.timeouts)).toBe(true);
  });

  it("names the field of a wrong type", () => {
    const msg = configError(() => validateConfig({ server: { port: "abc" } } as never));
    expect(msg).toMatch(/^invalid configuration \(config\):/);
    expect(msg).toMatch(/^ {2}server\.port: .*expected number/m);
  });

  it("names the source given by the caller", () => {
    const msg = configError(() => validateConfig({ server: { port: -1 } }, "my.yaml"));
    expect(msg).toContain("invalid configuration (my.yaml)");
    expect(msg).toContain("server.port:");
  });

  it("rejects an unknown key at the top level", () => {
    const msg = configError(() => validateConfig({ bogus: 1 } as never));
    expect(msg).toContain("(top level): unknown key 'bogus'");
  });

  it("rejects an unknown key in a nested object, naming where it is", () => {
    // The path is the object holding the key, and the key is named after it.
    const msg = configError(() => validateConfig({ providers: [{ ...goodProvider, bogus: true }] } as never));
    expect(msg).toContain("providers[0]: unknown key 'bogus'");
  });

  it("rejects unknown keys in server, auth and timeouts (misspelt settings are not ignored)", () => {
    expect(configError(() => validateConfig({ server: { prot: 1 } } as never))).toContain("server: unknown key 'prot'");
    expect(configError(() => validateConfig({ auth: { allowUnauthenticted: true } } as never))).toContain(
      "auth: unknown key 'allowUnauthenticted'",
    );
    expect(
      configError(() => validateConfig({ providers: [{ ...goodProvider, timeouts: { totalMS: 1 } }] } as never)),
    ).toContain("providers[0].timeouts: unknown key 'totalMS'");
  });

  it("rejects a bad provider id", () => {
    for (const id of ["Bad", "has space", "-lead", "", "x".repeat(64)]) {
      const msg = configError(() => validateConfig({ providers: [{ ...goodProvider, id }] }));
      expect(msg, id).toContain("providers[0].id:");
    }
    // the limits themselves are fine
    expect(validateConfig({ providers: [{ ...goodProvider, id: "a" + "b".repeat(62) }] }).providers[0]!.id).toHaveLength(63);
    expect(validateConfig({ providers: [{ ...goodProvider, id: "0a_b-c" }] }).providers[0]!.id).toBe("0a_b-c");
  });

  it("rejects a provider type outside the enum, listing every allowed type", () => {
    const msg = configError(() => validateConfig({ providers: [{ ...goodProvider, type: "antropic" }] } as never));
    expect(msg).toContain("providers[0].type: unknown provider type 'antropic'; expected one of openai, openai-compatible, mistral,");
    for (const t of PROVIDER_TYPES) expect(msg, t).toContain(t);
    expect(PROVIDER_TYPES).toHaveLength(17);
    // a missing type says so; a value that does not look like a type name is not echoed
    expect(configError(() => validateConfig({ providers: [{ id: "x" }] } as never))).toContain("providers[0].type: missing provider type; expected one of openai,");
    const odd = configError(() => validateConfig({ providers: [{ type: "sk-Secret123" }] } as never));
    expect(odd).toContain("providers[0].type: unknown provider type; expected one of");
    expect(odd).not.toContain("sk-Secret123");
  });

  it("rejects an invalid or non-http base URL", () => {
    for (const baseUrl of ["not a url", "ftp://example.com/v1", "example.com/v1"]) {
      const msg = configError(() => validateConfig({ providers: [{ ...goodProvider, baseUrl }] }));
      expect(msg, baseUrl).toContain("providers[0].baseUrl:");
    }
    expect(validateConfig({ providers: [{ ...goodProvider, baseUrl: "https://api.example.com/v1" }] }).providers).toHaveLength(1);
  });

  it("rejects duplicate provider ids", () => {
    const msg = configError(() => validateConfig({ providers: [{ ...goodProvider }, { ...goodProvider }] }));
    expect(msg).toContain("providers[1].id: duplicate provider id 'local', also used by providers[0]");
  });

  it("rejects an openai provider without keys", () => {
    const msg = configError(() =>
      validateConfig({ providers: [{ id: "openai", type: "openai", baseUrl: "https://api.openai.com/v1" }] }),
    );
    expect(msg).toContain("providers[0].keys:");
    expect(msg).toContain("at least one API key");
    // openai-compatible needs none; openai with a key is fine
    expect(() => validateConfig({ providers: [{ ...goodProvider }] })).not.toThrow();
    expect(() =>
      validateConfig({ providers: [{ id: "openai", type: "openai", baseUrl: "https://api.openai.com/v1", keys: ["sk-1"] }] }),
    ).not.toThrow();
  });

  it("rejects an empty provider key and a short gateway key", () => {
    expect(configError(() => validateConfig({ providers: [{ ...goodProvider, keys: [""] }] }))).toContain("providers[0].keys[0]:");
    expect(configError(() => validateConfig({ auth: { keys: ["short"] } }))).toContain(
      "auth.keys[0]: gateway keys must be at least 16 characters",
    );
  });

  it("rejects an alias to an unknown provider or without a provider prefix", () => {
    const msg = configError(() =>
      validateConfig({ providers: [{ ...goodProvider }], aliases: { fast: "nope/gpt-4o-mini", bare: "gpt-4o", lead: "/x" } }),
    );
    expect(msg).toContain("aliases.fast: 'nope/gpt-4o-mini'");
    expect(msg).toContain("aliases.bare: 'gpt-4o'");
    expect(msg).toContain("aliases.lead: '/x'");
    const ok = validateConfig({ providers: [{ ...goodProvider }], aliases: { fast: "local/llama-3" } });
    expect(ok.aliases).toEqual({ fast: "local/llama-3" });
  });

  it("reports several schema problems together, one line each", () => {
    const msg = configError(() =>
      validateConfig({
        server: { port: "abc", host: "" },
        providers: [
          { id: "Bad", type: "openai-compatible", baseUrl: "not a url", bogus: 1 },
          // with an unknown type the other fields cannot be checked (they depend on the type): one line
          { type: "nope", baseUrl: "not a url" },
        ],
        extra: true,
      } as never),
    );
    for (const field of ["server.port:", "server.host:", "providers[0].id:", "providers[1].type: unknown provider type 'nope'", "providers[0].baseUrl:", "providers[0]: unknown key 'bogus'", "(top level): unknown key 'extra'"]) {
      expect(msg, field).toContain(field);
    }
    expect(msg.split("\n").length).toBeGreaterThanOrEqual(8);
    expect(msg).not.toContain("providers[1].baseUrl");
  });

  it("reports several cross-field problems together", () => {
    const msg = configError(() =>
      validateConfig({
        providers: [
          { id: "a", type: "openai", baseUrl: "http://x.test/v1" },
          { id: "a", type: "openai-compatible", baseUrl: "http://y.test/v1" },
        ],
        aliases: { fast: "zzz/m" },
      }),
    );
    expect(msg).toContain("providers[0].keys:");
    expect(msg).toContain("providers[1].id: duplicate provider id 'a'");
    expect(msg).toContain("aliases.fast:");
  });

  it("rejects out-of-range numbers", () => {
    expect(configError(() => validateConfig({ server: { port: 65_536 } }))).toContain("server.port:");
    expect(configError(() => validateConfig({ server: { port: 80.5 } }))).toContain("server.port:");
    expect(configError(() => validateConfig({ server: { maxBodyBytes: 0 } }))).toContain("server.maxBodyBytes:");
    expect(configError(() => validateConfig({ providers: [{ ...goodProvider, maxConnections: 70_000 }] }))).toContain(
      "providers[0].maxConnections:",
    );
    expect(configError(() => validateConfig({ providers: [{ ...goodProvider, timeouts: { idleMs: 0 } }] }))).toContain(
      "providers[0].timeouts.idleMs:",
    );
  });
});

// ---------------------------------------------------------------------------

describe("every provider type", () => {
  const commonDefaults = {
    models: [],
    headers: {},
    timeouts: { connectMs: 10_000, firstByteMs: 120_000, idleMs: 60_000, totalMs: 600_000 },
    maxConnections: 256,
  };
  const one = (p: Record<string, unknown>): ProviderConfig => validateConfig({ providers: [p] } as never).providers[0]!;

  it("openai: the default base URL, id from the type", () => {
    expect(one({ type: "openai", keys: ["sk-1"] })).toEqual({ ...commonDefaults, id: "openai", type: "openai", baseUrl: "https://api.openai.com/v1", keys: ["sk-1"] });
  });

  it("anthropic: base URL, anthropic-version and max_tokens defaults", () => {
    expect(one({ type: "anthropic", keys: ["sk-ant-1"] })).toEqual({
      ...commonDefaults,
      id: "anthropic",
      type: "anthropic",
      baseUrl: "https://api.anthropic.com",
      keys: ["sk-ant-1"],
      anthropicVersion: "2023-06-01",
      defaultMaxTokens: 4096,
    });
  });

  it("gemini: the v1beta base URL", () => {
    expect(one({ type: "gemini", keys: ["AIza-1"] })).toEqual({
      ...commonDefaults,
      id: "gemini",
      type: "gemini",
      baseUrl: "https://generativelanguage.googleapis.com/v1beta",
      keys: ["AIza-1"],
    });
  });

  it("azure: apiVersion and deployments defaults; given values kept", () => {
    expect(one({ type: "azure", keys: ["az-1"], baseUrl: "https://res.openai.azure.com" })).toEqual({
      ...commonDefaults,
      id: "azure",
      type: "azure",
      baseUrl: "https://res.openai.azure.com",
      keys: ["az-1"],
      apiVersion: "2024-10-21",
      deployments: {},
    });
    expect(one({ type: "azure", keys: ["az-1"], baseUrl: "https://res.openai.azure.com", apiVersion: "2025-01-01-preview", deployments: { "gpt-4o": "prod-4o" } }))
      .toMatchObject({ apiVersion: "2025-01-01-preview", deployments: { "gpt-4o": "prod-4o" } });
  });

  it("bedrock: the base URL follows the region unless given", () => {
    const credentials = [{ accessKeyId: "AKIA1", secretAccessKey: "s1" }];
    expect(one({ type: "bedrock", region: "eu-west-3", credentials })).toEqual({
      ...commonDefaults,
      id: "bedrock",
      type: "bedrock",
      region: "eu-west-3",
      baseUrl: "https://bedrock-runtime.eu-west-3.amazonaws.com",
      credentials,
    });
    expect(one({ type: "bedrock", region: "us-gov-west-1", credentials, baseUrl: "http://127.0.0.1:9/" }).baseUrl).toBe("http://127.0.0.1:9/");
    expect(configError(() => one({ type: "bedrock", region: "EU west", credentials }))).toContain("providers[0].region: must be an AWS region such as us-east-1");
  });

  it("every OpenAI-compatible preset: base URL from the preset, keys required unless local", () => {
    for (const [type, preset] of Object.entries(OPENAI_PRESETS) as [OpenAIPreset, (typeof OPENAI_PRESETS)[OpenAIPreset]][]) {
      const keys = preset.local ? [] : ["k-1"];
      expect(one({ type, keys }), type).toEqual({ ...commonDefaults, id: type, type, baseUrl: preset.baseUrl, keys });
      expect(one({ type, keys, baseUrl: "http://127.0.0.1:7/v1" }).baseUrl, type).toBe("http://127.0.0.1:7/v1");
      if (preset.local) {
        expect(keysOf(one({ type })), type).toEqual([]);
      } else {
        const msg = configError(() => one({ type }));
        expect(msg, type).toContain(`providers[0].keys: the ${type} provider needs at least one API key (keys, or ${preset.keyEnv} in zero-config)`);
        expect(configError(() => one({ type, keys: [] })), type).toContain("providers[0].keys: ");
      }
    }
  });

  it("names the missing field for each hosted type", () => {
    expect(configError(() => one({ type: "openai" }))).toContain("providers[0].keys: the openai provider needs at least one API key");
    expect(configError(() => one({ type: "anthropic" }))).toContain("providers[0].keys: the anthropic provider needs at least one API key (keys, or ANTHROPIC_API_KEY");
    expect(configError(() => one({ type: "gemini", keys: [] }))).toContain("providers[0].keys: the gemini provider needs at least one API key");
    const azure = configError(() => one({ type: "azure", keys: ["k"] }));
    expect(azure).toContain("providers[0].baseUrl: the azure provider needs its resource endpoint");
    expect(configError(() => one({ type: "azure", keys: ["k"], baseUrl: "res.openai.azure.com" }))).toMatch(/providers\[0\]\.baseUrl: Invalid URL/);
    expect(configError(() => one({ type: "azure", baseUrl: "https://r.openai.azure.com" }))).toContain("providers[0].keys: the azure provider needs at least one API key");
    const bedrock = configError(() => one({ type: "bedrock" }));
    expect(bedrock).toContain("providers[0].region: the bedrock provider needs an AWS region such as us-east-1");
    expect(bedrock).toContain("providers[0].credentials: the bedrock provider needs AWS credentials");
    expect(configError(() => one({ type: "bedrock", region: "us-east-1", credentials: [{ accessKeyId: "AKIA" }] }))).toContain(
      "providers[0].credentials[0].secretAccessKey:",
    );
    // fields of another type are unknown keys, not silently ignored
    expect(configError(() => one({ type: "anthropic", keys: ["k"], region: "us-east-1" }))).toContain("providers[0]: unknown key 'region'");
  });

  it("two providers of the same type need distinct ids, and the error says so", () => {
    const msg = configError(() => validateConfig({ providers: [{ type: "anthropic", keys: ["a"] }, { type: "anthropic", keys: ["b"] }] }));
    expect(msg).toContain("providers[1].id: duplicate provider id 'anthropic', also used by providers[0] (the id defaults to the type: give providers of the same type distinct ids)");
    const ok = validateConfig({ providers: [{ type: "anthropic", keys: ["a"] }, { type: "anthropic", id: "anthropic-eu", keys: ["b"] }] });
    expect(ok.providers.map((p) => p.id)).toEqual(["anthropic", "anthropic-eu"]);
    // reported together with schema problems elsewhere
    const both = configError(() => validateConfig({ server: { port: -1 }, providers: [{ type: "ollama" }, { type: "ollama" }] }));
    expect(both).toContain("server.port:");
    expect(both).toContain("providers[1].id: duplicate provider id 'ollama'");
  });

  it("aliases may target an id that defaulted to the type", () => {
    expect(validateConfig({ providers: [{ type: "groq", keys: ["g"] }], aliases: { fast: "groq/llama-3.1-8b-instant" } }).aliases).toEqual({
      fast: "groq/llama-3.1-8b-instant",
    });
  });

  it("several types together, each with its own fields", () => {
    const c = validateConfig({
      providers: [
        { type: "openai", keys: ["sk"] },
        { type: "azure", keys: ["az"], baseUrl: "https://r.openai.azure.com" },
        { type: "bedrock", region: "us-east-1", credentials: [{ accessKeyId: "A", secretAccessKey: "S", sessionToken: "T" }] },
        { type: "mistral", keys: ["m"] },
        { type: "vllm", id: "gpu-box", baseUrl: "http://10.0.0.5:8000/v1" },
      ],
    });
    expect(c.providers.map((p) => `${p.id}:${p.type}:${p.baseUrl}`)).toEqual([
      "openai:openai:https://api.openai.com/v1",
      "azure:azure:https://r.openai.azure.com",
      "bedrock:bedrock:https://bedrock-runtime.us-east-1.amazonaws.com",
      "mistral:mistral:https://api.mistral.ai/v1",
      "gpu-box:vllm:http://10.0.0.5:8000/v1",
    ]);
  });
});

// ---------------------------------------------------------------------------

describe("loadConfig from a file", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "switchyard-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function write(name: string, text: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  }

  const yamlText = `
server:
  host: 0.0.0.0
  port: 9090
auth:
  keys: ["\${GW_KEY}"]
providers:
  - id: openai
    type: openai
    baseUrl: https://api.openai.com/v1
    keys: ["\${OPENAI_KEY_1}", "\${OPENAI_KEY_2}"]
    models: [gpt-4o-mini]
    headers: { OpenAI-Organization: "org-\${ORG}" }
    timeouts: { connectMs: 1000 }
  - id: local
    type: openai-compatible
    baseUrl: http://127.0.0.1:8000/v1
aliases:
  fast: openai/gpt-4o-mini
`;
  const env = { GW_KEY: "gw-key-0123456789abcdef", OPENAI_KEY_1: "sk-one", OPENAI_KEY_2: "sk-two", ORG: "acme" };

  it("reads YAML, interpolates ${VAR} from the env option and fills defaults", async () => {
    const file = await write("good.yaml", yamlText);
    const c = await loadConfig({ file, env });
    expect(c.server).toEqual({ host: "0.0.0.0", port: 9090, maxBodyBytes: 8 * 1024 * 1024, shutdownGraceMs: 30_000, drainDelayMs: 2_000 });
    expect(c.auth).toEqual({ keys: ["gw-key-0123456789abcdef"], allowUnauthenticated: false });
    expect(c.providers).toHaveLength(2);
    expect(keysOf(c.providers[0])).toEqual(["sk-one", "sk-two"]);
    expect(c.providers[0]!.headers).toEqual({ "OpenAI-Organization": "org-acme" });
    expect(c.providers[0]!.timeouts).toEqual({ connectMs: 1000, firstByteMs: 120_000, idleMs: 60_000, totalMs: 600_000 });
    expect(c.providers[1]).toMatchObject({ id: "local", type: "openai-compatible", keys: [] });
    expect(c.aliases).toEqual({ fast: "openai/gpt-4o-mini" });
  });

  it("accepts .yml too", async () => {
    const file = await write("good.yml", yamlText);
    expect((await loadConfig({ file, env })).server.port).toBe(9090);
  });

  it("reads JSON", async () => {
    const file = await write(
      "good.json",
      JSON.stringify({
        server: { port: 7070 },
        providers: [{ id: "openai", type: "openai", baseUrl: "https://api.openai.com/v1", keys: ["${OPENAI_KEY_1}"] }],
      }),
    );
    const c = await loadConfig({ file, env });
    expect(c.server.port).toBe(7070);
    expect(c.server.host).toBe("127.0.0.1");
    expect(keysOf(c.providers[0])).toEqual(["sk-one"]);
  });

  it("does not read the process environment when env is given", async () => {
    const file = await write("onlyenv.yaml", `auth: { keys: ["\${SWITCHYARD_TEST_UNSET_VAR_XYZ}"] }\n`);
    process.env["SWITCHYARD_TEST_UNSET_VAR_XYZ"] = "from-process-env-0123456789";
    try {
      const msg = await configErrorAsync(loadConfig({ file, env: {} }));
      expect(msg).toContain("SWITCHYARD_TEST_UNSET_VAR_XYZ");
    } finally {
      delete process.env["SWITCHYARD_TEST_UNSET_VAR_XYZ"];
    }
  });

  it("names the field and the variable when a ${VAR} is unset", async () => {
    const file = await write("unset.yaml", yamlText);
    const msg = await configErrorAsync(loadConfig({ file, env: { ...env, OPENAI_KEY_2: undefined } }));
    expect(msg).toContain("providers[0].keys[1]: environment variable OPENAI_KEY_2 is not set");
  });

  it("names a nested mapping field for an unset variable", async () => {
    const file = await write("unset2.yaml", yamlText);
    const msg = await configErrorAsync(loadConfig({ file, env: { ...env, ORG: undefined } }));
    expect(msg).toContain("providers[0].headers.OpenAI-Organization: environment variable ORG is not set");
  });

  it("leaves text without ${...} alone and interpolates several variables in one value", async () => {
    const file = await write("multi.yaml", `providers:\n  - id: p\n    type: openai-compatible\n    baseUrl: "http://\${H}:\${P}/v1"\n    keys: ["$NOT_A_VAR", "a\${B}c"]\n`);
    const c = await loadConfig({ file, env: { H: "127.0.0.1", P: "8000", B: "b" } });
    expect(c.providers[0]!.baseUrl).toBe("http://127.0.0.1:8000/v1");
    expect(keysOf(c.providers[0])).toEqual(["$NOT_A_VAR", "abc"]);
  });

  it("validates the file's content, naming the file and the field", async () => {
    const file = await write("bad.yaml", "server:\n  port: abc\n");
    const msg = await configErrorAsync(loadConfig({ file, env: {} }));
    expect(msg).toContain(`invalid configuration (${file})`);
    expect(msg).toContain("server.port:");
  });

  it("rejects invalid YAML syntax, naming the file", async () => {
    const file = await write("syntax.yaml", "server: {port: 1\n  host: [\n");
    const msg = await configErrorAsync(loadConfig({ file, env: {} }));
    expect(msg).toContain(file);
    expect(msg).toContain("not valid YAML");
  });

  it("rejects invalid JSON syntax, naming the file", async () => {
    const file = await write("syntax.json", "{ server: }");
    const msg = await configErrorAsync(loadConfig({ file, env: {} }));
    expect(msg).toContain(file);
    expect(msg).toContain("not valid JSON");
  });

  it("rejects a top level that is not a mapping", async () => {
    for (const [name, text] of [["list.yaml", "- a\n- b\n"], ["scalar.yaml", "42\n"], ["empty.yaml", ""], ["arr.json", "[]"], ["null.json", "null"]] as const) {
      const file = await write(name, text);
      const msg = await configErrorAsync(loadConfig({ file, env: {} }));
      expect(msg, name).toContain(file);
      expect(msg, name).toContain("top level must be a mapping");
    }
  });

  it("names a missing file", async () => {
    const file = path.join(dir, "does-not-exist.yaml");
    const msg = await configErrorAsync(loadConfig({ file, env: {} }));
    expect(msg).toContain(`cannot read config file ${file}`);
  });

  it("lets PORT/HOST env and then the host/port options override the file", async () => {
    const file = await write("override.yaml", "server:\n  host: 10.0.0.1\n  port: 1111\n");
    expect((await loadConfig({ file, env: {} })).server).toMatchObject({ host: "10.0.0.1", port: 1111 });
    expect((await loadConfig({ file, env: { PORT: "2222", HOST: "10.0.0.2" } })).server).toMatchObject({ host: "10.0.0.2", port: 2222 });
    expect((await loadConfig({ file, env: { PORT: "2222", HOST: "10.0.0.2" }, port: 3333, host: "10.0.0.3" })).server).toMatchObject({
      host: "10.0.0.3",
      port: 3333,
    });
  });

  it("adds SWITCHYARD_API_KEYS to a file's configuration", async () => {
    const file = await write("keys.yaml", "auth:\n  keys: [file-key-0123456789ab]\n");
    const c = await loadConfig({ file, env: { SWITCHYARD_API_KEYS: "env-key-0123456789abc" } });
    expect(c.auth.keys).toEqual(["env-key-0123456789abc"]);
  });

  it("the README's configuration example is valid, and its table lists every provider type", async () => {
    const readme = await readFile(path.join(repoRoot, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Endpoints"));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(yaml).toBeDefined();
    const file = await write("readme.yaml", yaml!);
    const vars = ["SWITCHYARD_KEY", "OPENAI_KEY_1", "OPENAI_KEY_2", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MISTRAL_API_KEY", "PGPASSWORD"];
    const c = await loadConfig({ file, env: Object.fromEntries(vars.map((v) => [v, `value-of-${v}-0123456789`])) });
    expect(c.providers.map((p) => p.type)).toEqual(["openai", "anthropic", "gemini", "azure", "bedrock", "mistral", "vllm", "openai-compatible"]);
    for (const t of PROVIDER_TYPES) expect(section, t).toContain(`| \`${t}\` |`);
  });

  it("never puts a secret from a broken file into the error", async () => {
    const canary = "sk-CANARY-0123456789abcdefXYZ";
    const cases: [string, string][] = [
      ["canary-syntax.yaml", `providers:\n  - type: openai\n    keys: ["${canary}"\n    models: [\n`],
      ["canary-syntax2.yaml", `providers:\n  - type: openai\n    keys: [${canary}: x: y]\n`],
      ["canary-syntax.json", `{"providers": [{"type": "openai", "keys": ["${canary}"] x}]}`],
      ["canary-syntax2.json", `{"providers": [{"type": "openai", "keys": [${canary}]}]}`],
      ["canary-schema.yaml", `providers:\n  - type: ${canary}\n    keys: ["${canary}"]\n  - type: openai\n    keys: ${canary}\n  - type: bedrock\n    region: ${canary}\n    credentials: ${canary}\n`],
      ["canary-fields.yaml", `providers:\n  - type: azure\n    keys: ["${canary}"]\n    baseUrl: ${canary}\n    apiVersion: 5\n  - type: openai\n    keys: [${canary}, 7]\n    headers: { Authorization: 5 }\n`],
    ];
    for (const [name, text] of cases) {
      const file = await write(name, text);
      const msg = await configErrorAsync(loadConfig({ file, env: {} }));
      expect(msg, name).toContain(file);
      expect(msg, name).not.toContain("CANARY");
    }
    // an interpolated secret stays out too
    const file = await write("canary-env.yaml", `providers:\n  - type: azure\n    keys: ["\${AZ}"]\n    baseUrl: "\${AZ}"\n`);
    const msg = await configErrorAsync(loadConfig({ file, env: { AZ: canary } }));
    expect(msg).toContain("providers[0].baseUrl:");
    expect(msg).not.toContain("CANARY");
    // and a syntax error still says where
    const where = await configErrorAsync(loadConfig({ file: await write("where.json", `{\n  "a": 1,\n  "b": x\n}`), env: {} }));
    expect(where).toContain("not valid JSON: Unexpected token 'x'");
    const at = await configErrorAsync(loadConfig({ file: await write("where2.json", `{\n  "a": 1,\n  "b": 2 3\n}`), env: {} }));
    expect(at).toMatch(/not valid JSON: .*line 3/);
    const y = await configErrorAsync(loadConfig({ file: await write("where.yaml", `a: 1\nb: [1, 2\nc: 3\n`), env: {} }));
    expect(y).toMatch(/not valid YAML: .*line \d+, column \d+$/);
  });

  // BUG (server/config/load.ts lines 30 and 36): loadConfig spreads `server`
  // and `auth` into fresh objects before validation, so a non-object value in
  // the file is silently replaced by {} (defaults) instead of being reported.
  // validateConfig on the same input does report `server: ... expected object`.
  it("reports a server or auth section of the wrong type instead of using defaults", async () => {
    const file = await write("wrongtype.yaml", "server: 5\nauth: true\n");
    const msg = await configErrorAsync(loadConfig({ file, env: {} }));
    expect(msg).toMatch(/^ {2}server: /m);
    expect(msg).toMatch(/^ {2}auth: /m);
  });
});

// ---------------------------------------------------------------------------

describe("loadConfig from the environment (zero-config)", () => {
  it("configures nothing when nothing is set", async () => {
    const c = await loadConfig({ env: {} });
    expect(c.providers).toEqual([]);
    expect(c.server).toMatchObject({ host: "127.0.0.1", port: 8080 });
    expect(c.auth).toEqual({ keys: [], allowUnauthenticated: false });
  });

  it("OPENAI_API_KEY makes an openai provider", async () => {
    const c = await loadConfig({ env: { OPENAI_API_KEY: "sk-abc" } });
    expect(c.providers).toHaveLength(1);
    expect(c.providers[0]).toMatchObject({ id: "openai", type: "openai", baseUrl: "https://api.openai.com/v1", keys: ["sk-abc"] });
  });

  it("OPENAI_API_KEY with commas makes several keys (spaces and empty items dropped)", async () => {
    expect(keysOf((await loadConfig({ env: { OPENAI_API_KEY: "k1, k2" } })).providers[0])).toEqual(["k1", "k2"]);
    expect(keysOf((await loadConfig({ env: { OPENAI_API_KEY: " k1 ,, k2 , " } })).providers[0])).toEqual(["k1", "k2"]);
    expect((await loadConfig({ env: { OPENAI_API_KEY: " , " } })).providers).toEqual([]);
  });

  it("OPENAI_BASE_URL with a key points the openai provider elsewhere", async () => {
    const c = await loadConfig({ env: { OPENAI_API_KEY: "sk-abc", OPENAI_BASE_URL: "http://127.0.0.1:8000/v1" } });
    expect(c.providers[0]).toMatchObject({ type: "openai", baseUrl: "http://127.0.0.1:8000/v1", keys: ["sk-abc"] });
  });

  it("OPENAI_BASE_URL alone makes an openai-compatible provider with no keys", async () => {
    const c = await loadConfig({ env: { OPENAI_BASE_URL: "http://localhost:11434/v1" } });
    expect(c.providers).toHaveLength(1);
    expect(c.providers[0]).toMatchObject({ id: "openai", type: "openai-compatible", baseUrl: "http://localhost:11434/v1", keys: [] });
  });

  it("an invalid OPENAI_BASE_URL names the field", async () => {
    const msg = await configErrorAsync(loadConfig({ env: { OPENAI_BASE_URL: "not a url" } }));
    expect(msg).toContain("invalid configuration (environment)");
    expect(msg).toContain("providers[0].baseUrl:");
  });

  const only = async (env: NodeJS.ProcessEnv): Promise<ProviderConfig> => {
    const c = await loadConfig({ env });
    expect(c.providers, JSON.stringify(env)).toHaveLength(1);
    return c.providers[0]!;
  };

  it("ANTHROPIC_API_KEY (+ ANTHROPIC_BASE_URL) makes an anthropic provider", async () => {
    expect(await only({ ANTHROPIC_API_KEY: "sk-ant-1" })).toMatchObject({ id: "anthropic", type: "anthropic", baseUrl: "https://api.anthropic.com", keys: ["sk-ant-1"] });
    expect(await only({ ANTHROPIC_API_KEY: "a1,a2", ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" })).toMatchObject({ baseUrl: "http://127.0.0.1:9/", keys: ["a1", "a2"] });
    expect((await loadConfig({ env: { ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" } })).providers).toEqual([]);
  });

  it("GEMINI_API_KEY, or else GOOGLE_API_KEY, makes a gemini provider", async () => {
    expect(await only({ GEMINI_API_KEY: "g1" })).toMatchObject({ id: "gemini", type: "gemini", baseUrl: "https://generativelanguage.googleapis.com/v1beta", keys: ["g1"] });
    expect(await only({ GOOGLE_API_KEY: "g2, g3" })).toMatchObject({ type: "gemini", keys: ["g2", "g3"] });
    expect(await only({ GEMINI_API_KEY: "g1", GOOGLE_API_KEY: "g2" })).toMatchObject({ keys: ["g1"] });
    expect(await only({ GEMINI_API_KEY: "g1", GEMINI_BASE_URL: "http://127.0.0.1:9/v1beta" })).toMatchObject({ baseUrl: "http://127.0.0.1:9/v1beta" });
  });

  it("AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT (+ AZURE_OPENAI_API_VERSION or OPENAI_API_VERSION) make an azure provider", async () => {
    const base = { AZURE_OPENAI_API_KEY: "az1,az2", AZURE_OPENAI_ENDPOINT: "https://r.openai.azure.com" };
    expect(await only(base)).toMatchObject({ id: "azure", type: "azure", baseUrl: "https://r.openai.azure.com", keys: ["az1", "az2"], apiVersion: "2024-10-21" });
    expect(await only({ ...base, OPENAI_API_VERSION: "2024-06-01" })).toMatchObject({ apiVersion: "2024-06-01" });
    expect(await only({ ...base, OPENAI_API_VERSION: "2024-06-01", AZURE_OPENAI_API_VERSION: "2025-01-01-preview" })).toMatchObject({ apiVersion: "2025-01-01-preview" });
    // half a configuration is reported, naming the missing variable
    const noEndpoint = await configErrorAsync(loadConfig({ env: { AZURE_OPENAI_API_KEY: "az-secret-1" } }));
    expect(noEndpoint).toContain("providers[0].baseUrl: the azure provider needs its resource endpoint");
    expect(noEndpoint).toContain("AZURE_OPENAI_ENDPOINT");
    expect(noEndpoint).not.toContain("az-secret-1");
    const noKey = await configErrorAsync(loadConfig({ env: { AZURE_OPENAI_ENDPOINT: "https://r.openai.azure.com" } }));
    expect(noKey).toContain("providers[0].keys: the azure provider needs at least one API key");
    const badUrl = await configErrorAsync(loadConfig({ env: { ...base, AZURE_OPENAI_ENDPOINT: "r.openai.azure.com" } }));
    expect(badUrl).toContain("providers[0].baseUrl: Invalid URL (from AZURE_OPENAI_ENDPOINT)");
  });

  it("AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) + AWS_REGION or AWS_DEFAULT_REGION make a bedrock provider", async () => {
    const creds = { AWS_ACCESS_KEY_ID: "AKIA1", AWS_SECRET_ACCESS_KEY: "secret1" };
    expect(await only({ ...creds, AWS_REGION: "us-west-2" })).toMatchObject({
      id: "bedrock",
      type: "bedrock",
      region: "us-west-2",
      baseUrl: "https://bedrock-runtime.us-west-2.amazonaws.com",
      credentials: [{ accessKeyId: "AKIA1", secretAccessKey: "secret1" }],
    });
    expect(await only({ ...creds, AWS_DEFAULT_REGION: "eu-central-1" })).toMatchObject({ region: "eu-central-1" });
    expect(await only({ ...creds, AWS_REGION: "us-east-1", AWS_DEFAULT_REGION: "eu-central-1" })).toMatchObject({ region: "us-east-1" });
    expect(await only({ ...creds, AWS_REGION: "us-east-1", AWS_SESSION_TOKEN: "tok" })).toMatchObject({
      credentials: [{ accessKeyId: "AKIA1", secretAccessKey: "secret1", sessionToken: "tok" }],
    });
    // AWS credentials often serve other tools: without a region (or a secret) no bedrock provider
    expect((await loadConfig({ env: creds })).providers).toEqual([]);
    expect((await loadConfig({ env: { AWS_ACCESS_KEY_ID: "AKIA1", AWS_REGION: "us-east-1" } })).providers).toEqual([]);
    expect(await configErrorAsync(loadConfig({ env: { ...creds, AWS_REGION: "moon" } }))).toContain(
      "providers[0].region: must be an AWS region such as us-east-1 (from AWS_REGION)",
    );
  });

  it("each preset from <NAME>_API_KEY and <NAME>_BASE_URL", async () => {
    for (const [type, preset] of Object.entries(OPENAI_PRESETS)) {
      const urlVar = `${type.toUpperCase()}_BASE_URL`;
      expect(await only({ [preset.keyEnv]: "k1, k2" }), type).toMatchObject({ id: type, type, baseUrl: preset.baseUrl, keys: ["k1", "k2"] });
      expect(await only({ [preset.keyEnv]: "k1", [urlVar]: "http://127.0.0.1:9/v1" }), type).toMatchObject({ baseUrl: "http://127.0.0.1:9/v1" });
      if (preset.local) {
        expect(await only({ [urlVar]: "http://10.0.0.2:9/v1" }), type).toMatchObject({ type, baseUrl: "http://10.0.0.2:9/v1", keys: [] });
      } else {
        const msg = await configErrorAsync(loadConfig({ env: { [urlVar]: "http://127.0.0.1:9/v1" } }));
        expect(msg, type).toContain(`providers[0].keys: the ${type} provider needs at least one API key (keys, or ${preset.keyEnv} in zero-config)`);
      }
    }
    expect(Object.keys(OPENAI_PRESETS).map((t) => OPENAI_PRESETS[t as OpenAIPreset].keyEnv)).toContain("MISTRAL_API_KEY");
    expect(await only({ OLLAMA_BASE_URL: "http://127.0.0.1:11434/v1" })).toMatchObject({ id: "ollama", keys: [] });
  });

  it("every variable at once: one provider of each type, in a fixed order", async () => {
    const env: NodeJS.ProcessEnv = {
      OPENAI_API_KEY: "o",
      ANTHROPIC_API_KEY: "a",
      GEMINI_API_KEY: "g",
      AZURE_OPENAI_API_KEY: "z",
      AZURE_OPENAI_ENDPOINT: "https://r.openai.azure.com",
      AWS_ACCESS_KEY_ID: "A",
      AWS_SECRET_ACCESS_KEY: "S",
      AWS_REGION: "us-east-1",
    };
    for (const preset of Object.values(OPENAI_PRESETS)) env[preset.keyEnv] = "p";
    const c = await loadConfig({ env });
    expect(c.providers.map((p) => p.id)).toEqual(["openai", "anthropic", "gemini", "azure", "bedrock", ...Object.keys(OPENAI_PRESETS)]);
  });

  it("an invalid variable is named in the error, its value is not", async () => {
    const msg = await configErrorAsync(loadConfig({ env: { MISTRAL_API_KEY: "mk-secret-9", MISTRAL_BASE_URL: "nope" } }));
    expect(msg).toContain("providers[0].baseUrl: Invalid URL (from MISTRAL_BASE_URL)");
    expect(msg).not.toContain("mk-secret-9");
  });

  it("PORT and HOST set the listen address; the host/port options win", async () => {
    expect((await loadConfig({ env: { PORT: "9999", HOST: "0.0.0.0" } })).server).toMatchObject({ host: "0.0.0.0", port: 9999 });
    expect((await loadConfig({ env: { PORT: "9999", HOST: "0.0.0.0" }, port: 0, host: "::1" })).server).toMatchObject({ host: "::1", port: 0 });
    expect((await loadConfig({ env: {}, port: 1234 })).server.port).toBe(1234);
    expect((await loadConfig({ env: { PORT: "" } })).server.port).toBe(8080);
  });

  it("an invalid PORT is an error naming PORT", async () => {
    for (const PORT of ["abc", "70000", "-1", "1.5"]) {
      const msg = await configErrorAsync(loadConfig({ env: { PORT } }));
      expect(msg, PORT).toContain("PORT:");
    }
  });

  it("an invalid port option is an error naming server.port", async () => {
    const msg = await configErrorAsync(loadConfig({ env: {}, port: 70_000 }));
    expect(msg).toContain("server.port:");
  });

  it("SWITCHYARD_API_KEYS sets the gateway keys (comma-separated)", async () => {
    const c = await loadConfig({ env: { SWITCHYARD_API_KEYS: "key-aaaaaaaaaaaaaaaa, key-bbbbbbbbbbbbbbbb" } });
    expect(c.auth.keys).toEqual(["key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb"]);
    const msg = await configErrorAsync(loadConfig({ env: { SWITCHYARD_API_KEYS: "short" } }));
    expect(msg).toContain("auth.keys[0]:");
  });

  it("SWITCHYARD_ALLOW_UNAUTHENTICATED=1 (and only 1) allows serving openly", async () => {
    expect((await loadConfig({ env: { SWITCHYARD_ALLOW_UNAUTHENTICATED: "1" } })).auth.allowUnauthenticated).toBe(true);
    expect((await loadConfig({ env: { SWITCHYARD_ALLOW_UNAUTHENTICATED: "0" } })).auth.allowUnauthenticated).toBe(false);
    expect((await loadConfig({ env: { SWITCHYARD_ALLOW_UNAUTHENTICATED: "" } })).auth.allowUnauthenticated).toBe(false);
  });
});

// ---------------------------------------------------------------------------

describe("checkExposure", () => {
  const cfg = (host: string, auth: { keys?: string[]; allowUnauthenticated?: boolean } = {}): Config =>
    validateConfig({ server: { host }, auth });

  it("refuses a non-loopback address without keys, naming SWITCHYARD_API_KEYS", () => {
    for (const host of ["0.0.0.0", "::", "10.1.2.3", "192.168.0.10", "example.com"]) {
      const msg = configError(() => checkExposure(cfg(host)));
      expect(msg, host).toContain("SWITCHYARD_API_KEYS");
      expect(msg, host).toContain("SWITCHYARD_ALLOW_UNAUTHENTICATED=1");
      expect(msg, host).toContain(host);
    }
  });

  it("allows loopback without keys", () => {
    for (const host of ["127.0.0.1", "127.0.0.2", "::1", "localhost"]) {
      expect(() => checkExposure(cfg(host)), host).not.toThrow();
    }
  });

  it("allows any address with gateway keys", () => {
    expect(() => checkExposure(cfg("0.0.0.0", { keys: ["gw-key-0123456789abcdef"] }))).not.toThrow();
  });

  it("allows any address with allowUnauthenticated", () => {
    expect(() => checkExposure(cfg("0.0.0.0", { allowUnauthenticated: true }))).not.toThrow();
    expect(() => checkExposure(cfg("::", { allowUnauthenticated: true }))).not.toThrow();
  });
});

// ---------------------------------------------------------------------------

describe("the CLI as a process", () => {
  const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { ...extra };
    if (process.env["PATH"] !== undefined) env["PATH"] = process.env["PATH"];
    if (process.env["HOME"] !== undefined) env["HOME"] = process.env["HOME"];
    return env;
  };

  interface Run {
    code: number | null;
    signal: NodeJS.Signals | null;
    stdout: string;
    stderr: string;
  }

  function runCli(args: string[], env = cleanEnv(), timeoutMs = 20_000): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ["server/main.ts", ...args], { cwd: repoRoot, env, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
      child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`CLI did not exit within ${timeoutMs} ms; stderr: ${stderr}`));
      }, timeoutMs);
      child.on("error", reject);
      child.on("close", (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "switchyard-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("--help prints usage and exits 0", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: node server/main.ts");
    expect(r.stdout).toContain("--config FILE");
    expect(r.stdout).toContain("SWITCHYARD_API_KEYS");
    expect(r.stderr).toBe("");
    expect((await runCli(["-h"])).stdout).toContain("Usage:");
  });

  it("--config with a bad file exits 1 and names the field on stderr", async () => {
    const file = path.join(dir, "bad.yaml");
    await writeFile(file, "server:\n  port: abc\nproviders:\n  - id: p\n    type: openai-compatible\n    baseUrl: http://127.0.0.1:1/v1\n    bogus: 1\n");
    const r = await runCli(["--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("switchyard: invalid configuration");
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain("server.port:");
    expect(r.stderr).toContain("providers[0]: unknown key 'bogus'");
  });

  it("--config with a missing file exits 1 naming it", async () => {
    const file = path.join(dir, "missing.yaml");
    const r = await runCli(["--config", file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read config file ${file}`);
  });

  it("a bad --port exits 1", async () => {
    const r = await runCli(["--port", "abc"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("--port: 'abc' is not a port number");
  });

  it("--host 0.0.0.0 without keys exits 1 with the exposure message", async () => {
    const r = await runCli(["--host", "0.0.0.0", "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("refusing to listen on 0.0.0.0");
    expect(r.stderr).toContain("SWITCHYARD_API_KEYS");
  });

  interface Started {
    child: ChildProcess;
    url: string;
    listening: Record<string, unknown>;
    logs: () => string;
    exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  }

  /** Starts the CLI on --port 0 and waits for its "switchyard listening" log line (logs go to stdout). */
  async function startCli(): Promise<Started> {
    const child = spawn(process.execPath, ["server/main.ts", "--port", "0"], { cwd: repoRoot, env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    children.push(child);
    let logs = "";
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("close", (code, signal) => resolve({ code, signal })),
    );
    const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "switchyard listening" line; stderr: ${logs}`)), 20_000);
      void exited.then(() => reject(new Error(`exited before listening; stderr: ${logs}`)));
      child.stdout!.setEncoding("utf8").on("data", (d: string) => {
        logs += d;
        for (const line of logs.split("\n").slice(0, -1)) {
          const entry = JSON.parse(line) as Record<string, unknown>;
          if (entry["msg"] === "switchyard listening") {
            clearTimeout(timer);
            resolve(entry);
          }
        }
      });
    });
    return { child, url: listening["url"] as string, listening, logs: () => logs, exited };
  }

  /** A GET on a connection that is closed afterwards (no keep-alive). */
  function getOnce(url: string): Promise<{ status: number; body: unknown }> {
    return new Promise((resolve, reject) => {
      http
        .get(url, { agent: false }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (d: string) => (body += d));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) }));
        })
        .on("error", reject);
    });
  }

  function exitWithin(exited: Started["exited"], ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null } | "still running"> {
    return Promise.race([exited, new Promise<"still running">((r) => setTimeout(() => r("still running"), ms))]);
  }

  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });

  it("starts on --port 0, logs JSON lines, serves /healthz and /readyz, and exits 0 on SIGTERM", async () => {
    const { child, url, listening, logs, exited } = await startCli();
    const lines = logs().split("\n").filter((l) => l.trim());
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(msgs).toContain("no providers configured: set OPENAI_API_KEY or OPENAI_BASE_URL, or pass --config");
    expect(msgs.some((m) => m.startsWith("no keys exist (no virtual key, no SWITCHYARD_ADMIN_KEY, no SWITCHYARD_API_KEYS): inference is served without a key"))).toBe(true);
    expect(listening["level"]).toBe("info");
    expect(listening["providers"]).toEqual([]);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(Number(new URL(url).port)).toBeGreaterThan(0);

    expect(await getOnce(`${url}/healthz`)).toEqual({ status: 200, body: { status: "ok" } });
    expect(await getOnce(`${url}/readyz`)).toEqual({ status: 200, body: { status: "ready" } });

    child.kill("SIGTERM");
    expect(await exitWithin(exited, 10_000)).toEqual({ code: 0, signal: null });
    expect(logs()).toContain('"msg":"draining"');
    expect(logs()).toContain('"signal":"SIGTERM"');
  });

  // Regression: an idle keep-alive socket (what fetch/undici and the OpenAI
  // SDKs leave open) must not hold the drain for the whole shutdownGraceMs
  // (30 s by default). Fixed in bd6d3e6 (h1.emit("listening") in one-port.ts).
  it("exits promptly on SIGTERM when an idle keep-alive connection is open", async () => {
    const { child, url, exited } = await startCli();
    const res = await fetch(`${url}/healthz`); // undici keeps the connection alive
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
    child.kill("SIGTERM");
    expect(await exitWithin(exited, 5_000)).toEqual({ code: 0, signal: null });
  });
});
