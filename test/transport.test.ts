import * as http2 from "node:http2";
import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { openaiProvider, startTestGateway, type TestGateway } from "./support/gateway.ts";

// The one port: HTTP/1.1 and h2c told apart by their first bytes, however the
// bytes arrive; REST works over both; shutdown drains in-flight streams.

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

const chat = { model: "gpt-4o-mini", messages: [{ role: "user", content: "over h2c" }] };

function h2Request(url: string, path: string, body: unknown): Promise<{ status: number; headers: http2.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(url);
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ":path": path, "content-type": "application/json" });
    let headers: http2.IncomingHttpHeaders = {};
    let text = "";
    req.on("response", (h) => (headers = h));
    req.setEncoding("utf8");
    req.on("data", (d: string) => (text += d));
    req.on("end", () => {
      session.close();
      resolve({ status: Number(headers[":status"]), headers, text });
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** Sends raw bytes in the given pieces, with pauses between them, and collects the answer. */
function rawExchange(port: number, pieces: (string | Buffer)[], until: (got: Buffer) => boolean): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    sock.on("data", (d) => {
      got = Buffer.concat([got, d]);
      if (until(got)) {
        sock.destroy();
        resolve(got);
      }
    });
    sock.on("error", reject);
    sock.on("close", () => resolve(got));
    sock.on("connect", async () => {
      for (const p of pieces) {
        sock.write(p);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

describe("one port", () => {
  it("serves the REST bridge over h2c, JSON and SSE", async () => {
    const json = await h2Request(gw.url, "/v1/chat/completions", chat);
    expect(json.status).toBe(200);
    expect(JSON.parse(json.text).choices[0].message.content).toBe("echo: over h2c");
    const sse = await h2Request(gw.url, "/v1/chat/completions", { ...chat, stream: true });
    expect(sse.status).toBe(200);
    expect(sse.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(sse.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("tells HTTP/1.1 from HTTP/2 when the first bytes arrive one at a time", async () => {
    const h1 = await rawExchange(gw.port, ["G", "E", "T /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"], (b) => b.includes("\r\n\r\n{"));
    expect(h1.toString()).toMatch(/^HTTP\/1\.1 200/);
    // The HTTP/2 preface split mid-way: the server must answer with an HTTP/2 SETTINGS frame (type 4).
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const h2 = await rawExchange(gw.port, [preface.subarray(0, 2), preface.subarray(2, 10), preface.subarray(10), settings], (b) => b.length >= 9);
    expect(h2[3]).toBe(4);
  });

  it("answers garbage with an HTTP error and keeps serving", async () => {
    const bad = await rawExchange(gw.port, ["\x16\x03\x01 not http at all\r\n\r\n"], (b) => b.length > 0);
    expect(bad.toString()).toMatch(/^HTTP\/1\.1 400/);
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  it("answers liveness and readiness", async () => {
    expect(await (await fetch(`${gw.url}/healthz`)).json()).toEqual({ status: "ok" });
    expect(await (await fetch(`${gw.url}/readyz`)).json()).toEqual({ status: "ready" });
  });
});

describe("graceful shutdown", () => {
  it("lets an in-flight stream finish, then stops accepting", async () => {
    const local = await startTestGateway({ providers: [openaiProvider(standin.url)] });
    standin.setBehavior({ kind: "slow-stream", gapMs: 40, times: 1 });
    const res = await fetch(`${local.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...chat, messages: [{ role: "user", content: "a longer answer to stream slowly" }], stream: true }),
    });
    expect(res.status).toBe(200);
    const closing = local.close(5000);
    const text = await res.text();
    await closing;
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    await expect(fetch(`${local.url}/healthz`)).rejects.toThrow();
  });
});

describe("backpressure", () => {
  it("a caller that stops reading stops the upstream read, instead of the gateway buffering the stream", async () => {
    // 16 MB streamed in 16 KB chunks: far more than socket buffers hold.
    const big = await startOpenAIStandin({ streamChunkChars: 16 * 1024 });
    const local = await startTestGateway({ server: { maxBodyBytes: 32 * 1024 * 1024 }, providers: [openaiProvider(big.url)] });
    try {
      const res = await fetch(`${local.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-4o-mini", stream: true, messages: [{ role: "user", content: "y".repeat(16 * 1024 * 1024) }] }),
      });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read();
      // Not reading: the stream cannot complete, so no record is written yet.
      await new Promise((r) => setTimeout(r, 1500));
      expect(local.records).toHaveLength(0);
      // Reading again lets it finish normally.
      let tail = "";
      const decoder = new TextDecoder();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        tail = (tail + decoder.decode(value)).slice(-100);
      }
      expect(tail.trimEnd().endsWith("data: [DONE]")).toBe(true);
      await local.waitForRecords(1);
      expect(local.records[0]).toMatchObject({ ok: true, operation: "chat_stream" });
    } finally {
      await local.close();
      await big.close();
    }
  }, 60_000);
});
