import { hash, randomUUID } from "node:crypto";
import type { Usage } from "../../gen/switchyard/v1/common_pb.ts";
import { GatewayError } from "../errors/errors.ts";
import type { Target } from "../routing/resolve.ts";
import type { Logger } from "../telemetry/log.ts";
import { credential, type HeaderGetter, type Principal } from "./authenticate.ts";
import { isVirtualKey, sameHash } from "./keys.ts";
import { windowEnd, windowStart } from "./periods.ts";
import { outputTokensFromBytes } from "./estimate.ts";
import { createLeases, type Lease } from "./leases.ts";
import { costUsd, type Price, type Pricing, type Units } from "./pricing.ts";
import { rateHeaders } from "./rate-headers.ts";
import { createMemoryStore } from "./store-memory.ts";
import type { Budget, CounterStore, GovernanceStore, LevelReservation, Limits, RateState, ReserveResult, Scope, SettleInput } from "./types.ts";

export interface GovernorOptions {
  store: GovernanceStore;
  pricing: Pricing;
  /** Static gateway keys from the configuration: accepted, never governed. */
  staticKeys: readonly string[];
  adminKey: string | undefined;
  /** Provider id -> provider type, for price lookups. */
  providerTypes: ReadonlyMap<string, string>;
  reservationTtlMs: number;
  defaultMaxOutputTokens: number;
  unpricedModels: "refuse" | "free";
  logger: Logger;
  /** Cache hits are charged their original cost (default: free). */
  chargeHits?: boolean;
  /** How often other instances' changes are looked for (entity version poll). */
  pollMs?: number;
  /** What happens while a shared store (Redis) cannot be reached; default: refuse everything (503). */
  whenStoreDown?: WhenStoreDown | undefined;
  /** A shared store only: busy keys admit requests from leases (see leases.ts) instead of a round trip each. Default true. */
  leases?: boolean | undefined;
  /**
   * True while admin identities exist (people, admin API keys): one switch
   * covers both planes, so an admin plane with owners never leaves
   * inference open.
   */
  adminsExist?: () => boolean;
}

/**
 * Degraded mode, while Redis cannot be reached: rate limits are counted by
 * each instance on its own ("local", with `localShare` of every limit, so N
 * instances together stay near the limit) or refused; budgets refuse (fail
 * closed) or are served and charged once the store answers again.
 */
export interface WhenStoreDown {
  rateLimits: "local" | "refuse";
  budgets: "refuse" | "allow";
  localShare: number;
}

/** What the pipeline asks governance about one request. */
export interface Ask {
  /** Every model name the caller wrote: `model` and its own fallbacks. */
  models: readonly string[];
  /** Where routing would send it, in order. */
  targets: Target[];
  /**
   * Where `models[0]` alone resolves (its route's targets and configured
   * fallbacks, not the caller's): an entry naming one of these allows it.
   * The caller's own fallbacks must be allowed by name.
   */
  primary: readonly Target[];
  /** Choices asked for (n, best_of): the output worst case is multiplied by it. */
  choices?: number | undefined;
  /** Unit-priced endpoints: the most units the request can be billed (images, characters, audio seconds). */
  units?: Units | undefined;
  promptTokens: number;
  /** The caller's max_tokens; undefined: the model's limit. Embeddings: 0. */
  maxOutputTokens: number | undefined;
}

/** A request the key may make, priced, before anything is reserved (a cache hit reserves nothing). */
export interface Authorized {
  readonly principal: Principal;
  /** The targets this key may use and that can be priced, in routing order. */
  readonly targets: Target[];
  readonly prices: ReadonlyMap<Target, Price>;
  readonly worstUsd: number;
  readonly worstTokens: number;
  readonly promptTokens: number;
}

/** A request's hold on budgets and limits, until it settles or releases. */
export interface Admission {
  /**
   * Charges the actual cost of the served target (from the provider's usage,
   * or estimated when a stream ended without one) and frees the reservation.
   * Resolves once the charge is written to the store's connection (callers
   * await it before answering, so the record leaves before the answer does)
   * without waiting for the store's reply; failures are retried in the background.
   */
  settle(target: Target, usage: Usage | undefined, outputBytes: number, units?: Units): Promise<number>;
  /** Charges the whole reservation (an answer served without usage: never charge less than it may have cost). */
  settleReserved(): Promise<number>;
  /** Frees the reservation without charging (nothing was served). */
  release(): void;
}

