/**
 * Build helpers for the published packages (run by `npm run build`, which
 * `npm pack` runs through `prepack`).
 *
 *   node scripts/dist.ts clean DIR   remove DIR (stale output from a previous build)
 *   node scripts/dist.ts finish      complete the gateway's dist/ after tsc
 *
 * Why `finish`: tsc emits JavaScript only, but the server reads some files
 * relative to its own module at run time (`new URL("./pricing-table.json",
 * import.meta.url)`, `new URL("../ui/dist/", import.meta.url)` in app.ts).
 * dist/ mirrors the source tree (dist/server, dist/gen), so copying every
 * non-TypeScript file of server/ and gen/, and the committed web UI build
 * to dist/ui/dist/, keeps those paths true without touching the server. It
 * also gives the CLI its shebang, which server/cli.ts does not carry, so
 * that npm's `bin` link runs it with Node.
 */
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");
const SHEBANG = "#!/usr/bin/env node\n";

/** Every file under `dir` whose name does not end in .ts, as absolute paths. */
function runtimeFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

function finish(): void {
  if (!existsSync(join(dist, "server", "cli.js"))) throw new Error("dist/server/cli.js is missing: run tsc -p tsconfig.build.json first");
  for (const file of [...runtimeFiles(join(root, "server")), ...runtimeFiles(join(root, "gen"))]) {
    cpSync(file, join(dist, relative(root, file)));
  }
  const ui = join(root, "ui", "dist");
  if (!existsSync(join(ui, "index.html"))) throw new Error("ui/dist/index.html is missing: run npm run build:ui");
  cpSync(ui, join(dist, "ui", "dist"), { recursive: true });
  const cli = join(dist, "server", "cli.js");
  const js = readFileSync(cli, "utf8");
  if (!js.startsWith("#!")) writeFileSync(cli, SHEBANG + js);
  chmodSync(cli, 0o755);
}

const [command, arg] = process.argv.slice(2);
if (command === "clean" && arg !== undefined) rmSync(join(process.cwd(), arg), { recursive: true, force: true });
else if (command === "finish") finish();
else {
  process.stderr.write("usage: node scripts/dist.ts clean DIR | finish\n");
  process.exitCode = 2;
}
