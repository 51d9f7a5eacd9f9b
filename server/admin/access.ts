/**
 * Who may call which admin RPC: ONE table, enforced in ONE place (the
 * interceptor below, on every admin service, for Connect, gRPC and
 * gRPC-Web alike). Each entry names the permission a method needs and the
 * places (customer, team) where the caller must hold it; entries that
 * change state also say how they are audited. A method missing from the
 * table is refused (fail closed), and a test checks every method is here.
 *
 * Rules of thumb the places encode:
 * - reads need the permission where the thing lives (a team viewer reads
 *   its team and its keys);
 * - budgets, limits and moves of a team or customer need the permission
 *   above it: nobody raises their own scope's budget;
 * - lists must name a customer or team unless the caller is global.
 */
import { toJson, type DescMessage, type DescMethodServerStreaming, type DescMethodUnary, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { AuditService } from "../../gen/switchyard/v1/audit_pb.ts";
import { AuthService } from "../../gen/switchyard/v1/auth_pb.ts";
import { BudgetService, Period as PeriodEnum, type Budget as BudgetMessage, type Limits as LimitsMessage } from "../../gen/switchyard/v1/budgets_pb.ts";
import { CacheService } from "../../gen/switchyard/v1/cache_pb.ts";
import { ConfigService } from "../../gen/switchyard/v1/config_pb.ts";
import { KeyService } from "../../gen/switchyard/v1/keys_pb.ts";
import { LogService, type LogFilter } from "../../gen/switchyard/v1/logs_pb.ts";
import { OrgService } from "../../gen/switchyard/v1/org_pb.ts";
import { ProviderService } from "../../gen/switchyard/v1/providers_pb.ts";
import { RoutingService } from "../../gen/switchyard/v1/routing_pb.ts";
import { UserService } from "../../gen/switchyard/v1/users_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import { toConnectError } from "../errors/to-connect.ts";
import type { Admin } from "../governance/admin.ts";
import type { Limits, Period } from "../governance/types.ts";
import { kPrincipal } from "../rpc/context.ts";
import type { AuditLog } from "./audit.ts";
import { sameString } from "./auth.ts";
import { allows, ROLE_PERMISSIONS, type AdminIdentity, type Permission, type Place } from "./types.ts";

/** Looks up where keys and teams sit. */
export interface Resolver {
  keyPlace(id: string): Promise<Place>;
  teamPlace(id: string): Promise<Place>;
  /** The place above a team: its customer, or global. */
  teamParent(id: string): Promise<Place>;
  team(id: string): ReturnType<Admin["getTeam"]>;
  customer(id: string): ReturnType<Admin["getCustomer"]>;
  key(id: string): ReturnType<Admin["getKey"]>;
  budget(kind: "key" | "team" | "customer", id: string): ReturnType<Admin["getBudget"]>;
}

export function createResolver(admin: Admin): Resolver {
  const teamPlace = async (id: string): Promise<Place> => ({ teamId: id, customerId: (await admin.getTeam(id)).customerId });
  return {
    teamPlace,
    async keyPlace(id) {
      const k = await admin.getKey(id);
      // A key outside any team is managed globally only.
      return k.teamId === undefined ? {} : teamPlace(k.teamId);
    },
    async teamParent(id) {
      const t = await admin.getTeam(id);
      return t.customerId === undefined ? {} : { customerId: t.customerId };
    },
    team: (id) => admin.getTeam(id),
    customer: (id) => admin.getCustomer(id),
    key: (id) => admin.getKey(id),
    budget: (kind, id) => admin.getBudget({ kind, id }),
  };
}

interface Rule<M> {
  /** "public": no credentials (sign-in); "self": any admin identity, the handler decides the rest. */
  permission: Permission | "public" | "self";
  /** Where the caller must hold the permission, every one of them. Absent: anywhere. */
  places?: ((m: M, r: Resolver) => Promise<Place[]>) | undefined;
  /** Per-field limits beyond the places (budgets, limits): throws permission_denied. */
  fields?: ((m: M, caller: AdminIdentity, r: Resolver) => Promise<void>) | undefined;
  /** A change of state: audited with the state before and the answer after (secrets redacted). */
  audit?: {
    action: string;
    target: (m: M, out: Record<string, unknown> | undefined) => string;
    before?: ((m: M, r: Resolver) => Promise<unknown>) | undefined;
  } | undefined;
}

/** "switchyard.v1.KeyService/CreateKey" -> its rule. */
export const PERMISSION_TABLE = new Map<string, Rule<never>>();

function rule<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O> | DescMethodServerStreaming<I, O>,
  r: Rule<MessageShape<I>>,
): void {
  PERMISSION_TABLE.set(`${method.parent.typeName}/${method.name}`, r as Rule<never>);
}

