import { readFile } from "node:fs/promises";
import { parse as parseYaml, stringify } from "yaml";

/**
 * Turns a LiteLLM proxy configuration (config.yaml) into a Switchyard one:
 * `model_list` deployments become providers (one per type, endpoint and API
 * version, with every distinct key rotated on it), `model_name` groups become
 * aliases or weighted routes with fallbacks, and router, module and general
 * settings map onto `routing`, `cache`, `governance.pricing` and `logLevel`
 * where Switchyard has the same idea. Whatever has no equivalent is listed in
 * the report as "not carried over: <setting>: <why>", never dropped silently.
 * Setting values are never echoed in the report: they may be secrets.
 *
 * This file is over 400 lines because the mapping is one table of LiteLLM
 * settings, read top to bottom; splitting it would scatter that table.
 */

/** What the import could not carry over, what changed meaning, and the variables the output reads. */
export interface ImportReport {
  notCarried: { setting: string; why: string }[];
  notes: string[];
  /** Environment variables referenced by `${NAME}` in the output (from LiteLLM's os.environ/NAME or its defaults). */
  env: string[];
}

export interface ImportResult {
  /** A Switchyard configuration, as written to the file (`${NAME}` references unexpanded). */
  config: Record<string, unknown>;
  report: ImportReport;
}

/** The input cannot be read or is not a LiteLLM configuration at all (exit code 2). */
export class ImportInputError extends Error {
  override name = "ImportInputError";
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === "object" && !Array.isArray(v);
/** A number, also from a string; LiteLLM's files are read by PyYAML (YAML 1.1), where 20_000 is a number. */
function num(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v !== "string" || !/^\s*-?[\d_]+(\.\d+)?\s*$/.test(v)) return undefined;
  const n = Number(v.replace(/_/g, ""));
  return Number.isFinite(n) ? n : undefined;
}

/** LiteLLM provider prefixes Switchyard serves: our type and LiteLLM's default key variable. */
const PREFIXES: Record<string, { type: string; keyEnv?: string; needsBase?: boolean }> = {
  openai: { type: "openai", keyEnv: "OPENAI_API_KEY" },
  "text-completion-openai": { type: "openai", keyEnv: "OPENAI_API_KEY" },
  azure: { type: "azure", keyEnv: "AZURE_API_KEY" },
  anthropic: { type: "anthropic", keyEnv: "ANTHROPIC_API_KEY" },
  gemini: { type: "gemini", keyEnv: "GEMINI_API_KEY" },
  bedrock: { type: "bedrock" },
  groq: { type: "groq", keyEnv: "GROQ_API_KEY" },
  mistral: { type: "mistral", keyEnv: "MISTRAL_API_KEY" },
  together_ai: { type: "together", keyEnv: "TOGETHERAI_API_KEY" },
  fireworks_ai: { type: "fireworks", keyEnv: "FIREWORKS_AI_API_KEY" },
  deepseek: { type: "deepseek", keyEnv: "DEEPSEEK_API_KEY" },
  xai: { type: "xai", keyEnv: "XAI_API_KEY" },
  openrouter: { type: "openrouter", keyEnv: "OPENROUTER_API_KEY" },
  cerebras: { type: "cerebras", keyEnv: "CEREBRAS_API_KEY" },
  perplexity: { type: "perplexity", keyEnv: "PERPLEXITYAI_API_KEY" },
  ollama: { type: "ollama" },
  ollama_chat: { type: "ollama" },
  hosted_vllm: { type: "vllm", needsBase: true },
  // Text Generation Inference endpoints speak OpenAI's format under /v1.
  huggingface: { type: "openai-compatible", needsBase: true },
};
const KEYLESS = new Set(["ollama", "vllm", "openai-compatible"]);

/** Model names LiteLLM sends to OpenAI or Anthropic when they carry no prefix. */
function bareProvider(model: string): string | undefined {
  if (/^(gpt-|o\d|chatgpt-|text-embedding-|dall-e|whisper-|tts-|omni-moderation|text-moderation|davinci|babbage)/.test(model)) return "openai";
  if (model.startsWith("claude-")) return "anthropic";
  return undefined;
}

