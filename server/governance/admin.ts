/**
 * The governance admin API as plain functions: virtual keys, customers,
 * teams, budgets, rate limits and cache policies. Transport-free, so the RPC
 * services (server/rpc/admin.ts) and tests call the same code. Every rule
 * about what may be stored lives here; the store only keeps what it is given.
 *
 * One file on purpose (about 500 lines): the whole admin contract, its
 * validation and its refusals read in one place.
 *
 * Updates are read-modify-write: two admins changing the same entity at the
 * same moment may lose one change (the admin API is not a hot path).
 */
import { GatewayError, invalid } from "../errors/errors.ts";
import { hashSecret, hintOf, newId, newSecret } from "./keys.ts";
import { windowEnd, windowStart } from "./periods.ts";
import type { Budget, CacheMode, CachePolicy, Customer, EntityKind, GovernanceStore, Limits, ListPage, Period, Scope, Team, VirtualKey } from "./types.ts";

/** A key as the admin API shows it: everything but the hash. */
export type KeyInfo = Omit<VirtualKey, "hash">;

/** The key and its secret: the only time the secret leaves the gateway. */
export interface IssuedKey {
  key: KeyInfo;
  secret: string;
}

export interface KeyInput {
  name: string;
  teamId?: string | undefined;
  allowedModels?: readonly string[] | undefined;
  allowedProviders?: readonly string[] | undefined;
  budget?: Budget | undefined;
  limits?: Limits | undefined;
  cache?: CachePolicy | undefined;
  /** Epoch ms, in the future. */
  expiresAt?: number | undefined;
  metadata?: Record<string, string> | undefined;
}

/** Changes to a key: undefined leaves a field as it is, null clears it. Lists and metadata replace as a whole. */
export interface KeyChanges {
  name?: string | undefined;
  teamId?: string | null | undefined;
  allowedModels?: readonly string[] | undefined;
  allowedProviders?: readonly string[] | undefined;
  budget?: Budget | null | undefined;
  limits?: Limits | null | undefined;
  /** Replaces the policy as a whole; null clears (inherit). */
  cache?: CachePolicy | null | undefined;
  expiresAt?: number | null | undefined;
  metadata?: Record<string, string> | undefined;
  enabled?: boolean | undefined;
}

