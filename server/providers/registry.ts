import { OPENAI_PRESETS, type ProviderConfig } from "../config/schema.ts";
import { createAnthropicProvider } from "./anthropic/adapter.ts";
import { createAzureProvider } from "./azure/adapter.ts";
import { createBedrockProvider } from "./bedrock/adapter.ts";
import { createGeminiProvider } from "./gemini/adapter.ts";
import { createOpenAIProvider } from "./openai/adapter.ts";
import type { Provider } from "./types.ts";
import { ConfigError } from "../config/load.ts";
import { isForbiddenAddress } from "./shared/address-guard.ts";

/** The only place provider types are listed: configuration type -> implementation. */
export function createProvider(config: ProviderConfig): Provider {
  // Literal addresses are never looked up, so the connect-time guard cannot see them: checked here, once.
  const baseUrl = (config as { baseUrl?: string }).baseUrl;
  if (baseUrl !== undefined && isForbiddenAddress(URL.parse(baseUrl)?.hostname.replace(/^\[|\]$/g, "") ?? "")) {
    throw new ConfigError(`invalid configuration: provider '${config.id}': baseUrl points at a link-local or cloud metadata address`);
  }
  switch (config.type) {
    case "openai":
    case "openai-compatible":
      return createOpenAIProvider(config);
    case "anthropic":
      return createAnthropicProvider(config);
    case "gemini":
      return createGeminiProvider(config);
    case "azure":
      return createAzureProvider(config);
    case "bedrock":
      return createBedrockProvider(config);
    default:
      // The OpenAI-compatible presets (mistral, groq, ..., ollama, vllm); baseUrl was defaulted from the preset.
      if (config.type in OPENAI_PRESETS) return createOpenAIProvider({ ...config, baseUrl: config.baseUrl ?? OPENAI_PRESETS[config.type].baseUrl });
      throw new Error(`unknown provider type ${(config as { type: string }).type}`);
  }
}
