/**
 * Builds the gateway as shipped, in the npm package and the container image
 * (`npm run build`; `npm pack` runs it through `prepack`):
 *
 *   dist/server/cli.cjs                 the `switchyard` command (scripts/launcher.ts):
 *                                       runs the bundle through V8's code cache
 *   dist/server/switchyard.cjs          server/cli.ts and everything it imports, dependencies
 *                                       included, in one CommonJS file (esbuild)
 *   dist/server/switchyard.cjs.map      its source map (node --enable-source-maps, with which the
 *                                       launcher loads the bundle with require(), without the cache)
 *   dist/server/request-log-worker.cjs  the request log's worker thread, bundled the same way
 *   dist/server/pricing-table.json      read at run time beside the bundle
 *   dist/ui/dist/                       the committed web UI build
 *
 * One file because start-up time went on module loading: the server is some
 * 1,400 modules (1,270 of them from node_modules, the lazily loaded ones
 * included), each resolved, read and compiled on its own. ioredis, pg
 * and the OpenTelemetry SDK are imported with `import()` by the server so
 * that they cost nothing unless Redis, PostgreSQL or tracing is configured;
 * in the bundle each stays behind esbuild's lazy module wrapper, so it is
 * neither run nor compiled until that `import()` runs (V8 only pre-parses it,
 * and not even that when the code cache is used).
 *
 * The server finds its files relative to its module (`new URL(...,
 * import.meta.url)`): `import.meta.url` becomes the bundle's own URL, so
 * ./pricing-table.json, ../ui/dist/ and ./request-log-worker<ext> (the
 * extension of the bundle, .cjs) resolve beside it, with no change to the
 * server's code.
 *
 *   node scripts/build.ts [--out DIR]    (default dist)
 */
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build, type BuildOptions } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { values } = parseArgs({ options: { out: { type: "string", default: "dist" } } });
const dist = resolve(root, values.out);
const out = join(dist, "server");

/** The bundle's file name; the launcher loads it from its own folder. */
const BUNDLE = "switchyard.cjs";

/**
 * Shared by the server bundle and the worker. ESM in, CommonJS out (so the
 * launcher can compile it with vm.Script and cache the result); "use strict"
 * keeps the ES modules' strict semantics. `require` inside the bundle is the
 * real one (for Node's built-ins and pg's optional pg-native, which is left out).
 */
const common: BuildOptions = {
  absWorkingDir: root,
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node22.18",
  external: ["pg-native"],
  define: { "import.meta.url": "__switchyardModuleUrl" },
  banner: { js: '"use strict";\nconst __switchyardModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
  minifyWhitespace: true,
  minifySyntax: true,
  // Short lines: an uncaught error prints its source line.
  lineLimit: 200,
  // Bundling renames clashing top-level names; keep `.name` of classes and functions as written.
  keepNames: true,
  legalComments: "none",
  logLevel: "warning",
  metafile: true,
};

function hash(file: string): string {
  return createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 16);
}

async function main(): Promise<void> {
  const ui = join(root, "ui", "dist");
  if (!existsSync(join(ui, "index.html"))) throw new Error("ui/dist/index.html is missing: run npm run build:ui");
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });

  await build({
    ...common,
    entryPoints: { [BUNDLE.replace(/\.cjs$/, "")]: "server/cli.ts", "request-log-worker": "server/telemetry/request-log-worker.ts" },
    outdir: out,
    outExtension: { ".js": ".cjs" },
    sourcemap: "linked",
    sourcesContent: false,
  });

  // The launcher: the cache key is the bundle's content hash (V8 checks only the source's length).
  await build({
    absWorkingDir: root,
    entryPoints: ["scripts/launcher.ts"],
    outfile: join(out, "cli.cjs"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node22.18",
    define: { SWITCHYARD_BUNDLE: JSON.stringify(BUNDLE), SWITCHYARD_BUNDLE_HASH: JSON.stringify(hash(join(out, BUNDLE))) },
    banner: { js: "#!/usr/bin/env node\n// The switchyard command: built from scripts/launcher.ts by scripts/build.ts." },
    legalComments: "none",
    logLevel: "warning",
  });
  chmodSync(join(out, "cli.cjs"), 0o755);

  cpSync(join(root, "server", "governance", "pricing-table.json"), join(out, "pricing-table.json"));
  cpSync(ui, join(dist, "ui", "dist"), { recursive: true });
}

await main();
