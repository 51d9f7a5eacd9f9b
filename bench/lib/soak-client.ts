/**
 * The soak's callers (bench/soak.ts), run as their own process:
 *
 *   node bench/lib/soak-client.ts --mode steady --urls URL1,URL2 --key KEY --seconds S --rate R --out FILE
 *   node bench/lib/soak-client.ts --mode rude   --urls URL1,URL2 --key KEY --seconds S --out FILE
 *
 * steady: open-loop chat completions at R/s (request i is sent at start + i/R
 * whatever happened to the others), half of them streamed with
 * include_usage, taking the gateways in turn. Each request carries a marker
 * "[soak:<id>]" in its prompt (the stand-ins log it) and x-request-id <id>.
 * A request that fails before any response (connection refused or reset: a
 * gateway being killed) is sent once more to the other gateway, as clients
 * and load balancers do.
 *
 * rude: callers that misbehave, each in its own loop: streams abandoned after
 * a few chunks, requests aborted before the answer, headers sent one byte a
 * second (slowloris), bodies sent slowly (finishing) and bodies that stall
 * half-way (never finishing), oversized headers and bodies.
 *
 * Each request ends as one JSON line in FILE (SteadyRecord or RudeRecord);
 * a summary line goes to stdout. SIGTERM stops sending; requests in flight
 * finish (rude connections are closed) and the file is written.
 */
import { writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

/** Token usage as the caller saw it. */
export interface SeenUsage {
  prompt: number;
  completion: number;
}

/** One HTTP exchange with one gateway. */
export interface Exchange {
  /** Index into --urls. */
  gw: number;
  /** Epoch ms. */
  t0: number;
  t1: number;
  /** HTTP status; 0 when no response arrived. */
  status: number;
  /** Where it ended: "connect" (no response), "body" (cut while reading the body), "done" (read to its end), "left" (the caller left on purpose). */
  phase: "connect" | "body" | "done" | "left";
  error?: string | undefined;
  provider?: string | undefined;
  attempts?: number | undefined;
  /** Usage from the JSON answer or the stream's usage chunk. */
  usage?: SeenUsage | undefined;
  /** Streams: UTF-8 bytes of content received, content chunks, whether data: [DONE] came, the error event's message. */
  contentBytes: number;
  contentChunks: number;
  sawDone: boolean;
  streamError?: string | undefined;
}

export interface SteadyRecord {
  id: string;
  stream: boolean;
  /** The exact request body (the spend check re-derives the gateway's prompt estimate from it). */
  body: string;
  ok: boolean;
  /** The exchange that decided the outcome (the retry, when there was one). */
  final: Exchange;
  /** The first exchange, when it failed before any response and was sent again to the other gateway. */
  retried?: Exchange | undefined;
}

export type RudeKind = "disconnect" | "abort" | "slow-headers" | "slow-body" | "stalled-body" | "big-headers" | "big-body";

export interface RudeRecord {
  id: string;
  kind: RudeKind;
  body?: string | undefined;
  x: Exchange;
  /** Raw-socket kinds: whether the gateway closed the connection (else the caller did, at the end). */
  closedByServer?: boolean | undefined;
  /** How long the connection was open, ms. */
  heldMs?: number | undefined;
}

const PROMPT = "Write two sentences about a lighthouse keeper who finds a message in a bottle, for a soak test.";
export const MAX_TOKENS = 200;

export function chatBody(id: string, stream: boolean): string {
  return JSON.stringify({
    model: "gpt-4o-mini",
    messages: [{ role: "user", content: `[soak:${id}] ${PROMPT}` }],
    max_tokens: MAX_TOKENS,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
}

// ---------------------------------------------------------------- HTTP

interface Target {
  host: string;
  port: number;
  agent: http.Agent;
}

let targets: Target[] = [];
let authKey = "";

function errorName(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ?? e.message ?? String(err);
}

/** Reads an SSE body as it comes: content bytes, usage, [DONE], an error event. */
function sseReader(x: Exchange, onContent?: () => boolean): (text: string) => boolean {
  let buf = "";
  return (text) => {
    buf += text;
    let end: number;
    while ((end = buf.indexOf("\n\n")) !== -1) {
      const event = buf.slice(0, end);
      buf = buf.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") {
          x.sawDone = true;
          continue;
        }
        let j: any;
        try {
          j = JSON.parse(data);
        } catch {
          x.streamError = `unparsable event: ${data.slice(0, 80)}`;
          continue;
        }
        if (j.error !== undefined) {
          x.streamError = String(j.error?.message ?? JSON.stringify(j.error)).slice(0, 200);
          continue;
        }
        const content = j.choices?.[0]?.delta?.content;
        if (typeof content === "string" && content.length > 0) {
          x.contentBytes += Buffer.byteLength(content, "utf8");
          x.contentChunks++;
          if (onContent?.() === true) return true;
        }
        if (j.usage) x.usage = { prompt: j.usage.prompt_tokens, completion: j.usage.completion_tokens };
      }
    }
    return false;
  };
}

/**
 * One POST /v1/chat/completions to gateway gw, read to its end (or until
 * leaveAfter says the caller leaves, or abortAfterMs passes).
 */
function exchange(gw: number, id: string, body: string, stream: boolean, opts: { timeoutMs: number; leaveAfterChunks?: number; abortAfterMs?: number }): Promise<Exchange> {
  const t = targets[gw]!;
  const x: Exchange = { gw, t0: Date.now(), t1: 0, status: 0, phase: "connect", contentBytes: 0, contentChunks: 0, sawDone: false };
  return new Promise((resolve) => {
    let finished = false;
    const finish = (phase: Exchange["phase"], error?: string): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      clearTimeout(abortTimer);
      x.t1 = Date.now();
      x.phase = phase;
      if (error !== undefined) x.error = error;
      resolve(x);
    };
    const req = http.request({
      host: t.host,
      port: t.port,
      path: "/v1/chat/completions",
      method: "POST",
      agent: t.agent,
      headers: {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
        authorization: `Bearer ${authKey}`,
        "x-request-id": id,
        accept: stream ? "text/event-stream" : "application/json",
      },
    });
    const timer = setTimeout(() => {
      req.destroy();
      finish(x.status === 0 ? "connect" : "body", "timeout");
    }, opts.timeoutMs);
    const abortTimer = opts.abortAfterMs === undefined ? undefined : setTimeout(() => {
      req.destroy();
      finish("left");
    }, opts.abortAfterMs);
    req.on("error", (err) => finish(x.status === 0 ? "connect" : "body", errorName(err)));
    req.on("response", (res) => {
      x.status = res.statusCode ?? 0;
      const p = res.headers["x-switchyard-provider"];
      x.provider = typeof p === "string" ? p : undefined;
      const a = res.headers["x-switchyard-attempts"];
      x.attempts = typeof a === "string" ? Number(a) : undefined;
      res.setEncoding("utf8");
      const isSse = String(res.headers["content-type"] ?? "").startsWith("text/event-stream");
      let text = "";
      const leave = opts.leaveAfterChunks;
      const read = isSse ? sseReader(x, leave === undefined ? undefined : () => x.contentChunks >= leave) : undefined;
      res.on("data", (d: string) => {
        if (read === undefined) {
          text += d;
          return;
        }
        if (read(d)) {
          // The caller leaves mid-stream: the socket goes, as a closed browser tab's would.
          req.destroy();
          finish("left");
        }
      });
      res.on("end", () => {
        if (read === undefined) {
          try {
            const j = JSON.parse(text);
            if (j.usage) x.usage = { prompt: j.usage.prompt_tokens, completion: j.usage.completion_tokens };
            if (j.error) x.streamError = String(j.error.message ?? "").slice(0, 200);
          } catch {
            x.streamError = `unparsable body: ${text.slice(0, 80)}`;
          }
        }
        finish("done");
      });
      res.on("error", (err) => finish("body", errorName(err)));
      res.on("close", () => {
        if (!res.complete) finish("body", "response closed before its end");
      });
    });
    req.end(body);
  });
}

