import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import type { z } from "zod";
import { configSchema, OPENAI_PRESETS, type Config, type ConfigInput, type OpenAIPreset, type ProviderConfig } from "./schema.ts";

/** A configuration problem; the message names the file and the bad field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

export interface LoadOptions {
  /** Path of a .yaml, .yml or .json file; without it, configuration comes from the environment. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Command-line overrides, which win over the file and the environment. */
  host?: string | undefined;
  port?: number | undefined;
  logLevel?: string | undefined;
}

/** Reads, interpolates, validates and defaults the configuration. */
export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  let input: Record<string, unknown>;
  let origins: Origins = {};
  if (options.file !== undefined) {
    input = await readConfigFile(options.file, env);
  } else {
    ({ input, origins } = configFromEnv(env));
  }
  // Overrides apply only to well-formed sections; a wrong-typed one is left for validation to report.
  const server = section(input, "server");
  if (server !== undefined) {
    if (env["HOST"]) server["host"] = env["HOST"];
    if (env["PORT"]) server["port"] = parsePort(env["PORT"], "PORT");
    if (options.host !== undefined) server["host"] = options.host;
    if (options.port !== undefined) server["port"] = options.port;
  }
  const auth = section(input, "auth");
  if (auth !== undefined) {
    if (env["SWITCHYARD_API_KEYS"]) auth["keys"] = splitList(env["SWITCHYARD_API_KEYS"]);
    if (env["SWITCHYARD_ALLOW_UNAUTHENTICATED"] === "1") auth["allowUnauthenticated"] = true;
  }
  const cache = section(input, "cache");
  if (cache !== undefined && env["SWITCHYARD_CACHE"]) cache["mode"] = env["SWITCHYARD_CACHE"];
  const admin = section(input, "admin");
  if (admin !== undefined && env["SWITCHYARD_ADMIN_KEY"]) admin["key"] = env["SWITCHYARD_ADMIN_KEY"];
  const governance = section(input, "governance");
  if (governance !== undefined && env["SWITCHYARD_REDIS_URL"]) {
    governance["store"] = "redis";
    const redis = section(governance, "redis");
    if (redis !== undefined) redis["url"] = env["SWITCHYARD_REDIS_URL"];
  }
  const database = section(input, "database");
  if (database !== undefined && env["SWITCHYARD_DATABASE_URL"]) database["url"] = env["SWITCHYARD_DATABASE_URL"];
  if (env["SWITCHYARD_DATA_DIR"]) input["dataDir"] = env["SWITCHYARD_DATA_DIR"];
  if (env["LOG_LEVEL"]) input["logLevel"] = env["LOG_LEVEL"];
  if (options.logLevel !== undefined) input["logLevel"] = options.logLevel;
  // The standard OpenTelemetry variables, so the gateway behaves like any other instrumented service.
  const tracing = section(input, "tracing");
  if (tracing !== undefined) {
    if (env["OTEL_EXPORTER_OTLP_ENDPOINT"]) tracing["endpoint"] = env["OTEL_EXPORTER_OTLP_ENDPOINT"];
    if (env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) tracing["tracesEndpoint"] = env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"];
    if (env["OTEL_SERVICE_NAME"]) tracing["serviceName"] = env["OTEL_SERVICE_NAME"];
    if (env["OTEL_EXPORTER_OTLP_HEADERS"]) tracing["headers"] = parseHeaderList(env["OTEL_EXPORTER_OTLP_HEADERS"]);
  }
  return validateConfig(input, options.file ?? "environment", origins);
}

/** OTEL_EXPORTER_OTLP_HEADERS: "k1=v1,k2=v2", values URL-encoded (OpenTelemetry spec). */
function parseHeaderList(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(",")) {
    const i = part.indexOf("=");
    if (i <= 0) continue;
    const name = part.slice(0, i).trim();
    try {
      out[name] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      // A URIError would escape as something other than a ConfigError; the value may be a secret, so only the name is given.
      throw new ConfigError(`OTEL_EXPORTER_OTLP_HEADERS: the value of '${name}' is not valid percent-encoding`);
    }
  }
  return out;
}

/** Field path (as printed) -> the environment variable it came from, for zero-config errors. */
type Origins = Record<string, string>;

/**
 * Validates a configuration object; throws ConfigError naming every bad field.
 * Messages name fields and variables, never values: a key must not reach a log.
 */
export function validateConfig(input: ConfigInput | Record<string, unknown>, source = "config", origins: Origins = {}): Config {
  const result = configSchema.safeParse(input);
  const problems = result.success ? [] : result.error.issues.map((i) => `${formatPath(i.path)}: ${describeIssue(i)}`);
  // Cross-field checks read the raw input, so they are reported along with schema problems.
  problems.push(...crossCheck(input));
  if (problems.length > 0 || !result.success) {
    const lines = problems.map((p) => {
      const field = p.slice(0, p.indexOf(":"));
      return `  ${p}${origins[field] ? ` (from ${origins[field]})` : ""}`;
    });
    throw new ConfigError(`invalid configuration (${source}):\n${lines.join("\n")}`);
  }
  const config: Config = { ...result.data, providers: result.data.providers.map(withDefaults) };
  return deepFreeze(config);
}

