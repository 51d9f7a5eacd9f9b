/**
 * OIDC sign-in for the admin UI, end to end: a real oidc-provider, the
 * start/callback routes mounted on a small node:http server, and a browser
 * made of fetch that fills in the provider's login and consent forms.
 */
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOidc, type Oidc, type OidcClaims, type OidcConfig } from "../server/admin/oidc.ts";
import { Browser, freePort, listen, startIdp, throughIdp, type TestIdp } from "./support/oidc-idp.ts";

let gateway: Server;
let gatewayUrl: string;
let redirectUri: string;
let idp: TestIdp;
/** The routes under test; each test mounts its own instance. */
let oidc: Oidc | undefined;
const signIns: OidcClaims[] = [];
const warnings: string[] = [];

beforeAll(async () => {
  gateway = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (oidc !== undefined && path === "/ui/auth/oidc/start") void oidc.start(req, res);
    else if (oidc !== undefined && path === "/ui/auth/oidc/callback") void oidc.callback(req, res);
    else res.writeHead(404).end();
  });
  const port = await listen(gateway);
  gatewayUrl = `http://127.0.0.1:${port}`;
  redirectUri = `${gatewayUrl}/ui/auth/oidc/callback`;
  idp = await startIdp(redirectUri);
});

afterAll(async () => {
  await idp?.close();
  gateway?.closeAllConnections();
  await new Promise<void>((r) => gateway?.close(() => r()));
});

function mount(overrides: Partial<OidcConfig> = {}, secure = false): Oidc {
  signIns.length = 0;
  oidc = createOidc(
    { issuer: idp.issuer, clientId: "gw", clientSecret: "gw-secret", redirectUri, ...overrides },
    {
      async signIn(claims, _req, res) {
        if (claims.email.startsWith("nobody")) throw new Error("no account for <this> email");
        signIns.push(claims);
        res.setHeader("set-cookie", "sy_session=s1; Path=/; HttpOnly");
        return "/ui/#welcome";
      },
      secureCookies: () => secure,
      logger: { warn: (msg, fields) => void warnings.push(`${msg} ${JSON.stringify(fields ?? {})}`) },
    },
  );
  return oidc;
}

/** GET /start; returns the identity provider URL it redirects to. */
async function start(browser: Browser): Promise<URL> {
  const res = await browser.get(`${gatewayUrl}/ui/auth/oidc/start`);
  expect(res.status).toBe(303);
  return new URL(res.headers.get("location") ?? "");
}

/** start, the provider's forms, and the callback; returns the callback's response. */
async function signInAs(login: string, browser = new Browser(), edit?: (auth: URL) => void): Promise<Response> {
  const auth = await start(browser);
  edit?.(auth);
  const back = await throughIdp(browser, auth.href, redirectUri, login);
  return browser.get(back);
}

async function expectRefusal(res: Response, status: number, text: string | RegExp): Promise<void> {
  const body = await res.text();
  expect(res.status, body).toBe(status);
  expect(res.headers.get("content-security-policy")).toBe("default-src 'none'");
  expect(res.headers.get("content-type")).toMatch(/^text\/html/);
  expect(body).toMatch(text);
  expect(body).toContain('href="/ui/"');
  expect(res.headers.getSetCookie().some((c) => c.startsWith("sy_oidc=;") && c.includes("Max-Age=0"))).toBe(true);
  expect(signIns).toHaveLength(0);
}

