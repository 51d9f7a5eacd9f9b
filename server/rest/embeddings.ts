import { decodeEmbedRequest, encodeEmbedResponse } from "../wire/openai/embeddings.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";

/** POST /v1/embeddings, OpenAI's Embeddings API (float and base64 encodings). */
export async function handleEmbeddings(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const body = await readJsonBody(req, deps.maxBodyBytes);
  const { request, encoding } = decodeEmbedRequest(body);
  const result = await deps.pipeline.embed(request, entry);
  sendJson(res, 200, encodeEmbedResponse(result, encoding), gatewayHeaders(result.gateway));
}
