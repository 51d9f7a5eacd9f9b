import { GatewayError } from "../errors/errors.ts";
import type { Provider } from "../providers/types.ts";
import { CircuitBreaker, type BreakerOptions, type BreakerState } from "./breaker.ts";
import { countsAgainstHealth, parseRetryAfter } from "./policy.ts";
import type { Target } from "./resolve.ts";

/**
 * Passive health from live traffic: a circuit breaker per target
 * (provider/model) and per provider key, in-flight counts, and a cool-down
 * for a key the provider rate-limited. Routing asks it which targets and keys
 * to use; open ones are skipped, never waited on.
 */
export interface HealthRegistry {
  /** Whether routing may send to this target now. */
  targetAllows(t: Target): boolean;
  /**
   * The key to use for the next call to this provider: an index, `undefined`
   * for a provider without keys, or `null` when every key's circuit is open.
   */
  pickKey(p: Provider): number | undefined | null;
  /** A call starts; the token says whether it is a half-open probe (pass it back when it ends). */
  begin(t: Target, key: number | undefined): CallToken;
  /** The call's outcome for the breakers (once; a later settle of the same call is never a probe's). */
  settle(t: Target, key: number | undefined, err: GatewayError | undefined, token: CallToken): void;
  /** The call is over (in-flight counts). Streams settle at their first chunk and are done at their end. */
  done(t: Target, key: number | undefined): void;
  /** settle + done. */
  end(t: Target, key: number | undefined, err: GatewayError | undefined, token: CallToken): void;
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

export interface CallToken {
  targetProbe: boolean;
  keyProbe: boolean;
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

interface TargetState {
  provider: string;
  model: string;
  breaker: CircuitBreaker;
  inFlight: number;
}

/** Most targets remembered at once. */
const MAX_TARGETS = 512;
/** Cool-down for a key the provider rate-limited without saying for how long. */
const DEFAULT_COOLDOWN_MS = 1000;
/** A provider's Retry-After never benches a key for longer than this. */
const MAX_COOLDOWN_MS = 5 * 60_000;

type Outcome = "success" | "failure" | "neutral";

/**
 * What a call's end says about the provider: success when it answered (even
 * with the caller's own 4xx), failure for errors another attempt could fix,
 * neutral when it said nothing (the caller left or set a tighter limit, a
 * 429 that only benches one key, a request refused before it was sent).
 */
function outcomeOf(err: GatewayError | undefined): Outcome {
  if (err === undefined) return "success";
  if (err.code === "canceled" || err.code === "rate_limited" || err.callerLimit) return "neutral";
  if (countsAgainstHealth(err)) return "failure";
  return err.upstreamStatus !== undefined ? "success" : "neutral";
}

export function createHealthRegistry(breaker: BreakerOptions, balance: "round-robin" | "least-busy"): HealthRegistry {
  // Bounded: when full, idle entries (nothing in flight, no recent failure) are swept, so model
  // names chosen by callers (a pass-through provider serves any name) cannot crowd out real targets.
  const targets = new Map<string, TargetState>();
  const sweep = (): void => {
    for (const [id, ts] of targets) if (ts.inFlight <= 0 && ts.breaker.isIdle()) targets.delete(id);
  };
  const keys = new Map<string, { states: KeyState[]; next: number }>();
  const idOf = (t: Target): string => `${t.provider.id}/${t.model}`;

  const newKey = (): KeyState => ({ breaker: new CircuitBreaker(breaker), inFlight: 0, coolUntil: 0 });
  /**
   * Key states by provider id. A provider replaced with more keys (a reloaded
   * file, UpdateProvider) gets states for the new ones; states are never
   * dropped, so calls still running on the old provider keep theirs, and
   * keys are picked among the first `keyCount` only.
   */
  const keysOf = (p: Provider) => {
    let k = keys.get(p.id);
    if (k === undefined) {
      keys.set(p.id, (k = { states: Array.from({ length: p.keyCount }, newKey), next: 0 }));
    }
    while (k.states.length < p.keyCount) k.states.push(newKey());
    return k;
  };

  const registry: HealthRegistry = {
    targetAllows: (t) => targets.get(idOf(t))?.breaker.allows() ?? true,

    inFlight: (t) => targets.get(idOf(t))?.inFlight ?? 0,

    pickKey(p) {
      if (p.keyCount === 0) return undefined;
      const k = keysOf(p);
      const now = Date.now();
      const n = p.keyCount;
      let best: number | null = null;
      for (let i = 0; i < n; i++) {
        // Round-robin starts from a moving offset; least-busy takes the fewest in flight.
        const idx = (k.next + i) % n;
        const s = k.states[idx]!;
        if (s.coolUntil > now || !s.breaker.allows(now)) continue;
        if (best === null) {
          best = idx;
          if (balance === "round-robin") break;
        } else if (s.inFlight < k.states[best]!.inFlight) {
          best = idx;
        }
      }
      k.next = (k.next + 1) % n;
      if (best !== null) return best;
      // Every usable key is rate-limited: rather than refuse locally, use the one that cools first
      // (the provider then answers for itself). Keys with an open circuit stay out.
      for (let i = 0; i < n; i++) {
        const s = k.states[i]!;
        if (!s.breaker.allows(now)) continue;
        if (best === null || s.coolUntil < k.states[best]!.coolUntil) best = i;
      }
      return best;
    },

    begin(t, key) {
      const id = idOf(t);
      let ts = targets.get(id);
      if (ts === undefined) {
        if (targets.size >= MAX_TARGETS) sweep();
        if (targets.size < MAX_TARGETS) targets.set(id, (ts = { provider: t.provider.id, model: t.model, breaker: new CircuitBreaker(breaker), inFlight: 0 }));
      }
      const token: CallToken = { targetProbe: false, keyProbe: false };
      if (ts !== undefined) {
        ts.inFlight++;
        token.targetProbe = ts.breaker.begin();
      }
      if (key !== undefined) {
        const s = keysOf(t.provider).states[key]!;
        s.inFlight++;
        token.keyProbe = s.breaker.begin();
      }
      return token;
    },

    settle(t, key, err, token) {
      const outcome = outcomeOf(err);
      targets.get(idOf(t))?.breaker.record(outcome, token.targetProbe);
      token.targetProbe = false;
      if (key === undefined) return;
      const s = keysOf(t.provider).states[key]!;
      s.breaker.record(outcome, token.keyProbe);
      token.keyProbe = false;
      if (err?.code === "rate_limited") {
        s.coolUntil = Date.now() + Math.min(parseRetryAfter(err.retryAfter) ?? DEFAULT_COOLDOWN_MS, MAX_COOLDOWN_MS);
      }
    },

    done(t, key) {
      const ts = targets.get(idOf(t));
      if (ts !== undefined) ts.inFlight--;
      if (key !== undefined) keysOf(t.provider).states[key]!.inFlight--;
    },

    end(t, key, err, token) {
      registry.settle(t, key, err, token);
      registry.done(t, key);
    },

    probed(p, key, err) {
      if (key === undefined) return;
      const s = keysOf(p).states[key];
      if (s === undefined || !s.breaker.allows()) return;
      // A probe counts like a call: through the half-open slot when the key's breaker is recovering.
      const probe = s.breaker.begin();
      const outcome = outcomeOf(err === undefined ? undefined : GatewayError.from(err));
      s.breaker.record(outcome, probe);
      if (outcome === "success") s.coolUntil = 0;
    },

    hasFreeKey(p) {
      if (p.keyCount < 2) return false;
      const now = Date.now();
      const { states } = keysOf(p);
      for (let i = 0; i < p.keyCount; i++) {
        const s = states[i]!;
        if (s.coolUntil <= now && s.breaker.allows(now)) return true;
      }
      return false;
    },

    retryInMs(list) {
      let soonest = Infinity;
      for (const t of list) {
        const ts = targets.get(idOf(t));
        soonest = Math.min(soonest, ts === undefined ? 0 : ts.breaker.retryInMs());
      }
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
  return registry;
}
