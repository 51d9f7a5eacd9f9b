import { randomUUID } from "node:crypto";
import type { CounterStore, LevelReservation, RateState } from "./types.ts";

/**
 * Leases, for a shared store (Redis): an instance that sends one key many
 * requests takes a block of them from the store at once (money, requests,
 * tokens and concurrency slots at every level, atomically, like one large
 * reservation) and admits requests from it without a round trip. Each
 * request's actual cost still goes to the store before its answer leaves
 * (`CounterStore.chargeLease`), so spend stays exact.
 *
 * Limits stay hard: a lease is only granted while HEADROOM times it still
 * fits at every level, so leases never hold the last of a limit. Near a limit
 * requests are reserved one by one, exactly as without leases, and the most a
 * lease can keep from other instances is a small share of what remains. An
 * instance that dies leaves its leases to expire like reservations.
 */

/** Requests a second, to one key on this instance, before it takes leases. */
const MIN_RATE = 32;
/** A lease is granted only when this many times it fits: at most 1/8 of what remains. */
const HEADROOM = 8;
/**
 * Nor more than 1/64 of any limit, so the leases a burst's end leaves unused on
 * other instances keep little from the requests refused meanwhile; a lease
 * smaller than MIN_SIZE requests is not worth taking.
 */
const LIMIT_SHARE = 64;
const MIN_SIZE = 4;
const MAX_SIZE = 1024;
/** A lease unused this long goes back; every lease goes back after MAX_AGE_MS (limits may have changed elsewhere). */
const IDLE_MS = 1_000;
const MAX_AGE_MS = 10_000;
/** After a refused lease, the key's requests are reserved one by one this long. */
const BACKOFF_MS = 1_000;

export interface Lease {
  readonly id: string;
  readonly levels: readonly LevelReservation[];
  readonly size: number;
  /** What is not handed out: money (nano-USD), requests, tokens, concurrency slots. */
  nanos: number;
  requests: number;
  tokens: number;
  slots: number;
  inFlight: number;
  retired: boolean;
  usedAt: number;
  readonly grantedAt: number;
  /** The tightest rate state when granted, the whole lease counted as used. */
  readonly rate: RateState;
}

interface Chain {
  leases: Lease[];
  /** Requests counted in this second and the one before it, for the rate. */
  second: number;
  count: number;
  previous: number;
  acquiring: boolean;
  backoffUntil: number;
}

export interface LeaseOptions {
  store: CounterStore;
  ttlMs: number;
  /** A granted lease is live (renewed with the requests in flight) until it goes back. */
  onGranted(id: string, now: number): void;
  onReturned(id: string): void;
}

export interface Leases {
  /**
   * One request's worth from a lease of this key (its worst-case cost and
   * tokens), or undefined: reserve it in the store. May start taking a lease
   * in the background.
   */
  take(levels: LevelReservation[], costNanos: number, tokens: number, now: number): Lease | undefined;
  /** A request taken from `lease` ended: it held `heldNanos`/`heldTokens` and cost `costNanos`/`tokens` (0 when released). */
  done(lease: Lease, heldNanos: number, heldTokens: number, costNanos: number, tokens: number, charged: boolean): void;
  /** Entities changed: no lease takes new requests, each goes back once its requests end. */
  retireAll(): void;
  /** Retires idle and old leases; returns retired ones with nothing in flight. */
  tick(now: number): void;
  /** Returns every lease (at exit; requests in flight charge the store directly once theirs is gone). */
  close(): Promise<void>;
  /** Leases held, for tests and metrics. */
  size(): number;
}

