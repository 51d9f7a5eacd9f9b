import { afterAll, beforeAll, expect, it } from "vitest";
import { Code, ConnectError, createClient, userText } from "../sdk-ts/src/index.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// Limits that keep one caller from hurting others: a caller's own tight
// timeout never counts against a provider's health, the total deadline is a
// timeout (504), and fallbacks and model names are bounded.

let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin();
  gw = await startTestGateway({
    providers: [openaiProvider(standin.url, { models: ["gpt-4o-mini"], timeouts: { firstByteMs: 5000, totalMs: 400 } })],
    routing: { retries: 1, backoffMs: 1, breaker: { minRequests: 2, failureRate: 0.5, cooldownMs: 60_000 } },
  });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

const chat = (headers: Record<string, string> = {}, body: object = {}) =>
  fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...body }),
  });

async function targetState(): Promise<string | undefined> {
  const res = await fetch(`${gw.url}/switchyard.v1.RoutingService/GetHealth`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  const body = (await res.json()) as { providers?: { targets?: { model: string; state: string }[] }[] };
  return body.providers?.[0]?.targets?.find((t) => t.model === "gpt-4o-mini")?.state;
}

it("a caller's own tight timeout fails that caller only, never the provider's circuit", async () => {
  standin.setBehavior({ kind: "delay", ms: 60, path: "/v1/chat/completions" });
  for (let i = 0; i < 4; i++) {
    const res = await chat({ "x-switchyard-first-byte-timeout-ms": "5" });
    expect(res.status).toBe(504);
    await res.text();
  }
  expect(await targetState()).not.toBe("CIRCUIT_STATE_OPEN");
  const other = await chat();
  expect(other.status).toBe(200);
  await other.text();
  standin.setBehavior(null);
});

it("the provider's total deadline is a timeout (504), not a connection error", async () => {
  standin.setBehavior({ kind: "delay", ms: 1500, path: "/v1/chat/completions", times: 2 });
  const res = await chat();
  expect(res.status).toBe(504);
  const body = (await res.json()) as { error: { type: string; message: string } };
  expect(body.error.type).toBe("timeout_error");
  expect(body.error.message).toMatch(/did not finish within 400 ms/);
  standin.setBehavior(null);
});

it("bounds per-request fallbacks and model names, on REST and RPC", async () => {
  const many = Array.from({ length: 6 }, (_, i) => `openai/m${i}`);
  expect((await chat({}, { fallbacks: many })).status).toBe(400);
  expect((await chat({}, { model: "x".repeat(300) })).status).toBe(400);
  const sy = createClient({ baseUrl: gw.url, protocol: "grpc" });
  const err = await sy.chat.complete({ request: { model: "gpt-4o-mini", messages: [userText("x")], fallbacks: many } }).catch((e: unknown) => ConnectError.from(e));
  expect(err).toBeInstanceOf(ConnectError);
  expect((err as ConnectError).code).toBe(Code.InvalidArgument);
});
