/**
 * A real OpenID provider for tests (oidc-provider with its development
 * login and consent forms) and a cookie-carrying "browser" made of fetch,
 * so the SSO flow runs end to end over sockets, offline.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

/** The little of oidc-provider's API the tests use; the package ships no type declarations. */
interface ProviderInstance {
  callback(): (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void;
}
type ProviderCtor = new (issuer: string, config: Record<string, unknown>) => ProviderInstance;

export interface TestIdp {
  issuer: string;
  close(): Promise<void>;
}

/**
 * Starts oidc-provider on 127.0.0.1 (port 0: any free one). Whatever login
 * name is typed becomes `sub` and `email`; names starting "unverified" get
 * `email_verified: false`. Clients: "gw" (secret "gw-secret") and "gw-public"
 * (PKCE only), both allowed to redirect to `redirectUri`. `claimsInIdToken`
 * puts email and name in the ID token; otherwise they are in userinfo only.
 */
export async function startIdp(redirectUri: string, opts: { port?: number; claimsInIdToken?: boolean } = {}): Promise<TestIdp> {
  // A variable specifier keeps tsc from demanding declarations the package does not ship.
  const specifier = "oidc-provider";
  const { Provider } = (await import(specifier)) as { Provider: ProviderCtor };
  const server = createServer();
  await listen(server, opts.port ?? 0);
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = new Provider(issuer, {
    clients: [
      { client_id: "gw", client_secret: "gw-secret", redirect_uris: [redirectUri], grant_types: ["authorization_code"], response_types: ["code"] },
      { client_id: "gw-public", token_endpoint_auth_method: "none", redirect_uris: [redirectUri], grant_types: ["authorization_code"], response_types: ["code"] },
    ],
    claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
    // true (the default) keeps scope claims out of ID tokens when an access token is issued: userinfo only.
    conformIdTokenClaims: !(opts.claimsInIdToken ?? false),
    cookies: { keys: ["test-cookie-key"] },
    // Set explicitly so the provider does not print a notice for each default.
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    async findAccount(_ctx: unknown, sub: string) {
      return {
        accountId: sub,
        async claims() {
          return { sub, email: sub, email_verified: !sub.startsWith("unverified"), name: `Name of ${sub}` };
        },
      };
    },
  });
  server.on("request", provider.callback());
  return {
    issuer,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Listens on 127.0.0.1; resolves once bound. */
export function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

/** A port nothing listens on (bound, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listen(s);
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** fetch with redirect: "manual" and a cookie jar; paths and domains are ignored, which is enough on one host. */
export class Browser {
  readonly jar = new Map<string, string>();

  async get(url: string | URL): Promise<Response> {
    return this.send(url, { method: "GET" });
  }

  async post(url: string | URL, form: Record<string, string>): Promise<Response> {
    return this.send(url, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(form).toString() });
  }

  private async send(url: string | URL, init: { method: string; headers?: Record<string, string>; body?: string }): Promise<Response> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join("; ");
    const res = await fetch(url, { ...init, redirect: "manual", headers: { ...init.headers, ...(cookie === "" ? {} : { cookie }) } });
    for (const line of res.headers.getSetCookie()) {
      const [pair = "", ...attrs] = line.split(";").map((s) => s.trim());
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const gone = attrs.some((a) => /^max-age=0$/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()));
      if (gone) this.jar.delete(name);
      else this.jar.set(name, pair.slice(eq + 1));
    }
    return res;
  }
}

/**
 * From the identity provider's authorization URL to the redirect back to
 * `redirectUri`: follows redirects, fills the login form with `login` and
 * accepts consent, or presses the form's cancel link when `abort`.
 * Returns the callback URL without requesting it.
 */
export async function throughIdp(browser: Browser, authUrl: string, redirectUri: string, login: string, abort = false): Promise<URL> {
  let url = new URL(authUrl);
  for (let hops = 0; hops < 20; hops++) {
    if (url.href.startsWith(redirectUri)) return url;
    const res = await browser.get(url);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location !== null) {
      url = new URL(location, url);
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`identity provider answered ${res.status}: ${html.slice(0, 500)}`);
    const action = unescape(/<form[^>]*action="([^"]+)"/.exec(html)?.[1] ?? "");
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    if (abort) {
      const cancel = unescape(/href="([^"]*\/abort)"/.exec(html)?.[1] ?? "");
      url = new URL(cancel, url);
      continue;
    }
    const form: Record<string, string> = prompt === "login" ? { prompt, login, password: "any" } : { prompt: prompt ?? "" };
    const posted = await browser.post(new URL(action, url), form);
    const next = posted.headers.get("location");
    if (next === null) throw new Error(`form post answered ${posted.status}: ${(await posted.text()).slice(0, 500)}`);
    url = new URL(next, url);
  }
  throw new Error("too many hops at the identity provider");
}

function unescape(s: string): string {
  return s.replace(/&amp;/g, "&").replace(/&#x2F;/gi, "/").replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n)));
}
