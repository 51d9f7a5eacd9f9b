import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError, createClient, FinishReason, userText, type Protocol } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The typed SDK over Connect, gRPC and gRPC-Web against the real gateway
// (one port, HTTP/1.1 and h2c), and grpcurl through server reflection.

const KEY = "sk-gateway-rpc-test-0123456789";
let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    auth: { keys: [KEY] },
    server: { maxBodyBytes: 64 * 1024 },
    providers: [openaiProvider(standin.url, { timeouts: { firstByteMs: 300 } })],
  });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

beforeEach(() => standin.setBehavior(null));

const variants: { protocol: Protocol; httpVersion?: "1.1" | "2" }[] = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
];

for (const v of variants) {
  describe(`${v.protocol} over HTTP/${v.protocol === "grpc" ? "2" : v.httpVersion}`, () => {
    const sy = () => createClient({ baseUrl: gw.url, apiKey: KEY, ...v });

    it("Complete", async () => {
      const { completion } = await sy().chat.complete({ request: { model: "gpt-4o-mini", messages: [userText("Say hello")] } });
      const part = completion?.choices[0]?.message?.content[0]?.part;
      expect(part).toEqual({ case: "text", value: "echo: Say hello" });
      expect(completion?.choices[0]?.finishReason).toBe(FinishReason.STOP);
      expect(completion?.usage?.totalTokens).toBeGreaterThan(0);
      expect(completion?.gateway).toMatchObject({ provider: "openai", model: "gpt-4o-mini", attempts: 1 });
    });

    it("Stream, with usage", async () => {
      let text = "";
      let usageChunks = 0;
      let first = true;
      for await (const chunk of sy().streamChat({ model: "openai/gpt-4o-mini", messages: [userText("Stream this")] }, { includeUsage: true })) {
        if (first) expect(chunk.gateway?.provider).toBe("openai");
        first = false;
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.usage) usageChunks++;
      }
      expect(text).toBe("echo: Stream this");
      expect(usageChunks).toBe(1);
    });
  });
}

describe("RPC services and errors", () => {
  const sy = (apiKey = KEY, protocol: Protocol = "connect") => createClient({ baseUrl: gw.url, apiKey, protocol });

  it("streamText yields only text", async () => {
    const parts: string[] = [];
    for await (const t of sy().streamText({ model: "gpt-4o-mini", messages: [userText("abc def")] })) parts.push(t);
    expect(parts.join("")).toBe("echo: abc def");
    expect(parts.length).toBeGreaterThan(1);
  });

  it("Embed and ListModels", async () => {
    const res = await sy().embeddings.embed({ model: "text-embedding-3-small", input: ["a", "b"], dimensions: 4 });
    expect(res.data.map((d) => d.vector.length)).toEqual([4, 4]);
    expect(res.gateway?.provider).toBe("openai");
    const { models } = await sy(KEY, "grpc").models.listModels({});
    expect(models.map((m) => m.id)).toContain("openai/gpt-4o-mini");
  });

  async function codeOf(p: Promise<unknown>): Promise<Code | undefined> {
    try {
      await p;
      return undefined;
    } catch (err) {
      return ConnectError.from(err).code;
    }
  }

  it("maps errors to Connect codes on every protocol", async () => {
    for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
      const c = sy(KEY, protocol);
      expect(await codeOf(sy("sk-wrong-key", protocol).chat.complete({ request: { model: "gpt-4o-mini", messages: [userText("x")] } }))).toBe(Code.Unauthenticated);
      expect(await codeOf(c.chat.complete({}))).toBe(Code.InvalidArgument);
      expect(await codeOf(c.chat.complete({ request: { model: "gpt-4o-mini", messages: [{ content: [{ part: { case: "text", value: "no role" } }] }] } }))).toBe(Code.InvalidArgument);
      expect(await codeOf(c.chat.complete({ request: { model: "nope", messages: [userText("x")] } }))).toBe(Code.NotFound);
      expect(await codeOf(c.chat.complete({ request: { model: "gpt-4o-mini", messages: [userText("x".repeat(100 * 1024))] } }))).toBe(Code.ResourceExhausted);
    }
  });

  it("maps upstream failures to Connect codes", async () => {
    const c = sy(KEY, "grpc");
    const req = { request: { model: "gpt-4o-mini", messages: [userText("x")] } };
    standin.setBehavior({ kind: "status", status: 500 });
    expect(await codeOf(c.chat.complete(req))).toBe(Code.Unavailable);
    standin.setBehavior({ kind: "status", status: 429 });
    expect(await codeOf(c.chat.complete(req))).toBe(Code.ResourceExhausted);
    standin.setBehavior({ kind: "hang" });
    expect(await codeOf(c.chat.complete(req))).toBe(Code.DeadlineExceeded);
    standin.setBehavior({ kind: "stream-cut", afterChunks: 2 });
    const stream = async () => {
      for await (const _ of c.streamChat(req.request)) { /* drain */ }
    };
    expect(await codeOf(stream())).toBe(Code.Unavailable);
  });

  it("a canceled gRPC stream aborts the upstream request", async () => {
    standin.setBehavior({ kind: "slow-stream", gapMs: 100 });
    const before = standin.aborted;
    const ac = new AbortController();
    const iter = sy(KEY, "grpc").streamChat({ model: "gpt-4o-mini", messages: [userText("slowly")] }, { signal: ac.signal });
    const it = iter[Symbol.asyncIterator]();
    await it.next();
    ac.abort();
    await expect(it.next()).rejects.toThrow();
    await standin.waitForAborted(before + 1, 3000);
  });
});

describe("grpcurl through reflection against the gateway", () => {
  // `go install` puts grpcurl in ~/go/bin, which is not always on PATH.
  const installed = join(homedir(), "go/bin/grpcurl");
  const grpcurl = existsSync(installed) ? installed : "grpcurl";
  const run = promisify(execFile);
  const target = () => `127.0.0.1:${gw.port}`;

  it("lists services and calls Complete", async () => {
    const list = await run(grpcurl, ["-plaintext", target(), "list"]);
    expect(list.stdout.split("\n")).toEqual(expect.arrayContaining(["switchyard.v1.ChatService", "grpc.health.v1.Health"]));
    const body = JSON.stringify({ request: { model: "gpt-4o-mini", messages: [{ role: "ROLE_USER", content: [{ text: "from grpcurl" }] }] } });
    const out = await run(grpcurl, ["-plaintext", "-H", `authorization: Bearer ${KEY}`, "-d", body, target(), "switchyard.v1.ChatService/Complete"]);
    const res = JSON.parse(out.stdout) as { completion: { choices: { message: { content: { text: string }[] } }[] } };
    expect(res.completion.choices[0]!.message.content[0]!.text).toBe("echo: from grpcurl");
  });

  it("reports UNIMPLEMENTED for an unknown method and UNAUTHENTICATED without a key", async () => {
    const unknown = await run(grpcurl, ["-plaintext", "-d", "{}", target(), "switchyard.v1.ChatService/Nope"]).catch((e: { stderr: string }) => e);
    expect((unknown as { stderr: string }).stderr).toMatch(/Nope|not find|Unimplemented/i);
    const body = JSON.stringify({ request: { model: "gpt-4o-mini", messages: [{ role: "ROLE_USER", content: [{ text: "x" }] }] } });
    const denied = await run(grpcurl, ["-plaintext", "-d", body, target(), "switchyard.v1.ChatService/Complete"]).catch((e: { stdout: string; stderr: string }) => e);
    expect(`${(denied as { stdout: string }).stdout}${(denied as { stderr: string }).stderr}`).toMatch(/Unauthenticated/);
  });
});
