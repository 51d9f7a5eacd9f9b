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

const httpUrl = z.url({ protocol: /^https?$/ });

/** Fields every provider has, whatever its wire format. */
const common = {
  /** Names the provider in model ids ("<id>/<model>"); defaults to the type. */
  id: providerId.optional(),
  /** Models this provider serves. Empty: discovered from the provider where it can list them. */
  models: z.array(z.string().min(1)).default([]),
  /** Extra headers sent upstream with every request (e.g. OpenAI-Organization). */
  headers: z.record(z.string(), z.string()).default({}),
  timeouts,
  /** Upper bound on open sockets to this provider. */
  maxConnections: z.int().positive().max(65_536).default(256),
};

/** API keys; requests rotate across them. */
const keys = z.array(z.string().min(1));

/**
 * Keys a provider cannot work without. `prefault` runs the check on a missing
 * field too, so "needs at least one API key" is what a user sees, not
 * "expected array, received undefined".
 */
const requiredKeys = (type: string, envName: string) =>
  keys.min(1, `the ${type} provider needs at least one API key (keys, or ${envName} in zero-config)`).prefault([]);

/**
 * Hosted and local servers that speak OpenAI's format, by name, with their
 * documented base URLs (local ones use 127.0.0.1 rather than localhost:
 * Ollama listens on IPv4 only, and localhost may resolve to ::1 first).
 * Local ones (ollama, vllm) need no key.
 */
export const OPENAI_PRESETS = {
  mistral: { baseUrl: "https://api.mistral.ai/v1", keyEnv: "MISTRAL_API_KEY", local: false },
  groq: { baseUrl: "https://api.groq.com/openai/v1", keyEnv: "GROQ_API_KEY", local: false },
  together: { baseUrl: "https://api.together.xyz/v1", keyEnv: "TOGETHER_API_KEY", local: false },
  fireworks: { baseUrl: "https://api.fireworks.ai/inference/v1", keyEnv: "FIREWORKS_API_KEY", local: false },
  deepseek: { baseUrl: "https://api.deepseek.com", keyEnv: "DEEPSEEK_API_KEY", local: false },
  xai: { baseUrl: "https://api.x.ai/v1", keyEnv: "XAI_API_KEY", local: false },
  openrouter: { baseUrl: "https://openrouter.ai/api/v1", keyEnv: "OPENROUTER_API_KEY", local: false },
  cerebras: { baseUrl: "https://api.cerebras.ai/v1", keyEnv: "CEREBRAS_API_KEY", local: false },
  perplexity: { baseUrl: "https://api.perplexity.ai", keyEnv: "PERPLEXITY_API_KEY", local: false },
  ollama: { baseUrl: "http://127.0.0.1:11434/v1", keyEnv: "OLLAMA_API_KEY", local: true },
  vllm: { baseUrl: "http://127.0.0.1:8000/v1", keyEnv: "VLLM_API_KEY", local: true },
} as const;
export type OpenAIPreset = keyof typeof OPENAI_PRESETS;
const presetNames = Object.keys(OPENAI_PRESETS) as OpenAIPreset[];

const openaiProvider = z.strictObject({
  type: z.literal("openai"),
  ...common,
  baseUrl: httpUrl.default("https://api.openai.com/v1"),
  keys: requiredKeys("openai", "OPENAI_API_KEY"),
});