const GLOBAL = async (): Promise<Place[]> => [{}];
const id = (prefix: string) => (m: { id: string }) => `${prefix}:${m.id}`;
/** The id of the entity an answer describes (created ids are not in the request). */
const outId = (prefix: string, field: string) => (_m: unknown, out: Record<string, unknown> | undefined): string =>
  `${prefix}:${String((out?.[field] as { id?: string } | undefined)?.id ?? "?")}`;
const safely = <T>(p: Promise<T>): Promise<T | undefined> => p.catch(() => undefined);

// ---- field limits --------------------------------------------------------

/** Budget periods from shortest to longest; a lifetime budget ("none") is the longest. */
const PERIOD_RANK: Record<number, number> = {
  [PeriodEnum.MINUTE]: 1,
  [PeriodEnum.HOUR]: 2,
  [PeriodEnum.DAY]: 3,
  [PeriodEnum.WEEK]: 4,
  [PeriodEnum.MONTH]: 5,
  [PeriodEnum.NONE]: 6,
};
const RANK_OF: Record<Period, number> = { minute: 1, hour: 2, day: 3, week: 4, month: 5, none: 6 };

interface BudgetAsk {
  limitUsd: number;
  periodRank: number;
}

function budgetIn(b: BudgetMessage | undefined): BudgetAsk | undefined {
  return b === undefined ? undefined : { limitUsd: b.limitUsd, periodRank: PERIOD_RANK[b.period] ?? 0 };
}

function limitsIn(l: LimitsMessage | undefined): Limits | undefined {
  return l === undefined ? undefined : { rpm: l.rpm, tpm: l.tpm === undefined ? undefined : Number(l.tpm), maxConcurrent: l.maxConcurrent };
}

/**
 * A key's budget and limits may not exceed its team's unless the caller holds
 * the permission above the team: a team editor cannot mint a key worth more
 * than the team it manages. A budget is more when its amount is higher or its
 * period shorter ($100 a day is more than $100 a month). A limit left unset
 * (or cleared) is not more: the team's own limit still applies to every
 * request, so the key inherits it.
 */
async function withinTeam(caller: AdminIdentity, permission: Permission, teamId: string | undefined, budget: BudgetAsk | undefined, limits: Limits | undefined, r: Resolver): Promise<void> {
  if (teamId === undefined || (budget === undefined && limits === undefined)) return;
  if (allows(caller, permission, await r.teamParent(teamId))) return;
  const team = await r.team(teamId);
  const over = (what: string, mine: number | undefined, theirs: number | undefined): void => {
    if (theirs !== undefined && mine !== undefined && mine > theirs) {
      throw new GatewayError("permission_denied", `${what} may not exceed the team's (${theirs}) for a caller scoped to the team`);
    }
  };
  if (budget !== undefined && team.budget !== undefined) {
    over("budget.limit_usd", budget.limitUsd, team.budget.limitUsd);
    if (budget.periodRank < RANK_OF[team.budget.period]) {
      throw new GatewayError("permission_denied", `budget.period may not be shorter than the team's (${team.budget.period}) for a caller scoped to the team`);
    }
  }
  if (limits !== undefined) {
    over("limits.rpm", limits.rpm, team.limits?.rpm);
    over("limits.tpm", limits.tpm, team.limits?.tpm);
    over("limits.max_concurrent", limits.maxConcurrent, team.limits?.maxConcurrent);
  }
}

