import type { ChatChunk } from "../../../gen/switchyard/v1/chat_pb.ts";
import type { ProviderOf } from "../../config/schema.ts";
import { createOpenAIProvider } from "../openai/adapter.ts";
import type { Provider } from "../types.ts";

/**
 * Azure OpenAI: OpenAI's wire format behind per-deployment URLs
 * (`/openai/deployments/{deployment}/chat/completions?api-version=...`) and an
 * `api-key` header. A model maps to a deployment through `deployments`, or is
 * itself the deployment name.
 */
export function createAzureProvider(config: ProviderOf<"azure">): Provider {
  const endpoint = config.baseUrl.replace(/\/+$/, "");
  const version = encodeURIComponent(config.apiVersion);
  const declared = new Set([...config.models, ...Object.keys(config.deployments)]);
  const inner = createOpenAIProvider({
    ...config,
    baseUrl: endpoint,
    models: [...declared],
    authHeader: (key) => ({ "api-key": key }),
    url(path, model) {
      if (path === "models") return `${endpoint}/openai/models?api-version=${version}`;
      const deployment = encodeURIComponent((Object.hasOwn(config.deployments, model) ? config.deployments[model] : undefined) ?? model);
      return `${endpoint}/openai/deployments/${deployment}/${path}?api-version=${version}`;
    },
  });
  return {
    ...inner,
    async chatStream(req, call) {
      return withoutAnnotations(await inner.chatStream(req, call));
    },
  };
}

/**
 * Azure opens a stream with a content-filter annotation for the prompt: a
 * chunk with `choices: []`, no usage and empty id/model. It carries nothing a
 * caller can use and would otherwise reach them as an empty first chunk (before
 * the one with the assistant role), so it is dropped. Returning early from this
 * generator returns the inner one, which aborts the upstream request.
 */
async function* withoutAnnotations(chunks: AsyncIterable<ChatChunk>): AsyncGenerator<ChatChunk> {
  for await (const chunk of chunks) {
    if (chunk.choices.length === 0 && chunk.usage === undefined) continue;
    yield chunk;
  }
}
