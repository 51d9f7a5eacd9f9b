import { randomUUID } from "node:crypto";

const SAFE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request's id: the caller's `x-request-id` when it is a sane token (so
 * ids join up across services), a fresh UUID otherwise.
 */
export function requestIdFrom(presented: string | null | undefined): string {
  return presented && SAFE_ID.test(presented) ? presented : randomUUID();
}
