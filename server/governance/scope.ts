import type { Principal } from "./authenticate.ts";

export type ScopeLevel = "customer" | "team" | "key";

/**
 * The tenant boundary a principal's shared data lives in (cache entries,
 * stored responses): its customer, team or key at the chosen level, falling
 * back to the next narrower one it has; principals without a virtual key
 * are their own scope ("anonymous", "admin", "key:<hash prefix>").
 */
export function tenantScope(p: Principal, level: ScopeLevel): string {
  if (p.kind !== "virtual") return p.id;
  if (level === "customer" && p.customer !== undefined) return `customer:${p.customer.id}`;
  if (level !== "key" && p.team !== undefined) return `team:${p.team.id}`;
  return `key:${p.key!.id}`;
}
