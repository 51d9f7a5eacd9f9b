import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, brotliDecompressSync, gunzipSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUiHandler, type UiHandler } from "../server/admin/ui-assets.ts";

// The web UI's static handler (server/admin/ui-assets.ts) over a small built
// folder: what it claims, redirects, compression, caching, security headers,
// the single-page-app fallback, and that nothing outside the folder (or the
// folder's in-memory copy) can be reached.

const INDEX = `<!doctype html><html><head><title>UI</title><script type="module" src="/ui/assets/app-abc123.js"></script></head><body>${"<div></div>".repeat(50)}</body></html>`;
const SCRIPT = `export const x = ${JSON.stringify("x".repeat(4000))};\n`;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw HTTP request, path sent byte for byte as given (no URL normalisation, unlike fetch). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Serves the handler; anything it declines answers 418 so the tests see it was declined. */
async function serve(handler: UiHandler): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (!handler(req, res)) {
      res.writeHead(418);
      res.end("declined");
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

let base: string;
let server: Server;

beforeAll(async () => {
  const root = mkdtempSync(join(tmpdir(), "sy-ui-"));
  const dir = join(root, "dist");
  mkdirSync(join(dir, "assets"), { recursive: true });
  writeFileSync(join(dir, "index.html"), INDEX);
  writeFileSync(join(dir, "assets", "app-abc123.js"), SCRIPT);
  // As the build writes them (ui/vite.config.ts): precompressed siblings, served, never listed as files.
  writeFileSync(join(dir, "assets", "app-abc123.js.br"), brotliCompressSync(SCRIPT));
  writeFileSync(join(dir, "assets", "app-abc123.js.gz"), gzipSync(SCRIPT));
  writeFileSync(join(dir, "assets", "app-abc123.css"), "body{}");
  writeFileSync(join(dir, "favicon.svg"), `<svg xmlns="http://www.w3.org/2000/svg">${" ".repeat(400)}</svg>`);
  // Outside the folder: must never be served.
  writeFileSync(join(root, "sy-ui-secret.txt"), "secret");
  ({ url: base, server } = await serve(createUiHandler(dir)));
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe("what the handler claims", () => {
  it("declines paths outside /ui", async () => {
    for (const p of ["/", "/v1/models", "/uix", "/ui-assets/x.js", "/healthz", "/ui/auth/oidc/start", "/ui/auth/oidc/callback?code=x"]) {
      expect((await raw(base, "GET", p)).status, p).toBe(418);
    }
  });

  it("redirects /ui to /ui/ with 308, keeping the query", async () => {
    const r = await raw(base, "GET", "/ui");
    expect(r.status).toBe(308);
    expect(r.headers.location).toBe("/ui/");
    expect((await raw(base, "GET", "/ui?x=1")).headers.location).toBe("/ui/?x=1");
  });

  it("answers only GET and HEAD", async () => {
    for (const m of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const r = await raw(base, m, "/ui/");
      expect(r.status, m).toBe(405);
      expect(r.headers.allow).toBe("GET, HEAD");
    }
    const head = await raw(base, "HEAD", "/ui/assets/app-abc123.js");
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers["content-length"])).toBe(Buffer.byteLength(SCRIPT));
  });
});

describe("serving files", () => {
  it("serves index.html at /ui/ with no-cache and the security headers", async () => {
    const r = await raw(base, "GET", "/ui/");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(r.headers["cache-control"]).toBe("no-cache");
    expect(r.body.toString()).toBe(INDEX);
    expect(r.headers["content-security-policy"]).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    expect(r.headers["x-content-type-options"]).toBe("nosniff");
    expect(r.headers["referrer-policy"]).toBe("no-referrer");
    expect(r.headers["x-frame-options"]).toBe("DENY");
    expect(r.headers.vary).toBe("Accept-Encoding");
  });

  it("marks hashed assets immutable; other files no-cache", async () => {
    const js = await raw(base, "GET", "/ui/assets/app-abc123.js");
    expect(js.headers["cache-control"]).toBe("public, max-age=31536000, immutable");
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    const css = await raw(base, "GET", "/ui/assets/app-abc123.css");
    expect(css.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(css.body.toString()).toBe("body{}");
    const svg = await raw(base, "GET", "/ui/favicon.svg");
    expect(svg.headers["content-type"]).toBe("image/svg+xml");
    expect(svg.headers["cache-control"]).toBe("no-cache");
  });

  it("picks brotli, then gzip, by Accept-Encoding and its q-values", async () => {
    const path = "/ui/assets/app-abc123.js";
    const br = await raw(base, "GET", path, { "accept-encoding": "gzip, deflate, br" });
    expect(br.headers["content-encoding"]).toBe("br");
    expect(brotliDecompressSync(br.body).toString()).toBe(SCRIPT);
    expect(Number(br.headers["content-length"])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(Buffer.byteLength(SCRIPT));

    const gz = await raw(base, "GET", path, { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT);

    const refusedBr = await raw(base, "GET", path, { "accept-encoding": "br;q=0, gzip;q=0.5" });
    expect(refusedBr.headers["content-encoding"]).toBe("gzip");
    const star = await raw(base, "GET", path, { "accept-encoding": "*" });
    expect(star.headers["content-encoding"]).toBe("br");
    const starButBr = await raw(base, "GET", path, { "accept-encoding": "br;q=0, *" });
    expect(starButBr.headers["content-encoding"]).toBe("gzip");

    for (const ae of [undefined, "identity", "deflate", "gzip;q=0, br;q=0"]) {
      const plain = await raw(base, "GET", path, ae === undefined ? {} : { "accept-encoding": ae });
      expect(plain.headers["content-encoding"], ae).toBeUndefined();
      expect(plain.body.toString()).toBe(SCRIPT);
      expect(plain.headers.vary).toBe("Accept-Encoding");
    }
    // Without precompressed siblings (the favicon here): a quick gzip made at start, no brotli.
    const svg = await raw(base, "GET", "/ui/favicon.svg", { "accept-encoding": "br, gzip" });
    expect(svg.headers["content-encoding"]).toBe("gzip");
    // The siblings themselves are not files of the UI.
    expect((await raw(base, "GET", "/ui/assets/app-abc123.js.br")).status).toBe(404);
    // Too small to be worth compressing: always identity.
    expect((await raw(base, "GET", "/ui/assets/app-abc123.css", { "accept-encoding": "br" })).headers["content-encoding"]).toBeUndefined();
  });

  it("answers 304 to a matching If-None-Match", async () => {
    const first = await raw(base, "GET", "/ui/");
    const etag = first.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await raw(base, "GET", "/ui/", { "if-none-match": etag });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });
});

describe("the app's own routes and unknown paths", () => {
  it("answers index.html for extensionless paths (client-side routes)", async () => {
    for (const p of ["/ui/keys", "/ui/keys/key_0123", "/ui/audit?x=1", "/ui/requests/"]) {
      const r = await raw(base, "GET", p);
      expect(r.status, p).toBe(200);
      expect(r.body.toString(), p).toBe(INDEX);
      expect(r.headers["cache-control"]).toBe("no-cache");
    }
  });

  it("answers 404 for unknown files and unknown assets, with the security headers", async () => {
    for (const p of ["/ui/missing.js", "/ui/assets/app-zzz.js", "/ui/assets/nothing", "/ui/index.htm", "/ui/favicon.ico"]) {
      const r = await raw(base, "GET", p);
      expect(r.status, p).toBe(404);
      expect(r.headers["content-security-policy"]).toContain("default-src 'none'");
      expect(r.headers["x-content-type-options"]).toBe("nosniff");
    }
  });

  it("never reaches outside the folder, however the path is spelled", async () => {
    const attempts = [
      "/ui/../package.json",
      "/ui/../../package.json",
      "/ui/%2e%2e/package.json",
      "/ui/%2E%2E/%2E%2E/package.json",
      "/ui/..%2fpackage.json",
      "/ui/..%2Fpackage.json",
      "/ui/..%5cpackage.json",
      "/ui/..\\package.json",
      "/ui/assets/../../sy-ui-secret.txt",
      "/ui/%2e%2e%2fsy-ui-secret.txt",
      "/ui/./index.html",
      "/ui//etc/passwd",
      "/ui/%00.js",
      "/ui/assets/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    ];
    for (const p of attempts) {
      const r = await raw(base, "GET", p);
      const text = r.body.toString();
      expect(text, p).not.toContain("\"name\": \"switchyard\"");
      expect(text, p).not.toContain("secret");
      expect(text, p).not.toContain("root:");
      // Either not found, or the app shell (an extensionless client route): never a file from elsewhere.
      if (r.status === 200) expect(text, p).toBe(INDEX);
      else expect(r.status, p).toBe(404);
    }
  });
});

describe("without a build", () => {
  it("answers 503 saying how to build the UI", async () => {
    const { url, server: s } = await serve(createUiHandler(join(tmpdir(), "sy-ui-does-not-exist")));
    try {
      const r = await raw(url, "GET", "/ui/");
      expect(r.status).toBe(503);
      expect(r.body.toString()).toContain("npm run build:ui");
      expect(r.headers["x-frame-options"]).toBe("DENY");
      expect((await raw(url, "GET", "/ui")).status).toBe(308);
      expect((await raw(url, "GET", "/v1/models")).status).toBe(418);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });
});
