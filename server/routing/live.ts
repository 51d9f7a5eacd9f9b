import { create } from "@bufbuild/protobuf";
import { ModelSchema, type Model } from "../../gen/switchyard/v1/models_pb.ts";
import type { Config, ProviderConfig } from "../config/schema.ts";
import { invalid } from "../errors/errors.ts";
import { createProvider as createProviderDefault } from "../providers/registry.ts";
import type { Provider } from "../providers/types.ts";
import type { Logger } from "../telemetry/log.ts";
import { createModelCatalog, type ModelCatalog } from "./catalog.ts";
import type { HealthRegistry } from "./health.ts";
import { checkRoutes, createPlanner, type PlanInput, type Route } from "./plan.ts";
import { startProbes } from "./probe.ts";
import { createResolver, type Target } from "./resolve.ts";

/**
 * Live routing: the providers, aliases and routes requests are sent by, as
 * ONE immutable snapshot that is replaced whole. The configuration's part
 * changes when the file is reloaded, the admin part through ProviderService;
 * each leaves the other as it is. A change is built
 * and validated completely before it is swapped in with one assignment; a
 * bad change is refused with the reason and the old snapshot keeps serving.
 * A request plans once, so it keeps the snapshot it started with: its
 * targets hold their providers even after they leave the snapshot.
 *
 * Providers whose settings did not change are reused (their connection
 * pools and discovered models with them). Ones that left are closed after a
 * grace period longer than any request may still start an attempt on them
 * (routing.deadlineMs); closing waits for calls still running (undici's
 * graceful close), so streams in flight finish.
 */
export interface RoutingSnapshot {
  readonly providers: ReadonlyMap<string, Provider>;
  /** Where each provider came from and how it was configured (listing, key hints). */
  readonly sources: ReadonlyMap<string, { config: ProviderConfig; source: "config" | "admin" }>;
  /** The configuration's aliases and routes plus the admin ones. */
  readonly aliases: Readonly<Record<string, string>>;
  readonly routes: Readonly<Record<string, Route>>;
  readonly resolve: (model: string) => Target;
  readonly plan: (input: PlanInput) => Target[];
  readonly catalog: ModelCatalog;
}

/** The admin-made part of routing, as ProviderService keeps it. */
export interface AdminRouting {
  providers: readonly ProviderConfig[];
  aliases: Readonly<Record<string, string>>;
  routes: Readonly<Record<string, Route>>;
}

/** The holder of the current snapshot, and the stable views the rest of the gateway keeps. */
export interface LiveRouting {
  /** The snapshot to use now: read it once per request. */
  readonly current: RoutingSnapshot;
  /** The current snapshot's models (the pipeline's ModelService); start and stop are `start` and `close`. */
  readonly catalog: ModelCatalog;
  /** Provider id -> type for price lookups; ids of providers that left stay (requests in flight price by them). */
  readonly providerTypes: ReadonlyMap<string, string>;
  /**
   * Replaces the admin part. Throws invalid_request with the reason when the
   * result would not route (nothing changes); `persist` runs after
   * validation and before the swap, and a throw from it also changes nothing.
   */
  apply(admin: AdminRouting, persist?: () => void): RoutingSnapshot;
  /**
   * Replaces the configuration's part (a reloaded file), keeping the admin
   * part. Throws invalid_request when the result would not route or a name
   * is also an admin one (nothing changes then).
   */
  replaceConfig(config: LiveRoutingOptions["config"]): RoutingSnapshot;
  /** Starts model discovery and (when configured) health probes. */
  start(): void;
  /** Stops discovery and probes, and closes every provider (graceful). */
  close(): Promise<void>;
}

/** What live routing is built from: the configuration's providers, aliases, routes and probe settings. */
export interface LiveRoutingOptions {
  config: Pick<Config, "providers" | "aliases" | "routes"> & { routing: Pick<Config["routing"], "healthCheckIntervalMs" | "deadlineMs"> };
  health: HealthRegistry;
  logger: Logger;
  /** Tests replace the provider factory. */
  createProvider?: (c: ProviderConfig) => Provider;
  /** Default: routing.deadlineMs plus a second. */
  retireAfterMs?: number;
}

interface Entry {
  id: string;
  type: string;
  source: "config" | "admin";
  config: ProviderConfig;
  /** The settings, keys included (memory only): equal fingerprints reuse the provider. */
  fingerprint: string;
  provider: Provider;
  /** This provider's discovered models; it lives as long as the provider. */
  catalog: ModelCatalog;
}

/**
 * Builds the configuration's snapshot (route targets checked as at any
 * start, ConfigError on a bad one) and returns the live holder.
 */
