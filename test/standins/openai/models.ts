/**
 * `GET /v1/models` and `GET /v1/models/{id}` for the stand-in: the configured
 * model list in OpenAI's `model` object shape.
 */
import { createHash } from "node:crypto";
import { errorAnswer, type ErrorAnswer } from "./wire.ts";

/** OpenAI's `model` object. */
export interface ModelObject {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
}

/** A model object with a `created` stable per id (a 2023–2024 timestamp), owned by "system" as OpenAI's are. */
export function modelObject(id: string): ModelObject {
  const spread = createHash("sha256").update(id).digest().readUInt32LE(0) % 31_536_000;
  return { id, object: "model", created: 1_680_000_000 + spread, owned_by: "system" };
}

/** The `list` answer of `GET /v1/models`. */
export function renderModelList(ids: readonly string[]): { object: "list"; data: ModelObject[] } {
  return { object: "list", data: ids.map(modelObject) };
}

/** `GET /v1/models/{id}`: the model, or OpenAI's 404 for an unknown one. */
export function retrieveModel(ids: ReadonlySet<string>, id: string): ModelObject | ErrorAnswer {
  if (ids.has(id)) return modelObject(id);
  return errorAnswer(404, `The model '${id}' does not exist`, "invalid_request_error", "model", "model_not_found");
}
