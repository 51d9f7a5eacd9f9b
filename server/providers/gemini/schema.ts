import { GatewayError } from "../../errors/errors.ts";

/**
 * A caller's JSON Schema (tool parameters) -> Gemini's `Schema`, an OpenAPI
 * 3.0 subset. Gemini rejects unknown keys with 400 "Invalid JSON payload
 * received. Unknown name ...", so only the keys it knows are kept:
 *
 *   type, format, title, description, nullable, enum, items, properties,
 *   required, propertyOrdering, minItems, maxItems, minProperties,
 *   maxProperties, minLength, maxLength, pattern, minimum, maximum, anyOf,
 *   default, example
 *
 * Rewritten: `type` is upper-cased ("object" -> "OBJECT"); a type list with
 * "null" becomes `nullable: true`; several non-null types become `anyOf`;
 * `const` becomes a one-value `enum`; `oneOf` becomes `anyOf`.
 * Dropped (no Gemini equivalent; the model sees a looser schema):
 * `$schema`, `$id`, `$comment`, `additionalProperties`, `patternProperties`,
 * `unevaluatedProperties`, `strict`, `examples`, `allOf`, `not`,
 * `if`/`then`/`else`, `dependentRequired`, `multipleOf`, `exclusiveMinimum`,
 * `exclusiveMaximum`, `uniqueItems`, `contentEncoding`, and any other key;
 * `format` values Gemini does not accept for the type (it answers 400 for
 * e.g. "uri" or "email"); `enum` that is not a list of strings.
 * Refused: `$ref` / `$defs` / `definitions` (resolving references is not done
 * here; the caller can inline the definitions).
 */

const COPY = ["title", "description", "nullable", "pattern", "minimum", "maximum", "default", "example", "propertyOrdering"] as const;
const COUNTS = ["minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"] as const;
const FORMATS: Record<string, ReadonlySet<string>> = {
  STRING: new Set(["enum", "date-time"]),
  INTEGER: new Set(["int32", "int64"]),
  NUMBER: new Set(["float", "double"]),
};
const TYPES = new Set(["STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"]);

type Json = Record<string, unknown>;

function isObj(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function toGeminiSchema(schema: unknown, param: string): Json {
  if (!isObj(schema)) return {};
  for (const k of ["$ref", "$defs", "definitions"]) {
    if (k in schema) {
      throw new GatewayError("unsupported", `${param}: Gemini function schemas do not support '${k}'; inline the definitions`, { param });
    }
  }
  const out: Json = {};
  let types = (Array.isArray(schema["type"]) ? schema["type"] : schema["type"] === undefined ? [] : [schema["type"]])
    .filter((t): t is string => typeof t === "string")
    .map((t) => t.toUpperCase())
    .filter((t) => TYPES.has(t));
  if (types.includes("NULL") && types.length > 1) {
    out["nullable"] = true;
    types = types.filter((t) => t !== "NULL");
  }
  if (types.length > 1) {
    // ["string", "number"]: one branch per type, the rest of the keywords apply to each.
    return { ...(out["nullable"] ? { nullable: true } : {}), anyOf: types.map((t) => toGeminiSchema({ ...schema, type: t.toLowerCase() }, param)) };
  }
  if (types.length === 1) out["type"] = types[0];
  for (const k of COPY) if (schema[k] !== undefined) out[k] = schema[k];
  // Google's proto has these as int64, which JSON carries as strings or numbers; either is accepted.
  for (const k of COUNTS) if (typeof schema[k] === "number" || typeof schema[k] === "string") out[k] = schema[k];
  if (typeof schema["format"] === "string" && FORMATS[String(out["type"])]?.has(schema["format"])) out["format"] = schema["format"];
  const en = schema["const"] !== undefined ? [schema["const"]] : schema["enum"];
  if (Array.isArray(en) && en.length > 0 && en.every((v) => typeof v === "string")) {
    out["enum"] = en;
    out["type"] ??= "STRING";
  }
  if (isObj(schema["properties"])) {
    const props: Json = {};
    for (const [name, sub] of Object.entries(schema["properties"])) props[name] = toGeminiSchema(sub, `${param}.properties.${name}`);
    out["properties"] = props;
  }
  if (Array.isArray(schema["required"])) out["required"] = schema["required"].filter((r) => typeof r === "string");
  if (isObj(schema["items"])) out["items"] = toGeminiSchema(schema["items"], `${param}.items`);
  const any = schema["anyOf"] ?? schema["oneOf"];
  if (Array.isArray(any)) out["anyOf"] = any.map((s, i) => toGeminiSchema(s, `${param}.anyOf[${i}]`));
  // Gemini answers 400 "properties: should be non-empty for OBJECT type".
  if (out["type"] === "OBJECT" && isObj(out["properties"]) && Object.keys(out["properties"]).length === 0) delete out["properties"];
  return out;
}

/**
 * Tool parameters: an object schema without properties is sent as no
 * parameters at all (Gemini refuses an OBJECT with empty properties).
 */
export function toolParameters(schema: unknown, param: string): Json | undefined {
  if (!isObj(schema)) return undefined;
  const out = toGeminiSchema(schema, param);
  if (out["type"] === "OBJECT" && out["properties"] === undefined && out["anyOf"] === undefined) return undefined;
  return Object.keys(out).length === 0 ? undefined : out;
}
