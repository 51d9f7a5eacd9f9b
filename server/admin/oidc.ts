/**
 * OpenID Connect single sign-on for the admin web UI: the authorization code
 * flow with PKCE (S256), `state` and `nonce`, through openid-client v6.
 *
 * Two routes. `start` sends the browser to the identity provider with a fresh
 * state, nonce and PKCE verifier kept in the `sy_oidc` cookie; `callback`
 * checks the cookie against the answer, exchanges the code, verifies the ID
 * token, applies the email rules and hands the claims to `deps.signIn`, which
 * makes the session. Nothing here stores state server-side.
 *
 * The cookie is AES-256-GCM sealed with a random key made per createOidc call
 * (so per process): it cannot be read or forged, but a sign-in begun on one
 * replica must finish on the same one, and a restart mid-sign-in means
 * clicking the button again.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type * as OpenIdClient from "openid-client";
import { cookieValue, sameString } from "./auth.ts";

/**
 * openid-client (with oauth4webapi and jose), loaded with the first sign-in
 * (discovery), not at start-up: a gateway without SSO, or one nobody signs in
 * to, never evaluates it. Set once `loadClient()` has resolved; every use
 * below comes after `configuration()`.
 */
let client: typeof OpenIdClient | undefined;
let loadingClient: Promise<typeof OpenIdClient> | undefined;
function loadClient(): Promise<typeof OpenIdClient> {
  loadingClient ??= import("openid-client").then(
    (m) => (client = m),
    (err: unknown) => {
      loadingClient = undefined;
      throw err;
    },
  );
  return loadingClient;
}

/** openid-client, once `configuration()` has resolved. */
function loaded(): typeof OpenIdClient {
  if (client === undefined) throw new Error("openid-client is not loaded");
  return client;
}

export interface OidcConfig {
  /** https://…, discovery from /.well-known/openid-configuration; http only for 127.0.0.1/localhost/[::1]. */
  issuer: string;
  clientId: string;
  /** Absent: a public client (PKCE only). */
  clientSecret?: string | undefined;
  /** e.g. https://gw.example.com/ui/auth/oidc/callback; registered at the identity provider as is. */
  redirectUri: string;
  /** Default "openid email profile"; must include "openid". */
  scopes?: string | undefined;
  /** Button text, default "Sign in with SSO". */
  label?: string | undefined;
  /** Email domains allowed (exact, case-insensitive; no subdomains); empty/absent = any. */
  allowedDomains?: readonly string[] | undefined;
}

/** Who signed in, from the verified ID token (email from userinfo when the token has none). */
export interface OidcClaims {
  /** The ID token's `sub`, stable per user at this issuer. */
  subject: string;
  /** Trimmed and lower-cased. */
  email: string;
  /** Always true today: unverified or unasserted emails are refused before signIn. */
  emailVerified: boolean;
  name?: string | undefined;
}

export interface OidcDeps {
  /** Called after a verified callback. Creates the session (sets its cookie on res) and returns where to send the browser, or throws an Error whose message is safe to show ("no account for this email"). */
  signIn(claims: OidcClaims, req: IncomingMessage, res: ServerResponse): Promise<string>;
  /** Add Secure to cookies when true. */
  secureCookies: (req: IncomingMessage) => boolean;
  logger?: { warn(msg: string, fields?: Record<string, unknown>): void };
}

