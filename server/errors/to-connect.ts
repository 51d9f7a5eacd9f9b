import { Code, ConnectError } from "@connectrpc/connect";
import type { ErrorCode, GatewayError } from "./errors.ts";

/** The Connect code for each gateway error code; statuses match to-openai.ts. */
export function connectCode(code: ErrorCode): Code {
  switch (code) {
    case "invalid_request":
    case "unsupported":
      return Code.InvalidArgument;
    case "unauthenticated":
      return Code.Unauthenticated;
    case "permission_denied":
      return Code.PermissionDenied;
    case "not_found":
    case "model_not_found":
      return Code.NotFound;
    case "method_not_allowed":
      return Code.Unimplemented;
    case "payload_too_large":
    case "rate_limited":
    case "budget_exceeded":
      return Code.ResourceExhausted;
    case "canceled":
      return Code.Canceled;
    case "internal":
      return Code.Internal;
    case "upstream_error":
    case "upstream_unavailable":
    case "unavailable":
      return Code.Unavailable;
    case "upstream_timeout":
      return Code.DeadlineExceeded;
  }
}

/** Converts a GatewayError for RPC callers; retry-after travels as response metadata. */
export function toConnectError(err: GatewayError): ConnectError {
  const metadata: Record<string, string> = {};
  if (err.retryAfter !== undefined) metadata["retry-after"] = err.retryAfter;
  const message = err.param === undefined ? err.message : `${err.message} (param: ${err.param})`;
  return new ConnectError(message, connectCode(err.code), metadata, undefined, err);
}
