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
 *   dist/server/response-store-writer.cjs
 *                                       the stored responses' writer thread, bundled the same way
 *   dist/server/vendor/<package>.cjs    the packages the server loads with import() only when a
 *                                       feature needs them (LAZY_PACKAGES), each bundled on its own
 *   dist/server/pricing-table.json      read at run time beside the bundle
 *   dist/ui/dist/                       the committed web UI build
 *
 * One file because start-up time went on module loading: the server is some
 * 1,400 modules (1,270 of them from node_modules, the lazily loaded ones
 * included), each resolved, read and compiled on its own. ioredis, pg,
 * openid-client, yaml and the OpenTelemetry SDK are imported with `import()`
 * by the server so that they cost nothing unless Redis, PostgreSQL, SSO, a
 * YAML file or tracing is configured. The first four have their own files
 * (vendor/): the bundle's source, which V8 holds in memory for as long as the
 * process runs, is then some 600 kB smaller. The OpenTelemetry SDK stays in
 * the bundle behind esbuild's lazy module wrapper (it shares
 * @opentelemetry/api's state with the server's tracing), neither run nor
 * compiled until that `import()` runs.
 *
 * No keepNames in the server bundle: it wraps every function and class in a
 * `__name()` call that runs at load (some 5,000, each a defineProperty that
 * gives the function its own hidden class): about 40 ms of start-up and 5 MB
 * of memory. Without it, only the names esbuild renames to avoid a clash at
 * the top level (`parse4`, `compileMessage2`) differ from the source, in stack
 * traces; no server code reads a function's or class's name. The vendor
 * files keep their names: oauth4webapi names its errors after
 * `this.constructor.name`, and ioredis tells a Cluster by its class name.
 *
 * The server finds its files relative to its module (`new URL(...,
 * import.meta.url)`): `import.meta.url` becomes the bundle's own URL, so
 * ./pricing-table.json, ../ui/dist/, ./request-log-worker<ext> and
 * ./response-store-writer<ext> (the extension of the bundle, .cjs) resolve
 * beside it, with no change to the server's code.
 *
 *   node scripts/build.ts [--out DIR]    (default dist)
 */
import { createHash } from "node:crypto";
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { build, type BuildOptions, type Plugin } from "esbuild";

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
  legalComments: "none",
  logLevel: "warning",
  metafile: true,
};

/**
 * Packages the server imports only with `import()`, for a feature that is off
 * by default; each becomes dist/server/vendor/<name>.cjs, which the bundle
 * require()s (relative to itself) when that import() runs.
 */
const LAZY_PACKAGES = ["ioredis", "pg", "openid-client", "yaml"];

/**
 * The server bundle's imports of LAZY_PACKAGES point at their own files:
 * `require("./vendor/<name>.cjs")` where the import() runs, or where the
 * importing module is first evaluated (import-litellm.ts, itself loaded with
 * import(), imports yaml statically).
 */
const lazyPackages: Plugin = {
  name: "lazy-packages",
  setup(b) {
    const filter = new RegExp(`^(${LAZY_PACKAGES.join("|")})$`);
    b.onResolve({ filter }, (args) => ({ path: `./vendor/${args.path}.cjs`, external: true }));
  },
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
    entryPoints: {
      [BUNDLE.replace(/\.cjs$/, "")]: "server/cli.ts",
      "request-log-worker": "server/telemetry/request-log-worker.ts",
      "response-store-writer": "server/responses/response-store-writer.ts",
    },
    outdir: out,
    outExtension: { ".js": ".cjs" },
    sourcemap: "linked",
    sourcesContent: false,
    plugins: [lazyPackages],
    // import() of a vendor file becomes require() (wrapped in a promise): a real import() from the
    // launcher's vm.Script would go through Node's experimental loader hook and print a warning.
    supported: { "dynamic-import": false },
  });
  await build({
    ...common,
    entryPoints: Object.fromEntries(LAZY_PACKAGES.map((p) => [p, p])),
    outdir: join(out, "vendor"),
    outExtension: { ".js": ".cjs" },
    // Bundling renames clashing top-level names; these packages read some classes' `.name`.
    keepNames: true,
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
