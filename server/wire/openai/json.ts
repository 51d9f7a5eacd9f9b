import { invalid } from "../../errors/errors.ts";

/**
 * Small type guards for untrusted JSON at the edge. Each failure throws an
 * `invalid_request` GatewayError naming the field, in OpenAI's `param` form
 * (`messages[0].content`).
 */
export type JsonRecord = Record<string, unknown>;

export function isRecord(v: unknown): v is JsonRecord {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

/**
 * String(v) for a message about a caller's (or a provider's) value, never
 * throwing: JSON can make an object String() cannot convert,
 * {"toString": null}, and a TypeError there was a 500 instead of the 400.
 */
export function shown(v: unknown): string {
  try {
    return String(v);
  } catch {
    return typeName(v);
  }
}

export function expectRecord(v: unknown, param: string): JsonRecord {
  if (!isRecord(v)) throw invalid(`${param}: expected an object, got ${typeName(v)}`, param);
  return v;
}

export function expectArray(v: unknown, param: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${param}: expected an array, got ${typeName(v)}`, param);
  return v;
}

export function expectString(v: unknown, param: string): string {
  if (typeof v !== "string") throw invalid(`${param}: expected a string, got ${typeName(v)}`, param);
  return v;
}

/** Absent and null both mean "not set", as in OpenAI's API. */
export function optString(v: unknown, param: string): string | undefined {
  return v === undefined || v === null ? undefined : expectString(v, param);
}

export function optNumber(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalid(`${param}: expected a number, got ${typeName(v)}`, param);
  return v;
}

export function optBoolean(v: unknown, param: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw invalid(`${param}: expected a boolean, got ${typeName(v)}`, param);
  return v;
}

/** A non-negative integer that fits a uint32. */
export function optCount(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
    throw invalid(`${param}: expected a non-negative integer, got ${typeof v === "number" ? v : typeName(v)}`, param);
  }
  return v;
}

export function optRecord(v: unknown, param: string): JsonRecord | undefined {
  return v === undefined || v === null ? undefined : expectRecord(v, param);
}

/**
 * The deepest nesting of arrays and objects accepted in JSON from outside,
 * from callers and from providers alike. JSON.parse takes any depth, but what
 * the gateway does next (JSON.stringify, protobuf Structs, structured clones)
 * recurses, and some thousands of levels down it runs out of stack: a
 * RangeError, a 500, where the fault is the sender's. Real requests and
 * answers nest a dozen levels or so (tool schemas); this leaves plenty of room.
 */
export const MAX_JSON_DEPTH = 256;

/** Whether a parsed JSON value nests deeper than `limit` (walked without recursion, so any depth is safe). */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (value === null || typeof value !== "object") return false;
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (depth > limit) return true;
    for (const x of Array.isArray(v) ? v : Object.values(v)) {
      if (x !== null && typeof x === "object") stack.push([x, depth + 1]);
    }
  }
  return false;
}