// ---- the table -------------------------------------------------------------

rule(AuthService.method.getAuthConfig, { permission: "public" });
rule(AuthService.method.login, { permission: "public" });
rule(AuthService.method.logout, { permission: "self" });
rule(AuthService.method.whoAmI, { permission: "self" });

rule(KeyService.method.createKey, {
  permission: "keys.write",
  places: async (m, r) => [m.teamId ? await r.teamPlace(m.teamId) : {}],
  fields: (m, caller, r) => withinTeam(caller, "keys.write", m.teamId || undefined, budgetIn(m.budget), limitsIn(m.limits), r),
  audit: { action: "key.create", target: outId("key", "key") },
});
rule(KeyService.method.getKey, { permission: "keys.read", places: async (m, r) => [await r.keyPlace(m.id)] });
rule(KeyService.method.listKeys, { permission: "keys.read", places: async (m, r) => [m.teamId ? await r.teamPlace(m.teamId) : {}] });
rule(KeyService.method.updateKey, {
  permission: "keys.write",
  places: async (m, r) => [await r.keyPlace(m.id), ...(m.teamId === undefined ? [] : [m.teamId === "" ? {} : await r.teamPlace(m.teamId)])],
  fields: async (m, caller, r) => {
    const teamId = m.teamId === undefined ? (await r.key(m.id)).teamId : m.teamId || undefined;
    await withinTeam(caller, "keys.write", teamId, budgetIn(m.budget), limitsIn(m.limits), r);
  },
  audit: { action: "key.update", target: id("key"), before: (m, r) => safely(r.key(m.id)) },
});
rule(KeyService.method.rotateKey, {
  permission: "keys.write",
  places: async (m, r) => [await r.keyPlace(m.id)],
  audit: { action: "key.rotate", target: id("key"), before: (m, r) => safely(r.key(m.id)) },
});
rule(KeyService.method.revokeKey, {
  permission: "keys.write",
  places: async (m, r) => [await r.keyPlace(m.id)],
  audit: { action: "key.revoke", target: id("key"), before: (m, r) => safely(r.key(m.id)) },
});

/** A budget's own place (reading) and the place above it (setting). */
async function budgetPlaces(scope: { case: string | undefined; value?: string | undefined }, r: Resolver, setting: boolean): Promise<Place[]> {
  switch (scope.case) {
    case "keyId":
      return [await r.keyPlace(scope.value!)];
    case "teamId":
      return [setting ? await r.teamParent(scope.value!) : await r.teamPlace(scope.value!)];
    case "customerId":
      return [setting ? {} : { customerId: scope.value! }];
    default:
      throw new GatewayError("invalid_request", "scope: one of key_id, team_id or customer_id is required", { param: "scope" });
  }
}
const budgetTarget = (m: { scope: { case: string | undefined; value?: string | undefined } }): string =>
  `${(m.scope.case ?? "none").replace("Id", "")}:${m.scope.value ?? ""}`;

rule(BudgetService.method.setBudget, {
  permission: "budgets.write",
  places: (m, r) => budgetPlaces(m.scope, r, true),
  fields: async (m, caller, r) => {
    if (m.scope.case !== "keyId") return;
    await withinTeam(caller, "budgets.write", (await r.key(m.scope.value)).teamId, budgetIn(m.budget), limitsIn(m.limits), r);
  },
  audit: {
    action: "budget.set",
    target: budgetTarget,
    before: (m, r) => (m.scope.case === undefined ? Promise.resolve(undefined) : safely(r.budget(m.scope.case.replace("Id", "") as "key", m.scope.value))),
  },
});
rule(BudgetService.method.getBudget, { permission: "budgets.read", places: (m, r) => budgetPlaces(m.scope, r, false) });

