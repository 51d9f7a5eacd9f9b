/**
 * Shared pieces of the property and fuzz tests (test/fuzz-*.test.ts).
 *
 * Case counts: every property runs `runs(n)` cases; `n` is sized so that
 * `npm test` runs a few thousand cases in all. Long mode, by hand:
 *
 *   FUZZ_RUNS=100000 npx vitest run test/fuzz-rest.test.ts
 *
 * sets every property's count to FUZZ_RUNS (test timeouts scale with it).
 * FUZZ_SEED=<n> replays a run (fast-check prints the seed and the path of a
 * failure; FUZZ_PATH=<path> with the same seed replays just that case).
 */
import fc from "fast-check";

/** FUZZ_RUNS from the environment, when set to a positive integer. */
export const FUZZ_RUNS: number | undefined = (() => {
  const n = Number(process.env["FUZZ_RUNS"]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
})();

/** The number of cases for a property whose default is `n`. */
export function runs(n: number): number {
  return FUZZ_RUNS ?? n;
}

/** A test timeout for a property of `n` default cases taking about `msPerCase` each (generous, and scaled in long mode). */
export function timeoutFor(n: number, msPerCase: number): number {
  return Math.max(30_000, runs(n) * msPerCase * 4 + 10_000);
}

/**
 * fast-check parameters for a property of `n` default cases. With
 * `msPerCase` (the same as given to `timeoutFor`), the run (shrinking
 * included) stops before the test's timeout, so a failure found late in a
 * long run is still reported rather than lost to the timeout.
 */
export function params<T>(n: number, msPerCase?: number, extra: fc.Parameters<T> = {}): fc.Parameters<T> {
  const seed = Number(process.env["FUZZ_SEED"]);
  const path = process.env["FUZZ_PATH"];
  return {
    numRuns: runs(n),
    ...(msPerCase === undefined ? {} : { interruptAfterTimeLimit: timeoutFor(n, msPerCase) - 8_000 }),
    ...(Number.isInteger(seed) ? { seed } : {}),
    ...(path !== undefined && path !== "" ? { path } : {}),
    ...extra,
  };
}

/** Prints a failure as soon as it is found (long runs shrink for a while before fast-check reports it). */
const seen = new Set<string>();
export function early(property: string, message: string): void {
  if (seen.has(property)) return;
  seen.add(property);
  console.error(`[fuzz] first failure of '${property}':\n${message}`);
}

/** Cases run, per property name, printed by `report()` at the end of a file. */
const tally = new Map<string, number>();

export function count(name: string, n = 1): void {
  tally.set(name, (tally.get(name) ?? 0) + n);
}

/** Total cases counted so far in this file. */
export function total(): number {
  let t = 0;
  for (const n of tally.values()) t += n;
  return t;
}

/** Prints the case counts of this file (call from afterAll). */
export function report(file: string): void {
  const lines = [...tally].map(([k, n]) => `  ${k}: ${n}`);
  console.log(`${file}: ${total()} fuzz cases${FUZZ_RUNS ? ` (FUZZ_RUNS=${FUZZ_RUNS})` : ""}\n${lines.join("\n")}`);
}

// ---------------------------------------------------------------------------
// Values

/**
 * A number literal JSON text can hold but a JS number cannot (1e400 parses
 * as Infinity), or one at a boundary. Carried as a marked string and written
 * bare by `toJsonText`.
 */
const RAW = "\u0000raw:";
export const rawNumber: fc.Arbitrary<string> = fc
  .constantFrom("1e400", "-1e400", "1e-400", "-0", "9007199254740993", "4294967296", "4294967295", "-1", "0.5", "123456789012345678901234567890", "1E2", "-0.0")
  .map((s) => RAW + s);

/** Arrays nested `n` deep, as raw JSON text (no serialiser of nested values survives ten thousand levels). */
export const rawDeep: fc.Arbitrary<string> = fc.constantFrom(200, 300, 3_000, 20_000).map((n) => RAW + "[".repeat(n) + "]".repeat(n));

/** JSON text of a value, with `rawNumber` and `rawDeep` markers written as they are. */
export function toJsonText(v: unknown): string {
  return JSON.stringify(v).replace(/"\\u0000raw:([^"]*)"/g, "$1");
}