/** Checks across fields: distinct provider ids (they default to the type), aliases to configured providers. */
function crossCheck(input: Record<string, unknown>): string[] {
  const problems: string[] = [];
  // Not a mapping at all (null, a list, a scalar): the schema says so; reading fields of it would throw a TypeError instead.
  if (input === null || typeof input !== "object" || Array.isArray(input)) return problems;
  const ids = new Map<string, number>();
  const providers = Array.isArray(input["providers"]) ? (input["providers"] as unknown[]) : [];
  providers.forEach((p, i) => {
    if (p === null || typeof p !== "object") return;
    const { id, type } = p as { id?: unknown; type?: unknown };
    const effective = typeof id === "string" ? id : typeof type === "string" ? type : undefined;
    // Only well-formed ids are compared (and echoed); the schema reports the others.
    if (effective === undefined || !/^[a-z0-9][a-z0-9_-]{0,62}$/.test(effective)) return;
    const first = ids.get(effective);
    if (first !== undefined) {
      const why = typeof id === "string" ? "" : ` (the id defaults to the type: give providers of the same type distinct ids)`;
      problems.push(`providers[${i}].id: duplicate provider id '${effective}', also used by providers[${first}]${why}`);
    } else {
      ids.set(effective, i);
    }
  });
  const aliases = input["aliases"];
  if (aliases !== null && typeof aliases === "object" && !Array.isArray(aliases)) {
    for (const [alias, target] of Object.entries(aliases)) {
      if (typeof target !== "string") continue; // the schema reports it
      const slash = target.indexOf("/");
      if (slash <= 0 || !ids.has(target.slice(0, slash))) {
        problems.push(`aliases.${alias}: '${target}' must be "provider/model" with a configured provider`);
      }
    }
  }
  return problems;
}

/** Defaults that depend on other fields: the id from the type, base URLs from the preset or region. */
function withDefaults(p: z.output<typeof configSchema>["providers"][number]): ProviderConfig {
  const id = p.id ?? p.type;
  if (p.type === "bedrock") return { ...p, id, baseUrl: p.baseUrl ?? `https://bedrock-runtime.${p.region}.amazonaws.com` };
  if (isPreset(p.type)) return { ...p, id, baseUrl: p.baseUrl ?? OPENAI_PRESETS[p.type].baseUrl } as ProviderConfig;
  return { ...p, id } as ProviderConfig;
}

function isPreset(type: string): type is OpenAIPreset {
  return Object.hasOwn(OPENAI_PRESETS, type);
}

