/**
 * Fuzz: the configuration loader given broken files and environments:
 * configurations with wrong types, unknown keys at any depth and `${ENV}`
 * references to variables that are not set, written as YAML or JSON and then
 * broken (cut, odd characters, tabs, anchors, tags, duplicate lines), deep
 * nesting, self-referencing YAML aliases, `__proto__` keys, any bytes; odd
 * values of the environment variables the loader reads (zero-config too).
 * Every case ends in a valid, frozen configuration or a ConfigError whose
 * message names the file, the field or the variable; never another exception.
 *
 * Long mode: FUZZ_RUNS=<n> runs n cases per property (see test/support/fuzz.ts),
 * e.g. `FUZZ_RUNS=100000 npx vitest run test/fuzz-config.test.ts`.
 */
import fc from "fast-check";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { stringify as toYaml } from "yaml";
import { ConfigError, loadConfig, validateConfig } from "../server/config/load.ts";
import type { Config } from "../server/config/schema.ts";
import { applyMutation, count, early, headerValue, jsonish, params, report, timeoutFor, weirdKey, weirdString, type Path } from "./support/fuzz.ts";

const dir = mkdtempSync(join(tmpdir(), "sy-fuzz-config-"));
afterAll(() => {
  report("fuzz-config");
  console.log(`  outcomes: ${outcomes.valid} valid configurations, ${outcomes.refused} ConfigErrors`);
  rmSync(dir, { recursive: true, force: true });
});
// The YAML parser warns about unknown tags on stderr; thousands of those say nothing here.
beforeEach(() => void vi.spyOn(process, "emitWarning").mockImplementation(() => {}));
afterEach(() => vi.restoreAllMocks());

const outcomes = { valid: 0, refused: 0 };

/** Loads, and checks the outcome: a valid configuration or a ConfigError naming where. */
async function check(name: string, load: () => Promise<Config> | Config, where: string | undefined, what: () => string): Promise<void> {
  count(name);
  let config: Config;
  try {
    config = await load();
  } catch (err) {
    const problem = !(err instanceof ConfigError)
      ? `threw ${(err as Error)?.name}: ${String((err as Error)?.stack ?? err)}`
      : !namesWhere(err.message, where) ? `a ConfigError that names nothing: ${err.message}` : undefined;
    if (problem !== undefined) {
      early(name, `${problem}\n  input: ${what()}`);
      throw new Error(`${problem}\n  input: ${what()}`);
    }
    outcomes.refused++;
    return;
  }
  outcomes.valid++;
  // A valid configuration is frozen all the way down, serialises, and validates again as input.
  expect(Object.isFrozen(config)).toBe(true);
  expect(Object.isFrozen(config.server)).toBe(true);
  for (const p of config.providers) expect(typeof p.id).toBe("string");
  const again = validateConfig(JSON.parse(JSON.stringify(config)) as Record<string, unknown>, "again");
  expect(again.providers.map((p) => p.id)).toEqual(config.providers.map((p) => p.id));
}

/** The message names the file, or a field (`providers[0].keys: ...`), or a variable (`PORT: ...`). */
function namesWhere(message: string, file: string | undefined): boolean {
  if (file !== undefined && message.includes(file)) return true;
  return /^\s*(\(top level\)|[A-Za-z_$][^\s:]*):\s/m.test(message);
}

// ---------------------------------------------------------------------------
// Configurations

const url = fc.constantFrom("http://127.0.0.1:8000/v1", "https://api.example.com/v1", "https://x.openai.azure.com", "ftp://nope", "not a url", "");
const keyList = fc.array(fc.oneof(fc.stringMatching(/^sk-[a-zA-Z0-9]{4,12}$/), fc.constantFrom("${SET_VAR}", "${MISSING_VAR}", "sk-${SET_VAR}-x")), { maxLength: 2 });
const provider = fc.oneof(
  fc.record({ type: fc.constant("openai"), keys: keyList, baseUrl: url, models: fc.array(fc.constantFrom("gpt-4o", "gpt-4o-mini"), { maxLength: 2 }) }, { requiredKeys: ["type", "keys"] }),
  fc.record({ type: fc.constant("openai-compatible"), id: fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), baseUrl: url }, { requiredKeys: ["type", "baseUrl"] }),
  fc.record({ type: fc.constant("anthropic"), keys: keyList, defaultMaxTokens: fc.integer({ min: -1, max: 10_000 }) }, { requiredKeys: ["type", "keys"] }),
  fc.record({ type: fc.constant("gemini"), keys: keyList }),
  fc.record({ type: fc.constant("azure"), keys: keyList, baseUrl: url, apiVersion: fc.constantFrom("2024-10-21", ""), deployments: fc.dictionary(fc.string({ maxLength: 6 }), fc.string({ maxLength: 6 }), { maxKeys: 2 }) }, { requiredKeys: ["type", "keys", "baseUrl"] }),
  fc.record({ type: fc.constant("bedrock"), region: fc.constantFrom("us-east-1", "eu-west-3", "mars", "${SET_VAR}"), credentials: fc.array(fc.record({ accessKeyId: fc.constantFrom("AKIDEXAMPLE", "${MISSING_VAR}"), secretAccessKey: fc.constant("secret") }), { maxLength: 2 }) }),
  fc.record({ type: fc.constantFrom("groq", "ollama", "vllm", "deepseek", "nope"), keys: keyList }),
);

