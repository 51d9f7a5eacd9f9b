import { invalid } from "../errors/errors.ts";

/**
 * Per-request upstream timeouts; they can only tighten the provider's
 * configured ones. (The idle gap between stream chunks is the provider's
 * setting only.)
 */
export interface RequestTimeouts {
  firstByteMs?: number | undefined;
  totalMs?: number | undefined;
}

const HEADERS = {
  totalMs: "x-switchyard-timeout-ms",
  firstByteMs: "x-switchyard-first-byte-timeout-ms",
} as const;

/**
 * Reads the caller's timeout headers (milliseconds). Absent headers leave the
 * provider's timeouts in force; a malformed one is the caller's mistake (400).
 */
export function timeoutsFrom(header: (name: string) => string | null | undefined): RequestTimeouts | undefined {
  let out: RequestTimeouts | undefined;
  for (const [field, name] of Object.entries(HEADERS) as [keyof RequestTimeouts, string][]) {
    const v = header(name);
    if (v === undefined || v === null || v === "") continue;
    const ms = Number(v);
    if (!Number.isInteger(ms) || ms <= 0 || ms > 86_400_000) throw invalid(`${name}: expected a positive number of milliseconds`, name);
    (out ??= {})[field] = ms;
  }
  return out;
}