const compatibleProvider = z.strictObject({
  type: z.literal("openai-compatible"),
  ...common,
  /** Base URL including the version path, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: httpUrl,
  keys: keys.default([]),
});

/** One schema per preset, so a missing key names the preset and its variable. */
function presetProvider<T extends OpenAIPreset>(type: T) {
  const preset = OPENAI_PRESETS[type];
  return z.strictObject({
    type: z.literal(type),
    ...common,
    /** Default: the preset's base URL (filled in by loadConfig). */
    baseUrl: httpUrl.optional(),
    keys: preset.local ? keys.default([]) : requiredKeys(type, preset.keyEnv),
  });
}

const anthropicProvider = z.strictObject({
  type: z.literal("anthropic"),
  ...common,
  baseUrl: httpUrl.default("https://api.anthropic.com"),
  keys: requiredKeys("anthropic", "ANTHROPIC_API_KEY"),
  /** Sent as the anthropic-version header. */
  anthropicVersion: z.string().min(1).default("2023-06-01"),
  /** max_tokens when the caller sets none (Anthropic requires it). */
  defaultMaxTokens: z.int().positive().default(4096),
});

const geminiProvider = z.strictObject({
  type: z.literal("gemini"),
  ...common,
  baseUrl: httpUrl.default("https://generativelanguage.googleapis.com/v1beta"),
  keys: requiredKeys("gemini", "GEMINI_API_KEY"),
});

const azureProvider = z.strictObject({
  type: z.literal("azure"),
  ...common,
  /** The resource endpoint, e.g. https://my-resource.openai.azure.com. */
  baseUrl: z.url({
    protocol: /^https?$/,
    error: (iss) => (iss.input === undefined ? "the azure provider needs its resource endpoint, e.g. https://my-resource.openai.azure.com (AZURE_OPENAI_ENDPOINT in zero-config)" : undefined),
  }),
  keys: requiredKeys("azure", "AZURE_OPENAI_API_KEY"),
  apiVersion: z.string().min(1).default("2024-10-21"),
  /** Model name -> deployment name; a model without an entry uses its own name. */
  deployments: z.record(z.string().min(1), z.string().min(1)).default({}),
});

const awsCredentials = z.strictObject({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1).optional(),
});

const bedrockProvider = z.strictObject({
  type: z.literal("bedrock"),
  ...common,
  region: z
    .string({ error: (iss) => (iss.input === undefined ? "the bedrock provider needs an AWS region such as us-east-1 (AWS_REGION in zero-config)" : undefined) })
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as us-east-1"),
  /** Default: https://bedrock-runtime.<region>.amazonaws.com. */
  baseUrl: httpUrl.optional(),
  /** Credential sets; requests rotate across them. */
  credentials: z
    .array(awsCredentials)
    .min(1, "the bedrock provider needs AWS credentials: [{ accessKeyId, secretAccessKey, sessionToken? }] (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in zero-config)")
    .prefault([]),
});

/** Every value `type` may take, in the order the README lists them. */
export const PROVIDER_TYPES = ["openai", "openai-compatible", ...presetNames, "anthropic", "gemini", "azure", "bedrock"] as const;

export const providerSchema = z.discriminatedUnion(
  "type",
  [
    openaiProvider,
    compatibleProvider,
    ...presetNames.map(presetProvider),
    anthropicProvider,
    geminiProvider,
    azureProvider,
    bedrockProvider,
  ],
  {
    error: (iss) => {
      if (iss.code !== "invalid_union") return undefined;
      const given = isRecord(iss.input) ? iss.input["type"] : undefined;
      const allowed = `expected one of ${PROVIDER_TYPES.join(", ")}`;
      if (given === undefined) return `missing provider type; ${allowed}`;
      // The value is echoed only when it looks like a type name: a misplaced secret must not reach the logs.
      const shown = typeof given === "string" && /^[a-z][a-z-]{0,31}$/.test(given) ? ` '${given}'` : "";
      return `unknown provider type${shown}; ${allowed}`;
    },
  },
);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: z.string().min(1).default("127.0.0.1"),
      port: z.int().min(0).max(65_535).default(8080),
      /** Largest request body (REST) or message (RPC) accepted. */
      maxBodyBytes: z.int().positive().default(8 * 1024 * 1024),
      /** On SIGTERM: how long in-flight requests may take to finish, counted from the signal. */
      shutdownGraceMs: z.int().min(0).default(30_000),
      /**
       * On SIGTERM: how long the port keeps accepting while /readyz already
       * answers 503, so load balancers take the instance out before it refuses
       * connections. Part of shutdownGraceMs.
       */
      drainDelayMs: z.int().min(0).default(2_000),
      /** Serve HTTPS (HTTP/2 and HTTP/1.1 by ALPN) on the same port instead of cleartext. Read at start. */
      tls: z
        .strictObject({
          /** PEM certificate chain. */
          certFile: z.string().min(1),
          /** PEM private key. */
          keyFile: z.string().min(1),
          /** PEM CA bundle: when set, every client must present a certificate it signed (mutual TLS). */
          clientCaFile: z.string().min(1).optional(),
        })
        .optional(),
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
  /** The admin key (SWITCHYARD_ADMIN_KEY): calls the admin services (keys, budgets, teams) and inference, ungoverned. */
  admin: z
    .strictObject({
      key: z.string().min(16, "the admin key must be at least 16 characters").optional(),
      /** People's sessions end this long after sign-in… */
      sessionHours: z.number().positive().max(24 * 30).default(12),
      /** …or this long after their last use. */
      sessionIdleMinutes: z.number().positive().max(24 * 60 * 30).default(120),
      /** Mark session cookies Secure (TLS terminated in front of the gateway). Also on for requests with X-Forwarded-Proto: https. */
      secureCookies: z.boolean().default(false),
      /** Audit entries older than this move to JSON Lines files under dataDir/audit-archive (never dropped). */
      auditRetentionDays: z.number().positive().default(365),
      /** Single sign-on for the web UI (OpenID Connect). */
      oidc: z
        .strictObject({
          issuer: z.url(),
          clientId: z.string().min(1),
          /** ${ENV} references are expanded; absent: a public client (PKCE only). */
          clientSecret: z.string().min(1).optional(),
          /** e.g. https://gateway.example.com/ui/auth/oidc/callback */
          redirectUri: z.url(),
          scopes: z.string().default("openid email profile"),
          label: z.string().default("Sign in with SSO"),
          /** Email domains allowed to sign in; empty: any (people still need an account). */
          allowedDomains: z.array(z.string().min(1)).default([]),
        })
        .optional(),
    })
    .prefault({}),
  governance: z
    .strictObject({
      /** embedded: one instance, state under dataDir. redis: shared by every instance (SWITCHYARD_REDIS_URL). */
      store: z.enum(["embedded", "redis"]).default("embedded"),
      redis: z
        .strictObject({
          url: z.string().regex(/^rediss?:\/\//, "must be a redis:// or rediss:// URL").default("redis://127.0.0.1:6379"),
          /** Key prefix (a cluster hash tag is added around it). */
          prefix: z.string().regex(/^[A-Za-z0-9_.:-]{1,32}$/).default("sy"),
          /** Every Redis call fails after this long; governed requests are then refused with 503, never hung. */
          commandTimeoutMs: z.int().positive().default(500),
        })
        .prefault({}),
      /**
       * While Redis cannot be reached. Rate limits: "local" counts them on each instance with
       * localShare of every limit (set it to 1/instances to keep the total), "refuse" answers 503.
       * Budgets: "refuse" answers 503 (fail closed), "allow" serves and charges the spend once Redis
       * answers again. Either way spend is never dropped: it is retried until Redis takes it.
       */
      whenStoreDown: z
        .strictObject({
          rateLimits: z.enum(["local", "refuse"]).default("local"),
          budgets: z.enum(["refuse", "allow"]).default("refuse"),
          localShare: z.number().positive().max(1).default(0.25),
        })
        .prefault({}),
      /** A request's reservation is released by itself this long after its gateway stops renewing it (a crashed instance). */
      reservationTtlMs: z.int().min(1_000).default(30_000),
      /**
       * Redis only: an instance sending one key 32 or more requests a second takes leases (blocks of
       * that key's budget and limits, never more than 1/8 of what remains) and admits its requests
       * from them without a round trip; each request's cost still reaches Redis before its answer leaves.
       */
      leases: z.boolean().default(true),
      /** Output tokens reserved when neither the request nor the pricing table gives a limit. */
      defaultMaxOutputTokens: z.int().positive().default(8_192),
      /** A model with no price: refused when a budget applies (budgets cannot be enforced), or treated as free. */
      unpricedModels: z.enum(["refuse", "free"]).default("refuse"),
      /** Prices in USD per million tokens, by "provider/model" or model name; they win over the shipped table. */
      pricing: z
        .record(
          z.string().min(1),
          z.strictObject({
            input: z.number().min(0),
            output: z.number().min(0),
            cachedInput: z.number().min(0).optional(),
            cacheWrite: z.number().min(0).optional(),
            maxOutputTokens: z.int().positive().optional(),
            /** Unit-priced models: USD per image, per million characters spoken, per minute transcribed. */
            perImage: z.number().min(0).optional(),
            perMillionChars: z.number().min(0).optional(),
            perMinute: z.number().min(0).optional(),
          }),
        )
        .default({}),
    })
    .prefault({}),
  cache: z
    .strictObject({
      /** off by default; SWITCHYARD_CACHE=exact|semantic|both turns it on for everyone. Keys, teams and customers may override. */
      mode: z.enum(["off", "exact", "semantic", "both"]).default("off"),
      /** How long an answer is served from the cache; a caller may shorten it (x-switchyard-cache-ttl), never lengthen it. */
      ttlSeconds: z.int().positive().max(31_536_000).default(3_600),
      /** The tenant boundary: entries are never served outside it. */
      scope: z.enum(["customer", "team", "key"]).default("customer"),
      /** memory (bounded LRU in this process) or redis (shared; governance.redis). Default: redis when governance uses it. */
      store: z.enum(["memory", "redis"]).optional(),
      /** Memory store bound. */
      maxBytes: z.int().positive().default(256 * 1024 * 1024),
      /** Keep the memory store in <dataDir>/cache.db across restarts. */
      persist: z.boolean().default(false),
      /** Charge cache hits to budgets at the answer's original cost (default: hits are free). */
      chargeHits: z.boolean().default(false),
      /** Store answers with several choices (n > 1). */
      storeMultipleChoices: z.boolean().default(false),
      semantic: z
        .strictObject({
          /** The gateway's own embedding model that embeds prompts ("provider/model"); required for semantic mode. */
          embeddingModel: z.string().min(1).optional(),
          /** Cosine similarity a near match needs; a caller may raise it (x-switchyard-cache-threshold), never lower it. */
          threshold: z.number().gt(0).max(1).default(0.95),
          /** What is embedded: the last user message, or the whole conversation. */
          prompt: z.enum(["last_user", "conversation"]).default("last_user"),
          /** Also answer requests with tools from near matches. */
          withTools: z.boolean().default(false),
          /** Only requests at or below this temperature (unset temperature counts as 1). */
          maxTemperature: z.number().min(0).max(2).default(0),
          /** Entries in the in-process index (about 6 KB each at 1,536 dimensions). */
          maxEntries: z.int().positive().default(100_000),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Stored responses (Responses API `store`): kept in <dataDir>/responses.db, or Redis when governance uses it. */
  responses: z
    .strictObject({
      /** How long a stored response can be continued or read. */
      ttlDays: z.number().positive().max(3_650).default(30),
      /** Who may read a stored response: the caller's customer, team or key. */
      scope: z.enum(["customer", "team", "key"]).default("customer"),
    })
    .prefault({}),
  providers: z.array(providerSchema).default([]),
  /** Model aliases: name -> "provider/model". */
  aliases: z.record(z.string().min(1), z.string().min(1)).default({}),
  /**
   * Model names mapped to weighted targets and fallbacks, e.g.
   * `gpt-4o: { targets: [{ model: openai/gpt-4o, weight: 90 }, { model: azure/gpt-4o, weight: 10 }], fallbacks: [anthropic/claude-sonnet-4-5] }`.
   */
  routes: z
    .record(
      z.string().min(1),
      z.strictObject({
        targets: z.array(z.strictObject({ model: z.string().min(1), weight: z.number().positive().default(1) })).min(1),
        /** weighted: by weight (sticky when asked); least-busy: the target with the fewest requests in flight. */
        strategy: z.enum(["weighted", "least-busy"]).default("weighted"),
        /** Keep a user (the request's `user`) or a session (`x-session-id` header) on one target. */
        sticky: z.enum(["none", "user", "session"]).default("none"),
        /** Tried in order when the targets fail with an error another target could fix. */
        fallbacks: z.array(z.string().min(1)).default([]),
      }),
    )
    .default({}),
  routing: z
    .strictObject({
      /** Extra tries on the same target after a retryable failure (5xx, 429, timeout, connection). */
      retries: z.int().min(0).max(10).default(1),
      /** Exponential backoff with full jitter from this base, capped; a provider's Retry-After wins. */
      backoffMs: z.int().min(0).default(200),
      maxBackoffMs: z.int().min(0).default(5_000),
      /** No new attempt (retry or fallback) starts after this long. */
      deadlineMs: z.int().positive().default(60_000),
      /** How a provider's keys share the load: in turn, or the key with the fewest requests in flight. */
      keyBalance: z.enum(["round-robin", "least-busy"]).default("round-robin"),
      /** Circuit breakers per target and per provider key. */
      breaker: z
        .strictObject({
          failureRate: z.number().gt(0).max(1).default(0.5),
          minRequests: z.int().positive().default(5),
          windowMs: z.int().positive().default(30_000),
          cooldownMs: z.int().positive().default(15_000),
        })
        .prefault({}),
      /** Active probes of every provider key (GET models); 0 turns them off. */
      healthCheckIntervalMs: z.int().min(0).default(0),
    })
    .prefault({}),
  /**
   * PostgreSQL shared by every instance (SWITCHYARD_DATABASE_URL): the request log and the admin
   * plane (people, sessions, admin keys, providers, audit) live there instead of SQLite files.
   */
  database: z
    .strictObject({
      /** postgres://user:password@host:5432/db; ${ENV} references are expanded. Unset: SQLite under dataDir. */
      url: z.string().regex(/^postgres(ql)?:\/\//, "must be a postgres:// or postgresql:// URL").optional(),
      /** Connections each instance may hold. */
      poolSize: z.int().min(2).max(200).default(10),
      /** A statement running longer is cancelled by the server. */
      statementTimeoutMs: z.int().positive().default(10_000),
    })
    .prefault({}),
  /** Where the gateway keeps its embedded state (request log database). */
  dataDir: z.string().min(1).default(".data"),
  /** Structured logs on stdout at this level and above. */
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
  requestLog: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** SQLite file; default <dataDir>/requests.db. */
      path: z.string().min(1).optional(),
      /** Records older than this are deleted. */
      retentionDays: z.number().positive().default(14),
      /** And the oldest beyond this many (about 500 bytes each). */
      maxRows: z.int().positive().default(2_000_000),
      /** Records waiting to be written; beyond it they are dropped and counted, never blocking requests. */
      queueMax: z.int().positive().default(20_000),
      /** Store prompts and answers too. Off by default: they may hold personal data. */
      bodies: z.boolean().default(false),
      /** Applied to stored prompts and answers: secrets, email, credit_card, phone, or a regular expression. */
      redact: z.array(z.string().min(1)).default(["secrets"]),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      /** OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT); spans go to <endpoint>/v1/traces. Unset: no spans. */
      endpoint: z.url({ protocol: /^https?$/ }).optional(),
      /** Full traces URL (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). */
      tracesEndpoint: z.url({ protocol: /^https?$/ }).optional(),
      serviceName: z.string().min(1).default("switchyard"),
      /** Headers for the collector (OTEL_EXPORTER_OTLP_HEADERS: k=v,k2=v2). */
      headers: z.record(z.string(), z.string()).default({}),
    })
    .prefault({}),
});

/**
 * A provider's configuration after defaults: `id` is always set (it defaults
 * to the type), and so is `baseUrl` (presets and bedrock derive theirs).
 */
export type ProviderConfig = z.output<typeof providerSchema> & { id: string; baseUrl: string };
export type Config = Omit<z.output<typeof configSchema>, "providers"> & { providers: ProviderConfig[] };
export type ConfigInput = z.input<typeof configSchema>;
export type ProviderOf<T extends ProviderConfig["type"]> = Extract<ProviderConfig, { type: T }>;