export interface Oidc {
  /** The sign-in button's text, defaulted. */
  readonly label: string;
  /** GET /ui/auth/oidc/start: redirects to the identity provider. */
  start(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** GET /ui/auth/oidc/callback: checks state, nonce and PKCE, exchanges the code, verifies the ID token, then calls deps.signIn and redirects. */
  callback(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const COOKIE = "sy_oidc";
const COOKIE_PATH = "/ui/auth/oidc";
const ATTEMPT_TTL_S = 600;
const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** A refusal with the status and the message the error page shows. */
class OidcRefusal extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** One sign-in attempt, sealed into the cookie. */
interface Attempt {
  state: string;
  nonce: string;
  verifier: string;
  /** Expiry, ms since epoch; checked here too, since Max-Age is only the browser's promise. */
  exp: number;
}

/** Checks the config (throws on a bad one, at start-up) and returns the two route handlers. */
export function createOidc(config: OidcConfig, deps: OidcDeps): Oidc {
  const issuer = new URL(config.issuer);
  const insecure = issuer.protocol === "http:" && LOOPBACK.has(issuer.hostname);
  if (issuer.protocol !== "https:" && !insecure) throw new Error(`oidc.issuer must be https:// (http:// only for localhost): ${config.issuer}`);
  const redirectUri = new URL(config.redirectUri);
  const scopes = config.scopes ?? "openid email profile";
  if (!scopes.split(" ").includes("openid")) throw new Error(`oidc.scopes must include "openid": ${scopes}`);
  const domains = new Set((config.allowedDomains ?? []).map((d) => d.toLowerCase()));
  const seal = createSealer(randomBytes(32));
  const log = deps.logger ?? { warn() {} };

  let discovered: Promise<OpenIdClient.Configuration> | undefined;
  /** Discovery once, shared by concurrent requests; forgotten on failure so the next request retries. */
  function configuration(): Promise<OpenIdClient.Configuration> {
    discovered ??= loadClient()
      .then((c) => c.discovery(issuer, config.clientId, undefined, clientAuth(c, config.clientSecret), {
        timeout: 10,
        ...(insecure ? { execute: [c.allowInsecureRequests] } : {}),
      }))
      .catch((err: unknown) => {
        discovered = undefined;
        log.warn("oidc: discovery failed", { issuer: config.issuer, error: errorText(err) });
        throw new OidcRefusal(502, "The identity provider cannot be reached. Try again shortly.");
      });
    return discovered;
  }

  function cookie(req: IncomingMessage, value: string, maxAge: number): string {
    return `${COOKIE}=${value}; Path=${COOKIE_PATH}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax${deps.secureCookies(req) ? "; Secure" : ""}`;
  }

  async function start(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const as = await configuration();
      const client = loaded();
      const attempt: Attempt = { state: client.randomState(), nonce: client.randomNonce(), verifier: client.randomPKCECodeVerifier(), exp: Date.now() + ATTEMPT_TTL_S * 1000 };
      const url = client.buildAuthorizationUrl(as, {
        redirect_uri: redirectUri.href,
        response_type: "code",
        scope: scopes,
        state: attempt.state,
        nonce: attempt.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(attempt.verifier),
        code_challenge_method: "S256",
      });
      res.writeHead(303, { location: url.href, "set-cookie": cookie(req, seal.seal(attempt), ATTEMPT_TTL_S), "cache-control": "no-store", "referrer-policy": "no-referrer" });
      res.end();
    } catch (err) {
      fail(res, err);
    }
  }

  async function callback(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // One attempt per cookie, whatever the outcome; appended last so signIn's own setHeader cannot drop it.
    const clear = (): void => appendCookie(res, cookie(req, "", 0));
    try {
      const params = new URL(req.url ?? "/", redirectUri).searchParams;
      const attempt = seal.open(readCookie(req, COOKIE));
      if (attempt === undefined || attempt.exp < Date.now()) throw new OidcRefusal(400, "This sign-in attempt has expired or was not started here. Start again.");
      const state = params.get("state");
      if (state === null || !sameString(state, attempt.state)) throw new OidcRefusal(400, "The sign-in answer does not match this attempt (state). Start again.");
      const idpError = params.get("error");
      // RFC 6749 section 4.1.2.1: the error code; shown escaped, never the free-text description.
      if (idpError !== null) throw new OidcRefusal(400, `The identity provider refused the sign-in: ${idpError.slice(0, 100)}`);
      const claims = await exchange(await configuration(), params, attempt);
      const location = await signIn(claims, req, res);
      clear();
      res.writeHead(303, { location, "cache-control": "no-store", "referrer-policy": "no-referrer" });
      res.end();
    } catch (err) {
      clear();
      fail(res, err);
    }
  }

  /** Code for tokens; verifies the ID token (signature, iss, aud, exp, nonce) and applies the email rules. */
  async function exchange(as: OpenIdClient.Configuration, params: URLSearchParams, attempt: Attempt): Promise<OidcClaims> {
    const client = loaded();
    // The registered redirect URI with the answer's query: the token request must repeat it exactly, whatever Host the proxy passed on.
    const current = new URL(redirectUri);
    current.search = params.toString();
    let tokens: Awaited<ReturnType<typeof OpenIdClient.authorizationCodeGrant>>;
    try {
      tokens = await client.authorizationCodeGrant(as, current, { expectedState: attempt.state, expectedNonce: attempt.nonce, pkceCodeVerifier: attempt.verifier, idTokenExpected: true });
    } catch (err) {
      throw protocolRefusal(err, "oidc: code exchange failed");
    }
    const id = tokens.claims();
    if (id === undefined) throw new OidcRefusal(400, "The identity provider sent no ID token.");
    let source: Record<string, unknown> = id;
    if (typeof id.email !== "string") {
      // Providers that follow OIDC Core 5.4 strictly put scope claims in userinfo only (oidc-provider's conformIdTokenClaims).
      try {
        source = await client.fetchUserInfo(as, tokens.access_token, id.sub);
      } catch (err) {
        throw protocolRefusal(err, "oidc: userinfo failed");
      }
    }
    const email = typeof source.email === "string" ? source.email.trim().toLowerCase() : "";
    if (email === "") throw new OidcRefusal(403, "The identity provider did not share an email address.");
    // Absent counts as unverified: matching accounts on an email nobody checked lets anyone claim it.
    const verified = source.email_verified === true || source.email_verified === "true";
    if (!verified) throw new OidcRefusal(403, "Your email address is not verified at the identity provider.");
    const domain = email.slice(email.lastIndexOf("@") + 1);
    if (domains.size > 0 && !domains.has(domain)) throw new OidcRefusal(403, `Accounts at ${domain} may not sign in here.`);
    const name = typeof source.name === "string" ? source.name : typeof id.name === "string" ? id.name : undefined;
    return { subject: id.sub, email, emailVerified: true, name };
  }

  async function signIn(claims: OidcClaims, req: IncomingMessage, res: ServerResponse): Promise<string> {
    try {
      return await deps.signIn(claims, req, res);
    } catch (err) {
      throw new OidcRefusal(403, err instanceof Error ? err.message : "Sign-in refused.");
    }
  }

  /** openid-client's verdicts are 400 (the answer is bad); anything else is the provider being unreachable. */
  function protocolRefusal(err: unknown, msg: string): OidcRefusal {
    log.warn(msg, { error: errorText(err) });
    if (client !== undefined && (err instanceof client.ResponseBodyError || err instanceof client.AuthorizationResponseError || err instanceof client.ClientError)) {
      return new OidcRefusal(400, "The identity provider's answer could not be verified. Start again.");
    }
    return new OidcRefusal(502, "The identity provider cannot be reached. Try again shortly.");
  }

  function fail(res: ServerResponse, err: unknown): void {
    const refusal = err instanceof OidcRefusal ? err : new OidcRefusal(500, "Sign-in failed.");
    if (!(err instanceof OidcRefusal)) log.warn("oidc: unexpected error", { error: errorText(err) });
    errorPage(res, refusal.status, refusal.message);
  }

  return { label: config.label ?? "Sign in with SSO", start, callback };
}

/** client_secret_basic unless the provider lists only client_secret_post (OIDC Discovery: basic is the default); none for public clients. */
function clientAuth(client: typeof OpenIdClient, secret: string | undefined): OpenIdClient.ClientAuth {
  if (secret === undefined) return client.None();
  const basic = client.ClientSecretBasic(secret);
  const post = client.ClientSecretPost(secret);
  return (as, c, body, headers) => {
    const methods = as.token_endpoint_auth_methods_supported;
    const usePost = methods !== undefined && !methods.includes("client_secret_basic") && methods.includes("client_secret_post");
    (usePost ? post : basic)(as, c, body, headers);
  };
}

/** AES-256-GCM: the cookie is both unreadable and unforgeable; the cookie name is bound as additional data. */
function createSealer(key: Buffer) {
  const aad = Buffer.from(COOKIE);
  return {
    seal(a: Attempt): string {
      const iv = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", key, iv).setAAD(aad);
      const body = Buffer.concat([c.update(JSON.stringify(a), "utf8"), c.final()]);
      return Buffer.concat([iv, body, c.getAuthTag()]).toString("base64url");
    },
    open(value: string | undefined): Attempt | undefined {
      if (value === undefined) return undefined;
      const raw = Buffer.from(value, "base64url");
      if (raw.length < 12 + 16 + 2) return undefined;
      try {
        const d = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12)).setAAD(aad).setAuthTag(raw.subarray(raw.length - 16));
        const json = Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString("utf8");
        const a = JSON.parse(json) as Attempt;
        return typeof a.state === "string" && typeof a.nonce === "string" && typeof a.verifier === "string" && typeof a.exp === "number" ? a : undefined;
      } catch {
        return undefined;
      }
    },
  };
}

