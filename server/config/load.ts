import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { configSchema, type Config, type ConfigInput } from "./schema.ts";

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
}

/** Reads, interpolates, validates and defaults the configuration. */
export async function loadConfig(options: LoadOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  let input: Record<string, unknown>;
  if (options.file !== undefined) {
    input = await readConfigFile(options.file, env);
  } else {
    input = configFromEnv(env);
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
  return validateConfig(input, options.file ?? "environment");
}

/** Validates a configuration object; throws ConfigError naming every bad field. */
export function validateConfig(input: ConfigInput | Record<string, unknown>, source = "config"): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${formatPath(i.path)}: ${describeIssue(i)}`);
    throw new ConfigError(`invalid configuration (${source}):\n${lines.join("\n")}`);
  }
  const config = result.data;
  const problems = crossCheck(config);
  if (problems.length > 0) {
    throw new ConfigError(`invalid configuration (${source}):\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
  return deepFreeze(config);
}

function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  const ids = new Set<string>();
  config.providers.forEach((p, i) => {
    if (ids.has(p.id)) problems.push(`providers[${i}].id: duplicate provider id '${p.id}'`);
    ids.add(p.id);
    if (p.type === "openai" && p.keys.length === 0) {
      problems.push(`providers[${i}].keys: provider '${p.id}' of type openai needs at least one API key`);
    }
  });
  for (const [alias, target] of Object.entries(config.aliases)) {
    const slash = target.indexOf("/");
    if (slash <= 0 || !ids.has(target.slice(0, slash))) {
      problems.push(`aliases.${alias}: '${target}' must be "provider/model" with a configured provider`);
    }
  }
  return problems;
}

async function readConfigFile(file: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = extname(file) === ".json" ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid ${extname(file) === ".json" ? "JSON" : "YAML"}: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${file}: the top level must be a mapping`);
  }
  return interpolate(parsed, env, "") as Record<string, unknown>;
}

/** Replaces `${NAME}` in string values with the environment variable, so secrets stay out of files. */
function interpolate(value: unknown, env: NodeJS.ProcessEnv, path: string): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(`${path || "config"}: environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, `${path}[${i}]`));
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

/**
 * Zero-config: each provider from its usual variables. OPENAI_API_KEY may hold
 * several keys separated by commas.
 */
function configFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const providers: Record<string, unknown>[] = [];
  const openaiKeys = splitList(env["OPENAI_API_KEY"] ?? "");
  if (openaiKeys.length > 0 || env["OPENAI_BASE_URL"]) {
    providers.push({
      id: "openai",
      type: openaiKeys.length > 0 ? "openai" : "openai-compatible",
      baseUrl: env["OPENAI_BASE_URL"] || "https://api.openai.com/v1",
      keys: openaiKeys,
    });
  }
  return { providers };
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

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
