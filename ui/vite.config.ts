import { fileURLToPath } from "node:url";
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

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
  plugins: [preact({ prerender: { enabled: false }, devtoolsInProd: false })],
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
