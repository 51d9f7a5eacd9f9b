import { existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The admin web UI (ui/, served from ui/dist at /ui/) in real headless
// Chromium against a gateway started in process: the login page renders
// cleanly under the CSP, the script stays within its size budget, the login
// form works from the keyboard, and an operator's whole first session works
// through the UI alone.

const CHROMIUM = "/usr/bin/chromium";
const ADMIN = "sk-admin-ui-browser-test-0123456789";
/** Budget for all script the login page loads, gzipped. */
const SCRIPT_BUDGET_GZIP = 300 * 1024;

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`test/ui-browser.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

let standin: OpenAIStandin;
let gw: TestGateway;
let browser: Browser;

/** Console errors and CSP violations seen by one page. */
interface Watch {
  page: Page;
  /** From navigation to the first screen drawn with its data (auth config, who am I). */
  loadMs: number;
  context: BrowserContext;
  errors: string[];
  scripts: { url: string; gzip: number; raw: number }[];
  cspViolations(): Promise<string[]>;
}

async function open(path = "/ui/"): Promise<Watch> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  const scripts: Watch["scripts"] = [];
  // Reported by the page itself, in case a violation is not logged to the console.
  await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) => { (window.__csp ??= []).push(e.violatedDirective + " " + e.blockedURI); });`);
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() !== "error") return;
    // Not being signed in yet is how the page finds out it must show the login form.
    if (/status of 401/.test(m.text()) && m.location().url.endsWith("/switchyard.v1.AuthService/WhoAmI")) return;
    errors.push(`${m.text()} @ ${m.location().url}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("response", async (r) => {
    if (r.request().resourceType() !== "script") return;
    const body = await r.body();
    scripts.push({ url: r.url(), raw: body.length, gzip: gzipSync(body).length });
  });
  const started = performance.now();
  await page.goto(gw.url + path);
  await page.getByRole("button", { name: "Sign in" }).first().waitFor();
  const loadMs = performance.now() - started;
  return { page, context, loadMs, errors, scripts, cspViolations: async () => (await page.evaluate("window.__csp ?? []")) as string[] };
}

/** The focused element's name attribute, or its text (buttons, links). */
async function focused(page: Page): Promise<string> {
  return (await page.evaluate(`(() => { const e = document.activeElement; return e ? (e.getAttribute("name") || e.textContent || e.tagName) : ""; })()`)) as string;
}

describe.skipIf(!hasChromium)("the web UI in Chromium", () => {
  beforeAll(async () => {
    standin = await startOpenAIStandin();
    gw = await startTestGateway({ admin: { key: ADMIN }, providers: [openaiProvider(standin.url)], requestLog: { bodies: true } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await standin?.close();
  });

  it("renders the login page with no console errors or CSP violations, and its script within budget", async () => {
    const w = await open();
    await w.page.getByRole("button", { name: "Sign in with admin key" }).waitFor();
    console.log(`first load (HTML, script, styles, WhoAmI, GetAuthConfig, drawn), loopback, cold browser context: ${w.loadMs.toFixed(0)} ms`);

    await w.page.waitForLoadState("networkidle");
    expect(await w.page.title()).toBe("Switchyard");
    expect(w.errors).toEqual([]);
    expect(await w.cspViolations()).toEqual([]);

    expect(w.scripts.length).toBeGreaterThan(0);
    const gzip = w.scripts.reduce((n, s) => n + s.gzip, 0);
    const raw = w.scripts.reduce((n, s) => n + s.raw, 0);
    console.log(`script: ${(raw / 1024).toFixed(1)} KB raw, ${(gzip / 1024).toFixed(1)} KB gzipped in ${w.scripts.length} file(s)`);
    expect(gzip).toBeLessThanOrEqual(SCRIPT_BUDGET_GZIP);
    await w.context.close();
  });

  it("reaches every login input with Tab, each with an accessible name", async () => {
    const w = await open();
    const { page } = w;
    await page.getByRole("button", { name: "Sign in with admin key" }).waitFor();
    await expect(page.getByRole("textbox", { name: "Email" }).getAttribute("name")).resolves.toBe("email");
    await expect(page.getByLabel("Password", { exact: true }).getAttribute("name")).resolves.toBe("password");
    await expect(page.getByLabel("Admin key", { exact: true }).getAttribute("name")).resolves.toBe("admin-key");

    const reached: string[] = [];
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press("Tab");
      reached.push(await focused(page));
    }
    expect(reached).toEqual(["email", "password", "Sign in", "admin-key", "Sign in with admin key"]);

    // Signing in from the keyboard alone: type the key, press Enter.
    await page.getByLabel("Admin key", { exact: true }).focus();
    await page.keyboard.type(ADMIN);
    await page.keyboard.press("Enter");
    await expect(page.getByTestId("who").textContent()).resolves.toContain("admin key");
    expect(w.errors).toEqual([]);
    await w.context.close();
  });

  it("runs an operator's first session: sign in, team, key, traffic, requests, spend, audit, a viewer's limits", async () => {
    const w = await open();
    const { page } = w;
    const nav = (name: string) => page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name });

    await page.getByLabel("Admin key", { exact: true }).fill(ADMIN);
    await page.getByRole("button", { name: "Sign in with admin key" }).click();
    await expect(page.getByTestId("who").textContent()).resolves.toContain("admin key");

    // A team, after the server refused a bad id (its message is shown, not swallowed).
    await nav("Customers & Teams").click();
    const teamForm = page.getByTestId("create-team");
    await teamForm.getByLabel("Team id").fill("Bad Id!");
    await teamForm.getByLabel("Name").fill("UI Team");
    await teamForm.getByRole("button", { name: "Create team" }).click();
    await expect(teamForm.getByRole("alert").textContent()).resolves.toMatch(/invalid argument/);
    await teamForm.getByLabel("Team id").fill("ui-team");
    await teamForm.getByLabel("Budget (USD)").fill("10");
    await teamForm.getByRole("button", { name: "Create team" }).click();
    await page.getByTestId("team-ui-team").waitFor();
    await expect(page.getByTestId("budget-ui-team").textContent()).resolves.toContain("of $10.00 per month");

    // A key in that team: its secret is shown once.
    await nav("Keys").click();
    const keyForm = page.getByTestId("create-key");
    await keyForm.getByLabel("Key name").fill("ui-key");
    await keyForm.getByLabel("Team").selectOption("ui-team");
    await keyForm.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.getByTestId("secret-value").textContent()) ?? "";
    expect(secret).toMatch(/^sk-sy-[A-Za-z0-9_-]{43}$/);
    await page.getByRole("button", { name: "Done" }).click();
    await page.getByTestId("secret-once").waitFor({ state: "detached" });
    await page.reload();
    await page.getByRole("cell", { name: "ui-key", exact: true }).waitFor();
    expect(await page.content()).not.toContain(secret);

    // Traffic with that key, through the REST bridge with the official SDK.
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
    const reply = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello from the UI test" }] });
    expect(reply.choices[0]?.message.content).toBeTruthy();

    // It shows on the Requests page (the log is written behind the response), with a detail view.
    await nav("Requests").click();
    const table = page.getByTestId("requests-table");
    await eventually(async () => {
      await page.getByRole("button", { name: "Refresh" }).click();
      return (await table.textContent())?.includes("ui-team") ?? false;
    });
    await table.getByRole("button", { name: /^Details of request/ }).first().click();
    const detail = page.getByTestId("request-detail");
    await expect(detail.textContent()).resolves.toMatch(/Teamui-team/);
    await expect(detail.textContent()).resolves.toMatch(/Statusok/);
    // The detail view fetches the stored bodies and the targets tried.
    await expect(detail.getByTestId("request-targets").textContent()).resolves.toMatch(/^openai\//);
    await expect(detail.getByTestId("request-body").textContent()).resolves.toMatch(/"messages"/);

    // And in the team's spend.
    await nav("Customers & Teams").click();
    await eventually(async () => {
      await page.reload();
      const text = (await page.getByTestId("budget-ui-team").textContent()) ?? "";
      return text.includes("of $10.00") && Number(/^\$([\d.e-]+)/.exec(text)?.[1]) > 0;
    });

    // The audit page verifies the chain and lists the changes.
    await nav("Audit").click();
    await page.getByTestId("audit-verify").getByText("Audit chain verified.").waitFor();
    const audit = page.getByTestId("audit-table");
    const row = (...texts: string[]) => texts.reduce((l, t) => l.filter({ hasText: t }), audit.getByRole("row"));
    await row("team.create", "team:ui-team", "ok").waitFor();
    await row("key.create", "ui-key").or(row("key.create", "key:")).first().waitFor();
    // The refused attempt is on the record too.
    expect(await row("team.create").count()).toBe(2);

    // A viewer made on the Users page sees the pages but no edit controls.
    await nav("Users").click();
    const userForm = page.getByTestId("create-user");
    await userForm.getByLabel("Email").fill("viewer@example.com");
    await userForm.getByLabel("Password").fill("correct horse battery staple");
    await userForm.getByLabel("Role").selectOption({ label: "viewer" });
    await userForm.getByRole("button", { name: "Create user" }).click();
    await page.getByRole("cell", { name: "viewer@example.com", exact: true }).waitFor();
    await page.getByRole("button", { name: "Sign out" }).click();
    // Wait for the sign-in screen: until logout answers, the Users page's own Email field is still there.
    await page.getByRole("status").getByText("Signed out.").waitFor();
    await page.getByRole("textbox", { name: "Email" }).fill("viewer@example.com");
    await page.getByLabel("Password", { exact: true }).fill("correct horse battery staple");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(page.getByTestId("who").textContent()).resolves.toBe("viewer@example.com");
    await nav("Keys").click();
    await page.getByRole("cell", { name: "ui-key", exact: true }).waitFor();
    expect(await page.getByTestId("create-key").count()).toBe(0);
    expect(await page.getByRole("button", { name: /^(Edit|Rotate|Revoke)/ }).count()).toBe(0);
    await nav("Customers & Teams").click();
    await page.getByTestId("team-ui-team").waitFor();
    expect(await page.getByTestId("create-team").count()).toBe(0);
    expect(await page.getByRole("button", { name: /Delete|Budget/ }).count()).toBe(0);
    expect(await nav("Users").count()).toBe(0);
    expect(await nav("Audit").count()).toBe(0);

    expect(await w.cspViolations()).toEqual([]);
    expect(w.errors.filter((e) => !/status of 40[03]/.test(e))).toEqual([]);
    await w.context.close();
  });

  it("edits, rotates and revokes a key, purges the cache after confirming, and exports the audit log", async () => {
    const w = await open();
    const { page } = w;
    const nav = (name: string) => page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name });
    await page.getByLabel("Admin key", { exact: true }).fill(ADMIN);
    await page.getByRole("button", { name: "Sign in with admin key" }).click();
    await nav("Keys").click();

    const keyForm = page.getByTestId("create-key");
    await keyForm.getByLabel("Key name").fill("life-key");
    await keyForm.getByRole("button", { name: "Create key" }).click();
    const first = (await page.getByTestId("secret-value").textContent()) ?? "";
    await page.getByRole("button", { name: "Done" }).click();
    const row = page.getByRole("row").filter({ hasText: "life-key" });

    // Edit: allowed models and disabled.
    await row.getByRole("button", { name: "Edit key life-key" }).click();
    const edit = page.getByTestId("edit-key");
    await edit.getByLabel("Allowed models").fill("gpt-4o-mini");
    await edit.getByLabel("Enabled").uncheck();
    await edit.getByRole("button", { name: "Save key" }).click();
    await row.getByRole("cell", { name: "disabled", exact: true }).waitFor();
    await row.getByRole("cell", { name: "gpt-4o-mini", exact: true }).waitFor();

    // Budget through BudgetService.
    await row.getByRole("button", { name: "Edit budget of key life-key" }).click();
    await row.getByLabel("Budget (USD)").fill("2.5");
    await row.getByLabel("Budget period").selectOption({ label: "per day" });
    await row.getByRole("button", { name: "Save budget" }).click();
    await row.getByText("of $2.50 per day").waitFor();

    // Rotate: asks first, then shows the new secret once.
    await row.getByRole("button", { name: "Rotate" }).click();
    await row.getByRole("button", { name: "Yes, rotate" }).click();
    const second = (await page.getByTestId("secret-value").textContent()) ?? "";
    expect(second).toMatch(/^sk-sy-/);
    expect(second).not.toBe(first);
    await page.getByRole("button", { name: "Done" }).click();

    // Revoke: Cancel keeps it; Yes revokes it.
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.getByRole("button", { name: "Cancel" }).click();
    await row.getByRole("button", { name: "Revoke" }).click();
    await row.getByRole("button", { name: "Yes, revoke" }).click();
    await row.waitFor({ state: "detached" });
    await page.getByLabel("Include revoked").check();
    await row.getByRole("cell", { name: "revoked", exact: true }).waitFor();

    // Cache purge, confirmed.
    await nav("Cache").click();
    await page.getByTestId("cache-stats").waitFor();
    await page.getByRole("button", { name: "Purge" }).click();
    await page.getByRole("button", { name: "Yes, purge" }).click();
    await page.getByText(/^Purged \d+ entries\.$/).waitFor();

    // Audit export: a JSONL download of the chain.
    await nav("Audit").click();
    await page.getByTestId("audit-verify").getByText("Audit chain verified.").waitFor();
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export JSONL" }).click()]);
    expect(download.suggestedFilename()).toMatch(/^switchyard-audit-.*\.jsonl$/);
    const stream = await download.createReadStream();
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    const lines = Buffer.concat(chunks).toString("utf8").trim().split("\n").map((l) => JSON.parse(l) as { action?: string });
    expect(lines.map((l) => l.action)).toEqual(expect.arrayContaining(["key.create", "key.update", "key.rotate", "key.revoke", "cache.purge"]));

    expect(await w.cspViolations()).toEqual([]);
    expect(w.errors).toEqual([]);
    await w.context.close();
  });
});

/** Retries a check until it holds (the request log and spend are written after the response). */
async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 200));
  }
}
