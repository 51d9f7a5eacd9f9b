/**
 * The spec validator must accept what OpenAI's spec allows (including the
 * OpenAPI 3.0 `nullable` leftovers) and, just as important, reject what it
 * does not: a validator that passes everything would make every
 * "matches the spec" assertion in the suite worthless.
 */
import { describe, expect, it } from "vitest";
import { assertMatchesSchema, getValidator, normalizeOpenApiSchema, validateAgainst } from "./openapi.ts";

const completion = {
  id: "chatcmpl-abc",
  object: "chat.completion",
  created: 1741570283,
  model: "gpt-4o-mini",
  choices: [{ index: 0, message: { role: "assistant", content: "hi", refusal: null, annotations: [] }, logprobs: null, finish_reason: "stop" }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  service_tier: "default",
  system_fingerprint: "fp_1234567890",
};

const chunk = {
  id: "chatcmpl-abc",
  object: "chat.completion.chunk",
  created: 1741570283,
  model: "gpt-4o-mini",
  choices: [{ index: 0, delta: { content: "hi" }, logprobs: null, finish_reason: null }],
  usage: null,
};

describe("normalizeOpenApiSchema", () => {
  it("rewrites OpenAPI 3.0 idioms into JSON Schema 2020-12", () => {
    expect(normalizeOpenApiSchema({ type: "string", enum: ["a"], nullable: true })).toEqual({ anyOf: [{ type: "string", enum: ["a"] }, { type: "null" }] });
    expect(normalizeOpenApiSchema({ $ref: "#/x", nullable: true })).toEqual({ anyOf: [{ $ref: "#/x" }, { type: "null" }] });
    expect(normalizeOpenApiSchema({ type: "number", minimum: 0, exclusiveMinimum: true })).toEqual({ type: "number", exclusiveMinimum: 0 });
    expect(normalizeOpenApiSchema({ type: "number", maximum: 2, exclusiveMaximum: false })).toEqual({ type: "number", maximum: 2 });
    expect(normalizeOpenApiSchema({ "x-oaiMeta": {}, properties: { "x-name": { type: "string", nullable: false } } })).toEqual({
      properties: { "x-name": { type: "string" } },
    });
    expect(normalizeOpenApiSchema({ default: { nullable: true }, example: { nullable: true } })).toEqual({ default: { nullable: true }, example: { nullable: true } });
  });
});

describe("validateAgainst", () => {
  it("compiles the schemas the suite uses within a few seconds and caches them", () => {
    const t0 = performance.now();
    for (const name of ["CreateChatCompletionResponse", "CreateChatCompletionStreamResponse", "CreateEmbeddingResponse", "ListModelsResponse", "ErrorResponse", "Error"]) {
      getValidator(name);
    }
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(getValidator("ErrorResponse")).toBe(getValidator("ErrorResponse"));
  });

  it("accepts spec-conforming values, nullable fields included", () => {
    expect(validateAgainst("CreateChatCompletionResponse", completion)).toEqual({ valid: true, errors: "" });
    expect(validateAgainst("CreateChatCompletionStreamResponse", chunk).valid).toBe(true); // usage: null, finish_reason: null
    expect(validateAgainst("CreateChatCompletionStreamResponse", { ...chunk, choices: [], usage: completion.usage }).valid).toBe(true);
    expect(validateAgainst("ErrorResponse", { error: { message: "m", type: "t", param: null, code: null } }).valid).toBe(true);
    expect(validateAgainst("ListModelsResponse", { object: "list", data: [{ id: "m", object: "model", created: 1, owned_by: "system" }] }).valid).toBe(true);
  });

  it("rejects broken values and says where", () => {
    const noChoices = validateAgainst("CreateChatCompletionResponse", { ...completion, choices: undefined });
    expect(noChoices.valid).toBe(false);
    expect(noChoices.errors).toContain("must have required property 'choices'");
    const badReason = validateAgainst("CreateChatCompletionStreamResponse", { ...chunk, choices: [{ ...chunk.choices[0], finish_reason: "halt" }] });
    expect(badReason.errors).toContain("/choices/0/finish_reason");
    expect(validateAgainst("Error", { message: "m", type: "t", code: null }).valid).toBe(false); // `param` is required
    expect(validateAgainst("CreateEmbeddingResponse", { object: "list", model: "m", data: [{ object: "embedding", index: 0, embedding: ["x"] }], usage: { prompt_tokens: 1, total_tokens: 1 } }).valid).toBe(false);
    expect(() => assertMatchesSchema("ErrorResponse", { error: { message: 1 } })).toThrow(/ErrorResponse\/error\/message: must be string/);
  });

  it("refuses unknown schema names instead of passing everything", () => {
    expect(() => validateAgainst("NoSuchSchema", {})).toThrow(/No schema "NoSuchSchema"/);
  });
});
