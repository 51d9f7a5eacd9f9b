import type { Model } from "../../../gen/switchyard/v1/models_pb.ts";
import type { JsonRecord } from "./json.ts";

/** OpenAI's model object and list, from canonical Model entries. */
export function encodeModel(m: Model): JsonRecord {
  return { id: m.id, object: "model", created: Number(m.created), owned_by: m.ownedBy || m.provider };
}

export function encodeModelList(models: readonly Model[]): JsonRecord {
  return { object: "list", data: models.map(encodeModel) };
}
