import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import preact from "@preact/preset-vite";
import { defineConfig, type Plugin } from "vite";

const DIST = fileURLToPath(new URL("dist", import.meta.url));

/**
 * Writes a .gz and a .br beside every compressible file, once, at build time:
 * the gateway serves them as they are and never compresses at start (brotli
 * at its best quality takes seconds here). Both outputs are deterministic.
 */
function precompress(): Plugin {
  return {
    name: "switchyard-precompress",
    apply: "build",
    closeBundle() {
      for (const name of readdirSync(DIST, { recursive: true, encoding: "utf8" })) {
        const file = join(DIST, name);
        if (!statSync(file).isFile() || !/\.(html|js|css|svg|json|txt)$/.test(name)) continue;
        const body = readFileSync(file);
        if (body.length <= 256) continue;
        writeFileSync(`${file}.gz`, gzipSync(body, { level: 9 }));
        writeFileSync(`${file}.br`, brotliCompressSync(body, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
        }));
      }
    },
  };
}

/**
 * The admin web UI: built into ui/dist, which is committed and served by the
 * gateway at /ui/ (server/admin/ui-assets.ts). The output must be the same
 * for the same input (CI rebuilds and diffs it), so file names carry content
 * hashes only and no source maps or timestamps are written.
 */
export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/ui/",
  publicDir: "public",
  plugins: [preact({ prerender: { enabled: false }, devtoolsInProd: false }), precompress()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    // The CSP allows no inline code: keep every asset a file, and skip the preload polyfill.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    reportCompressedSize: true,
  },
  server: {
    // Dev server: the generated descriptors live in ../gen.
    fs: { allow: [fileURLToPath(new URL("..", import.meta.url))] },
  },
});
