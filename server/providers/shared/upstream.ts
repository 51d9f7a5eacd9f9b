import type { Readable } from "node:stream";
import { request } from "undici";
import { GatewayError } from "../../errors/errors.ts";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../../wire/openai/json.ts";
import type { CallOptions } from "../types.ts";
import { createUpstreamAgent, transportError, upstreamAbort, type UpstreamAbort, type UpstreamTimeouts } from "./http.ts";

/** Response headers as undici gives them. */
export type UpstreamHeaders = Record<string, string | string[] | undefined>;

/** Turns a provider's non-2xx answer into a GatewayError; each provider reads its own error bodies. */
export type ErrorMapper = (status: number, headers: UpstreamHeaders, bodyText: string) => GatewayError;

export interface UpstreamOptions {
  /** Provider id, named in errors. */
  id: string;
  timeouts: UpstreamTimeouts;
  maxConnections: number;
  mapError: ErrorMapper;
}

export interface UpstreamRequest {
  url: string;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** A 2xx streaming response: read `body`, then call `release` exactly once. */
export interface OpenStream {
  headers: UpstreamHeaders;
  body: Readable;
  /** Ends the exchange: stops the deadline timer, and aborts the upstream unless it completed. */
  release(completed: boolean): void;
  /** Maps an error thrown while reading the body (timeouts, resets, caller gone). */
  failure(err: unknown): GatewayError;
}

/**
 * One provider's connection pool and exchange rules: keep-alive, the total
 * deadline, the caller's abort signal, error mapping. Every provider sends
 * through this, so timeouts and cancellation behave the same everywhere.
 */
export interface Upstream {
  /** Sends a request and parses the 2xx JSON answer; anything else throws a GatewayError. */
  json(req: UpstreamRequest, call: CallOptions): Promise<unknown>;
  /** Sends a request and returns the 2xx response unread, for streaming. */
  open(req: UpstreamRequest, call: CallOptions): Promise<OpenStream>;
  close(): Promise<void>;
}

type Response = Awaited<ReturnType<typeof request>>;

export function createUpstream(options: UpstreamOptions): Upstream {
  const { id, timeouts, mapError } = options;
  const agent = createUpstreamAgent(timeouts, options.maxConnections);

  /** The provider's timeouts, tightened (never loosened) by the caller's per-request limits. */
  function effective(call: CallOptions): UpstreamTimeouts {
    const o = call.timeouts;
    if (o === undefined) return timeouts;
    return {
      connectMs: timeouts.connectMs,
      firstByteMs: Math.min(timeouts.firstByteMs, o.firstByteMs ?? Infinity),
      idleMs: timeouts.idleMs,
      totalMs: Math.min(timeouts.totalMs, o.totalMs ?? Infinity),
    };
  }

  /**
   * A transport failure as a GatewayError. A timeout when the caller had
   * tightened the limits is marked as the caller's: it must not count
   * against the provider's health.
   */
  function fail(err: unknown, call: CallOptions, t: UpstreamTimeouts): GatewayError {
    const g = transportError(err, id, call.signal, t);
    const tightened = t.firstByteMs < timeouts.firstByteMs || t.totalMs < timeouts.totalMs;
    if (g.code !== "upstream_timeout" || !tightened) return g;
    return new GatewayError(g.code, g.message, { callerLimit: true, cause: err });
  }

  async function send(req: UpstreamRequest, call: CallOptions, abort: UpstreamAbort, t: UpstreamTimeouts): Promise<Response> {
    let res: Response;
    // A precise timer for the first byte: undici's own headersTimeout runs on a coarse clock
    // (about half a second late), and fallbacks wait on this one. The pool's stays as a backstop.
    const firstByte = setTimeout(() => abort.abort(Object.assign(new Error("first byte timeout"), { code: "UND_ERR_HEADERS_TIMEOUT" })), t.firstByteMs);
    try {
      res = await request(req.url, {
        method: req.method,
        dispatcher: agent,
        // Trace context travels with every provider call; it is never part of what a provider signs.
        headers: call.headers === undefined ? req.headers : { ...req.headers, ...call.headers },
        body: req.body ?? null,
        signal: abort.signal,
      });
    } catch (err) {
      throw fail(abort.signal.aborted && !call.signal.aborted ? abort.signal.reason : err, call, t);
    } finally {
      clearTimeout(firstByte);
    }
    if (res.statusCode >= 300) {
      let text: string;
      try {
        text = await res.body.text();
      } catch (err) {
        throw fail(err, call, t);
      }
      throw mapError(res.statusCode, res.headers, text);
    }
    return res;
  }

  return {
    async json(req, call) {
      const t = effective(call);
      const abort = upstreamAbort(call.signal, t.totalMs);
      try {
        const res = await send(req, call, abort, t);
        let value: unknown;
        try {
          value = await res.body.json();
        } catch (err) {
          if (err instanceof SyntaxError) throw new GatewayError("upstream_error", `provider '${id}' returned invalid JSON`, { cause: err });
          throw fail(err, call, t);
        }
        return checkDepth(value, id);
      } finally {
        abort.done();
      }
    },

    async open(req, call) {
      const t = effective(call);
      const abort = upstreamAbort(call.signal, t.totalMs);
      let res: Response;
      try {
        res = await send(req, call, abort, t);
      } catch (err) {
        abort.done();
        throw err;
      }
      let released = false;
      return {
        headers: res.headers,
        body: res.body,
        release(completed) {
          if (released) return;
          released = true;
          abort.done();
          // Complete: what is left (the end of the body after [DONE]) is read, so the connection is reused.
          if (completed) void res.body.dump();
          else res.body.on("error", ignore).destroy(); // the abort error it emits is this release's own doing
        },
        failure: (err) => fail(err, call, t),
      };
    },

    close: () => agent.close(),
  };
}

/**
 * One stream event's JSON from a provider: parsed, and refused (an upstream
 * error, never a throw of another kind) when it is not JSON or nests too
 * deep. Text shorter than twice the depth limit cannot nest that deep (each
 * level takes an opening and a closing bracket), so the usual small event is
 * not walked a second time.
 */
export function parseStreamEvent(text: string, provider: string, notJson = `provider '${provider}' sent an invalid stream event`): unknown {
  let payload: unknown;
  try {
    payload = JSON.parse(text);
  } catch (err) {
    throw new GatewayError("upstream_error", notJson, { cause: err });
  }
  return text.length < 2 * MAX_JSON_DEPTH ? payload : checkDepth(payload, provider);
}

/**
 * A provider's JSON, refused when it nests deeper than callers may send (see
 * MAX_JSON_DEPTH): carried on, it would overflow the stack when encoded for
 * the caller, a 500 where the fault is the provider's.
 */
export function checkDepth<T>(value: T, provider: string): T {
  if (nestedDeeperThan(value, MAX_JSON_DEPTH)) throw new GatewayError("upstream_error", `provider '${provider}' sent JSON nested more than ${MAX_JSON_DEPTH} levels deep`);
  return value;
}

/**
 * Picks a provider's key (or credential set) for a call: the one the call
 * names (`call.keyIndex`, when it is a valid index), otherwise round-robin.
 * Which key to name is routing's job. Undefined when there are no keys.
 */
export function keyRing<T>(keys: readonly T[]): (call?: CallOptions) => T | undefined {
  let next = 0;
  return (call) => {
    if (keys.length === 0) return undefined;
    const i = call?.keyIndex;
    if (i !== undefined && Number.isInteger(i) && i >= 0 && i < keys.length) return keys[i];
    return keys[next++ % keys.length];
  };
}

/** The first value of a response header. */
export function header(headers: UpstreamHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function ignore(): void {}
