/**
 * Validates JSON values against the schemas of OpenAI's official OpenAPI spec
 * (`shared/spec/openai-openapi.yaml`).
 *
 * Why: the gateway claims to be OpenAI-compatible, and the stand-in OpenAI
 * server claims to be faithful. Both claims are only worth something when the
 * bytes they produce are checked against OpenAI's own published contract, not
 * against shapes we typed from memory.
 *
 * How: the spec is OpenAPI 3.1 (JSON Schema 2020-12) with a few OpenAPI 3.0
 * leftovers. A pre-pass rewrites those leftovers (`nullable: true`, boolean
 * `exclusiveMinimum`/`exclusiveMaximum`) into 2020-12, then `components.schemas`
 * is registered with Ajv as one schema document so `#/components/schemas/X`
 * refs resolve. Ajv compiles lazily: asking for one schema compiles only what
 * it references, never the whole 3 MB spec. The pre-processed schemas are cached
 * on disk (keyed by the spec's content hash) because parsing the YAML costs
 * about a second per test process; validators are cached per process.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import { parse as parseYaml } from "yaml";

/** Result of {@link validateAgainst}: `errors` is "" when `valid` is true. */
export interface SchemaCheck {
  valid: boolean;
  errors: string;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

const SPEC_ID = "https://switchyard.test/openai-openapi.json";

/**
 * Where the spec lives: `$OPENAI_SPEC_PATH`, else the copy vendored in
 * `test/fixtures/` (OpenAI's spec, MIT licensed, see openai-openapi.LICENSE),
 * so tests do not depend on anything outside the repository.
 */
export function specPath(): string {
  const fromEnv = process.env.OPENAI_SPEC_PATH;
  if (fromEnv) return fromEnv;
  return fileURLToPath(new URL("../fixtures/openai-openapi.yaml", import.meta.url));
}

/** Keys whose values are data, not sub-schemas: never rewrite inside them. */
const DATA_KEYS = new Set(["example", "examples", "default", "const", "enum"]);

/** Keys whose values map names (which may be anything, even "x-foo") to sub-schemas. */
const SCHEMA_MAP_KEYS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);

function normalizeSchemaMap(map: Json): Json {
  if (map === null || typeof map !== "object" || Array.isArray(map)) return map;
  const out: JsonObject = {};
  for (const [name, schema] of Object.entries(map)) out[name] = normalizeOpenApiSchema(schema);
  return out;
}

/**
 * Rewrites OpenAPI 3.0 idioms into JSON Schema 2020-12, in place.
 * - `nullable: true` → `anyOf: [<schema>, {type: "null"}]` (works with `$ref`,
 *   `enum` and `type` siblings alike, unlike widening `type`).
 * - `exclusiveMinimum: true` + `minimum: m` → `exclusiveMinimum: m` (same for max).
 * Exported for its own test; callers normally never need it.
 */
export function normalizeOpenApiSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(normalizeOpenApiSchema);
  if (node === null || typeof node !== "object") return node;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith("x-")) continue; // vendor extensions carry no validation meaning
    if (DATA_KEYS.has(key)) out[key] = value;
    else if (SCHEMA_MAP_KEYS.has(key)) out[key] = normalizeSchemaMap(value);
    else out[key] = normalizeOpenApiSchema(value);
  }
  for (const [flag, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[flag] === "boolean") {
      if (out[flag] === true && typeof out[bound] === "number") {
        out[flag] = out[bound];
        delete out[bound];
      } else {
        delete out[flag];
      }
    }
  }
  if ("nullable" in out && typeof out.nullable === "boolean") {
    const nullable = out.nullable;
    delete out.nullable;
    if (nullable) return { anyOf: [out, { type: "null" }] };
  }
  return out;
}

/** Loads `components.schemas`, normalized, through an on-disk cache keyed by content hash. */
function loadSchemas(): JsonObject {
  const path = specPath();
  if (!existsSync(path)) {
    throw new Error(`OpenAI OpenAPI spec not found at ${path} (set OPENAI_SPEC_PATH)`);
  }
  const text = readFileSync(path, "utf8");
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 16);
  const cacheFile = join(tmpdir(), `switchyard-openai-schemas-${hash}.json`);
  if (existsSync(cacheFile)) {
    try {
      return JSON.parse(readFileSync(cacheFile, "utf8")) as JsonObject;
    } catch {
      // corrupt or half-written cache: fall through and rebuild it
    }
  }
  const doc = parseYaml(text, { maxAliasCount: -1 }) as { components?: { schemas?: JsonObject } };
  const raw = doc.components?.schemas;
  if (!raw) throw new Error(`${path} has no components.schemas`);
  const schemas = normalizeSchemaMap(raw) as JsonObject;
  try {
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(schemas));
    renameSync(tmp, cacheFile); // atomic: parallel test processes never read half a file
  } catch {
    // a read-only tmpdir only costs speed
  }
  return schemas;
}

let ajv: Ajv2020 | undefined;
let schemaNames: Set<string> | undefined;
const validators = new Map<string, ValidateFunction>();

function getAjv(): { ajv: Ajv2020; names: Set<string> } {
  if (!ajv || !schemaNames) {
    const schemas = loadSchemas();
    const instance = new Ajv2020({
      strict: false, // the spec uses discriminator, x-*, deprecated, example...
      allErrors: true,
      validateFormats: false, // unixtime, float, int64, binary... are annotations here
      validateSchema: false, // the spec is not meta-schema clean (OpenAPI leftovers)
      allowUnionTypes: true,
      logger: false,
    });
    instance.addSchema({ $id: SPEC_ID, components: { schemas } });
    ajv = instance;
    schemaNames = new Set(Object.keys(schemas));
  }
  return { ajv, names: schemaNames };
}

/**
 * The compiled validator for `components.schemas[schemaName]`, compiled once
 * per process. Throws if the spec has no such schema (a typo must not pass).
 */
export function getValidator(schemaName: string): ValidateFunction {
  const cached = validators.get(schemaName);
  if (cached) return cached;
  const { ajv: instance, names } = getAjv();
  if (!names.has(schemaName)) {
    throw new Error(`No schema "${schemaName}" in components.schemas of ${specPath()}`);
  }
  const validate = instance.compile({ $ref: `${SPEC_ID}#/components/schemas/${schemaName}` });
  validators.set(schemaName, validate);
  return validate;
}

function formatErrors(schemaName: string, errors: ErrorObject[] | null | undefined): string {
  if (!errors || errors.length === 0) return "";
  return errors
    .map((e) => `${schemaName}${e.instancePath || "/"}: ${e.message ?? e.keyword} ${JSON.stringify(e.params)} (schema ${e.schemaPath})`)
    .join("\n");
}

/**
 * Checks `value` against `components.schemas[schemaName]` of the OpenAI spec.
 * Never throws for an invalid value (only for an unknown schema name); use it
 * to assert that something is *rejected*.
 */
export function validateAgainst(schemaName: string, value: unknown): SchemaCheck {
  const validate = getValidator(schemaName);
  const valid = validate(value) as boolean;
  return { valid, errors: valid ? "" : formatErrors(schemaName, validate.errors) };
}

/**
 * Throws an Error listing every Ajv error (instance path, message, params)
 * when `value` does not match `components.schemas[schemaName]`.
 */
export function assertMatchesSchema(schemaName: string, value: unknown): void {
  const { valid, errors } = validateAgainst(schemaName, value);
  if (!valid) {
    throw new Error(`value does not match OpenAI schema ${schemaName}:\n${errors}\nvalue: ${JSON.stringify(value).slice(0, 2000)}`);
  }
}
