import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type {
  Customer,
  EntityKind,
  GovernanceStore,
  LeaseChargeInput,
  LevelReservation,
  ListPage,
  RateState,
  RefusalReason,
  ReserveInput,
  ReserveResult,
  Scope,
  SettleInput,
  SpendState,
  Team,
  VirtualKey,
} from "./types.ts";

/**
 * The embedded governance store: every counter and entity lives in this
 * process, so reserve and settle are plain Map operations with no I/O
 * awaited. With a `path`, entities are written through to SQLite and spend is
 * flushed in batches, so keys and spend survive a restart; reservations are
 * not kept (after a restart their requests are gone).
 */
/** How long spend may wait in memory before it is written to disk. */
const FLUSH_MS = 100;

export function createMemoryStore(options: { path?: string | undefined } = {}): GovernanceStore {
  const disk = options.path === undefined ? undefined : openDisk(options.path);
  const keys = new Map<string, VirtualKey>();
  const keyByHash = new Map<string, string>();
  const teams = new Map<string, Team>();
  const customers = new Map<string, Customer>();
  const states = new Map<Scope, ScopeState>();
  const held = new Map<string, Held>();
  const expiries: Expiry[] = [];
  // Settled ids (to now of settling), oldest first: a repeated settle must not charge twice.
  const settled = new Map<string, number>();
  const dirty = new Set<Scope>();
  let flushing: NodeJS.Timeout | undefined;
  let diskFailed = false;
  let version = 0;

  if (disk) {
    for (const row of disk.entities()) {
      if (row.kind === "key") {
        const key = JSON.parse(row.json) as VirtualKey;
        keys.set(key.id, key);
        keyByHash.set(key.hash, key.id);
      } else if (row.kind === "team") {
        teams.set(row.id, JSON.parse(row.json) as Team);
      } else {
        customers.set(row.id, JSON.parse(row.json) as Customer);
      }
    }
    for (const row of disk.spend()) states.set(row.scope, { ...emptyState(), spent: row.spent, window: row.window });
  }

  /** A scope's state for reading; refusals must not create entries. */
  const peek = (scope: Scope): ScopeState => states.get(scope) ?? EMPTY;

  function state(scope: Scope): ScopeState {
    let s = states.get(scope);
    if (!s) states.set(scope, (s = emptyState()));
    return s;
  }

  /**
   * Spend is flushed every FLUSH_MS, all dirty scopes in one transaction (and
   * at close): a commit per request would cost more than the rest of
   * governance together. A crash of the process loses at most that much
   * spend; several instances, or stricter needs, use Redis.
   */
  function markDirty(scope: Scope): void {
    if (!disk) return;
    dirty.add(scope);
    if (flushing === undefined) {
      flushing = setTimeout(flush, FLUSH_MS);
      flushing.unref();
    }
  }

  function flush(): void {
    flushing = undefined;
    if (!disk || dirty.size === 0) return;
    const rows = [...dirty].map((scope) => ({ scope, spent: peek(scope).spent, window: peek(scope).window }));
    dirty.clear();
    try {
      disk.writeSpend(rows);
      diskFailed = false;
    } catch {
      // Keep the scopes for the next flush; healthy() reports the failure to /readyz.
      diskFailed = true;
      for (const row of rows) dirty.add(row.scope);
    }
  }

  function charge(scope: Scope, window: number | undefined, costNanos: number): ScopeState {
    const s = state(scope);
    // Windows only roll forward: a charge for an older window (a request that began before the
    // budget's period changed, a skewed clock) goes into the current one rather than wiping it.
    if (window !== undefined && window > s.window) {
      s.spent = 0;
      s.window = window;
    }
    s.spent += costNanos;
    markDirty(scope);
    return s;
  }

  /** Gives back a reservation's (or a lease's) money and in-flight slots; tokens stay consumed. */
  function unapply(h: Held): void {
    for (const level of h.levels) {
      const s = state(level.scope);
      if (h.lease) {
        s.leased = Math.max(0, s.leased - level.costNanos);
        s.leasedSlots = Math.max(0, s.leasedSlots - h.requests);
      } else {
        s.reserved = Math.max(0, s.reserved - level.costNanos);
        s.inFlight = Math.max(0, s.inFlight - 1);
      }
    }
  }

  function releaseExpired(now: number): number {
    let count = 0;
    while (expiries.length > 0 && expiries[0].expiry < now) {
      const top = heapPop(expiries);
      const h = held.get(top.id);
      // A renewed (or already settled) reservation left a stale heap entry behind.
      if (!h || h.expiry !== top.expiry) continue;
      unapply(h);
      held.delete(top.id);
      count++;
    }
    return count;
  }

  function rememberSettled(id: string, now: number): void {
    settled.set(id, now);
    for (const [old, at] of settled) {
      if (at > now - SETTLED_TTL_MS && settled.size <= SETTLED_MAX) break;
      settled.delete(old);
    }
  }

  const rateOf = (levels: readonly LevelReservation[], now: number): RateState =>
    rateState(levels, levels.map((l) => peek(l.scope)), now);

  return {
    kind: "embedded",

    async reserve({ id, levels, ttlMs, now, lease }: ReserveInput): Promise<ReserveResult> {
      releaseExpired(now);
      if (held.has(id)) throw new Error(`reservation ${id} exists`);
      const requests = lease?.requests ?? 1;
      const passes: Pass[] = [];
      for (const level of levels) {
        const verdict = check(level, peek(level.scope), now, requests, lease?.headroom ?? 1);
        if (!verdict.ok) {
          const retry = verdict.retryAfterMs === undefined ? {} : { retryAfterMs: verdict.retryAfterMs };
          return { ok: false, scope: level.scope, reason: verdict.reason, ...retry, rate: rateOf(levels, now) };
        }
        passes.push(verdict);
      }
      levels.forEach((level, i) => {
        const s = state(level.scope);
        if (level.windowStart > s.window) {
          s.spent = 0;
          s.window = level.windowStart;
          markDirty(level.scope);
        }
        if (lease) {
          s.leased += level.costNanos;
          s.leasedSlots += requests;
        } else {
          s.reserved += level.costNanos;
          s.inFlight += 1;
        }
        if (level.rpm !== undefined) s.rtat = passes[i].rtat;
        if (level.tpm !== undefined) s.ttat = passes[i].ttat;
      });
      const h: Held = {
        expiry: now + ttlMs,
        lease: lease !== undefined,
        requests,
        levels: levels.map((l) => ({ scope: l.scope, costNanos: l.costNanos, tokens: l.tokens, rpm: l.rpm, tpm: l.tpm })),
      };
      held.set(id, h);
      heapPush(expiries, { expiry: h.expiry, id });
      return { ok: true, rate: rateOf(levels, now) };
    },

    async settle({ id, costNanos, tokens, windows, now }: SettleInput): Promise<void> {
      if (settled.has(id)) return;
      const h = held.get(id);
      if (h) {
        held.delete(id);
        unapply(h);
        for (const level of h.levels) {
          const s = charge(level.scope, windows[level.scope], costNanos);
          // Refund the tokens reserved but not used (or charge the excess), never into the past.
          if (level.tpm !== undefined) s.ttat = Math.max(now, s.ttat - (level.tokens - tokens) * (MINUTE / level.tpm));
        }
      } else {
        // Expired or never reserved: spend is still never lost.
        for (const [scope, window] of Object.entries(windows)) charge(scope, window, costNanos);
      }
      rememberSettled(id, now);
    },

    async release(id: string): Promise<void> {
      const h = held.get(id);
      if (!h) return;
      held.delete(id);
      unapply(h);
    },

    async chargeLease({ lease, id, costNanos, windows, now }: LeaseChargeInput): Promise<void> {
      if (settled.has(id)) return;
      const h = held.get(lease);
      if (h?.lease) {
        for (const level of h.levels) {
          // The cost leaves the lease (what it holds is never negative) and becomes spend.
          const taken = Math.min(costNanos, level.costNanos);
          level.costNanos -= taken;
          const s = charge(level.scope, windows[level.scope], costNanos);
          s.leased = Math.max(0, s.leased - taken);
        }
      } else {
        for (const [scope, window] of Object.entries(windows)) charge(scope, window, costNanos);
      }
      rememberSettled(id, now);
    },

    async returnLease(id: string, unused: { requests: number; tokens: number }, now: number): Promise<void> {
      const h = held.get(id);
      if (!h?.lease) return;
      held.delete(id);
      unapply(h);
      // What the lease did not hand out goes back to the rate limits, never into the past.
      for (const level of h.levels) {
        const s = state(level.scope);
        if (level.rpm !== undefined) s.rtat = Math.max(now, s.rtat - unused.requests * (MINUTE / level.rpm));
        if (level.tpm !== undefined) s.ttat = Math.max(now, s.ttat - unused.tokens * (MINUTE / level.tpm));
      }
    },

    async renew(ids: readonly string[], ttlMs: number, now: number): Promise<void> {
      for (const id of ids) {
        const h = held.get(id);
        if (!h) continue;
        h.expiry = now + ttlMs;
        heapPush(expiries, { expiry: h.expiry, id });
      }
    },

    async sweep(now: number): Promise<number> {
      return releaseExpired(now);
    },

    async spend(scope: Scope, windowStart: number): Promise<SpendState> {
      const s = peek(scope);
      return { spentNanos: s.window === windowStart ? s.spent : 0, reservedNanos: s.reserved, inFlight: s.inFlight, leasedNanos: s.leased };
    },

    async getKeyByHash(hash: string): Promise<VirtualKey | undefined> {
      const id = keyByHash.get(hash);
      return id === undefined ? undefined : copy(keys.get(id));
    },

    async getKey(id: string): Promise<VirtualKey | undefined> {
      return copy(keys.get(id));
    },

    async listKeys(filter, pageSize, pageToken): Promise<ListPage<VirtualKey>> {
      const matching = [...keys.values()].filter(
        (k) =>
          (filter.includeRevoked === true || k.revokedAt === undefined) &&
          (filter.teamId === undefined || k.teamId === filter.teamId),
      );
      return page(matching, pageSize, pageToken);
    },

    async putKey(key: VirtualKey): Promise<void> {
      const owner = keyByHash.get(key.hash);
      // Two keys with one hash would make lookups ambiguous (a new key, or a rotation onto another key's hash).
      if (owner !== undefined && owner !== key.id) throw new Error("duplicate key hash");
      const stored = normalize(key);
      disk?.putEntity("key", key.id, JSON.stringify(stored));
      const old = keys.get(key.id);
      if (old && old.hash !== key.hash) keyByHash.delete(old.hash);
      keys.set(key.id, stored);
      keyByHash.set(key.hash, key.id);
      version++;
    },

    async getTeam(id: string): Promise<Team | undefined> {
      return copy(teams.get(id));
    },

    async listTeams(filter, pageSize, pageToken): Promise<ListPage<Team>> {
      const matching = [...teams.values()].filter((t) => filter.customerId === undefined || t.customerId === filter.customerId);
      return page(matching, pageSize, pageToken);
    },

    async putTeam(team: Team): Promise<void> {
      const stored = normalize(team);
      disk?.putEntity("team", team.id, JSON.stringify(stored));
      teams.set(team.id, stored);
      version++;
    },

    async deleteTeam(id: string): Promise<void> {
      disk?.deleteEntity("team", id);
      teams.delete(id);
      version++;
    },

    async getCustomer(id: string): Promise<Customer | undefined> {
      return copy(customers.get(id));
    },

    async listCustomers(pageSize: number, pageToken?: string): Promise<ListPage<Customer>> {
      return page([...customers.values()], pageSize, pageToken);
    },

    async putCustomer(customer: Customer): Promise<void> {
      const stored = normalize(customer);
      disk?.putEntity("customer", customer.id, JSON.stringify(stored));
      customers.set(customer.id, stored);
      version++;
    },

    async deleteCustomer(id: string): Promise<void> {
      disk?.deleteEntity("customer", id);
      customers.delete(id);
      version++;
    },

    async keyCount(): Promise<number> {
      return keys.size;
    },

    async version(): Promise<number> {
      return version;
    },

    healthy(): boolean {
      return !diskFailed;
    },

    async close(): Promise<void> {
      if (flushing) clearTimeout(flushing);
      flush();
      disk?.close();
    },
  };
}