async function readConfigFile(file: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  const json = extname(file) === ".json";
  try {
    // yaml is loaded only for a YAML file: a start from the environment or JSON never evaluates it.
    parsed = json ? JSON.parse(text) : (await import("yaml")).parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid ${json ? "JSON" : "YAML"}: ${syntaxProblem(err, text)}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file}: the top level must be a mapping`);
  }
  try {
    return interpolate(parsed, env, "") as Record<string, unknown>;
  } catch (err) {
    // Name the file too: the field path alone may be a key with nothing readable in it.
    throw err instanceof ConfigError ? new ConfigError(`config file ${file}: ${err.message}`) : err;
  }
}

/** Deeper than this is no configuration, and would exhaust the stack (a RangeError, not a ConfigError). */
const MAX_DEPTH = 64;

/**
 * Replaces `${NAME}` in string values with the environment variable, so
 * secrets stay out of files. Also refuses what a parser can produce but no
 * configuration is: a YAML alias inside its own anchor (a cycle) and absurd
 * nesting; and keeps a key named `__proto__` as a key (which validation
 * reports as unknown) rather than letting it set the object's prototype,
 * where its fields would be read as if they were set.
 */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string, ancestors: object[] = []): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(`${path || "config"}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (value === null || typeof value !== "object") return value;
  if (ancestors.includes(value)) throw new ConfigError(`${path || "config"}: refers to itself (a YAML alias inside its own anchor)`);
  if (ancestors.length >= MAX_DEPTH) throw new ConfigError(`${path || "config"}: nested more than ${MAX_DEPTH} levels deep`);
  const inside = [...ancestors, value];
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`, inside));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    Object.defineProperty(out, k, { value: interpolate(v, env, path ? `${path}.${k}` : k, inside), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * What a parser said about a syntax error, without the excerpt of the file
 * both parsers quote (the bad line may hold a key): the problem and where.
 */
function syntaxProblem(err: unknown, text: string): string {
  const e = err as Error & { linePos?: { line: number; col: number }[] };
  if (e.linePos?.[0]) {
    // yaml: "<problem> at line L, column C:\n\n<excerpt>"
    return e.message.split(":\n")[0]!;
  }
  const position = /position (\d+)/.exec(e.message);
  if (position) {
    const before = text.slice(0, Number(position[1]));
    const line = before.split("\n").length;
    const column = before.length - before.lastIndexOf("\n");
    return `syntax error at line ${line}, column ${column}`;
  }
  // V8 quotes the text near the error ('Unexpected token 'x', ..."<excerpt>"... is not valid JSON'): keep what precedes it.
  const quote = e.message.indexOf('"');
  return quote < 0 ? e.message : e.message.slice(0, quote).replace(/[\s,.]+$/, "") || "syntax error";
}

/**
 * Zero-config: each provider from its usual variables, when they are set.
 * Key variables may hold several keys separated by commas. Also returns which
 * variable each field came from, so errors can name it.
 */
function configFromEnv(env: NodeJS.ProcessEnv): { input: Record<string, unknown>; origins: Origins } {
  const providers: Record<string, unknown>[] = [];
  const origins: Origins = {};
  const list = (name: string): string[] => splitList(env[name] ?? "");
  const value = (name: string): string | undefined => env[name] || undefined;
  /** Adds a provider; `fields` maps each field to [variable, value], unset variables dropped. */
  const add = (type: string, fields: Record<string, [string, unknown]>, extra: Record<string, unknown> = {}): void => {
    const i = providers.length;
    const p: Record<string, unknown> = { type, ...extra };
    for (const [field, [name, v]] of Object.entries(fields)) {
      if (v === undefined) continue;
      p[field] = v;
      origins[`providers[${i}].${field}`] = name;
    }
    providers.push(p);
  };

  const openaiKeys = list("OPENAI_API_KEY");
  if (openaiKeys.length > 0 || value("OPENAI_BASE_URL")) {
    add(openaiKeys.length > 0 ? "openai" : "openai-compatible", {
      baseUrl: ["OPENAI_BASE_URL", value("OPENAI_BASE_URL") ?? "https://api.openai.com/v1"],
      keys: ["OPENAI_API_KEY", openaiKeys],
    }, { id: "openai" });
  }
  const anthropicKeys = list("ANTHROPIC_API_KEY");
  if (anthropicKeys.length > 0) {
    add("anthropic", { keys: ["ANTHROPIC_API_KEY", anthropicKeys], baseUrl: ["ANTHROPIC_BASE_URL", value("ANTHROPIC_BASE_URL")] });
  }
  const geminiVar = list("GEMINI_API_KEY").length > 0 ? "GEMINI_API_KEY" : "GOOGLE_API_KEY";
  if (list(geminiVar).length > 0) {
    add("gemini", { keys: [geminiVar, list(geminiVar)], baseUrl: ["GEMINI_BASE_URL", value("GEMINI_BASE_URL")] });
  }
  const azureKeys = list("AZURE_OPENAI_API_KEY");
  if (azureKeys.length > 0 || value("AZURE_OPENAI_ENDPOINT")) {
    // Half a configuration is reported (the schema names the missing field and its variable), not ignored.
    const versionVar = value("AZURE_OPENAI_API_VERSION") ? "AZURE_OPENAI_API_VERSION" : "OPENAI_API_VERSION";
    add("azure", {
      keys: ["AZURE_OPENAI_API_KEY", azureKeys.length > 0 ? azureKeys : undefined],
      baseUrl: ["AZURE_OPENAI_ENDPOINT", value("AZURE_OPENAI_ENDPOINT")],
      apiVersion: [versionVar, value(versionVar)],
    });
  }
  // AWS credentials often serve other tools, so Bedrock is configured only when all of them and a region are set.
  const regionVar = value("AWS_REGION") ? "AWS_REGION" : "AWS_DEFAULT_REGION";
  const accessKeyId = value("AWS_ACCESS_KEY_ID");
  const secretAccessKey = value("AWS_SECRET_ACCESS_KEY");
  if (accessKeyId && secretAccessKey && value(regionVar)) {
    const sessionToken = value("AWS_SESSION_TOKEN");
    add("bedrock", {
      region: [regionVar, value(regionVar)],
      credentials: ["AWS_ACCESS_KEY_ID", [{ accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) }]],
      baseUrl: ["BEDROCK_BASE_URL", value("BEDROCK_BASE_URL")],
    });
  }
  for (const [type, preset] of Object.entries(OPENAI_PRESETS)) {
    const presetKeys = list(preset.keyEnv);
    const urlVar = `${type.toUpperCase()}_BASE_URL`;
    if (presetKeys.length > 0 || value(urlVar)) {
      add(type, { keys: [preset.keyEnv, presetKeys.length > 0 ? presetKeys : undefined], baseUrl: [urlVar, value(urlVar)] });
    }
  }
  return { input: { providers }, origins };
}

/** A copy of a mapping section (created when absent), or undefined when it is not a mapping. */
function section(input: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = input[key];
  if (v === undefined) return (input[key] = {}) as Record<string, unknown>;
  if (v === null || typeof v !== "object" || Array.isArray(v)) return undefined;
  return (input[key] = { ...v }) as Record<string, unknown>;
}

function splitList(s: string): string[] {
  return s.split(",").map((x) => x.trim()).filter((x) => x.length > 0);
}

function parsePort(s: string, name: string): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new ConfigError(`${name}: '${s}' is not a port number`);
  return n;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || "(top level)";
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  return issue.message;
}

/** Freezes a value and everything in it (configuration snapshots are immutable). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
