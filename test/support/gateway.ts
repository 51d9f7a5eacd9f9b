import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway, type GatewayOptions, type RunningGateway } from "../../server/app.ts";
import { loadConfig, validateConfig } from "../../server/config/load.ts";
import type { ConfigInput } from "../../server/config/schema.ts";
import type { RequestRecord } from "../../server/pipeline/pipeline.ts";
import type { Logger } from "../../server/telemetry/log.ts";

export interface TestGateway extends RunningGateway {
  /** Every request the pipeline finished, in order. */
  records: RequestRecord[];
  /** Resolves once `count` records exist (records are written when a response completes). */
  waitForRecords(count: number, timeoutMs?: number): Promise<void>;
}

/**
 * Starts a real gateway on a free loopback port, validated through the same
 * code path as a configuration file.
 */
export async function startTestGateway(config: Partial<ConfigInput> = {}): Promise<TestGateway> {
  const records: RequestRecord[] = [];
  // Each gateway keeps its request log in a fresh temporary folder.
  const dataDir = config.dataDir ?? mkdtempSync(join(tmpdir(), "sy-data-"));
  const full = validateConfig({
    ...config,
    dataDir,
    server: { host: "127.0.0.1", port: 0, ...config.server },
    // One attempt per request and no circuit breaking unless a test asks: most tests check how a
    // single failure maps; the routing tests turn both on.
    routing: { retries: 0, ...config.routing, breaker: { minRequests: 1_000_000, ...config.routing?.breaker } },
  }, "test");
  return wrap(full, {}, records);
}

/**
 * Starts a gateway from a configuration file, as `--config FILE` does, and
 * watches the file. The file sets everything itself (server.port 0, dataDir).
 */
export async function startFileGateway(file: string, options: { logger?: Logger; watch?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<TestGateway> {
  // The test's own environment stays out (PORT, SWITCHYARD_* would override the file).
  const env = options.env ?? {};
  const config = await loadConfig({ file, env });
  return wrap(config, { logger: options.logger, configFile: { path: file, load: { env }, watch: options.watch ?? true } }, []);
}

async function wrap(config: Parameters<typeof startGateway>[0], options: GatewayOptions, records: RequestRecord[]): Promise<TestGateway> {
  const gw = await startGateway(config, { ...options, onRecord: (r) => records.push(r) });
  return {
    url: gw.url,
    port: gw.port,
    isOpen: () => gw.isOpen(),
    reloadConfig: () => gw.reloadConfig(),
    close: (graceMs?: number) => gw.close(graceMs ?? 0),
    records,
    async waitForRecords(count, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (records.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} records, have ${records.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

/** A provider entry pointing at a stand-in OpenAI server. */
export function openaiProvider(url: string, extra: Record<string, unknown> = {}): NonNullable<ConfigInput["providers"]>[number] {
  return { id: "openai", type: "openai", baseUrl: url, keys: ["sk-test"], ...extra } as NonNullable<ConfigInput["providers"]>[number];
}
