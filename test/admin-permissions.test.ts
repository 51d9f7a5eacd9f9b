/**
 * Role-based admin access end to end. Long by design (a full method ×
 * principal × target matrix plus the escalation list); the machinery is in
 * support/admin-matrix.ts.
 *
 * The expectations below are written from the rules, not read from the
 * server's PERMISSION_TABLE, so a wrong entry there shows up as a mismatch:
 * - reads need the permission where the thing lives;
 * - budgets, limits and moves of a team or customer need the permission
 *   above it;
 * - lists must name a customer or team unless the caller is global;
 * - keys outside any team are managed globally only;
 * - people, the audit log, the cache's global stats and where traffic goes
 *   (providers, aliases, routes) are global; provider health and the
 *   routing table are readable with any grant that reads routing;
 * - the live configuration is read by those who may change providers and
 *   reloaded by owners only;
 * - an admin API key holds at most its creator's grants.
 */
import type { DescMessage, DescMethod, DescMethodServerStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuditService } from "../gen/switchyard/v1/audit_pb.ts";
import { AuthService } from "../gen/switchyard/v1/auth_pb.ts";
import { BudgetService, Period } from "../gen/switchyard/v1/budgets_pb.ts";
import { CacheService } from "../gen/switchyard/v1/cache_pb.ts";
import { ConfigService } from "../gen/switchyard/v1/config_pb.ts";
import { KeyService } from "../gen/switchyard/v1/keys_pb.ts";
import { AggregateRequestsRequest_GroupBy, LogService } from "../gen/switchyard/v1/logs_pb.ts";
import { OrgService } from "../gen/switchyard/v1/org_pb.ts";
import { ProviderService } from "../gen/switchyard/v1/providers_pb.ts";
import { RoutingService } from "../gen/switchyard/v1/routing_pb.ts";
import { UserService } from "../gen/switchyard/v1/users_pb.ts";
import { ADMIN_SERVICES, PERMISSION_TABLE } from "../server/admin/access.ts";
import {
  auditByRequestId, clientFor, describeGrant, grantMessage, headersFor, inBatches, invoke, transports,
  type Grant, type Role, type Scope, type TransportName, type Verdict,
} from "./support/admin-matrix.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

const ADMIN = "sy-admin-permissions-test-key-0123456789";

// ---- the rules, written independently of server/admin ----------------------

type Perm =
  | "org.read" | "org.write" | "keys.read" | "keys.write" | "budgets.read" | "budgets.write"
  | "logs.read" | "routing.read" | "cache.read" | "cache.purge" | "users.read" | "users.write" | "audit.read" | "providers.write"
  | "config.write";

const VIEWS: Perm[] = ["org.read", "keys.read", "budgets.read", "logs.read", "routing.read", "cache.read"];
const EDITS: Perm[] = [...VIEWS, "keys.write", "budgets.write", "cache.purge"];
const ADMINS: Perm[] = [...EDITS, "org.write", "users.read", "users.write", "audit.read", "providers.write"];
// Only owners re-read the configuration file.
const OWNS: Perm[] = [...ADMINS, "config.write"];
const PERMS: Record<Role, ReadonlySet<Perm>> = { viewer: new Set(VIEWS), editor: new Set(EDITS), admin: new Set(ADMINS), owner: new Set(OWNS) };
const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2, owner: 3 };

/** The fixture world: which customer each team sits in. Throwaway teams are added as they are made. */
const TEAM_CUSTOMER = new Map<string, string | undefined>([["t1", "c1"], ["t2", "c2"], ["t0", undefined]]);

/** Where a thing lives. */
interface Place { customer?: string | undefined; team?: string | undefined }
const G: Place = {};
const C = (id: string): Place => ({ customer: id });
const T = (id: string): Place => ({ team: id, customer: TEAM_CUSTOMER.get(id) });
/** The place above a team: its customer, or global. */
const aboveTeam = (id: string): Place => (TEAM_CUSTOMER.get(id) === undefined ? G : C(TEAM_CUSTOMER.get(id)!));
const teamOrGlobal = (team: string): Place => (team === "" ? G : T(team));
const customerOrGlobal = (customer: string): Place => (customer === "" ? G : C(customer));

function covers(s: Scope, p: Place): boolean {
  if ("global" in s) return true;
  if ("customer" in s) return p.customer === s.customer;
  return p.team === s.team;
}

function contains(a: Scope, b: Scope): boolean {
  if ("global" in a) return true;
  if ("global" in b) return false;
  if ("customer" in a) return "customer" in b ? b.customer === a.customer : TEAM_CUSTOMER.get(b.team) === a.customer;
  return "team" in b && b.team === a.team;
}

/** One condition a call needs; a call needs all of its conditions (none: any admin identity). */
type Need = { perm: Perm; at?: Place[] } | { grantable: Grant };

function satisfied(grants: readonly Grant[], needs: readonly Need[]): boolean {
  return needs.every((n) => {
    if ("grantable" in n) return grants.some((g) => RANK[g.role] >= RANK[n.grantable.role] && contains(g.scope, n.grantable.scope));
    const holding = grants.filter((g) => PERMS[g.role].has(n.perm));
    return n.at === undefined ? holding.length > 0 : n.at.every((p) => holding.some((g) => covers(g.scope, p)));
  });
}

const need = (perm: Perm, ...at: Place[]): Need[] => [{ perm, at }];

// ---- principals ------------------------------------------------------------

interface Principal {
  name: string;
  kind: "apikey" | "bootstrap" | "session" | "virtual" | "none";
  grants: Grant[];
  secret?: string | undefined;
}

const SCOPES: Scope[] = [{ global: true }, { customer: "c1" }, { team: "t1" }];
const GRANTS: Grant[] = [
  ...(["viewer", "editor", "admin"] as const).flatMap((role) => SCOPES.map((scope) => ({ role, scope }))),
  { role: "owner", scope: { global: true } },
];

function expected(p: Principal, needs: readonly Need[]): Verdict {
  if (p.kind === "none") return "unauthenticated";
  if (p.kind === "virtual") return "denied";
  return satisfied(p.grants, needs) ? "allowed" : "denied";
}

// ---- the world ---------------------------------------------------------------

