import { readFileSync } from "node:fs";

/**
 * Model prices: the shipped table (`pricing-table.json`, USD per million
 * tokens, keyed "<providerType>/<model>") under the operator's overrides
 * (`governance.pricing`). Budgets reserve and settle with these figures, so
 * a lookup that misses must say so (undefined) rather than guess zero; only
 * local servers (ollama, vllm) are free by definition.
 */

/** Rates for prompts longer than `thresholdTokens`: the whole request is billed at them (Gemini, Anthropic 1M-context, OpenAI >272k). */
export interface LongContextPrice {
  thresholdTokens: number;
  input: number;
  output: number;
  cachedInput?: number | undefined;
  cacheWrite?: number | undefined;
}

/** USD per 1M tokens; limits in tokens. */
export interface Price {
  input: number;
  output: number;
  /** Prompt tokens read from the provider's cache; absent: billed as input. */
  cachedInput?: number | undefined;
  /** Prompt tokens written to the cache (Anthropic's 5-minute write); absent: billed as input. */
  cacheWrite?: number | undefined;
  /** The model's output limit: the worst case reserved when the caller sets no max_tokens. */
  maxOutputTokens?: number | undefined;
  maxInputTokens?: number | undefined;
  longContext?: LongContextPrice | undefined;
  /** Models priced by their units rather than tokens: USD per image generated, */
  perImage?: number | undefined;
  /** per million characters of text spoken (speech), */
  perMillionChars?: number | undefined;
  /** per minute of audio transcribed. */
  perMinute?: number | undefined;
}

/** A price from configuration (USD per 1M tokens); input and output are required there too. */
export interface PriceOverride {
  input: number;
  output: number;
  cachedInput?: number | undefined;
  cacheWrite?: number | undefined;
  maxOutputTokens?: number | undefined;
  maxInputTokens?: number | undefined;
  perImage?: number | undefined;
  perMillionChars?: number | undefined;
  perMinute?: number | undefined;
}

export interface Pricing {
  /**
   * The price of `model` served by the provider `providerId` of type
   * `providerType`, or undefined when neither the overrides nor the table
   * know it. Order: overrides["<providerId>/<model>"], overrides[model],
   * the table under the provider type (exact, then normalised model names),
   * then the table of the model's vendor (azure -> openai, openrouter
   * "vendor/model" -> that vendor, bedrock "anthropic.*" -> anthropic).
   */
  lookup(providerType: string, providerId: string, model: string): Price | undefined;
}

/** Token counts of one request. `inputTokens` includes cached and cache-write tokens (OpenAI's prompt_tokens convention). */
export interface CostUsage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens?: number | undefined;
  cacheWriteTokens?: number | undefined;
  /** Units of unit-priced models (see Price.perImage and friends). */
  units?: Units | undefined;
}

/** What unit-priced endpoints are billed by. */
export interface Units {
  images?: number | undefined;
  characters?: number | undefined;
  audioSeconds?: number | undefined;
}

interface Table {
  version: string;
  models: Record<string, Price>;
}

const FREE_TYPES = new Set(["ollama", "vllm"]);
const FREE: Price = Object.freeze({ input: 0, output: 0 });
const MEMO_LIMIT = 1000;

/** OpenRouter's vendor prefixes -> the provider type whose table entry has the vendor's own price. */
const OPENROUTER_VENDORS: Record<string, string> = {
  openai: "openai",
  anthropic: "anthropic",
  google: "gemini",
  "x-ai": "xai",
  deepseek: "deepseek",
  mistralai: "mistral",
};

/** Bedrock cross-region inference profile prefixes (https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html). */
const BEDROCK_REGION = /^(?:us|eu|apac|global|jp|au|ca|us-gov)\./;
/** Version/date suffixes, tried one after another: "-v1:0"/"-v2"/"-1:0", "@20250929", "-2024-08-06", "-20250929", "-09-2025", "-latest", "-0709"/"-2507", "-001". */
const SUFFIXES: readonly RegExp[] = [
  /-v\d+(?::\d+)?$/,
  /-\d+:\d+$/,
  /@\d{8}$/,
  /-\d{4}-\d{2}-\d{2}$/,
  /-\d{8}$/,
  /-\d{2}-\d{4}$/,
  /-latest$/,
  /-\d{4}$/,
  /-\d{3}$/,
];

let shipped: Table | undefined;

/** The shipped table, read and checked once. Keys are matched case-insensitively. */
export function pricingTable(): Table {
  if (shipped !== undefined) return shipped;
  const raw = JSON.parse(readFileSync(new URL("./pricing-table.json", import.meta.url), "utf8")) as Table;
  const models: Record<string, Price> = Object.create(null) as Record<string, Price>;
  for (const [key, p] of Object.entries(raw.models)) {
    if (!validRate(p.input) || !validRate(p.output)) throw new Error(`pricing-table.json: ${key}: input and output must be non-negative numbers`);
    models[key.toLowerCase()] = Object.freeze(p);
  }
  shipped = { version: raw.version, models };
  return shipped;
}

