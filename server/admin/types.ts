/**
 * The admin plane's vocabulary: roles, scopes, grants, identities and the
 * permissions roles add up to. Transport-free; the permission table
 * (permissions.ts) maps every admin RPC onto these.
 */

/** Roles, lowest first; each holds every permission of the ones below. */
export const ROLES = ["viewer", "editor", "admin", "owner"] as const;
export type Role = (typeof ROLES)[number];

export function roleRank(r: Role): number {
  return ROLES.indexOf(r);
}

/** Where a grant applies: everything, one customer (its teams and their keys), or one team (its keys). */
export type Scope = { kind: "global" } | { kind: "customer"; id: string } | { kind: "team"; id: string };

export interface Grant {
  role: Role;
  scope: Scope;
}

export type Permission =
  | "org.read" // customers and teams
  | "org.write"
  | "keys.read"
  | "keys.write"
  | "budgets.read"
  | "budgets.write"
  | "logs.read"
  | "routing.read"
  | "cache.read"
  | "cache.purge"
  | "users.read"
  | "users.write"
  | "audit.read"
  | "providers.write" // providers (their API keys), aliases and routes: where traffic goes
  | "config.write";

const VIEWER: readonly Permission[] = ["org.read", "keys.read", "budgets.read", "logs.read", "routing.read", "cache.read"];
const EDITOR: readonly Permission[] = [...VIEWER, "keys.write", "budgets.write", "cache.purge"];
const ADMIN: readonly Permission[] = [...EDITOR, "org.write", "users.read", "users.write", "audit.read", "providers.write"];
const OWNER: readonly Permission[] = [...ADMIN, "config.write"];

/** What each role may do, within its grant's scope. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  viewer: new Set(VIEWER),
  editor: new Set(EDITOR),
  admin: new Set(ADMIN),
  owner: new Set(OWNER),
};

/**
 * An admin caller. `user`: a person (password or SSO), through a session
 * cookie; `apikey`: an admin API key ("sk-sya-…") for automation;
 * `bootstrap`: the SWITCHYARD_ADMIN_KEY, a global owner.
 */
export interface AdminIdentity {
  kind: "user" | "apikey" | "bootstrap";
  /** "usr_…", "adk_…" or "bootstrap". */
  id: string;
  /** What the audit log shows: an email, a key's name and hint, "bootstrap admin key". */
  label: string;
  email?: string | undefined;
  name?: string | undefined;
  grants: readonly Grant[];
  /** Session callers only: the token every call must echo as x-csrf-token. */
  csrf?: string | undefined;
  /** Session callers only: the session's id (hash), so logout can end it. */
  sessionId?: string | undefined;
  /** Admin API keys: the identity that created the key (a user id, another key's id, or "bootstrap"). */
  onBehalfOf?: string | undefined;
}

/** Where a resource sits: a key in a team in a customer, or global things (users, config, the audit log). */
export interface Place {
  customerId?: string | undefined;
  teamId?: string | undefined;
}

/** True when a grant's scope covers a place (global covers everything; a customer covers its teams). */
export function scopeCovers(scope: Scope, place: Place): boolean {
  switch (scope.kind) {
    case "global":
      return true;
    case "customer":
      return place.customerId === scope.id;
    case "team":
      return place.teamId === scope.id;
  }
}

/** True when scope a covers everything scope b does. */
export function scopeContains(a: Scope, b: Scope, customerOfTeam: (teamId: string) => string | undefined): boolean {
  if (a.kind === "global") return true;
  if (b.kind === "global") return false;
  if (a.kind === "customer") return b.kind === "customer" ? b.id === a.id : customerOfTeam(b.id) === a.id;
  return b.kind === "team" && b.id === a.id;
}

/** The identity's grants that give a permission at a place. */
export function allows(identity: AdminIdentity, permission: Permission, place: Place): boolean {
  return identity.grants.some((g) => ROLE_PERMISSIONS[g.role].has(permission) && scopeCovers(g.scope, place));
}

/** Every permission held anywhere (the UI hides controls with it; the server checks regardless). */
export function permissionsOf(identity: AdminIdentity): Permission[] {
  const out = new Set<Permission>();
  for (const g of identity.grants) for (const p of ROLE_PERMISSIONS[g.role]) out.add(p);
  return [...out].sort();
}
