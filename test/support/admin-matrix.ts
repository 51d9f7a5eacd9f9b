/**
 * Machinery for the admin permission matrix (test/admin-permissions.test.ts):
 * one real gateway reached over Connect (HTTP/1.1) and gRPC (HTTP/2), a
 * generic caller for any admin method, the outcome of a call as allowed /
 * denied / unauthenticated, and the audit log read back by request id. The
 * expectations themselves live in the test, written apart from the server's
 * permission table.
 */
import type { DescMethod, DescMethodStreaming, DescMethodUnary, DescService, MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { AuditService, type AuditEvent } from "../../gen/switchyard/v1/audit_pb.ts";
import { AdminRole, type GrantSchema } from "../../gen/switchyard/v1/users_pb.ts";

export type Role = "viewer" | "editor" | "admin" | "owner";

/** Where a grant applies, by the fixture's ids. */
export type Scope = { global: true } | { customer: string } | { team: string };

export interface Grant {
  role: Role;
  scope: Scope;
}

export type TransportName = "connect" | "grpc";

/** Both protocols against the same listening gateway: Connect over HTTP/1.1, gRPC over cleartext HTTP/2. */
export function transports(baseUrl: string): Record<TransportName, Transport> {
  return {
    connect: createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    // gRPC is HTTP/2 only: connect-node's gRPC transport takes no httpVersion.
    grpc: createGrpcTransport({ baseUrl }),
  };
}

/** A typed client that presents `secret` as a bearer token on every call. */
export function clientFor<S extends DescService>(service: S, baseUrl: string, secret: string): Client<S> {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${secret}`);
    return next(req);
  };
  return createClient(service, createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth] }));
}

/** How a call ended, as far as authorization is concerned. */
export type Verdict = "allowed" | "denied" | "unauthenticated";

export interface CallResult {
  verdict: Verdict;
  /** Code.Ok (0) when the call succeeded, else the error's code. */
  code: Code | 0;
  message: string;
}

/**
 * Calls any unary or server-streaming method with a request in init shape
 * (streams are drained). PermissionDenied and Unauthenticated are refusals;
 * anything else got past authorization.
 */
export async function invoke(transport: Transport, method: DescMethod, request: object, headers: Record<string, string>): Promise<CallResult> {
  try {
    if (method.methodKind === "unary") {
      await transport.unary(method as DescMethodUnary, undefined, 10_000, headers, request as MessageInitShape<DescMethodUnary["input"]>);
    } else if (method.methodKind === "server_streaming") {
      const res = await transport.stream(method as DescMethodStreaming, undefined, 10_000, headers, once(request as MessageInitShape<DescMethodStreaming["input"]>));
      for await (const _ of res.message) { /* drain */ }
    } else {
      throw new Error(`${method.name}: ${method.methodKind} methods are not admin methods`);
    }
    return { verdict: "allowed", code: 0, message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    const verdict: Verdict = e.code === Code.PermissionDenied ? "denied" : e.code === Code.Unauthenticated ? "unauthenticated" : "allowed";
    return { verdict, code: e.code, message: e.rawMessage };
  }
}

async function* once<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** Headers for a bearer secret (or none) plus a request id the audit log will carry. */
export function headersFor(secret: string | undefined, requestId: string): Record<string, string> {
  return { "x-request-id": requestId, ...(secret === undefined ? {} : { authorization: `Bearer ${secret}` }) };
}

const ROLE: Record<Role, AdminRole> = { viewer: AdminRole.VIEWER, editor: AdminRole.EDITOR, admin: AdminRole.ADMIN, owner: AdminRole.OWNER };

/** A grant as the UserService message. */
export function grantMessage(g: Grant): MessageInitShape<typeof GrantSchema> {
  const scope = "customer" in g.scope ? { case: "customerId" as const, value: g.scope.customer }
    : "team" in g.scope ? { case: "teamId" as const, value: g.scope.team }
    : { case: undefined };
  return { role: ROLE[g.role], scope };
}

export function describeGrant(g: Grant): string {
  return `${g.role}@${"customer" in g.scope ? `customer:${g.scope.customer}` : "team" in g.scope ? `team:${g.scope.team}` : "global"}`;
}

/** Every audit entry, oldest first, keyed by request id (the last entry wins for repeated ids). */
export async function auditByRequestId(baseUrl: string, ownerSecret: string): Promise<Map<string, AuditEvent>> {
  const audit = clientFor(AuditService, baseUrl, ownerSecret);
  const out = new Map<string, AuditEvent>();
  let pageToken = "";
  const events: AuditEvent[] = [];
  do {
    const page = await audit.listAuditEvents({ pageSize: 1000, pageToken });
    events.push(...page.events);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  for (const e of events.reverse()) if (e.requestId !== "") out.set(e.requestId, e);
  return out;
}

/** Runs tasks with at most `width` in flight at once. */
export async function inBatches<T>(tasks: readonly (() => Promise<T>)[], width: number): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return out;
}