function succeeded(x: Exchange, stream: boolean): boolean {
  if (x.phase !== "done" || x.status !== 200 || x.usage === undefined || x.streamError !== undefined) return false;
  return !stream || x.sawDone;
}

// ---------------------------------------------------------------- steady

async function steady(seconds: number, rate: number, out: SteadyRecord[], stopping: () => boolean): Promise<{ sendLagMaxMs: number }> {
  const inflight = new Set<Promise<void>>();
  const start = performance.now() + 50;
  let sendLagMaxMs = 0;
  const total = Math.round(seconds * rate);
  for (let i = 0; i < total && !stopping(); i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sendLagMaxMs = Math.max(sendLagMaxMs, performance.now() - due);
    const id = `s${i}`;
    const gw = i % targets.length;
    // Streams and non-streams alternate per pair, so each gateway gets both.
    const stream = Math.floor(i / targets.length) % 2 === 1;
    const body = chatBody(id, stream);
    const p = (async () => {
      const first = await exchange(gw, id, body, stream, { timeoutMs: 60_000 });
      let final = first;
      let retried: Exchange | undefined;
      if (first.phase === "connect" && first.error !== "timeout" && targets.length > 1) {
        retried = first;
        final = await exchange((gw + 1) % targets.length, id, body, stream, { timeoutMs: 60_000 });
      }
      out.push({ id, stream, body, ok: succeeded(final, stream), final, retried });
    })();
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
  }
  await Promise.all(inflight);
  return { sendLagMaxMs };
}

