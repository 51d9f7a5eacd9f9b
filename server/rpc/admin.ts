import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  BudgetService,
  Period as PeriodEnum,
  type Budget as BudgetMessage,
  type BudgetSchema,
  type Limits as LimitsMessage,
  type LimitsSchema,
} from "../../gen/switchyard/v1/budgets_pb.ts";
import { CacheMode as CacheModeEnum, type CachePolicy as CachePolicyMessage, type CachePolicySchema } from "../../gen/switchyard/v1/cache_pb.ts";
import { KeyService, type VirtualKeySchema } from "../../gen/switchyard/v1/keys_pb.ts";
import { OrgService, type CustomerSchema, type TeamSchema } from "../../gen/switchyard/v1/org_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import type { Admin, EntityRef, KeyInfo } from "../governance/admin.ts";
import type { Budget, CacheMode, CachePolicy, Customer, Limits, Period, Team } from "../governance/types.ts";
import { kPrincipal, rpcCall } from "./context.ts";

/**
 * switchyard.v1.KeyService, BudgetService and OrgService over the admin API
 * (server/governance/admin.ts). Who may call what is decided by the
 * permission table (server/admin/access.ts), enforced by the interceptor in
 * `options`.
 * This file only maps messages; the rules live in the admin API.
 */
export function registerAdminServices(router: ConnectRouter, admin: Admin, options: ServiceOptions): void {
  router.service(KeyService, {
    createKey: (req, ctx) =>
      asAdmin(ctx, async () => {
        const { key, secret } = await admin.createKey({
          name: req.name,
          teamId: req.teamId || undefined,
          allowedModels: req.allowedModels,
          allowedProviders: req.allowedProviders,
          budget: req.budget === undefined ? undefined : budgetIn(req.budget, "budget"),
          limits: req.limits === undefined ? undefined : limitsIn(req.limits),
          cache: req.cache === undefined ? undefined : cacheIn(req.cache, "cache"),
          expiresAt: req.expiresAt === undefined ? undefined : timestampMs(req.expiresAt),
          metadata: req.metadata,
        });
        return { key: keyOut(key), secret };
      }),
    getKey: (req, ctx) => asAdmin(ctx, async () => ({ key: keyOut(await admin.getKey(req.id)) })),
    listKeys: (req, ctx) =>
      asAdmin(ctx, async () => {
        const page = await admin.listKeys({ teamId: req.teamId || undefined, includeRevoked: req.includeRevoked, pageSize: req.pageSize, pageToken: req.pageToken || undefined });
        return { keys: page.items.map(keyOut), nextPageToken: page.nextPageToken ?? "" };
      }),
    updateKey: (req, ctx) =>
      asAdmin(ctx, async () => {
        const key = await admin.updateKey(req.id, {
          name: req.name,
          teamId: req.teamId === "" ? null : req.teamId,
          allowedModels: listChange(req.allowedModels, req.clearAllowedModels, "allowed_models"),
          allowedProviders: listChange(req.allowedProviders, req.clearAllowedProviders, "allowed_providers"),
          budget: change(req.budget, req.clearBudget, "budget", budgetIn),
          limits: change(req.limits, req.clearLimits, "limits", limitsIn),
          cache: change(req.cache, req.clearCache, "cache", cacheIn),
          expiresAt: change(req.expiresAt, req.clearExpiresAt, "expires_at", timestampMs),
          metadata: metadataChange(req.metadata, req.clearMetadata),
          enabled: req.enabled,
        });
        return { key: keyOut(key) };
      }),
    rotateKey: (req, ctx) =>
      asAdmin(ctx, async () => {
        const { key, secret } = await admin.rotateKey(req.id);
        return { key: keyOut(key), secret };
      }),
    revokeKey: (req, ctx) => asAdmin(ctx, async () => ({ key: keyOut(await admin.revokeKey(req.id)) })),
  }, options);

  router.service(BudgetService, {
    setBudget: (req, ctx) =>
      asAdmin(ctx, async () => {
        const set = await admin.setBudget(scopeIn(req.scope), {
          budget: change(req.budget, req.clearBudget, "budget", budgetIn),
          limits: change(req.limits, req.clearLimits, "limits", limitsIn),
        });
        return { budget: budgetOut(set.budget), limits: limitsOut(set.limits) };
      }),
    getBudget: (req, ctx) =>
      asAdmin(ctx, async () => {
        const s = await admin.getBudget(scopeIn(req.scope));
        return {
          budget: budgetOut(s.budget),
          limits: limitsOut(s.limits),
          spentUsd: s.spentUsd,
          reservedUsd: s.reservedUsd,
          leasedUsd: s.leasedUsd,
          remainingUsd: s.remainingUsd,
          windowStart: ts(s.windowStart),
          windowEnd: ts(s.windowEnd),
          inFlight: s.inFlight,
        };
      }),
  }, options);

  router.service(OrgService, {
    createCustomer: (req, ctx) =>
      asAdmin(ctx, async () => ({
        customer: customerOut(
          await admin.createCustomer({
            id: req.id || undefined,
            name: req.name,
            budget: req.budget === undefined ? undefined : budgetIn(req.budget, "budget"),
            cache: req.cache === undefined ? undefined : cacheIn(req.cache, "cache"),
            metadata: req.metadata,
          }),
        ),
      })),
    getCustomer: (req, ctx) => asAdmin(ctx, async () => ({ customer: customerOut(await admin.getCustomer(req.id)) })),
    listCustomers: (req, ctx) =>
      asAdmin(ctx, async () => {
        const page = await admin.listCustomers({ pageSize: req.pageSize, pageToken: req.pageToken || undefined });
        return { customers: page.items.map(customerOut), nextPageToken: page.nextPageToken ?? "" };
      }),
    updateCustomer: (req, ctx) =>
      asAdmin(ctx, async () => {
        const customer = await admin.updateCustomer(req.id, {
          name: req.name,
          budget: change(req.budget, req.clearBudget, "budget", budgetIn),
          cache: change(req.cache, req.clearCache, "cache", cacheIn),
          metadata: metadataChange(req.metadata, req.clearMetadata),
        });
        return { customer: customerOut(customer) };
      }),
    deleteCustomer: (req, ctx) =>
      asAdmin(ctx, async () => {
        await admin.deleteCustomer(req.id);
        return {};
      }),
    createTeam: (req, ctx) =>
      asAdmin(ctx, async () => {
        const team = await admin.createTeam({
          id: req.id || undefined,
          name: req.name,
          customerId: req.customerId || undefined,
          budget: req.budget === undefined ? undefined : budgetIn(req.budget, "budget"),
          limits: req.limits === undefined ? undefined : limitsIn(req.limits),
          cache: req.cache === undefined ? undefined : cacheIn(req.cache, "cache"),
          metadata: req.metadata,
        });
        return { team: teamOut(team) };
      }),
    getTeam: (req, ctx) => asAdmin(ctx, async () => ({ team: teamOut(await admin.getTeam(req.id)) })),
    listTeams: (req, ctx) =>
      asAdmin(ctx, async () => {
        const page = await admin.listTeams({ customerId: req.customerId || undefined, pageSize: req.pageSize, pageToken: req.pageToken || undefined });
        return { teams: page.items.map(teamOut), nextPageToken: page.nextPageToken ?? "" };
      }),
    updateTeam: (req, ctx) =>
      asAdmin(ctx, async () => {
        const team = await admin.updateTeam(req.id, {
          name: req.name,
          customerId: req.customerId === "" ? null : req.customerId,
          budget: change(req.budget, req.clearBudget, "budget", budgetIn),
          limits: change(req.limits, req.clearLimits, "limits", limitsIn),
          cache: change(req.cache, req.clearCache, "cache", cacheIn),
          metadata: metadataChange(req.metadata, req.clearMetadata),
        });
        return { team: teamOut(team) };
      }),
    deleteTeam: (req, ctx) =>
      asAdmin(ctx, async () => {
        await admin.deleteTeam(req.id);
        return {};
      }),
  }, options);
}

