import { createHash } from "node:crypto";
import { ConfigError } from "../config/load.ts";
import type { Target } from "./resolve.ts";

/** A model name mapped to weighted targets and fallbacks (configuration `routes`). */
export interface Route {
  targets: { model: string; weight: number }[];
  strategy: "weighted" | "least-busy";
  /** Keep a user (request `user`) or a session (`x-session-id`) on one target. */
  sticky: "none" | "user" | "session";
  fallbacks: string[];
}

export interface PlanInput {
  model: string;
  fallbacks: readonly string[];
  user: string;
  sessionId: string | undefined;
}

/**
 * The ordered targets for one request: for a route, the target its strategy
 * picks, then its other targets, then its fallbacks; for a plain model, the
 * model itself; then the request's own fallbacks. Duplicates are dropped.
 * Unknown fallback names fail the request like an unknown model would.
 */
export function createPlanner(
  routes: Readonly<Record<string, Route>>,
  resolve: (model: string) => Target,
  inFlight: (t: Target) => number,
): (input: PlanInput) => Target[] {
  return (input) => {
    const out: Target[] = [];
    const seen = new Set<string>();
    const add = (t: Target): void => {
      const id = `${t.provider.id}/${t.model}`;
      if (!seen.has(id)) {
        seen.add(id);
        out.push(t);
      }
    };
    const route = Object.hasOwn(routes, input.model) ? routes[input.model] : undefined;
    if (route === undefined) {
      add(resolve(input.model));
    } else {
      const resolved = route.targets.map((t) => ({ target: resolve(t.model), weight: t.weight }));
      const first = pick(route, resolved, input, inFlight);
      add(resolved[first]!.target);
      for (const r of resolved) add(r.target);
      for (const f of route.fallbacks) add(resolve(f));
    }
    for (const f of input.fallbacks) add(resolve(f));
    return out;
  };
}

/**
 * Start-up check: every route target and fallback names a model some
 * configured provider serves, so a typo fails at start, not at 3 a.m.
 */
export function checkRoutes(routes: Readonly<Record<string, Route>>, resolve: (model: string) => Target): void {
  for (const [name, route] of Object.entries(routes)) {
    const check = (model: string, where: string): void => {
      try {
        resolve(model);
      } catch (err) {
        throw new ConfigError(`invalid configuration: routes.${name}.${where}: ${(err as Error).message}`);
      }
    };
    route.targets.forEach((t, i) => check(t.model, `targets[${i}].model`));
    route.fallbacks.forEach((f, i) => check(f, `fallbacks[${i}]`));
  }
}

function pick(route: Route, targets: { target: Target; weight: number }[], input: PlanInput, inFlight: (t: Target) => number): number {
  if (targets.length === 1) return 0;
  if (route.strategy === "least-busy") {
    let best = 0;
    for (let i = 1; i < targets.length; i++) if (inFlight(targets[i]!.target) < inFlight(targets[best]!.target)) best = i;
    return best;
  }
  const stickyKey = route.sticky === "user" ? input.user : route.sticky === "session" ? input.sessionId : undefined;
  // Sticky callers hash to a fixed point on the weight line; others draw at random.
  const point = stickyKey ? hashUnit(stickyKey) : Math.random();
  const total = targets.reduce((n, t) => n + t.weight, 0);
  let acc = 0;
  for (let i = 0; i < targets.length; i++) {
    acc += targets[i]!.weight / total;
    if (point < acc) return i;
  }
  return targets.length - 1;
}

/** A stable number in [0, 1) for a string. */
function hashUnit(s: string): number {
  return createHash("sha256").update(s).digest().readUInt32BE(0) / 2 ** 32;
}
