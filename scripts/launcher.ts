/**
 * The `switchyard` command as shipped (dist/server/cli.cjs, built from this
 * file by scripts/build.ts): it runs the bundled gateway
 * (dist/server/switchyard.cjs) through V8's code cache.
 *
 * Why not just `require()` the bundle: start-up time goes on parsing and
 * compiling about 3 MB of JavaScript. Node's own compile cache
 * (NODE_COMPILE_CACHE) stores a module's code right after compiling it, which
 * holds only its top-level code: the functions start-up actually runs are
 * compiled lazily, later, and are not in it. Here the bundle is compiled with
 * `vm.Script`, and once the gateway has started, `script.createCachedData()`
 * serialises the code V8 has compiled by then, so the next start reads
 * compiled code for everything start-up runs. On a miss or a rejected cache
 * the bundle compiles as usual and the cache is (re)written in the background.
 *
 * Where the cache lives: SWITCHYARD_CODE_CACHE (a directory; "off" or
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off), else
 * $XDG_CACHE_HOME/switchyard or ~/.cache/switchyard. A cache file is code the
 * process will run, so it is read only when it and its directory belong to this
 * user or root and are not writable by group or others. The file name holds
 * the bundle's content hash, the Node version and the architecture; V8 itself
 * rejects a cache made by another V8 version or with other V8 flags.
 * NODE_DEBUG=switchyard prints what happened to the cache on standard error.
 * SWITCHYARD_CODE_CACHE_WRITE=exit writes it when the process exits instead
 * (for image builds, which stop the gateway once it is ready).
 *
 * Memory once started: start-up allocates fast (module top levels, protobuf
 * descriptors, the configuration), so V8 grows the young generation to 16 MB
 * per semi-space, and the source is held twice (as read and as wrapped)
 * until a full collection. V8's memory reducer gives that back only some
 * 10 s after start. Once the gateway is up (SETTLE_AFTER_MS, after the cache
 * is written), if the event loop has been idle meanwhile, one full
 * memory-reducing collection (V8's "last resort" flavour, about 35 ms) gives
 * it back at once: about 20 MB less resident memory for an idle gateway. A
 * busy gateway skips it (the memory reducer and the load decide). The `gc`
 * function comes from a throw-away context made while --expose-gc is on; the
 * flag is off again at once (a code cache records the flags it was made with).
 * SWITCHYARD_SETTLE_GC=off leaves it to V8.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, type Stats } from "node:fs";
import { createRequire, wrap } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { debuglog } from "node:util";
import { setFlagsFromString } from "node:v8";
import { constants as vmConstants, runInNewContext, Script } from "node:vm";

/** Replaced at build time: the bundle's file name (beside this file) and its content hash. */
declare const SWITCHYARD_BUNDLE: string;
declare const SWITCHYARD_BUNDLE_HASH: string;

/** Milliseconds after loading when a missing or rejected cache is written (the gateway is up by then). */
const WRITE_AFTER_MS = 1500;
/** Milliseconds after loading when start-up's garbage is collected, after the cache is written. */
const SETTLE_AFTER_MS = 1600;
/** Event-loop utilisation over the last IDLE_WINDOW_MS above which the gateway is busy: no collection then. */
const BUSY_ELU = 0.05;
const IDLE_WINDOW_MS = 500;

const bundle = join(__dirname, SWITCHYARD_BUNDLE);
const debug = debuglog("switchyard");

function cacheDir(): string | undefined {
  const env = process.env;
  if (env["NODE_DISABLE_COMPILE_CACHE"] || env["SWITCHYARD_CODE_CACHE"] === "off") return undefined;
  if (env["SWITCHYARD_CODE_CACHE"]) return env["SWITCHYARD_CODE_CACHE"];
  let base = env["XDG_CACHE_HOME"];
  if (!base) {
    try {
      base = join(homedir(), ".cache");
    } catch {
      return undefined; // No home directory (a user without a passwd entry and no HOME).
    }
  }
  return join(base, "switchyard");
}

/** Owned by this user or root, and not writable by group or others. */
function trusted(st: Stats): boolean {
  const uid = process.getuid?.() ?? 0;
  return (st.uid === uid || st.uid === 0) && (st.mode & 0o022) === 0;
}

