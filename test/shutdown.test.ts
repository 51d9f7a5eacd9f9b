import { mkdtempSync } from "node:fs";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { admin, type CreatedKey } from "./support/admin.ts";
import { startGatewayProcess, type GatewayProcess } from "./support/process.ts";

// Graceful shutdown of a real gateway process (a real SIGTERM): readiness
// fails at once, the port closes after the drain delay, in-flight streams
// finish (or, at the grace deadline, end with an error event), spend and the
// request log are flushed before exit, and a rolling restart of two instances
// loses nothing a client retrying on refused connections would notice.

const ADMIN = "sy-admin-shutdown-key-0123456789";
const API_KEY = "sy-static-shutdown-key-0123456789";
/** USD per million tokens for gpt-4o-mini in these tests. */
const PRICE = { input: 3, output: 7 };

let standin: OpenAIStandin;
const procs: GatewayProcess[] = [];

beforeAll(async () => {
  standin = await startOpenAIStandin();
});

afterEach(async () => {
  standin.setBehavior(null);
  await Promise.all(procs.splice(0).map((p) => p.kill()));
});

afterAll(async () => {
  await standin?.close();
});

/** A gateway process, killed after the test if it is still running; `exited` resolves with its exit code. */
async function gateway(config: Record<string, unknown>): Promise<GatewayProcess & { exited: Promise<number | null> }> {
  const p = await startGatewayProcess({
    providers: [{ id: "openai", type: "openai", baseUrl: standin.url, keys: ["sk-test"] }],
    ...config,
  });
  procs.push(p);
  const exited = new Promise<number | null>((resolve) => {
    if (p.child.exitCode !== null) resolve(p.child.exitCode);
    else p.child.once("exit", (code) => resolve(code));
  });
  return Object.assign(p, { exited });
}

interface StreamResult {
  status: number;
  /** The raw SSE text. */
  text: string;
  /** Each `data:` payload, parsed (the string "[DONE]" as is). */
  events: unknown[];
  /** When the body ended (Date.now()). */
  endedAt: number;
}

/** One streaming chat call; `opened` resolves when the response headers (the first chunk) are in. */
function streamChat(url: string, key: string, content: string): { opened: Promise<void>; done: Promise<StreamResult> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const done = (async () => {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: "gpt-4o-mini", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content }] }),
    });
    open();
    const text = await res.text();
    const events = text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => {
      const data = e.slice(6);
      return data === "[DONE]" ? data : JSON.parse(data);
    });
    return { status: res.status, text, events, endedAt: Date.now() };
  })();
  done.catch(() => open()); // a failed call opens nothing; the test sees the rejection from `done`
  return { opened, done };
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Opens a fresh TCP connection; resolves "connected" or the error code. */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(port), hostname);
    s.once("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
  });
}

/** A fresh connection (no pooled keep-alive socket) for one GET. */
async function getFresh(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { headers: { connection: "close" }, keepalive: false });
  return { status: res.status, body: await res.json() };
}