/** Strings that tend to break things: names of Object.prototype members, control and lone surrogate characters, near-miss enum values. */
export const nastyStrings = [
  "", " ", "__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf",
  "\u0000", "\ud800", "\udfff", "\ud83d", "😀", "\u202e", "\ufeff", "\r\n", "\n\n", "data: x\n\n", "[DONE]",
  "null", "true", "NaN", "Infinity", "-1", "%", "%zz", "../../etc/passwd", "a/b/c", "models/x", "tunedModels/",
  "gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "text-embedding-3-small",
  "user", "assistant", "system", "tool", "developer", "function", "text", "image_url", "tool_use", "tool_result",
  "auto", "none", "required", "any", "json_object", "json_schema", "float", "base64", "input_text", "message",
];

export const weirdString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 16 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 16 }) },
  { weight: 3, arbitrary: fc.constantFrom(...nastyStrings) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 40_000 }).map((n) => "x".repeat(n)) },
);

/** Object keys: short strings and the nasty ones. */
export const weirdKey: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom(...nastyStrings.filter((s) => s.length < 40)) },
);

export const weirdNumber: fc.Arbitrary<number | string> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(0, -1, 1, 0.5, 2, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53, -(2 ** 53), 1e308, Number.MIN_VALUE, 1e21),
  rawNumber,
);

/** Any JSON value (nested a few levels), made of weird strings, keys and numbers. */
export const jsonish: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    weirdNumber,
    weirdString,
    tie("array"),
    tie("object"),
  ),
  array: fc.array(tie("value"), { maxLength: 4 }),
  object: fc.dictionary(weirdKey, tie("value"), { maxKeys: 4 }),
})).value;

/** A value nested `depth` levels deep in arrays or objects. */
export function deep(depth: number, kind: "array" | "object"): string {
  return kind === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

/** A printable ASCII header value (fetch refuses anything else before sending). */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 40 }).map((s) => s.replace(/[^\x20-\x7e]/g, "").trim()),
  fc.constantFrom("0", "-1", "1.5", "1e9", "99999999999", "abc", "no-cache", "no-store", "max-age=0", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
);

// ---------------------------------------------------------------------------
// Mutation of well-formed requests

export type Path = readonly (string | number)[];
export interface Mutation {
  path: Path;
  op: "set" | "delete";
  value: unknown;
}

/** Applies a mutation in place, making the containers on the way when they are missing (or not containers). */
export function applyMutation(target: Record<string, unknown>, m: Mutation): void {
  let o: Record<string | number, unknown> = target;
  for (let i = 0; i < m.path.length - 1; i++) {
    const k = m.path[i]!;
    let next = o[k];
    if (next === null || typeof next !== "object") {
      next = typeof m.path[i + 1] === "number" ? [] : {};
      o[k] = next;
    }
    o = next as Record<string | number, unknown>;
  }
  const last = m.path[m.path.length - 1]!;
  if (m.op === "delete") {
    if (Array.isArray(o) && typeof last === "number") o.splice(last, 1);
    else delete o[last];
  } else {
    Object.defineProperty(o, last, { value: m.value, enumerable: true, writable: true, configurable: true });
  }
}

/** A copy that keeps own `__proto__` keys as keys. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/**
 * Well-formed requests from `base`, each changed by up to three mutations at
 * `paths` (a field set to `values` or removed), and sometimes an unknown field
 * added at the top.
 */
export function mutated(base: fc.Arbitrary<Record<string, unknown>>, paths: readonly Path[], values: fc.Arbitrary<unknown>): fc.Arbitrary<Record<string, unknown>> {
  const mutation = fc.record({
    path: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...paths) }, { weight: 1, arbitrary: weirdKey.map((k) => [k] as Path) }),
    op: fc.constantFrom<"set" | "delete">("set", "set", "set", "delete"),
    value: values,
  });
  return fc.tuple(base, fc.array(mutation, { maxLength: 3 })).map(([b, ms]) => {
    const o = clone(b);
    // Values are copied in: generated values may be shared (constants), and a later mutation may write inside this one.
    for (const m of ms) applyMutation(o, { ...m, value: m.value === undefined ? undefined : clone(m.value) });
    return o;
  });
}

// ---------------------------------------------------------------------------
// Well-formed requests (each can be the base of mutations)