let gw: TestGateway;
const principals: Principal[] = [];
const byName = (name: string): Principal => principals.find((p) => p.name === name)!;
const fx = { K1: "", K2: "", K0: "", KN: "", user: "" };
let seq = 0;
const uid = (prefix: string): string => `${prefix}-${process.pid}-${++seq}`;

const boot = {
  keys: () => clientFor(KeyService, gw.url, ADMIN),
  org: () => clientFor(OrgService, gw.url, ADMIN),
  users: () => clientFor(UserService, gw.url, ADMIN),
  providers: () => clientFor(ProviderService, gw.url, ADMIN),
};
const month = (limitUsd: number) => ({ limitUsd, period: Period.MONTH });
const T1_LIMITS = { rpm: 60, tpm: 10_000n, maxConcurrent: 5 };

const tmpKey = async (team: string): Promise<string> => (await boot.keys().createKey({ name: "tmp", teamId: team })).key!.id;
const tmpCustomer = async (): Promise<string> => (await boot.org().createCustomer({ id: uid("cus"), name: "tmp" })).customer!.id;
async function tmpTeam(customer: string): Promise<string> {
  const id = (await boot.org().createTeam({ id: uid("team"), name: "tmp", customerId: customer })).team!.id;
  TEAM_CUSTOMER.set(id, customer || undefined);
  return id;
}
const tmpUser = async (): Promise<string> => (await boot.users().createUser({ email: `${uid("u")}@example.com`, name: "tmp", grants: [] })).user!.id;
const getKey = async (id: string) => (await boot.keys().getKey({ id })).key!;
const gone = (p: Promise<unknown>): Promise<boolean> => p.then(() => false, () => true);

beforeAll(async () => {
  gw = await startTestGateway({ admin: { key: ADMIN } });
  const org = boot.org();
  await org.createCustomer({ id: "c1", name: "C1", budget: month(1000) });
  await org.createCustomer({ id: "c2", name: "C2" });
  await org.createTeam({ id: "t1", name: "T1", customerId: "c1", budget: month(100), limits: T1_LIMITS });
  await org.createTeam({ id: "t2", name: "T2", customerId: "c2" });
  await org.createTeam({ id: "t0", name: "T0" });
  fx.K1 = await tmpKey("t1");
  fx.K2 = await tmpKey("t2");
  fx.K0 = await tmpKey("t0");
  fx.KN = await tmpKey("");
  await boot.providers().createProvider({ id: "p0", type: "openai-compatible", baseUrl: "http://127.0.0.1:9/v1", models: ["m"] });
  fx.user = (await boot.users().createUser({ email: "viewer@example.com", name: "U", grants: [grantMessage({ role: "viewer", scope: { team: "t1" } })] })).user!.id;
  for (const g of GRANTS) {
    const made = await boot.users().createApiKey({ name: describeGrant(g), grants: [grantMessage(g)] });
    principals.push({ name: describeGrant(g), kind: "apikey", grants: [g], secret: made.secret });
  }
  principals.push({ name: "bootstrap", kind: "bootstrap", grants: [{ role: "owner", scope: { global: true } }], secret: ADMIN });
  principals.push({ name: "virtual key", kind: "virtual", grants: [], secret: (await boot.keys().createKey({ name: "inference", teamId: "t1" })).secret });
  principals.push({ name: "no credential", kind: "none", grants: [] });
});

afterAll(async () => {
  await gw?.close();
});

// ---- the expectation table -----------------------------------------------------

interface Prepared<R> {
  request: R;
  /** Re-reads the entity: it changed when the call was allowed, and not when refused. */
  check?: ((allowed: boolean) => Promise<void>) | undefined;
}

interface Variant<R> {
  target: string;
  needs: Need[];
  prepare: (p: Principal) => Promise<Prepared<R>>;
  /** A code that still means "authorized, then refused by the handler" (no throwaway can avoid it). */
  accept?: Code | undefined;
}

interface MethodCase {
  method: DescMethod;
  mutating: boolean;
  variants: Variant<object>[];
}

function on<I extends DescMessage, O extends DescMessage>(
  method: DescMethodUnary<I, O> | DescMethodServerStreaming<I, O>,
  mutating: boolean,
  variants: Variant<MessageInitShape<I>>[],
): MethodCase {
  return { method, mutating, variants: variants as Variant<object>[] };
}

/** A variant with a fixed request and nothing to re-read. */
function fixed<R>(target: string, needs: Need[], request: () => R, accept?: Code): Variant<R> {
  return { target, needs, prepare: async () => ({ request: request() }), accept };
}

const KEY_PLACE = (): Record<string, [string, Place]> => ({ K1: [fx.K1, T("t1")], K2: [fx.K2, T("t2")], K0: [fx.K0, T("t0")], KN: [fx.KN, G] });
const TEAMS = ["t1", "t2", "t0", ""];
const LOG_FILTERS = (): [string, { key?: string; team?: string; customer?: string }, Place][] => [
  ["key K1", { key: fx.K1 }, T("t1")], ["key K2", { key: fx.K2 }, T("t2")], ["key K0", { key: fx.K0 }, T("t0")], ["key KN", { key: fx.KN }, G],
  ["team t1", { team: "t1" }, T("t1")], ["team t2", { team: "t2" }, T("t2")],
  ["customer c1", { customer: "c1" }, C("c1")], ["customer c2", { customer: "c2" }, C("c2")], ["everything", {}, G],
];

