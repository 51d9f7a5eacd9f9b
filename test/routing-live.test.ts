import { describe, expect, it, vi } from "vitest";
import { toConfig } from "../server/admin/providers.ts";
import { validateConfig } from "../server/config/load.ts";
import type { ProviderConfig } from "../server/config/schema.ts";
import type { Provider } from "../server/providers/types.ts";
import { createHealthRegistry } from "../server/routing/health.ts";
import { createLiveRouting, type AdminRouting } from "../server/routing/live.ts";
import { silentLogger } from "../server/telemetry/log.ts";

/**
 * Live routing without a network: providers are fakes that count how often
 * they are made and closed, so reuse, retirement and refusal are visible.
 */
function harness(configInput: object = {}) {
  const config = validateConfig({ ...configInput, routing: { deadlineMs: 1_000 } }, "test");
  const made: Provider[] = [];
  const closed: string[] = [];
  const fake = (c: ProviderConfig): Provider => {
    const p = {
      id: c.id,
      declaredModels: c.models,
      keyCount: "keys" in c ? c.keys.length : 0,
      listModels: async () => [],
      close: async () => void closed.push(`${c.id}#${made.indexOf(p)}`),
    } as unknown as Provider;
    made.push(p);
    return p;
  };
  const live = createLiveRouting({ config, health: createHealthRegistry(config.routing.breaker, config.routing.keyBalance), logger: silentLogger, createProvider: fake, retireAfterMs: 50 });
  return { live, made, closed };
}

const admin = (id: string, keys = ["k-0123456789abcdef"], models = ["m1"]): ProviderConfig =>
  toConfig({ id, type: "openai-compatible", baseUrl: "http://127.0.0.1:9/v1", keys, models, headers: {}, createdAt: 0, updatedAt: 0 });
const routing = (providers: ProviderConfig[], extra: Partial<AdminRouting> = {}): AdminRouting => ({ providers, aliases: {}, routes: {}, ...extra });

describe("live routing", () => {
  it("reuses unchanged providers, replaces changed ones and closes what left after the grace", async () => {
    const { live, made, closed } = harness();
    live.apply(routing([admin("a")]));
    const a = live.current.providers.get("a");
    live.apply(routing([admin("a"), admin("b")]));
    expect(live.current.providers.get("a")).toBe(a);
    expect(made).toHaveLength(2);

    const before = live.current;
    live.apply(routing([admin("a", ["k-fedcba9876543210"]), admin("b")]));
    expect(live.current.providers.get("a")).not.toBe(a);
    // A request that planned on the old snapshot still holds the old provider, open.
    expect(before.plan({ model: "a/m1", fallbacks: [], user: "", sessionId: undefined })[0]!.provider).toBe(a);
    expect(closed).toEqual([]);
    await vi.waitFor(() => expect(closed).toEqual(["a#0"]));
    await live.close();
    expect(closed.sort()).toEqual(["a#0", "a#2", "b#1"]);
  });

  it("refuses a change that does not route; the old snapshot keeps serving and nothing leaks", async () => {
    const { live, closed } = harness();
    live.apply(routing([admin("a")]));
    const good = live.current;
    expect(() => live.apply(routing([admin("a"), admin("b")], { routes: { r: { targets: [{ model: "c/m1", weight: 1 }], strategy: "weighted", sticky: "none", fallbacks: [] } } })))
      .toThrow(/route 'r': targets\[0\]\.model/);
    expect(live.current).toBe(good);
    await vi.waitFor(() => expect(closed).toEqual(["b#1"])); // the provider made for the refused change
    expect(() => live.apply(routing([admin("a")], { aliases: { x: "a/other" } }))).toThrow(/alias 'x'/);
    expect(() => live.apply(routing([admin("a"), admin("c")]), () => { throw new Error("disk full"); })).toThrow("disk full");
    expect(live.current).toBe(good);
    expect(live.current.providers.has("c")).toBe(false);
    await vi.waitFor(() => expect(closed).toEqual(["b#1", "c#2"]));
    await live.close();
  });

  it("keeps the configuration's part read-only and the provider types current", async () => {
    const { live } = harness({ providers: [{ id: "cfg", type: "openai", baseUrl: "http://127.0.0.1:9/v1", keys: ["sk-config-key-123456"] }], aliases: { fast: "cfg/m" } });
    expect(() => live.apply(routing([admin("cfg")]))).toThrow(/configuration file/);
    expect(() => live.apply(routing([], { aliases: { fast: "cfg/other" } }))).toThrow(/configuration file/);
    live.apply(routing([admin("a")], { aliases: { quick: "a/m1" } }));
    expect(live.providerTypes.get("a")).toBe("openai-compatible");
    expect(live.providerTypes.get("cfg")).toBe("openai");
    expect(live.current.resolve("quick")).toMatchObject({ model: "m1" });
    expect((await live.catalog.list()).map((m) => m.id)).toEqual(["a/m1", "fast", "quick"]);
    await live.close();
  });
});