/** grpc.health.v1.Health/Check over Connect's JSON protocol. */
async function healthCheck(url: string, service: string): Promise<unknown> {
  const res = await fetch(`${url}/grpc.health.v1.Health/Check`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN}` },
    body: JSON.stringify({ service }),
  });
  return res.json();
}

function costOf(usage: { prompt_tokens: number; completion_tokens: number }): number {
  return (usage.prompt_tokens * PRICE.input + usage.completion_tokens * PRICE.output) / 1e6;
}

describe("graceful shutdown on SIGTERM", () => {
  it("drains 50 open streams to [DONE], refuses new connections after the drain delay, and flushes spend and the request log", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "sy-shutdown-"));
    const config = {
      dataDir,
      admin: { key: ADMIN },
      server: { shutdownGraceMs: 15_000, drainDelayMs: 1_000 },
      governance: { pricing: { "gpt-4o-mini": PRICE } },
    };
    const gw = await gateway(config);
    const { key, secret } = await admin<CreatedKey>(gw.url, ADMIN, "KeyService/CreateKey", {
      name: "drain",
      budget: { limitUsd: 100, period: "PERIOD_NONE" },
    });
    // About 20 events 150 ms apart: some 3 s per stream, past the drain delay and well within the grace.
    standin.setBehavior({ kind: "slow-stream", gapMs: 150, path: "/v1/chat/completions" });
    const calls = Array.from({ length: 50 }, (_, i) => streamChat(gw.url, secret, `stream ${String(i).padStart(2, "0")} of fifty, slow enough to outlast the signal`));
    await Promise.all(calls.map((c) => c.opened));
    let finished = 0;
    for (const c of calls) void c.done.then(() => finished++, () => finished++);

    const signalledAt = Date.now();
    gw.child.kill("SIGTERM");
    await waitFor("the draining log line", () => gw.output().includes('"msg":"draining"'));
    expect(await getFresh(`${gw.url}/readyz`)).toEqual({ status: 503, body: { status: "not_ready", reason: "draining" } });
    expect(await healthCheck(gw.url, "")).toEqual({ status: "NOT_SERVING" });
    expect(await healthCheck(gw.url, "switchyard.v1.ChatService")).toEqual({ status: "NOT_SERVING" });

    // After the drain delay the port is closed, while every stream is still running.
    await new Promise((r) => setTimeout(r, Math.max(0, signalledAt + 1_300 - Date.now())));
    expect(await tryConnect(gw.url)).toBe("ECONNREFUSED");
    expect(finished).toBe(0);

    const results = await Promise.all(calls.map((c) => c.done));
    const lastEnded = Math.max(...results.map((r) => r.endedAt));
    let cost = 0;
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.events.at(-1)).toBe("[DONE]");
      expect(r.events.some((e) => typeof e === "object" && e !== null && "error" in e)).toBe(false);
      const usage = (r.events.at(-2) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage;
      expect(usage.completion_tokens).toBeGreaterThan(0);
      cost += costOf(usage);
    }
    expect(await gw.exited).toBe(0);
    // The process stayed for the streams, and left soon after the last.
    expect(Date.now() - lastEnded).toBeLessThan(3_000);
    expect(gw.output()).toContain('"msg":"stopped"');

    // A new process on the same data directory sees every stream's spend and log row.
    const again = await gateway(config);
    const budget = await admin<{ spentUsd: number; reservedUsd?: number }>(again.url, ADMIN, "BudgetService/GetBudget", { keyId: key.id });
    expect(budget.spentUsd).toBeCloseTo(cost, 9);
    expect(budget.reservedUsd ?? 0).toBe(0);
    const agg = await admin<{ rows: { requests: string; errors?: string; costUsd: number }[] }>(again.url, ADMIN, "LogService/AggregateRequests", { groupBy: "GROUP_BY_MODEL" });
    expect(agg.rows).toHaveLength(1);
    expect(Number(agg.rows[0]!.requests)).toBe(50);
    expect(Number(agg.rows[0]!.errors ?? 0)).toBe(0);
    expect(agg.rows[0]!.costUsd).toBeCloseTo(cost, 9);
  }, 30_000);

  it("ends streams still open at the grace deadline with an error in their own protocol (OpenAI, Anthropic, Connect), then exits", async () => {
    const gw = await gateway({ auth: { keys: [API_KEY] }, server: { shutdownGraceMs: 1_000, drainDelayMs: 0 } });
    // 100-odd events 200 ms apart: far longer than the grace.
    standin.setBehavior({ kind: "slow-stream", gapMs: 200, path: "/v1/chat/completions" });
    const long = "a long answer ".repeat(30);
    const openai = streamChat(gw.url, API_KEY, long);
    const anthropic = fetch(`${gw.url}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
      body: JSON.stringify({ model: "gpt-4o-mini", max_tokens: 1000, stream: true, messages: [{ role: "user", content: long }] }),
    });
    const connect = fetch(`${gw.url}/switchyard.v1.ChatService/Stream`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", authorization: `Bearer ${API_KEY}` },
      body: envelope({ request: { model: "gpt-4o-mini", messages: [{ role: "ROLE_USER", content: [{ text: long }] }] } }),
    });
    await openai.opened;
    const [aRes, cRes] = await Promise.all([anthropic, connect]);
    expect([aRes.status, cRes.status]).toEqual([200, 200]);
    const aborted = standin.aborted;
    const signalledAt = Date.now();
    gw.child.kill("SIGTERM");

    // OpenAI: an `{"error":...}` event, no [DONE], then the end of the body.
    const r = await openai.done;
    expect(r.status).toBe(200);
    // Ended at the deadline (not cut at once, not run to its end).
    expect(r.endedAt - signalledAt).toBeGreaterThanOrEqual(900);
    expect(r.endedAt - signalledAt).toBeLessThan(4_000);
    expect(r.events.length).toBeGreaterThan(2);
    expect(r.events).not.toContain("[DONE]");
    expect(r.events.at(-1)).toEqual({ error: { message: "gateway shutting down", type: "server_error", param: null, code: "service_unavailable" } });
    expect(r.text.endsWith("\n\n")).toBe(true);

    // Anthropic: `event: error`, no message_stop.
    const frames = (await aRes.text()).split("\n\n").filter(Boolean);
    expect(frames.length).toBeGreaterThan(2);
    expect(frames.some((f) => f.startsWith("event: message_stop"))).toBe(false);
    const last = frames.at(-1)!;
    expect(last.split("\n")[0]).toBe("event: error");
    expect(JSON.parse(last.split("\n")[1]!.slice(6))).toMatchObject({ type: "error", error: { message: "gateway shutting down" } });

    // Connect: chunks, then an end-of-stream message with code unavailable.
    const messages = unenvelope(new Uint8Array(await cRes.arrayBuffer()));
    expect(messages.length).toBeGreaterThan(2);
    expect(messages.at(-1)).toEqual({ end: true, json: { error: { code: "unavailable", message: "gateway shutting down" } } });

    expect(await gw.exited).toBe(0);
    // The upstream requests were stopped too, not left running.
    await standin.waitForAborted(aborted + 3);
  }, 20_000);
});

