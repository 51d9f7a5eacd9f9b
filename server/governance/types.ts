/**
 * Governance entities and the store contract. Two stores implement it: the
 * embedded one (memory, persisted under the data directory) and Redis (for
 * several gateway instances). Money in counters is integer nano-USD
 * (1e-9 USD) so sums are exact and fit a double up to ~$9M.
 */

export type Period = "minute" | "hour" | "day" | "week" | "month" | "none";

/** A USD limit per calendar-aligned UTC period ("none": lifetime). */
export interface Budget {
  limitUsd: number;
  period: Period;
}

/** Rate limits; an absent field is no limit. */
export interface Limits {
  /** Requests per minute. */
  rpm?: number | undefined;
  /** Tokens (prompt + completion) per minute. */
  tpm?: number | undefined;
  /** Requests in flight at once. */
  maxConcurrent?: number | undefined;
}

export type CacheMode = "off" | "exact" | "semantic" | "both";

/** Per-entity cache policy; absent fields inherit (key <- team <- customer <- config). */
export interface CachePolicy {
  mode?: CacheMode | undefined;
  /** How long a stored answer lives, 1..31,536,000 s. */
  ttlSeconds?: number | undefined;
  /** Semantic similarity a hit needs, in (0, 1]. */
  threshold?: number | undefined;
}

