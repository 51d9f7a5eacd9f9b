/**
 * One error type for the whole gateway. Every failure a caller can see is a
 * GatewayError with a code from a closed set; each entry point maps the code
 * once (to-openai.ts for REST, to-connect.ts for RPC). Anything else that is
 * thrown becomes `internal` and its cause is never sent to the caller.
 */
export type ErrorCode =
  | "invalid_request" // the caller's request is malformed or wrong-typed (400)
  | "unsupported" // well-formed, but asks for something the gateway or provider cannot carry (400)
  | "unauthenticated" // missing or wrong gateway key (401)
  | "permission_denied" // the key may not do this (403)
  | "not_found" // unknown path or entity (404)
  | "model_not_found" // no configured provider serves the model (404)
  | "method_not_allowed" // known path, wrong HTTP method (405)
  | "payload_too_large" // body over the configured limit (413)
  | "rate_limited" // the gateway or the provider refused for rate (429)
  | "budget_exceeded" // a budget of the caller's key, team or customer is spent (429)
  | "canceled" // the caller went away (499)
  | "internal" // a bug or an unexpected state in the gateway (500)
  | "unavailable" // the gateway's own state (e.g. the governance store) cannot be reached (503)
  | "upstream_error" // the provider failed or answered something unusable (502)
  | "upstream_unavailable" // the provider could not be reached or is overloaded (503)
  | "upstream_timeout"; // the provider did not answer in time (504)

export interface GatewayErrorOptions {
  /** The request field at fault, as OpenAI's `param` (e.g. `messages[0].role`). */
  param?: string;
  /** A provider's own error code to pass on (e.g. `context_length_exceeded`). */
  providerCode?: string;
  /** An upstream HTTP status that explains the error, when there was one. */
  upstreamStatus?: number;
  /** Seconds the caller should wait before retrying. */
  retryAfter?: string;
  /** A limit the caller set (a tighter timeout) caused it: says nothing about the provider's health. */
  callerLimit?: boolean;
  cause?: unknown;
}

export class GatewayError extends Error {
  override name = "GatewayError";
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly providerCode: string | undefined;
  readonly upstreamStatus: number | undefined;
  readonly retryAfter: string | undefined;
  readonly callerLimit: boolean;

  /** @param message safe to show the caller: never include secrets or raw upstream bodies. */
  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.param = options.param;
    this.providerCode = options.providerCode;
    this.upstreamStatus = options.upstreamStatus;
    this.retryAfter = options.retryAfter;
    this.callerLimit = options.callerLimit === true;
  }

  /** Normalises anything thrown into a GatewayError; unknown errors become `internal`. */
  static from(err: unknown): GatewayError {
    if (err instanceof GatewayError) return err;
    return new GatewayError("internal", "internal gateway error", { cause: err });
  }
}

/** Shorthand for the most common caller mistake. */
export function invalid(message: string, param?: string): GatewayError {
  return new GatewayError("invalid_request", message, param === undefined ? {} : { param });
}