function keyCases(): MethodCase[] {
  const keys = KEY_PLACE();
  const moves: [string, string][] = [["t1", "t2"], ["t1", ""], ["t2", "t1"], ["t0", "t1"], ["", "t1"]];
  return [
    on(KeyService.method.createKey, true, TEAMS.map((t) => fixed(`in ${t || "no team"}`, need("keys.write", teamOrGlobal(t)), () => ({ name: "m", teamId: t })))),
    on(KeyService.method.getKey, false, Object.entries(keys).map(([n, [id, at]]) => fixed(n, need("keys.read", at), () => ({ id })))),
    on(KeyService.method.listKeys, false, TEAMS.map((t) => fixed(`team ${t || "(all)"}`, need("keys.read", teamOrGlobal(t)), () => ({ teamId: t })))),
    on(KeyService.method.updateKey, true, [
      ...TEAMS.map((t) => ({
        target: `rename a key in ${t || "no team"}`,
        needs: need("keys.write", teamOrGlobal(t)),
        prepare: async () => {
          const id = await tmpKey(t);
          return { request: { id, name: "renamed" }, check: async (ok: boolean) => expect((await getKey(id)).name).toBe(ok ? "renamed" : "tmp") };
        },
      })),
      ...moves.map(([from, to]) => ({
        target: `move a key ${from || "(none)"} -> ${to || "(none)"}`,
        needs: need("keys.write", teamOrGlobal(from), teamOrGlobal(to)),
        prepare: async () => {
          const id = await tmpKey(from);
          return { request: { id, teamId: to }, check: async (ok: boolean) => expect((await getKey(id)).teamId).toBe(ok ? to : from) };
        },
      })),
    ]),
    on(KeyService.method.rotateKey, true, TEAMS.map((t) => ({
      target: `a key in ${t || "no team"}`,
      needs: need("keys.write", teamOrGlobal(t)),
      prepare: async () => {
        const id = await tmpKey(t);
        const hint = (await getKey(id)).hint;
        return { request: { id }, check: async (ok: boolean) => expect((await getKey(id)).hint !== hint).toBe(ok) };
      },
    }))),
    on(KeyService.method.revokeKey, true, TEAMS.map((t) => ({
      target: `a key in ${t || "no team"}`,
      needs: need("keys.write", teamOrGlobal(t)),
      prepare: async () => {
        const id = await tmpKey(t);
        return { request: { id }, check: async (ok: boolean) => expect((await getKey(id)).revokedAt !== undefined).toBe(ok) };
      },
    }))),
  ];
}

function budgetCases(): MethodCase[] {
  const keys = KEY_PLACE();
  return [
    on(BudgetService.method.setBudget, true, [
      ...TEAMS.map((t) => ({
        target: `a key in ${t || "no team"}, within its team`,
        needs: need("budgets.write", teamOrGlobal(t)),
        prepare: async () => {
          const id = await tmpKey(t);
          return { request: { scope: { case: "keyId" as const, value: id }, budget: month(10) }, check: async (ok: boolean) => expect((await getKey(id)).budget?.limitUsd).toBe(ok ? 10 : undefined) };
        },
      })),
      // Its own budget, unchanged: a team's budget is set from above it.
      fixed("team t1 itself", need("budgets.write", C("c1")), () => ({ scope: { case: "teamId" as const, value: "t1" }, budget: month(100) })),
      ...["c1", "c2", ""].map((c) => ({
        target: `a team in ${c || "no customer"}`,
        needs: need("budgets.write", customerOrGlobal(c)),
        prepare: async () => {
          const id = await tmpTeam(c);
          return { request: { scope: { case: "teamId" as const, value: id }, budget: month(5) }, check: async (ok: boolean) => expect((await boot.org().getTeam({ id })).team!.budget?.limitUsd).toBe(ok ? 5 : undefined) };
        },
      })),
      fixed("customer c1 itself", need("budgets.write", G), () => ({ scope: { case: "customerId" as const, value: "c1" }, budget: month(1000) })),
      {
        target: "another customer",
        needs: need("budgets.write", G),
        prepare: async () => {
          const id = await tmpCustomer();
          return { request: { scope: { case: "customerId" as const, value: id }, budget: month(5) }, check: async (ok: boolean) => expect((await boot.org().getCustomer({ id })).customer!.budget?.limitUsd).toBe(ok ? 5 : undefined) };
        },
      },
    ]),
    on(BudgetService.method.getBudget, false, [
      ...Object.entries(keys).map(([n, [id, at]]) => fixed(n, need("budgets.read", at), () => ({ scope: { case: "keyId" as const, value: id } }))),
      ...["t1", "t2", "t0"].map((t) => fixed(`team ${t}`, need("budgets.read", T(t)), () => ({ scope: { case: "teamId" as const, value: t } }))),
      ...["c1", "c2"].map((c) => fixed(`customer ${c}`, need("budgets.read", C(c)), () => ({ scope: { case: "customerId" as const, value: c } }))),
    ]),
  ];
}

function orgCases(): MethodCase[] {
  const moves: [string, string][] = [["c1", "c2"], ["c1", ""], ["c2", "c1"], ["", "c1"]];
  const getTeam = async (id: string) => (await boot.org().getTeam({ id })).team!;
  return [
    on(OrgService.method.createCustomer, true, [fixed("a new customer", need("org.write", G), () => ({ name: "new" }))]),
    on(OrgService.method.getCustomer, false, ["c1", "c2"].map((c) => fixed(c, need("org.read", C(c)), () => ({ id: c })))),
    on(OrgService.method.listCustomers, false, [fixed("all", need("org.read", G), () => ({}))]),
    on(OrgService.method.updateCustomer, true, [
      fixed("c1 itself (same name)", need("org.write", G), () => ({ id: "c1", name: "C1" })),
      {
        target: "another customer",
        needs: need("org.write", G),
        prepare: async () => {
          const id = await tmpCustomer();
          return { request: { id, name: "renamed" }, check: async (ok: boolean) => expect((await boot.org().getCustomer({ id })).customer!.name).toBe(ok ? "renamed" : "tmp") };
        },
      },
    ]),
    on(OrgService.method.deleteCustomer, true, [
      // c1 has teams: past authorization the handler refuses, which leaves the fixture whole.
      fixed("c1 itself", need("org.write", G), () => ({ id: "c1" }), Code.InvalidArgument),
      {
        target: "another customer",
        needs: need("org.write", G),
        prepare: async () => {
          const id = await tmpCustomer();
          return { request: { id }, check: async (ok: boolean) => expect(await gone(boot.org().getCustomer({ id }))).toBe(ok) };
        },
      },
    ]),
    on(OrgService.method.createTeam, true, ["c1", "c2", ""].map((c) => fixed(`in ${c || "no customer"}`, need("org.write", customerOrGlobal(c)), () => ({ name: "new", customerId: c })))),
    on(OrgService.method.getTeam, false, ["t1", "t2", "t0"].map((t) => fixed(t, need("org.read", T(t)), () => ({ id: t })))),
    on(OrgService.method.listTeams, false, ["c1", "c2", ""].map((c) => fixed(`of ${c || "(all)"}`, need("org.read", customerOrGlobal(c)), () => ({ customerId: c })))),
    on(OrgService.method.updateTeam, true, [
      // Renaming the fixture's own team: allowed only from above it.
      fixed("t1 itself (same name)", need("org.write", C("c1")), () => ({ id: "t1", name: "T1" })),
      ...["c1", "c2", ""].map((c) => ({
        target: `rename a team in ${c || "no customer"}`,
        needs: need("org.write", customerOrGlobal(c)),
        prepare: async () => {
          const id = await tmpTeam(c);
          return { request: { id, name: "renamed" }, check: async (ok: boolean) => expect((await getTeam(id)).name).toBe(ok ? "renamed" : "tmp") };
        },
      })),
      ...moves.map(([from, to]) => ({
        target: `move a team ${from || "(none)"} -> ${to || "(none)"}`,
        needs: need("org.write", customerOrGlobal(from), customerOrGlobal(to)),
        prepare: async () => {
          const id = await tmpTeam(from);
          return { request: { id, customerId: to }, check: async (ok: boolean) => expect((await getTeam(id)).customerId).toBe(ok ? to : from) };
        },
      })),
    ]),
    on(OrgService.method.deleteTeam, true, ["c1", "c2", ""].map((c) => ({
      target: `a team in ${c || "no customer"}`,
      needs: need("org.write", customerOrGlobal(c)),
      prepare: async () => {
        const id = await tmpTeam(c);
        return { request: { id }, check: async (ok: boolean) => expect(await gone(getTeam(id))).toBe(ok) };
      },
    }))),
  ];
}

