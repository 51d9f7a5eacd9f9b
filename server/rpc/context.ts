import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { cacheDirectives } from "../cache/cache.ts";
import { GatewayError } from "../errors/errors.ts";
import { toConnectError } from "../errors/to-connect.ts";
import type { Authenticator, Principal } from "../governance/authenticate.ts";
import type { Entry } from "../pipeline/pipeline.ts";
import { requestIdFrom } from "../pipeline/request-id.ts";
import { timeoutsFrom } from "../pipeline/timeouts.ts";

/** The principal the request gate authenticated, for the handler to pick up. */
export const kPrincipal = createContextKey<Principal | undefined>(undefined, { description: "switchyard principal" });
const kStartedAt = createContextKey<number>(0, { description: "switchyard start time" });

/**
 * connect-node's request gate: runs once headers are in, before the body is
 * read, so an unauthenticated caller cannot make the server parse a large
 * message. gRPC health and reflection stay outside auth (probes and grpcurl),
 * and so does signing in.
 */
export function createRequestGate(authenticate: Authenticator, isPublic: (method: string) => boolean = () => false): (ctx: HandlerContext) => void | Promise<void> {
  return (ctx) => {
    ctx.values.set(kStartedAt, performance.now());
    if (ctx.service.typeName.startsWith("grpc.")) return;
    // Signing in needs no credentials (the permission table marks those methods public).
    if (ctx.service.typeName === "switchyard.v1.AuthService" && isPublic(`${ctx.service.typeName}/${ctx.method.name}`)) return;
    try {
      const p = authenticate((name) => ctx.requestHeader.get(name));
      if (!(p instanceof Promise)) {
        ctx.values.set(kPrincipal, p);
        return;
      }
      return p.then(
        (principal) => void ctx.values.set(kPrincipal, principal),
        (err: unknown) => {
          throw toConnectError(GatewayError.from(err));
        },
      );
    } catch (err) {
      throw toConnectError(GatewayError.from(err));
    }
  };
}

/**
 * The pipeline entry for an RPC; ctx.signal aborts on cancel, deadline or
 * disconnect. Admin sessions and admin API keys are refused (they never run
 * inference) unless `admins` says the call only reads (listing models).
 */
export function rpcEntry(ctx: HandlerContext, options: { admins?: boolean } = {}): Entry {
  const principal = ctx.values.get(kPrincipal);
  if (principal === undefined) throw toConnectError(new GatewayError("internal", "request gate did not run"));
  if (principal.kind === "operator" && options.admins !== true) {
    throw new GatewayError("permission_denied", "admin sessions and admin API keys manage the gateway; inference needs a virtual key");
  }
  const requestId = requestIdFrom(ctx.requestHeader.get("x-request-id"));
  ctx.responseHeader.set("x-request-id", requestId);
  return {
    principal,
    requestId,
    signal: ctx.signal,
    startedAt: ctx.values.get(kStartedAt) || performance.now(),
    traceparent: ctx.requestHeader.get("traceparent") ?? undefined,
    tracestate: ctx.requestHeader.get("tracestate") ?? undefined,
    sessionId: ctx.requestHeader.get("x-session-id") ?? undefined,
    timeouts: timeoutsFrom((name) => ctx.requestHeader.get(name)),
    cache: cacheDirectives((name) => ctx.requestHeader.get(name)),
    setHeader: (name, value) => ctx.responseHeader.set(name, value),
  };
}

/** Runs a handler body, turning gateway errors into Connect errors with the right code. */
export async function rpcCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toConnectError(GatewayError.from(err));
  }
}