/** Per-service options: the access interceptor (server/admin/access.ts) that authorizes every call. */
export type ServiceOptions = Parameters<ConnectRouter["service"]>[2];

/**
 * Runs a handler body for an admin caller; gateway errors become Connect
 * errors. The access interceptor has authorized the call against the
 * permission table; this only refuses a handler registered without it.
 */
export function asAdmin<T>(ctx: HandlerContext, fn: () => Promise<T>): Promise<T> {
  return rpcCall(async () => {
    if (ctx.values.get(kPrincipal)?.identity === undefined) throw new GatewayError("permission_denied", "admin credentials required");
    return fn();
  });
}

// ---- requests -> admin API ----------------------------------------------

const PERIOD_IN: Record<number, Period> = {
  [PeriodEnum.NONE]: "none",
  [PeriodEnum.MINUTE]: "minute",
  [PeriodEnum.HOUR]: "hour",
  [PeriodEnum.DAY]: "day",
  [PeriodEnum.WEEK]: "week",
  [PeriodEnum.MONTH]: "month",
};

const PERIOD_OUT: Record<Period, PeriodEnum> = {
  none: PeriodEnum.NONE,
  minute: PeriodEnum.MINUTE,
  hour: PeriodEnum.HOUR,
  day: PeriodEnum.DAY,
  week: PeriodEnum.WEEK,
  month: PeriodEnum.MONTH,
};

const CACHE_MODE_IN: Record<number, CacheMode> = {
  [CacheModeEnum.OFF]: "off",
  [CacheModeEnum.EXACT]: "exact",
  [CacheModeEnum.SEMANTIC]: "semantic",
  [CacheModeEnum.BOTH]: "both",
};

const CACHE_MODE_OUT: Record<CacheMode, CacheModeEnum> = {
  off: CacheModeEnum.OFF,
  exact: CacheModeEnum.EXACT,
  semantic: CacheModeEnum.SEMANTIC,
  both: CacheModeEnum.BOTH,
};

