/**
 * The floor: the least any Node gateway does per request. An HTTP server
 * that reads the body and forwards it with undici, then relays the answer
 * (JSON or SSE) chunk by chunk: no parsing, no routing, no accounting.
 * Run it in place of the gateway to see what Node's HTTP stack itself costs
 * on this machine:
 *
 *   node bench/run.ts --gateway-cmd "node bench/floor/proxy.ts {port} {upstream}"
 *
 * With --answer it does not forward at all: it answers every POST with the
 * upstream's answer to the first one, fetched at start (the floor for a
 * cache hit).
 */
import { createServer } from "node:http";
import { Pool } from "undici";

const [portArg, upstreamArg, mode] = process.argv.slice(2);
if (portArg === undefined || upstreamArg === undefined) {
  process.stderr.write("usage: node bench/floor/proxy.ts PORT UPSTREAM_BASE_URL [--answer]\n");
  process.exit(2);
}
const upstream = new URL(upstreamArg);
const base = upstream.pathname.replace(/\/$/, "");
const pool = new Pool(upstream.origin, { connections: 512 });
const headers = { "content-type": "application/json", authorization: "Bearer sk-bench" };

let canned: Buffer | undefined;
if (mode === "--answer") {
  const body = JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "x".repeat(900) }] });
  const r = await pool.request({ method: "POST", path: `${base}/chat/completions`, headers, body });
  canned = Buffer.from(await r.body.arrayBuffer());
}

createServer(async (req, res) => {
  if (req.method !== "POST") {
    res.end("ok"); // health checks
    return;
  }
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (canned !== undefined) {
    res.writeHead(200, { "content-type": "application/json" }).end(canned);
    return;
  }
  const path = base + (req.url ?? "/").replace(/^\/v1/, "");
  const r = await pool.request({ method: "POST", path, headers, body: Buffer.concat(chunks) });
  res.writeHead(r.statusCode, { "content-type": String(r.headers["content-type"] ?? "application/json") });
  for await (const c of r.body) res.write(c);
  res.end();
}).listen(Number(portArg), "127.0.0.1");