rule(OrgService.method.createCustomer, { permission: "org.write", places: GLOBAL, audit: { action: "customer.create", target: outId("customer", "customer") } });
rule(OrgService.method.getCustomer, { permission: "org.read", places: async (m) => [{ customerId: m.id }] });
rule(OrgService.method.listCustomers, { permission: "org.read", places: GLOBAL });
rule(OrgService.method.updateCustomer, {
  permission: "org.write",
  places: GLOBAL,
  audit: { action: "customer.update", target: id("customer"), before: (m, r) => safely(r.customer(m.id)) },
});
rule(OrgService.method.deleteCustomer, {
  permission: "org.write",
  places: GLOBAL,
  audit: { action: "customer.delete", target: id("customer"), before: (m, r) => safely(r.customer(m.id)) },
});
rule(OrgService.method.createTeam, {
  permission: "org.write",
  places: async (m) => [m.customerId ? { customerId: m.customerId } : {}],
  audit: { action: "team.create", target: outId("team", "team") },
});
rule(OrgService.method.getTeam, { permission: "org.read", places: async (m, r) => [await r.teamPlace(m.id)] });
rule(OrgService.method.listTeams, { permission: "org.read", places: async (m) => [m.customerId ? { customerId: m.customerId } : {}] });
rule(OrgService.method.updateTeam, {
  permission: "org.write",
  places: async (m, r) => [await r.teamParent(m.id), ...(m.customerId === undefined ? [] : [m.customerId === "" ? {} : { customerId: m.customerId }])],
  audit: { action: "team.update", target: id("team"), before: (m, r) => safely(r.team(m.id)) },
});
rule(OrgService.method.deleteTeam, {
  permission: "org.write",
  places: async (m, r) => [await r.teamParent(m.id)],
  audit: { action: "team.delete", target: id("team"), before: (m, r) => safely(r.team(m.id)) },
});

rule(CacheService.method.getCacheStats, { permission: "cache.read", places: GLOBAL });
rule(CacheService.method.purgeCache, {
  permission: "cache.purge",
  places: async (m, r) => [m.keyId ? await r.keyPlace(m.keyId) : m.teamId ? await r.teamPlace(m.teamId) : m.customerId ? { customerId: m.customerId } : {}],
  audit: { action: "cache.purge", target: (m) => (m.keyId ? `key:${m.keyId}` : m.teamId ? `team:${m.teamId}` : m.customerId ? `customer:${m.customerId}` : "cache") },
});

/** The request log: the most specific tenant the filter names. */
async function logPlaces(f: LogFilter | undefined, r: Resolver): Promise<Place[]> {
  if (f?.key) return [await r.keyPlace(f.key)];
  if (f?.team) return [await r.teamPlace(f.team)];
  if (f?.customer) return [{ customerId: f.customer }];
  return [{}];
}
rule(LogService.method.searchRequests, { permission: "logs.read", places: (m, r) => logPlaces(m.filter, r) });
rule(LogService.method.aggregateRequests, { permission: "logs.read", places: (m, r) => logPlaces(m.filter, r) });

// Provider health is not tenant data: any grant that reads routing sees it.
rule(RoutingService.method.getHealth, { permission: "routing.read" });

// Providers hold secrets and decide where traffic goes: changes need providers.write globally
// (owners and admins). The API never returns keys; failed calls are audited with api_keys redacted.
rule(ProviderService.method.listProviders, { permission: "routing.read" });
rule(ProviderService.method.listRoutes, { permission: "routing.read" });
rule(ProviderService.method.createProvider, { permission: "providers.write", places: GLOBAL, audit: { action: "provider.create", target: id("provider") } });
rule(ProviderService.method.updateProvider, { permission: "providers.write", places: GLOBAL, audit: { action: "provider.update", target: id("provider") } });
rule(ProviderService.method.deleteProvider, { permission: "providers.write", places: GLOBAL, audit: { action: "provider.delete", target: id("provider") } });
rule(ProviderService.method.setAlias, { permission: "providers.write", places: GLOBAL, audit: { action: "alias.set", target: (m) => `alias:${m.name}` } });
rule(ProviderService.method.deleteAlias, { permission: "providers.write", places: GLOBAL, audit: { action: "alias.delete", target: (m) => `alias:${m.name}` } });
rule(ProviderService.method.setRoute, { permission: "providers.write", places: GLOBAL, audit: { action: "route.set", target: (m) => `route:${m.name}` } });
rule(ProviderService.method.deleteRoute, { permission: "providers.write", places: GLOBAL, audit: { action: "route.delete", target: (m) => `route:${m.name}` } });

