import { watch, type FSWatcher } from "node:fs";
import type { Logger } from "../telemetry/log.ts";
import { checkExposure } from "./exposure.ts";
import { changedFields, effectiveConfig, summarize } from "./fields.ts";
import { ConfigError, deepFreeze, loadConfig, type LoadOptions } from "./load.ts";
import type { Config } from "./schema.ts";

/**
 * Live configuration: the configuration in effect as ONE immutable
 * snapshot, replaced whole when the file is re-read (on change, on SIGHUP,
 * on ReloadConfig). A new file is loaded and validated completely, the
 * fields that need a restart keep their running values (and are reported),
 * the gateway's parts take the live fields (`apply`, which may still refuse),
 * and only then is the snapshot swapped. Requests read `current` once when
 * they start, so those in flight keep what they started with. A bad file
 * leaves everything as it was and says why, with the bad field's path.
 */
export interface ConfigState {
  readonly config: Config;
  /** The file it came from; undefined when it came from the environment. */
  readonly file: string | undefined;
  readonly loadedAtMs: number;
  /** Fields the file changes that take effect only after a restart. */
  readonly restartPending: readonly string[];
  /** Why the last reload was refused (cleared by a good one). */
  readonly lastError: string | undefined;
  readonly lastErrorAtMs: number;
}

/** What set a reload off: the file changed, SIGHUP, or ReloadConfig. */
export type ReloadTrigger = "file" | "signal" | "rpc";

export interface ReloadResult {
  /** Live fields that changed ("aliases.fast", "providers"). */
  changed: string[];
  restartPending: string[];
  before: Record<string, unknown>;
  after: Record<string, unknown>;
  state: ConfigState;
}

export interface ConfigReloader {
  /** The snapshot in effect: read it once per request. */
  readonly current: ConfigState;
  /** Re-reads the file; throws ConfigError (nothing changes) when it is invalid or cannot be applied. */
  reload(trigger: ReloadTrigger): Promise<ReloadResult>;
  /** Re-reads the file whenever it changes (debounced; survives editors that replace it). */
  watch(): void;
  close(): void;
}

/** A reload the audit log should show (file and signal reloads; RPC ones are audited by the access table). */
export interface ReloadAudit {
  trigger: ReloadTrigger;
  file: string;
  outcome: "ok" | "invalid_config";
  before: unknown;
  after: unknown;
}

export interface ConfigReloaderOptions {
  initial: Config;
  /** Without a file there is nothing to re-read: reload refuses. */
  file?: string | undefined;
  /** What the file was first loaded with (command-line overrides, environment), reused on every reload. */
  load?: Omit<LoadOptions, "file"> | undefined;
  /**
   * Puts the live fields of `next` into effect, all or nothing, synchronously.
   * Throws (a ConfigError, or a GatewayError naming what does not route) to refuse.
   */
  apply(next: Config, previous: Config): void;
  logger: Logger;
  audit?: ((entry: ReloadAudit) => void) | undefined;
  /** File-change debounce; default 200 ms. */
  debounceMs?: number | undefined;
}

export function createConfigReloader(o: ConfigReloaderOptions): ConfigReloader {
  const debounceMs = o.debounceMs ?? 200;
  let state: ConfigState = { config: o.initial, file: o.file, loadedAtMs: Date.now(), restartPending: [], lastError: undefined, lastErrorAtMs: 0 };
  // Reloads run one at a time, in the order asked.
  let queue: Promise<unknown> = Promise.resolve();
  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function run(trigger: ReloadTrigger): Promise<ReloadResult> {
    const file = o.file;
    if (file === undefined) {
      throw new ConfigError("the gateway was started without a configuration file (settings came from the environment): nothing to reload");
    }
    const prev = state;
    const before = summarize(prev.config);
    try {
      const loaded = await loadConfig({ ...o.load, file });
      const pending: string[] = [];
      const next = deepFreeze(effectiveConfig(prev.config, loaded, pending));
      checkExposure(next);
      const changed = changedFields(prev.config, next);
      const unchanged = changed.length === 0 && pending.join() === prev.restartPending.join();
      if (!unchanged) {
        try {
          o.apply(next, prev.config);
        } catch (err) {
          throw err instanceof ConfigError ? err : new ConfigError(`invalid configuration (${file}): ${(err as Error).message}`);
        }
      }
      // The swap: one assignment.
      state = unchanged && prev.lastError === undefined ? prev : { config: next, file, loadedAtMs: unchanged ? prev.loadedAtMs : Date.now(), restartPending: pending, lastError: undefined, lastErrorAtMs: 0 };
      const after = summarize(next);
      if (unchanged) {
        o.logger.debug("configuration file re-read: nothing changed", { trigger, file });
      } else {
        o.logger.info("configuration reloaded", { trigger, file, changed });
        for (const field of pending) o.logger.warn(`${field} changed in the file but needs a restart; the running value stays`, { field, file });
        if (trigger !== "rpc") o.audit?.({ trigger, file, outcome: "ok", before, after: { ...after, changed, restartPending: pending } });
      }
      return { changed, restartPending: pending, before, after, state };
    } catch (err) {
      const message = (err as Error).message;
      state = { ...state, lastError: message, lastErrorAtMs: Date.now() };
      o.logger.error("configuration reload refused; the running configuration stays", { trigger, file, error: message });
      if (trigger !== "rpc") o.audit?.({ trigger, file, outcome: "invalid_config", before, after: { error: message } });
      throw err instanceof ConfigError ? err : new ConfigError(message);
    }
  }

  function schedule(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) reloader.reload("file").catch(() => {}); // refused: logged and audited already
    }, debounceMs);
    timer.unref();
  }

  /**
   * Watches the file itself. Editors and config managers replace it by
   * rename, which ends a watch on the old file: then the watch is armed
   * again on the path (retrying while the path is briefly missing).
   */
  function arm(): void {
    if (closed || o.file === undefined) return;
    try {
      watcher = watch(o.file, { persistent: false }, (event) => {
        schedule();
        if (event === "rename") rearm();
      });
      watcher.on("error", rearm);
    } catch {
      const retry = setTimeout(arm, debounceMs);
      retry.unref();
    }
  }

  function rearm(): void {
    watcher?.close();
    watcher = undefined;
    const again = setTimeout(() => {
      arm();
      schedule(); // the new file may have landed between the two watches
    }, Math.min(50, debounceMs));
    again.unref();
  }

  const reloader: ConfigReloader = {
    get current() {
      return state;
    },
    reload(trigger) {
      const p = queue.then(() => run(trigger));
      queue = p.catch(() => {});
      return p;
    },
    watch() {
      if (watcher === undefined) arm();
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
  return reloader;
}
