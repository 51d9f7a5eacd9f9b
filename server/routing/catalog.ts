import type { Model } from "../../gen/switchyard/v1/models_pb.ts";
import type { Provider } from "../providers/types.ts";
import type { DiscoveredModels } from "./resolve.ts";

const REFRESH_MS = 5 * 60_000;
const FETCH_TIMEOUT_MS = 10_000;

/**
 * The models the gateway can route to: each provider's declared list, or for
 * a provider without one, what its own /models reports (fetched in the
 * background, refreshed every few minutes; a provider that cannot be asked is
 * left out rather than failing the whole list).
 */
export interface ModelCatalog extends DiscoveredModels {
  list(): Promise<Model[]>;
  /** Starts background discovery; returns at once. */
  start(): void;
  stop(): void;
}

export function createModelCatalog(
  providers: ReadonlyMap<string, Provider>,
  aliases: Readonly<Record<string, string>>,
  onError: (provider: string, err: unknown) => void,
): ModelCatalog {
  const discovered = new Map<string, { at: number; models: Map<string, Model> }>();
  const inFlight = new Map<string, Promise<void>>();
  let timer: NodeJS.Timeout | undefined;

  function refresh(p: Provider): Promise<void> {
    const running = inFlight.get(p.id);
    if (running) return running;
    const job = p
      .listModels({ signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), requestId: "catalog" })
      .then((models) => {
        const byId = new Map<string, Model>();
        for (const m of models) byId.set(m.id, model(`${p.id}/${m.id}`, p.id, m.created, m.ownedBy, ""));
        discovered.set(p.id, { at: Date.now(), models: byId });
      })
      .catch((err: unknown) => onError(p.id, err))
      .finally(() => inFlight.delete(p.id));
    inFlight.set(p.id, job);
    return job;
  }

  return {
    has(providerId, name) {
      return discovered.get(providerId)?.models.has(name) ?? false;
    },
    async list() {
      const pending: Promise<void>[] = [];
      for (const p of providers.values()) {
        const d = discovered.get(p.id);
        if (p.declaredModels.length === 0 && (d === undefined || Date.now() - d.at > REFRESH_MS)) pending.push(refresh(p));
      }
      await Promise.all(pending);
      const out: Model[] = [];
      for (const p of providers.values()) {
        if (p.declaredModels.length > 0) for (const m of p.declaredModels) out.push(model(`${p.id}/${m}`, p.id, 0n, p.id, ""));
        else for (const m of discovered.get(p.id)?.models.values() ?? []) out.push(m);
      }
      for (const [alias, target] of Object.entries(aliases)) {
        out.push(model(alias, target.slice(0, target.indexOf("/")), 0n, "switchyard", target));
      }
      return out;
    },
    start() {
      const run = (): void => {
        for (const p of providers.values()) if (p.declaredModels.length === 0) void refresh(p);
      };
      run();
      timer = setInterval(run, REFRESH_MS);
      timer.unref();
    },
    stop() {
      clearInterval(timer);
    },
  };
}

function model(id: string, provider: string, created: number | bigint, ownedBy: string, target: string): Model {
  return { $typeName: "switchyard.v1.Model", id, provider, created: BigInt(created), ownedBy, target };
}