const MINUTE = 60_000;
const SETTLED_TTL_MS = 600_000;
const SETTLED_MAX = 100_000;

/** One scope's counters. rtat/ttat are GCRA theoretical arrival times (ms) for requests and tokens. */
interface ScopeState {
  spent: number;
  /** The window start `spent` belongs to. */
  window: number;
  reserved: number;
  inFlight: number;
  /** Money and request slots held by instances' leases. */
  leased: number;
  leasedSlots: number;
  rtat: number;
  ttat: number;
}

const emptyState = (): ScopeState => ({ spent: 0, window: 0, reserved: 0, inFlight: 0, leased: 0, leasedSlots: 0, rtat: 0, ttat: 0 });
const EMPTY: Readonly<ScopeState> = Object.freeze(emptyState());

/** What a live reservation applied to each level, so it can be un-applied or settled. */
interface Held {
  expiry: number;
  /** A lease of `requests` requests' worth; otherwise one request. */
  lease: boolean;
  requests: number;
  levels: Array<{ scope: Scope; costNanos: number; tokens: number; rpm: number | undefined; tpm: number | undefined }>;
}

type Pass = { ok: true; rtat: number; ttat: number };
type Verdict = Pass | { ok: false; reason: RefusalReason; retryAfterMs?: number };

/**
 * Checks one level against its limits for `requests` requests (costNanos and
 * tokens are their totals), as if `headroom` times as much were asked; on a
 * pass, returns the TATs to apply. The Redis script does the same.
 */