function appendCookie(res: ServerResponse, c: string): void {
  const prev = res.getHeader("set-cookie");
  res.setHeader("set-cookie", prev === undefined ? [c] : [...(Array.isArray(prev) ? prev : [String(prev)]), c]);
}

function readCookie(req: IncomingMessage, name: string): string | undefined {
  return cookieValue(req.headers.cookie, name);
}

/**
 * Class, code and message, plus the message of an Error cause (openid-client
 * wraps oauth4webapi's, which names the failed check). These are fixed
 * strings; the causes' data (claims, response bodies) is never logged.
 */
function errorText(err: unknown): string {
  if (client !== undefined && err instanceof client.ResponseBodyError) return `${err.name}: ${err.error}`;
  if (!(err instanceof Error)) return String(err);
  const code = "code" in err && typeof err.code === "string" ? ` (${err.code})` : "";
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : "";
  return `${err.name}: ${err.message}${code}${cause}`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function errorPage(res: ServerResponse, status: number, message: string): void {
  // signIn may have answered already before throwing; there is nothing left to say.
  if (res.headersSent) {
    res.end();
    return;
  }
  const body = `<!doctype html><html><head><meta charset="utf-8"><title>Sign-in failed</title></head><body><h1>Sign-in failed</h1><p>${escapeHtml(message)}</p><p><a href="/ui/">Back to sign-in</a></p></body></html>`;
  res.writeHead(status, {
    "content-type": "text/html; charset=utf-8",
    "content-security-policy": "default-src 'none'",
    "cache-control": "no-store",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  });
  res.end(body);
}
