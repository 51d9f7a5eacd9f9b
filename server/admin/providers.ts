import { OPENAI_PRESETS, providerSchema, type ProviderConfig } from "../config/schema.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import type { LiveRouting } from "../routing/live.ts";
import type { Route } from "../routing/plan.ts";
import type { Logger } from "../telemetry/log.ts";
import { checkBaseUrl } from "./base-url.ts";
import type { ProviderStore, StoredAlias, StoredProvider, StoredRoute, StoredRouting } from "./providers-store.ts";

/**
 * ProviderService's rules, transport-free: providers, aliases and routes
 * made through the admin API, on top of the configuration's (read-only
 * here). Every change goes through live routing (validated, then swapped)
 * and is written to the store between the two, so what is stored is always
 * what serves. Who may call is decided by the permission table.
 *
 * A shared store (PostgreSQL) is written by other instances too: its change
 * counter is polled (every 500 ms by default) and, when it moved, the stored
 * routing is loaded and put live here, so a change made through any instance
 * serves on all of them within a second. Changes here are made one at a
 * time, each on top of the latest stored state.
 */
export interface ProviderAdmin {
  list(): ProviderView[];
  create(input: ProviderInput): Promise<ProviderView>;
  update(id: string, change: ProviderChange): Promise<ProviderView>;
  delete(id: string): Promise<ProviderView>;
  listRoutes(): { aliases: AliasView[]; routes: RouteView[] };
  setAlias(name: string, target: string): Promise<AliasView>;
  deleteAlias(name: string): Promise<AliasView>;
  setRoute(name: string, route: Route): Promise<RouteView>;
  deleteRoute(name: string): Promise<RouteView>;
  /** Stops watching a shared store. */
  close(): Promise<void>;
}

/** CreateProvider's fields. */
export interface ProviderInput {
  id: string;
  type: string;
  /** "": the type's default. */
  baseUrl: string;
  apiKeys: string[];
  models: string[];
  headers: Record<string, string>;
}

/** Fields left undefined stay as they are. */
export interface ProviderChange {
  baseUrl?: string | undefined;
  apiKeys?: string[] | undefined;
  models?: string[] | undefined;
  headers?: Record<string, string> | undefined;
}

/** A provider as the API shows it: key hints, never keys; header names, never values. */
export interface ProviderView {
  id: string;
  type: string;
  baseUrl: string;
  models: string[];
  keyCount: number;
  keyHints: string[];
  headerNames: string[];
  source: "config" | "admin";
  createdAt?: number | undefined;
  updatedAt?: number | undefined;
}

/** An alias and where it is defined. */
export interface AliasView {
  name: string;
  target: string;
  source: "config" | "admin";
}

/** A route and where it is defined. */
export interface RouteView {
  name: string;
  route: Route;
  source: "config" | "admin";
}

/** Headers that carry credentials: those belong in api_keys (sealed, never shown). */
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|cookie)$/i;
const NAME = /^[^\s\p{C}]{1,200}$/u;

/** A table of the store: its entries here, and how to write one. */
interface Table<T> {
  what: string;
  map: Map<string, T>;
  key(t: T): string;
  put(t: T): Promise<number | undefined>;
  del(key: string): Promise<number | undefined>;
}

/** Thrown by the validation-only apply: live routing accepted the candidate (and swapped nothing). */
const VALID = Symbol("valid");

/**
 * Loads the stored admin routing and puts it live. A wrong master key fails
 * here (the gateway does not start). Stored entries that no longer route
 * (the configuration changed under them) are left out with an error in the
 * log rather than keeping the gateway down; they stay stored.
 */
