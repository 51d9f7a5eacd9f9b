import type { ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import type { Principal } from "../governance/authenticate.ts";
import type { Entry } from "../pipeline/pipeline.ts";
import type { Target } from "../routing/resolve.ts";
import { decodeMessagesRequest } from "../wire/anthropic/request-decode.ts";
import { isRecord } from "../wire/openai/json.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { sendAnthropicError } from "./messages.ts";

/** Counts a request's input tokens with the provider its model resolves to. */
export type TokenCounter = (request: ChatRequest, entry: Entry) => Promise<number>;

export interface TokenCounterOptions {
  /**
   * Throws (403 permission_denied) when the caller may not use the model or
   * its provider: a virtual key's allowed models and providers apply to
   * counting as to chat. Counting itself is free: nothing is reserved or charged.
   */
  authorize?: ((principal: Principal, model: string, target: Target) => void) | undefined;
}

/**
 * The token counter behind POST /v1/messages/count_tokens: resolves the
 * caller's model to one target (no routes' fallbacks: a count is only
 * meaningful for one tokenizer), checks the caller may use it, and asks that
 * provider. Providers without a counting API are refused with a 400 naming
 * the provider, rather than answered with an estimate the caller might bill by.
 */
export function createTokenCounter(resolve: (model: string) => Target, options: TokenCounterOptions = {}): TokenCounter {
  return async (request, entry) => {
    const target = resolve(request.model);
    options.authorize?.(entry.principal, request.model, target);
    const { provider } = target;
    if (provider.countTokens === undefined) {
      throw new GatewayError("unsupported", `count_tokens is not available for provider '${provider.id}' (model '${request.model}')`, { param: "model" });
    }
    entry.setHeader?.("x-switchyard-provider", provider.id);
    entry.setHeader?.("x-switchyard-model", target.model);
    return provider.countTokens({ ...request, model: target.model }, { signal: entry.signal, requestId: entry.requestId, timeouts: entry.timeouts });
  };
}

/**
 * POST /v1/messages/count_tokens, Anthropic's token counting endpoint
 * (https://docs.anthropic.com/en/api/messages-count-tokens): a Messages
 * request without max_tokens in, `{"input_tokens": N}` out, counted by the
 * model's own provider. Needs a valid key like /v1/messages; errors are
 * Anthropic's error JSON with Anthropic's statuses.
 */
export async function handleCountTokens(req: Req, res: Res, deps: RestDeps, startedAt: number): Promise<void> {
  try {
    if (deps.countTokens === undefined) {
      throw new GatewayError("not_found", "Unknown request URL: POST /v1/messages/count_tokens. Please check the URL for typos.");
    }
    const entry = await restEntry(req, res, deps, startedAt);
    res.setHeader("request-id", entry.requestId);
    const request = decodeCountRequest(await readJsonBody(req, deps.maxBodyBytes));
    sendJson(res, 200, { input_tokens: await deps.countTokens(request, entry) });
  } catch (err) {
    const e = GatewayError.from(err);
    if (e.code === "internal" && !(err instanceof GatewayError)) deps.logger.error("internal error in /v1/messages/count_tokens", { error: err });
    sendAnthropicError(res, e);
  }
}

/**
 * A count_tokens body -> the canonical request. The Messages decoder requires
 * max_tokens, which count_tokens does not take: a placeholder is supplied
 * before decoding (so every other field is checked exactly as for
 * /v1/messages) and cleared after, so no provider sees it. A caller's own
 * max_tokens and stream are accepted and ignored.
 */
function decodeCountRequest(body: unknown): ChatRequest {
  const withMax = isRecord(body) && body["max_tokens"] == null ? { ...body, max_tokens: 1 } : body;
  const { request } = decodeMessagesRequest(withMax);
  request.maxTokens = undefined;
  return request;
}