function otherCases(): MethodCase[] {
  const keys = KEY_PLACE();
  const filters = LOG_FILTERS();
  const getUser = async (id: string) => (await boot.users().getUser({ id })).user!;
  const apiKey = async (id: string) => (await boot.users().listApiKeys({ includeRevoked: true })).keys.find((k) => k.id === id)!;
  const viewerOf = (scope: Scope): Grant => ({ role: "viewer", scope });
  return [
    on(AuthService.method.whoAmI, false, [fixed("self", [], () => ({}))]),
    on(AuthService.method.logout, false, [fixed("self", [], () => ({}))]),
    on(CacheService.method.getCacheStats, false, [fixed("all tenants", need("cache.read", G), () => ({}))]),
    on(CacheService.method.purgeCache, true, [
      ...Object.entries(keys).map(([n, [id, at]]) => fixed(`key ${n}`, need("cache.purge", at), () => ({ keyId: id }))),
      ...["t1", "t2", "t0"].map((t) => fixed(`team ${t}`, need("cache.purge", T(t)), () => ({ teamId: t }))),
      ...["c1", "c2"].map((c) => fixed(`customer ${c}`, need("cache.purge", C(c)), () => ({ customerId: c }))),
      fixed("a model, every tenant", need("cache.purge", G), () => ({ model: "gpt-4o" })),
      fixed("everything", need("cache.purge", G), () => ({ all: true })),
    ]),
    on(LogService.method.searchRequests, false, filters.map(([n, filter, at]) => fixed(n, need("logs.read", at), () => ({ filter })))),
    on(LogService.method.aggregateRequests, false, filters.map(([n, filter, at]) => fixed(n, need("logs.read", at), () => ({ filter, groupBy: AggregateRequestsRequest_GroupBy.MODEL })))),
    // Provider health is not tenant data: any grant that reads routing sees it.
    on(RoutingService.method.getHealth, false, [fixed("providers", [{ perm: "routing.read" }], () => ({}))]),
    on(UserService.method.createUser, true, [fixed("a person", need("users.write", G), () => ({ email: `${uid("new")}@example.com`, name: "new", grants: [] }))]),
    on(UserService.method.getUser, false, [fixed("a person", need("users.read", G), () => ({ id: fx.user }))]),
    on(UserService.method.listUsers, false, [fixed("everyone", need("users.read", G), () => ({}))]),
    on(UserService.method.updateUser, true, [{
      target: "a person",
      needs: need("users.write", G),
      prepare: async () => {
        const id = await tmpUser();
        return { request: { id, name: "renamed" }, check: async (ok) => expect((await getUser(id)).name).toBe(ok ? "renamed" : "tmp") };
      },
    }]),
    on(UserService.method.deleteUser, true, [{
      target: "a person",
      needs: need("users.write", G),
      prepare: async () => {
        const id = await tmpUser();
        return { request: { id }, check: async (ok) => expect(await gone(getUser(id))).toBe(ok) };
      },
    }]),
    on(UserService.method.setGrants, true, [{
      target: "a person, to viewer@t1",
      needs: [...need("users.write", G), { grantable: viewerOf({ team: "t1" }) }],
      prepare: async () => {
        const id = await tmpUser();
        return { request: { userId: id, grants: [grantMessage(viewerOf({ team: "t1" }))] }, check: async (ok) => expect((await getUser(id)).grants.length).toBe(ok ? 1 : 0) };
      },
    }]),
    on(UserService.method.createApiKey, true, ([{ team: "t1" }, { customer: "c1" }, { global: true }, { team: "t2" }, { customer: "c2" }, { team: "t0" }] as Scope[]).map((scope) =>
      fixed(describeGrant(viewerOf(scope)), [{ grantable: viewerOf(scope) }], () => ({ name: uid("ak"), grants: [grantMessage(viewerOf(scope))] })))),
    on(UserService.method.listApiKeys, false, [fixed("mine", [], () => ({ includeRevoked: true }))]),
    on(UserService.method.revokeApiKey, true, [
      {
        target: "my own",
        needs: [],
        prepare: async (p) => {
          // Minted by the principal itself when it can; otherwise by the bootstrap owner (the call is refused anyway).
          const creator = p.kind === "apikey" ? p : byName("bootstrap");
          const made = await clientFor(UserService, gw.url, creator.secret!).createApiKey({ name: uid("own"), grants: creator.grants.map(grantMessage) });
          const id = made.key!.id;
          return { request: { id }, check: async (ok) => expect((await apiKey(id)).revokedAt !== undefined).toBe(ok) };
        },
      },
      {
        target: "someone else's (viewer@t1)",
        needs: [...need("users.write", G), { grantable: viewerOf({ team: "t1" }) }],
        prepare: async (p) => {
          const other = p.kind === "bootstrap" ? byName("admin@global") : byName("bootstrap");
          const made = await clientFor(UserService, gw.url, other.secret!).createApiKey({ name: uid("other"), grants: [grantMessage(viewerOf({ team: "t1" }))] });
          const id = made.key!.id;
          return { request: { id }, check: async (ok) => expect((await apiKey(id)).revokedAt !== undefined).toBe(ok) };
        },
      },
    ]),
    // The configuration shows how everything is set up: those who may change providers read it; owners reload it.
    // This gateway has no file, so an authorized reload is refused by the handler with FailedPrecondition.
    on(ConfigService.method.getConfig, false, [fixed("the configuration", need("providers.write", G), () => ({}))]),
    on(ConfigService.method.reloadConfig, true, [fixed("the file", need("config.write", G), () => ({}), Code.FailedPrecondition)]),
    on(AuditService.method.listAuditEvents, false, [fixed("the log", need("audit.read", G), () => ({ pageSize: 1 }))]),
    on(AuditService.method.verifyAudit, false, [fixed("the log", need("audit.read", G), () => ({}))]),
    on(AuditService.method.exportAudit, false, [fixed("the log", need("audit.read", G), () => ({ startTimeMs: BigInt(Date.now() - 1000) }))]),
  ];
}

