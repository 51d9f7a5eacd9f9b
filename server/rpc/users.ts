import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Identity_Kind, type IdentitySchema } from "../../gen/switchyard/v1/auth_pb.ts";
import { AdminRole, UserService, type ApiKeySchema, type Grant as GrantMessage, type GrantSchema, type UserSchema } from "../../gen/switchyard/v1/users_pb.ts";
import type { ApiKeyInfo, UserInfo, Users } from "../admin/users.ts";
import type { AdminIdentity, Grant, Role } from "../admin/types.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import { kPrincipal, rpcCall } from "./context.ts";

/** switchyard.v1.UserService over the users API (server/admin/users.ts); the permission table has authorized the call. */
export function registerUserService(router: ConnectRouter, users: Users, options: Parameters<ConnectRouter["service"]>[2]): void {
  router.service(
    UserService,
    {
      createUser: (req, ctx) =>
        rpcCall(async () => ({
          user: userOut(await users.create(caller(ctx), { email: req.email, name: req.name, password: req.password, grants: grantsIn(req.grants) })),
        })),
      getUser: (req) => rpcCall(async () => ({ user: userOut(await users.get(req.id)) })),
      listUsers: (req) =>
        rpcCall(async () => {
          const page = await users.list(req.pageSize, req.pageToken || undefined);
          return { users: page.items.map(userOut), nextPageToken: page.nextPageToken ?? "" };
        }),
      updateUser: (req, ctx) =>
        rpcCall(async () => ({ user: userOut(await users.update(caller(ctx), req.id, { name: req.name, disabled: req.disabled, password: req.password })) })),
      deleteUser: (req, ctx) =>
        rpcCall(async () => {
          await users.delete(caller(ctx), req.id);
          return {};
        }),
      setGrants: (req, ctx) => rpcCall(async () => ({ user: userOut(await users.setGrants(caller(ctx), req.userId, grantsIn(req.grants))) })),
      createApiKey: (req, ctx) =>
        rpcCall(async () => {
          const { key, secret } = await users.createApiKey(caller(ctx), {
            name: req.name,
            grants: grantsIn(req.grants),
            expiresAt: req.expiresAt === undefined ? undefined : timestampMs(req.expiresAt),
          });
          return { key: apiKeyOut(key), secret };
        }),
      listApiKeys: (req, ctx) => rpcCall(async () => ({ keys: (await users.listApiKeys(caller(ctx), req.includeRevoked)).map(apiKeyOut) })),
      revokeApiKey: (req, ctx) => rpcCall(async () => ({ key: apiKeyOut(await users.revokeApiKey(caller(ctx), req.id)) })),
    },
    options,
  );
}

/** The admin identity the request gate found (the permission table has required one). */
export function caller(ctx: HandlerContext): AdminIdentity {
  const identity = ctx.values.get(kPrincipal)?.identity;
  if (identity === undefined) throw new GatewayError("unauthenticated", "admin credentials required");
  return identity;
}

const ROLE_IN: Record<number, Role> = {
  [AdminRole.VIEWER]: "viewer",
  [AdminRole.EDITOR]: "editor",
  [AdminRole.ADMIN]: "admin",
  [AdminRole.OWNER]: "owner",
};

const ROLE_OUT: Record<Role, AdminRole> = { viewer: AdminRole.VIEWER, editor: AdminRole.EDITOR, admin: AdminRole.ADMIN, owner: AdminRole.OWNER };

export function grantsIn(grants: readonly GrantMessage[]): Grant[] {
  return grants.map((g, i) => {
    const role = ROLE_IN[g.role];
    if (role === undefined) throw invalid(`grants[${i}].role: required (viewer, editor, admin or owner)`, `grants[${i}].role`);
    if (g.scope.case === "customerId") {
      if (!g.scope.value) throw invalid(`grants[${i}].customer_id: empty`, `grants[${i}].customer_id`);
      return { role, scope: { kind: "customer", id: g.scope.value } };
    }
    if (g.scope.case === "teamId") {
      if (!g.scope.value) throw invalid(`grants[${i}].team_id: empty`, `grants[${i}].team_id`);
      return { role, scope: { kind: "team", id: g.scope.value } };
    }
    return { role, scope: { kind: "global" } };
  });
}

export function grantsOut(grants: readonly Grant[]): MessageInitShape<typeof GrantSchema>[] {
  return grants.map((g) => ({
    role: ROLE_OUT[g.role],
    scope: g.scope.kind === "customer" ? { case: "customerId", value: g.scope.id } : g.scope.kind === "team" ? { case: "teamId", value: g.scope.id } : { case: undefined },
  }));
}

const ts = (ms: number | undefined) => (ms === undefined ? undefined : timestampFromMs(ms));

function userOut(u: UserInfo): MessageInitShape<typeof UserSchema> {
  return {
    id: u.id,
    email: u.email,
    name: u.name,
    grants: grantsOut(u.grants),
    disabled: u.disabled,
    hasPassword: u.hasPassword,
    ssoSubject: u.ssoSubject ?? "",
    createdAt: ts(u.createdAt),
    updatedAt: ts(u.updatedAt),
    lastLoginAt: ts(u.lastLoginAt),
  };
}

function apiKeyOut(k: ApiKeyInfo): MessageInitShape<typeof ApiKeySchema> {
  return { id: k.id, name: k.name, hint: k.hint, grants: grantsOut(k.grants), createdBy: k.createdBy, createdAt: ts(k.createdAt), expiresAt: ts(k.expiresAt), revokedAt: ts(k.revokedAt) };
}

const KIND_OUT: Record<AdminIdentity["kind"], Identity_Kind> = { user: Identity_Kind.USER, apikey: Identity_Kind.API_KEY, bootstrap: Identity_Kind.BOOTSTRAP };

export function identityOut(i: AdminIdentity): MessageInitShape<typeof IdentitySchema> {
  return { kind: KIND_OUT[i.kind], id: i.id, email: i.email ?? "", name: i.name ?? "", grants: grantsOut(i.grants) };
}