const configObject: fc.Arbitrary<Record<string, unknown>> = fc.record({
  server: fc.record({ host: fc.constantFrom("127.0.0.1", "0.0.0.0", "::1", "${SET_VAR}"), port: fc.oneof(fc.integer({ min: 0, max: 65_535 }), fc.constantFrom(-1, 65_536, 1.5)), maxBodyBytes: fc.integer({ min: 1, max: 1 << 26 }) }),
  auth: fc.record({ keys: keyList, allowUnauthenticated: fc.boolean() }),
  logLevel: fc.constantFrom("debug", "info", "warn", "error", "loud"),
  dataDir: fc.constantFrom(dir, "${SET_VAR}", "/nonexistent/x"),
  providers: fc.array(provider, { maxLength: 3 }),
  aliases: fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.constantFrom("openai/gpt-4o", "nope/x", "x"), { maxKeys: 2 }),
  routing: fc.record({ retries: fc.integer({ min: -1, max: 5 }) }),
  cache: fc.record({ mode: fc.constantFrom("off", "exact", "semantic", "both", "on") }),
}, { requiredKeys: [] });

/** Every path in a value, for mutations at any depth. */
function pathsOf(v: unknown, at: Path = [], out: Path[] = []): Path[] {
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      const p = [...at, Array.isArray(v) ? Number(k) : k];
      out.push(p);
      pathsOf(x, p, out);
    }
  }
  return out;
}

const replacement = fc.oneof(
  { weight: 3, arbitrary: jsonish },
  { weight: 2, arbitrary: fc.constantFrom("${MISSING_VAR}", "${SET_VAR}", "${}", "${1X}", "$", "$${SET_VAR}", "${SET_VAR", "${EMPTY_VAR}", null, [], {}, true, 0, -1, 1e308, "") },
  { weight: 1, arbitrary: weirdString },
);

/** A configuration with wrong types, unknown keys and env references put in at any depth. */
const mutatedConfig = fc.tuple(configObject, fc.array(fc.tuple(fc.nat(), fc.constantFrom("set", "delete", "unknown-key"), replacement, weirdKey), { maxLength: 4 })).map(([c, edits]) => {
  const o = JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
  for (const [n, op, value, key] of edits) {
    const paths = pathsOf(o);
    const at = paths.length === 0 ? [key] : paths[n % paths.length]!;
    // A copy: generated values may be shared constants, and a later edit may write inside this one.
    const copy = value === undefined ? undefined : JSON.parse(JSON.stringify(value));
    if (op === "unknown-key") applyMutation(o, { path: [...at.slice(0, -1), key], op: "set", value: copy });
    else applyMutation(o, { path: at, op: op as "set" | "delete", value: copy });
  }
  return o;
});

/** Breakage of the text: a cut, odd characters, a duplicated or dropped line. */
const textEdit = fc.oneof(
  fc.record({ op: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("insert" as const), at: fc.nat(), what: fc.constantFrom(":", "\t", "{", "}", "[", "]", "&a ", "*a", "*nope", "!!binary ", "!!set ", "!!str ", "!foo ", "<<: *a\n", '"', "'", "%YAML 1.1\n", "@", "`", "\n  - ", "\n- ", "\u0000", "\ufeff", "---\n", "...\n", "? ", "|\n", ">-\n", "#", ",", "\\", "\r") }),
  fc.record({ op: fc.constant("duplicate-line" as const), at: fc.nat() }),
  fc.record({ op: fc.constant("drop-line" as const), at: fc.nat() }),
);

function breakText(text: string, edits: { op: string; at: number; what?: string }[]): string {
  let t = text;
  for (const e of edits) {
    const at = t.length === 0 ? 0 : e.at % t.length;
    if (e.op === "cut") t = t.slice(0, at);
    else if (e.op === "insert") t = t.slice(0, at) + e.what + t.slice(at);
    else {
      const lines = t.split("\n");
      const i = lines.length === 0 ? 0 : e.at % lines.length;
      if (e.op === "duplicate-line") lines.splice(i, 0, lines[i] ?? "");
      else lines.splice(i, 1);
      t = lines.join("\n");
    }
  }
  return t;
}