// The configuration shows where traffic goes and how the gateway is set up (secrets redacted):
// readable by those who may change providers; re-reading the file is the owner's.
rule(ConfigService.method.getConfig, { permission: "providers.write", places: GLOBAL });
rule(ConfigService.method.reloadConfig, { permission: "config.write", places: GLOBAL, audit: { action: "config.reload", target: () => "config" } });

rule(UserService.method.createUser, { permission: "users.write", places: GLOBAL, audit: { action: "user.create", target: outId("user", "user") } });
rule(UserService.method.getUser, { permission: "users.read", places: GLOBAL });
rule(UserService.method.listUsers, { permission: "users.read", places: GLOBAL });
rule(UserService.method.updateUser, { permission: "users.write", places: GLOBAL, audit: { action: "user.update", target: id("user") } });
rule(UserService.method.deleteUser, { permission: "users.write", places: GLOBAL, audit: { action: "user.delete", target: id("user") } });
rule(UserService.method.setGrants, { permission: "users.write", places: GLOBAL, audit: { action: "user.set_grants", target: (m) => `user:${m.userId}` } });
// Automation keys: anyone may mint one holding at most their own grants (checked in the handler).
rule(UserService.method.createApiKey, { permission: "self", audit: { action: "apikey.create", target: outId("apikey", "key") } });
rule(UserService.method.listApiKeys, { permission: "self" });
rule(UserService.method.revokeApiKey, { permission: "self", audit: { action: "apikey.revoke", target: id("apikey") } });

rule(AuditService.method.listAuditEvents, { permission: "audit.read", places: GLOBAL });
rule(AuditService.method.verifyAudit, { permission: "audit.read", places: GLOBAL });
rule(AuditService.method.exportAudit, { permission: "audit.read", places: GLOBAL });

/** Methods anyone may call (signing in). */
export function isPublicMethod(name: string): boolean {
  return PERMISSION_TABLE.get(name)?.permission === "public";
}

/** Calls a session may make without the CSRF header: WhoAmI hands the token to a freshly loaded page. */
const CSRF_EXEMPT = new Set(["switchyard.v1.AuthService/WhoAmI", "switchyard.v1.AuthService/GetAuthConfig", "switchyard.v1.AuthService/Login"]);

/** The services the table governs (registered with the interceptor). */
export const ADMIN_SERVICES = [AuthService, KeyService, BudgetService, OrgService, CacheService, LogService, RoutingService, ProviderService, ConfigService, UserService, AuditService] as const;

function denied(message: string): ConnectError {
  return new ConnectError(message, Code.PermissionDenied);
}

/** The caller's address, set by the gateway from the socket (never from the client). */
export const PEER_HEADER = "x-switchyard-peer";

/**
 * The one enforcement point: authorizes every admin call against the table
 * and records every change of state, refused ones included.
 */
