import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway } from "../server/app.ts";
import { validateConfig } from "../server/config/load.ts";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway } from "./support/gateway.ts";

// Spans reach a local OTLP/HTTP receiver with GenAI attributes and the right
// parent-child links; the caller's trace continues upstream.

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  status?: { code?: number };
  attributes: { key: string; value: Record<string, unknown> }[];
}

let standin: OpenAIStandin;
let receiver: http.Server;
let receiverUrl: string;
const spans: OtlpSpan[] = [];

beforeAll(async () => {
  standin = await startOpenAIStandin();
  receiver = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => (body += d));
    req.on("end", () => {
      expect(req.url).toBe("/v1/traces");
      const json = JSON.parse(body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of json.resourceSpans) for (const ss of rs.scopeSpans) spans.push(...ss.spans);
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await standin?.close();
  await new Promise((r) => receiver?.close(r));
});

const attr = (s: OtlpSpan, key: string): unknown => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  const x = v["stringValue"] ?? v["intValue"] ?? v["doubleValue"] ?? v["boolValue"] ?? v["arrayValue"];
  return typeof x === "string" && "intValue" in v ? Number(x) : x;
};

async function waitForSpans(traceId: string, n: number): Promise<OtlpSpan[]> {
  for (let i = 0; i < 200; i++) {
    const mine = spans.filter((s) => s.traceId === traceId);
    if (mine.length >= n) return mine;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`spans for ${traceId} did not arrive`);
}

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN = "00f067aa0ba902b7";

describe("tracing on", () => {
  it("continues the caller's trace with a request span and an attempt span carrying GenAI attributes", async () => {
    const config = validateConfig({ server: { host: "127.0.0.1", port: 0 }, requestLog: { enabled: false }, routing: { retries: 0 }, providers: [openaiProvider(standin.url)] });
    const gw = await startGateway(config, { tracing: { endpoint: receiverUrl, flushMs: 20 } });
    try {
      standin.requests.length = 0;
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent: `00-${TRACE}-${CALLER_SPAN}-01` },
        body: JSON.stringify({ model: "gpt-4o-mini", temperature: 0.5, max_tokens: 50, messages: [{ role: "user", content: "traced" }] }),
      });
      expect(res.status).toBe(200);
      const mine = await waitForSpans(TRACE, 2);
      const request = mine.find((s) => s.kind === 2)!;
      const attempt = mine.find((s) => s.kind === 3)!;
      expect(request.parentSpanId).toBe(CALLER_SPAN);
      expect(attempt.parentSpanId).toBe(request.spanId);
      expect(attempt.name).toBe("chat gpt-4o-mini");
      expect(attr(attempt, "gen_ai.operation.name")).toBe("chat");
      expect(attr(attempt, "gen_ai.system")).toBe("openai");
      expect(attr(attempt, "gen_ai.request.model")).toBe("gpt-4o-mini");
      expect(attr(attempt, "gen_ai.request.temperature")).toBe(0.5);
      expect(attr(attempt, "gen_ai.request.max_tokens")).toBe(50);
      expect(attr(attempt, "gen_ai.usage.input_tokens")).toBeGreaterThan(0);
      expect(attr(attempt, "gen_ai.usage.output_tokens")).toBeGreaterThan(0);
      expect(attr(request, "gen_ai.response.model")).toBe("gpt-4o-mini");
      // The provider saw the attempt span as its parent, in the caller's trace.
      const upstream = standin.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!.headers["traceparent"];
      expect(upstream).toBe(`00-${TRACE}-${attempt.spanId}-01`);
    } finally {
      await gw.close(0);
    }
  });

  it("marks a failed attempt with error.type, and starts a new trace without a caller context", async () => {
    const config = validateConfig({ server: { host: "127.0.0.1", port: 0 }, requestLog: { enabled: false }, routing: { retries: 0 }, providers: [openaiProvider(standin.url)] });
    const gw = await startGateway(config, { tracing: { endpoint: receiverUrl, flushMs: 20 } });
    try {
      standin.setBehavior({ kind: "status", status: 500, times: 1, path: "/v1/chat/completions" });
      standin.requests.length = 0;
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "fails" }] }),
      });
      expect(res.status).toBe(502);
      const chat = standin.requests.filter((r) => r.path === "/v1/chat/completions").at(-1)!;
      const traceId = /^00-([0-9a-f]{32})-/.exec(String(chat.headers["traceparent"]))![1]!;
      const mine = await waitForSpans(traceId, 2);
      const attempt = mine.find((s) => s.kind === 3)!;
      expect(attr(attempt, "error.type")).toBe("upstream_error");
      expect(attempt.status?.code).toBe(2);
      expect(mine.find((s) => s.kind === 2)!.parentSpanId ?? "").toBe("");
    } finally {
      await gw.close(0);
    }
  });
});

describe("tracing off", () => {
  it("makes no spans but passes the caller's trace context upstream unchanged", async () => {
    const gw = await startTestGateway({ providers: [openaiProvider(standin.url)] });
    try {
      const before = spans.length;
      standin.requests.length = 0;
      const traceparent = `00-${"a".repeat(32)}-${"b".repeat(16)}-01`;
      await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", traceparent, tracestate: "vendor=1" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x" }] }),
      }).then((r) => r.text());
      await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "y" }] }),
      }).then((r) => r.text());
      const chats = standin.requests.filter((r) => r.path === "/v1/chat/completions");
      expect(chats[0]!.headers["traceparent"]).toBe(traceparent);
      expect(chats[0]!.headers["tracestate"]).toBe("vendor=1");
      expect(chats[1]!.headers["traceparent"]).toBeUndefined();
      await new Promise((r) => setTimeout(r, 100));
      expect(spans.length).toBe(before);
    } finally {
      await gw.close();
    }
  });
});