/** One Connect streaming-protocol message: flags 0, big-endian length, JSON. */
function envelope(message: object): Uint8Array {
  const json = Buffer.from(JSON.stringify(message));
  const head = Buffer.alloc(5);
  head.writeUInt32BE(json.length, 1);
  return Buffer.concat([head, json]);
}

function unenvelope(bytes: Uint8Array): { end: boolean; json: unknown }[] {
  const out: { end: boolean; json: unknown }[] = [];
  const buf = Buffer.from(bytes);
  for (let at = 0; at + 5 <= buf.length;) {
    const len = buf.readUInt32BE(at + 1);
    out.push({ end: (buf[at]! & 2) !== 0, json: JSON.parse(buf.subarray(at + 5, at + 5 + len).toString("utf8")) });
    at += 5 + len;
  }
  return out;
}

/** Whether a failed fetch never got a response byte: the connection was refused or closed before the answer. */
function beforeResponse(err: unknown): boolean {
  const code = ((err as { cause?: { code?: string } }).cause?.code) ?? "";
  return ["ECONNREFUSED", "ECONNRESET", "EPIPE", "UND_ERR_SOCKET"].includes(code);
}

describe("rolling restart", () => {
  it("two instances restarted in turn under steady load: no request fails for a client that retries refused connections", async () => {
    const config = { auth: { keys: [API_KEY] }, server: { shutdownGraceMs: 5_000, drainDelayMs: 300 }, requestLog: { enabled: false } };
    const instances = await Promise.all([gateway(config), gateway(config)]);
    const urls = instances.map((g) => g.url);
    // Streams of about ten events 20 ms apart; plain answers wait 20 ms once.
    standin.setBehavior({ kind: "slow-stream", gapMs: 20, path: "/v1/chat/completions" });

    let turn = 0;
    let retries = 0;
    const failures: string[] = [];
    /** One request, round-robin over the instances; a connection refused or reset before any answer goes to the next one. */
    async function one(i: number): Promise<void> {
      const stream = i % 2 === 0;
      for (let attempt = 0; attempt < 6; attempt++) {
        const url = urls[turn++ % urls.length]!;
        let res: Response;
        try {
          res = await fetch(`${url}/v1/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${API_KEY}` },
            body: JSON.stringify({ model: "gpt-4o-mini", stream, messages: [{ role: "user", content: `request ${i} under load` }] }),
          });
        } catch (err) {
          if (!beforeResponse(err)) return void failures.push(`#${i}: ${String((err as Error).cause ?? err)}`);
          retries++;
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        try {
          const text = await res.text();
          const ok = res.status === 200 && (stream ? text.trimEnd().endsWith("data: [DONE]") && !text.includes('"error"') : JSON.parse(text).choices?.[0]?.message?.content === `echo: request ${i} under load`);
          if (!ok) failures.push(`#${i}: HTTP ${res.status} ${text.slice(-200)}`);
        } catch (err) {
          failures.push(`#${i}: body failed after the answer started: ${String((err as Error).cause ?? err)}`);
        }
        return;
      }
      failures.push(`#${i}: no instance took it`);
    }

    const pending: Promise<void>[] = [];
    let running = true;
    const load = (async () => {
      for (let i = 0; running; i++) {
        pending.push(one(i));
        await new Promise((r) => setTimeout(r, 15));
      }
    })();

    await new Promise((r) => setTimeout(r, 400));
    for (const slot of [0, 1]) {
      const old = instances[slot]!;
      old.child.kill("SIGTERM");
      expect(await old.exited).toBe(0);
      const fresh = await gateway(config);
      instances[slot] = fresh;
      urls[slot] = fresh.url;
      await new Promise((r) => setTimeout(r, 400));
    }
    running = false;
    await load;
    await Promise.all(pending);

    expect(failures).toEqual([]);
    expect(pending.length).toBeGreaterThan(100);
    // The stopped instances did refuse connections; the retries covered them.
    expect(retries).toBeGreaterThan(0);
  }, 30_000);
});