/** Request defaults LiteLLM adds to every call; Switchyard forwards the caller's request as it is. */
const REQUEST_DEFAULTS = new Set(["temperature", "max_tokens", "max_completion_tokens", "top_p", "seed", "stop", "n", "presence_penalty", "frequency_penalty", "response_format", "tools", "tool_choice", "user", "extra_body", "reasoning_effort", "thinking"]);

interface ProviderDraft {
  type: string;
  baseUrl?: string;
  apiVersion?: string;
  region?: string;
  headers: Record<string, string>;
  keys: string[];
  credentials: Obj[];
  models: string[];
  wildcard: boolean;
  totalMs?: number;
  id?: string;
}

interface Target {
  draft: ProviderDraft;
  model: string;
  weight: { explicit?: number; rpm?: number; tpm?: number };
  /** USD per token, from input_cost_per_token / output_cost_per_token. */
  costs: { input?: number; output?: number };
}

/** Reads a LiteLLM config file; ImportInputError when it is missing, not YAML, or not a mapping. */
export async function readLiteLLMFile(path: string): Promise<Obj> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ImportInputError(`cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (err) {
    throw new ImportInputError(`${path} is not valid YAML: ${(err as Error).message.split(":\n")[0]}`);
  }
  if (!isObj(parsed)) throw new ImportInputError(`${path}: the top level must be a mapping (model_list, router_settings, …)`);
  return parsed;
}

/** Maps a parsed LiteLLM configuration; never throws on content it does not know (it reports it). */
export function importLiteLLM(input: Obj): ImportResult {
  const report: ImportReport = { notCarried: [], notes: [], env: [] };
  const drop = (setting: string, why: string): void => {
    if (!report.notCarried.some((d) => d.setting === setting && d.why === why)) report.notCarried.push({ setting, why });
  };
  /** `os.environ/NAME` -> `${NAME}`; other strings as they are. */
  const val = (v: unknown): string | undefined => {
    if (typeof v === "number") return String(v);
    if (typeof v !== "string") return undefined;
    const m = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/.exec(v.trim());
    if (m === null) return v;
    return envRef(m[1]!);
  };
  const envRef = (name: string): string => {
    if (!report.env.includes(name)) report.env.push(name);
    return `\${${name}}`;
  };

  const router = isObj(input["router_settings"]) ? input["router_settings"] : {};
  const module = isObj(input["litellm_settings"]) ? input["litellm_settings"] : {};
  for (const [k, v] of Object.entries(input)) {
    if (k === "model_list" || (["router_settings", "litellm_settings", "general_settings", "environment_variables"].includes(k) && (isObj(v) || v === null))) continue;
    drop(k, "no Switchyard equivalent at the top level");
  }

  // Settings both sections may hold: LiteLLM's router takes router_settings first.
  const setting = (name: string): { value: unknown; path: string } | undefined => {
    if (router[name] !== undefined) {
      if (module[name] !== undefined) drop(`litellm_settings.${name}`, `router_settings.${name} is set too and wins (as in LiteLLM's router)`);
      return { value: router[name], path: `router_settings.${name}` };
    }
    return module[name] !== undefined ? { value: module[name], path: `litellm_settings.${name}` } : undefined;
  };
  const used = new Set<string>();
  const take = (name: string): { value: unknown; path: string } | undefined => {
    used.add(name);
    return setting(name);
  };

  const timeout = take("timeout");
  const requestTimeout = take("request_timeout");
  if (timeout !== undefined && requestTimeout !== undefined) drop(requestTimeout.path, `${timeout.path} is set too and wins`);
  const globalTimeout = num((timeout ?? requestTimeout)?.value);
  if (globalTimeout !== undefined) report.notes.push(`${(timeout ?? requestTimeout)!.path} -> each provider's timeouts.totalMs (the whole upstream exchange, streams included)`);
  const { groups, drafts, skipped } = readModelList(input["model_list"], val, envRef, drop, report.notes);
  const out: Obj = {};

  // Providers: ids from the type, made distinct by the endpoint's host.
  assignIds(drafts);
  out["providers"] = drafts.map((d) => providerOut(d, globalTimeout));

  // Groups -> aliases and routes.
  const strategy = take("routing_strategy");
  let leastBusy = false;
  if (strategy !== undefined) {
    if (strategy.value === "least-busy") leastBusy = true;
    else if (strategy.value !== "simple-shuffle") drop(strategy.path, `'${String(strategy.value)}' has no Switchyard equivalent; routes pick by weight (simple-shuffle), or least-busy`);
  }
  const fallbacks = new Map<string, string[]>();
  const fb = take("fallbacks");
  if (fb !== undefined) readFallbacks(fb.value, fb.path, fallbacks, drop);
  const defaults = take("default_fallbacks");
  const defaultFallbacks = defaults !== undefined && Array.isArray(defaults.value) ? defaults.value.filter((x): x is string => typeof x === "string") : [];
  for (const [name, why] of [
    ["context_window_fallbacks", "Switchyard never falls back on a request error such as an exceeded context window (the caller's request would fail anywhere it is the same); only provider failures (5xx, 429, timeouts) move to a fallback"],
    ["content_policy_fallbacks", "a content-policy refusal is final in Switchyard (it is not sent to another provider)"],
  ] as const) {
    const s = take(name);
    if (s !== undefined) drop(s.path, why);
  }

  const expand = (name: string, from: string): string[] => {
    const g = groups.get(name);
    if (g !== undefined) return [...weighted(g)].sort((a, b) => b.weight - a.weight).map((t) => t.model);
    // "azure/gpt-4o" served by a wildcard deployment ("azure/*").
    const slash = name.indexOf("/");
    const wild = slash > 0 ? groups.get(`${name.slice(0, slash)}/*`) : undefined;
    if (wild !== undefined && wild[0] !== undefined) return [`${wild[0].draft.id!}/${name.slice(slash + 1)}`];
    drop(from, skipped.has(name) ? `'${name}' was not carried over (see its deployments above)` : `'${name}' is not a model_name in model_list`);
    return [];
  };

  const aliases: Record<string, string> = {};
  const routes: Record<string, Obj> = {};
  for (const [name, targets] of groups) {
    if (targets.length === 0 || targets.some((t) => t.model === "*")) continue;
    const list = weighted(targets);
    const own = fallbacks.has(name) ? fallbacks.get(name)! : defaultFallbacks;
    const fbTargets = [...new Set(own.flatMap((f) => expand(f, fallbacks.has(name) ? `${fb!.path}.${name}` : defaults!.path)))].filter((m) => !list.some((t) => t.model === m));
    if (list.length === 1 && fbTargets.length === 0) {
      if (list[0]!.model !== name) aliases[name] = list[0]!.model;
      continue;
    }
    const route: Obj = { targets: list };
    if (leastBusy && list.length > 1) route["strategy"] = "least-busy";
    if (fbTargets.length > 0) route["fallbacks"] = fbTargets;
    routes[name] = route;
  }
  for (const name of fallbacks.keys()) {
    if (!groups.has(name)) drop(`${fb!.path}.${name}`, skipped.has(name) ? "its deployments were not carried over (see above)" : "not a model_name in model_list");
  }

  // model_group_alias: an alias of a group is a copy of what the group became.
  const mga = take("model_group_alias");
  if (mga !== undefined && isObj(mga.value)) {
    for (const [alias, target] of Object.entries(mga.value)) {
      const to = typeof target === "string" ? target : isObj(target) && typeof target["model"] === "string" ? target["model"] : undefined;
      if (to !== undefined && routes[to] !== undefined) routes[alias] = structuredClone(routes[to]!);
      else if (to !== undefined && aliases[to] !== undefined) aliases[alias] = aliases[to]!;
      else if (to !== undefined && groups.has(to)) aliases[alias] = to; // a group that maps 1:1 to provider/model
      else drop(`${mga.path}.${alias}`, "its target is not a model_name Switchyard serves");
      if (isObj(target) && target["hidden"] === true) drop(`${mga.path}.${alias}.hidden`, "aliases are always listed");
    }
  }
  if (Object.keys(aliases).length > 0) out["aliases"] = aliases;
  if (Object.keys(routes).length > 0) out["routes"] = routes;

  out["routing"] = routingOut(take, drop, report.notes);
  const cache = cacheOut(module, groups, drop, report.notes, val);
  const cacheResponses = take("cache_responses");
  if (cacheResponses?.value === true && cache["mode"] === undefined) cache["mode"] = "exact";
  if (Object.keys(cache).length > 0) out["cache"] = cache;
  const pricing = pricingOut(groups);
  if (Object.keys(pricing).length > 0) out["governance"] = { pricing };
  if (module["set_verbose"] === true) out["logLevel"] = "debug";
  if (Object.keys(out["routing"] as Obj).length === 0) delete out["routing"];

  reportRest(router, module, used, input, drop);
  return { config: out, report };
}