function validRate(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v) && v >= 0;
}

/** Builds the lookup; `overrides` win over the table and are matched exactly. */
export function createPricing(overrides: Record<string, PriceOverride>): Pricing {
  const table = pricingTable().models;
  const memo = new Map<string, Price | undefined>();

  function resolve(providerType: string, providerId: string, model: string): Price | undefined {
    // hasOwn: a model named "constructor" must not find Object.prototype's.
    const exact = `${providerId}/${model}`;
    if (Object.hasOwn(overrides, exact)) return overrides[exact];
    if (Object.hasOwn(overrides, model)) return overrides[model];
    if (FREE_TYPES.has(providerType)) return FREE;
    return fromTable(table, providerType, model.toLowerCase());
  }

  return {
    lookup(providerType, providerId, model) {
      const key = `${providerType}\u0000${providerId}\u0000${model}`;
      if (memo.has(key)) return memo.get(key);
      const price = resolve(providerType, providerId, model);
      if (memo.size >= MEMO_LIMIT) memo.clear();
      memo.set(key, price);
      return price;
    },
  };
}

function fromTable(table: Record<string, Price>, type: string, model: string): Price | undefined {
  const found = inType(table, type, model);
  if (found !== undefined) return found;
  switch (type) {
    case "azure":
      // Deployments are named by users; when the name is a model name, OpenAI's price applies.
      return inType(table, "openai", model) ?? inType(table, "openai", model.replace(/^gpt-35-/, "gpt-3.5-"));
    case "openrouter": {
      if (model.endsWith(":free")) return FREE; // OpenRouter's free variants cost nothing
      const slash = model.indexOf("/");
      const prefix = model.slice(0, Math.max(0, slash));
      const vendor = Object.hasOwn(OPENROUTER_VENDORS, prefix) ? OPENROUTER_VENDORS[prefix] : undefined;
      if (vendor === undefined) return undefined;
      let rest = model.slice(slash + 1).replace(/:[a-z-]+$/, ""); // ":nitro", ":floor", ":online"
      // OpenRouter writes Claude versions with dots ("claude-sonnet-4.5"); Anthropic uses dashes.
      if (vendor === "anthropic") rest = rest.replace(/(\d)\.(\d)/g, "$1-$2");
      return inType(table, vendor, rest);
    }
    case "bedrock": {
      const id = bedrockModelId(model).replace(BEDROCK_REGION, "");
      return id.startsWith("anthropic.") ? inType(table, "anthropic", id.slice("anthropic.".length)) : undefined;
    }
    default:
      return undefined;
  }
}

/** The table entry for `type/<model>`, trying the model as given and then each normalised form. */
function inType(table: Record<string, Price>, type: string, model: string): Price | undefined {
  const bedrock = type === "bedrock";
  for (const m of candidates(bedrock ? bedrockModelId(model) : model.replace(/^models\//, ""), bedrock)) {
    const p = table[`${type}/${m}`];
    if (p !== undefined) return p;
  }
  return undefined;
}

/** An inference profile ARN names the model after its last "/". */
function bedrockModelId(model: string): string {
  return model.startsWith("arn:") ? model.slice(model.lastIndexOf("/") + 1) : model;
}

/** The model, then forms with the (Bedrock) region prefix and version/date suffixes removed, most specific first. */
function candidates(model: string, bedrock: boolean): string[] {
  const out = [model];
  let m = model;
  const push = (next: string): void => {
    if (next !== m && next.length > 0) {
      m = next;
      out.push(m);
    }
  };
  if (bedrock) push(m.replace(BEDROCK_REGION, ""));
  for (const re of SUFFIXES) push(m.replace(re, ""));
  return out;
}

/**
 * USD for one request. Cached tokens are billed at `cachedInput`, cache
 * writes at `cacheWrite` (each defaulting to `input`), the rest of
 * `inputTokens` at `input`, output at `output`. A prompt longer than the
 * price's long-context threshold is billed wholly at the long-context rates.
 */
export function costUsd(price: Price, usage: CostUsage): number {
  const lc = price.longContext;
  const rates = lc !== undefined && usage.inputTokens > lc.thresholdTokens ? lc : price;
  const input = Math.max(0, usage.inputTokens);
  const cached = Math.min(Math.max(0, usage.cachedInputTokens ?? 0), input);
  const writes = Math.min(Math.max(0, usage.cacheWriteTokens ?? 0), input - cached);
  const plain = input - cached - writes;
  const micros =
    plain * rates.input +
    cached * (rates.cachedInput ?? rates.input) +
    writes * (rates.cacheWrite ?? rates.input) +
    Math.max(0, usage.outputTokens) * rates.output;
  const u = usage.units;
  const units = u === undefined ? 0
    : (u.images ?? 0) * (price.perImage ?? 0) + ((u.characters ?? 0) / 1_000_000) * (price.perMillionChars ?? 0) + ((u.audioSeconds ?? 0) / 60) * (price.perMinute ?? 0);
  return micros / 1_000_000 + units;
}
