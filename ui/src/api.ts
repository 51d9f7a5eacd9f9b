/**
 * The UI's only way to the gateway: Connect clients over the generated
 * switchyard.v1 descriptors, JSON on the wire. The session is an HttpOnly
 * cookie the browser sends by itself; every call also echoes the session's
 * CSRF token as x-csrf-token (the server refuses cookie calls without it).
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import type { DescService } from "@bufbuild/protobuf";
import { AuditService } from "../../gen/switchyard/v1/audit_pb.ts";
import { AuthService } from "../../gen/switchyard/v1/auth_pb.ts";
import { BudgetService } from "../../gen/switchyard/v1/budgets_pb.ts";
import { CacheService } from "../../gen/switchyard/v1/cache_pb.ts";
import { KeyService } from "../../gen/switchyard/v1/keys_pb.ts";
import { LogService } from "../../gen/switchyard/v1/logs_pb.ts";
import { ModelService } from "../../gen/switchyard/v1/models_pb.ts";
import { OrgService } from "../../gen/switchyard/v1/org_pb.ts";
import { ProviderService } from "../../gen/switchyard/v1/providers_pb.ts";
import { RoutingService } from "../../gen/switchyard/v1/routing_pb.ts";
import { UserService } from "../../gen/switchyard/v1/users_pb.ts";

let csrfToken = "";
let sessionLost: () => void = () => {};

/** Remembers the token from Login or WhoAmI ("" after logout). */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when a call outside AuthService is refused as unauthenticated (the session ended). */
export function onSessionLost(fn: () => void): void {
  sessionLost = fn;
}

const session: Interceptor = (next) => async (req) => {
  if (csrfToken !== "") req.header.set("x-csrf-token", csrfToken);
  try {
    return await next(req);
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated && req.service.typeName !== AuthService.typeName) sessionLost();
    throw err;
  }
};

const transport = createConnectTransport({
  baseUrl: location.origin,
  useBinaryFormat: false,
  interceptors: [session],
  fetch: (input, init) => globalThis.fetch(input, { ...init, credentials: "same-origin" }),
});

function client<T extends DescService>(service: T): Client<T> {
  return createClient(service, transport);
}

/** One client per service the UI uses. */
export const api = {
  auth: client(AuthService),
  logs: client(LogService),
  org: client(OrgService),
  keys: client(KeyService),
  budgets: client(BudgetService),
  routing: client(RoutingService),
  providers: client(ProviderService),
  models: client(ModelService),
  cache: client(CacheService),
  users: client(UserService),
  audit: client(AuditService),
};

/** A refusal or failure as one line for people: the server's own message, with its code. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  const code = Code[e.code]
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .toLowerCase();
  return `${e.rawMessage || "request failed"} (${code})`;
}
