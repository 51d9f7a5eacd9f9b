import { existsSync } from "node:fs";
import OpenAI from "openai";
import { chromium, type Browser, type BrowserContext, type ConsoleMessage, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin } from "./support/admin.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The Providers page on first run, in headless Chromium: a gateway that
// starts with no providers at all gets one through the UI alone (its API key
// typed once, shown only as a hint afterwards), serves traffic through it
// with a virtual key made on the Keys page, then through an alias and a
// route made on the same page; edits replace the key; refusals are shown; a
// viewer sees it all and can change nothing; what the configuration file
// defines is marked and read-only. No console errors, no CSP violations.

const CHROMIUM = "/usr/bin/chromium";
const ADMIN = "sk-admin-ui-providers-test-0123456789";
const PROVIDER_KEY = "sk-upstream-typed-in-the-ui-4f7a9c2e1b";
const PROVIDER_KEY_2 = "sk-upstream-replaced-in-the-ui-8d3b6a0f5c";
const VIEWER = { email: "viewer@example.com", password: "correct horse battery staple" };

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`test/ui-providers.test.ts skipped: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

let standin: OpenAIStandin;
let gw: TestGateway;
let browser: Browser;

interface Watch {
  page: Page;
  context: BrowserContext;
  /** Console errors and uncaught exceptions, as "text @ url". */
  errors: string[];
  cspViolations(): Promise<string[]>;
}

async function open(base = gw.url): Promise<Watch> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  await page.addInitScript(`document.addEventListener("securitypolicyviolation", (e) => { (window.__csp ??= []).push(e.violatedDirective + " " + e.blockedURI); });`);
  page.on("console", (m: ConsoleMessage) => {
    if (m.type() !== "error") return;
    // Not being signed in yet is how the page finds out it must show the login form.
    if (/status of 401/.test(m.text()) && m.location().url.endsWith("/switchyard.v1.AuthService/WhoAmI")) return;
    errors.push(`${m.text()} @ ${m.location().url}`);
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  await page.goto(base + "/ui/");
  await page.getByRole("button", { name: "Sign in" }).first().waitFor();
  return { page, context, errors, cspViolations: async () => (await page.evaluate("window.__csp ?? []")) as string[] };
}

const nav = (page: Page, name: string) => page.getByRole("navigation", { name: "Sections" }).getByRole("link", { name });

describe.skipIf(!hasChromium)("the Providers page", () => {
  beforeAll(async () => {
    // The generated master.key in the data folder seals provider keys, whatever the environment says.
    vi.stubEnv("SWITCHYARD_MASTER_KEY", "");
    standin = await startOpenAIStandin({ apiKeys: [PROVIDER_KEY, PROVIDER_KEY_2] });
    gw = await startTestGateway({ admin: { key: ADMIN }, providers: [] });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await standin?.close();
    vi.unstubAllEnvs();
  });

  it("adds a provider, an alias and a route in the UI, and traffic flows through them with a key made in the UI", async () => {
    const w = await open();
    const { page } = w;
    await page.getByLabel("Admin key", { exact: true }).fill(ADMIN);
    await page.getByRole("button", { name: "Sign in with admin key" }).click();
    await expect(page.getByTestId("who").textContent()).resolves.toContain("admin key");

    await nav(page, "Providers").click();
    await page.getByTestId("no-providers").waitFor();
    const form = page.getByTestId("create-provider");
    // The type's default base URL is the placeholder.
    await form.getByLabel("Type").selectOption("openai");
    await expect(form.getByLabel("Base URL").getAttribute("placeholder")).resolves.toBe("https://api.openai.com/v1");
    await expect(form.getByLabel("API key", { exact: true }).getAttribute("type")).resolves.toBe("password");

    // The server's refusal is shown, not swallowed.
    await form.getByLabel("Provider id").fill("Bad Id!");
    await form.getByLabel("Base URL").fill(standin.url);
    await form.getByLabel("API key", { exact: true }).fill(PROVIDER_KEY);
    await form.getByRole("button", { name: "Add provider" }).click();
    await expect(form.getByRole("alert").textContent()).resolves.toMatch(/^id: .*\(invalid argument\)$/);

    await form.getByLabel("Provider id").fill("standin");
    await form.getByLabel("Models").fill("gpt-4o-mini, gpt-4o");
    await form.getByRole("button", { name: "Add provider" }).click();
    const card = page.getByTestId("provider-standin");
    await card.waitFor();
    await expect(card.getByTestId("key-hint").textContent()).resolves.toBe(`sk-…${PROVIDER_KEY.slice(-4)}`);
    await card.getByText("gpt-4o-mini, gpt-4o").waitFor();
    // No traffic yet, so no circuit state either.
    await card.getByRole("cell", { name: "no traffic yet" }).waitFor();
    expect(await card.getByTestId("from-config").count()).toBe(0);
    expect(await form.getByLabel("API key", { exact: true }).inputValue()).toBe("");
    expect(await page.content()).not.toContain(PROVIDER_KEY);
    await page.getByTestId("models-table").getByRole("cell", { name: "standin/gpt-4o-mini", exact: true }).waitFor();

    // A virtual key from the Keys page.
    await nav(page, "Keys").click();
    const keyForm = page.getByTestId("create-key");
    await keyForm.getByLabel("Key name").fill("first-run-key");
    await keyForm.getByRole("button", { name: "Create key" }).click();
    const secret = (await page.getByTestId("secret-value").textContent()) ?? "";
    expect(secret).toMatch(/^sk-sy-/);
    await page.getByRole("button", { name: "Done" }).click();

    // Traffic with the official SDK: the provider key typed in the UI reaches the upstream.
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0 });
    const hello = async (model: string): Promise<string | null | undefined> =>
      (await client.chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] })).choices[0]?.message.content;
    standin.requests.length = 0;
    expect(await hello("gpt-4o-mini")).toBe("echo: hi");
    expect(standin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY}`);

    // Back on the Providers page, the key's live circuit state is merged in.
    await nav(page, "Providers").click();
    await card.getByRole("row").filter({ hasText: `sk-…${PROVIDER_KEY.slice(-4)}` }).getByRole("cell", { name: "closed" }).waitFor();

    // An alias made in the UI serves at once.
    const aliasForm = page.getByTestId("alias-editor");
    await aliasForm.getByLabel("Alias name").fill("fast");
    await aliasForm.getByLabel("Target model").fill("standin/gpt-4o-mini");
    await aliasForm.getByLabel("Target model").press("Enter"); // forms submit from the keyboard
    await page.getByTestId("alias-fast").getByRole("cell", { name: "standin/gpt-4o-mini" }).waitFor();
    standin.requests.length = 0;
    expect(await hello("fast")).toBe("echo: hi");
    expect((standin.requests.at(-1)?.body as { model?: string } | undefined)?.model).toBe("gpt-4o-mini");

    // A route with two weighted targets and a fallback, then edited down to one target.
    const routeForm = page.getByTestId("route-editor");
    await routeForm.getByLabel("Route name").fill("balanced");
    await routeForm.getByLabel("Target 1 model").fill("standin/gpt-4o");
    await routeForm.getByLabel("Target 1 weight").fill("3");
    await routeForm.getByRole("button", { name: "Add target" }).click();
    await routeForm.getByLabel("Target 2 model").fill("fast");
    await routeForm.getByLabel("Fallbacks, in order").fill("standin/gpt-4o-mini");
    await routeForm.getByRole("button", { name: "Save route" }).click();
    const routeRow = page.getByTestId("route-balanced");
    await routeRow.getByRole("cell", { name: "standin/gpt-4o (3), fast (1)" }).waitFor();
    await routeRow.getByRole("button", { name: "Edit route balanced" }).click();
    const editRoute = page.getByRole("form", { name: "Edit route balanced" });
    await expect(editRoute.getByLabel("Route name").inputValue()).resolves.toBe("balanced");
    await editRoute.getByRole("button", { name: "Remove target 2" }).click();
    await editRoute.getByRole("button", { name: "Save route" }).click();
    await routeRow.getByRole("cell", { name: "standin/gpt-4o (3)", exact: true }).waitFor();
    standin.requests.length = 0;
    expect(await hello("balanced")).toBe("echo: hi");
    expect((standin.requests.at(-1)?.body as { model?: string } | undefined)?.model).toBe("gpt-4o");

    // Editing replaces the key: the new one is used, neither is shown.
    await card.getByRole("button", { name: "Edit provider standin" }).click();
    const edit = card.getByTestId("edit-provider");
    await edit.getByLabel("API key", { exact: true }).fill(PROVIDER_KEY_2);
    await edit.getByRole("button", { name: "Save provider" }).click();
    await edit.waitFor({ state: "detached" });
    await card.getByTestId("key-hint").filter({ hasText: `sk-…${PROVIDER_KEY_2.slice(-4)}` }).waitFor();
    expect(await card.getByTestId("key-hint").count()).toBe(1);
    standin.requests.length = 0;
    expect(await hello("gpt-4o-mini")).toBe("echo: hi");
    expect(standin.requests.at(-1)?.headers.authorization).toBe(`Bearer ${PROVIDER_KEY_2}`);
    const html = await page.content();
    expect(html).not.toContain(PROVIDER_KEY);
    expect(html).not.toContain(PROVIDER_KEY_2);

    // Deleting a provider that an alias still names is refused, and the refusal is shown in its card.
    await card.getByRole("button", { name: "Delete" }).click();
    await card.getByRole("button", { name: "Yes, delete" }).click();
    await expect(card.getByRole("alert").textContent()).resolves.toMatch(/\(invalid argument\)$/);

    // Deleting the route, after confirming.
    await routeRow.getByRole("button", { name: "Delete" }).click();
    await routeRow.getByRole("button", { name: "Yes, delete" }).click();
    await routeRow.waitFor({ state: "detached" });

    expect(await w.cspViolations()).toEqual([]);
    // The two refusals above answer 400; nothing else may fail.
    const refused = /status of 400 .*@ .*\/switchyard\.v1\.ProviderService\/(CreateProvider|DeleteProvider)$/;
    expect(w.errors.filter((e) => !refused.test(e))).toEqual([]);
    expect(w.errors.length).toBe(2);
    await w.context.close();
  });

  it("shows a viewer the providers, aliases and models, with no controls to change them", async () => {
    await admin(gw.url, ADMIN, "UserService/CreateUser", { email: VIEWER.email, password: VIEWER.password, grants: [{ role: "ADMIN_ROLE_VIEWER" }] });
    const w = await open();
    const { page } = w;
    await page.getByRole("textbox", { name: "Email" }).fill(VIEWER.email);
    await page.getByLabel("Password", { exact: true }).fill(VIEWER.password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await expect(page.getByTestId("who").textContent()).resolves.toBe(VIEWER.email);

    await nav(page, "Providers").click();
    const card = page.getByTestId("provider-standin");
    await card.getByTestId("key-hint").waitFor();
    await page.getByTestId("alias-fast").waitFor();
    await page.getByTestId("models-table").getByRole("cell", { name: "fast", exact: true }).waitFor();
    expect(await page.getByTestId("create-provider").count()).toBe(0);
    expect(await page.getByTestId("alias-editor").count()).toBe(0);
    expect(await page.getByTestId("route-editor").count()).toBe(0);
    expect(await page.getByRole("main").getByRole("button").count()).toBe(0);
    expect(await page.getByRole("main").getByRole("textbox").count()).toBe(0);

    expect(await w.cspViolations()).toEqual([]);
    expect(w.errors).toEqual([]);
    await w.context.close();
  });

  it("marks what the configuration file defines and offers no controls to change it, even to an admin", async () => {
    const configured = await startTestGateway({
      admin: { key: ADMIN },
      providers: [openaiProvider(standin.url, { keys: [PROVIDER_KEY], models: ["gpt-4o-mini"] })],
      aliases: { quick: "openai/gpt-4o-mini" },
      routes: { steady: { targets: [{ model: "openai/gpt-4o-mini" }] } },
    });
    try {
      const w = await open(configured.url);
      const { page } = w;
      await page.getByLabel("Admin key", { exact: true }).fill(ADMIN);
      await page.getByRole("button", { name: "Sign in with admin key" }).click();
      await nav(page, "Providers").click();
      const card = page.getByTestId("provider-openai");
      await card.getByTestId("from-config").waitFor();
      await expect(card.getByTestId("key-hint").textContent()).resolves.toBe(`sk-…${PROVIDER_KEY.slice(-4)}`);
      expect(await card.getByRole("button").count()).toBe(0);
      for (const row of [page.getByTestId("alias-quick"), page.getByTestId("route-steady")]) {
        await row.getByTestId("from-config").waitFor();
        expect(await row.getByRole("button").count()).toBe(0);
      }
      // The admin may still add their own.
      await page.getByTestId("create-provider").waitFor();
      expect(await page.content()).not.toContain(PROVIDER_KEY);
      expect(await w.cspViolations()).toEqual([]);
      expect(w.errors).toEqual([]);
      await w.context.close();
    } finally {
      await configured.close();
    }
  });
});
