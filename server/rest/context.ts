import type { ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import { cacheDirectives } from "../cache/cache.ts";
import type { Authenticator } from "../governance/authenticate.ts";
import type { Entry, Pipeline } from "../pipeline/pipeline.ts";
import type { Logger } from "../telemetry/log.ts";
import { requestIdFrom } from "../pipeline/request-id.ts";
import { timeoutsFrom } from "../pipeline/timeouts.ts";
import type { Req, Res } from "./http.ts";
import type { ResponsesApi } from "../responses/service.ts";

/** What the REST routes need from the gateway. */
export interface RestDeps {
  pipeline: Pipeline;
  authenticate: Authenticator;
  logger: Logger;
  maxBodyBytes: number;
  /** Why the instance should get no traffic (draining, store unreachable); undefined when ready. /readyz reports it. */
  notReady: () => string | undefined;
  /** Why the instance serves in a reduced way while ready (Redis unreachable, limits counted locally); /readyz reports it. */
  degraded?: (() => string | undefined) | undefined;
  /** The Responses API (the same one RPC serves). */
  responses?: ResponsesApi | undefined;
  /** The Prometheus exposition for GET /metrics. */
  scrapeMetrics: () => Promise<{ contentType: string; body: string }>;
  /** Counts a request's input tokens with its model's provider (POST /v1/messages/count_tokens); see rest/count-tokens.ts. */
  countTokens?: ((request: ChatRequest, entry: Entry) => Promise<number>) | undefined;
}

/**
 * Builds the pipeline entry for a REST call: authenticates from the headers
 * (before any body is read), assigns the request id, and ties an abort
 * signal to the caller's connection so a caller who hangs up stops the
 * upstream request too.
 */
export async function restEntry(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<Entry> {
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const requestId = requestIdFrom(header("x-request-id"));
  res.setHeader("x-request-id", requestId);
  const principal = await deps.authenticate(header);
  const ac = new AbortController();
  res.once("close", () => {
    if (!res.writableFinished) ac.abort(new Error("client closed the connection"));
  });
  return {
    principal,
    requestId,
    signal: ac.signal,
    startedAt,
    traceparent: header("traceparent"),
    tracestate: header("tracestate"),
    sessionId: header("x-session-id"),
    timeouts: timeoutsFrom(header),
    cache: cacheDirectives(header),
    setHeader: (name, value) => {
      if (!res.headersSent) res.setHeader(name, value);
    },
  };
}
