/**
 * Build helper for the SDK package (sdk-ts's `prebuild`):
 *
 *   node scripts/dist.ts clean DIR   remove DIR (stale output from a previous build)
 *
 * The gateway itself is built by scripts/build.ts (a bundle, see there).
 */
import { rmSync } from "node:fs";
import { join } from "node:path";

const [command, arg] = process.argv.slice(2);
if (command === "clean" && arg !== undefined) rmSync(join(process.cwd(), arg), { recursive: true, force: true });
else {
  process.stderr.write("usage: node scripts/dist.ts clean DIR\n");
  process.exitCode = 2;
}
