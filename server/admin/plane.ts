/**
 * The admin plane, composed: people, admin API keys and sessions (admin.db,
 * or the shared PostgreSQL when database.url is set), the audit log, the
 * permission table's interceptor, the admin services, single sign-on routes
 * and the web UI. startGateway builds one and mounts what it returns; nothing
 * here is on the inference path except `authenticate`, which looks at an
 * admin credential only when one is presented (and `adminsExist`, a cached
 * answer).
 */
import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { NodeRequest, NodeResponse } from "../transport/node-http.ts";
import type { ConnectRouter } from "@connectrpc/connect";
import type { Config } from "../config/schema.ts";
import type { Admin } from "../governance/admin.ts";
import type { Authenticator } from "../governance/authenticate.ts";
import { registerAuditService } from "../rpc/audit.ts";
import { registerAuthService } from "../rpc/auth.ts";
import { registerUserService } from "../rpc/users.ts";
import type { Logger } from "../telemetry/log.ts";
import { createAccessInterceptor, createResolver, isPublicMethod, PEER_HEADER } from "./access.ts";
import type { AuditLog } from "./audit.ts";
import { createAdminAuth, secureCookies, type AdminAuth } from "./auth.ts";
import { openAuditLog, openStore } from "./backend.ts";
import type { Pool } from "./pg.ts";
import { createOidc, type Oidc } from "./oidc.ts";
import type { AdminStore } from "./store.ts";
import { createUsers } from "./users.ts";

export interface AdminPlane {
  /** For the RPC request gate: admin credentials, else the inference authenticator. */
  authenticate: Authenticator;
  /** Per-service options carrying the access interceptor: pass to every admin service. */
  serviceOptions: Parameters<ConnectRouter["service"]>[2];
  /** Methods that need no credentials (AuthService sign-in), for the request gate. */
  isPublic(method: string): boolean;
  /** Registers AuthService, UserService and AuditService. */
  register(router: ConnectRouter): void;
  /** GET /ui/auth/oidc/start and /callback; false for any other path. */
  sso(req: NodeRequest, res: NodeResponse): boolean;
  adminsExist(): boolean;
  readonly audit: AuditLog;
  readonly store: AdminStore;
  readonly auth: AdminAuth;
  /** Stops the timers; the SQLite file is closed, a PostgreSQL pool is left to its owner. */
  close(): Promise<void>;
}

export interface AdminPlaneOptions {
  config: Config;
  admin: Admin;
  inference: Authenticator;
  logger: Logger;
  /** ":memory:" in tests; default dataDir/admin.db. */
  path?: string | undefined;
  /** The shared PostgreSQL (database.url): everything lives there instead of admin.db. */
  database?: Pool | undefined;
}

const DAY_MS = 86_400_000;

export async function createAdminPlane(o: AdminPlaneOptions): Promise<AdminPlane> {
  const c = o.config.admin;
  const store = await openStore({ database: o.database, path: o.path ?? join(o.config.dataDir, "admin.db") });
  const audit = openAuditLog(store.backend);
  const resolver = createResolver(o.admin);
  const shared = store.backend.kind === "postgres";
  let auth: AdminAuth;
  try {
    auth = await createAdminAuth({
      store,
      audit,
      adminKey: c.key,
      inference: o.inference,
      sessionTtlMs: c.sessionHours * 3_600_000,
      sessionIdleMs: c.sessionIdleMinutes * 60_000,
      // Other instances add people too: look twice as often, so a change shows within a second.
      pollMs: shared ? 500 : 1000,
      onError: (err) => o.logger.warn("checking the admin store for changes failed", { error: err }),
    });
  } catch (err) {
    store.close();
    throw err;
  }
  const users = createUsers(store, auth, resolver);
  const serviceOptions = { interceptors: [createAccessInterceptor(resolver, audit, (err) => o.logger.error("audit write failed", { error: err }))] };
  const secure = (req: IncomingMessage): boolean => secureCookies(c.secureCookies, req.headers["x-forwarded-proto"] as string | undefined);

  let oidc: Oidc | undefined;
  if (c.oidc !== undefined) {
    oidc = createOidc(c.oidc, {
      secureCookies: secure,
      logger: o.logger,
      async signIn(claims, req, res) {
        const done = await auth.loginWithSso(claims, { sourceIp: req.socket.remoteAddress ?? "", requestId: "" });
        res.appendHeader("set-cookie", secure(req) ? `${done.cookie}; Secure` : done.cookie);
        return "/ui/";
      },
    });
  }

  // Retention moves old entries to files; it never drops them.
  const archiveDir = join(o.config.dataDir, "audit-archive");
  // With PostgreSQL, one instance at a time archives (the others skip), into its own data directory.
  let archiving: Promise<void> | undefined;
  const archive = (): void => {
    if (archiving !== undefined) return;
    archiving = audit.archive(Date.now() - c.auditRetentionDays * DAY_MS, archiveDir).then(
      ({ archived, file }) => {
        if (archived > 0) o.logger.info("audit entries archived", { archived, file });
      },
      (err: unknown) => o.logger.warn("audit archive failed; entries stay in the database", { error: err }),
    ).finally(() => (archiving = undefined));
  };
  const retention = o.path === ":memory:" ? undefined : setInterval(archive, DAY_MS);
  retention?.unref();
  if (retention !== undefined) archive();

  return {
    authenticate: auth.authenticate,
    serviceOptions,
    isPublic: isPublicMethod,
    register(router) {
      registerAuthService(router, { auth, adminKeyLogin: c.key !== undefined, oidc: oidc === undefined ? undefined : { label: oidc.label }, secureCookies: c.secureCookies }, serviceOptions);
      registerUserService(router, users, serviceOptions);
      registerAuditService(router, audit, serviceOptions);
    },
    sso(anyReq, anyRes) {
      // Sign-on is a browser flow: HTTP/1.1 in practice; the HTTP/2 compatibility API answers the same calls.
      const req = anyReq as IncomingMessage;
      const res = anyRes as ServerResponse;
      const path = (req.url ?? "").split("?", 1)[0];
      if (path !== "/ui/auth/oidc/start" && path !== "/ui/auth/oidc/callback") return false;
      if (oidc === undefined || req.method !== "GET") {
        res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("single sign-on is not configured\n");
        return true;
      }
      const run = path.endsWith("/start") ? oidc.start(req, res) : oidc.callback(req, res);
      run.catch((err: unknown) => {
        o.logger.warn("single sign-on failed", { error: err });
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" }).end("single sign-on failed\n");
      });
      return true;
    },
    adminsExist: () => auth.adminsExist(),
    audit,
    store,
    auth,
    async close() {
      if (retention !== undefined) clearInterval(retention);
      await auth.close();
      await archiving;
      store.close();
    },
  };
}

/** Marks the caller's address on a request from the socket (any client-sent value is replaced). */
export function markPeer(req: NodeRequest): void {
  req.headers[PEER_HEADER] = req.socket.remoteAddress ?? "";
}