/** Texts no serialiser writes: aliases that refer to themselves, deep nesting, tags, `__proto__`, numbers out of range. */
const oddTexts = fc.constantFrom(
  "providers: &a\n  - *a\n",
  "server: &s\n  host: x\n  self: *s\n",
  "auth: &x { keys: [*x] }\n",
  "__proto__:\n  server: { port: 1 }\n",
  "server:\n  __proto__: { port: 99999 }\n",
  '{"__proto__": {"logLevel": "debug"}}',
  '{"server": {"constructor": {"prototype": {"x": 1}}}}',
  "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
  "x: &x { host: a }\nserver:\n  <<: *x\n",
  `a: ${"[".repeat(3000)}${"]".repeat(3000)}\n`,
  `{"a": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`,
  `{"server": ${'{"a":'.repeat(200)}1${"}".repeat(200)}}`,
  "server:\n  port: 123456789012345678901234567890\n",
  "server:\n  port: .inf\n",
  "server:\n  port: .nan\n",
  '{"server": {"port": 1e400}}',
  "server:\n  host: 2001-12-14\n",
  "dataDir: !!binary aGVsbG8=\n",
  "providers: !!set { a, b }\n",
  "providers: !!omap [ a: 1 ]\n",
  "? [a, b]\n: c\n",
  "server: !foo {}\n",
  "server: {}\nserver: {}\n",
  "---\nserver: {}\n---\nserver: {}\n",
  "",
  "\ufeffserver: {}\n",
  "null\n",
  "[]\n",
  "42\n",
);

const fileName = fc.constantFrom("c.yaml", "c.yml", "c.json", "c.txt", "c.YAML");
const env: Record<string, string> = { SET_VAR: "from-env", EMPTY_VAR: "" };
let n = 0;
function write(name: string, content: string | Uint8Array): string {
  // A fresh name each time: nothing may be cached by path.
  const file = join(dir, `${n++}-${name}`);
  writeFileSync(file, content);
  return file;
}

describe("config files", () => {
  it("configurations with wrong types, unknown keys and missing variables, as YAML or JSON, broken or not", async () => {
    const arb = fc.tuple(mutatedConfig, fileName, fc.array(textEdit, { maxLength: 3 }), fc.boolean());
    await fc.assert(fc.asyncProperty(arb, async ([config, name, edits, pretty]) => {
      const json = name.endsWith(".json");
      const text = breakText(json ? JSON.stringify(config, null, pretty ? 2 : undefined) : toYaml(config), edits);
      const file = write(name, text);
      await check("mutated config file", () => loadConfig({ file, env }), file, () => `${name}: ${JSON.stringify(text.slice(0, 400))}`);
    }), params(500, 5));
    // Most are refused, but the property must not be vacuous.
    expect(outcomes.valid).toBeGreaterThan(0);
  }, timeoutFor(500, 5));

  it("texts no serialiser writes: self-referencing aliases, deep nesting, tags, __proto__, any bytes", async () => {
    const arb = fc.tuple(fc.oneof(oddTexts.map((t) => new TextEncoder().encode(t)), fc.uint8Array({ maxLength: 200 })), fileName);
    await fc.assert(fc.asyncProperty(arb, async ([bytes, name]) => {
      const file = write(name, bytes);
      await check("odd config file", () => loadConfig({ file, env }), file, () => `${name}: ${JSON.stringify(Buffer.from(bytes).toString("utf8").slice(0, 300))}`);
    }), params(200, 5));
  }, timeoutFor(200, 5));

  it("a file that cannot be read", async () => {
    for (const file of [join(dir, "missing.yaml"), dir, join(dir, "missing", "x.json")]) {
      await check("unreadable config file", () => loadConfig({ file, env }), file, () => file);
    }
  });
});

const ENV_NAMES = [
  "PORT", "HOST", "SWITCHYARD_API_KEYS", "SWITCHYARD_ALLOW_UNAUTHENTICATED", "SWITCHYARD_CACHE", "SWITCHYARD_ADMIN_KEY", "SWITCHYARD_REDIS_URL",
  "SWITCHYARD_DATABASE_URL", "SWITCHYARD_DATA_DIR", "LOG_LEVEL", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SERVICE_NAME",
  "OTEL_EXPORTER_OTLP_HEADERS", "OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY",
  "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT", "AZURE_OPENAI_API_VERSION", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
  "BEDROCK_BASE_URL", "GROQ_API_KEY", "OLLAMA_BASE_URL", "VLLM_BASE_URL",
];
const envValue = fc.oneof(
  headerValue,
  fc.constantFrom("1", "0", "", "65536", "-1", "8080", "http://127.0.0.1:1/v1", "https://x.example.com", "redis://127.0.0.1:1", "a=%zz", "k=v,%=x,=", "a=%E0%A4%A", "debug", "exact", "us-east-1", "AKID,", ",,", "${SET_VAR}"),
  weirdString.map((s) => s.replace(/\u0000/g, "")),
);
const envs = fc.dictionary(fc.constantFrom(...ENV_NAMES), envValue, { maxKeys: 6 });

