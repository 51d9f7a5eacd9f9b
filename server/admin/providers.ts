import { OPENAI_PRESETS, providerSchema, type ProviderConfig } from "../config/schema.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import type { LiveRouting } from "../routing/live.ts";
import type { Route } from "../routing/plan.ts";
import type { Logger } from "../telemetry/log.ts";
import { checkBaseUrl } from "./base-url.ts";
import type { ProviderStore, StoredAlias, StoredProvider, StoredRoute } from "./providers-store.ts";

/**
 * ProviderService's rules, transport-free: providers, aliases and routes
 * made through the admin API, on top of the configuration's (read-only
 * here). Every change goes through live routing (validated, then swapped)
 * and is written to the store between the two, so what is stored is always
 * what serves. Who may call is decided by the permission table.
 */
export interface ProviderAdmin {
  list(): ProviderView[];
  create(input: ProviderInput): ProviderView;
  update(id: string, change: ProviderChange): ProviderView;
  delete(id: string): ProviderView;
  listRoutes(): { aliases: AliasView[]; routes: RouteView[] };
  setAlias(name: string, target: string): AliasView;
  deleteAlias(name: string): AliasView;
  setRoute(name: string, route: Route): RouteView;
  deleteRoute(name: string): RouteView;
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

/**
 * Loads the stored admin routing and puts it live. A wrong master key fails
 * here (the gateway does not start). Stored entries that no longer route
 * (the configuration changed under them) are left out with an error in the
 * log rather than keeping the gateway down; they stay stored.
 */
export function createProviderAdmin(o: { live: LiveRouting; store: ProviderStore; logger: Logger }): ProviderAdmin {
  const { live, store } = o;
  const loaded = store.load();
  const providers = new Map<string, StoredProvider>();
  const aliases = new Map<string, StoredAlias>();
  const routes = new Map<string, StoredRoute>();

  function apply(persist?: () => void): void {
    live.apply({
      providers: [...providers.values()].map(toConfig),
      aliases: Object.fromEntries([...aliases.values()].map((a) => [a.name, a.target])),
      routes: Object.fromEntries([...routes.values()].map((r) => [r.name, r.route])),
    }, persist);
  }

  /** Changes one entry of a map, applies, and undoes the change when live routing refuses it. */
  function change<T>(map: Map<string, T>, key: string, value: T | undefined, persist: () => void): void {
    const old = map.get(key);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    try {
      apply(persist);
    } catch (err) {
      if (old === undefined) map.delete(key);
      else map.set(key, old);
      throw err;
    }
  }

  // At start: everything at once, or else one by one, leaving out what no longer routes.
  try {
    for (const p of loaded.providers) providers.set(p.id, p);
    for (const a of loaded.aliases) aliases.set(a.name, a);
    for (const r of loaded.routes) routes.set(r.name, r);
    apply();
  } catch {
    providers.clear();
    aliases.clear();
    routes.clear();
    const each = <T>(what: string, map: Map<string, T>, items: T[], key: (t: T) => string): void => {
      for (const item of items) {
        try {
          change(map, key(item), item, () => {});
        } catch (err) {
          o.logger.error(`stored ${what} left out: it no longer routes`, { name: key(item), error: (err as Error).message });
        }
      }
    };
    each("provider", providers, loaded.providers, (p) => p.id);
    each("alias", aliases, loaded.aliases, (a) => a.name);
    each("route", routes, loaded.routes, (r) => r.name);
  }

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
    create(input) {
      if (live.current.sources.has(input.id)) {
        throw live.current.sources.get(input.id)!.source === "config" ? readOnly("provider", input.id) : invalid(`provider '${input.id}' exists; use UpdateProvider`, "id");
      }
      const now = Date.now();
      const p: StoredProvider = { id: input.id, type: input.type, baseUrl: input.baseUrl, keys: input.apiKeys, models: input.models, headers: input.headers, createdAt: now, updatedAt: now };
      toConfig(p); // a clear error before anything else
      change(providers, p.id, p, () => store.putProvider(p));
      return view(p.id);
    },
    update(id, c) {
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
      change(providers, id, p, () => store.putProvider(p));
      return view(id);
    },
    delete(id) {
      adminProvider(id);
      const before = view(id);
      change(providers, id, undefined, () => store.deleteProvider(id));
      return before;
    },
    listRoutes() {
      const s = live.current;
      return {
        aliases: Object.entries(s.aliases).map(([name, target]) => ({ name, target, source: aliases.has(name) ? "admin" as const : "config" as const })),
        routes: Object.entries(s.routes).map(([name, route]) => ({ name, route, source: routes.has(name) ? "admin" as const : "config" as const })),
      };
    },
    setAlias(name, target) {
      checkName(name);
      if (routeSource("alias", name) === "config") throw readOnly("alias", name);
      const now = Date.now();
      const a: StoredAlias = { name, target, createdAt: aliases.get(name)?.createdAt ?? now, updatedAt: now };
      change(aliases, name, a, () => store.putAlias(a));
      return { name, target, source: "admin" };
    },
    deleteAlias(name) {
      const source = routeSource("alias", name);
      if (source === "config") throw readOnly("alias", name);
      const a = aliases.get(name);
      if (a === undefined) throw new GatewayError("not_found", `no alias '${name}'`);
      change(aliases, name, undefined, () => store.deleteAlias(name));
      return { name, target: a.target, source: "admin" };
    },
    setRoute(name, route) {
      checkName(name);
      if (routeSource("route", name) === "config") throw readOnly("route", name);
      if (route.targets.length === 0) throw invalid("targets: at least one target is required", "targets");
      const now = Date.now();
      const r: StoredRoute = { name, route, createdAt: routes.get(name)?.createdAt ?? now, updatedAt: now };
      change(routes, name, r, () => store.putRoute(r));
      return { name, route, source: "admin" };
    },
    deleteRoute(name) {
      const source = routeSource("route", name);
      if (source === "config") throw readOnly("route", name);
      const r = routes.get(name);
      if (r === undefined) throw new GatewayError("not_found", `no route '${name}'`);
      change(routes, name, undefined, () => store.deleteRoute(name));
      return { name, route: r.route, source: "admin" };
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