const text = fc.oneof({ weight: 4, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) }, { weight: 1, arbitrary: fc.constantFrom(...nastyStrings) });
const toolName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,15}$/);
const callId = fc.stringMatching(/^call_[a-zA-Z0-9]{1,12}$/);
const argsJson = fc.oneof(
  fc.dictionary(fc.string({ maxLength: 6 }), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 3 }).map((o) => JSON.stringify(o)),
  fc.constantFrom("", "{}", "{", "[]", "null", '{"a":1}'),
);
const schema = fc.constantFrom<Record<string, unknown>>(
  { type: "object", properties: {} },
  { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  { type: "object", properties: { n: { type: "integer" }, tags: { type: "array", items: { type: "string" } } } },
);
const imageUrl = fc.constantFrom("data:image/png;base64,iVBORw0KGgo=", "data:image/jpeg;base64,/9j/4AAQ", "https://example.invalid/cat.png", "data:image/svg+xml;base64,PHN2Zz4=");

/** Models the fuzz gateways know, and some they do not. */
export const models = {
  chat: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom("gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5") },
    { weight: 1, arbitrary: weirdString },
  ),
  embed: fc.oneof({ weight: 6, arbitrary: fc.constant("text-embedding-3-small") }, { weight: 1, arbitrary: weirdString }),
};

const openaiTool = fc.record({
  type: fc.constant("function"),
  function: fc.record({ name: toolName, description: text, parameters: schema, strict: fc.boolean() }, { requiredKeys: ["name"] }),
});

const chatMessage = fc.oneof(
  fc.record({ role: fc.constantFrom("system", "developer", "user"), content: text }),
  fc.record({
    role: fc.constant("user"),
    content: fc.array(
      fc.oneof(fc.record({ type: fc.constant("text"), text }), fc.record({ type: fc.constant("image_url"), image_url: fc.record({ url: imageUrl }) })),
      { minLength: 1, maxLength: 3 },
    ),
    name: toolName,
  }, { requiredKeys: ["role", "content"] }),
  fc.record({
    role: fc.constant("assistant"),
    content: fc.option(text, { nil: null }),
    tool_calls: fc.array(fc.record({ id: callId, type: fc.constant("function"), function: fc.record({ name: toolName, arguments: argsJson }) }), { minLength: 1, maxLength: 2 }),
  }, { requiredKeys: ["role", "content"] }),
  fc.record({ role: fc.constant("tool"), tool_call_id: callId, content: text }),
);

/** OpenAI Chat Completions request bodies, mostly well-formed. */
export const chatRequest: fc.Arbitrary<Record<string, unknown>> = fc.record({
  model: models.chat,
  messages: fc.array(chatMessage, { minLength: 1, maxLength: 4 }),
  stream: fc.boolean(),
  stream_options: fc.record({ include_usage: fc.boolean() }),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  max_tokens: fc.integer({ min: 1, max: 4096 }),
  max_completion_tokens: fc.integer({ min: 1, max: 4096 }),
  n: fc.integer({ min: 1, max: 3 }),
  seed: fc.integer(),
  stop: fc.oneof(text, fc.array(text, { maxLength: 3 })),
  user: text,
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  tools: fc.array(openaiTool, { minLength: 1, maxLength: 2 }),
  tool_choice: fc.oneof(fc.constantFrom("auto", "none", "required"), toolName.map((name) => ({ type: "function", function: { name } }))),
  parallel_tool_calls: fc.boolean(),
  response_format: fc.oneof(
    fc.constant({ type: "text" }),
    fc.constant({ type: "json_object" }),
    fc.record({ type: fc.constant("json_schema"), json_schema: fc.record({ name: toolName, schema, strict: fc.boolean() }) }),
  ),
  presence_penalty: fc.double({ min: -2, max: 2, noNaN: true }),
  reasoning_effort: fc.constantFrom("low", "medium", "high"),
  fallbacks: fc.array(models.chat, { maxLength: 2 }),
}, { requiredKeys: ["model", "messages"] });

export const chatPaths: readonly Path[] = [
  ["model"], ["messages"], ["messages", 0], ["messages", 0, "role"], ["messages", 0, "content"], ["messages", 0, "content", 0],
  ["messages", 0, "content", 0, "type"], ["messages", 0, "content", 0, "text"], ["messages", 0, "content", 0, "image_url", "url"],
  ["messages", 0, "tool_calls"], ["messages", 0, "tool_calls", 0, "function", "arguments"], ["messages", 0, "tool_calls", 0, "id"],
  ["messages", 0, "tool_call_id"], ["messages", 0, "name"], ["messages", 1], ["messages", 1, "role"],
  ["stream"], ["stream_options"], ["stream_options", "include_usage"], ["temperature"], ["top_p"], ["max_tokens"],
  ["max_completion_tokens"], ["n"], ["seed"], ["stop"], ["user"], ["metadata"], ["metadata", "k"], ["tools"], ["tools", 0],
  ["tools", 0, "type"], ["tools", 0, "function"], ["tools", 0, "function", "name"], ["tools", 0, "function", "parameters"],
  ["tool_choice"], ["tool_choice", "function", "name"], ["parallel_tool_calls"], ["response_format"], ["response_format", "type"],
  ["response_format", "json_schema"], ["response_format", "json_schema", "schema"], ["fallbacks"], ["fallbacks", 0], ["logprobs"],
  ["reasoning_effort"], ["store"], ["extra_body"],
];

