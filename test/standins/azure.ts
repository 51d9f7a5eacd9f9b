/**
 * A stand-in Azure OpenAI resource for tests (node:http, loopback only).
 *
 * Azure OpenAI speaks OpenAI's chat and embeddings formats behind its own
 * envelope, and that envelope is what this stand-in reproduces:
 * - per-deployment paths `/openai/deployments/{deployment}/chat/completions`
 *   and `/embeddings`, and `GET /openai/models`, each with a required
 *   `api-version` query (missing: 404 "Resource not found"; unknown: 400
 *   "API version not supported");
 * - the `api-key` header (401 "Access denied due to invalid subscription
 *   key..." without it or with a wrong one); `Authorization` is not needed;
 * - Azure's error bodies: `{"error":{"code":"DeploymentNotFound",...}}`,
 *   `{"error":{"code":"429",...}}` with `retry-after`, and the content filter's
 *   400 with `innererror.content_filter_result`;
 * - Azure's content-filter annotations: `prompt_filter_results` on the
 *   completion and, in streams, as a first chunk with `choices: []` (and
 *   empty id, model, object); `content_filter_results` on each choice;
 *   `finish_reason: "content_filter"` when the answer is filtered.
 * Answers come from the OpenAI stand-in's pure planners (test/standins/openai/),
 * so content, tool calls and usage follow the same deterministic rules.
 *
 * Content filter triggers: a prompt containing `[filter-prompt]` is refused
 * (400 content_filter); one containing `[filter-answer]` gets an answer cut by
 * the output filter after two content chunks.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from "node:http";
import { messageText, parseChatRequest, planChat, renderChunks, renderCompletion } from "./openai/chat.ts";
import { parseEmbeddingsRequest, renderEmbeddings } from "./openai/embeddings.ts";
import { BehaviorSlot, type BehaviorScope } from "./shared/behavior.ts";
import { type Exchange, pause, readBody, StandinLifecycle, write } from "./shared/lifecycle.ts";

type Json = Record<string, unknown>;

/** Azure's error envelope: `code` and `message`, sometimes OpenAI's `type`/`param` and an `innererror`. */
export interface AzureErrorBody {
  error: { code: string | null; message: string; type?: string | null; param?: string | null; status?: number; innererror?: Json };
}

export interface AzureStandinOptions {
  /** Accepted `api-key` values. Default `["az-test-key"]`. */
  apiKeys?: string[];
  /** Deployment name -> the model it runs. Default `{ "gpt-4o": "gpt-4o", "prod-chat": "gpt-4o-mini", "embed": "text-embedding-3-small" }`. */
  deployments?: Record<string, string>;
  /** Accepted api-version values. Default a few GA and preview versions including 2024-10-21. */
  apiVersions?: string[];
  /** Characters per streamed chunk. Default 4. */
  streamChunkChars?: number;
}

/** Failure injection, as in the OpenAI stand-in; `status` bodies default to Azure's. */
export type AzureBehavior = BehaviorScope &
  (
    | { kind: "status"; status: number; body?: object; headers?: Record<string, string> }
    | { kind: "hang" }
    | { kind: "stream-cut"; afterChunks: number }
    | { kind: "slow-stream"; gapMs: number }
    | { kind: "delay"; ms: number }
    | { kind: "stream-error"; afterChunks: number }
  );

export interface AzureRecordedRequest {
  method: string;
  path: string;
  /** Parsed query parameters. */
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: unknown;
  receivedAt: number;
}

export interface AzureStandin {
  /** The resource endpoint (no path), as configured for the azure provider's baseUrl. */
  readonly url: string;
  readonly requests: AzureRecordedRequest[];
  readonly aborted: number;
  /** Times at which each stream event was written (Date.now()), for the last stream. */
  readonly lastStreamWrites: number[];
  setBehavior(b: AzureBehavior | null): void;
  close(): Promise<void>;
}

const SAFE = { filtered: false, severity: "safe" };
/** The per-category result Azure attaches to prompts and answers that pass. */
export const PASSED_FILTERS = { hate: SAFE, self_harm: SAFE, sexual: SAFE, violence: SAFE };
const PROMPT_PASSED = { ...PASSED_FILTERS, jailbreak: { filtered: false, detected: false } };