function providerCases(): MethodCase[] {
  const providers = async () => (await boot.providers().listProviders({})).providers;
  const routes = () => boot.providers().listRoutes({});
  const has = async (id: string) => (await providers()).some((x) => x.id === id);
  const hasAlias = async (name: string) => (await routes()).aliases.some((a) => a.name === name);
  const hasRoute = async (name: string) => (await routes()).routes.some((r) => r.name === name);
  const provider = (id: string) => ({ id, type: "openai-compatible", baseUrl: "http://127.0.0.1:9/v1", models: ["m"] });
  const tmpProvider = async () => (await boot.providers().createProvider(provider(uid("p")))).provider!.id;
  const change = (what: string, prepare: () => Promise<Prepared<object>>): Variant<object> => ({ target: what, needs: need("providers.write", G), prepare });
  return [
    on(ProviderService.method.listProviders, false, [fixed("all", [{ perm: "routing.read" }], () => ({}))]),
    on(ProviderService.method.listRoutes, false, [fixed("all", [{ perm: "routing.read" }], () => ({}))]),
    on(ProviderService.method.createProvider, true, [change("a provider", async () => {
      const id = uid("p");
      return { request: provider(id), check: async (ok) => expect(await has(id)).toBe(ok) };
    })]),
    on(ProviderService.method.updateProvider, true, [change("a provider", async () => {
      const id = await tmpProvider();
      return { request: { id, models: ["m", "n"] }, check: async (ok) => expect((await providers()).find((x) => x.id === id)!.models.length).toBe(ok ? 2 : 1) };
    })]),
    on(ProviderService.method.deleteProvider, true, [change("a provider", async () => {
      const id = await tmpProvider();
      return { request: { id }, check: async (ok) => expect(await has(id)).toBe(!ok) };
    })]),
    on(ProviderService.method.setAlias, true, [change("an alias", async () => {
      const name = uid("alias");
      return { request: { name, target: "p0/m" }, check: async (ok) => expect(await hasAlias(name)).toBe(ok) };
    })]),
    on(ProviderService.method.deleteAlias, true, [change("an alias", async () => {
      const name = uid("alias");
      await boot.providers().setAlias({ name, target: "p0/m" });
      return { request: { name }, check: async (ok) => expect(await hasAlias(name)).toBe(!ok) };
    })]),
    on(ProviderService.method.setRoute, true, [change("a route", async () => {
      const name = uid("route");
      return { request: { name, targets: [{ model: "p0/m", weight: 1 }] }, check: async (ok) => expect(await hasRoute(name)).toBe(ok) };
    })]),
    on(ProviderService.method.deleteRoute, true, [change("a route", async () => {
      const name = uid("route");
      await boot.providers().setRoute({ name, targets: [{ model: "p0/m", weight: 1 }] });
      return { request: { name }, check: async (ok) => expect(await hasRoute(name)).toBe(!ok) };
    })]),
  ];
}

/** Every method the matrix calls, by service. */
const allCases = (): MethodCase[] => [...keyCases(), ...budgetCases(), ...orgCases(), ...providerCases(), ...otherCases()];

const PUBLIC = new Set(["switchyard.v1.AuthService/GetAuthConfig", "switchyard.v1.AuthService/Login"]);
const fullName = (m: DescMethod): string => `${m.parent.typeName}/${m.name}`;

describe("the permission table", () => {
  it("has exactly one rule per admin method, and the matrix covers every non-public one", () => {
    const methods = ADMIN_SERVICES.flatMap((s) => s.methods.map(fullName));
    expect(methods.filter((m) => !PERMISSION_TABLE.has(m)), "methods without a rule").toEqual([]);
    expect([...PERMISSION_TABLE.keys()].filter((m) => !methods.includes(m)), "rules for no method").toEqual([]);
    const covered = new Set(allCases().map((c) => fullName(c.method)));
    expect(methods.filter((m) => !PUBLIC.has(m) && !covered.has(m)), "methods the matrix does not call").toEqual([]);
  });

  it("lets anyone call GetAuthConfig and Login (sign-in needs no credential)", async () => {
    const { connect } = transports(gw.url);
    expect((await invoke(connect, AuthService.method.getAuthConfig, {}, {})).code).toBe(0);
    const login = await invoke(connect, AuthService.method.login, { method: { case: "adminKey", value: "wrong-admin-key-0123456789" } }, {});
    expect(login.code).toBe(Code.Unauthenticated); // reached the handler: a wrong key, not a missing credential
  });
});

interface CaseResult {
  transport: TransportName;
  label: string;
  principal: Principal;
  mutating: boolean;
  expected: Verdict;
  got: Verdict;
  code: Code | 0;
  message: string;
  requestId: string;
  accept?: Code | undefined;
  checkError?: string | undefined;
}

