import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The README's Python migration snippet, run as written with the official
// `openai` package. The only change is the port: the snippet says 8080, the
// test gateway listens on a free port.

let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({ providers: [openaiProvider(standin.url)] });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

function readmePythonSnippet(): string {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const blocks = [...readme.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const snippet = blocks.find((b) => b.includes('base_url="http://localhost:8080/v1"'));
  if (!snippet) throw new Error("README has no Python snippet pointing at http://localhost:8080/v1");
  return snippet;
}

it("the README's Python snippet works against the gateway, streaming included", async () => {
  const code = readmePythonSnippet().replace("http://localhost:8080/v1", `${gw.url}/v1`);
  const { stdout } = await promisify(execFile)("python3", ["-c", code], {
    env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "" },
    timeout: 30_000,
  });
  expect(stdout).toBe("echo: Say hello\necho: Say hello again\n");
  const upstream = standin.requests.filter((r) => r.path === "/v1/chat/completions");
  expect(upstream).toHaveLength(2);
  expect(upstream[1]!.body).toMatchObject({ stream: true });
}, 60_000);
