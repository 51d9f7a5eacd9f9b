/**
 * The provider types CreateProvider accepts, with what the form needs to
 * know about each: the base URL used when none is typed, and whether an API
 * key is required. Mirrors server/config/schema.ts (PROVIDER_TYPES and
 * OPENAI_PRESETS), which the UI cannot import (it would bundle zod); bedrock
 * is left out because the API refuses it (AWS credentials belong in the
 * configuration file). The server checks everything again.
 */
export interface ProviderType {
  type: string;
  label: string;
  /** "" when the type has none and a base URL must be typed. */
  defaultBaseUrl: string;
  /** Local servers (and OpenAI-compatible ones) may run without a key. */
  needsKey: boolean;
  /** Shown as the base URL placeholder when there is no default. */
  example?: string;
}

const preset = (type: string, label: string, defaultBaseUrl: string, needsKey = true): ProviderType => ({ type, label, defaultBaseUrl, needsKey });

/** In the order the README lists them. */
export const PROVIDER_TYPES: readonly ProviderType[] = [
  preset("openai", "OpenAI", "https://api.openai.com/v1"),
  { type: "openai-compatible", label: "OpenAI-compatible server", defaultBaseUrl: "", needsKey: false, example: "http://127.0.0.1:8000/v1" },
  preset("mistral", "Mistral", "https://api.mistral.ai/v1"),
  preset("groq", "Groq", "https://api.groq.com/openai/v1"),
  preset("together", "Together", "https://api.together.xyz/v1"),
  preset("fireworks", "Fireworks", "https://api.fireworks.ai/inference/v1"),
  preset("deepseek", "DeepSeek", "https://api.deepseek.com"),
  preset("xai", "xAI", "https://api.x.ai/v1"),
  preset("openrouter", "OpenRouter", "https://openrouter.ai/api/v1"),
  preset("cerebras", "Cerebras", "https://api.cerebras.ai/v1"),
  preset("perplexity", "Perplexity", "https://api.perplexity.ai"),
  preset("ollama", "Ollama (local)", "http://127.0.0.1:11434/v1", false),
  preset("vllm", "vLLM (local)", "http://127.0.0.1:8000/v1", false),
  preset("anthropic", "Anthropic", "https://api.anthropic.com"),
  preset("gemini", "Google Gemini", "https://generativelanguage.googleapis.com/v1beta"),
  { type: "azure", label: "Azure OpenAI", defaultBaseUrl: "", needsKey: true, example: "https://my-resource.openai.azure.com" },
];

/** The entry for a type; unknown types (a newer server's) get a neutral one. */
export function providerType(type: string): ProviderType {
  return PROVIDER_TYPES.find((t) => t.type === type) ?? { type, label: type, defaultBaseUrl: "", needsKey: false };
}

/** The base URL field's placeholder: the default, or an example of what to type. */
export function baseUrlPlaceholder(t: ProviderType): string {
  return t.defaultBaseUrl !== "" ? t.defaultBaseUrl : `required, e.g. ${t.example ?? "https://…"}`;
}