export const azureErrors = {
  accessDenied: (): AzureErrorBody => ({
    error: {
      code: "401",
      message:
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.",
    },
  }),
  deploymentNotFound: (): AzureErrorBody => ({
    error: {
      code: "DeploymentNotFound",
      message: "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again.",
    },
  }),
  resourceNotFound: (): AzureErrorBody => ({ error: { code: "404", message: "Resource not found" } }),
  apiVersionNotSupported: (): AzureErrorBody => ({ error: { code: "BadRequest", message: "API version not supported" } }),
  rateLimited: (apiVersion: string, seconds: number): AzureErrorBody => ({
    error: {
      code: "429",
      message: `Requests to the ChatCompletions_Create Operation under Azure OpenAI API version ${apiVersion} have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after ${seconds} seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase the default rate limit.`,
    },
  }),
  contentFilter: (): AzureErrorBody => ({
    error: {
      message:
        "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry. To learn more about our content filtering policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
      type: null,
      param: "prompt",
      code: "content_filter",
      status: 400,
      innererror: {
        code: "ResponsibleAIPolicyViolation",
        content_filter_result: { ...PASSED_FILTERS, jailbreak: { filtered: true, detected: true }, violence: { filtered: true, severity: "high" } },
      },
    },
  }),
  contextLength: (): AzureErrorBody => ({
    error: {
      message: "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
      type: "invalid_request_error",
      param: "messages",
      code: "context_length_exceeded",
    },
  }),
  serverError: (): AzureErrorBody => ({ error: { code: "InternalServerError", message: "The server had an error while processing your request. Sorry about that!" } }),
  unavailable: (): AzureErrorBody => ({ error: { code: "ServiceUnavailable", message: "The service is temporarily unable to process your request. Please try again later." } }),
};

const DEFAULT_VERSIONS = ["2024-02-01", "2024-06-01", "2024-10-21", "2025-01-01-preview", "2025-04-01-preview"];

