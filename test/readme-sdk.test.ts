import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The README's TypeScript SDK example, run as written (gRPC protocol) by Node.
// Only the gateway address and the import path are adjusted to the test setup.

const KEY = "sk-gateway-readme-sdk-0123456789";
let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ auth: { keys: [KEY] }, providers: [openaiProvider(standin.url)] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

it("the README's SDK example completes and streams", async () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("createClient("));
  if (!snippet) throw new Error("README has no TypeScript SDK example");
  const sdk = fileURLToPath(new URL("../sdk-ts/src/index.ts", import.meta.url));
  const code = snippet.replace('"./sdk-ts/src/index.ts"', JSON.stringify(sdk)).replace("http://localhost:8080", gw.url);
  const file = join(mkdtempSync(join(tmpdir(), "sy-readme-")), "example.mts");
  writeFileSync(file, code);
  const { stdout } = await promisify(execFile)(process.execPath, [file], {
    env: { PATH: process.env["PATH"] ?? "", SWITCHYARD_API_KEY: KEY },
    timeout: 30_000,
  });
  expect(stdout).toBe("echo: Say hello\necho: Count to five");
}, 60_000);
