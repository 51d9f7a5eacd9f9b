import { isIP } from "node:net";
import { ConfigError } from "./load.ts";
import type { Config } from "./schema.ts";

/**
 * Refuses to serve without gateway keys on an address other people can reach,
 * unless the operator opted in: an open gateway spends the provider keys it
 * holds for anyone who finds it. Loopback is fine for a first try.
 */
export function checkExposure(config: Config): void {
  if (config.auth.keys.length > 0 || config.admin.key !== undefined || config.auth.allowUnauthenticated) return;
  if (isLoopback(config.server.host)) return;
  throw new ConfigError(
    `refusing to listen on ${config.server.host} without keys: set SWITCHYARD_ADMIN_KEY (and create virtual keys) or SWITCHYARD_API_KEYS (auth.keys), ` +
      `or set SWITCHYARD_ALLOW_UNAUTHENTICATED=1 (auth.allowUnauthenticated) to serve openly`,
  );
}

function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}