describe("OIDC sign-in", () => {
  it("runs the code flow with PKCE, state and nonce, and redirects where signIn says", async () => {
    mount();
    const browser = new Browser();
    const startRes = await browser.get(`${gatewayUrl}/ui/auth/oidc/start`);
    const auth = new URL(startRes.headers.get("location") ?? "");
    expect(auth.origin).toBe(idp.issuer);
    expect(auth.searchParams.get("code_challenge_method")).toBe("S256");
    expect(auth.searchParams.get("scope")).toBe("openid email profile");
    expect(auth.searchParams.get("redirect_uri")).toBe(redirectUri);
    for (const p of ["state", "nonce", "code_challenge"]) expect(auth.searchParams.get(p)?.length).toBeGreaterThan(20);
    const [cookie] = startRes.headers.getSetCookie();
    expect(cookie).toMatch(/^sy_oidc=[\w-]+; Path=\/ui\/auth\/oidc; Max-Age=600; HttpOnly; SameSite=Lax$/);

    const back = await throughIdp(browser, auth.href, redirectUri, "alice@example.com");
    expect(back.searchParams.get("state")).toBe(auth.searchParams.get("state"));
    const res = await browser.get(back);
    expect(res.status, await res.clone().text()).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/#welcome");
    expect(res.headers.getSetCookie()).toEqual(["sy_session=s1; Path=/; HttpOnly", "sy_oidc=; Path=/ui/auth/oidc; Max-Age=0; HttpOnly; SameSite=Lax"]);
    // oidc-provider keeps scope claims out of the ID token (conformIdTokenClaims), so these came from userinfo.
    expect(signIns).toEqual([{ subject: "alice@example.com", email: "alice@example.com", emailVerified: true, name: "Name of alice@example.com" }]);

    // The code and the attempt are spent: replaying the callback is refused.
    signIns.length = 0;
    await expectRefusal(await browser.get(back), 400, /expired or was not started here/);
    const code = back.searchParams.get("code") ?? "";
    expect(code.length).toBeGreaterThan(10);
    expect(warnings.join("\n")).not.toContain(code);
  });

  it("works as a public client (PKCE only) and marks cookies Secure when asked", async () => {
    mount({ clientId: "gw-public", clientSecret: undefined, allowedDomains: ["Example.COM"] }, true);
    const browser = new Browser();
    const startRes = await browser.get(`${gatewayUrl}/ui/auth/oidc/start`);
    expect(startRes.headers.getSetCookie()[0]).toMatch(/; Secure$/);
    const back = await throughIdp(browser, startRes.headers.get("location") ?? "", redirectUri, "Bob@Example.com");
    const res = await browser.get(back);
    expect(res.status, await res.clone().text()).toBe(303);
    expect(signIns.map((c) => c.email)).toEqual(["bob@example.com"]);
  });

  it("refuses a tampered sy_oidc cookie", async () => {
    mount();
    const browser = new Browser();
    const auth = await start(browser);
    const back = await throughIdp(browser, auth.href, redirectUri, "alice@example.com");
    const sealed = browser.jar.get("sy_oidc") ?? "";
    const i = Math.floor(sealed.length / 2);
    browser.jar.set("sy_oidc", sealed.slice(0, i) + (sealed[i] === "A" ? "B" : "A") + sealed.slice(i + 1));
    await expectRefusal(await browser.get(back), 400, /expired or was not started here/);
  });

  it("refuses a missing cookie", async () => {
    mount();
    const browser = new Browser();
    const auth = await start(browser);
    const back = await throughIdp(browser, auth.href, redirectUri, "alice@example.com");
    browser.jar.delete("sy_oidc");
    await expectRefusal(await browser.get(back), 400, /expired or was not started here/);
  });

  it("refuses a wrong state", async () => {
    mount();
    const browser = new Browser();
    const auth = await start(browser);
    const back = await throughIdp(browser, auth.href, redirectUri, "alice@example.com");
    back.searchParams.set("state", "someone-elses-state");
    await expectRefusal(await browser.get(back), 400, /does not match this attempt/);
    back.searchParams.delete("state");
    browser.jar.set("sy_oidc", "x");
    await expectRefusal(await browser.get(back), 400, /expired or was not started here/);
  });

  it("refuses an ID token whose nonce is not this attempt's (an injected code)", async () => {
    mount();
    await expectRefusal(await signInAs("alice@example.com", new Browser(), (a) => a.searchParams.set("nonce", "attackers-nonce")), 400, /could not be verified/);
    expect(warnings.at(-1)).toMatch(/unexpected ID Token \\"nonce\\" claim value/);
  });

  it("refuses a code issued for another PKCE challenge", async () => {
    mount();
    await expectRefusal(await signInAs("alice@example.com", new Browser(), (a) => a.searchParams.set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")), 400, /could not be verified/);
    expect(warnings.at(-1)).toMatch(/invalid_grant/);
  });

  it("refuses an unverified email", async () => {
    mount();
    await expectRefusal(await signInAs("unverified@example.com"), 403, /not verified/);
  });

  it("refuses an email outside allowedDomains", async () => {
    mount({ allowedDomains: ["example.com"] });
    await expectRefusal(await signInAs("mallory@example.org"), 403, /Accounts at example\.org may not sign in here/);
  });

  it("shows signIn's refusal, escaped", async () => {
    mount();
    await expectRefusal(await signInAs("nobody@example.com"), 403, /no account for &#60;this&#62; email/);
  });

  it("shows the provider's error code when the user cancels", async () => {
    mount();
    const browser = new Browser();
    const auth = await start(browser);
    const back = await throughIdp(browser, auth.href, redirectUri, "alice@example.com", true);
    expect(back.searchParams.get("error")).toBe("access_denied");
    await expectRefusal(await browser.get(back), 400, /refused the sign-in: access_denied/);
  });

  it("never reflects the error parameter unescaped", async () => {
    mount();
    const browser = new Browser();
    const auth = await start(browser);
    const back = new URL(redirectUri);
    back.searchParams.set("state", auth.searchParams.get("state") ?? "");
    back.searchParams.set("error", "<script>alert(1)</script>");
    const res = await browser.get(back);
    const body = await res.clone().text();
    expect(body).not.toContain("<script>");
    await expectRefusal(res, 400, /&#60;script&#62;/);
  });

  it("answers 502 while the provider is down, and works once it is up (claims from the ID token)", async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    mount({ issuer });
    const browser = new Browser();
    const down = await browser.get(`${gatewayUrl}/ui/auth/oidc/start`);
    expect(down.status).toBe(502);
    expect(warnings.at(-1)).toMatch(/discovery failed/);
    expect(down.headers.get("content-security-policy")).toBe("default-src 'none'");
    expect(await down.text()).toMatch(/cannot be reached/);
    expect(browser.jar.has("sy_oidc")).toBe(false);

    const late = await startIdp(redirectUri, { port, claimsInIdToken: true });
    try {
      expect(late.issuer).toBe(issuer);
      const res = await signInAs("carol@example.com", browser);
      expect(res.status, await res.clone().text()).toBe(303);
      expect(signIns).toEqual([{ subject: "carol@example.com", email: "carol@example.com", emailVerified: true, name: "Name of carol@example.com" }]);
    } finally {
      await late.close();
    }
  });

  it("checks its config at creation", () => {
    const deps = { signIn: async () => "/", secureCookies: () => true };
    expect(() => createOidc({ issuer: "http://idp.example.com", clientId: "c", redirectUri }, deps)).toThrow(/https/);
    expect(() => createOidc({ issuer: "https://idp.example.com", clientId: "c", redirectUri, scopes: "email" }, deps)).toThrow(/openid/);
    expect(createOidc({ issuer: "https://idp.example.com", clientId: "c", redirectUri }, deps).label).toBe("Sign in with SSO");
    expect(createOidc({ issuer: "https://idp.example.com", clientId: "c", redirectUri, label: "Okta" }, deps).label).toBe("Okta");
  });
});
