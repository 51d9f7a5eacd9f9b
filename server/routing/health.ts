import { GatewayError } from "../errors/errors.ts";
import type { Provider } from "../providers/types.ts";
import { CircuitBreaker, type BreakerOptions, type BreakerState } from "./breaker.ts";
import { countsAgainstHealth, parseRetryAfter } from "./policy.ts";
import type { Target } from "./resolve.ts";

/**
 * Passive health from live traffic: a circuit breaker per target
 * (provider/model) and per provider key, in-flight counts per key, and a
 * cool-down for a key the provider rate-limited. Routing asks it which
 * targets and keys to use; open ones are skipped, never waited on.
 */
export interface HealthRegistry {
  /** Whether routing may send to this target now. */
  targetAllows(t: Target): boolean;
  /**
   * The key to use for the next call to this provider: an index, `undefined`
   * for a provider without keys, or `null` when every key is open or cooling down.
   */
  pickKey(p: Provider): number | undefined | null;
  begin(t: Target, key: number | undefined): void;
  /** The call ended: `undefined` for success, or the error it failed with. */
  end(t: Target, key: number | undefined, err: GatewayError | undefined): void;
  /** An active probe's outcome for one key (or a keyless provider: no key state to update). */
  probed(p: Provider, key: number | undefined, err: unknown): void;
  /** Whether another key of the provider can take a call right now (no wait needed after a 429). */
  hasFreeKey(p: Provider): boolean;
  /** Requests in flight to a target (for least-busy routes). */
  inFlight(t: Target): number;
  /** Milliseconds until the soonest of these targets accepts calls again. */
  retryInMs(targets: readonly Target[]): number;
  snapshot(): ProviderHealth[];
}

export interface KeyHealth {
  index: number;
  state: BreakerState;
  inFlight: number;
  /** Rate-limited by the provider until this time (unix ms), or 0. */
  coolingUntil: number;
}

export interface ProviderHealth {
  provider: string;
  keys: KeyHealth[];
  targets: { model: string; state: BreakerState }[];
}

interface KeyState {
  breaker: CircuitBreaker;
  inFlight: number;
  coolUntil: number;
}

/** Most targets tracked with their own breaker. */
const MAX_TARGETS = 512;

/** Cool-down for a key the provider rate-limited without saying for how long. */
const DEFAULT_COOLDOWN_MS = 1000;