export async function createProviderAdmin(o: { live: LiveRouting; store: ProviderStore; logger: Logger; pollMs?: number | undefined }): Promise<ProviderAdmin> {
  const { live, store } = o;
  const providers = new Map<string, StoredProvider>();
  const aliases = new Map<string, StoredAlias>();
  const routes = new Map<string, StoredRoute>();
  const P: Table<StoredProvider> = { what: "provider", map: providers, key: (p) => p.id, put: (p) => store.putProvider(p), del: (id) => store.deleteProvider(id) };
  const A: Table<StoredAlias> = { what: "alias", map: aliases, key: (a) => a.name, put: (a) => store.putAlias(a), del: (n) => store.deleteAlias(n) };
  const R: Table<StoredRoute> = { what: "route", map: routes, key: (r) => r.name, put: (r) => store.putRoute(r), del: (n) => store.deleteRoute(n) };
  /** The shared store's change counter the maps are as of. */
  let seen: number | undefined;

  const adminRouting = () => ({
    providers: [...providers.values()].map(toConfig),
    aliases: Object.fromEntries([...aliases.values()].map((a) => [a.name, a.target])),
    routes: Object.fromEntries([...routes.values()].map((r) => [r.name, r.route])),
  });

  /** Puts the maps live (throws invalid_request, changing nothing, when they would not route). */
  const apply = (): void => void live.apply(adminRouting());

  /** Checks the maps as live routing would, swapping nothing in. */
  function check(): void {
    try {
      live.apply(adminRouting(), () => {
        throw VALID;
      });
    } catch (err) {
      if (err !== VALID) throw err;
    }
  }

  /** One change at a time, in order: each starts from what the one before left. */
  let queue: Promise<unknown> = Promise.resolve();
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  }

  /** Stored routing, live: everything at once, or else one by one, leaving out what no longer routes. */
  function install(loaded: StoredRouting): void {
    const fill = (): void => {
      for (const p of loaded.providers) providers.set(p.id, p);
      for (const a of loaded.aliases) aliases.set(a.name, a);
      for (const r of loaded.routes) routes.set(r.name, r);
    };
    const clear = (): void => {
      providers.clear();
      aliases.clear();
      routes.clear();
    };
    clear();
    fill();
    try {
      apply();
      return;
    } catch {
      clear();
    }
    const each = <T>(t: Table<T>, items: T[]): void => {
      for (const item of items) {
        t.map.set(t.key(item), item);
        try {
          apply();
        } catch (err) {
          t.map.delete(t.key(item));
          o.logger.error(`stored ${t.what} left out: it no longer routes`, { name: t.key(item), error: (err as Error).message });
        }
      }
    };
    each(P, loaded.providers);
    each(A, loaded.aliases);
    each(R, loaded.routes);
    // Whatever is left (possibly nothing) is what serves.
    apply();
  }

  async function load(): Promise<void> {
    const loaded = await store.load();
    install(loaded);
    seen = loaded.version;
  }

  /** Shared stores: catches up with changes made elsewhere (one counter read when there are none). */
  async function sync(): Promise<void> {
    if (!store.shared) return;
    if ((await store.version()) !== seen) await load();
  }

  /**
   * Changes one entry: checked against live routing, written to the store,
   * then swapped in. A refused change leaves the entry as it was, here and in
   * the store.
   */
  async function change<T>(t: Table<T>, key: string, value: T | undefined): Promise<void> {
    const old = t.map.get(key);
    const restore = (): void => void (old === undefined ? t.map.delete(key) : t.map.set(key, old));
    if (value === undefined) t.map.delete(key);
    else t.map.set(key, value);
    let version: number | undefined;
    try {
      check();
      version = await (value === undefined ? t.del(key) : t.put(value));
    } catch (err) {
      restore();
      throw err;
    }
    try {
      apply();
    } catch (err) {
      // The configuration was reloaded between the check and now: the store goes back as it was.
      restore();
      await (old === undefined ? t.del(key) : t.put(old)).catch((e: unknown) => o.logger.error(`restoring stored ${t.what} failed`, { name: key, error: e }));
      throw err;
    }
    // Nobody else wrote in between: the maps are as of the new version.
    if (version !== undefined && seen !== undefined && version === seen + 1) seen = version;
  }

  // At start: a wrong master key (or an unreachable database) fails the start here.
  await serial(load);

  let polling: Promise<void> | undefined;
  let failing = false;
  const timer = store.shared
    ? setInterval(() => {
        if (polling !== undefined) return;
        polling = serial(sync).then(
          () => void (failing = false),
          (err: unknown) => {
            // Once per run of failures; the routing loaded last keeps serving meanwhile.
            if (!failing) o.logger.warn("reloading admin-made providers failed; the last loaded ones keep serving", { error: err });
            failing = true;
          },
        ).finally(() => (polling = undefined));
      }, o.pollMs ?? 500)
    : undefined;
  timer?.unref();

  function view(id: string): ProviderView {
    const s = live.current.sources.get(id);
    if (s === undefined) throw new GatewayError("not_found", `no provider '${id}'`);
    const c = s.config;
    const keys = "keys" in c ? c.keys : c.credentials.map((k) => k.accessKeyId);
    const stored = s.source === "admin" ? providers.get(id) : undefined;
    return {
      id,
      type: c.type,
      baseUrl: c.baseUrl,
      models: [...c.models],
      keyCount: keys.length,
      keyHints: keys.map(keyHint),
      headerNames: Object.keys(c.headers),
      source: s.source,
      createdAt: stored?.createdAt,
      updatedAt: stored?.updatedAt,
    };
  }

  function adminProvider(id: string): StoredProvider {
    const p = providers.get(id);
    if (p !== undefined) return p;
    if (live.current.sources.has(id)) throw readOnly("provider", id);
    throw new GatewayError("not_found", `no provider '${id}'`);
  }

  /** Admin names: valid, and never "<provider>/<model>" of a provider the gateway has (that would hijack the model). */
  function checkName(name: string): void {
    if (!NAME.test(name)) throw invalid("name: 1 to 200 characters, no spaces or control characters", "name");
    const slash = name.indexOf("/");
    if (slash > 0 && live.current.providers.has(name.slice(0, slash))) {
      throw invalid(`name: '${name}' names a model of provider '${name.slice(0, slash)}'; choose a name without that prefix`, "name");
    }
  }

  function routeSource(what: "alias" | "route", name: string): "config" | "admin" | undefined {
    const admin = what === "alias" ? aliases.has(name) : routes.has(name);
    if (admin) return "admin";
    const all = what === "alias" ? live.current.aliases : live.current.routes;
    return Object.hasOwn(all, name) ? "config" : undefined;
  }

  return {
    list: () => [...live.current.sources.keys()].sort().map(view),
    create: (input) => serial(async () => {
      await sync();
      if (live.current.sources.has(input.id)) {
        throw live.current.sources.get(input.id)!.source === "config" ? readOnly("provider", input.id) : invalid(`provider '${input.id}' exists; use UpdateProvider`, "id");
      }
      const now = Date.now();
      const p: StoredProvider = { id: input.id, type: input.type, baseUrl: input.baseUrl, keys: input.apiKeys, models: input.models, headers: input.headers, createdAt: now, updatedAt: now };
      toConfig(p); // a clear error before anything else
      await change(P, p.id, p);
      return view(p.id);
    }),
    update: (id, c) => serial(async () => {
      await sync();
      const old = adminProvider(id);
      const p: StoredProvider = {
        ...old,
        baseUrl: c.baseUrl ?? old.baseUrl,
        keys: c.apiKeys ?? old.keys,
        models: c.models ?? old.models,
        headers: c.headers ?? old.headers,
        updatedAt: Date.now(),
      };
      toConfig(p);
      await change(P, id, p);
      return view(id);
    }),
    delete: (id) => serial(async () => {
      await sync();
      adminProvider(id);
      const before = view(id);
      await change(P, id, undefined);
      return before;
    }),
    listRoutes() {
      const s = live.current;
      return {
        aliases: Object.entries(s.aliases).map(([name, target]) => ({ name, target, source: aliases.has(name) ? "admin" as const : "config" as const })),
        routes: Object.entries(s.routes).map(([name, route]) => ({ name, route, source: routes.has(name) ? "admin" as const : "config" as const })),
      };
    },
    setAlias: (name, target) => serial(async () => {
      await sync();
      checkName(name);
      if (routeSource("alias", name) === "config") throw readOnly("alias", name);
      const now = Date.now();
      const a: StoredAlias = { name, target, createdAt: aliases.get(name)?.createdAt ?? now, updatedAt: now };
      await change(A, name, a);
      return { name, target, source: "admin" as const };
    }),
    deleteAlias: (name) => serial(async () => {
      await sync();
      const source = routeSource("alias", name);
      if (source === "config") throw readOnly("alias", name);
      const a = aliases.get(name);
      if (a === undefined) throw new GatewayError("not_found", `no alias '${name}'`);
      await change(A, name, undefined);
      return { name, target: a.target, source: "admin" as const };
    }),
    setRoute: (name, route) => serial(async () => {
      await sync();
      checkName(name);
      if (routeSource("route", name) === "config") throw readOnly("route", name);
      if (route.targets.length === 0) throw invalid("targets: at least one target is required", "targets");
      const now = Date.now();
      const r: StoredRoute = { name, route, createdAt: routes.get(name)?.createdAt ?? now, updatedAt: now };
      await change(R, name, r);
      return { name, route, source: "admin" as const };
    }),
    deleteRoute: (name) => serial(async () => {
      await sync();
      const source = routeSource("route", name);
      if (source === "config") throw readOnly("route", name);
      const r = routes.get(name);
      if (r === undefined) throw new GatewayError("not_found", `no route '${name}'`);
      await change(R, name, undefined);
      return { name, route: r.route, source: "admin" as const };
    }),
    async close() {
      if (timer !== undefined) clearInterval(timer);
      await polling;
    },
  };
}