function check(l: LevelReservation, s: ScopeState, now: number, requests: number, headroom: number): Verdict {
  const spent = s.window >= l.windowStart ? s.spent : 0;
  if (l.budgetNanos !== undefined && spent + s.reserved + s.leased + headroom * l.costNanos > l.budgetNanos) return { ok: false, reason: "budget" };
  if (l.maxConcurrent !== undefined && s.inFlight + s.leasedSlots + headroom * requests > l.maxConcurrent) return { ok: false, reason: "concurrency" };
  const pass: Pass = { ok: true, rtat: s.rtat, ttat: s.ttat };
  if (l.rpm !== undefined) {
    pass.rtat = Math.max(s.rtat, now) + requests * (MINUTE / l.rpm);
    const needed = Math.max(s.rtat, now) + headroom * requests * (MINUTE / l.rpm);
    if (needed - now > MINUTE) return { ok: false, reason: "rpm", retryAfterMs: Math.ceil(needed - now - MINUTE) };
  }
  if (l.tpm !== undefined) {
    pass.ttat = Math.max(s.ttat, now) + l.tokens * (MINUTE / l.tpm);
    const needed = Math.max(s.ttat, now) + headroom * l.tokens * (MINUTE / l.tpm);
    if (needed - now > MINUTE) {
      // More tokens than a whole minute allows: waiting never helps.
      if (l.tokens > l.tpm) return { ok: false, reason: "tpm" };
      return { ok: false, reason: "tpm", retryAfterMs: Math.ceil(needed - now - MINUTE) };
    }
  }
  return pass;
}