// ---------------------------------------------------------------- rude

/** What a raw-socket exchange saw. */
interface RawResult {
  status: number;
  text: string;
  closedByServer: boolean;
  heldMs: number;
  t0: number;
  t1: number;
}

/**
 * A raw HTTP/1.1 exchange: writes head, then the parts of the body, each
 * after its delay (a part of null stops writing: the body stalls), and
 * resolves when the server closes the connection, or when stop() resolves.
 */
function rawExchange(gw: number, head: string, parts: Iterable<{ delayMs: number; data: string | null }>, stop: Promise<void>): Promise<RawResult> {
  const t = targets[gw]!;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: t.host, port: t.port });
    let text = "";
    let done = false;
    const finish = (closedByServer: boolean): void => {
      if (done) return;
      done = true;
      socket.destroy();
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const t1 = Date.now();
      resolve({ status: m ? Number(m[1]) : 0, text, closedByServer, heldMs: t1 - t0, t0, t1 });
    };
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      text += d;
      // An answer with a length (or Connection: close) is complete once that many bytes are in.
      const headEnd = text.indexOf("\r\n\r\n");
      const len = /\r\ncontent-length: (\d+)/i.exec(text.slice(0, headEnd === -1 ? undefined : headEnd));
      if (headEnd !== -1 && len && text.length >= headEnd + 4 + Number(len[1])) finish(true);
    });
    socket.on("error", () => finish(true));
    socket.on("close", () => finish(true));
    void stop.then(() => finish(false));
    socket.on("connect", async () => {
      socket.write(head);
      for (const p of parts) {
        if (p.delayMs > 0) await sleep(p.delayMs);
        if (done || p.data === null) return;
        socket.write(p.data);
      }
    });
  });
}

function rawHead(gw: number, contentLength: number, extra = ""): string {
  const t = targets[gw]!;
  return `POST /v1/chat/completions HTTP/1.1\r\nHost: ${t.host}:${t.port}\r\nContent-Type: application/json\r\n` +
    `Authorization: Bearer ${authKey}\r\nContent-Length: ${contentLength}\r\n${extra}\r\n`;
}

function rawExchangeRecord(r: RawResult, gw: number): Exchange {
  const x: Exchange = { gw, t0: r.t0, t1: r.t1, status: r.status, phase: r.status === 0 ? "connect" : "done", contentBytes: 0, contentChunks: 0, sawDone: false };
  const body = r.text.slice(r.text.indexOf("\r\n\r\n") + 4);
  try {
    const j = JSON.parse(body);
    if (j.usage) x.usage = { prompt: j.usage.prompt_tokens, completion: j.usage.completion_tokens };
  } catch {
    // Not a JSON answer (408, 431 from node:http, or nothing).
  }
  return x;
}

