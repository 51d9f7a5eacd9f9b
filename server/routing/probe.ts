import type { Provider } from "../providers/types.ts";
import type { HealthRegistry } from "./health.ts";

/**
 * Optional active health checks: every interval, each key of each provider
 * lists the provider's models (cheap, billed nowhere) and the outcome feeds
 * the key's circuit breaker, so a broken key is found before a user's
 * request is. Probes never overlap; they stop with the gateway.
 */
export function startProbes(providers: Iterable<Provider>, health: HealthRegistry, intervalMs: number, timeoutMs = 10_000): () => void {
  const list = [...providers];
  let running = false;
  const run = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      await Promise.all(list.flatMap((p) => {
        const keys = p.keyCount === 0 ? [undefined] : Array.from({ length: p.keyCount }, (_, i) => i);
        return keys.map(async (keyIndex) => {
          try {
            await p.listModels({ signal: AbortSignal.timeout(timeoutMs), requestId: "health-probe", keyIndex });
            health.probed(p, keyIndex, undefined);
          } catch (err) {
            health.probed(p, keyIndex, err);
          }
        });
      }));
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