export function createHealthRegistry(breaker: BreakerOptions, balance: "round-robin" | "least-busy"): HealthRegistry {
  const targets = new Map<string, { provider: string; model: string; breaker: CircuitBreaker; inFlight: number }>();
  const keys = new Map<string, { states: KeyState[]; next: number }>();

  // Targets named by callers (a single provider passes any model name through) must not grow the map
  // without bound: past the cap, new targets share one untracked entry (no breaker state kept).
  const overflow = { provider: "", model: "", breaker: new CircuitBreaker({ ...breaker, minRequests: Number.MAX_SAFE_INTEGER }), inFlight: 0 };
  const targetOf = (t: Target) => {
    const id = `${t.provider.id}/${t.model}`;
    let s = targets.get(id);
    if (s === undefined) {
      if (targets.size >= MAX_TARGETS) return overflow;
      targets.set(id, (s = { provider: t.provider.id, model: t.model, breaker: new CircuitBreaker(breaker), inFlight: 0 }));
    }
    return s;
  };
  const keysOf = (p: Provider) => {
    let k = keys.get(p.id);
    if (k === undefined) {
      const states = Array.from({ length: p.keyCount }, () => ({ breaker: new CircuitBreaker(breaker), inFlight: 0, coolUntil: 0 }));
      keys.set(p.id, (k = { states, next: 0 }));
    }
    return k;
  };

  return {
    targetAllows: (t) => targetOf(t).breaker.allows(),

    pickKey(p) {
      if (p.keyCount === 0) return undefined;
      const k = keysOf(p);
      const now = Date.now();
      let best: number | null = null;
      for (let i = 0; i < k.states.length; i++) {
        // Round-robin starts from a moving offset; least-busy takes the fewest in flight.
        const idx = (k.next + i) % k.states.length;
        const s = k.states[idx]!;
        if (s.coolUntil > now || !s.breaker.allows(now)) continue;
        if (best === null) {
          best = idx;
          if (balance === "round-robin") break;
        } else if (s.inFlight < k.states[best]!.inFlight) {
          best = idx;
        }
      }
      k.next = (k.next + 1) % k.states.length;
      if (best !== null) return best;
      // Every usable key is rate-limited: rather than refuse locally, use the one that cools first
      // (the provider then answers for itself). Keys with an open circuit stay out.
      for (let i = 0; i < k.states.length; i++) {
        const s = k.states[i]!;
        if (!s.breaker.allows(now)) continue;
        if (best === null || s.coolUntil < k.states[best]!.coolUntil) best = i;
      }
      return best;
    },

    inFlight: (t) => targetOf(t).inFlight,

    probed(p, key, err) {
      if (key === undefined) return;
      const s = keysOf(p).states[key];
      if (s === undefined) return;
      const e = err === undefined ? undefined : GatewayError.from(err);
      // A probe counts like a call: through the half-open slot when the key's breaker is recovering.
      if (!s.breaker.allows()) return;
      s.breaker.begin();
      if (e !== undefined && countsAgainstHealth(e)) s.breaker.failure();
      else s.breaker.success();
    },

    begin(t, key) {
      const ts = targetOf(t);
      ts.inFlight++;
      ts.breaker.begin();
      if (key !== undefined) {
        const s = keysOf(t.provider).states[key]!;
        s.inFlight++;
        s.breaker.begin();
      }
    },

    end(t, key, err) {
      const ts = targetOf(t);
      ts.inFlight--;
      const s = key === undefined ? undefined : keysOf(t.provider).states[key]!;
      if (s !== undefined) s.inFlight--;
      // A caller who left tells nothing about the provider; a 429 is about one key, which cools down.
      if (err?.code === "canceled" || err?.code === "rate_limited") {
        ts.breaker.release();
        s?.breaker.release();
        if (s !== undefined && err.code === "rate_limited") s.coolUntil = Date.now() + (parseRetryAfter(err.retryAfter) ?? DEFAULT_COOLDOWN_MS);
        return;
      }
      const unhealthy = err !== undefined && countsAgainstHealth(err);
      if (unhealthy) ts.breaker.failure();
      else ts.breaker.success();
      if (s === undefined) return;
      if (unhealthy) s.breaker.failure();
      else s.breaker.success();
    },

    hasFreeKey(p) {
      if (p.keyCount < 2) return false;
      const now = Date.now();
      return keysOf(p).states.some((s) => s.coolUntil <= now && s.breaker.allows(now));
    },

    retryInMs(list) {
      let soonest = Infinity;
      for (const t of list) soonest = Math.min(soonest, targetOf(t).breaker.retryInMs());
      return Number.isFinite(soonest) ? soonest : 0;
    },

    snapshot() {
      const now = Date.now();
      const byProvider = new Map<string, ProviderHealth>();
      const entry = (provider: string) => {
        let h = byProvider.get(provider);
        if (h === undefined) byProvider.set(provider, (h = { provider, keys: [], targets: [] }));
        return h;
      };
      for (const [provider, k] of keys) {
        entry(provider).keys = k.states.map((s, index) => ({
          index,
          state: s.breaker.current(now),
          inFlight: s.inFlight,
          coolingUntil: s.coolUntil > now ? s.coolUntil : 0,
        }));
      }
      for (const t of targets.values()) entry(t.provider).targets.push({ model: t.model, state: t.breaker.current(now) });
      return [...byProvider.values()];
    },
  };
}
