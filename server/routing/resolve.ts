import { GatewayError } from "../errors/errors.ts";
import type { Provider } from "../providers/types.ts";

/** Where a request goes: a provider and the model name it knows. */
export interface Target {
  provider: Provider;
  model: string;
}

/** Models a provider reported itself, for providers configured without a list. */
export interface DiscoveredModels {
  has(providerId: string, model: string): boolean;
}

/**
 * Resolves what a caller wrote in `model` to a target, in this order:
 * an alias; "provider/model" with a configured provider id; a bare name that
 * exactly one provider declares (or reported); the only provider, when there
 * is one. A provider with a declared model list serves only those models.
 */
export function createResolver(
  providers: ReadonlyMap<string, Provider>,
  aliases: Readonly<Record<string, string>>,
  discovered: DiscoveredModels,
): (model: string) => Target {
  const only = providers.size === 1 ? [...providers.values()][0] : undefined;

  function direct(name: string): Target | undefined {
    const slash = name.indexOf("/");
    if (slash <= 0) return undefined;
    const provider = providers.get(name.slice(0, slash));
    if (provider === undefined) return undefined; // e.g. "meta-llama/Llama-3" on a single vLLM
    const model = name.slice(slash + 1);
    if (model.length === 0) throw new GatewayError("model_not_found", `model '${name}' names no model after the provider`, { param: "model" });
    if (provider.declaredModels.length > 0 && !provider.declaredModels.includes(model)) {
      throw new GatewayError("model_not_found", `model '${model}' is not configured for provider '${provider.id}'`, { param: "model" });
    }
    return { provider, model };
  }

  return function resolve(name: string): Target {
    // Own keys only: "constructor" or "__proto__" is a model name, not an alias.
    const alias = Object.hasOwn(aliases, name) ? aliases[name] : undefined;
    if (alias !== undefined) return direct(alias)!; // aliases are checked at start-up
    const t = direct(name);
    if (t !== undefined) return t;
    let found: Provider | undefined;
    for (const p of providers.values()) {
      if (p.declaredModels.includes(name) || (p.declaredModels.length === 0 && discovered.has(p.id, name))) {
        if (found !== undefined) {
          throw new GatewayError("model_not_found", `model '${name}' is served by providers '${found.id}' and '${p.id}'; write it as provider/model`, { param: "model" });
        }
        found = p;
      }
    }
    if (found !== undefined) return { provider: found, model: name };
    if (only !== undefined && (only.declaredModels.length === 0 || only.declaredModels.includes(name))) {
      return { provider: only, model: name };
    }
    if (providers.size === 0) {
      throw new GatewayError("model_not_found", "no providers are configured: set OPENAI_API_KEY (or OPENAI_BASE_URL) or start with --config", { param: "model" });
    }
    throw new GatewayError("model_not_found", `model '${name}' is not served by any configured provider`, { param: "model" });
  };
}