/** GCRA arrival times of one level, as both stores keep them. */
export interface Tats {
  rtat: number;
  ttat: number;
}

/**
 * x-ratelimit-* state over the levels (the tightest, i.e. the fewest
 * remaining, wins). Shared by both stores so they report identically; a
 * field is absent when no level has that limit.
 */
export function rateState(levels: readonly LevelReservation[], tats: readonly Tats[], now: number): RateState {
  const rate: RateState = {};
  levels.forEach((l, i) => {
    const { rtat, ttat } = tats[i];
    if (l.rpm !== undefined) {
      const remaining = allowance(rtat, now, MINUTE / l.rpm);
      if (rate.remainingRequests === undefined || remaining < rate.remainingRequests) {
        rate.limitRequests = l.rpm;
        rate.remainingRequests = remaining;
        rate.resetRequestsMs = Math.max(0, rtat - now);
      }
    }
    if (l.tpm !== undefined) {
      const remaining = allowance(ttat, now, MINUTE / l.tpm);
      if (rate.remainingTokens === undefined || remaining < rate.remainingTokens) {
        rate.limitTokens = l.tpm;
        rate.remainingTokens = remaining;
        rate.resetTokensMs = Math.max(0, ttat - now);
      }
    }
  });
  return rate;
}

/** How many more units of T fit in the minute of GCRA tolerance. */
function allowance(tat: number, now: number, t: number): number {
  return Math.max(0, Math.floor((MINUTE - (Math.max(tat, now) - now)) / t));
}

/** Keyset position: the last listed item's createdAt and id. */
export interface Cursor {
  createdAt: number;
  id: string;
}

/** Page tokens are opaque to callers: base64url of [createdAt, id]. */
export function encodePageToken(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString("base64url");
}

export function decodePageToken(token: string | undefined): Cursor | undefined {
  if (token === undefined || token === "") return undefined;
  try {
    const v: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === "number" && typeof v[1] === "string") {
      return { createdAt: v[0], id: v[1] };
    }
  } catch {
    // Fall through to the one error below.
  }
  throw new Error("invalid page token");
}