describe("the environment", () => {
  it("odd values of the variables the loader reads, with a file and without (zero-config)", async () => {
    const good = write("good.yaml", toYaml({ providers: [{ type: "openai", keys: ["sk-x"] }], dataDir: dir }));
    await fc.assert(fc.asyncProperty(envs, fc.boolean(), fc.option(fc.integer({ min: -5, max: 70_000 }), { nil: undefined }), async (e, withFile, port) => {
      const options = { env: { ...e, SWITCHYARD_DATA_DIR: e["SWITCHYARD_DATA_DIR"] ?? dir }, ...(withFile ? { file: good } : {}), ...(port === undefined ? {} : { port }) };
      await check(withFile ? "environment with a file" : "zero-config environment", () => loadConfig(options), withFile ? good : undefined, () => JSON.stringify(options));
    }), params(400, 5));
  }, timeoutFor(400, 5));

  it("any value handed to validateConfig", async () => {
    await fc.assert(fc.asyncProperty(fc.oneof(jsonish, mutatedConfig), async (v) => {
      await check("validateConfig", () => validateConfig(v as Record<string, unknown>, "fuzz"), "fuzz", () => JSON.stringify(v)?.slice(0, 400) ?? String(v));
    }), params(300, 5));
  }, timeoutFor(300, 5));
});

describe("found by fuzzing", () => {
  const load = async (name: string, text: string, e: NodeJS.ProcessEnv = env) => loadConfig({ file: write(name, text), env: e });
  const message = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error("expected a ConfigError");
  };

  it("a YAML alias inside its own anchor is a ConfigError naming the field (was a RangeError: stack overflow)", async () => {
    expect(await message(load("c.yaml", "providers: &a\n  - *a\n"))).toMatch(/providers\[0\]: refers to itself/);
    expect(await message(load("c.yaml", "server: &s\n  host: x\n  self: *s\n"))).toMatch(/server\.self: refers to itself/);
    // An alias used twice, not inside itself, is fine.
    const c = await load("c.yaml", `k: &k [sk-a]\nauth: { keys: *k }\nproviders: [{ type: openai, keys: *k }]\ndataDir: ${dir}\n`).catch((err: Error) => err.message);
    expect(String(c)).toMatch(/unknown key 'k'/);
  });

  it("nesting deeper than any configuration is a ConfigError (was a RangeError: stack overflow)", async () => {
    expect(await message(load("c.json", `{"a": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`))).toMatch(/nested more than 64 levels/);
  });

  it("a __proto__ key is reported as an unknown key, never read as fields (it set server.port through the prototype)", async () => {
    expect(await message(load("c.yaml", "__proto__:\n  server: { port: 1 }\nproviders: []\n"))).toMatch(/\(top level\): unknown key '__proto__'/);
    expect(await message(load("c.yaml", "server:\n  __proto__: { port: 99999 }\n"))).toMatch(/server: unknown key '__proto__'/);
    expect(await message(load("c.json", '{"__proto__": {"logLevel": "loud"}}'))).toMatch(/unknown key '__proto__'/);
  });

  it("a missing variable under a key with nothing readable in it still names the file", async () => {
    const file = write("c.yaml", '"\\r\\n": ${MISSING_VAR}\n');
    const m = await message(loadConfig({ file, env }));
    expect(m).toContain(`config file ${file}: `);
    expect(m).toContain("environment variable MISSING_VAR is not set");
  });

  it("validateConfig given something that is not a mapping says so (was a TypeError reading null)", () => {
    for (const v of [null, [], "x", 42]) {
      expect(() => validateConfig(v as unknown as Record<string, unknown>, "input")).toThrow(/\(top level\): .*expected object/);
    }
  });

  it("OTEL_EXPORTER_OTLP_HEADERS that is not valid percent-encoding is a ConfigError naming the header, not its value (was a URIError)", async () => {
    const m = await message(load("c.yaml", `providers: []\ndataDir: ${dir}\n`, { OTEL_EXPORTER_OTLP_HEADERS: "api-key=s3cr%zz" }));
    expect(m).toMatch(/OTEL_EXPORTER_OTLP_HEADERS: the value of 'api-key' is not valid percent-encoding/);
    expect(m).not.toContain("s3cr");
  });
});
