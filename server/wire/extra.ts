import type { JsonObject } from "@bufbuild/protobuf";
import type { ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";

/**
 * Untyped fields ("extra") across wire formats. A caller's untyped fields are
 * forwarded untouched to a provider of the caller's own format; a provider of
 * another format drops the ones that are mere hints and refuses the rest with
 * a 400 naming them, rather than forwarding them to fail upstream.
 */

/** Fields a caller did not type: kept as they are, with numbers JSON cannot carry refused. */
export function pickExtra(o: Record<string, unknown>, typed: ReadonlySet<string>): JsonObject | undefined {
  let extra: JsonObject | undefined;
  for (const k in o) {
    if (typed.has(k)) continue;
    const v = o[k];
    if (v === undefined) continue;
    checkFinite(v, k);
    (extra ??= {})[k] = v as JsonObject[string];
  }
  return extra;
}

/** JSON.parse turns 1e400 into Infinity, which no provider and no log can encode. */
function checkFinite(v: unknown, path: string, depth = 0): void {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw invalid(`${path}: number out of range`, path);
  } else if (v !== null && typeof v === "object" && depth < 32) {
    for (const [k, x] of Object.entries(v)) checkFinite(x, `${path}.${k}`, depth + 1);
  }
}

/** Whether the request's untyped fields were written for this wire format (empty: provider-native, from RPC). */
export function isNative(req: ChatRequest, format: string): boolean {
  return req.extraFormat === "" || req.extraFormat === format;
}

/**
 * Hints that only shape one provider's behaviour and can be dropped when the
 * request goes to another: OpenAI's store/service_tier/reasoning_effort/...,
 * Anthropic's thinking/container/..., and Anthropic callers' kept `tools`.
 */
const IGNORABLE = new Set([
  "store", "service_tier", "reasoning_effort", "prediction", "modalities", "verbosity", "safety_identifier", "prompt_cache_key",
  "thinking", "container", "mcp_servers", "context_management", "tools",
]);

/**
 * The untyped fields to send to a provider of `format`: all of them when the
 * caller wrote them for it, none otherwise (hints dropped, anything else
 * refused with a 400 naming it). `accepts` lists caller formats whose extras
 * the provider takes as its own options: Gemini and Bedrock have no caller
 * format of their own, so OpenAI-SDK callers pass their options that way.
 */
export function extraFor(req: ChatRequest, format: string, provider: string, accepts: readonly string[] = []): JsonObject {
  if (isNative(req, format) || accepts.includes(req.extraFormat)) return req.extra ? { ...req.extra } : {};
  for (const k of Object.keys(req.extra ?? {})) {
    if (IGNORABLE.has(k)) continue;
    throw new GatewayError("unsupported", `${k}: not supported by ${provider} providers`, { param: k });
  }
  return {};
}
