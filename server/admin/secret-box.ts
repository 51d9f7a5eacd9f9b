import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from "node:crypto";

/**
 * AES-256-GCM over small secrets (provider API keys). The 32-byte key is
 * derived from the master secret with scrypt, so a passphrase in
 * SWITCHYARD_MASTER_KEY is as good as random bytes against an offline guess
 * at a stolen database. Each value gets a fresh 96-bit nonce; the associated
 * data binds a ciphertext to its row, so rows cannot be swapped.
 *
 * Layout: version (1) | nonce (12) | tag (16) | ciphertext.
 */
export interface SecretBox {
  seal(plain: string, context: string): Uint8Array;
  /** Throws when the key is wrong or the bytes were changed. */
  open(sealed: Uint8Array, context: string): string;
}

const VERSION = 1;
/** Fixed: the master secret is the only input that must stay secret. */
const SALT = "switchyard provider keys v1";

/** A box keyed by the master secret (derivation is deliberately slow: call once per start). */
export function createSecretBox(masterSecret: string): SecretBox {
  // N = 2^14 (16 MiB, tens of milliseconds): paid once per start, not per request.
  const key = scryptSync(masterSecret, SALT, 32, { N: 16_384, r: 8, p: 1 });
  return {
    seal(plain, context) {
      const nonce = randomBytes(12);
      const c = createCipheriv("aes-256-gcm", key, nonce);
      c.setAAD(Buffer.from(context));
      const body = Buffer.concat([c.update(plain, "utf8"), c.final()]);
      return Buffer.concat([Buffer.of(VERSION), nonce, c.getAuthTag(), body]);
    },
    open(sealed, context) {
      const b = Buffer.from(sealed);
      if (b.length < 29 || b[0] !== VERSION) throw new Error("not a sealed value of a known version");
      const d = createDecipheriv("aes-256-gcm", key, b.subarray(1, 13));
      d.setAAD(Buffer.from(context));
      d.setAuthTag(b.subarray(13, 29));
      return Buffer.concat([d.update(b.subarray(29)), d.final()]).toString("utf8");
    },
  };
}