describe("the admin permission matrix", () => {
  let results: CaseResult[] = [];

  it("allows and refuses every admin RPC as the rules say, over Connect and gRPC", { timeout: 120_000 }, async () => {
    const t = transports(gw.url);
    const cases = allCases();
    const tasks: (() => Promise<CaseResult>)[] = [];
    for (const transport of ["connect", "grpc"] as const) {
      for (const c of cases) {
        for (const v of c.variants) {
          for (const p of principals) {
            tasks.push(async () => {
              const requestId = uid("mx");
              const label = `${fullName(c.method)} [${v.target}] as ${p.name} over ${transport}`;
              const prepared = await v.prepare(p);
              const r = await invoke(t[transport], c.method, prepared.request, headersFor(p.secret, requestId));
              let checkError: string | undefined;
              try {
                await prepared.check?.(r.code === 0);
              } catch (err) {
                checkError = (err as Error).message;
              }
              return { transport, label, principal: p, mutating: c.mutating, expected: expected(p, v.needs), got: r.verdict, code: r.code, message: r.message, requestId, accept: v.accept, checkError };
            });
          }
        }
      }
    }
    const started = performance.now();
    results = await inBatches(tasks, 32);
    const problems: string[] = [];
    for (const r of results) {
      if (r.got !== r.expected) problems.push(`${r.label}: expected ${r.expected}, got ${r.got} (${Code[r.code] ?? "Ok"}: ${r.message})`);
      else if (r.got === "allowed" && r.code !== 0 && r.code !== r.accept) problems.push(`${r.label}: authorized but failed: ${Code[r.code]}: ${r.message}`);
      if (r.checkError !== undefined) problems.push(`${r.label}: re-read: ${r.checkError}`);
    }
    const refusals = results.filter((r) => r.expected !== "allowed").length;
    console.info(`admin matrix: ${results.length} calls (${results.length - refusals} allowed, ${refusals} refused) in ${Math.round(performance.now() - started)} ms`);
    expect(problems).toEqual([]);
  });

  it("left an audit entry for every change it refused an admin identity", async () => {
    expect(results.length).toBeGreaterThan(0);
    const audit = await auditByRequestId(gw.url, ADMIN);
    const missing: string[] = [];
    for (const r of results) {
      if (!r.mutating || r.got !== "denied" || (r.principal.kind !== "apikey" && r.principal.kind !== "bootstrap")) continue;
      const e = audit.get(r.requestId);
      if (e?.outcome !== "permission_denied") missing.push(`${r.label}: ${e === undefined ? "no entry" : `outcome ${e.outcome}`}`);
    }
    expect(missing).toEqual([]);
  });
});

// ---- escalation: every field that could raise what a caller holds -------------

/** Request ids of refusals that must show in the audit log as permission_denied. */
const deniedIds: string[] = [];

let escalationCalls = 0;

async function attempt(who: Principal, method: DescMethod, request: object, extra: Record<string, string> = {}) {
  const requestId = uid("esc");
  escalationCalls++;
  const r = await invoke(transports(gw.url).connect, method, request, { ...headersFor(who.secret, requestId), ...extra });
  return { ...r, requestId };
}

interface Expect {
  /** The refusal's code (default PermissionDenied). */
  code?: Code;
  headers?: Record<string, string>;
  /** What the case is about, for the failure message. */
  note?: string;
}

const show = (request: object): string => JSON.stringify(request, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v));

/**
 * Refused with the expected code, and the entity re-read afterwards is as it
 * was. Soft: every case runs and every failure is listed.
 */
async function refused(who: Principal, method: DescMethod, request: object, reread: () => Promise<unknown>, o: Expect = {}): Promise<void> {
  const code = o.code ?? Code.PermissionDenied;
  const before = await reread();
  const r = await attempt(who, method, request, o.headers);
  const label = `${o.note ?? ""} ${fullName(method)} ${show(request)} as ${who.name}`.trim();
  expect.soft(Code[r.code] ?? "Ok", `${label}: ${r.message}`).toBe(Code[code]);
  expect.soft(await reread(), `${label}: changed state`).toEqual(before);
  if (code === Code.PermissionDenied && r.code === code) deniedIds.push(r.requestId);
}

async function allowed(who: Principal, method: DescMethod, request: object, o: Expect = {}): Promise<void> {
  const r = await attempt(who, method, request, o.headers);
  expect.soft(Code[r.code] ?? "Ok", `${o.note ?? ""} ${fullName(method)} ${show(request)} as ${who.name}: ${r.message}`.trim()).toBe("Ok");
}

const grant = (role: Role, scope: Scope): Grant => ({ role, scope });
const GLOBAL: Scope = { global: true };
const grantsOf = (...gs: Grant[]) => gs.map(grantMessage);
const userById = async (id: string) => (await boot.users().getUser({ id })).user!;
const userByEmail = async (email: string) => (await boot.users().listUsers({ pageSize: 1000 })).users.find((u) => u.email === email);
const apiKeysNamed = async (name: string) => (await boot.users().listApiKeys({ includeRevoked: true })).keys.filter((k) => k.name === name);
async function keysNamed(name: string): Promise<string[]> {
  const out: string[] = [];
  let pageToken = "";
  do {
    const page = await boot.keys().listKeys({ includeRevoked: true, pageSize: 1000, pageToken });
    out.push(...page.keys.filter((k) => k.name === name).map((k) => k.id));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return out;
}

/** Signs in with Connect JSON over fetch; returns the session cookie and the CSRF token. */
async function signIn(method: object): Promise<{ cookie: string; csrf: string }> {
  const res = await fetch(`${gw.url}/switchyard.v1.AuthService/Login`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...method }) });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { csrfToken: string };
  return { cookie: res.headers.getSetCookie()[0]!.split(";", 1)[0]!, csrf: body.csrfToken };
}