function readOnly(what: string, name: string): GatewayError {
  return new GatewayError("permission_denied", `${what} '${name}' is defined in the configuration file and is read-only here; change the file instead`);
}

/** Enough of a key to tell keys apart, never enough to use: "sk-…abcd". */
export function keyHint(key: string): string {
  if (key.length < 16) return `…${key.slice(-2)}`;
  return `${key.slice(0, 3)}…${key.slice(-4)}`;
}

/** Fields of the configuration schema as the API names them. */
const API_FIELD: Record<string, string> = { keys: "api_keys", baseUrl: "base_url" };

/**
 * A stored provider as the configuration schema would read it, with the
 * same checks and defaults as a configuration file, plus the base URL rules
 * for admin-made providers.
 */
export function toConfig(p: StoredProvider): ProviderConfig {
  if (p.type === "bedrock") throw invalid("type: bedrock needs AWS credentials and a region; define it in the configuration file", "type");
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(p.id)) throw invalid("id: 1 to 63 of a-z 0-9 _ -, starting with a letter or digit", "id");
  for (const name of Object.keys(p.headers)) {
    if (CREDENTIAL_HEADERS.test(name)) throw invalid(`headers: '${name}' carries credentials; put them in api_keys`, "headers");
  }
  const parsed = providerSchema.safeParse({ id: p.id, type: p.type, keys: p.keys, models: p.models, headers: p.headers, ...(p.baseUrl === "" ? {} : { baseUrl: p.baseUrl }) });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map((s, i) => (i === 0 ? API_FIELD[String(s)] ?? String(s) : `[${String(s)}]`)).join("");
    throw invalid(`${field === "" ? "" : `${field}: `}${issue.message}`, field || undefined);
  }
  const c = parsed.data;
  const baseUrl = c.baseUrl ?? (Object.hasOwn(OPENAI_PRESETS, c.type) ? OPENAI_PRESETS[c.type as keyof typeof OPENAI_PRESETS].baseUrl : undefined);
  if (baseUrl === undefined) throw invalid("base_url: required for this type", "base_url");
  checkBaseUrl(baseUrl);
  return { ...c, id: p.id, baseUrl } as ProviderConfig;
}
