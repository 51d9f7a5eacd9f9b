import { GatewayError } from "../errors/errors.ts";
import { handleChatCompletions } from "./chat.ts";
import type { RestDeps } from "./context.ts";
import { handleCountTokens } from "./count-tokens.ts";
import { handleEmbeddings } from "./embeddings.ts";
import { sendError, sendJson, type Req, type Res } from "./http.ts";
import { handleMessages } from "./messages.ts";
import { handleModels } from "./models.ts";
import { handleForward } from "./forward.ts";
import type { ForwardPath } from "../providers/types.ts";
import { handleResponses, handleStoredResponse } from "./responses.ts";

/**
 * Every HTTP route that is not an RPC: the OpenAI-compatible REST bridge
 * under /v1, Anthropic's Messages API (/v1/messages, answered in Anthropic's
 * format from any provider), and the health endpoints. Unknown paths get
 * OpenAI's error JSON,
 * as OpenAI itself answers them.
 */
export function createRestHandler(deps: RestDeps): (req: Req, res: Res) => void {
  return (req, res) => {
    const startedAt = performance.now();
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    route(req, res, deps, path, startedAt).catch((err: unknown) => {
      const e = GatewayError.from(err);
      // The pipeline logs its own internal errors; these come from the REST layer itself.
      if (e.code === "internal" && !(err instanceof GatewayError)) deps.logger.error("internal error in REST bridge", { path, error: err });
      sendError(res, e);
    });
  };
}

async function route(req: Req, res: Res, deps: RestDeps, path: string, startedAt: number): Promise<void> {
  const method = req.method ?? "GET";
  switch (path) {
    case "/v1/chat/completions":
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleChatCompletions(req, res, deps, startedAt);
    case "/v1/messages":
      // Anthropic's Messages API, answered from any provider.
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleMessages(req, res, deps, startedAt);
    case "/v1/messages/count_tokens":
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleCountTokens(req, res, deps, startedAt);
    case "/v1/responses":
      // OpenAI's Responses API, answered from any provider.
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleResponses(req, res, deps, startedAt);
    case "/v1/completions":
    case "/v1/moderations":
    case "/v1/images/generations":
    case "/v1/audio/speech":
    case "/v1/audio/transcriptions":
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleForward(req, res, deps, startedAt, path.slice(4) as ForwardPath);
    case "/v1/embeddings":
      if (method !== "POST") throw wrongMethod(method, path, "POST");
      return handleEmbeddings(req, res, deps, startedAt);
    case "/v1/models":
      if (method !== "GET") throw wrongMethod(method, path, "GET");
      return handleModels(req, res, deps, startedAt, undefined);
    case "/healthz":
      // Liveness: the process answers. Nothing else is checked.
      return sendJson(res, 200, { status: "ok" });
    case "/metrics": {
      // Prometheus scrapes without credentials, as usual; the labels carry no secrets or per-caller data.
      const { contentType, body } = await deps.scrapeMetrics();
      res.writeHead(200, { "content-type": contentType, "content-length": Buffer.byteLength(body) });
      res.end(body);
      return;
    }
    case "/readyz": {
      // Readiness: accepting traffic (not while draining, nor while the governance store is unreachable and nothing governed can be served).
      const why = deps.notReady();
      if (why !== undefined) return sendJson(res, 503, { status: "not_ready", reason: why });
      const degraded = deps.degraded?.();
      return sendJson(res, 200, degraded === undefined ? { status: "ready" } : { status: "degraded", reason: degraded });
    }
  }
  if (path.startsWith("/v1/responses/")) {
    const rest = path.slice("/v1/responses/".length);
    const m = /^([A-Za-z0-9_-]{1,128})(\/input_items)?$/.exec(rest);
    if (m === null) throw new GatewayError("not_found", `Unknown request URL: ${method} ${path}. Please check the URL for typos.`);
    return handleStoredResponse(req, res, deps, startedAt, m[1]!, m[2] === undefined ? "" : "input_items");
  }
  if (path.startsWith("/v1/models/") && method === "GET") {
    let id: string;
    try {
      id = decodeURIComponent(path.slice("/v1/models/".length));
    } catch {
      throw new GatewayError("not_found", "The model id in the URL is not valid percent-encoding");
    }
    return handleModels(req, res, deps, startedAt, id);
  }
  throw new GatewayError("not_found", `Unknown request URL: ${method} ${path}. Please check the URL for typos.`);
}

function wrongMethod(method: string, path: string, allowed: string): GatewayError {
  return new GatewayError("method_not_allowed", `${method} is not allowed on ${path}; use ${allowed}`);
}