/** A message field with a clear_* flag: undefined keeps, null clears; both given is an error. */
function change<M, T>(value: M | undefined, clear: boolean, param: string, convert: (m: M, param: string) => T): T | null | undefined {
  if (clear && value !== undefined) throw invalid(`${param} and clear_${param}: give one, not both`, param);
  if (clear) return null;
  return value === undefined ? undefined : convert(value, param);
}

/** Repeated fields cannot be absent: an empty list keeps, clear_* empties. */
function listChange(list: string[], clear: boolean, param: string): string[] | undefined {
  if (clear && list.length > 0) throw invalid(`${param} and clear_${param}: give one, not both`, param);
  if (clear) return [];
  return list.length === 0 ? undefined : list;
}

/** Maps cannot be absent either: an empty map keeps, clear_metadata empties. */
function metadataChange(m: Record<string, string>, clear: boolean): Record<string, string> | undefined {
  const empty = Object.keys(m).length === 0;
  if (clear && !empty) throw invalid("metadata and clear_metadata: give one, not both", "metadata");
  if (clear) return {};
  return empty ? undefined : m;
}

function budgetIn(b: BudgetMessage, param: string): Budget {
  const period = PERIOD_IN[b.period];
  if (period === undefined) throw invalid(`${param}.period: required (PERIOD_NONE for a lifetime budget)`, `${param}.period`);
  return { limitUsd: b.limitUsd, period };
}

function limitsIn(l: LimitsMessage): Limits {
  return { rpm: l.rpm, tpm: l.tpm === undefined ? undefined : Number(l.tpm), maxConcurrent: l.maxConcurrent };
}

/** CACHE_MODE_UNSPECIFIED and fields left out inherit; the admin API checks the ranges. */
function cacheIn(c: CachePolicyMessage, param: string): CachePolicy {
  let mode: CacheMode | undefined;
  if (c.mode !== CacheModeEnum.UNSPECIFIED) {
    mode = CACHE_MODE_IN[c.mode];
    if (mode === undefined) throw invalid(`${param}.mode: unknown value ${c.mode}`, `${param}.mode`);
  }
  return { mode, ttlSeconds: c.ttlSeconds, threshold: c.threshold };
}

function scopeIn(scope: { case: "keyId" | "teamId" | "customerId"; value: string } | { case: undefined; value?: undefined }): EntityRef {
  switch (scope.case) {
    case "keyId":
      return { kind: "key", id: scope.value };
    case "teamId":
      return { kind: "team", id: scope.value };
    case "customerId":
      return { kind: "customer", id: scope.value };
    default:
      throw invalid("scope: one of key_id, team_id or customer_id is required", "scope");
  }
}

// ---- admin API -> responses ---------------------------------------------

function ts(ms: number | undefined): Timestamp | undefined {
  return ms === undefined ? undefined : timestampFromMs(ms);
}

function budgetOut(b: Budget | undefined): MessageInitShape<typeof BudgetSchema> | undefined {
  return b === undefined ? undefined : { limitUsd: b.limitUsd, period: PERIOD_OUT[b.period] };
}

function limitsOut(l: Limits | undefined): MessageInitShape<typeof LimitsSchema> | undefined {
  if (l === undefined) return undefined;
  return { rpm: l.rpm, tpm: l.tpm === undefined ? undefined : BigInt(l.tpm), maxConcurrent: l.maxConcurrent };
}

function cacheOut(c: CachePolicy | undefined): MessageInitShape<typeof CachePolicySchema> | undefined {
  if (c === undefined) return undefined;
  return { mode: c.mode === undefined ? CacheModeEnum.UNSPECIFIED : CACHE_MODE_OUT[c.mode], ttlSeconds: c.ttlSeconds, threshold: c.threshold };
}

function keyOut(k: KeyInfo): MessageInitShape<typeof VirtualKeySchema> {
  return {
    id: k.id,
    name: k.name,
    hint: k.hint,
    teamId: k.teamId ?? "",
    allowedModels: k.allowedModels,
    allowedProviders: k.allowedProviders,
    budget: budgetOut(k.budget),
    limits: limitsOut(k.limits),
    cache: cacheOut(k.cache),
    expiresAt: ts(k.expiresAt),
    metadata: k.metadata,
    enabled: k.enabled,
    revokedAt: ts(k.revokedAt),
    createdAt: ts(k.createdAt),
    updatedAt: ts(k.updatedAt),
  };
}

function customerOut(c: Customer): MessageInitShape<typeof CustomerSchema> {
  return { id: c.id, name: c.name, budget: budgetOut(c.budget), cache: cacheOut(c.cache), metadata: c.metadata, createdAt: ts(c.createdAt), updatedAt: ts(c.updatedAt) };
}

function teamOut(t: Team): MessageInitShape<typeof TeamSchema> {
  return {
    id: t.id,
    name: t.name,
    customerId: t.customerId ?? "",
    budget: budgetOut(t.budget),
    limits: limitsOut(t.limits),
    cache: cacheOut(t.cache),
    metadata: t.metadata,
    createdAt: ts(t.createdAt),
    updatedAt: ts(t.updatedAt),
  };
}