export interface CustomerInput {
  /** Caller-chosen id (^[a-z0-9][a-z0-9_-]{0,62}$); absent: "cus_…". */
  id?: string | undefined;
  name: string;
  budget?: Budget | undefined;
  cache?: CachePolicy | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface CustomerChanges {
  name?: string | undefined;
  budget?: Budget | null | undefined;
  cache?: CachePolicy | null | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface TeamInput {
  /** Caller-chosen id (^[a-z0-9][a-z0-9_-]{0,62}$); absent: "team_…". */
  id?: string | undefined;
  name: string;
  customerId?: string | undefined;
  budget?: Budget | undefined;
  limits?: Limits | undefined;
  cache?: CachePolicy | undefined;
  metadata?: Record<string, string> | undefined;
}

export interface TeamChanges {
  name?: string | undefined;
  customerId?: string | null | undefined;
  budget?: Budget | null | undefined;
  limits?: Limits | null | undefined;
  cache?: CachePolicy | null | undefined;
  metadata?: Record<string, string> | undefined;
}

/** Paging: pageSize 1..1000 (default 100); pageToken from the previous page. */
export interface PageOptions {
  pageSize?: number | undefined;
  pageToken?: string | undefined;
}

/** What a budget or its limits belong to. */
export interface EntityRef {
  kind: EntityKind;
  id: string;
}

/** Budget and limits changes: undefined leaves as is, null clears. Limits replace as a whole. */
export interface BudgetChanges {
  budget?: Budget | null | undefined;
  limits?: Limits | null | undefined;
}

/** Budget and limits in force, and spend in the current window (USD). */
export interface BudgetStatus {
  budget?: Budget | undefined;
  limits?: Limits | undefined;
  spentUsd: number;
  reservedUsd: number;
  /** Held by instances' leases (Redis store), not yet spent. */
  leasedUsd: number;
  /** max(0, limit - spent - reserved - leased); absent without a budget. */
  remainingUsd?: number | undefined;
  /** Epoch ms; both absent for period "none" or no budget. */
  windowStart?: number | undefined;
  windowEnd?: number | undefined;
  inFlight: number;
}

export type Admin = ReturnType<typeof createAdmin>;

const ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const PERIODS: ReadonlySet<string> = new Set<Period>(["none", "minute", "hour", "day", "week", "month"]);
const CACHE_MODES: ReadonlySet<string> = new Set<CacheMode>(["off", "exact", "semantic", "both"]);
/** A cache entry lives at most a year. */
const MAX_CACHE_TTL_SECONDS = 31_536_000;
/** Counters are integer nano-USD in a double: exact up to ~$9.007M. */
const MAX_LIMIT_USD = 9_000_000;
const NANOS = 1e9;

/** The store scope of an entity: "key:<id>", "team:<id>" or "customer:<id>". */
export function scopeOf(kind: EntityKind, id: string): Scope {
  return `${kind}:${id}`;
}

/**
 * Builds the admin API over a store. `now` (epoch ms) is injectable for
 * tests. `onChange` runs after every successful write: app.ts passes the
 * governor's `invalidate` so this instance drops cached keys at once (a
 * rotated or revoked secret stops working here immediately; other instances
 * notice through `store.version()`). Errors are GatewayErrors:
 * invalid_request for bad input or a refused change, not_found for unknown ids.
 */
export function createAdmin(store: GovernanceStore, now: () => number = Date.now, onChange?: () => void) {
  async function write(op: Promise<void>): Promise<void> {
    await op;
    onChange?.();
  }
  async function mustKey(id: string): Promise<VirtualKey> {
    const key = await store.getKey(id);
    if (key === undefined) throw notFound("key", id);
    return key;
  }
  async function mustTeam(id: string, param?: string): Promise<Team> {
    const team = await store.getTeam(id);
    if (team === undefined) throw notFound("team", id, param);
    return team;
  }
  async function mustCustomer(id: string, param?: string): Promise<Customer> {
    const customer = await store.getCustomer(id);
    if (customer === undefined) throw notFound("customer", id, param);
    return customer;
  }
  async function mustEntity(ref: EntityRef): Promise<VirtualKey | Team | Customer> {
    switch (ref.kind) {
      case "key":
        return mustKey(ref.id);
      case "team":
        return mustTeam(ref.id);
      case "customer":
        return mustCustomer(ref.id);
    }
  }
  function put(kind: EntityKind, entity: VirtualKey | Team | Customer): Promise<void> {
    if (kind === "key") return write(store.putKey(entity as VirtualKey));
    if (kind === "team") return write(store.putTeam(entity as Team));
    return write(store.putCustomer(entity as Customer));
  }

  return {
    // ---- virtual keys -------------------------------------------------

    /** Creates an enabled key; the secret is returned here and never again. */
    async createKey(input: KeyInput): Promise<IssuedKey> {
      const t = now();
      const name = checkName(input.name);
      if (input.teamId !== undefined) await mustTeam(input.teamId, "team_id");
      if (input.expiresAt !== undefined) checkExpiry(input.expiresAt, t);
      const secret = newSecret();
      const key: VirtualKey = {
        id: newId("key"),
        hash: hashSecret(secret),
        hint: hintOf(secret),
        name,
        teamId: input.teamId,
        allowedModels: checkList(input.allowedModels ?? [], "allowed_models"),
        allowedProviders: checkList(input.allowedProviders ?? [], "allowed_providers"),
        budget: input.budget === undefined ? undefined : checkBudget(input.budget),
        limits: input.limits === undefined ? undefined : checkLimits(input.limits),
        cache: input.cache === undefined ? undefined : checkCache(input.cache),
        expiresAt: input.expiresAt,
        metadata: checkMetadata(input.metadata ?? {}),
        enabled: true,
        revokedAt: undefined,
        createdAt: t,
        updatedAt: t,
      };
      await write(store.putKey(key));
      return { key: keyInfo(key), secret };
    },

    async getKey(id: string): Promise<KeyInfo> {
      return keyInfo(await mustKey(id));
    },

    /** Keys, optionally of one team; revoked keys only with includeRevoked. */
    async listKeys(filter: { teamId?: string | undefined; includeRevoked?: boolean | undefined } & PageOptions = {}): Promise<ListPage<KeyInfo>> {
      const page = await listing(() => store.listKeys({ teamId: filter.teamId, includeRevoked: filter.includeRevoked }, pageSize(filter.pageSize), filter.pageToken));
      return { items: page.items.map(keyInfo), nextPageToken: page.nextPageToken };
    },

    /** Changes the fields given. A revoked key cannot be changed. */
    async updateKey(id: string, changes: KeyChanges): Promise<KeyInfo> {
      const key = await mustKey(id);
      if (key.revokedAt !== undefined) throw invalid(`key ${id} is revoked and cannot be changed; create a new key`, "id");
      const t = now();
      const next: VirtualKey = { ...key, updatedAt: t };
      if (changes.name !== undefined) next.name = checkName(changes.name);
      if (changes.teamId !== undefined) next.teamId = changes.teamId === null ? undefined : (await mustTeam(changes.teamId, "team_id")).id;
      if (changes.allowedModels !== undefined) next.allowedModels = checkList(changes.allowedModels, "allowed_models");
      if (changes.allowedProviders !== undefined) next.allowedProviders = checkList(changes.allowedProviders, "allowed_providers");
      applyBudget(next, changes);
      applyCache(next, changes);
      if (changes.expiresAt !== undefined) next.expiresAt = changes.expiresAt === null ? undefined : checkExpiry(changes.expiresAt, t);
      if (changes.metadata !== undefined) next.metadata = checkMetadata(changes.metadata);
      if (changes.enabled !== undefined) next.enabled = changes.enabled;
      await write(store.putKey(next));
      return keyInfo(next);
    },

    /** A new secret for the same key id; the old secret stops working at once. */
    async rotateKey(id: string): Promise<IssuedKey> {
      const key = await mustKey(id);
      if (key.revokedAt !== undefined) throw invalid(`key ${id} is revoked and cannot be rotated; create a new key`, "id");
      const secret = newSecret();
      const next: VirtualKey = { ...key, hash: hashSecret(secret), hint: hintOf(secret), updatedAt: now() };
      await write(store.putKey(next));
      return { key: keyInfo(next), secret };
    },

    /** Disables the key for good (kept for logs and audit). Revoking again changes nothing. */
    async revokeKey(id: string): Promise<KeyInfo> {
      const key = await mustKey(id);
      if (key.revokedAt !== undefined) return keyInfo(key);
      const t = now();
      const next: VirtualKey = { ...key, enabled: false, revokedAt: t, updatedAt: t };
      await write(store.putKey(next));
      return keyInfo(next);
    },

    // ---- customers ----------------------------------------------------

    async createCustomer(input: CustomerInput): Promise<Customer> {
      const id = input.id === undefined ? newId("cus") : checkId(input.id);
      const name = checkName(input.name);
      const budget = input.budget === undefined ? undefined : checkBudget(input.budget);
      const cache = input.cache === undefined ? undefined : checkCache(input.cache);
      const metadata = checkMetadata(input.metadata ?? {});
      if ((await store.getCustomer(id)) !== undefined) throw invalid(`customer ${id} already exists`, "id");
      const t = now();
      const customer: Customer = { id, name, budget, cache, metadata, createdAt: t, updatedAt: t };
      await write(store.putCustomer(customer));
      return customer;
    },

    getCustomer: (id: string): Promise<Customer> => mustCustomer(id),

    async listCustomers(options: PageOptions = {}): Promise<ListPage<Customer>> {
      return listing(() => store.listCustomers(pageSize(options.pageSize), options.pageToken));
    },

    async updateCustomer(id: string, changes: CustomerChanges): Promise<Customer> {
      const next: Customer = { ...(await mustCustomer(id)), updatedAt: now() };
      if (changes.name !== undefined) next.name = checkName(changes.name);
      if (changes.budget !== undefined) next.budget = changes.budget === null ? undefined : checkBudget(changes.budget);
      applyCache(next, changes);
      if (changes.metadata !== undefined) next.metadata = checkMetadata(changes.metadata);
      await write(store.putCustomer(next));
      return next;
    },

    /** Refused while any team belongs to the customer. */
    async deleteCustomer(id: string): Promise<void> {
      await mustCustomer(id);
      const teams = await store.listTeams({ customerId: id }, 1);
      if (teams.items.length > 0) {
        throw invalid(`customer ${id} still has teams; delete them or move them to another customer first`, "id");
      }
      await write(store.deleteCustomer(id));
    },

    // ---- teams --------------------------------------------------------

    async createTeam(input: TeamInput): Promise<Team> {
      const id = input.id === undefined ? newId("team") : checkId(input.id);
      const name = checkName(input.name);
      const budget = input.budget === undefined ? undefined : checkBudget(input.budget);
      const limits = input.limits === undefined ? undefined : checkLimits(input.limits);
      const cache = input.cache === undefined ? undefined : checkCache(input.cache);
      const metadata = checkMetadata(input.metadata ?? {});
      if (input.customerId !== undefined) await mustCustomer(input.customerId, "customer_id");
      if ((await store.getTeam(id)) !== undefined) throw invalid(`team ${id} already exists`, "id");
      const t = now();
      const team: Team = { id, name, customerId: input.customerId, budget, limits, cache, metadata, createdAt: t, updatedAt: t };
      await write(store.putTeam(team));
      return team;
    },

    getTeam: (id: string): Promise<Team> => mustTeam(id),

    /** Teams, optionally of one customer. */
    async listTeams(filter: { customerId?: string | undefined } & PageOptions = {}): Promise<ListPage<Team>> {
      return listing(() => store.listTeams({ customerId: filter.customerId }, pageSize(filter.pageSize), filter.pageToken));
    },

    async updateTeam(id: string, changes: TeamChanges): Promise<Team> {
      const next: Team = { ...(await mustTeam(id)), updatedAt: now() };
      if (changes.name !== undefined) next.name = checkName(changes.name);
      if (changes.customerId !== undefined) {
        next.customerId = changes.customerId === null ? undefined : (await mustCustomer(changes.customerId, "customer_id")).id;
      }
      applyBudget(next, changes);
      applyCache(next, changes);
      if (changes.metadata !== undefined) next.metadata = checkMetadata(changes.metadata);
      await write(store.putTeam(next));
      return next;
    },

    /** Refused while the team has keys that are not revoked (revoked keys keep its id as a label). */
    async deleteTeam(id: string): Promise<void> {
      await mustTeam(id);
      const keys = await store.listKeys({ teamId: id, includeRevoked: false }, 1);
      if (keys.items.length > 0) {
        throw invalid(`team ${id} still has keys that are not revoked; revoke them or move them to another team first`, "id");
      }
      await write(store.deleteTeam(id));
    },

    // ---- budgets and limits -------------------------------------------

    /** Sets or clears the budget and limits of one key, team or customer. Customers take budgets only. */
    async setBudget(ref: EntityRef, changes: BudgetChanges): Promise<{ budget?: Budget | undefined; limits?: Limits | undefined }> {
      if (ref.kind === "customer" && changes.limits !== undefined) {
        throw invalid("limits: customers take budgets only; set rate limits on their teams or keys", "limits");
      }
      const entity = await mustEntity(ref);
      if ("revokedAt" in entity && entity.revokedAt !== undefined) throw invalid(`key ${ref.id} is revoked and cannot be changed`, "key_id");
      const next = { ...entity, updatedAt: now() };
      applyBudget(next, changes);
      await put(ref.kind, next);
      return { budget: next.budget, limits: "limits" in next ? next.limits : undefined };
    },

    /** The budget and limits in force and the spend in the budget's current window (lifetime without a budget). */
    async getBudget(ref: EntityRef): Promise<BudgetStatus> {
      const entity = await mustEntity(ref);
      const t = now();
      const budget = entity.budget;
      const period: Period = budget?.period ?? "none";
      const start = windowStart(period, t);
      const spend = await store.spend(scopeOf(ref.kind, ref.id), start);
      const status: BudgetStatus = {
        budget,
        limits: "limits" in entity ? entity.limits : undefined,
        spentUsd: spend.spentNanos / NANOS,
        reservedUsd: spend.reservedNanos / NANOS,
        leasedUsd: spend.leasedNanos / NANOS,
        inFlight: spend.inFlight,
      };
      if (budget !== undefined) {
        status.remainingUsd = Math.max(0, Math.floor(budget.limitUsd * NANOS) - spend.spentNanos - spend.reservedNanos - spend.leasedNanos) / NANOS;
      }
      if (period !== "none") {
        status.windowStart = start;
        status.windowEnd = windowEnd(period, t);
      }
      return status;
    },
  };
}

/** Applies budget/limits changes (undefined: keep, null: clear) to an entity copy. */
function applyBudget(next: { budget?: Budget | undefined; limits?: Limits | undefined }, changes: BudgetChanges): void {
  if (changes.budget !== undefined) next.budget = changes.budget === null ? undefined : checkBudget(changes.budget);
  if (changes.limits !== undefined) next.limits = changes.limits === null ? undefined : checkLimits(changes.limits);
}

/** Applies a cache policy change (undefined: keep, null: clear, else replace as a whole) to an entity copy. */
function applyCache(next: { cache?: CachePolicy | undefined }, changes: { cache?: CachePolicy | null | undefined }): void {
  if (changes.cache !== undefined) next.cache = changes.cache === null ? undefined : checkCache(changes.cache);
}

function keyInfo(key: VirtualKey): KeyInfo {
  const { hash: _hash, ...info } = key;
  return info;
}

function notFound(kind: EntityKind, id: string, param?: string): GatewayError {
  return new GatewayError("not_found", `${kind} ${JSON.stringify(id)} not found`, param === undefined ? {} : { param });
}

/** Runs a store listing, turning a bad page token into invalid_request. */
async function listing<T>(fn: () => Promise<ListPage<T>>): Promise<ListPage<T>> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    if (err instanceof Error && /page token/i.test(err.message)) throw invalid("page_token: not a token from this API", "page_token");
    throw err;
  }
}

