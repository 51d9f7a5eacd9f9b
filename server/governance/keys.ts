import { createHash, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";

/** Virtual keys: "sk-sy-" and 32 random bytes in base64url (43 characters). */
const PREFIX = "sk-sy-";
const KEY_SHAPE = /^sk-sy-[A-Za-z0-9_-]{43}$/;

/** A new secret; shown to its creator once, then only its hash is kept. */
export function newSecret(): string {
  return PREFIX + randomBytes(32).toString("base64url");
}

/** True for anything shaped like a virtual key; other tokens are rejected before any lookup. */
export function isVirtualKey(token: string): boolean {
  return token.length === 49 && KEY_SHAPE.test(token);
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

/** Equal-length hex hashes compared in constant time. */
export function sameHash(a: string, b: string): boolean {
  return a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** What lists show so people can tell keys apart without revealing them: "sk-sy-AbC…xyz9". */
export function hintOf(secret: string): string {
  return `${secret.slice(0, 9)}…${secret.slice(-4)}`;
}

/** Entity ids: a kind prefix and 16 random hex digits ("key_3f9a…"). */
export function newId(kind: "key" | "team" | "cus"): string {
  return `${kind}_${randomUUID().replaceAll("-", "").slice(0, 16)}`;
}