export const clampPageSize = (n: number): number => Math.min(1000, Math.max(1, Math.floor(n) || 1));

/** True when `item` comes after the cursor in (createdAt, id) order. */
export function isAfter(item: Cursor, cursor: Cursor | undefined): boolean {
  if (!cursor) return true;
  return item.createdAt > cursor.createdAt || (item.createdAt === cursor.createdAt && item.id > cursor.id);
}

function page<T extends Cursor>(items: T[], pageSize: number, pageToken: string | undefined): ListPage<T> {
  const size = clampPageSize(pageSize);
  const after = decodePageToken(pageToken);
  const sorted = items
    .filter((item) => isAfter(item, after))
    .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out = sorted.slice(0, size).map((item) => structuredClone(item));
  const last = out[out.length - 1];
  return sorted.length > size ? { items: out, nextPageToken: encodePageToken(last) } : { items: out };
}

/** Entities are stored as their JSON form (undefined fields dropped), the same shape Redis returns. */
const normalize = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
const copy = <T>(value: T | undefined): T | undefined => (value === undefined ? undefined : structuredClone(value));

/** Min-heap of reservation expiries; entries go stale on renew and are skipped when popped. */
interface Expiry {
  expiry: number;
  id: string;
}

function heapPush(heap: Expiry[], e: Expiry): void {
  heap.push(e);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent].expiry <= e.expiry) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = e;
}

function heapPop(heap: Expiry[]): Expiry {
  const top = heap[0];
  const last = heap.pop() as Expiry;
  if (heap.length === 0) return top;
  let i = 0;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= heap.length) break;
    if (child + 1 < heap.length && heap[child + 1].expiry < heap[child].expiry) child++;
    if (heap[child].expiry >= last.expiry) break;
    heap[i] = heap[child];
    i = child;
  }
  heap[i] = last;
  return top;
}

/** The SQLite file behind the embedded store: entities written through, spend in batches. */
interface Disk {
  entities(): Array<{ kind: EntityKind; id: string; json: string }>;
  spend(): Array<{ scope: Scope; spent: number; window: number }>;
  putEntity(kind: EntityKind, id: string, json: string): void;
  deleteEntity(kind: EntityKind, id: string): void;
  writeSpend(rows: ReadonlyArray<{ scope: Scope; spent: number; window: number }>): void;
  close(): void;
}

function openDisk(path: string): Disk {
  mkdirSync(dirname(path), { recursive: true });
  const db = new DatabaseSync(path);
  // WAL + NORMAL: a crash may lose the last moments of spend, never corrupt the file.
  db.exec(`
    PRAGMA journal_mode = WAL;
    PRAGMA synchronous = NORMAL;
    CREATE TABLE IF NOT EXISTS entities (kind TEXT NOT NULL, id TEXT NOT NULL, json TEXT NOT NULL, PRIMARY KEY (kind, id));
    CREATE TABLE IF NOT EXISTS spend (scope TEXT PRIMARY KEY, spent REAL NOT NULL, window_start REAL NOT NULL);
  `);
  const putEntity = db.prepare(
    "INSERT INTO entities (kind, id, json) VALUES (?, ?, ?) ON CONFLICT (kind, id) DO UPDATE SET json = excluded.json",
  );
  const deleteEntity = db.prepare("DELETE FROM entities WHERE kind = ? AND id = ?");
  const putSpend = db.prepare(
    "INSERT INTO spend (scope, spent, window_start) VALUES (?, ?, ?) ON CONFLICT (scope) DO UPDATE SET spent = excluded.spent, window_start = excluded.window_start",
  );
  return {
    entities: () =>
      db.prepare("SELECT kind, id, json FROM entities").all().map((r) => ({
        kind: String(r.kind) as EntityKind,
        id: String(r.id),
        json: String(r.json),
      })),
    spend: () =>
      db.prepare("SELECT scope, spent, window_start FROM spend").all().map((r) => ({
        scope: String(r.scope),
        spent: Number(r.spent),
        window: Number(r.window_start),
      })),
    putEntity: (kind, id, json) => void putEntity.run(kind, id, json),
    deleteEntity: (kind, id) => void deleteEntity.run(kind, id),
    writeSpend(rows) {
      db.exec("BEGIN");
      try {
        for (const r of rows) putSpend.run(r.scope, r.spent, r.window);
        db.exec("COMMIT");
      } catch (err) {
        db.exec("ROLLBACK");
        throw err;
      }
    },
    close: () => db.close(),
  };
}