async function rude(seconds: number, out: RudeRecord[], stopping: () => boolean): Promise<void> {
  const until = Date.now() + seconds * 1000;
  const live = (): boolean => Date.now() < until && !stopping();
  let ended!: () => void;
  const end = new Promise<void>((resolve) => (ended = resolve));
  let n = 0;
  const next = (): { id: string; gw: number } => {
    n++;
    return { id: `r${n}`, gw: n % targets.length };
  };

  /** Runs one(i) every periodMs (open loop, never more than maxOpen at once) while the soak lasts. */
  const every = async (periodMs: number, maxOpen: number, one: () => Promise<void>): Promise<void> => {
    const open = new Set<Promise<void>>();
    while (live()) {
      if (open.size < maxOpen) {
        const p = one();
        open.add(p);
        void p.finally(() => open.delete(p));
      }
      await sleep(periodMs);
    }
    await Promise.all(open);
  };
  /** Keeps `count` connections of a kind open, each started again when the last one ends. */
  const keep = async (count: number, one: () => Promise<void>): Promise<void> => {
    await Promise.all(Array.from({ length: count }, async (_, i) => {
      await sleep(i * 700);
      while (live()) await one();
    }));
  };

  const loops = [
    // A stream abandoned after 1-6 content chunks.
    every(500, 50, async () => {
      const { id, gw } = next();
      const body = chatBody(id, true);
      const x = await exchange(gw, id, body, true, { timeoutMs: 60_000, leaveAfterChunks: 1 + (n % 6) });
      out.push({ id, kind: "disconnect", body, x });
    }),
    // A non-streamed request whose caller leaves after 0-100 ms (mostly before the answer).
    every(1000, 50, async () => {
      const { id, gw } = next();
      const body = chatBody(id, false);
      const x = await exchange(gw, id, body, false, { timeoutMs: 60_000, abortAfterMs: Math.floor(Math.random() * 100) });
      out.push({ id, kind: "abort", body, x });
    }),
    // Slowloris: the headers one byte a second, for ever (node:http's headersTimeout must end it).
    keep(4, async () => {
      const { id, gw } = next();
      const t = targets[gw]!;
      const head = `POST /v1/chat/completions HTTP/1.1\r\nHost: ${t.host}:${t.port}\r\n`;
      const trickle = function* () {
        for (;;) yield { delayMs: 1000, data: "a" };
      };
      const r = await rawExchange(gw, head + "X-Slow: ", trickle(), end);
      out.push({ id, kind: "slow-headers", x: rawExchangeRecord(r, gw), closedByServer: r.closedByServer, heldMs: r.heldMs });
    }),
    // A body sent in ten pieces over about ten seconds: slow, but it finishes, and is served.
    keep(2, async () => {
      const { id, gw } = next();
      const body = chatBody(id, false);
      const step = Math.ceil(body.length / 10);
      const parts = Array.from({ length: 10 }, (_, i) => ({ delayMs: 1000, data: body.slice(i * step, (i + 1) * step) }));
      const r = await rawExchange(gw, rawHead(gw, Buffer.byteLength(body), "Connection: close\r\n"), parts, end);
      out.push({ id, kind: "slow-body", body, x: rawExchangeRecord(r, gw), closedByServer: r.closedByServer, heldMs: r.heldMs });
    }),
    // Half a body, then nothing.
    keep(1, async () => {
      const { id, gw } = next();
      const body = chatBody(id, false);
      const r = await rawExchange(gw, rawHead(gw, Buffer.byteLength(body)), [{ delayMs: 0, data: body.slice(0, body.length >> 1) }, { delayMs: 0, data: null }], end);
      out.push({ id, kind: "stalled-body", body, x: rawExchangeRecord(r, gw), closedByServer: r.closedByServer, heldMs: r.heldMs });
    }),
    // 32 KB of headers (node:http's limit is 16 KB): 431.
    every(2000, 5, async () => {
      const { id, gw } = next();
      const body = chatBody(id, false);
      const r = await rawExchange(gw, rawHead(gw, Buffer.byteLength(body), `X-Big: ${"b".repeat(32 * 1024)}\r\n`), [{ delayMs: 0, data: body }], end);
      out.push({ id, kind: "big-headers", x: rawExchangeRecord(r, gw), closedByServer: r.closedByServer, heldMs: r.heldMs });
    }),
    // A body declared larger than server.maxBodyBytes (8 MiB): 413 before it is read.
    every(3000, 5, async () => {
      const { id, gw } = next();
      const r = await rawExchange(gw, rawHead(gw, 9 * 1024 * 1024), [{ delayMs: 0, data: `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"${"x".repeat(16 * 1024)}` }], end);
      out.push({ id, kind: "big-body", x: rawExchangeRecord(r, gw), closedByServer: r.closedByServer, heldMs: r.heldMs });
    }),
  ];
  // The time-boxed loops end by themselves; the kept connections are closed by the caller once the soak ends.
  while (live()) await sleep(100);
  ended();
  await Promise.all(loops);
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mode: { type: "string" },
      urls: { type: "string" },
      key: { type: "string" },
      seconds: { type: "string" },
      rate: { type: "string", default: "40" },
      out: { type: "string" },
    },
  });
  if (values.urls === undefined || values.key === undefined || values.seconds === undefined || values.out === undefined) {
    throw new Error("usage: soak-client.ts --mode steady|rude --urls U1,U2 --key KEY --seconds S [--rate R] --out FILE");
  }
  targets = values.urls.split(",").map((u) => {
    const url = new URL(u);
    return { host: url.hostname, port: Number(url.port), agent: new http.Agent({ keepAlive: true, maxSockets: Infinity }) };
  });
  authKey = values.key;
  let stop = false;
  process.on("SIGTERM", () => (stop = true));
  const seconds = Number(values.seconds);
  const t0 = Date.now();
  if (values.mode === "steady") {
    const out: SteadyRecord[] = [];
    const { sendLagMaxMs } = await steady(seconds, Number(values.rate), out, () => stop);
    writeFileSync(values.out, out.map((r) => JSON.stringify(r)).join("\n") + "\n");
    const ok = out.filter((r) => r.ok).length;
    console.log(JSON.stringify({ mode: "steady", sent: out.length, ok, sendLagMaxMs: Math.round(sendLagMaxMs), wallMs: Date.now() - t0 }));
  } else if (values.mode === "rude") {
    const out: RudeRecord[] = [];
    await rude(seconds, out, () => stop);
    writeFileSync(values.out, out.map((r) => JSON.stringify(r)).join("\n") + "\n");
    console.log(JSON.stringify({ mode: "rude", sent: out.length, wallMs: Date.now() - t0 }));
  } else {
    throw new Error(`--mode: want steady or rude, not ${values.mode}`);
  }
  for (const t of targets) t.agent.destroy();
}

await main();