function pageSize(size: number | undefined): number {
  if (size === undefined || size === 0) return 100;
  if (!Number.isInteger(size) || size < 0 || size > 1000) throw invalid("page_size: 1 to 1000", "page_size");
  return size;
}

function checkId(id: string): string {
  if (!ID.test(id)) throw invalid("id: 1 to 63 of a-z, 0-9, '_' and '-', starting with a letter or digit", "id");
  return id;
}

function checkName(name: string): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) throw invalid("name: 1 to 200 characters, not blank", "name");
  return name;
}

function checkBudget(b: Budget, param = "budget"): Budget {
  if (typeof b.limitUsd !== "number" || !Number.isFinite(b.limitUsd) || b.limitUsd < 0 || b.limitUsd > MAX_LIMIT_USD) {
    throw invalid(`${param}.limit_usd: a finite number from 0 to ${MAX_LIMIT_USD}`, `${param}.limit_usd`);
  }
  if (!PERIODS.has(b.period)) throw invalid(`${param}.period: one of none, minute, hour, day, week, month`, `${param}.period`);
  return { limitUsd: b.limitUsd, period: b.period };
}

/** A copy with only the limits set; undefined when none is. */
function checkLimits(l: Limits, param = "limits"): Limits | undefined {
  const out: Limits = {};
  for (const [field, name] of [["rpm", "rpm"], ["tpm", "tpm"], ["maxConcurrent", "max_concurrent"]] as const) {
    const v = l[field];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v <= 0) throw invalid(`${param}.${name}: a positive integer`, `${param}.${name}`);
    out[field] = v;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** A copy with only the fields set; undefined when none is (the entity inherits everything). */
function checkCache(c: CachePolicy, param = "cache"): CachePolicy | undefined {
  const out: CachePolicy = {};
  if (c.mode !== undefined) {
    if (!CACHE_MODES.has(c.mode)) throw invalid(`${param}.mode: one of off, exact, semantic, both`, `${param}.mode`);
    out.mode = c.mode;
  }
  if (c.ttlSeconds !== undefined) {
    if (!Number.isSafeInteger(c.ttlSeconds) || c.ttlSeconds < 1 || c.ttlSeconds > MAX_CACHE_TTL_SECONDS) {
      throw invalid(`${param}.ttl_seconds: an integer from 1 to ${MAX_CACHE_TTL_SECONDS}`, `${param}.ttl_seconds`);
    }
    out.ttlSeconds = c.ttlSeconds;
  }
  if (c.threshold !== undefined) {
    if (typeof c.threshold !== "number" || !(c.threshold > 0 && c.threshold <= 1)) {
      throw invalid(`${param}.threshold: a number above 0 and at most 1`, `${param}.threshold`);
    }
    out.threshold = c.threshold;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

function checkList(list: readonly string[], param: string): string[] {
  if (list.length > 256) throw invalid(`${param}: at most 256 entries`, param);
  list.forEach((s, i) => {
    if (typeof s !== "string" || s.trim() === "" || s.length > 256) throw invalid(`${param}[${i}]: 1 to 256 characters, not blank`, `${param}[${i}]`);
  });
  return [...list];
}

function checkMetadata(m: Record<string, string>): Record<string, string> {
  const entries = Object.entries(m);
  if (entries.length > 32) throw invalid("metadata: at most 32 entries", "metadata");
  for (const [k, v] of entries) {
    if (k.length === 0 || k.length > 64) throw invalid("metadata: keys are 1 to 64 characters", "metadata");
    if (typeof v !== "string" || v.length > 256) throw invalid(`metadata[${JSON.stringify(k)}]: a string of at most 256 characters`, "metadata");
  }
  // fromEntries defines own properties, so a "__proto__" key stays plain data.
  return Object.fromEntries(entries);
}

function checkExpiry(ms: number, t: number): number {
  if (!Number.isSafeInteger(ms)) throw invalid("expires_at: a time in epoch milliseconds", "expires_at");
  if (ms <= t) throw invalid("expires_at: must be in the future", "expires_at");
  return ms;
}
