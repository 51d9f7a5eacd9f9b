/**
 * Bedrock Runtime JSON shapes (Converse, ConverseStream, InvokeModel for
 * Titan embeddings), from the Bedrock Runtime API reference. Only the members
 * the gateway writes or reads are typed; responses are checked as they are
 * read, never trusted.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export type ImageFormat = "png" | "jpeg" | "gif" | "webp";

export type ToolResultContent = { text: string } | { json: JsonValue };

/** ContentBlock: a union, exactly one member set. */
export type ContentBlock =
  | { text: string }
  | { image: { format: ImageFormat; source: { bytes: string } } }
  | { toolUse: { toolUseId: string; name: string; input: JsonValue } }
  | { toolResult: { toolUseId: string; content: ToolResultContent[]; status?: "success" | "error" } };

export interface BedrockMessage {
  role: "user" | "assistant";
  content: ContentBlock[];
}

export interface ToolSpec {
  toolSpec: { name: string; description?: string; inputSchema: { json: JsonValue } };
}

export type ToolChoice = { auto: Record<string, never> } | { any: Record<string, never> } | { tool: { name: string } };

export interface InferenceConfig {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stopSequences?: string[];
}

/** Body of POST /model/{modelId}/converse and /converse-stream. */
export interface ConverseRequest {
  messages: BedrockMessage[];
  system?: { text: string }[];
  inferenceConfig?: InferenceConfig;
  toolConfig?: { tools: ToolSpec[]; toolChoice?: ToolChoice };
  additionalModelRequestFields?: Record<string, JsonValue>;
  requestMetadata?: Record<string, string>;
  [topLevel: string]: unknown;
}

/** Converse's stopReason values. */
export type StopReason =
  | "end_turn"
  | "tool_use"
  | "max_tokens"
  | "stop_sequence"
  | "guardrail_intervened"
  | "content_filtered"
  | "model_context_window_exceeded";

/** TokenUsage: cache reads and writes are counted apart from inputTokens. */
export interface TokenUsage {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
  cacheReadInputTokens?: number;
  cacheWriteInputTokens?: number;
}

/** The ConverseStream events by their :event-type header. */
export const STREAM_EVENTS = ["messageStart", "contentBlockStart", "contentBlockDelta", "contentBlockStop", "messageStop", "metadata"] as const;
export type StreamEventType = (typeof STREAM_EVENTS)[number];

/** Titan Text Embeddings (v1, v2) InvokeModel body and answer. */
export interface TitanEmbedRequest {
  inputText: string;
  dimensions?: number;
  normalize?: boolean;
}