describe("escalation", () => {
  const p = (name: string): Principal => byName(name);

  it("people: users.write is global only, and nobody grants a role or scope beyond their own", async () => {
    const gAdmin = p("admin@global");
    for (const [who, g] of [
      [gAdmin, grant("owner", GLOBAL)],
      [p("admin@customer:c1"), grant("viewer", { customer: "c1" })],
      [p("admin@customer:c1"), grant("viewer", { customer: "c2" })],
      [p("admin@customer:c1"), grant("admin", GLOBAL)],
      [p("admin@team:t1"), grant("viewer", { team: "t1" })],
      [p("editor@global"), grant("viewer", { team: "t1" })],
    ] as const) {
      const email = `${uid("esc")}@example.com`;
      await refused(who, UserService.method.createUser, { email, name: "x", grants: grantsOf(g) }, () => userByEmail(email));
    }
    const equal = `${uid("esc")}@example.com`;
    await allowed(gAdmin, UserService.method.createUser, { email: equal, name: "x", grants: grantsOf(grant("admin", GLOBAL), grant("viewer", { customer: "c2" })) });
    // Owner is global only: a shape error, whoever asks.
    const email = `${uid("esc")}@example.com`;
    await refused(p("owner@global"), UserService.method.createUser, { email, name: "x", grants: grantsOf(grant("owner", { customer: "c1" })) }, () => userByEmail(email), { code: Code.InvalidArgument });

    const x = await tmpUser();
    for (const [who, g] of [
      [gAdmin, grant("owner", GLOBAL)],
      [p("admin@customer:c1"), grant("viewer", { customer: "c1" })],
      [p("admin@customer:c1"), grant("viewer", { customer: "c2" })],
      [p("admin@team:t1"), grant("viewer", { team: "t1" })],
    ] as const) {
      await refused(who, UserService.method.setGrants, { userId: x, grants: grantsOf(g) }, () => userById(x));
    }
    await allowed(gAdmin, UserService.method.setGrants, { userId: x, grants: grantsOf(grant("admin", { customer: "c2" })) });
  });

  it("people: nobody changes their own grants", async () => {
    const password = "correct horse battery staple";
    const email = `${uid("self")}@example.com`;
    const self = (await boot.users().createUser({ email, name: "self", password, grants: grantsOf(grant("admin", GLOBAL)) })).user!;
    const session = await signIn({ password: { email, password } });
    const me: Principal = { name: `session of ${email}`, kind: "session", grants: [grant("admin", GLOBAL)] };
    const headers = { cookie: session.cookie, "x-csrf-token": session.csrf };
    // Grants it could give anyone else, and more: both refused, because they are its own.
    for (const gs of [[grant("admin", GLOBAL), grant("viewer", { team: "t1" })], [grant("owner", GLOBAL)], [grant("viewer", { team: "t1" })]]) {
      await refused(me, UserService.method.setGrants, { userId: self.id, grants: grantsOf(...gs) }, () => userById(self.id), { headers });
    }
    // The same session may set someone else's: the refusals above are the self rule, not the session.
    await allowed(me, UserService.method.setGrants, { userId: await tmpUser(), grants: grantsOf(grant("viewer", { team: "t1" })) }, { headers });
  });

  it("people: an admin cannot change, disable or delete an owner; the last owner stays", async () => {
    const gAdmin = p("admin@global");
    const o1 = (await boot.users().createUser({ email: `${uid("owner")}@example.com`, name: "O1", grants: grantsOf(grant("owner", GLOBAL)) })).user!.id;
    const o1Now = () => userById(o1);
    await refused(gAdmin, UserService.method.setGrants, { userId: o1, grants: grantsOf(grant("viewer", { team: "t1" })) }, o1Now);
    await refused(gAdmin, UserService.method.updateUser, { id: o1, name: "renamed" }, o1Now);
    await refused(gAdmin, UserService.method.updateUser, { id: o1, disabled: true }, o1Now);
    await refused(gAdmin, UserService.method.updateUser, { id: o1, password: "a new password, long enough" }, o1Now);
    await refused(gAdmin, UserService.method.deleteUser, { id: o1 }, o1Now);

    // O1 is the only owner among people: even owners cannot remove, disable or delete it.
    for (const who of [p("bootstrap"), p("owner@global")]) {
      await refused(who, UserService.method.setGrants, { userId: o1, grants: grantsOf(grant("admin", GLOBAL)) }, o1Now, { code: Code.InvalidArgument });
      await refused(who, UserService.method.updateUser, { id: o1, disabled: true }, o1Now, { code: Code.InvalidArgument });
      await refused(who, UserService.method.deleteUser, { id: o1 }, o1Now, { code: Code.InvalidArgument });
    }
    const o2 = (await boot.users().createUser({ email: `${uid("owner")}@example.com`, name: "O2", grants: grantsOf(grant("owner", GLOBAL)) })).user!.id;
    await allowed(p("bootstrap"), UserService.method.setGrants, { userId: o1, grants: grantsOf(grant("admin", GLOBAL)) });
    await refused(p("owner@global"), UserService.method.deleteUser, { id: o2 }, () => userById(o2), { code: Code.InvalidArgument });
  });

  it("admin API keys: nobody mints one holding more than they hold", async () => {
    const next: Partial<Record<Role, Role>> = { viewer: "editor", editor: "admin" };
    for (const who of principals.filter((x) => x.kind === "apikey" || x.kind === "bootstrap")) {
      const own = who.grants[0]!;
      const candidates: Grant[] = [own, grant("owner", GLOBAL), grant(own.role === "owner" ? "admin" : own.role, GLOBAL)];
      if (next[own.role] !== undefined) candidates.push(grant(next[own.role]!, own.scope));
      if (own.role === "admin" && "global" in own.scope) candidates.push(grant("owner", GLOBAL));
      if ("team" in own.scope) candidates.push(grant(own.role, { customer: "c1" }), grant(own.role, { team: "t2" }));
      if ("customer" in own.scope) candidates.push(grant(own.role, { customer: "c2" }), grant(own.role, { team: "t1" }), grant(own.role, { team: "t2" }));
      for (const g of candidates) {
        const name = uid("mint");
        if (satisfied(who.grants, [{ grantable: g }])) await allowed(who, UserService.method.createApiKey, { name, grants: grantsOf(g) });
        else await refused(who, UserService.method.createApiKey, { name, grants: grantsOf(g) }, () => apiKeysNamed(name));
      }
    }
  });

  it("admin API keys: only the creator or a global admin revokes one, and not one holding more than the admin", async () => {
    const victim = (await boot.users().createApiKey({ name: uid("victim"), grants: grantsOf(grant("viewer", { team: "t1" })) })).key!.id;
    const state = async (id: string) => (await boot.users().listApiKeys({ includeRevoked: true })).keys.find((k) => k.id === id);
    for (const who of principals.filter((x) => x.kind === "apikey" && !satisfied(x.grants, need("users.write", G)))) {
      await refused(who, UserService.method.revokeApiKey, { id: victim }, () => state(victim));
    }
    const ownerKey = (await boot.users().createApiKey({ name: uid("victim"), grants: grantsOf(grant("owner", GLOBAL)) })).key!.id;
    await refused(p("admin@global"), UserService.method.revokeApiKey, { id: ownerKey }, () => state(ownerKey));
    await allowed(p("admin@global"), UserService.method.revokeApiKey, { id: victim });
  });

  it("virtual keys: a team editor keeps keys in its team and within its team's budget and limits", async () => {
    const t1b = await tmpTeam("c1");
    const within = { budget: month(50), limits: T1_LIMITS };
    const editors = [p("editor@team:t1"), p("editor@customer:c1"), p("editor@global")];
    // [what, fields, verdict for the t1, c1 and global editor]
    const rows: [string, Record<string, unknown>, Verdict[]][] = [
      ["to team t2", { teamId: "t2" }, ["denied", "denied", "allowed"]],
      ["out of any team", { teamId: "" }, ["denied", "denied", "allowed"]],
      ["to another team of c1", { teamId: t1b }, ["denied", "allowed", "allowed"]],
      ["budget above T1's", { budget: month(150) }, ["denied", "allowed", "allowed"]],
      ["T1's amount per day, T1 has it per month", { budget: { limitUsd: 100, period: Period.DAY } }, ["denied", "allowed", "allowed"]],
      ["rpm above T1's", { limits: { ...T1_LIMITS, rpm: 61 } }, ["denied", "allowed", "allowed"]],
      ["tpm above T1's", { limits: { ...T1_LIMITS, tpm: 10_001n } }, ["denied", "allowed", "allowed"]],
      ["max_concurrent above T1's", { limits: { ...T1_LIMITS, maxConcurrent: 6 } }, ["denied", "allowed", "allowed"]],
      ["within T1", within, ["allowed", "allowed", "allowed"]],
    ];
    for (const [what, fields, verdicts] of rows) {
      for (const [i, who] of editors.entries()) {
        const name = uid("esc-key");
        const create = { name, teamId: "t1", ...fields };
        const id = await tmpKey("t1");
        const update = { id, ...fields };
        if (verdicts[i] === "allowed") {
          await allowed(who, KeyService.method.createKey, create, { note: what });
          await allowed(who, KeyService.method.updateKey, update, { note: what });
        } else {
          await refused(who, KeyService.method.createKey, create, () => keysNamed(name), { note: what });
          await refused(who, KeyService.method.updateKey, update, () => getKey(id), { note: what });
        }
      }
    }
  });

  it("budgets: set from above the team, and a team's keys stay within the team's", async () => {
    const t1Editor = p("editor@team:t1");
    const c1Editor = p("editor@customer:c1");
    const team = async () => (await boot.org().getTeam({ id: "t1" })).team!;
    const k1 = () => getKey(fx.K1);
    const on = (scope: { case: "keyId" | "teamId" | "customerId"; value: string }, rest: object) => ({ scope, ...rest });
    await refused(t1Editor, BudgetService.method.setBudget, on({ case: "teamId", value: "t1" }, { budget: month(200) }), team);
    await refused(t1Editor, BudgetService.method.setBudget, on({ case: "keyId", value: fx.K1 }, { budget: month(150) }), k1);
    await refused(t1Editor, BudgetService.method.setBudget, on({ case: "keyId", value: fx.K1 }, { budget: { limitUsd: 100, period: Period.MINUTE } }), k1);
    await refused(t1Editor, BudgetService.method.setBudget, on({ case: "keyId", value: fx.K1 }, { limits: { ...T1_LIMITS, rpm: 61 } }), k1);
    await allowed(t1Editor, BudgetService.method.setBudget, on({ case: "keyId", value: fx.K1 }, { budget: month(50), limits: T1_LIMITS }));
    await allowed(c1Editor, BudgetService.method.setBudget, on({ case: "teamId", value: "t1" }, { budget: month(100) }));
    await refused(c1Editor, BudgetService.method.setBudget, on({ case: "customerId", value: "c1" }, { budget: month(5000) }), async () => (await boot.org().getCustomer({ id: "c1" })).customer!);
  });

  it("teams: a customer admin cannot move its teams out or create teams elsewhere", async () => {
    const c1Admin = p("admin@customer:c1");
    const t1 = async () => (await boot.org().getTeam({ id: "t1" })).team!;
    await refused(c1Admin, OrgService.method.updateTeam, { id: "t1", customerId: "c2" }, t1);
    await refused(c1Admin, OrgService.method.updateTeam, { id: "t1", customerId: "" }, t1);
    for (const customerId of ["c2", ""]) {
      const id = uid("team");
      await refused(c1Admin, OrgService.method.createTeam, { id, name: "x", customerId }, () => gone(boot.org().getTeam({ id })));
    }
    await allowed(c1Admin, OrgService.method.updateTeam, { id: "t1", name: "T1" });
    await allowed(c1Admin, OrgService.method.createTeam, { id: uid("team"), name: "x", customerId: "c1" });
  });

  it("recorded every refusal above in the audit log as permission_denied", async () => {
    console.info(`escalation: ${escalationCalls} calls, ${deniedIds.length} refused with permission_denied`);
    expect(deniedIds.length).toBeGreaterThan(50);
    const audit = await auditByRequestId(gw.url, ADMIN);
    const missing = deniedIds.map((id) => [id, audit.get(id)?.outcome ?? "no entry"] as const).filter(([, outcome]) => outcome !== "permission_denied");
    expect(missing.map(([id, outcome]) => `${id}: ${audit.get(id)?.action ?? "?"} ${outcome}`)).toEqual([]);
  });
});

// ---- the web UI's session: CSRF -----------------------------------------------------

describe("sessions", () => {
  it("must echo x-csrf-token on every call but WhoAmI", async () => {
    const { cookie, csrf } = await signIn({ adminKey: ADMIN });
    expect(cookie).toMatch(/^sy_session=/);
    const post = (method: string, headers: Record<string, string> = {}) =>
      fetch(`${gw.url}/switchyard.v1.${method}`, { method: "POST", headers: { "content-type": "application/json", cookie, ...headers }, body: "{}" });
    const bare = await post("KeyService/ListKeys");
    expect(bare.status).toBe(403);
    expect(((await bare.json()) as { code: string }).code).toBe("permission_denied");
    expect((await post("KeyService/ListKeys", { "x-csrf-token": `${csrf}x` })).status).toBe(403);
    expect((await post("KeyService/ListKeys", { "x-csrf-token": csrf })).status).toBe(200);
    const who = await post("AuthService/WhoAmI");
    expect(who.status).toBe(200);
    expect(((await who.json()) as { csrfToken: string }).csrfToken).toBe(csrf);
  });
});