export function createLiveRouting(o: LiveRoutingOptions): LiveRouting {
  const make = o.createProvider ?? createProviderDefault;
  const inFlight = (t: Target): number => o.health.inFlight(t);
  const providerTypes = new Map<string, string>();
  const retiring = new Map<Entry, NodeJS.Timeout>();
  let started = false;
  let stopProbes = (): void => {};

  function entry(config: ProviderConfig, source: "config" | "admin"): Entry {
    const provider = make(config);
    const catalog = createModelCatalog(new Map([[config.id, provider]]), {}, (provider, err) =>
      o.logger.warn("model discovery failed", { provider, error: err }));
    return { id: config.id, type: config.type, source, config, fingerprint: JSON.stringify(config), provider, catalog };
  }

  function snapshot(entries: ReadonlyMap<string, Entry>, aliases: Record<string, string>, routes: Record<string, Route>): RoutingSnapshot {
    const providers = new Map<string, Provider>();
    const sources = new Map<string, { config: ProviderConfig; source: "config" | "admin" }>();
    for (const [id, e] of entries) {
      providers.set(id, e.provider);
      sources.set(id, { config: e.config, source: e.source });
    }
    const catalog = compositeCatalog(entries, aliases);
    const resolve = createResolver(providers, aliases, catalog);
    return { providers, sources, aliases, routes, resolve, plan: createPlanner(routes, resolve, inFlight), catalog };
  }

  let cfg = o.config;
  let configEntries = new Map<string, Entry>();
  for (const p of cfg.providers) configEntries.set(p.id, entry(p, "config"));
  let entries: ReadonlyMap<string, Entry> = configEntries;
  let adminPart: AdminRouting = { providers: [], aliases: {}, routes: {} };
  let current = snapshot(entries, { ...cfg.aliases }, { ...cfg.routes });
  checkRoutes(cfg.routes, current.resolve);
  for (const e of entries.values()) providerTypes.set(e.id, e.type);

  function restartProbes(): void {
    stopProbes();
    const ms = cfg.routing.healthCheckIntervalMs;
    stopProbes = ms > 0 ? startProbes(current.providers.values(), o.health, ms) : () => {};
  }

  function retire(e: Entry): void {
    e.catalog.stop();
    const timer = setTimeout(() => {
      retiring.delete(e);
      e.provider.close().catch((err: unknown) => o.logger.warn("closing a removed provider failed", { provider: e.id, error: err }));
    }, o.retireAfterMs ?? cfg.routing.deadlineMs + 1_000); // the live deadline: a reload may have raised it
    timer.unref();
    retiring.set(e, timer);
  }

  /** The entry for a provider: the running one when its settings and source are unchanged, else a new one. */
  function reuse(c: ProviderConfig, source: "config" | "admin", created: Entry[]): Entry {
    const old = entries.get(c.id);
    if (old !== undefined && old.source === source && old.fingerprint === JSON.stringify(c)) return old;
    const e = entry(c, source);
    created.push(e);
    return e;
  }

  /**
   * Validates a candidate and swaps it in; `persist` runs between the two.
   * On any throw, the providers made for the candidate are closed and nothing changes.
   */
  function commit(next: Map<string, Entry>, created: Entry[], build: () => { aliases: Record<string, string>; routes: Record<string, Route> }, persist: (() => void) | undefined, done: () => void): RoutingSnapshot {
    try {
      const { aliases, routes } = build();
      const candidate = snapshot(next, aliases, routes);
      validate(candidate);
      persist?.();
      // The swap: one assignment. Everything below only tidies up.
      const before = entries;
      entries = next;
      current = candidate;
      done();
      for (const e of next.values()) providerTypes.set(e.id, e.type);
      for (const e of before.values()) if (next.get(e.id) !== e) retire(e);
      if (started) {
        for (const e of created) e.catalog.start();
        restartProbes();
      }
      return candidate;
    } catch (err) {
      for (const e of created) void e.provider.close().catch(() => {});
      throw err;
    }
  }

  return {
    get current() {
      return current;
    },
    catalog: {
      has: (provider, model) => current.catalog.has(provider, model),
      list: () => current.catalog.list(),
      start: () => {},
      stop: () => {},
    },
    providerTypes,
    apply(admin, persist) {
      const next = new Map(configEntries);
      const created: Entry[] = [];
      try {
        for (const c of admin.providers) {
          if (configEntries.has(c.id)) throw invalid(`provider '${c.id}' is defined in the configuration file`, "id");
          if (next.has(c.id)) throw invalid(`provider '${c.id}' is given twice`, "id");
          next.set(c.id, reuse(c, "admin", created));
        }
      } catch (err) {
        for (const e of created) void e.provider.close().catch(() => {});
        throw err;
      }
      const build = () => ({ aliases: merge("alias", cfg.aliases, admin.aliases), routes: merge("route", cfg.routes, admin.routes) });
      return commit(next, created, build, persist, () => {
        adminPart = admin;
      });
    },
    replaceConfig(config) {
      const fromFile = new Map<string, Entry>();
      const next = new Map<string, Entry>();
      const created: Entry[] = [];
      const adminIds = new Set(adminPart.providers.map((p) => p.id));
      try {
        for (const c of config.providers) {
          if (adminIds.has(c.id)) throw invalid(`providers: '${c.id}' is also a provider made through ProviderService; delete one of the two`, "id");
          fromFile.set(c.id, reuse(c, "config", created));
        }
        for (const [id, e] of fromFile) next.set(id, e);
        for (const c of adminPart.providers) next.set(c.id, entries.get(c.id)!);
      } catch (err) {
        for (const e of created) void e.provider.close().catch(() => {});
        throw err;
      }
      const build = () => ({ aliases: mergeFile("aliases", config.aliases, adminPart.aliases), routes: mergeFile("routes", config.routes, adminPart.routes) });
      return commit(next, created, build, undefined, () => {
        cfg = config;
        configEntries = fromFile;
      });
    },
    start() {
      started = true;
      for (const e of entries.values()) e.catalog.start();
      restartProbes();
    },
    async close() {
      started = false;
      stopProbes();
      for (const e of entries.values()) e.catalog.stop();
      const closing = [...retiring.keys()];
      for (const t of retiring.values()) clearTimeout(t);
      retiring.clear();
      await Promise.all([...entries.values(), ...closing].map((e) => e.provider.close()));
    },
  };
}