export interface Customer {
  id: string;
  name: string;
  budget?: Budget | undefined;
  cache?: CachePolicy | undefined;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface Team {
  id: string;
  name: string;
  customerId?: string | undefined;
  budget?: Budget | undefined;
  limits?: Limits | undefined;
  cache?: CachePolicy | undefined;
  metadata: Record<string, string>;
  createdAt: number;
  updatedAt: number;
}

export interface VirtualKey {
  id: string;
  /** sha256 hex of the secret; the secret itself is never stored. */
  hash: string;
  /** Shown in lists so people can tell keys apart: "sk-sy-AbC…xyz9". */
  hint: string;
  name: string;
  teamId?: string | undefined;
  /** Empty: any. Entries are model names, "provider/model", or end in "*" (prefix match). */
  allowedModels: string[];
  /** Empty: any. Provider ids. */
  allowedProviders: string[];
  budget?: Budget | undefined;
  limits?: Limits | undefined;
  cache?: CachePolicy | undefined;
  /** Epoch ms; absent: never. */
  expiresAt?: number | undefined;
  metadata: Record<string, string>;
  enabled: boolean;
  /** Epoch ms when revoked; revoked keys are kept (soft-deleted) so logs and audit keep their labels. */
  revokedAt?: number | undefined;
  createdAt: number;
  updatedAt: number;
}

export type EntityKind = "key" | "team" | "customer";

/** "key:<id>", "team:<id>" or "customer:<id>": one level budgets and limits apply to. */
export type Scope = string;

/** What one level of a request reserves, and the limits to check it against. */
export interface LevelReservation {
  scope: Scope;
  /** Budget limit in nano-USD for the current window; undefined: no budget (spend is still counted). */
  budgetNanos?: number | undefined;
  /** Start (epoch ms) of the budget's current window; 0 for period "none". A new window starts from zero spend. */
  windowStart: number;
  /** Worst-case cost reserved, nano-USD. */
  costNanos: number;
  /** Worst-case tokens reserved (counted against tpm). */
  tokens: number;
  rpm?: number | undefined;
  tpm?: number | undefined;
  maxConcurrent?: number | undefined;
}

export interface ReserveInput {
  /** Unique per request; settle and release name it. */
  id: string;
  levels: LevelReservation[];
  /** The reservation is released by itself this long after its last renewal. */
  ttlMs: number;
  now: number;
  /**
   * A lease rather than one request: an instance holds `requests` requests'
   * worth (each level's costNanos and tokens are the totals) and hands it out
   * without asking the store again. It is granted only when `headroom` times
   * it would fit at every level, so leases never take the last of a limit,
   * and it is counted apart from requests in flight (SpendState.leasedNanos).
   */
  lease?: { requests: number; headroom: number } | undefined;
}

/** A request served from a lease: its actual cost moves from the lease to spend. */
export interface LeaseChargeInput extends SettleInput {
  lease: string;
}

export type RefusalReason = "budget" | "rpm" | "tpm" | "concurrency";

/** Rate-limit state after a reservation, for x-ratelimit-* headers (the tightest level). */
export interface RateState {
  limitRequests?: number | undefined;
  remainingRequests?: number | undefined;
  /** Ms until the request allowance is full again. */
  resetRequestsMs?: number | undefined;
  limitTokens?: number | undefined;
  remainingTokens?: number | undefined;
  resetTokensMs?: number | undefined;
}

export type ReserveResult =
  | { ok: true; rate: RateState }
  | {
      ok: false;
      scope: Scope;
      reason: RefusalReason;
      /** When waiting helps (rate limits; budgets with a period): ms until it might pass. Absent: waiting does not help. */
      retryAfterMs?: number | undefined;
      rate: RateState;
    };

export interface SettleInput {
  id: string;
  /** Actual cost and tokens; every level of the reservation is charged the same. */
  costNanos: number;
  tokens: number;
  /** Each level's current window start (the window may have rolled since the reservation). */
  windows: Record<Scope, number>;
  now: number;
}

export interface SpendState {
  /** Spend in the given window, nano-USD. */
  spentNanos: number;
  /** Reserved by requests in flight, nano-USD. */
  reservedNanos: number;
  inFlight: number;
  /** Held by gateway instances' leases and not yet spent, nano-USD. */
  leasedNanos: number;
}

export interface ListPage<T> {
  items: T[];
  /** Pass back to get the next page; absent at the end. */
  nextPageToken?: string | undefined;
}

/** Counters: atomic across every level of one request. */
export interface CounterStore {
  /** All levels pass and are charged, or none is. */
  reserve(input: ReserveInput): Promise<ReserveResult>;
  /** Replaces the reservation with the actual cost; unknown (expired) ids still charge the actual cost. */
  settle(input: SettleInput): Promise<void>;
  /** Drops the reservation without charging (the request failed before costing anything). */
  release(id: string, now: number): Promise<void>;
  /** Charges a request served from a lease, once per request id; a lease that is gone (expired) still charges spend. */
  chargeLease(input: LeaseChargeInput): Promise<void>;
  /** Ends a lease: its money and slots are freed, and the requests and tokens it did not hand out go back to the rate limits. */
  returnLease(id: string, unused: { requests: number; tokens: number }, now: number): Promise<void>;
  /** Extends live reservations (requests still running) by ttlMs from now. */
  renew(ids: readonly string[], ttlMs: number, now: number): Promise<void>;
  /** Releases reservations past their expiry; returns how many. */
  sweep(now: number): Promise<number>;
  spend(scope: Scope, windowStart: number): Promise<SpendState>;
}

/** Entities: customers, teams and virtual keys. */
export interface EntityStore {
  getKeyByHash(hash: string): Promise<VirtualKey | undefined>;
  getKey(id: string): Promise<VirtualKey | undefined>;
  listKeys(filter: { teamId?: string | undefined; includeRevoked?: boolean | undefined }, pageSize: number, pageToken?: string): Promise<ListPage<VirtualKey>>;
  /** Inserts or replaces; a new key whose hash exists already is an error. */
  putKey(key: VirtualKey): Promise<void>;
  getTeam(id: string): Promise<Team | undefined>;
  listTeams(filter: { customerId?: string | undefined }, pageSize: number, pageToken?: string): Promise<ListPage<Team>>;
  putTeam(team: Team): Promise<void>;
  deleteTeam(id: string): Promise<void>;
  getCustomer(id: string): Promise<Customer | undefined>;
  listCustomers(pageSize: number, pageToken?: string): Promise<ListPage<Customer>>;
  putCustomer(customer: Customer): Promise<void>;
  deleteCustomer(id: string): Promise<void>;
  /** Keys ever created (revoked included): once there is one, inference needs a key. */
  keyCount(): Promise<number>;
  /** Changes whenever any entity changes: instances compare it to drop cached entities. */
  version(): Promise<number>;
}

export interface GovernanceStore extends CounterStore, EntityStore {
  readonly kind: "embedded" | "redis";
  /** True when the store answers (Redis reachable); /readyz reports it. */
  healthy(): boolean;
  close(): Promise<void>;
}
