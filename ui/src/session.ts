/**
 * Who is signed in and what they may do, for every page to read. The
 * permission names come from WhoAmI ("keys.write"); they only hide controls,
 * the server checks every call regardless.
 */
import { createContext } from "preact";
import { useContext } from "preact/hooks";
import type { Identity } from "../../gen/switchyard/v1/auth_pb.ts";

/** Permission names as WhoAmI lists them (server/admin/types.ts holds the table). */
export type Permission =
  | "org.read" | "org.write" | "keys.read" | "keys.write" | "budgets.read" | "budgets.write" | "logs.read"
  | "routing.read" | "cache.read" | "cache.purge" | "users.read" | "users.write" | "audit.read" | "providers.write"
  | "config.write";

/** The signed-in caller. */
export interface Session {
  identity: Identity | undefined;
  permissions: ReadonlySet<string>;
}

/** Provided by the shell once WhoAmI answers. */
export const SessionContext = createContext<Session>({ identity: undefined, permissions: new Set() });

/** True when the signed-in caller holds the permission somewhere. */
export function useCan(): (p: Permission) => boolean {
  const s = useContext(SessionContext);
  return (p) => s.permissions.has(p);
}
