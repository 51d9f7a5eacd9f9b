import { Role, type ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import type { EmbedRequest } from "../../gen/switchyard/v1/embeddings_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";

const ROLE_VALUES: Record<number, true> = {
  [Role.SYSTEM]: true,
  [Role.DEVELOPER]: true,
  [Role.USER]: true,
  [Role.ASSISTANT]: true,
  [Role.TOOL]: true,
};

/**
 * Invariants of the canonical request that the schema cannot express. The
 * REST bridge already enforces them while decoding; RPC callers build the
 * message themselves, so the pipeline checks again (cheap: one pass).
 */
/** Longest model name accepted (real ones are far shorter; names become metric labels and log columns). */
const MAX_MODEL_LENGTH = 256;
/** Most per-request fallbacks: each can cost a full upstream exchange. */
const MAX_FALLBACKS = 5;

function validateRouting(model: string, fallbacks: readonly string[]): void {
  if (model === "") throw invalid("model: required", "model");
  if (model.length > MAX_MODEL_LENGTH) throw invalid(`model: longer than ${MAX_MODEL_LENGTH} characters`, "model");
  if (fallbacks.length > MAX_FALLBACKS) throw invalid(`fallbacks: at most ${MAX_FALLBACKS}`, "fallbacks");
  for (let i = 0; i < fallbacks.length; i++) {
    const f = fallbacks[i]!;
    if (f === "" || f.length > MAX_MODEL_LENGTH) throw invalid(`fallbacks[${i}]: not a model name`, `fallbacks[${i}]`);
  }
}

export function validateChatRequest(req: ChatRequest): void {
  validateRouting(req.model, req.fallbacks);
  if (req.messages.length === 0) throw invalid("messages: must contain at least one message", "messages");
  for (let i = 0; i < req.messages.length; i++) {
    const m = req.messages[i]!;
    const p = `messages[${i}]`;
    if (ROLE_VALUES[m.role] !== true) {
      throw invalid(`${p}.role: must be set to system, developer, user, assistant or tool`, `${p}.role`);
    }
    if (m.content.length === 0 && m.role !== Role.ASSISTANT) throw invalid(`${p}.content: required for this role`, `${p}.content`);
    for (let j = 0; j < m.content.length; j++) {
      const part = m.content[j]!.part;
      if (part.case === undefined) throw invalid(`${p}.content[${j}]: empty content part`, `${p}.content[${j}]`);
      if (part.case === "imageUrl" && m.role !== Role.USER) {
        throw new GatewayError("unsupported", `${p}.content[${j}]: image parts are only allowed in user messages`, { param: `${p}.content[${j}]` });
      }
    }
    if (m.role === Role.TOOL && m.toolCallId === "") throw invalid(`${p}.tool_call_id: required for role tool`, `${p}.tool_call_id`);
    if (m.toolCalls.length > 0 && m.role !== Role.ASSISTANT) throw invalid(`${p}.tool_calls: only assistant messages carry tool calls`, `${p}.tool_calls`);
  }
  for (let i = 0; i < req.tools.length; i++) {
    if (!req.tools[i]!.function?.name) throw invalid(`tools[${i}].function.name: required`, `tools[${i}].function.name`);
  }
  if (req.n === 0) throw invalid("n: must be at least 1", "n");
}

export function validateEmbedRequest(req: EmbedRequest): void {
  validateRouting(req.model, req.fallbacks);
  if (req.input.length === 0 && req.tokenInputs.length === 0) throw invalid("input: required", "input");
  if (req.input.length > 0 && req.tokenInputs.length > 0) throw invalid("input: set either texts or token inputs, not both", "input");
}
