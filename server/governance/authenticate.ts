import type { AdminIdentity } from "../admin/types.ts";
import type { Customer, Team, VirtualKey } from "./types.ts";

/**
 * Who is calling. `anonymous`: an open gateway (no keys anywhere);
 * `gateway`: a static key from the configuration (not governed); `admin`:
 * the admin key (SWITCHYARD_ADMIN_KEY), which may also call the admin
 * services; `virtual`: a virtual key, with its team and customer;
 * `operator`: a person's session or an admin API key, for the admin
 * services only (never inference).
 */
export interface Principal {
  /** A stable, non-secret id: "anonymous", "admin", "key:<first 8 hex of the key's hash>" (static keys) or the virtual key's id ("key_…"). */
  id: string;
  kind: "anonymous" | "gateway" | "admin" | "virtual" | "operator";
  key?: VirtualKey | undefined;
  team?: Team | undefined;
  customer?: Customer | undefined;
  /** Admin callers (kinds admin and operator): who they are and their grants. */
  identity?: AdminIdentity | undefined;
}

/** Reads one request header, whatever the transport (lower-case name). */
export type HeaderGetter = (name: string) => string | null | undefined;

/** Who is calling, from the request's headers; may look the key up in the governance store. */
export type Authenticator = (header: HeaderGetter) => Principal | Promise<Principal>;

/** The presented key, from the first header that carries one. */
export function credential(header: HeaderGetter): string | undefined {
  const auth = header("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return header("x-api-key") || header("api-key") || undefined;
}