export interface Governor {
  authenticate(header: HeaderGetter): Principal | Promise<Principal>;
  /** What the key may use (403 otherwise): the allowed, priced targets. No reservation yet. */
  authorize(principal: Principal, ask: Ask): Authorized;
  /** Reserves an authorized request's worst case at every level, or throws the refusal (429/503); rate-limit headers go to `setHeader` either way. */
  reserve(authorized: Authorized, setHeader?: (name: string, value: string) => void): Promise<Admission>;
  /** Cache hits are charged like answers (cache.chargeHits): reserved against budgets and limits, then settled. */
  readonly chargeHits: boolean;
  /** What a served answer cost by the pricing table (0 when unpriced), for requests outside governance. */
  costOf(target: Target, usage: Usage | undefined, units?: Units): number;
  /** Whether a virtual key may use a model (by the name it is listed under, and the target it is). */
  allowsModel(principal: Principal, providerId: string, model: string, listedAs: string): boolean;
  /** No keys of any kind exist: local traffic is served without one. */
  isOpen(): boolean;
  /** Replaces the static gateway keys (auth.keys) at once: a reloaded configuration. */
  setStaticKeys(keys: readonly string[]): void;
  /** Drops cached keys and entities (an admin write on this instance). */
  invalidate(): void;
  /** Settles that failed and were given up on (spend not recorded), for /metrics. */
  settleFailures(): number;
  /** Spend records waiting for the store to answer again (retried until it does). */
  pendingSettles(): number;
  /** Why requests are being counted locally (the shared store is unreachable); undefined when they are not. */
  degraded(): string | undefined;
  /** Requests admitted on local counters since start. */
  degradedRequests(): number;
  close(): Promise<void>;
}

const ANONYMOUS: Principal = Object.freeze({ id: "anonymous", kind: "anonymous" });
const ADMIN: Principal = Object.freeze({ id: "admin", kind: "admin" });
const FREE: Price = Object.freeze({ input: 0, output: 0 });
const NANOS = 1e9;
/** Longer than any request may run (provider total timeouts default to 10 minutes, and streams renew). */
const MAX_HOLD_MS = 30 * 60_000;
/** Cached principals (and unknown hashes); cleared when full, so invalid keys cannot grow it. */
const CACHE_MAX = 10_000;
/** Spend records kept while the store is unreachable (about 200 bytes each). */
const PENDING_MAX = 100_000;

type Cached = Principal | null | Promise<Principal | null>;

/**
 * Governance on the request path: who the caller is (virtual keys, looked up
 * by hash and cached until any instance changes an entity), and, before a
 * request leaves, an atomic reservation of its worst-case cost and its rate
 * at the key, team and customer levels. The reservation is settled to the
 * actual cost when the request ends, or released when nothing was served.
 */
