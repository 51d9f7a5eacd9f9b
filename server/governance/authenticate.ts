import { createHash } from "node:crypto";
import { GatewayError } from "../errors/errors.ts";

/** Who is calling. Virtual keys, teams and budgets hang off this later. */
export interface Principal {
  /** A stable, non-secret id: "anonymous" or "key:<first 8 hex of the key's hash>". */
  id: string;
}

/** Reads one request header, whatever the transport (lower-case name). */
export type HeaderGetter = (name: string) => string | null | undefined;

export type Authenticator = (header: HeaderGetter) => Principal;

const ANONYMOUS: Principal = Object.freeze({ id: "anonymous" });

/**
 * Checks the gateway key on every inference call. Keys are accepted from
 * `Authorization: Bearer`, `x-api-key` (Anthropic SDKs) and `api-key` (Azure
 * SDKs). Only hashes of the configured keys are kept, and a presented key is
 * looked up by its hash, so comparison time does not depend on how much of a
 * key an attacker has guessed. With no keys configured the gateway is open
 * (start-up refuses that off loopback unless explicitly allowed).
 */
export function createAuthenticator(keys: readonly string[]): Authenticator {
  if (keys.length === 0) return () => ANONYMOUS;
  const byHash = new Map<string, Principal>();
  for (const k of keys) {
    const h = sha256(k);
    byHash.set(h, Object.freeze({ id: `key:${h.slice(0, 8)}` }));
  }
  return (header) => {
    const presented = credential(header);
    if (presented === undefined) {
      throw new GatewayError("unauthenticated", "missing API key: send it as 'Authorization: Bearer <key>'");
    }
    const p = presented.length <= 512 ? byHash.get(sha256(presented)) : undefined;
    if (p === undefined) throw new GatewayError("unauthenticated", "invalid API key");
    return p;
  };
}

/** The presented key, from the first header that carries one. */
export function credential(header: HeaderGetter): string | undefined {
  const auth = header("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1] : undefined;
  }
  return header("x-api-key") || header("api-key") || undefined;
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
