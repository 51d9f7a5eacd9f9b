import { GatewayError, invalid } from "../errors/errors.ts";
import { toOpenAIError } from "../errors/to-openai.ts";
import type { ForwardPath } from "../providers/types.ts";
import { isRecord } from "../wire/openai/json.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { startSse, writeFrame } from "./sse.ts";

/** Moderations name a model optionally; OpenAI's default. */
const DEFAULT_MODERATION_MODEL = "omni-moderation-latest";

/**
 * POST /v1/completions (legacy text completions, streaming too),
 * /v1/moderations and /v1/images/generations: OpenAI's bodies, forwarded to
 * the OpenAI-format providers that serve the model through the pipeline
 * (keys, budgets, routing, fallbacks, the request log), answered as the
 * provider answered. Other providers get a 400 naming them.
 */
export async function handleForward(req: Req, res: Res, deps: RestDeps, startedAt: number, path: ForwardPath): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  const body = await readJsonBody(req, deps.maxBodyBytes);
  if (!isRecord(body)) throw invalid("the request body must be a JSON object");
  if (path === "moderations" && body["model"] === undefined) body["model"] = DEFAULT_MODERATION_MODEL;
  if (body["model"] !== undefined && typeof body["model"] !== "string") throw invalid("model: must be a string", "model");
  const out = await deps.pipeline.forward(path, body, entry);
  if (out.kind === "json") {
    sendJson(res, 200, out.json, gatewayHeaders(out.gateway));
    return;
  }
  let started = false;
  try {
    for await (const chunk of out.body) {
      if (!started) {
        startSse(res, { ...gatewayHeaders(out.gateway), "content-type": out.contentType });
        started = true;
      }
      const wait = writeFrame(res, chunk);
      if (wait) await wait;
      if (entry.signal.aborted) break;
    }
    if (!started) startSse(res, gatewayHeaders(out.gateway));
    res.end();
  } catch (err) {
    const e = GatewayError.from(err);
    if (!started) throw e; // nothing sent yet: an ordinary HTTP error
    if (!entry.signal.aborted) res.write(`data: ${JSON.stringify(toOpenAIError(e).body)}\n\n`);
    res.end();
  }
}
