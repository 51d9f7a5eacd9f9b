import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ConfigInput } from "../server/config/schema.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// Traffic splitting across targets of one route: weights over many requests,
// sticky users and sessions, and least-busy. Two OpenAI stand-ins, A
// (provider `a`) and B (provider `b`), both serving gpt-4o-mini.

const MODEL = "gpt-4o-mini";
const MESSAGES = [{ role: "user", content: "hi" }];

let A: OpenAIStandin;
let B: OpenAIStandin;
let gw: TestGateway;

type Provider = NonNullable<ConfigInput["providers"]>[number];
const provider = (id: string, s: OpenAIStandin) => ({ id, type: "openai", baseUrl: s.url, keys: ["sk-test"], models: [MODEL] }) as Provider;
const split = [{ model: "a/gpt-4o-mini", weight: 90 }, { model: "b/gpt-4o-mini", weight: 10 }];

beforeAll(async () => {
  // The stand-ins' own per-minute rate limit would answer 429 well before 10 000 requests.
  A = await startOpenAIStandin({ models: [MODEL], rateLimits: { requests: 1_000_000 } });
  B = await startOpenAIStandin({ models: [MODEL], rateLimits: { requests: 1_000_000 } });
  gw = await startTestGateway({
    providers: [provider("a", A), provider("b", B)],
    routes: {
      weighted: { targets: split },
      "per-user": { targets: split, sticky: "user" },
      "per-session": { targets: split, sticky: "session" },
      busy: { targets: [{ model: "a/gpt-4o-mini" }, { model: "b/gpt-4o-mini" }], strategy: "least-busy" },
    },
    requestLog: { enabled: false },
  });
});

afterAll(async () => {
  await gw?.close();
  await A?.close();
  await B?.close();
});

beforeEach(() => {
  A.setBehavior(null);
  A.requests.length = 0;
  B.requests.length = 0;
});

/** One chat request; resolves to the provider that served it (x-switchyard-provider). */
async function send(model: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}): Promise<string> {
  const res = await fetch(`${gw.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: MESSAGES, ...extra }),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  return res.headers.get("x-switchyard-provider") ?? "";
}

/** Runs `count` tasks with at most `limit` in flight. */
async function pool<T>(count: number, limit: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await task(i);
    }
  }));
  return out;
}

const tally = (xs: string[]) => xs.reduce<Record<string, number>>((m, x) => ((m[x] = (m[x] ?? 0) + 1), m), {});

describe("weighted split", () => {
  it("10 000 requests split 90/10 within 2 percentage points", async () => {
    const N = 10_000;
    const served = await pool(N, 64, () => send("weighted"));
    const t = tally(served);
    expect((t["a"] ?? 0) + (t["b"] ?? 0)).toBe(N);
    expect(Math.abs((t["a"] ?? 0) / N - 0.9)).toBeLessThanOrEqual(0.02);
    expect(Math.abs((t["b"] ?? 0) / N - 0.1)).toBeLessThanOrEqual(0.02);
    // The stand-ins agree with the gateway's headers: each request went to exactly one of them, once.
    expect(A.requests.length).toBe(t["a"]);
    expect(B.requests.length).toBe(t["b"]);
  });
});

describe("sticky routing", () => {
  it("sticky user: every request of a user goes to one target; users spread roughly by weight", async () => {
    const USERS = 300;
    const PER_USER = 4;
    const served = await pool(USERS * PER_USER, 64, async (i) => ({ user: `user-${i % USERS}`, p: await send("per-user", { user: `user-${i % USERS}` }) }));
    const byUser = new Map<string, Set<string>>();
    for (const { user, p } of served) byUser.set(user, (byUser.get(user) ?? new Set()).add(p));
    expect(byUser.size).toBe(USERS);
    for (const [user, targets] of byUser) expect(targets.size, `user ${user} went to ${[...targets]}`).toBe(1);
    const onB = [...byUser.values()].filter((s) => s.has("b")).length / USERS;
    // 300 users at 10 %: a standard deviation of about 1.7 points.
    expect(onB).toBeGreaterThan(0.04);
    expect(onB).toBeLessThan(0.16);
    // The `user` field is still passed upstream as the caller wrote it.
    expect((A.requests[0]!.body as { user: string }).user).toMatch(/^user-\d+$/);
  });

  it("sticky session: x-session-id keeps a session on one target; sessions spread roughly by weight", async () => {
    const SESSIONS = 300;
    const served = await pool(SESSIONS * 4, 64, async (i) => {
      const session = `sess-${i % SESSIONS}`;
      // The same user in every session: the session, not the user, decides.
      return { session, p: await send("per-session", { user: "same-user" }, { "x-session-id": session }) };
    });
    const bySession = new Map<string, Set<string>>();
    for (const { session, p } of served) bySession.set(session, (bySession.get(session) ?? new Set()).add(p));
    for (const targets of bySession.values()) expect(targets.size).toBe(1);
    const onB = [...bySession.values()].filter((s) => s.has("b")).length / SESSIONS;
    expect(onB).toBeGreaterThan(0.04);
    expect(onB).toBeLessThan(0.16);
  });

  it("a sticky route without the key (no x-session-id) falls back to a weighted draw", async () => {
    const served = await pool(2000, 64, () => send("per-session"));
    const onB = (tally(served)["b"] ?? 0) / 2000;
    expect(onB).toBeGreaterThan(0.05);
    expect(onB).toBeLessThan(0.15);
  });
});

describe("least-busy", () => {
  it("sends to the target with fewer requests in flight", async () => {
    // Idle: a tie, and the first target wins.
    expect(await send("busy")).toBe("a");
    // A is slow: one request sits there for a second ...
    A.setBehavior({ kind: "delay", ms: 1000, times: 1 });
    const slow = send("busy");
    while (A.requests.length < 2) await new Promise((r) => setTimeout(r, 5));
    // ... so everything meanwhile goes to B, which has none in flight between requests.
    const meanwhile = [];
    for (let i = 0; i < 10; i++) meanwhile.push(await send("busy"));
    expect(meanwhile).toEqual(Array(10).fill("b"));
    expect(await slow).toBe("a");
    expect(A.requests.length).toBe(2);
    expect(B.requests.length).toBe(10);
    // A is idle again: back to it.
    expect(await send("busy")).toBe("a");
  });

  it("under concurrent load, a slow target gets far fewer requests than a fast one", async () => {
    A.setBehavior({ kind: "delay", ms: 200 });
    const served = await pool(400, 16, () => send("busy"));
    const t = tally(served);
    // With a 200 ms A and a ~1 ms B, A holds a request or more most of the time.
    expect(t["b"] ?? 0).toBeGreaterThan(4 * (t["a"] ?? 0));
  });
});