const anthropicBlock = fc.oneof(
  fc.record({ type: fc.constant("text"), text }),
  fc.record({ type: fc.constant("text"), text, cache_control: fc.constant({ type: "ephemeral" }) }),
  fc.record({ type: fc.constant("image"), source: fc.oneof(
    fc.record({ type: fc.constant("base64"), media_type: fc.constantFrom("image/png", "image/jpeg"), data: fc.constant("iVBORw0KGgo=") }),
    fc.record({ type: fc.constant("url"), url: fc.constant("https://example.invalid/cat.png") }),
  ) }),
);
const anthropicMessage = fc.oneof(
  fc.record({ role: fc.constantFrom("user", "assistant"), content: text }),
  fc.record({ role: fc.constant("user"), content: fc.array(anthropicBlock, { minLength: 1, maxLength: 3 }) }),
  fc.record({ role: fc.constant("assistant"), content: fc.array(fc.oneof(
    fc.record({ type: fc.constant("text"), text }),
    fc.record({ type: fc.constant("tool_use"), id: callId, name: toolName, input: fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 2 }) }),
    fc.record({ type: fc.constant("thinking"), thinking: text, signature: fc.string({ maxLength: 10 }) }),
  ), { minLength: 1, maxLength: 3 }) }),
  fc.record({ role: fc.constant("user"), content: fc.array(fc.record({
    type: fc.constant("tool_result"), tool_use_id: callId, content: fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { maxLength: 2 })), is_error: fc.boolean(),
  }, { requiredKeys: ["type", "tool_use_id"] }), { minLength: 1, maxLength: 2 }) }),
);

/** Anthropic Messages request bodies, mostly well-formed. */
export const messagesRequest: fc.Arbitrary<Record<string, unknown>> = fc.record({
  model: models.chat,
  max_tokens: fc.integer({ min: 1, max: 4096 }),
  messages: fc.array(anthropicMessage, { minLength: 1, maxLength: 4 }),
  system: fc.oneof(text, fc.array(fc.record({ type: fc.constant("text"), text }), { maxLength: 2 })),
  stream: fc.boolean(),
  temperature: fc.double({ min: 0, max: 1, noNaN: true }),
  top_p: fc.double({ min: 0, max: 1, noNaN: true }),
  top_k: fc.integer({ min: 1, max: 100 }),
  stop_sequences: fc.array(text, { maxLength: 2 }),
  tools: fc.array(fc.record({ name: toolName, description: text, input_schema: schema }, { requiredKeys: ["name", "input_schema"] }), { minLength: 1, maxLength: 2 }),
  tool_choice: fc.oneof(fc.constantFrom({ type: "auto" }, { type: "any" }, { type: "none" }), toolName.map((name) => ({ type: "tool", name }))),
  metadata: fc.record({ user_id: fc.string({ maxLength: 10 }) }),
  thinking: fc.constant({ type: "enabled", budget_tokens: 1024 }),
}, { requiredKeys: ["model", "max_tokens", "messages"] });

export const messagesPaths: readonly Path[] = [
  ["model"], ["max_tokens"], ["messages"], ["messages", 0], ["messages", 0, "role"], ["messages", 0, "content"],
  ["messages", 0, "content", 0], ["messages", 0, "content", 0, "type"], ["messages", 0, "content", 0, "text"],
  ["messages", 0, "content", 0, "source"], ["messages", 0, "content", 0, "source", "type"], ["messages", 0, "content", 0, "source", "media_type"],
  ["messages", 0, "content", 0, "input"], ["messages", 0, "content", 0, "tool_use_id"], ["messages", 0, "content", 0, "content"],
  ["messages", 0, "extra"], ["messages", 1, "role"], ["system"], ["system", 0], ["system", 0, "type"], ["stream"], ["temperature"], ["top_p"], ["top_k"],
  ["stop_sequences"], ["stop_sequences", 0], ["tools"], ["tools", 0], ["tools", 0, "name"], ["tools", 0, "input_schema"], ["tools", 0, "type"],
  ["tool_choice"], ["tool_choice", "type"], ["tool_choice", "name"], ["tool_choice", "disable_parallel_tool_use"], ["metadata"],
  ["metadata", "user_id"], ["metadata", "other"], ["thinking"], ["service_tier"],
];