export function createAccessInterceptor(resolver: Resolver, audit: AuditLog, onAuditError: (err: unknown) => void = () => {}): Interceptor {
  /**
   * Where a call acts. A caller without the permission globally learns
   * nothing from ids outside its reach: an unknown id is refused like a
   * foreign one, not reported missing.
   */
  async function placesOf(places: NonNullable<Rule<Record<string, unknown>>["places"]>, msg: Record<string, unknown>, identity: AdminIdentity, permission: Permission, name: string): Promise<Place[]> {
    try {
      return await places(msg, resolver);
    } catch (err) {
      if (err instanceof GatewayError && err.code === "not_found" && !allows(identity, permission, {})) throw denied(`${name} needs ${permission} where that id is`);
      throw err;
    }
  }

  return (next) => async (req) => {
    const name = `${req.service.typeName}/${req.method.name}`;
    const r = PERMISSION_TABLE.get(name) as Rule<Record<string, unknown>> | undefined;
    if (r === undefined) throw denied(`no permission rule for ${name}`);
    if (r.permission === "public") return next(req);
    const principal = req.contextValues.get(kPrincipal);
    const identity = principal?.identity;
    const msg = (req.stream ? undefined : req.message) as Record<string, unknown> | undefined;
    const meta = { sourceIp: req.header.get(PEER_HEADER) ?? "", requestId: req.header.get("x-request-id") ?? "" };
    const record = async (outcome: string, after: unknown, before?: unknown): Promise<void> => {
      if (r.audit === undefined || msg === undefined) return;
      const out = after !== null && typeof after === "object" ? (after as Record<string, unknown>) : undefined;
      const actorId = identity?.id ?? principal?.id ?? "anonymous";
      try {
        await audit.record({ actorId, actorLabel: identity?.label ?? actorId, action: r.audit.action, target: r.audit.target(msg, out), before, after, outcome, ...meta });
      } catch (err) {
        // The change is made (or refused) either way: a failed audit write must not turn it into an error a client retries.
        onAuditError(err);
      }
    };
    let before: unknown;
    try {
      if (identity === undefined) {
        // A virtual or gateway key is a known caller without admin rights; nobody at all must sign in.
        if (principal !== undefined && principal.kind !== "anonymous") throw denied("admin credentials required: inference keys cannot call the admin services");
        throw new ConnectError("admin credentials required: sign in, or send an admin API key", Code.Unauthenticated);
      }
      if (identity.csrf !== undefined && !CSRF_EXEMPT.has(name) && !sameString(req.header.get("x-csrf-token") ?? "", identity.csrf)) {
        throw denied("missing or wrong x-csrf-token for this session");
      }
      if (r.permission !== "self") {
        const permission = r.permission;
        if (!identity.grants.some((g) => ROLE_PERMISSIONS[g.role].has(permission))) throw denied(`${name} needs ${permission}`);
        // Streamed requests are not read here: their rules may not depend on the message, so they need the permission globally (fail closed).
        const places = r.places === undefined ? [] : msg === undefined ? [{}] : await placesOf(r.places, msg, identity, permission, name);
        for (const place of places) {
          if (!allows(identity, permission, place)) throw denied(`${name} needs ${permission} ${describe(place)}`);
        }
        if (r.fields !== undefined && msg !== undefined) await r.fields(msg, identity, resolver);
      }
      if (r.audit?.before !== undefined && msg !== undefined) before = await r.audit.before(msg, resolver);
    } catch (err) {
      const e = err instanceof ConnectError ? err : toConnectError(GatewayError.from(err));
      // Refused changes are audited too: a probe for escalation leaves a trace.
      if ((e.code === Code.PermissionDenied || e.code === Code.Unauthenticated) && msg !== undefined) await record(outcomeOf(e), toJson(req.method.input, req.message as never));
      throw e;
    }
    try {
      const res = await next(req);
      if (!res.stream) await record("ok", toJson(req.method.output, res.message as never), before);
      return res;
    } catch (err) {
      if (msg !== undefined) await record(outcomeOf(ConnectError.from(err)), toJson(req.method.input, req.message as never), before);
      throw err;
    }
  };

}

/** An error's Connect code in the audit log's spelling: "permission_denied", "not_found". */
function outcomeOf(e: ConnectError): string {
  return (Code[e.code] ?? "unknown").replace(/[A-Z]/g, (c, i: number) => (i === 0 ? "" : "_") + c.toLowerCase());
}

function describe(p: Place): string {
  return p.teamId !== undefined ? `on team ${p.teamId}` : p.customerId !== undefined ? `on customer ${p.customerId}` : "globally";
}
