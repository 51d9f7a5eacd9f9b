import type { Config } from "./schema.ts";

/**
 * Which configuration fields a reload can change while the gateway runs,
 * and the pure helpers a reload needs: the effective configuration (live
 * fields from the file, the rest as running), the fields that changed, and
 * redacted views for GetConfig and the audit log.
 *
 * Everything not listed here needs a restart: the listener (server.*), the
 * stores opened at start (dataDir, database, governance.store and redis, requestLog,
 * cache.store), tracing, the admin plane (admin.*), the log level.
 */
export const LIVE_FIELDS: readonly string[] = [
  "providers",
  "aliases",
  "routes",
  // Read by each request as it starts (retries, backoff, deadline); probes restart with the new interval.
  "routing.retries",
  "routing.backoffMs",
  "routing.maxBackoffMs",
  "routing.deadlineMs",
  "routing.healthCheckIntervalMs",
  "auth.keys",
  // The defaults a key, team or customer does not override.
  "cache.mode",
  "cache.ttlSeconds",
  "cache.semantic.threshold",
];

const isLive = (path: string): boolean => LIVE_FIELDS.some((f) => path === f || path.startsWith(`${f}.`));

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * The configuration to run after a reload: live fields from `next`, every
 * other field as `running` has it. Fields that differ but need a restart are
 * pushed onto `pending` (by path, "server.port"). The result is not frozen.
 */
export function effectiveConfig(running: Config, next: Config, pending: string[]): Config {
  return merge(running, next, "", pending) as Config;
}

function merge(running: unknown, next: unknown, path: string, pending: string[]): unknown {
  if (path !== "" && isLive(path)) return next;
  if (isMapping(running) && isMapping(next)) {
    const out: Record<string, unknown> = {};
    for (const k of new Set([...Object.keys(running), ...Object.keys(next)])) {
      const v = merge(running[k], next[k], path ? `${path}.${k}` : k, pending);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  if (!same(running, next)) pending.push(path);
  return running;
}

/** Paths of the fields that differ (mappings compared key by key; lists and values whole). */
export function changedFields(a: unknown, b: unknown, path = ""): string[] {
  if (isMapping(a) && isMapping(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])].flatMap((k) => changedFields(a[k], b[k], path ? `${path}.${k}` : k));
  }
  return same(a, b) ? [] : [path];
}

/** Field names whose values are secrets wherever they appear (header values may carry credentials). */
const SECRET = /^(keys?|clientSecret|secretAccessKey|sessionToken|accessKeyId|headers|password|token)$/i;
const REDACTED = "[redacted]";

/**
 * A deep copy safe to show: provider and gateway keys, the admin key, AWS
 * credentials, header values and the OIDC client secret become
 * "[redacted]", and a password in any URL (Redis) is replaced.
 */
export function redactConfig(config: Config): Record<string, unknown> {
  return redact(config, false) as Record<string, unknown>;
}

function redact(v: unknown, secret: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => redact(x, secret));
  if (isMapping(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = redact(x, secret || SECRET.test(k));
    return out;
  }
  if (typeof v !== "string") return v;
  return secret ? REDACTED : withoutPassword(v);
}

/** "redis://user:pw@host" -> "redis://user:[redacted]@host"; other strings unchanged. */
function withoutPassword(s: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/@\s]*@/i.test(s)) return s;
  return s.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@:\s]*)(?::[^/@\s]*)?@/i, (_m, scheme: string, user: string) => `${scheme}${user ? `${user}:` : ":"}${REDACTED}@`);
}

/** A short description of a configuration for the audit log: names and counts, no secrets. */
export function summarize(config: Config): Record<string, unknown> {
  return {
    providers: config.providers.map((p) => `${p.id} (${p.type})`),
    aliases: { ...config.aliases },
    routes: Object.keys(config.routes),
    gatewayKeys: config.auth.keys.length,
    routing: { retries: config.routing.retries, backoffMs: config.routing.backoffMs, maxBackoffMs: config.routing.maxBackoffMs, deadlineMs: config.routing.deadlineMs },
    cache: { mode: config.cache.mode, ttlSeconds: config.cache.ttlSeconds },
  };
}