/** OpenAI embeddings request bodies, mostly well-formed. */
export const embeddingsRequest: fc.Arbitrary<Record<string, unknown>> = fc.record({
  model: models.embed,
  input: fc.oneof(
    text.filter((s) => s !== ""),
    fc.array(fc.string({ minLength: 1, maxLength: 20 }), { minLength: 1, maxLength: 4 }),
    fc.array(fc.nat(50_000), { minLength: 1, maxLength: 8 }),
    fc.array(fc.array(fc.nat(50_000), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
  ),
  dimensions: fc.integer({ min: 1, max: 64 }),
  encoding_format: fc.constantFrom("float", "base64"),
  user: text,
}, { requiredKeys: ["model", "input"] });

export const embeddingsPaths: readonly Path[] = [
  ["model"], ["input"], ["input", 0], ["input", 0, 0], ["input", 1], ["dimensions"], ["encoding_format"], ["user"], ["fallbacks"], ["fallbacks", 0], ["extra"],
];

const responsesItem = fc.oneof(
  fc.record({ type: fc.constant("message"), role: fc.constantFrom("user", "system", "developer"), content: fc.oneof(text, fc.array(fc.record({ type: fc.constant("input_text"), text }), { minLength: 1, maxLength: 2 })) }),
  fc.record({ role: fc.constant("user"), content: fc.array(fc.oneof(
    fc.record({ type: fc.constant("input_text"), text }),
    fc.record({ type: fc.constant("input_image"), image_url: imageUrl }),
  ), { minLength: 1, maxLength: 2 }) }),
  fc.record({ type: fc.constant("message"), role: fc.constant("assistant"), content: fc.array(fc.record({ type: fc.constant("output_text"), text }), { minLength: 1, maxLength: 2 }) }),
  fc.record({ type: fc.constant("function_call"), call_id: callId, name: toolName, arguments: argsJson }),
  fc.record({ type: fc.constant("function_call_output"), call_id: callId, output: text }),
);

/** OpenAI Responses request bodies, mostly well-formed. */
export const responsesRequest: fc.Arbitrary<Record<string, unknown>> = fc.record({
  model: models.chat,
  input: fc.oneof(text, fc.array(responsesItem, { minLength: 1, maxLength: 4 })),
  instructions: text,
  stream: fc.boolean(),
  store: fc.boolean(),
  temperature: fc.double({ min: 0, max: 2, noNaN: true }),
  max_output_tokens: fc.integer({ min: 16, max: 4096 }),
  tools: fc.array(fc.record({ type: fc.constant("function"), name: toolName, description: text, parameters: schema, strict: fc.boolean() }, { requiredKeys: ["type", "name"] }), { minLength: 1, maxLength: 2 }),
  tool_choice: fc.oneof(fc.constantFrom("auto", "none", "required"), toolName.map((name) => ({ type: "function", name }))),
  text: fc.record({ format: fc.oneof(fc.constant({ type: "text" }), fc.constant({ type: "json_object" }), fc.record({ type: fc.constant("json_schema"), name: toolName, schema })) }),
  metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
  reasoning: fc.record({ effort: fc.constantFrom("low", "medium", "high") }),
  parallel_tool_calls: fc.boolean(),
}, { requiredKeys: ["model", "input"] });

export const responsesPaths: readonly Path[] = [
  ["model"], ["input"], ["input", 0], ["input", 0, "type"], ["input", 0, "role"], ["input", 0, "content"], ["input", 0, "content", 0],
  ["input", 0, "content", 0, "type"], ["input", 0, "content", 0, "text"], ["input", 0, "content", 0, "image_url"], ["input", 0, "call_id"],
  ["input", 0, "arguments"], ["input", 0, "output"], ["input", 1, "type"], ["instructions"], ["stream"], ["store"], ["temperature"],
  ["max_output_tokens"], ["tools"], ["tools", 0], ["tools", 0, "type"], ["tools", 0, "name"], ["tools", 0, "parameters"], ["tool_choice"],
  ["tool_choice", "type"], ["text"], ["text", "format"], ["text", "format", "type"], ["text", "format", "schema"], ["text", "verbosity"],
  ["metadata"], ["metadata", "k"], ["reasoning"], ["reasoning", "effort"], ["previous_response_id"], ["include"], ["include", 0],
  ["truncation"], ["background"], ["conversation"], ["prompt"], ["user"], ["safety_identifier"], ["stream_options"], ["parallel_tool_calls"],
];

/** Values a mutated field gets: any JSON, or a value right for some other field. */
export const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: jsonish },
  { weight: 2, arbitrary: weirdNumber },
  { weight: 2, arbitrary: weirdString },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}, [null], { type: "text", text: "x" }, [{ role: "user", content: "x" }]) },
  // Objects that String() and Number() cannot convert: a message that prints a caller's value must not throw.
  { weight: 1, arbitrary: fc.constantFrom({ toString: null }, { toString: null, valueOf: null }, { toString: 1, valueOf: {} }) },
  { weight: 1, arbitrary: rawDeep },
);