export async function createGovernor(o: GovernorOptions): Promise<Governor> {
  const { store, pricing, logger } = o;
  const adminHash = o.adminKey === undefined ? undefined : sha256(o.adminKey);
  const staticMap = (keys: readonly string[]): Map<string, Principal> => {
    const out = new Map<string, Principal>();
    for (const k of keys) {
      const h = sha256(k);
      out.set(h, Object.freeze({ id: `key:${h.slice(0, 8)}`, kind: "gateway" }));
    }
    return out;
  };
  let staticByHash = staticMap(o.staticKeys);
  const cache = new Map<string, Cached>();
  // A store that cannot be reached at start (Redis down) must not stop the gateway: it starts locked
  // (as if keys existed) and the version poll picks the real state up once the store answers.
  let version = -1;
  let keysExist = true;
  try {
    keysExist = (await store.keyCount()) > 0;
    version = await store.version();
  } catch (err) {
    logger.warn("governance store unreachable at start: serving locked until it answers", { store: store.kind, error: err });
  }
  /** Reservations of requests still running here (id -> when reserved), renewed so they outlive the TTL. */
  const live = new Map<string, number>();
  let failedSettles = 0;
  // Degraded mode (a shared store only): local counters, and spend waiting for the store to answer.
  const down = store.kind === "redis" ? o.whenStoreDown : undefined;
  const local = down === undefined ? undefined : createMemoryStore();
  /** When the store last failed a reservation; requests go straight to local counters for a second after. */
  let downSince = 0;
  let lastDownWarning = 0;
  let degradedCount = 0;
  const pending: SettleInput[] = [];
  const liveLocal = new Map<string, number>();
  let flushing = false;
  let closed = false;
  let lastPollError = 0;
  const leases = store.kind === "redis" && o.leases !== false
    ? createLeases({
        store,
        ttlMs: o.reservationTtlMs,
        onGranted: (id, now) => live.set(id, now),
        onReturned: (id) => live.delete(id),
      })
    : undefined;

  const adminsExist = o.adminsExist ?? (() => false);
  const isOpen = (): boolean => staticByHash.size === 0 && adminHash === undefined && !keysExist && !adminsExist();

  async function poll(): Promise<void> {
    try {
      leases?.tick(Date.now());
      const v = await store.version();
      if (v !== version) {
        version = v;
        cache.clear();
        // Leases were sized for the old limits.
        leases?.retireAll();
        keysExist = (await store.keyCount()) > 0;
      }
    } catch (err) {
      // Requests fail on their own reservations while the store is down; one warning a minute is enough here.
      if (Date.now() - lastPollError > 60_000) {
        lastPollError = Date.now();
        logger.warn("governance store unreachable", { store: store.kind, error: err });
      }
    }
  }

  async function upkeep(): Promise<void> {
    try {
      const now = Date.now();
      // A backstop against a request that never ends: no reservation is renewed past MAX_HOLD_MS.
      for (const [id, since] of live) if (now - since > MAX_HOLD_MS) live.delete(id);
      for (const [id, since] of liveLocal) if (now - since > MAX_HOLD_MS) liveLocal.delete(id);
      if (local !== undefined) {
        if (liveLocal.size > 0) await local.renew([...liveLocal.keys()], o.reservationTtlMs, now);
        await local.sweep(now);
      }
      if (live.size > 0) await store.renew([...live.keys()], o.reservationTtlMs, now);
      await store.sweep(now);
    } catch {
      // The next round tries again; reservations live a whole TTL, renewals come every third of it.
    }
  }

  const pollTimer = setInterval(() => void poll(), o.pollMs ?? 250);
  const upkeepTimer = setInterval(() => void upkeep(), Math.max(200, Math.floor(o.reservationTtlMs / 3)));
  pollTimer.unref();
  upkeepTimer.unref();

  async function lookup(hash: string): Promise<Principal | null> {
    const key = await store.getKeyByHash(hash);
    if (key === undefined || !sameHash(key.hash, hash)) return null;
    const team = key.teamId === undefined ? undefined : await store.getTeam(key.teamId);
    const customer = team?.customerId === undefined ? undefined : await store.getCustomer(team.customerId);
    return Object.freeze({ id: key.id, kind: "virtual", key, team, customer });
  }

  /** Revoked, disabled and expired keys are known but refused (403), unlike unknown ones (401). */
  function usable(p: Principal | null): Principal {
    if (p === null) throw new GatewayError("unauthenticated", "invalid API key");
    const key = p.key!;
    if (key.revokedAt !== undefined) throw new GatewayError("permission_denied", "this API key has been revoked");
    if (!key.enabled) throw new GatewayError("permission_denied", "this API key is disabled");
    if (key.expiresAt !== undefined && key.expiresAt <= Date.now()) {
      throw new GatewayError("permission_denied", `this API key expired at ${new Date(key.expiresAt).toISOString()}`);
    }
    return p;
  }

  function authenticate(header: HeaderGetter): Principal | Promise<Principal> {
    if (isOpen()) return ANONYMOUS;
    const presented = credential(header);
    if (presented === undefined) {
      throw new GatewayError("unauthenticated", "missing API key: send it as 'Authorization: Bearer <key>'");
    }
    if (presented.length > 512) throw new GatewayError("unauthenticated", "invalid API key");
    const hash = sha256(presented);
    if (adminHash !== undefined && sameHash(hash, adminHash)) return ADMIN;
    const fixed = staticByHash.get(hash);
    if (fixed !== undefined) return fixed;
    // Only well-formed virtual keys reach the store: nothing else is worth a lookup.
    if (!isVirtualKey(presented)) throw new GatewayError("unauthenticated", "invalid API key");
    const hit = cache.get(hash);
    if (hit !== undefined) return hit instanceof Promise ? hit.then(usable) : usable(hit);
    if (cache.size >= CACHE_MAX) cache.clear();
    const pending = lookup(hash).then(
      (p) => {
        if (cache.get(hash) === pending) cache.set(hash, p);
        return p;
      },
      (err: unknown) => {
        cache.delete(hash);
        throw unavailable(err);
      },
    );
    cache.set(hash, pending);
    return pending.then(usable);
  }

  function authorize(principal: Principal, ask: Ask): Authorized {
    const key = principal.key!;
    const { team, customer } = principal;
    for (let i = 0; i < ask.models.length; i++) {
      const m = ask.models[i]!;
      if (!modelAllowed(key.allowedModels, m, i === 0 ? ask.primary : [])) throw new GatewayError("permission_denied", `this API key may not use the model '${m}'`);
    }
    let targets = key.allowedProviders.length === 0 ? ask.targets : ask.targets.filter((t) => key.allowedProviders.includes(t.provider.id));
    if (targets.length === 0) throw new GatewayError("permission_denied", `this API key may not use the providers that serve '${ask.models[0]}'`);

    const budgeted = key.budget !== undefined || team?.budget !== undefined || customer?.budget !== undefined;
    const prices = new Map<Target, Price>();
    let worstUsd = 0;
    let worstTokens = 0;
    for (const t of targets) {
      let price = pricing.lookup(o.providerTypes.get(t.provider.id) ?? "", t.provider.id, t.model);
      if (price === undefined) {
        // Without a price a budget cannot be enforced; spend of unbudgeted keys is counted as 0.
        if (budgeted && o.unpricedModels === "refuse") continue;
        price = FREE;
      }
      prices.set(t, price);
      const out = (ask.maxOutputTokens ?? price.maxOutputTokens ?? o.defaultMaxOutputTokens) * Math.max(1, ask.choices ?? 1);
      // Worst case: every prompt token written to the provider's cache, when that costs more than plain input.
      const worst = price.cacheWrite !== undefined && price.cacheWrite > price.input ? { cacheWriteTokens: ask.promptTokens } : {};
      worstUsd = Math.max(worstUsd, costUsd(price, { inputTokens: ask.promptTokens, outputTokens: out, units: ask.units, ...worst }));
      worstTokens = Math.max(worstTokens, ask.promptTokens + out);
    }
    if (prices.size < targets.length) {
      if (prices.size === 0) {
        throw new GatewayError("permission_denied",
          `no price is known for '${targets[0]!.provider.id}/${targets[0]!.model}', so its budget cannot be enforced (add it to governance.pricing)`);
      }
      targets = targets.filter((t) => prices.has(t));
    }
    return { principal, targets, prices, worstUsd, worstTokens, promptTokens: ask.promptTokens };
  }

  async function reserve(a: Authorized, setHeader?: (name: string, value: string) => void): Promise<Admission> {
    const { principal, worstUsd, worstTokens } = a;
    const key = principal.key!;
    const { team, customer } = principal;
    const now = Date.now();
    const costNanos = Math.ceil(worstUsd * NANOS);
    const levels: LevelReservation[] = [level(`key:${key.id}`, key.budget, key.limits, now, costNanos, worstTokens)];
    const periods: (Budget["period"])[] = [key.budget?.period ?? "none"];
    if (team !== undefined) {
      levels.push(level(`team:${team.id}`, team.budget, team.limits, now, costNanos, worstTokens));
      periods.push(team.budget?.period ?? "none");
    }
    if (customer !== undefined) {
      levels.push(level(`customer:${customer.id}`, customer.budget, undefined, now, costNanos, worstTokens));
      periods.push(customer.budget?.period ?? "none");
    }
    const id = randomUUID();
    const storeDown = justFailed(now);
    const lease = storeDown ? undefined : leases?.take(levels, costNanos, worstTokens, now);
    if (lease !== undefined) {
      if (setHeader !== undefined) rateHeaders(leaseRate(lease), setHeader);
      return leaseAdmission(a, lease, id, levels, periods, costNanos);
    }
    let result: ReserveResult;
    // While the store is known to be down, requests do not wait on it; one probe a second finds it back.
    let counters: CounterStore = store;
    if (storeDown) counters = local!;
    else {
      try {
        result = await store.reserve({ id, levels, ttlMs: o.reservationTtlMs, now });
        downSince = 0;
      } catch (err) {
        if (local === undefined) throw unavailable(err);
        if (downSince === 0 || now - lastDownWarning > 60_000) {
          lastDownWarning = now;
          logger.warn("governance store unreachable: rate limits are counted locally, budgets per governance.whenStoreDown", { store: store.kind, error: err });
        }
        downSince = Date.now();
        counters = local;
      }
    }
    if (counters === local) {
      result = await reserveLocally(id, levels, now);
      degradedCount++;
    }
    if (setHeader !== undefined) rateHeaders(result!.rate, setHeader);
    if (!result!.ok) throw refusal(result!, principal, now, worstTokens);
    (counters === store ? live : liveLocal).set(id, now);

    /** Replaces the reservation with what the request cost, at every level, once. */
    const charge = async (usd: number, tokens: number): Promise<void> => {
      live.delete(id);
      const t = Date.now();
      const input = { id, costNanos: Math.round(usd * NANOS), tokens, windows: windowsAt(levels, periods, t), now: t };
      // Admitted on local counters: free them, and charge the shared store (an id it never saw still charges).
      if (counters === local) {
        liveLocal.delete(id);
        await local.settle(input);
      }
      send(input);
    };
    return admission(a, charge, () => {
      live.delete(id);
      liveLocal.delete(id);
      counters.release(id, Date.now()).catch(() => undefined); // an unreleased reservation expires by itself
    });
  }

  /** A request admitted from a lease: charged against the lease, in the store and here. */
  function leaseAdmission(a: Authorized, lease: Lease, id: string, levels: LevelReservation[], periods: Budget["period"][], costNanos: number): Admission {
    const charge = (usd: number, tokens: number): void => {
      const t = Date.now();
      const nanos = Math.round(usd * NANOS);
      // The charge is sent first: done() may return the lease, and the charge should land on it.
      send({ id, costNanos: nanos, tokens, windows: windowsAt(levels, periods, t), now: t }, lease);
      leases!.done(lease, costNanos, a.worstTokens, nanos, tokens, true);
    };
    return admission(a, charge, () => leases!.done(lease, costNanos, a.worstTokens, 0, 0, false));
  }

  /** Settles or releases a request once: `charge` records what it cost. */
  function admission(a: Authorized, charge: (usd: number, tokens: number) => void | Promise<void>, release: () => void): Admission {
    let open = true;
    const once = async (usd: number, tokens: number): Promise<number> => {
      if (!open) return 0;
      open = false;
      await charge(usd, tokens);
      return usd;
    };
    return {
      settle(target, usage, outputBytes, units) {
        const price = a.prices.get(target) ?? FREE;
        const input = usage?.promptTokens ?? a.promptTokens;
        // Estimated from the bytes when the provider reported no usage: never more output than was
        // reserved (max_tokens or the model's limit), which is also the most a provider can bill.
        const output = usage?.completionTokens ?? Math.min(outputTokensFromBytes(outputBytes), Math.max(0, a.worstTokens - a.promptTokens));
        const usd = costUsd(price, {
          inputTokens: input,
          outputTokens: output,
          cachedInputTokens: usage?.cachedTokens ?? 0,
          cacheWriteTokens: usage?.cacheWriteTokens ?? 0,
          units,
        });
        return once(usd, input + output);
      },
      settleReserved: () => once(a.worstUsd, a.worstTokens),
      release() {
        if (!open) return;
        open = false;
        release();
      },
    };
  }

  /** The shared store failed a call within the last second: it is not waited on again until then. */
  function justFailed(now: number): boolean {
    return local !== undefined && downSince !== 0 && now - downSince < 1_000;
  }

  /**
   * Sends a spend record without waiting for the reply: the store's client
   * writes it to the connection at once, before the caller's answer is
   * written. A store that just failed is not tried again: the record queues
   * and is retried, as is one the store refuses or does not answer.
   */
  function send(input: SettleInput, lease?: Lease): void {
    if (justFailed(Date.now())) {
      queueSettle(input);
      return;
    }
    const sent = lease === undefined ? store.settle(input) : store.chargeLease({ ...input, lease: lease.id });
    sent.catch(() => queueSettle(input));
  }

  /**
   * Local counters for one request while the store is down: limits scaled to
   * this instance's share; budgets refused (fail closed) or, when allowed,
   * left to be charged once the store is back.
   */
  function reserveLocally(id: string, levels: LevelReservation[], now: number): Promise<ReserveResult> {
    const d = down!;
    const budgeted = levels.some((l) => l.budgetNanos !== undefined);
    const limited = levels.some((l) => l.rpm !== undefined || l.tpm !== undefined || l.maxConcurrent !== undefined);
    if ((budgeted && d.budgets === "refuse") || (limited && d.rateLimits === "refuse")) {
      throw new GatewayError("unavailable", "the gateway cannot check this key's budget right now; try again shortly", { retryAfter: "1" });
    }
    const share = (n: number | undefined): number | undefined => (n === undefined ? undefined : Math.max(1, Math.floor(n * d.localShare)));
    const scaled = levels.map((l) => ({ ...l, budgetNanos: undefined, rpm: share(l.rpm), tpm: share(l.tpm), maxConcurrent: share(l.maxConcurrent) }));
    return local!.reserve({ id, levels: scaled, ttlMs: o.reservationTtlMs, now });
  }

  /**
   * Spend the store did not take (it is unreachable): kept and retried until
   * it answers, oldest first. Settles are idempotent per reservation id, so
   * a retry never charges twice; an id the store no longer holds still charges.
   * Only beyond PENDING_MAX is a record given up on, counted and logged.
   */
  function queueSettle(input: SettleInput): void {
    if (pending.length >= PENDING_MAX) {
      failedSettles++;
      logger.error("spend could not be recorded: too many records waiting for the governance store", { reservation: input.id, costUsd: input.costNanos / NANOS, scopes: Object.keys(input.windows) });
      return;
    }
    pending.push(input);
    if (pending.length === 1) void flushPending();
  }

  async function flushPending(): Promise<void> {
    if (flushing) return;
    flushing = true;
    try {
      let wait = 200;
      while (pending.length > 0 && !closed) {
        try {
          await store.settle(pending[0]!);
          pending.shift();
          wait = 200;
        } catch {
          await new Promise((r) => setTimeout(r, wait).unref());
          wait = Math.min(wait * 2, 5_000);
        }
      }
    } finally {
      flushing = false;
    }
  }

  return {
    authenticate,
    authorize,
    reserve,
    isOpen,
    setStaticKeys(keys) {
      staticByHash = staticMap(keys);
    },
    invalidate() {
      cache.clear();
      leases?.retireAll();
      void store.keyCount().then((n) => (keysExist = n > 0), () => undefined);
    },
    settleFailures: () => failedSettles,
    pendingSettles: () => pending.length,
    degraded: () => (local !== undefined && downSince !== 0 ? "governance store unreachable: rate limits counted locally" : undefined),
    degradedRequests: () => degradedCount,
    chargeHits: o.chargeHits === true,
    allowsModel(principal, providerId, model, listedAs) {
      const key = principal.key;
      if (key === undefined) return true;
      if (key.allowedProviders.length > 0 && !key.allowedProviders.includes(providerId)) return false;
      const target = { provider: { id: providerId }, model } as Target;
      return modelAllowed(key.allowedModels, listedAs, [target]);
    },
    costOf(target, usage, units) {
      if (usage === undefined && units === undefined) return 0;
      const price = pricing.lookup(o.providerTypes.get(target.provider.id) ?? "", target.provider.id, target.model);
      if (price === undefined) return 0;
      return costUsd(price, { inputTokens: usage?.promptTokens ?? 0, outputTokens: usage?.completionTokens ?? 0, cachedInputTokens: usage?.cachedTokens, cacheWriteTokens: usage?.cacheWriteTokens, units });
    },
    async close() {
      clearInterval(pollTimer);
      clearInterval(upkeepTimer);
      await leases?.close();
      // Spend still waiting gets a last few seconds to reach the store; what does not is counted and logged.
      const until = Date.now() + 3_000;
      while (pending.length > 0 && Date.now() < until) {
        try {
          await store.settle(pending[0]!);
          pending.shift();
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      closed = true;
      if (pending.length > 0) {
        failedSettles += pending.length;
        logger.error("spend could not be recorded before exit: the governance store is unreachable", { records: pending.length, costUsd: pending.reduce((a, p) => a + p.costNanos, 0) / NANOS });
      }
      await local?.close();
      await store.close();
    },
  };
}

/** x-ratelimit-* state of a request from a lease: as granted, with what the lease has not handed out added back. */
function leaseRate(lease: Lease): RateState {
  const r = lease.rate;
  return {
    ...r,
    ...(r.remainingRequests === undefined ? {} : { remainingRequests: r.remainingRequests + lease.requests }),
    ...(r.remainingTokens === undefined ? {} : { remainingTokens: r.remainingTokens + Math.max(0, lease.tokens) }),
  };
}

/** Each level's current budget window at `t` (it may have rolled since the reservation). */
function windowsAt(levels: readonly LevelReservation[], periods: readonly Budget["period"][], t: number): Record<Scope, number> {
  const windows: Record<Scope, number> = {};
  for (let i = 0; i < levels.length; i++) windows[levels[i]!.scope] = windowStart(periods[i]!, t);
  return windows;
}

function level(scope: Scope, budget: Budget | undefined, limits: Limits | undefined, now: number, costNanos: number, tokens: number): LevelReservation {
  return {
    scope,
    budgetNanos: budget === undefined ? undefined : Math.floor(budget.limitUsd * NANOS),
    windowStart: windowStart(budget?.period ?? "none", now),
    costNanos,
    tokens,
    rpm: limits?.rpm,
    tpm: limits?.tpm,
    maxConcurrent: limits?.maxConcurrent,
  };
}

/**
 * A model is allowed when the list is empty, or an entry names it: the name
 * as written, its bare model part ("openai/gpt-4o" -> "gpt-4o"), a target it
 * routes to ("provider/model"), or a prefix ending in "*".
 */
function modelAllowed(allowed: readonly string[], model: string, targets: readonly Target[]): boolean {
  if (allowed.length === 0) return true;
  const bare = model.slice(model.indexOf("/") + 1);
  for (const a of allowed) {
    if (a.endsWith("*")) {
      const prefix = a.slice(0, -1);
      if (model.startsWith(prefix) || bare.startsWith(prefix)) return true;
    } else if (a === model || a === bare || targets.some((t) => a === `${t.provider.id}/${t.model}`)) {
      return true;
    }
  }
  return false;
}

const LEVEL_NAMES: Record<string, string> = { key: "this API key", team: "this key's team", customer: "this key's customer" };

/** The caller's refusal: final (never fallen back), with Retry-After when waiting helps. */
function refusal(r: Extract<ReserveResult, { ok: false }>, p: Principal, now: number, tokens: number): GatewayError {
  const kind = r.scope.slice(0, r.scope.indexOf(":"));
  const who = LEVEL_NAMES[kind] ?? kind;
  if (r.reason === "budget") {
    const budget = kind === "key" ? p.key?.budget : kind === "team" ? p.team?.budget : p.customer?.budget;
    const period = budget?.period ?? "none";
    const end = windowEnd(period, now);
    const resets = Number.isFinite(end) ? `; it resets at ${new Date(end).toISOString()}` : "";
    return new GatewayError("budget_exceeded", `the budget of ${who} is exhausted ($${budget?.limitUsd ?? 0} per ${period === "none" ? "lifetime" : period})${resets}`, {
      ...(Number.isFinite(end) ? { retryAfter: String(Math.ceil((end - now) / 1000)) } : {}),
      callerLimit: true,
    });
  }
  // A concurrency slot frees when any request ends: soon, but nobody knows when.
  const retryAfter = r.reason === "concurrency" ? "1" : r.retryAfterMs === undefined ? undefined : String(Math.max(1, Math.ceil(r.retryAfterMs / 1000)));
  const message =
    r.reason === "concurrency" ? `too many requests in flight for ${who}`
    : r.reason === "rpm" ? `the requests-per-minute limit of ${who} is reached`
    : retryAfter === undefined ? `this request may use up to ${tokens} tokens, more than the tokens-per-minute limit of ${who}; lower max_tokens`
    : `the tokens-per-minute limit of ${who} is reached`;
  return new GatewayError("rate_limited", message, { ...(retryAfter === undefined ? {} : { retryAfter }), callerLimit: true });
}

function unavailable(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError("unavailable", "the gateway cannot check keys and budgets right now; try again shortly", { retryAfter: "1", cause: err });
}

/** One-shot hashing: cheaper than a Hash object per request. */
function sha256(s: string): string {
  return hash("sha256", s, "hex");
}

