import { parseArgs } from "node:util";
import { startGateway } from "./app.ts";
import { ConfigError, loadConfig } from "./config/load.ts";
import { checkExposure } from "./config/exposure.ts";
import { createLogger } from "./telemetry/log.ts";
import { lowerHelperThreadPriority } from "./transport/thread-priority.ts";

const HELP = `switchyard: an AI gateway, one API for every LLM provider

Usage: node server/main.ts [options]

Options:
  --config FILE   configuration file (.yaml, .yml or .json)
  --port N        port for every protocol (default 8080, or PORT)
  --host ADDR     address to listen on (default 127.0.0.1, or HOST)
  --log-level L   debug | info | warn | error (default info, or LOG_LEVEL)
  -h, --help      show this help

Without --config, providers come from the environment (several keys: comma-separated):
  OPENAI_API_KEY, OPENAI_BASE_URL, ANTHROPIC_API_KEY, GEMINI_API_KEY,
  AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT, AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY
  + AWS_REGION (Bedrock), MISTRAL_API_KEY, GROQ_API_KEY, TOGETHER_API_KEY, FIREWORKS_API_KEY,
  DEEPSEEK_API_KEY, XAI_API_KEY, OPENROUTER_API_KEY, CEREBRAS_API_KEY, PERPLEXITY_API_KEY,
  OLLAMA_BASE_URL, VLLM_BASE_URL
Data directory (request log): SWITCHYARD_DATA_DIR (default .data)
Traces: OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP); none when unset
The --config file is re-read when it changes and on SIGHUP; settings that need a
restart (server, dataDir, stores, tracing, admin) are reported and keep their values.
Admin key: SWITCHYARD_ADMIN_KEY (admin services: virtual keys, budgets, teams).
Shared governance state for several instances: SWITCHYARD_REDIS_URL.
Gateway keys: SWITCHYARD_API_KEYS (comma-separated, ungoverned). With no key of
any kind the gateway serves unauthenticated on loopback only, unless
SWITCHYARD_ALLOW_UNAUTHENTICATED=1.
`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      "log-level": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  lowerHelperThreadPriority();
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`--port: '${values.port}' is not a port number`);
  }
  const overrides = { host: values.host, port, logLevel: values["log-level"] };
  const config = await loadConfig({ file: values.config, ...overrides });
  checkExposure(config);
  const logger = createLogger(config.logLevel);
  if (config.providers.length === 0) {
    logger.warn("no providers configured: set OPENAI_API_KEY or OPENAI_BASE_URL, or pass --config", {
      alsoRead: ["ANTHROPIC_API_KEY", "GEMINI_API_KEY", "AZURE_OPENAI_API_KEY + AZURE_OPENAI_ENDPOINT", "AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY + AWS_REGION", "MISTRAL_API_KEY, GROQ_API_KEY, ... (see README)"],
    });
  }

  // The file is watched and re-read on change and on SIGHUP, with the same command-line overrides.
  const configFile = values.config === undefined ? undefined : { path: values.config, load: overrides, watch: true };
  const gateway = await startGateway(config, { logger, configFile });
  if (gateway.isOpen()) {
    logger.warn("no keys exist (no virtual key, no SWITCHYARD_ADMIN_KEY, no SWITCHYARD_API_KEYS): inference is served without a key to anyone who can reach this address; it is refused without one as soon as any key exists", { host: config.server.host });
  }
  logger.info("switchyard listening", {
    url: gateway.url,
    providers: config.providers.map((p) => p.id),
    protocols: ["openai-rest", "connect", "grpc", "grpc-web"],
  });

  // First signal: drain (readiness fails, then the port closes, then in-flight work finishes or
  // gets an error event at the grace deadline, then spend and logs are flushed). A second forces exit.
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn("second signal: exiting without waiting for the drain", { signal });
      process.exit(1);
    }
    stopping = true;
    const { shutdownGraceMs: graceMs, drainDelayMs } = config.server;
    logger.info("draining", { signal, graceMs, drainDelayMs });
    // A backstop: a store that hangs while closing must not keep the process alive for ever.
    setTimeout(() => {
      logger.error("shutdown did not finish in time: exiting", { graceMs });
      process.exit(1);
    }, graceMs + 15_000).unref();
    gateway.close(graceMs, { drainDelayMs }).then(
      () => {
        logger.info("stopped", { signal });
        process.exit(0);
      },
      (err: unknown) => {
        logger.error("shutdown failed", { error: err });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  // A refused reload is logged (with the bad field) by the gateway; the running configuration stays.
  process.on("SIGHUP", () => {
    if (configFile === undefined) logger.warn("SIGHUP: nothing to reload (no --config file)");
    else gateway.reloadConfig().catch(() => {});
  });
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`switchyard: ${err.message}\n`);
  } else {
    process.stderr.write(`switchyard: failed to start: ${(err as Error)?.message ?? String(err)}\n`);
  }
  process.exit(1);
});
