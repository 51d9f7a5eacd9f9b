import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { AuthService } from "../../gen/switchyard/v1/auth_pb.ts";
import { PEER_HEADER } from "../admin/access.ts";
import { secureCookies, type AdminAuth, type CallMeta } from "../admin/auth.ts";
import { permissionsOf } from "../admin/types.ts";
import { invalid } from "../errors/errors.ts";
import { requestIdFrom } from "../pipeline/request-id.ts";
import { rpcCall } from "./context.ts";
import { caller, identityOut } from "./users.ts";

export interface AuthServiceOptions {
  auth: AdminAuth;
  adminKeyLogin: boolean;
  oidc?: { label: string } | undefined;
  /** Session cookies get Secure (TLS in front of the gateway). */
  secureCookies: boolean;
}

/** switchyard.v1.AuthService: sign-in, sign-out and "who am I" for the web UI. */
export function registerAuthService(router: ConnectRouter, o: AuthServiceOptions, options: Parameters<ConnectRouter["service"]>[2]): void {
  const setCookie = (ctx: HandlerContext, cookie: string): void => {
    const secure = secureCookies(o.secureCookies, ctx.requestHeader.get("x-forwarded-proto"));
    ctx.responseHeader.append("set-cookie", secure ? `${cookie}; Secure` : cookie);
  };
  router.service(
    AuthService,
    {
      getAuthConfig: () =>
        rpcCall(async () => ({
          passwordLogin: true,
          adminKeyLogin: o.adminKeyLogin,
          oidc: o.oidc !== undefined,
          oidcStartUrl: o.oidc === undefined ? "" : "/ui/auth/oidc/start",
          oidcLabel: o.oidc?.label ?? "",
          needsBootstrap: !o.adminKeyLogin && !o.auth.adminsExist(),
        })),
      login: (req, ctx) =>
        rpcCall(async () => {
          const m = req.method;
          const done =
            m.case === "password" ? await o.auth.loginWithPassword(m.value.email, m.value.password, meta(ctx))
            : m.case === "adminKey" ? await o.auth.loginWithAdminKey(m.value, meta(ctx))
            : undefined;
          if (done === undefined) throw invalid("method: password or admin_key is required", "method");
          setCookie(ctx, done.cookie);
          return { identity: identityOut(done.identity), csrfToken: done.csrf };
        }),
      logout: (_req, ctx) =>
        rpcCall(async () => {
          setCookie(ctx, await o.auth.logout(caller(ctx), meta(ctx)));
          return {};
        }),
      whoAmI: (_req, ctx) =>
        rpcCall(async () => {
          const identity = caller(ctx);
          return { identity: identityOut(identity), permissions: permissionsOf(identity), csrfToken: identity.csrf ?? "" };
        }),
    },
    options,
  );
}

export function meta(ctx: HandlerContext): CallMeta {
  return { sourceIp: ctx.requestHeader.get(PEER_HEADER) ?? "", requestId: requestIdFrom(ctx.requestHeader.get("x-request-id")) };
}