/** Deployments by model_name, the providers they collapse into, and the names whose deployments were all skipped. */
interface ModelList {
  groups: Map<string, Target[]>;
  drafts: ProviderDraft[];
  skipped: Set<string>;
}

function readModelList(list: unknown, val: (v: unknown) => string | undefined, envRef: (n: string) => string, drop: (s: string, w: string) => void, notes: string[]): ModelList {
  const groups = new Map<string, Target[]>();
  const drafts: ProviderDraft[] = [];
  const skipped = new Set<string>();
  if (list === undefined) return { groups, drafts, skipped };
  if (!Array.isArray(list)) {
    drop("model_list", "must be a list of deployments");
    return { groups, drafts, skipped };
  }
  list.forEach((d: unknown, i) => {
    const path = `model_list[${i}]`;
    if (!isObj(d) || typeof d["model_name"] !== "string" || !isObj(d["litellm_params"])) {
      drop(path, "a deployment needs model_name and litellm_params");
      return;
    }
    const p = d["litellm_params"];
    const name = d["model_name"];
    skipped.add(name); // until a deployment of it is carried over
    for (const k of Object.keys(d)) {
      if (k === "model_info") drop(`${path}.model_info`, "model metadata (id, base_model, mode) has no Switchyard field; prices come from the shipped table or governance.pricing");
      else if (!["model_name", "litellm_params", "rpm", "tpm"].includes(k)) drop(`${path}.${k}`, "unknown deployment field");
    }
    const full = typeof p["model"] === "string" ? p["model"] : "";
    const custom = typeof p["custom_llm_provider"] === "string" ? p["custom_llm_provider"] : undefined;
    const slash = full.indexOf("/");
    let prefix = custom ?? (slash > 0 ? full.slice(0, slash) : full === "*" ? "*" : bareProvider(full));
    let model = custom !== undefined || slash <= 0 ? full : full.slice(slash + 1);
    if (prefix === "*") {
      drop(`${path}.litellm_params.model`, "'*' (any model of any provider from the environment's keys) has no equivalent: configure each provider; a provider without a models list serves any model as provider/model");
      return;
    }
    const kind = prefix === undefined ? undefined : PREFIXES[prefix];
    if (kind === undefined) {
      drop(`${path}.litellm_params.model`, prefix === undefined ? `cannot tell the provider of '${full}'; write it as provider/model` : `provider '${prefix}' is not supported by Switchyard`);
      return;
    }
    const base = val(p["api_base"]);
    if (base !== undefined && !/^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(base) && !/^https?:\/\/[^\s<>]+$/.test(base)) {
      drop(`${path}.litellm_params.api_base`, `'${base}' is not an http(s) URL; deployment '${name}' skipped`);
      return;
    }
    if (kind.needsBase && base === undefined) {
      drop(`${path}.litellm_params.model`, `'${prefix}' without api_base (a hosted API Switchyard does not call); deployment '${name}' skipped`);
      return;
    }
    let type = kind.type;
    let baseUrl = base;
    if (type === "openai" && base !== undefined && !/^https:\/\/api\.openai\.com(\/v1)?\/?$/.test(base)) {
      type = "openai-compatible"; // LiteLLM's openai/ prefix with another server
    }
    if (type === "openai" && base !== undefined) baseUrl = undefined;
    if ((type === "openai-compatible" || type === "ollama" || type === "vllm") && baseUrl !== undefined && /^https?:\/\/[^/]+\/?$/.test(baseUrl)) {
      baseUrl = `${baseUrl.replace(/\/$/, "")}/v1`;
      notes.push(`${path}: api_base ${base} became ${baseUrl} (the OpenAI-compatible path)`);
    }
    if (type === "azure" && baseUrl === undefined) baseUrl = envRef("AZURE_API_BASE");
    const apiVersion = type === "azure" ? val(p["api_version"]) ?? undefined : undefined;
    const region = type === "bedrock" ? val(p["aws_region_name"]) ?? envRef("AWS_REGION_NAME") : undefined;
    const headers: Record<string, string> = {};
    const org = val(p["organization"]);
    if (org !== undefined) headers["OpenAI-Organization"] = org;
    if (isObj(p["extra_headers"])) for (const [k, v] of Object.entries(p["extra_headers"])) if (val(v) !== undefined) headers[k] = val(v)!;

    let draft = drafts.find((x) => x.type === type && x.baseUrl === baseUrl && x.apiVersion === apiVersion && x.region === region && JSON.stringify(x.headers) === JSON.stringify(headers));
    if (draft === undefined) {
      draft = { type, ...(baseUrl !== undefined ? { baseUrl } : {}), ...(apiVersion !== undefined ? { apiVersion } : {}), ...(region !== undefined ? { region } : {}), headers, keys: [], credentials: [], models: [], wildcard: false };
      drafts.push(draft);
    }
    if (type === "bedrock") {
      const cred: Obj = {
        accessKeyId: val(p["aws_access_key_id"]) ?? envRef("AWS_ACCESS_KEY_ID"),
        secretAccessKey: val(p["aws_secret_access_key"]) ?? envRef("AWS_SECRET_ACCESS_KEY"),
        ...(val(p["aws_session_token"]) !== undefined ? { sessionToken: val(p["aws_session_token"]) } : {}),
      };
      if (!draft.credentials.some((c) => JSON.stringify(c) === JSON.stringify(cred))) draft.credentials.push(cred);
    } else {
      const raw = p["api_key"];
      let key = raw === "none" || raw === "" || raw === null ? undefined : val(raw);
      // LiteLLM reads the provider's usual variable when the deployment names no key.
      if (key === undefined && !KEYLESS.has(type)) key = envRef(kind.keyEnv ?? "OPENAI_API_KEY");
      if (key !== undefined && !key.startsWith("${")) notes.push(`${path}: the API key is written into the output as it was in the LiteLLM file; move it to an environment variable (\${NAME})`);
      if (key !== undefined && !draft.keys.includes(key)) draft.keys.push(key);
    }
    if (model === "*") draft.wildcard = true;
    else if (!draft.models.includes(model)) draft.models.push(model);

    const timeout = num(p["timeout"]);
    if (timeout !== undefined) draft.totalMs = Math.max(draft.totalMs ?? 0, Math.ceil(timeout * 1000));
    for (const k of Object.keys(p)) {
      if (["model", "custom_llm_provider", "api_base", "api_key", "api_version", "aws_region_name", "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "organization", "extra_headers", "timeout", "rpm", "tpm", "weight", "input_cost_per_token", "output_cost_per_token"].includes(k)) continue;
      const where = `${path}.litellm_params.${k}`;
      if (k === "max_retries") drop(where, "retries are per route (routing.retries), not per deployment");
      else if (k === "stream_timeout") drop(where, "no separate stream timeout; the provider's timeouts (firstByteMs, idleMs, totalMs) apply to streams too");
      else if (REQUEST_DEFAULTS.has(k)) drop(where, "Switchyard does not add default request parameters; callers send their own");
      else drop(where, "no Switchyard equivalent");
    }
    for (const k of ["rpm", "tpm"] as const) {
      if (p[k] !== undefined || d[k] !== undefined) drop(`${path}.${p[k] !== undefined ? "litellm_params." : ""}${k}`, "Switchyard has no per-deployment limit; used as the route weight where the group has several deployments (limits go on virtual keys and teams)");
    }
    const weight = { explicit: num(p["weight"]), rpm: num(p["rpm"] ?? d["rpm"]), tpm: num(p["tpm"] ?? d["tpm"]) };
    const costs = { input: num(p["input_cost_per_token"]), output: num(p["output_cost_per_token"]) };
    const t: Target = { draft, model, weight, costs };
    const g = groups.get(name) ?? [];
    g.push(t);
    groups.set(name, g);
    skipped.delete(name);
  });
  for (const d of drafts) if (d.wildcard) d.models = [];
  return { groups, drafts, skipped };
}

/** Provider ids: the type alone when it is the only one of its type, else type-<host> (or -<region>, or -<n>). */
function assignIds(drafts: ProviderDraft[]): void {
  const taken = new Set<string>();
  const seen = new Map<string, number>();
  drafts.forEach((d) => {
    const alone = drafts.filter((x) => x.type === d.type).length === 1;
    const n = (seen.get(d.type) ?? 0) + 1;
    seen.set(d.type, n);
    let id = d.type;
    if (!alone) {
      let suffix = String(n);
      if (d.region !== undefined && !d.region.startsWith("${")) suffix = d.region;
      else if (d.baseUrl !== undefined && URL.canParse(d.baseUrl)) {
        const u = new URL(d.baseUrl);
        suffix = /^[\d.]+$|:/.test(u.hostname) ? `${u.hostname}-${u.port}` : u.hostname.split(".")[0]!;
      }
      id = `${d.type}-${suffix}`.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/-+$/, "").slice(0, 60);
    }
    let unique = id;
    for (let n = 2; taken.has(unique); n++) unique = `${id}-${n}`;
    taken.add(unique);
    d.id = unique;
  });
}

function providerOut(d: ProviderDraft, globalTimeout: number | undefined): Obj {
  const p: Obj = { id: d.id, type: d.type };
  if (d.baseUrl !== undefined) p["baseUrl"] = d.baseUrl;
  if (d.apiVersion !== undefined) p["apiVersion"] = d.apiVersion;
  if (d.region !== undefined) p["region"] = d.region;
  if (d.type === "bedrock") p["credentials"] = d.credentials;
  else if (d.keys.length > 0) p["keys"] = d.keys;
  if (d.models.length > 0) p["models"] = d.models;
  if (Object.keys(d.headers).length > 0) p["headers"] = d.headers;
  const totalMs = d.totalMs ?? (globalTimeout !== undefined ? Math.ceil(globalTimeout * 1000) : undefined);
  if (totalMs !== undefined && totalMs > 0) p["timeouts"] = { totalMs, firstByteMs: Math.min(totalMs, 120_000) };
  return p;
}

/** A group's targets as route entries, duplicates merged; weights from weight, else rpm, else tpm (LiteLLM's simple-shuffle). */
function weighted(targets: Target[]): { model: string; weight: number }[] {
  const pick = (["explicit", "rpm", "tpm"] as const).find((k) => targets.every((t) => (t.weight[k] ?? 0) > 0));
  const out: { model: string; weight: number }[] = [];
  for (const t of targets) {
    const model = `${t.draft.id!}/${t.model}`;
    const w = pick === undefined ? 1 : t.weight[pick]!;
    const have = out.find((o) => o.model === model);
    if (have !== undefined) have.weight += w;
    else out.push({ model, weight: w });
  }
  return out;
}

function readFallbacks(v: unknown, path: string, into: Map<string, string[]>, drop: (s: string, w: string) => void): void {
  const entries = Array.isArray(v) ? v : [v];
  for (const e of entries) {
    if (!isObj(e)) {
      drop(path, "expected [{model_name: [fallback, …]}]");
      continue;
    }
    for (const [from, to] of Object.entries(e)) {
      const list = (Array.isArray(to) ? to : [to]).filter((x): x is string => typeof x === "string");
      into.set(from, [...(into.get(from) ?? []), ...list]);
    }
  }
}

type Take = (name: string) => { value: unknown; path: string } | undefined;

function routingOut(take: Take, drop: (s: string, w: string) => void, notes: string[]): Obj {
  const routing: Obj = {};
  const retries = take("num_retries");
  const n = num(retries?.value);
  if (retries !== undefined && n !== undefined) {
    routing["retries"] = Math.max(0, Math.min(10, Math.floor(n)));
    if (n > 10) drop(retries.path, "at most 10 retries; 10 kept");
    notes.push(`${retries.path} -> routing.retries: Switchyard retries the same target, then moves through the route's other targets and fallbacks (LiteLLM retried across the group)`);
  }
  const retryAfter = num(take("retry_after")?.value);
  if (retryAfter !== undefined) routing["backoffMs"] = Math.round(retryAfter * 1000);
  const breaker: Obj = {};
  const fails = take("allowed_fails");
  const f = num(fails?.value);
  if (fails !== undefined && f !== undefined) {
    breaker["minRequests"] = Math.max(1, Math.floor(f) + 1);
    breaker["windowMs"] = 60_000;
    notes.push(`${fails.path} -> routing.breaker: a target's breaker opens when, over at least ${Math.floor(f) + 1} calls in a minute, half of them fail (LiteLLM counted failures alone)`);
  }
  const cooldown = num(take("cooldown_time")?.value);
  if (cooldown !== undefined && cooldown > 0) breaker["cooldownMs"] = Math.ceil(cooldown * 1000);
  if (Object.keys(breaker).length > 0) routing["breaker"] = breaker;
  return routing;
}

function cacheOut(module: Obj, groups: Map<string, Target[]>, drop: (s: string, w: string) => void, notes: string[], val: (v: unknown) => string | undefined): Obj {
  const cache: Obj = {};
  if (module["cache"] !== true) {
    if (isObj(module["cache_params"])) drop("litellm_settings.cache_params", "litellm_settings.cache is not on");
    return cache;
  }
  const params = isObj(module["cache_params"]) ? module["cache_params"] : {};
  const type = typeof params["type"] === "string" ? params["type"] : "redis";
  cache["mode"] = type.endsWith("-semantic") ? "semantic" : "exact";
  if (type === "redis" || type === "redis-semantic") {
    drop("litellm_settings.cache_params.type", "Switchyard's cache uses governance.redis (SWITCHYARD_REDIS_URL) when governance shares state there; otherwise each instance keeps its own memory cache");
  } else if (type === "disk") {
    cache["persist"] = true;
  } else if (type !== "local") {
    drop("litellm_settings.cache_params.type", `'${type}' storage is not supported; the cache is kept in memory (or Redis)`);
  }
  if (type.endsWith("-semantic")) {
    const embedding = String(params[`${type.split("-")[0]}_semantic_cache_embedding_model`] ?? "");
    const target = groups.get(embedding)?.[0];
    if (target !== undefined) cache["semantic"] = { embeddingModel: `${target.draft.id!}/${target.model}` };
    else drop("litellm_settings.cache_params", `semantic cache embedding model '${embedding}' is not a model_name in model_list; set cache.semantic.embeddingModel`);
  }
  for (const [k, v] of Object.entries(params)) {
    const where = `litellm_settings.cache_params.${k}`;
    if (k === "type" || k.endsWith("_semantic_cache_embedding_model")) continue;
    if (k === "ttl" && num(v) !== undefined) cache["ttlSeconds"] = Math.max(1, Math.round(num(v)!));
    else if (k === "similarity_threshold" && num(v) !== undefined) cache["semantic"] = { ...(cache["semantic"] as Obj | undefined), threshold: num(v) };
    else if (k === "mode" && val(v) === "default_off") {
      cache["mode"] = "off";
      drop(where, "there is no per-request opt-in; the cache is off by default and turned on per key, team or customer (cache policy)");
    } else drop(where, "no Switchyard equivalent (the cache's store and connection come from cache.store and governance.redis)");
  }
  notes.push("litellm_settings.cache -> cache.mode: entries are scoped to the caller's customer by default (cache.scope); LiteLLM shared them across every caller");
  return cache;
}

/** input_cost_per_token / output_cost_per_token -> governance.pricing (USD per million tokens). */
function pricingOut(groups: Map<string, Target[]>): Obj {
  const pricing: Obj = {};
  for (const targets of groups.values()) {
    for (const t of targets) {
      const { input, output } = t.costs;
      if (input === undefined && output === undefined) continue;
      pricing[`${t.draft.id!}/${t.model}`] = { input: (input ?? 0) * 1e6, output: (output ?? 0) * 1e6 };
    }
  }
  return pricing;
}

const GENERAL: Record<string, string> = {
  master_key: "Switchyard's admin key is SWITCHYARD_ADMIN_KEY (at least 16 characters, from the environment, never the file); callers get virtual keys from `switchyard keys create`",
  database_url: "keys, budgets and spend live in the data directory (embedded) or Redis; LiteLLM's keys are not migrated: re-create them with `switchyard keys create`",
  alerting: "no built-in alerting; alert on the Prometheus metrics at /metrics",
};

/** Every setting the mapping did not read is reported by name. */
function reportRest(router: Obj, module: Obj, used: Set<string>, input: Obj, drop: (s: string, w: string) => void): void {
  const moduleHandled = new Set(["cache", "cache_params", "set_verbose"]);
  for (const k of Object.keys(router)) if (!used.has(k)) drop(`router_settings.${k}`, /^redis_/.test(k) ? "to share state across instances set SWITCHYARD_REDIS_URL (governance.redis)" : k === "enable_pre_call_checks" ? "no pre-call context-window checks" : "no Switchyard equivalent");
  for (const k of Object.keys(module)) {
    if (used.has(k) || moduleHandled.has(k)) continue;
    const why = k === "drop_params"
      ? "Switchyard translates parameters per provider and refuses one a provider cannot take with 400 (code unsupported) rather than dropping it"
      : /callback/.test(k)
        ? "no logging callbacks; use the request log, /metrics and OpenTelemetry tracing (OTEL_EXPORTER_OTLP_ENDPOINT)"
        : k === "max_budget" || k === "budget_duration"
          ? "budgets belong to virtual keys, teams and customers (hard limits): `switchyard keys create --budget-usd N --period P`"
          : "no Switchyard equivalent";
    drop(`litellm_settings.${k}`, why);
  }
  const general = isObj(input["general_settings"]) ? input["general_settings"] : {};
  for (const k of Object.keys(general)) drop(`general_settings.${k}`, GENERAL[k] ?? "no Switchyard equivalent");
  const env = isObj(input["environment_variables"]) ? input["environment_variables"] : {};
  for (const k of Object.keys(env)) drop(`environment_variables.${k}`, "set it in the gateway's environment (values are not copied into the configuration)");
}

/** The report as printed: "not carried over: …" lines, then notes and the variables to set. */
export function formatReport(r: ImportReport): string {
  const lines = r.notCarried.map((d) => `not carried over: ${d.setting}: ${d.why}`);
  for (const n of r.notes) lines.push(`note: ${n}`);
  if (r.env.length > 0) lines.push(`environment: set ${r.env.join(", ")} before switchyard start (the file reads them as \${NAME})`);
  return lines.length > 0 ? lines.join("\n") + "\n" : "";
}

/** The configuration file: a header naming the source, then YAML. */
export function formatConfig(result: ImportResult, source: string): string {
  const header = [
    `# Switchyard configuration imported from the LiteLLM config ${source}`,
    "# by `switchyard import litellm`. Check it with `switchyard config check`.",
    ...(result.report.notCarried.length > 0 ? [`# ${result.report.notCarried.length} LiteLLM settings were not carried over (printed by the import).`] : []),
  ];
  return `${header.join("\n")}\n${stringify(result.config, { lineWidth: 0 })}`;
}