export async function startAzureStandin(opts: AzureStandinOptions = {}): Promise<AzureStandin> {
  const apiKeys = new Set(opts.apiKeys ?? ["az-test-key"]);
  const deployments = opts.deployments ?? { "gpt-4o": "gpt-4o", "prod-chat": "gpt-4o-mini", embed: "text-embedding-3-small" };
  const versions = new Set(opts.apiVersions ?? DEFAULT_VERSIONS);
  const chunkChars = opts.streamChunkChars ?? 4;
  const requests: AzureRecordedRequest[] = [];
  const lastStreamWrites: number[] = [];
  const life = new StandinLifecycle();
  const behavior = new BehaviorSlot<AzureBehavior>();

  function headers(): Record<string, string> {
    const id = crypto.randomUUID();
    return {
      "apim-request-id": id,
      "x-request-id": id,
      "x-ms-region": "East US",
      "x-ms-client-request-id": id,
      "x-ratelimit-remaining-requests": "99",
      "x-ratelimit-remaining-tokens": "99000",
      "azureml-model-session": "d000-20250101000000",
      "strict-transport-security": "max-age=31536000; includeSubDomains; preload",
    };
  }

  function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}, cut = false): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers(), ...extra, "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) });
    if (!cut) return void res.end(text);
    res.write(text.slice(0, text.length >> 1), () => res.socket?.destroy());
  }

  function defaultError(status: number, apiVersion: string): { body: AzureErrorBody; headers: Record<string, string> } {
    switch (status) {
      case 400:
        return { body: azureErrors.contextLength(), headers: {} };
      case 401:
        return { body: azureErrors.accessDenied(), headers: {} };
      case 404:
        return { body: azureErrors.deploymentNotFound(), headers: {} };
      case 429:
        return { body: azureErrors.rateLimited(apiVersion, 6), headers: { "retry-after": "6", "retry-after-ms": "6000" } };
      case 503:
        return { body: azureErrors.unavailable(), headers: {} };
      default:
        return { body: azureErrors.serverError(), headers: {} };
    }
  }

  async function stream(x: Exchange, events: Json[], fault: AzureBehavior | null): Promise<void> {
    const res = x.res;
    res.writeHead(200, { ...headers(), "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache" });
    res.flushHeaders();
    lastStreamWrites.length = 0;
    const lines = [...events.map((e) => `data: ${JSON.stringify(e)}\n\n`), "data: [DONE]\n\n"];
    const stopAt = fault && (fault.kind === "stream-cut" || fault.kind === "stream-error") ? Math.min(fault.afterChunks, events.length) : -1;
    for (let i = 0; i < lines.length; i++) {
      if (fault?.kind === "slow-stream" && i > 0 && !(await pause(x, fault.gapMs))) return;
      if (x.gone.signal.aborted) return;
      // Not marked cutByServer: Azure's stand-in has always counted its cuts in `aborted`.
      if (i === stopAt && fault?.kind === "stream-cut") return void res.socket?.destroy();
      if (i === stopAt && fault?.kind === "stream-error") {
        return void res.end(`data: ${JSON.stringify(azureErrors.serverError())}\n\n`);
      }
      await write(x, lines[i]!);
      lastStreamWrites.push(Date.now());
    }
    res.end();
  }

  async function chat(x: Exchange, model: string, body: unknown, fault: AzureBehavior | null): Promise<void> {
    const res = x.res;
    // Azure takes the model from the deployment; a `model` in the body is ignored.
    const parsed = parseChatRequest({ ...(isObject(body) ? body : {}), model }, new Set([model]));
    if (!parsed.ok) return sendJson(res, parsed.error.status, parsed.error.body);
    const prompt = parsed.value.messages.map(messageText).join("\n");
    if (prompt.includes("[filter-prompt]")) return sendJson(res, 400, azureErrors.contentFilter());
    const filterAnswer = prompt.includes("[filter-answer]");
    const plan = planChat(parsed.value);
    const promptFilter = [{ prompt_index: 0, content_filter_results: PROMPT_PASSED }];
    if (!parsed.value.stream) {
      if (fault?.kind === "slow-stream" && !(await pause(x, fault.gapMs))) return;
      const completion = renderCompletion(plan);
      delete completion["service_tier"];
      completion["prompt_filter_results"] = promptFilter;
      completion["choices"] = (completion["choices"] as Json[]).map((c) =>
        filterAnswer
          ? { ...c, message: { role: "assistant" }, finish_reason: "content_filter", content_filter_results: { ...PASSED_FILTERS, violence: { filtered: true, severity: "high" } } }
          : { ...c, content_filter_results: PASSED_FILTERS },
      );
      return sendJson(res, 200, completion, {}, fault?.kind === "stream-cut");
    }
    let chunks = renderChunks(plan, { includeUsage: parsed.value.includeUsage, obfuscation: false, chunkChars });
    chunks = chunks.map((c) => {
      const { service_tier: _, ...rest } = c;
      const choices = (rest["choices"] as Json[]).map((ch) => {
        const delta = ch["delta"] as Json;
        // Azure annotates content chunks; the role and finish chunks carry an empty result.
        const annotated = typeof delta["content"] === "string" && delta["content"] !== "" || delta["tool_calls"] !== undefined;
        return { ...ch, content_filter_results: annotated ? PASSED_FILTERS : {} };
      });
      return { ...rest, choices };
    });
    if (filterAnswer) {
      // Two content chunks pass, then the output filter stops the answer.
      const usage = parsed.value.includeUsage ? chunks.at(-1) : undefined;
      const head = chunks.slice(0, 3);
      const template = head[0]!;
      head.push({
        ...template,
        choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: "content_filter", content_filter_results: { ...PASSED_FILTERS, violence: { filtered: true, severity: "medium" } } }],
      });
      chunks = usage ? [...head, usage] : head;
    }
    const annotation = { choices: [], created: 0, id: "", model: "", object: "", prompt_filter_results: promptFilter };
    return stream(x, [annotation, ...chunks], fault);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const x = life.open(req, res);
    const raw = (await readBody(req))?.toString("utf8");
    if (raw === undefined) return;
    let body: unknown;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      body = raw;
    }
    const url = new URL(req.url ?? "/", "http://standin");
    const path = url.pathname;
    requests.push({ method: req.method ?? "GET", path, query: Object.fromEntries(url.searchParams), headers: req.headers, body, receivedAt: Date.now() });

    const key = req.headers["api-key"];
    if (typeof key !== "string" || !apiKeys.has(key)) return sendJson(res, 401, azureErrors.accessDenied());
    const apiVersion = url.searchParams.get("api-version");
    if (apiVersion === null) return sendJson(res, 404, azureErrors.resourceNotFound());
    if (!versions.has(apiVersion)) return sendJson(res, 400, azureErrors.apiVersionNotSupported());

    const fault = behavior.take(path);
    if (fault?.kind === "hang") return;
    if (fault?.kind === "delay" && !(await pause(x, fault.ms))) return;
    if (fault?.kind === "status") {
      const d = defaultError(fault.status, apiVersion);
      return sendJson(res, fault.status, fault.body ?? d.body, { ...d.headers, ...fault.headers });
    }
    if (fault?.kind === "stream-error" && !(isObject(body) && body["stream"] === true)) return sendJson(res, 500, azureErrors.serverError());

    if (req.method === "GET" && path === "/openai/models") {
      const data = [...new Set(Object.values(deployments))].map((id) => ({
        id,
        status: "succeeded",
        created_at: 1_715_558_400,
        capabilities: { chat_completion: !id.includes("embedding"), embeddings: id.includes("embedding"), completion: false, fine_tune: false, inference: true },
        lifecycle_status: "generally-available",
        object: "model",
      }));
      return sendJson(res, 200, { data, object: "list" });
    }
    const m = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(path);
    if (req.method !== "POST" || !m) return sendJson(res, 404, azureErrors.resourceNotFound());
    const model = deployments[decodeURIComponent(m[1]!)];
    if (model === undefined) return sendJson(res, 404, azureErrors.deploymentNotFound());
    if (m[2] === "chat/completions") return chat(x, model, body, fault);
    const parsed = parseEmbeddingsRequest({ ...(isObject(body) ? body : {}), model }, new Set([model]), 8);
    if (!parsed.ok) return sendJson(res, parsed.error.status, parsed.error.body);
    return sendJson(res, 200, renderEmbeddings(parsed.value), {}, fault?.kind === "stream-cut");
  }

  const port = await life.listen(handle);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    lastStreamWrites,
    get aborted() {
      return life.aborted;
    },
    setBehavior: (b) => behavior.set(b),
    close: () => life.close(),
  };
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
