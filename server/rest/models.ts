import { GatewayError } from "../errors/errors.ts";
import { encodeModel, encodeModelList } from "../wire/openai/models.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { sendJson, type Req, type Res } from "./http.ts";

/** GET /v1/models and GET /v1/models/{id}: what the gateway can route to. */
export async function handleModels(req: Req, res: Res, deps: RestDeps, startedAt: number, id: string | undefined): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const models = await deps.pipeline.listModels(entry);
  if (id === undefined) return sendJson(res, 200, encodeModelList(models));
  const m = models.find((x) => x.id === id);
  if (m === undefined) throw new GatewayError("model_not_found", `The model '${id}' does not exist`, { param: "model" });
  sendJson(res, 200, encodeModel(m));
}