// ---------------------------------------------------------------------------
// Bytes

/** A request body as bytes: JSON, JSON cut short, JSON with a byte replaced by invalid UTF-8, or any bytes. */
export function bodyBytes(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<Uint8Array> {
  const json = valid.map((v) => new TextEncoder().encode(toJsonText(v)));
  return fc.oneof(
    fc.uint8Array({ maxLength: 512 }),
    fc.tuple(json, fc.nat()).map(([b, n]) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
    fc.tuple(json, fc.nat(), fc.constantFrom(0xff, 0xfe, 0xc3, 0xe2, 0xf0, 0x80, 0xed, 0x00)).map(([b, n, x]) => {
      const c = Uint8Array.from(b);
      if (c.length > 0) c[n % c.length] = x;
      return c;
    }),
    fc.tuple(json, fc.uint8Array({ minLength: 1, maxLength: 8 }), fc.nat()).map(([b, junk, n]) => {
      const at = b.length === 0 ? 0 : n % b.length;
      const c = new Uint8Array(b.length + junk.length);
      c.set(b.subarray(0, at), 0);
      c.set(junk, at);
      c.set(b.subarray(at), at + junk.length);
      return c;
    }),
    fc.constantFrom(
      ...["", " ", "null", "0", "[]", '""', "{}", "{", "}", "[", '{"model":', '{"model":"gpt-4o-mini","messages":[', "\ufeff{}", "{\"a\":1}{\"b\":2}", deep(5000, "array"), deep(3000, "object")].map((s) => new TextEncoder().encode(s)),
    ),
  );
}

// ---------------------------------------------------------------------------
// Checks

/** OpenAI's error JSON: {error:{message,type,param,code}}. Returns a problem, or undefined. */
export function openAIErrorProblem(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return "not a JSON object";
  const e = (body as { error?: unknown }).error;
  if (typeof e !== "object" || e === null) return "no error object";
  const { message, type, param, code } = e as Record<string, unknown>;
  if (typeof message !== "string" || message === "") return "error.message is not a non-empty string";
  if (typeof type !== "string" || type === "") return "error.type is not a non-empty string";
  if (!(param === null || typeof param === "string")) return "error.param is not a string or null";
  if (!(code === null || typeof code === "string")) return "error.code is not a string or null";
  return undefined;
}

/** Anthropic's error JSON: {type:"error",error:{type,message}}. */
export function anthropicErrorProblem(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return "not a JSON object";
  const b = body as { type?: unknown; error?: unknown };
  if (b.type !== "error") return "type is not 'error'";
  if (typeof b.error !== "object" || b.error === null) return "no error object";
  const { type, message } = b.error as Record<string, unknown>;
  if (typeof type !== "string" || type === "") return "error.type is not a non-empty string";
  if (typeof message !== "string" || message === "") return "error.message is not a non-empty string";
  return undefined;
}

/** Splits an SSE body into events ({event, data}); good enough for the gateway's own output. */
export function sseEvents(text: string): { event: string | undefined; data: string }[] {
  const out: { event: string | undefined; data: string }[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    if (block.trim() === "") continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
    }
    out.push({ event, data: data.join("\n") });
  }
  return out;
}

/** Calls `fn` with a deadline; a hang becomes a rejection naming `what`. */
export async function withDeadline<T>(ms: number, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      ac.abort(new Error(`hang: ${what} took more than ${ms} ms`));
      reject(new Error(`hang: ${what} took more than ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([fn(ac.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A short description of a body for failure messages. */
export function preview(b: Uint8Array | string, max = 300): string {
  const s = typeof b === "string" ? b : Buffer.from(b).toString("latin1");
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}... (${s.length} chars)` : s);
}
