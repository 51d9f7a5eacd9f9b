import type { ProviderConfig } from "../config/schema.ts";
import { createOpenAIProvider } from "./openai/adapter.ts";
import type { Provider } from "./types.ts";

/** The only place provider types are listed: config type -> implementation. */
export function createProvider(config: ProviderConfig): Provider {
  switch (config.type) {
    case "openai":
    case "openai-compatible":
      return createOpenAIProvider(config);
  }
}
