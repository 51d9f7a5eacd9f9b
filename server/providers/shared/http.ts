import { Agent } from "undici";
import { GatewayError } from "../../errors/errors.ts";
import { guardedLookup } from "./address-guard.ts";

/** Every provider connection resolves names through this: no link-local or metadata address is ever dialled. */
const lookup = guardedLookup();

/** Timeouts of one provider, from its configuration. */
export interface UpstreamTimeouts {
  connectMs: number;
  firstByteMs: number;
  idleMs: number;
  totalMs: number;
}

/**
 * A keep-alive connection pool for one provider. Pipelining stays at 1: with
 * pipelining, aborting one request (a caller hanging up on a stream) would
 * abort the others queued on the same socket. No redirects are followed
 * (undici follows none without its redirect interceptor).
 */
export function createUpstreamAgent(timeouts: UpstreamTimeouts, maxConnections: number): Agent {
  return new Agent({
    connections: maxConnections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    connect: { timeout: timeouts.connectMs, lookup: lookup as never },
    headersTimeout: timeouts.firstByteMs,
    bodyTimeout: timeouts.idleMs,
  });
}

/** The abort signal of one upstream exchange and the means to release it. */
export interface UpstreamAbort {
  signal: AbortSignal;
  /** Aborts the exchange with this reason (e.g. a per-request timeout). */
  abort(reason: unknown): void;
  /** Stops the deadline timer and unhooks from the caller's signal; call once the exchange ends. */
  done(): void;
}

/**
 * One signal for the upstream call: it aborts when the caller's does, or when
 * the total deadline passes. A plain timer (cleared on completion) rather
 * than AbortSignal.timeout, so a busy gateway does not hold a live timer per
 * finished request until its deadline.
 */
export function upstreamAbort(caller: AbortSignal, totalMs: number): UpstreamAbort {
  const ac = new AbortController();
  const onAbort = (): void => ac.abort(caller.reason);
  if (caller.aborted) ac.abort(caller.reason);
  else caller.addEventListener("abort", onAbort, { once: true });
  const timer = setTimeout(() => ac.abort(new DOMException("upstream deadline passed", "TimeoutError")), totalMs);
  return {
    signal: ac.signal,
    abort: (reason) => ac.abort(reason),
    done() {
      clearTimeout(timer);
      caller.removeEventListener("abort", onAbort);
    },
  };
}

/**
 * Maps a transport-level failure (no HTTP answer) to a GatewayError. The
 * provider id is named; URLs and keys are not.
 */
export function transportError(err: unknown, provider: string, caller: AbortSignal, timeouts: UpstreamTimeouts): GatewayError {
  if (err instanceof GatewayError) return err;
  if (caller.aborted) return new GatewayError("canceled", "the caller canceled the request", { cause: err });
  const e = err as { name?: string; code?: unknown; cause?: { code?: unknown } };
  // DOMException has a numeric legacy `code` (23 for TimeoutError): only string codes name a cause.
  const code = typeof e.code === "string" ? e.code : typeof e.cause?.code === "string" ? e.cause.code : e.name ?? "unknown";
  switch (code) {
    case "UND_ERR_HEADERS_TIMEOUT":
      return new GatewayError("upstream_timeout", `provider '${provider}' did not answer within ${timeouts.firstByteMs} ms`, { cause: err });
    case "UND_ERR_BODY_TIMEOUT":
      return new GatewayError("upstream_timeout", `provider '${provider}' sent nothing for ${timeouts.idleMs} ms`, { cause: err });
    case "UND_ERR_CONNECT_TIMEOUT":
      return new GatewayError("upstream_timeout", `could not connect to provider '${provider}' within ${timeouts.connectMs} ms`, { cause: err });
    case "TimeoutError":
      return new GatewayError("upstream_timeout", `provider '${provider}' did not finish within ${timeouts.totalMs} ms`, { cause: err });
    case "AbortError":
      // An abort not from the caller is the total deadline (AbortSignal.timeout).
      return new GatewayError("upstream_timeout", `provider '${provider}' did not finish within ${timeouts.totalMs} ms`, { cause: err });
    default:
      return new GatewayError("upstream_error", `could not reach provider '${provider}' (${code})`, { cause: err });
  }
}
