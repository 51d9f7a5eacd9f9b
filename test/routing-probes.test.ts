import { afterAll, beforeAll, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// Active health checks: every key of every provider is probed on an interval,
// and a broken key is found (and skipped) before a user's request meets it.

// Provider health is admin data; the admin key also sends the user requests here.
const ADMIN = "sy-admin-probes-test-0123456789";
let standin: OpenAIStandin;
let gw: TestGateway;

beforeAll(async () => {
  standin = await startOpenAIStandin({ apiKeys: ["sk-good"] });
  gw = await startTestGateway({
    admin: { key: ADMIN },
    providers: [openaiProvider(standin.url, { keys: ["sk-good", "sk-revoked"], models: ["gpt-4o-mini"] })],
    routing: { retries: 0, healthCheckIntervalMs: 50, breaker: { minRequests: 2, failureRate: 0.5, cooldownMs: 60_000 } },
  });
});

afterAll(async () => {
  await gw?.close();
  await standin?.close();
});

interface Health { providers?: { provider: string; keys: { index: number; state: string }[] }[] }

async function keyStates(): Promise<string[]> {
  const res = await fetch(`${gw.url}/switchyard.v1.RoutingService/GetHealth`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` }, body: "{}" });
  const body = (await res.json()) as Health;
  // Before the first probe has run, the provider list is empty (and left out of the JSON).
  return body.providers?.find((p) => p.provider === "openai")?.keys.map((k) => k.state) ?? [];
}

it("probes find a revoked key and routing stops using it, with no user request failing", async () => {
  let states: string[] = [];
  for (let i = 0; i < 100 && states[1] !== "CIRCUIT_STATE_OPEN"; i++) {
    await new Promise((r) => setTimeout(r, 50));
    states = await keyStates();
  }
  expect(states).toEqual(["CIRCUIT_STATE_CLOSED", "CIRCUIT_STATE_OPEN"]);
  // Probes went to the models endpoint with both keys.
  const probeKeys = new Set(standin.requests.filter((r) => r.path === "/v1/models").map((r) => r.headers["authorization"]));
  expect(probeKeys).toEqual(new Set(["Bearer sk-good", "Bearer sk-revoked"]));
  // Every user request now goes out with the good key and succeeds.
  standin.requests.length = 0;
  for (let i = 0; i < 6; i++) {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: `hi ${i}` }] }),
    });
    expect(res.status).toBe(200);
  }
  const used = standin.requests.filter((r) => r.path === "/v1/chat/completions").map((r) => r.headers["authorization"]);
  expect(new Set(used)).toEqual(new Set(["Bearer sk-good"]));
});
