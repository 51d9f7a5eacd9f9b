import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, adminCall } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";
import { Browser, freePort, startIdp, throughIdp, type TestIdp } from "./support/oidc-idp.ts";

/**
 * Single sign-on through the gateway itself: oidc-provider as the identity
 * provider, the gateway's /ui/auth/oidc routes, and the session that results
 * (the OIDC module's own checks are in oidc.test.ts).
 */
const ADMIN = "sy-admin-sso-test-key-0123456789";
let standin: OpenAIStandin;
let idp: TestIdp;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin({ models: ["gpt-4o-mini"] });
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/ui/auth/oidc/callback`;
  idp = await startIdp(redirectUri);
  gw = await startTestGateway({
    dataDir: mkdtempSync(join(tmpdir(), "sy-sso-")),
    server: { port },
    admin: { key: ADMIN, oidc: { issuer: idp.issuer, clientId: "gw", clientSecret: "gw-secret", redirectUri, label: "Sign in with Test IdP" } },
    providers: [openaiProvider(standin.url)],
  });
  await admin(gw.url, ADMIN, "UserService/CreateUser", { email: "alice@example.com", name: "Alice", grants: [{ role: "ADMIN_ROLE_VIEWER" }] });
});

afterAll(async () => {
  await gw?.close();
  await idp?.close();
  await standin?.close();
});

async function signIn(login: string): Promise<{ res: Response; browser: Browser }> {
  const browser = new Browser();
  const start = await browser.get(`${gw.url}/ui/auth/oidc/start`);
  expect(start.status).toBe(303);
  const back = await throughIdp(browser, start.headers.get("location")!, `${gw.url}/ui/auth/oidc/callback`, login);
  return { res: await browser.get(back), browser };
}

describe("single sign-on through the gateway", () => {
  it("advertises the sign-on button", async () => {
    const cfg = await adminCall(gw.url, undefined, "AuthService/GetAuthConfig");
    expect(cfg.body).toMatchObject({ oidc: true, oidcStartUrl: "/ui/auth/oidc/start", oidcLabel: "Sign in with Test IdP", adminKeyLogin: true });
  });

  it("signs a known person in, links their subject and starts a session", async () => {
    const { res, browser } = await signIn("alice@example.com");
    expect(res.status, await res.clone().text()).toBe(303);
    expect(res.headers.get("location")).toBe("/ui/");
    expect(res.headers.getSetCookie().find((c) => c.startsWith("sy_session="))).toMatch(/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
    const me = await fetch(`${gw.url}/switchyard.v1.AuthService/WhoAmI`, {
      method: "POST",
      headers: { "content-type": "application/json", cookie: `sy_session=${browser.jar.get("sy_session")}` },
      body: "{}",
    });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ identity: { kind: "KIND_USER", email: "alice@example.com" }, permissions: expect.arrayContaining(["logs.read"]) });
    const users = await admin<{ users: { email: string; ssoSubject?: string }[] }>(gw.url, ADMIN, "UserService/ListUsers");
    expect(users.users.find((u) => u.email === "alice@example.com")?.ssoSubject).toBe("alice@example.com");
    const events = await admin<{ events: any[] }>(gw.url, ADMIN, "AuditService/ListAuditEvents", { action: "auth.login" });
    expect(JSON.parse(events.events[0].afterJson)).toEqual({ method: "sso" });
  });

  it("refuses a verified email with no account, and audits it", async () => {
    const { res } = await signIn("mallory@example.com");
    expect(res.status).toBe(403);
    expect(await res.text()).toMatch(/no active account for this email/);
    expect(res.headers.getSetCookie().some((c) => c.startsWith("sy_session="))).toBe(false);
    const events = await admin<{ events: any[] }>(gw.url, ADMIN, "AuditService/ListAuditEvents", { action: "auth.login_failed" });
    expect(events.events[0]).toMatchObject({ actorLabel: "mallory@example.com", outcome: "unauthenticated" });
  });

  it("ends SSO sessions of a disabled person", async () => {
    const { browser } = await signIn("alice@example.com");
    const users = await admin<{ users: { id: string; email: string }[] }>(gw.url, ADMIN, "UserService/ListUsers");
    const alice = users.users.find((u) => u.email === "alice@example.com")!;
    await admin(gw.url, ADMIN, "UserService/UpdateUser", { id: alice.id, disabled: true });
    const me = await fetch(`${gw.url}/switchyard.v1.AuthService/WhoAmI`, { method: "POST", headers: { "content-type": "application/json", cookie: `sy_session=${browser.jar.get("sy_session")}` }, body: "{}" });
    expect(me.status).toBe(401);
    const { res } = await signIn("alice@example.com");
    expect(res.status).toBe(403);
    await admin(gw.url, ADMIN, "UserService/UpdateUser", { id: alice.id, disabled: false });
  });
});