/** The cache file's bytes when it exists and is trusted; otherwise undefined. */
function readCache(dir: string, file: string): Buffer | undefined {
  let fd: number;
  try {
    if (!trusted(statSync(dir))) return void debug("code cache ignored: %s may be written by others", dir);
    fd = openSync(file, "r");
  } catch {
    return undefined;
  }
  try {
    if (trusted(fstatSync(fd))) return readFileSync(fd);
    return void debug("code cache ignored: %s may be written by others", file);
  } finally {
    closeSync(fd);
  }
}

/** Writes the cache beside its final name, then renames it over (a concurrent start never reads half a file). */
function writeCache(dir: string, file: string, data: Buffer): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!trusted(statSync(dir))) return void debug("code cache not written: %s may be written by others", dir);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, data, { mode: 0o600 });
    renameSync(tmp, file);
    debug("code cache written: %s (%d bytes)", file, data.length);
  } catch (err) {
    // A read-only or missing cache directory only costs start-up time.
    debug("code cache not written: %s", (err as Error).message);
  }
}

/** One memory-reducing full collection once the gateway has started, if it is idle (see the top of this file). */
function settleMemory(): void {
  if (process.env["SWITCHYARD_SETTLE_GC"] === "off") return;
  let before: ReturnType<typeof performance.eventLoopUtilization> | undefined;
  setTimeout(() => (before = performance.eventLoopUtilization()), SETTLE_AFTER_MS - IDLE_WINDOW_MS).unref();
  setTimeout(() => {
    const busy = before === undefined ? 1 : performance.eventLoopUtilization(before).utilization;
    if (busy > BUSY_ELU) return void debug("no settling collection: the event loop is busy (%d)", busy);
    try {
      setFlagsFromString("--expose-gc");
      let gc: ((options: object) => void) | undefined;
      try {
        gc = runInNewContext("gc") as (options: object) => void;
      } finally {
        setFlagsFromString("--no-expose-gc");
      }
      const t = performance.now();
      gc({ type: "major", execution: "sync", flavor: "last-resort" });
      debug("settling collection: %d ms", Math.round(performance.now() - t));
    } catch (err) {
      debug("no settling collection: %s", (err as Error).message);
    }
  }, SETTLE_AFTER_MS).unref();
}

/** Runs the bundle through vm.Script and its code cache. */
function runCached(): void {
  const dir = cacheDir();
  const file = dir === undefined ? undefined : join(dir, `switchyard-${SWITCHYARD_BUNDLE_HASH}-${process.version}-${process.arch}.v8cache`);
  const cachedData = dir === undefined || file === undefined ? undefined : readCache(dir, file);
  const script = new Script(wrap(readFileSync(bundle, "utf8")), {
    filename: bundle,
    cachedData,
    importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  debug("code cache %s: %s", file === undefined ? "off" : cachedData === undefined ? "missing" : script.cachedDataRejected === true ? "rejected" : "accepted", file ?? "");
  if (dir !== undefined && file !== undefined && (cachedData === undefined || script.cachedDataRejected === true)) {
    const write = (): void => writeCache(dir, file, script.createCachedData());
    // An image build starts the gateway, waits until it is ready, then stops it (deploy/image/warm-code-cache.mjs):
    // the cache is written at exit there, so a slow builder (an emulated architecture) still caches all of start-up.
    if (process.env["SWITCHYARD_CODE_CACHE_WRITE"] === "exit") process.once("exit", write);
    else setTimeout(write, WRITE_AFTER_MS).unref();
  }
  // Not when the cache is written at exit: the collection may drop compiled code the cache should hold.
  if (process.env["SWITCHYARD_CODE_CACHE_WRITE"] !== "exit") settleMemory();
  const module_ = { exports: {} };
  (script.runInThisContext() as (...args: unknown[]) => void).call(module_.exports, module_.exports, createRequire(bundle), module_, bundle, dirname(bundle));
}

// Source maps (node --enable-source-maps) apply to files Node loads itself, not to vm.Script code.
if (process.sourceMapsEnabled) {
  debug("code cache not used: source maps are on");
  require(bundle);
} else runCached();
