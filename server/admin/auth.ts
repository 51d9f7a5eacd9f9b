import { randomBytes, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../errors/errors.ts";
import { credential, type Authenticator, type HeaderGetter, type Principal } from "../governance/authenticate.ts";
import { hashSecret as sha256 } from "../governance/keys.ts";
import type { AuditLog } from "./audit.ts";
import { decoyHash, verifyPassword } from "./passwords.ts";
import type { AdminStore, ApiKeyRecord, Session, User } from "./store.ts";
import type { AdminIdentity, Grant } from "./types.ts";

/**
 * Who an admin caller is: a person through the session cookie, an admin API
 * key ("sk-sya-…"), or the bootstrap admin key. Also logs people in and out.
 * The inference authenticator (virtual and static keys) is asked for
 * everything else, so one gate serves both planes.
 */

export const SESSION_COOKIE = "sy_session";
const API_KEY_PREFIX = "sk-sya-";
const API_KEY_SHAPE = /^sk-sya-[A-Za-z0-9_-]{43}$/;

export interface AdminAuthOptions {
  store: AdminStore;
  audit: AuditLog;
  /** SWITCHYARD_ADMIN_KEY: signs in as the built-in owner. */
  adminKey?: string | undefined;
  /** The inference authenticator, asked when no admin credential is presented. */
  inference: Authenticator;
  /** A session ends this long after login. */
  sessionTtlMs: number;
  /** …or this long after its last use. */
  sessionIdleMs: number;
  /** How often to look for people or keys added elsewhere (the CLI; other instances); default 1 s. */
  pollMs?: number | undefined;
  /** A failed background look at the store (logged by the caller). */
  onError?: ((err: unknown) => void) | undefined;
}

/** Where a call came from, for the audit log and login throttling. */
export interface CallMeta {
  sourceIp: string;
  requestId: string;
}

export interface LoggedIn {
  identity: AdminIdentity;
  csrf: string;
  /** The session cookie's Set-Cookie value, without Secure (the caller adds it under TLS). */
  cookie: string;
}

export interface AdminAuth {
  /** For the RPC request gate: admin credentials first, then inference keys. */
  authenticate: Authenticator;
  /** Email and password; throttled; every attempt audited. */
  loginWithPassword(email: string, password: string, meta: CallMeta): Promise<LoggedIn>;
  /** The bootstrap admin key; throttled and audited the same way. */
  loginWithAdminKey(key: string, meta: CallMeta): Promise<LoggedIn>;
  /** A verified single sign-on: the user must exist (matched by subject, then by email). */
  loginWithSso(claims: { subject: string; email: string }, meta: CallMeta): Promise<LoggedIn>;
  /** Ends a session; returns the Set-Cookie value that clears the cookie. */
  logout(identity: AdminIdentity, meta: CallMeta): Promise<string>;
  identityOf(user: User): AdminIdentity;
  /**
   * People or admin API keys exist (the gateway is then never open). A cached
   * answer, read synchronously by the inference path: refreshed after every
   * change made here and by a poll for changes made elsewhere.
   */
  adminsExist(): boolean;
  /** Re-reads adminsExist after a change made here. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export const BOOTSTRAP_IDENTITY: AdminIdentity = Object.freeze({
  kind: "bootstrap",
  id: "bootstrap",
  label: "bootstrap admin key",
  grants: Object.freeze([{ role: "owner", scope: { kind: "global" } }]) as readonly Grant[],
}) as AdminIdentity;

const BOOTSTRAP: Principal = Object.freeze({ id: "admin", kind: "admin", identity: BOOTSTRAP_IDENTITY });

/** Constant-time string comparison (tokens of possibly different lengths). */
export function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Session cookies get Secure when configured, or when a TLS-terminating proxy says the request was https. */
export function secureCookies(configured: boolean, forwardedProto: string | null | undefined): boolean {
  return configured || forwardedProto === "https";
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | null | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function newApiKeySecret(): string {
  return API_KEY_PREFIX + randomBytes(32).toString("base64url");
}

export function isApiKey(token: string): boolean {
  return token.length === 50 && API_KEY_SHAPE.test(token);
}

/** Failed logins per email and per address; a success clears the email's count. */
const WINDOW_MS = 15 * 60_000;
const MAX_PER_ACCOUNT = 5;
const MAX_PER_ADDRESS = 20;
const SWEEP_MS = 10 * 60_000;

interface Failures {
  count: number;
  since: number;
}

export async function createAdminAuth(o: AdminAuthOptions): Promise<AdminAuth> {
  const { store, audit } = o;
  const adminHash = o.adminKey === undefined ? undefined : sha256(o.adminKey);
  /** The user id of bootstrap sessions: names the admin key by a hash prefix (never the key). */
  const bootstrapSession = adminHash === undefined ? undefined : `bootstrap:${sha256(adminHash).slice(0, 16)}`;
  const failures = new Map<string, Failures>();
  const countAdmins = async (): Promise<boolean> => (await store.userCount()) + (await store.apiKeyCount()) > 0;
  let version = await store.changeVersion();
  let exist = await countAdmins();
  let lastSweep = Date.now();
  // Another process (the CLI's create-owner) or instance may add the first owner while the gateway
  // runs: a look at the change version (SQLite's data version, no lock, no query of the tables; in
  // PostgreSQL one counter row) notices it. Ended sessions and old sign-in failures are swept
  // every ten minutes. One look at a time; a failed one is reported once until one succeeds.
  let polling: Promise<void> | undefined;
  let failing = false;
  async function poll(): Promise<void> {
    const v = await store.changeVersion();
    if (v !== version) {
      version = v;
      exist = await countAdmins();
    }
    if (Date.now() - lastSweep < SWEEP_MS) return;
    lastSweep = Date.now();
    await store.sweepSessions(lastSweep);
    const cutoff = lastSweep - WINDOW_MS;
    for (const [k, f] of failures) if (f.since < cutoff) failures.delete(k);
  }
  const timer = setInterval(() => {
    if (polling !== undefined) return;
    polling = poll().then(
      () => void (failing = false),
      (err: unknown) => {
        if (!failing) o.onError?.(err);
        failing = true;
      },
    ).finally(() => (polling = undefined));
  }, o.pollMs ?? 1000);
  timer.unref();

  function identityOf(user: User): AdminIdentity {
    return { kind: "user", id: user.id, label: user.email, email: user.email, name: user.name, grants: user.grants };
  }

  function keyIdentity(k: ApiKeyRecord): AdminIdentity {
    return { kind: "apikey", id: k.id, label: `${k.name} (${k.hint})`, grants: k.grants, onBehalfOf: k.createdBy };
  }

  async function sessionPrincipal(token: string): Promise<Principal> {
    const now = Date.now();
    const session = token.length === 43 ? await store.getSession(sha256(token)) : undefined;
    if (session === undefined || session.expiresAt <= now || session.idleUntil <= now) {
      throw new GatewayError("unauthenticated", "your session has ended: sign in again");
    }
    // The bootstrap owner's sessions are bound to the admin key they signed in with: they end
    // when the key is changed or taken out of the configuration.
    const bootstrap = session.userId.startsWith("bootstrap:");
    const user = bootstrap ? undefined : await store.getUser(session.userId);
    const base = bootstrap
      ? (bootstrapSession !== undefined && session.userId === bootstrapSession ? BOOTSTRAP_IDENTITY : undefined)
      : user === undefined || user.disabled ? undefined : identityOf(user);
    if (base === undefined) throw new GatewayError("unauthenticated", "your session has ended: sign in again");
    // Written at most once a minute: each admin call need not be a disk write.
    const idleUntil = Math.min(session.expiresAt, now + o.sessionIdleMs);
    if (idleUntil - session.idleUntil > 60_000) await store.touchSession(session.id, idleUntil);
    const identity: AdminIdentity = { ...base, csrf: session.csrf, sessionId: session.id };
    return { id: identity.id, kind: "operator", identity };
  }

  async function apiKeyPrincipal(presented: string): Promise<Principal> {
    const k = isApiKey(presented) ? await store.apiKeyByHash(sha256(presented)) : undefined;
    if (k === undefined) throw new GatewayError("unauthenticated", "invalid admin API key");
    if (k.revokedAt !== undefined) throw new GatewayError("unauthenticated", "this admin API key has been revoked");
    if (k.expiresAt !== undefined && k.expiresAt <= Date.now()) throw new GatewayError("unauthenticated", "this admin API key has expired");
    if (!(await creatorActive(k.createdBy, 0))) throw new GatewayError("unauthenticated", "this admin API key's creator is disabled or gone");
    return { id: k.id, kind: "operator", identity: keyIdentity(k) };
  }

  /**
   * A key works only while whoever made it could still act: a disabled or
   * deleted person's keys (and the keys those keys made) stop with them.
   */
  async function creatorActive(id: string, depth: number): Promise<boolean> {
    if (id === "bootstrap" || id === "cli") return true;
    if (depth > 8) return false;
    if (id.startsWith("adk_")) {
      const k = await store.getApiKey(id);
      return k !== undefined && k.revokedAt === undefined && (k.expiresAt === undefined || k.expiresAt > Date.now()) && creatorActive(k.createdBy, depth + 1);
    }
    const u = await store.getUser(id);
    return u !== undefined && !u.disabled;
  }

  const authenticate: Authenticator = (header: HeaderGetter) => {
    const presented = credential(header);
    if (presented !== undefined) {
      if (presented.startsWith(API_KEY_PREFIX)) return apiKeyPrincipal(presented);
      const p = o.inference(header);
      const admin = (q: Principal): Principal => (q.kind === "admin" ? BOOTSTRAP : q);
      return p instanceof Promise ? p.then(admin) : admin(p);
    }
    const token = cookieValue(header("cookie"), SESSION_COOKIE);
    if (token !== undefined) return sessionPrincipal(token);
    return o.inference(header);
  };

  function throttle(keys: string[]): void {
    const now = Date.now();
    for (const k of keys) {
      const f = failures.get(k);
      if (f === undefined || now - f.since > WINDOW_MS) continue;
      const max = k.startsWith("ip:") ? MAX_PER_ADDRESS : MAX_PER_ACCOUNT;
      if (f.count >= max) {
        const wait = Math.ceil((f.since + WINDOW_MS - now) / 1000);
        throw new GatewayError("rate_limited", `too many failed sign-ins: try again in ${wait} s`);
      }
    }
  }

  function failed(keys: string[]): void {
    const now = Date.now();
    for (const k of keys) {
      const f = failures.get(k);
      if (f === undefined || now - f.since > WINDOW_MS) failures.set(k, { count: 1, since: now });
      else f.count++;
    }
  }

  async function startSession(userId: string, identity: AdminIdentity): Promise<LoggedIn> {
    const token = randomBytes(32).toString("base64url");
    const now = Date.now();
    const session: Session = {
      id: sha256(token),
      userId,
      csrf: randomBytes(24).toString("base64url"),
      createdAt: now,
      expiresAt: now + o.sessionTtlMs,
      idleUntil: now + Math.min(o.sessionIdleMs, o.sessionTtlMs),
    };
    await store.createSession(session);
    const maxAge = Math.floor(o.sessionTtlMs / 1000);
    return {
      identity: { ...identity, csrf: session.csrf, sessionId: session.id },
      csrf: session.csrf,
      cookie: `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`,
    };
  }

  async function refuse(action: string, who: string, reason: string, meta: CallMeta, keys: string[]): Promise<never> {
    failed(keys);
    await audit.record({ actorId: "anonymous", actorLabel: who, action, target: "auth", after: { reason }, outcome: "unauthenticated", ...meta });
    throw new GatewayError("unauthenticated", "sign-in failed: wrong email or password");
  }

  return {
    authenticate,
    async loginWithPassword(email, password, meta) {
      const normalized = email.trim().toLowerCase();
      const keys = [`email:${normalized}`, `ip:${meta.sourceIp}`];
      throttle(keys);
      const user = normalized === "" ? undefined : await store.userByEmail(normalized);
      // Unknown emails cost the same scrypt as known ones.
      const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash()));
      if (user === undefined || user.passwordHash === undefined || !ok) return refuse("auth.login_failed", normalized.slice(0, 200), "wrong email or password", meta, keys);
      if (user.disabled) return refuse("auth.login_failed", user.email, "user disabled", meta, keys);
      failures.delete(keys[0]!);
      await store.updateUser({ ...user, lastLoginAt: Date.now() });
      await audit.record({ actorId: user.id, actorLabel: user.email, action: "auth.login", target: `user:${user.id}`, after: { method: "password" }, ...meta });
      return startSession(user.id, identityOf(user));
    },
    async loginWithAdminKey(key, meta) {
      const keys = ["email:bootstrap", `ip:${meta.sourceIp}`];
      throttle(keys);
      if (adminHash === undefined || !sameString(sha256(key), adminHash)) return refuse("auth.login_failed", "bootstrap admin key", "wrong admin key", meta, keys);
      failures.delete(keys[0]!);
      await audit.record({ actorId: "bootstrap", actorLabel: BOOTSTRAP_IDENTITY.label, action: "auth.login", target: "user:bootstrap", after: { method: "admin_key" }, ...meta });
      return startSession(bootstrapSession!, BOOTSTRAP_IDENTITY);
    },
    async loginWithSso(claims, meta) {
      const user = (await store.userBySubject(claims.subject)) ?? (await store.userByEmail(claims.email.toLowerCase()));
      if (user === undefined || user.disabled || (user.ssoSubject !== undefined && user.ssoSubject !== claims.subject)) {
        await audit.record({ actorId: "anonymous", actorLabel: claims.email.slice(0, 200), action: "auth.login_failed", target: "auth", after: { method: "sso", reason: user === undefined ? "no account for this email" : "user disabled or subject mismatch" }, outcome: "unauthenticated", ...meta });
        throw new GatewayError("permission_denied", "no active account for this email: ask an admin to add you");
      }
      const linked = { ...user, ssoSubject: claims.subject, lastLoginAt: Date.now() };
      await store.updateUser(linked);
      await audit.record({ actorId: user.id, actorLabel: user.email, action: "auth.login", target: `user:${user.id}`, after: { method: "sso" }, ...meta });
      return startSession(user.id, identityOf(linked));
    },
    async logout(identity, meta) {
      if (identity.sessionId !== undefined) await store.deleteSession(identity.sessionId);
      await audit.record({ actorId: identity.id, actorLabel: identity.label, action: "auth.logout", target: `user:${identity.id}`, ...meta });
      return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
    },
    identityOf,
    adminsExist: () => exist,
    async refresh() {
      exist = await countAdmins();
    },
    async close() {
      clearInterval(timer);
      await polling;
    },
  };
}
