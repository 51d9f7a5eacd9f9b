/**
 * Serves the admin web UI (ui/dist, built by `npm run build:ui`) under /ui/.
 *
 * Every file is read into memory once, when the handler is created, with the
 * gzip and brotli variants the build wrote beside it (ui/vite.config.ts; a
 * build without them gets a quick gzip here); a request only picks a buffer from
 * a map, so no request path ever reaches the file system (no traversal, no
 * per-request I/O). Paths without a file extension that name no file are the
 * single-page app's own routes and get index.html. Paths under /ui/auth/ are
 * left to the server (single sign-on, see proto/switchyard/v1/auth.proto).
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { NodeRequest, NodeResponse } from "../transport/node-http.ts";

/** Answers a request when its path is /ui or under /ui/ (true), or leaves it to the caller (false). */
export type UiHandler = (req: NodeRequest, res: NodeResponse) => boolean;

interface Asset {
  type: string;
  etag: string;
  cache: string;
  identity: Buffer;
  gzip?: Buffer | undefined;
  br?: Buffer | undefined;
}

/**
 * The policy allows only the UI's own scripts, styles and Connect calls; no
 * inline code, no framing. `img-src data:` is for icons drawn as data URLs.
 */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
};

const TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  mjs: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  map: "application/json",
  svg: "image/svg+xml",
  txt: "text/plain; charset=utf-8",
  png: "image/png",
  ico: "image/x-icon",
  webp: "image/webp",
  woff2: "font/woff2",
};

/** Types worth compressing; images and fonts already are. */
const COMPRESSIBLE = new Set(["html", "js", "mjs", "css", "json", "map", "svg", "txt"]);

const IMMUTABLE = "public, max-age=31536000, immutable";
const PREFIX = "/ui/";

/**
 * Builds the handler over a built UI folder. A missing folder is not an
 * error: the gateway still starts, and /ui/ says how to build the UI.
 */
export function createUiHandler(dir: string | URL): UiHandler {
  const root = typeof dir === "string" ? dir : fileURLToPath(dir);
  const assets = loadAssets(root);
  const index = assets?.get(PREFIX);

  return (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    if (path !== "/ui" && !path.startsWith(PREFIX)) return false;
    if (path.startsWith("/ui/auth/")) return false;

    if (req.method !== "GET" && req.method !== "HEAD") {
      sendText(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
      return true;
    }
    if (path === "/ui") {
      // 308 keeps the method; the query string goes along.
      sendText(res, 308, "", { location: PREFIX + (q === -1 ? "" : url.slice(q)) });
      return true;
    }
    if (assets === undefined || index === undefined) {
      sendText(res, 503, "The web UI is not built. Run `npm run build:ui`, then restart the gateway.\n");
      return true;
    }
    const asset = assets.get(path) ?? (isAppRoute(path) ? index : undefined);
    if (asset === undefined) {
      sendText(res, 404, "not found\n");
      return true;
    }
    sendAsset(req, res, asset);
    return true;
  };
}

/** A path the app routes itself: no file extension in its last segment, and not under /ui/assets/. */
function isAppRoute(path: string): boolean {
  if (path.startsWith("/ui/assets/")) return false;
  const last = path.slice(path.lastIndexOf("/") + 1);
  return !last.includes(".");
}

function loadAssets(root: string): Map<string, Asset> | undefined {
  if (!existsSync(join(root, "index.html"))) return undefined;
  const out = new Map<string, Asset>();
  for (const name of readdirSync(root, { recursive: true, encoding: "utf8" })) {
    const file = join(root, name);
    if (!statSync(file).isFile() || name.endsWith(".gz") || name.endsWith(".br")) continue;
    const rel = relative(root, file).split(sep).join("/");
    const ext = rel.slice(rel.lastIndexOf(".") + 1).toLowerCase();
    const body = readFileSync(file);
    const asset: Asset = {
      type: TYPES[ext] ?? "application/octet-stream",
      etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`,
      // Vite names everything under assets/ by content hash; the rest may change under the same name.
      cache: rel.startsWith("assets/") ? IMMUTABLE : "no-cache",
      identity: body,
    };
    if (COMPRESSIBLE.has(ext) && body.length > 256) {
      // Precompressed by the build; compressing here at the best settings would cost seconds of start-up.
      asset.gzip = smaller(existsSync(`${file}.gz`) ? readFileSync(`${file}.gz`) : gzipSync(body, { level: 6 }), body);
      asset.br = existsSync(`${file}.br`) ? smaller(readFileSync(`${file}.br`), body) : undefined;
    }
    out.set(rel === "index.html" ? PREFIX : PREFIX + rel, asset);
  }
  return out;
}

function smaller(candidate: Buffer, original: Buffer): Buffer | undefined {
  return candidate.length < original.length ? candidate : undefined;
}

function sendAsset(req: NodeRequest, res: NodeResponse, asset: Asset): void {
  const headers: Record<string, string | number> = {
    ...SECURITY_HEADERS,
    "content-type": asset.type,
    "cache-control": asset.cache,
    etag: asset.etag,
    vary: "Accept-Encoding",
  };
  if (req.headers["if-none-match"] === asset.etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  const encoding = pickEncoding(req.headers["accept-encoding"], asset);
  const body = encoding === undefined ? asset.identity : asset[encoding]!;
  if (encoding !== undefined) headers["content-encoding"] = encoding;
  headers["content-length"] = body.length;
  res.writeHead(200, headers);
  if (req.method === "HEAD") res.end();
  else res.end(body);
}

/**
 * Brotli, then gzip, among the variants this asset has and the client
 * accepts with a non-zero q-value (RFC 9110 §12.5.3).
 */
function pickEncoding(header: string | string[] | undefined, asset: Asset): "br" | "gzip" | undefined {
  if (typeof header !== "string" || header === "") return undefined;
  const q = new Map<string, number>();
  for (const part of header.split(",")) {
    const [name = "", ...params] = part.trim().toLowerCase().split(";");
    const weight = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    q.set(name.trim(), weight === undefined ? 1 : Number(weight.slice(2)) || 0);
  }
  const ok = (coding: string): boolean => (q.get(coding) ?? q.get("*") ?? 0) > 0;
  if (asset.br !== undefined && ok("br")) return "br";
  if (asset.gzip !== undefined && ok("gzip")) return "gzip";
  return undefined;
}

function sendText(res: NodeResponse, status: number, text: string, extra: Record<string, string> = {}): void {
  const body = Buffer.from(text);
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": "text/plain; charset=utf-8",
    "content-length": body.length,
    "cache-control": "no-store",
    ...extra,
  });
  res.end(body);
}
