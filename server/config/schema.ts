import { z } from "zod";

/**
 * The configuration file's schema, and the one place defaults live. Unknown
 * keys are errors everywhere (a misspelt security setting must not be
 * silently ignored). `loadConfig` returns a fully defaulted, frozen value.
 */

const timeouts = z
  .strictObject({
    /** TCP + TLS connect. */
    connectMs: z.int().positive().default(10_000),
    /** Until the provider's response headers arrive (time to first byte). */
    firstByteMs: z.int().positive().default(120_000),
    /** Longest silence between two body chunks (stream idle gap). */
    idleMs: z.int().positive().default(60_000),
    /** The whole upstream exchange, streams included. */
    totalMs: z.int().positive().default(600_000),
  })
  .prefault({});

const providerId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "must be lowercase letters, digits, '-' or '_'");

export const providerSchema = z.strictObject({
  id: providerId,
  /** Wire format: the official OpenAI API or any server that speaks it. */
  type: z.enum(["openai", "openai-compatible"]),
  /** Base URL including the version path, e.g. https://api.openai.com/v1. */
  baseUrl: z.url({ protocol: /^https?$/ }),
  /** API keys; requests rotate across them. Local servers may need none. */
  keys: z.array(z.string().min(1)).default([]),
  /** Models this provider serves. Empty: discovered from its /models. */
  models: z.array(z.string().min(1)).default([]),
  /** Extra headers sent upstream with every request (e.g. OpenAI-Organization). */
  headers: z.record(z.string(), z.string()).default({}),
  timeouts,
  /** Upper bound on open sockets to this provider. */
  maxConnections: z.int().positive().max(65_536).default(256),
});

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.int().min(0).max(65_535).default(8080),
      /** Largest request body (REST) or message (RPC) accepted. */
      maxBodyBytes: z.int().positive().default(8 * 1024 * 1024),
      /** On SIGTERM: how long in-flight requests may take to finish. */
      shutdownGraceMs: z.int().min(0).default(30_000),
    })
    .prefault({}),
  auth: z
    .strictObject({
      /** Gateway API keys accepted on inference routes. */
      keys: z.array(z.string().min(16, "gateway keys must be at least 16 characters")).default([]),
      /** Serve without keys on a non-loopback address. Loopback never needs this. */
      allowUnauthenticated: z.boolean().default(false),
    })
    .prefault({}),
  providers: z.array(providerSchema).default([]),
  /** Model aliases: name -> "provider/model". */
  aliases: z.record(z.string().min(1), z.string().min(1)).default({}),
});

export type Config = z.output<typeof configSchema>;
export type ProviderConfig = z.output<typeof providerSchema>;
export type ConfigInput = z.input<typeof configSchema>;