/** A reloaded file's entries plus the admin ones; a name both define is refused (the admin one was made first). */
function mergeFile<T>(what: string, fromFile: Readonly<Record<string, T>>, fromAdmin: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = { ...fromAdmin };
  for (const [name, v] of Object.entries(fromFile)) {
    if (Object.hasOwn(fromAdmin, name)) throw invalid(`${what}.${name}: also defined through ProviderService; delete one of the two`, "name");
    out[name] = v;
  }
  return out;
}

/** The configuration's entries plus the admin ones; a name the configuration has is read-only. */
function merge<T>(what: string, fromConfig: Readonly<Record<string, T>>, fromAdmin: Readonly<Record<string, T>>): Record<string, T> {
  const out: Record<string, T> = { ...fromConfig };
  for (const [name, v] of Object.entries(fromAdmin)) {
    if (Object.hasOwn(fromConfig, name)) throw invalid(`${what} '${name}' is defined in the configuration file`, "name");
    out[name] = v;
  }
  return out;
}

/** Every alias names a provider the snapshot has, every route target and fallback resolves. */
function validate(s: RoutingSnapshot): void {
  for (const [name, target] of Object.entries(s.aliases)) {
    const slash = target.indexOf("/");
    if (slash <= 0 || !s.providers.has(target.slice(0, slash))) {
      throw invalid(`alias '${name}': '${target}' must be "provider/model" with a provider the gateway has`, "target");
    }
    try {
      s.resolve(name);
    } catch (err) {
      throw invalid(`alias '${name}': ${(err as Error).message}`, "target");
    }
  }
  for (const [name, route] of Object.entries(s.routes)) {
    const check = (model: string, where: string): void => {
      try {
        s.resolve(model);
      } catch (err) {
        throw invalid(`route '${name}': ${where}: ${(err as Error).message}`, where);
      }
    };
    route.targets.forEach((t, i) => check(t.model, `targets[${i}].model`));
    route.fallbacks.forEach((f, i) => check(f, `fallbacks[${i}]`));
  }
}

/** One catalog over per-provider catalogs (kept with their providers), plus the aliases. */
function compositeCatalog(entries: ReadonlyMap<string, Entry>, aliases: Readonly<Record<string, string>>): ModelCatalog {
  return {
    has: (provider, model) => entries.get(provider)?.catalog.has(provider, model) ?? false,
    async list() {
      const lists = await Promise.all([...entries.values()].map((e) => e.catalog.list()));
      const out: Model[] = lists.flat();
      for (const [alias, target] of Object.entries(aliases)) {
        out.push(create(ModelSchema, { id: alias, provider: target.slice(0, target.indexOf("/")), created: 0n, ownedBy: "switchyard", target }));
      }
      return out;
    },
    start: () => {},
    stop: () => {},
  };
}