export function createLeases(o: LeaseOptions): Leases {
  const chains = new Map<string, Chain>();

  function chainOf(id: string): Chain {
    let c = chains.get(id);
    if (c === undefined) chains.set(id, (c = { leases: [], second: 0, count: 0, previous: 0, acquiring: false, backoffUntil: 0 }));
    return c;
  }

  function giveBack(c: Chain, lease: Lease, now: number): void {
    c.leases.splice(c.leases.indexOf(lease), 1);
    o.onReturned(lease.id);
    // A lease that does not go back expires by itself after the reservation TTL.
    o.store.returnLease(lease.id, { requests: lease.requests, tokens: Math.max(0, lease.tokens) }, now).catch(() => undefined);
  }

  function retire(c: Chain, lease: Lease, now: number): void {
    lease.retired = true;
    if (lease.inFlight === 0) giveBack(c, lease, now);
  }

  /** Asks the store for a lease sized to about a quarter second of this key's traffic, within every level's limits. */
  function acquire(c: Chain, levels: LevelReservation[], costNanos: number, tokens: number, rate: number, now: number): void {
    let size = Math.min(MAX_SIZE, 2 ** Math.ceil(Math.log2(Math.max(16, rate / 4))));
    for (const l of levels) {
      if (l.rpm !== undefined) size = Math.min(size, Math.floor(l.rpm / LIMIT_SHARE));
      if (l.maxConcurrent !== undefined) size = Math.min(size, Math.floor(l.maxConcurrent / LIMIT_SHARE));
      if (l.tpm !== undefined && tokens > 0) size = Math.min(size, Math.floor(l.tpm / LIMIT_SHARE / tokens));
      if (l.budgetNanos !== undefined && costNanos > 0) size = Math.min(size, Math.floor(l.budgetNanos / LIMIT_SHARE / costNanos));
    }
    if (size < MIN_SIZE) {
      c.backoffUntil = now + BACKOFF_MS;
      return;
    }
    const id = `lease:${randomUUID()}`;
    const leased = levels.map((l) => ({ ...l, costNanos: costNanos * size, tokens: tokens * size }));
    c.acquiring = true;
    o.store.reserve({ id, levels: leased, ttlMs: o.ttlMs, now, lease: { requests: size, headroom: HEADROOM } }).then(
      (result) => {
        c.acquiring = false;
        if (!result.ok) {
          c.backoffUntil = now + BACKOFF_MS;
          return;
        }
        o.onGranted(id, now);
        c.leases.push({
          id, levels: leased, size, nanos: costNanos * size, requests: size, tokens: tokens * size, slots: size,
          inFlight: 0, retired: false, usedAt: now, grantedAt: now, rate: result.rate,
        });
      },
      () => {
        c.acquiring = false;
        c.backoffUntil = now + BACKOFF_MS;
      },
    );
  }

  return {
    take(levels, costNanos, tokens, now) {
      const c = chainOf(chainIdOf(levels));
      const second = Math.floor(now / 1000);
      if (second !== c.second) {
        c.previous = second === c.second + 1 ? c.count : 0;
        c.second = second;
        c.count = 0;
      }
      c.count++;
      let taken: Lease | undefined;
      let spare = 0;
      for (let i = 0; i < c.leases.length; i++) {
        const lease = c.leases[i]!;
        if (lease.retired) continue;
        if (!sameLimits(lease.levels, levels)) {
          retire(c, lease, now);
          i--;
          continue;
        }
        if (taken === undefined && lease.requests >= 1 && lease.slots >= 1 && lease.nanos >= costNanos && lease.tokens >= tokens) {
          taken = lease;
          lease.requests--;
          lease.slots--;
          lease.nanos -= costNanos;
          lease.tokens -= tokens;
          lease.inFlight++;
          lease.usedAt = now;
        } else if (taken === undefined) {
          // Too little left for this request: it goes back once its requests end.
          retire(c, lease, now);
          i--;
          continue;
        }
        spare += lease.requests;
      }
      // The next lease is asked for while a quarter of this one is left, so traffic does not wait on it.
      const rate = Math.max(c.count, c.previous);
      if (!c.acquiring && rate >= MIN_RATE && now >= c.backoffUntil && spare * 4 < (taken?.size ?? 1)) {
        acquire(c, levels, costNanos, tokens, rate, now);
      }
      return taken;
    },

    done(lease, heldNanos, heldTokens, costNanos, tokens, charged) {
      lease.inFlight--;
      lease.slots++;
      lease.nanos += heldNanos - (charged ? costNanos : 0);
      // A released request's tokens stay used, as a released reservation's do.
      if (charged) lease.tokens += heldTokens - tokens;
      if (lease.retired && lease.inFlight === 0) {
        const c = chains.get(chainIdOf(lease.levels));
        if (c !== undefined && c.leases.includes(lease)) giveBack(c, lease, Date.now());
      }
    },

    retireAll() {
      const now = Date.now();
      for (const c of chains.values()) for (const lease of [...c.leases]) retire(c, lease, now);
    },

    tick(now) {
      for (const [id, c] of chains) {
        for (const lease of [...c.leases]) {
          if (lease.retired) continue;
          if (now - lease.usedAt > IDLE_MS || now - lease.grantedAt > MAX_AGE_MS) retire(c, lease, now);
        }
        if (c.leases.length === 0 && !c.acquiring && now - c.second * 1000 > 2_000) chains.delete(id);
      }
    },

    async close() {
      const all: Promise<void>[] = [];
      for (const c of chains.values()) {
        for (const lease of c.leases) {
          o.onReturned(lease.id);
          all.push(o.store.returnLease(lease.id, { requests: lease.requests, tokens: Math.max(0, lease.tokens) }, Date.now()).catch(() => undefined));
        }
      }
      chains.clear();
      await Promise.all(all);
    },

    size: () => [...chains.values()].reduce((n, c) => n + c.leases.length, 0),
  };
}

/** Leases are per key: its level comes first. */
const chainIdOf = (levels: readonly LevelReservation[]): string => levels[0]!.scope;

/** The same scopes, limits and budget windows: otherwise the lease was sized for other limits. */
function sameLimits(a: readonly LevelReservation[], b: readonly LevelReservation[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.scope !== y.scope || x.budgetNanos !== y.budgetNanos || x.windowStart !== y.windowStart || x.rpm !== y.rpm || x.tpm !== y.tpm || x.maxConcurrent !== y.maxConcurrent) {
      return false;
    }
  }
  return true;
}
