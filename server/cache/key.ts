import { hash } from "node:crypto";
import { toJson, type JsonValue } from "@bufbuild/protobuf";
import { ChatRequestSchema, Role, type ChatRequest } from "../../gen/switchyard/v1/chat_pb.ts";
import { EmbedRequestSchema, type EmbedRequest } from "../../gen/switchyard/v1/embeddings_pb.ts";

/**
 * Cache keys. Both the lookup and the store call these functions, and the
 * tenant scope is always part of the hash: nothing can hit across tenants.
 *
 * The key covers the whole canonical request (every typed field and every
 * untyped extra, so a new API field changes the key without anyone listing
 * it) minus a short deny-list of fields that do not change the answer, plus
 * the endpoint and the target that serves it ("provider/model" as resolved,
 * so an alias pointed elsewhere never serves the old model's answers).
 * Canonical: proto JSON with object keys sorted at every level, so field
 * order in the caller's JSON never matters.
 */
const VERSION = "sy-cache-1";

/** Fields that never change the answer: who asks, labels, routing fallbacks; the model is replaced by the target. */
const DENY = ["user", "metadata", "fallbacks", "model"] as const;

/** The API a request came in as: answers are not shared between them. */
export type Endpoint = "chat" | "responses" | "embed";

export function exactKey(scope: string, endpoint: Endpoint, target: string, req: ChatRequest | EmbedRequest): string {
  return digest(scope, endpoint, target, canonicalRequest(endpoint, req));
}

/**
 * The semantic cache's partition: everything but the text that is embedded,
 * so a near match is only ever found among entries with the same tenant,
 * target, parameters, tools and (when only the last user message is
 * embedded) the same system prompt and history before it.
 */
export function partitionKey(scope: string, endpoint: Endpoint, target: string, req: ChatRequest, embedded: "last_user" | "conversation"): string {
  const json = requestJson("chat", req);
  const messages = json["messages"] as JsonValue[] | undefined;
  if (embedded === "conversation" || messages === undefined) {
    delete json["messages"];
  } else {
    let last = -1;
    for (let i = 0; i < req.messages.length; i++) if (req.messages[i]!.role === Role.USER) last = i;
    json["messages"] = messages.filter((_, i) => i !== last);
  }
  return digest(scope, `${endpoint}-semantic`, target, canonical(json));
}

/** What the semantic cache embeds: the last user message, or the whole conversation. */
export function promptText(req: ChatRequest, which: "last_user" | "conversation"): string {
  let out = "";
  for (let i = req.messages.length - 1; i >= 0; i--) {
    const m = req.messages[i]!;
    if (which === "last_user" && m.role !== Role.USER) continue;
    let text = "";
    for (const p of m.content) if (p.part.case === "text") text += p.part.value;
    if (which === "last_user") return text;
    out = `${ROLE_NAMES[m.role] ?? "other"}: ${text}\n${out}`;
  }
  return out;
}

const ROLE_NAMES: Record<number, string> = { [Role.SYSTEM]: "system", [Role.DEVELOPER]: "developer", [Role.USER]: "user", [Role.ASSISTANT]: "assistant", [Role.TOOL]: "tool" };

function requestJson(endpoint: Endpoint, req: ChatRequest | EmbedRequest): Record<string, JsonValue> {
  const json = (endpoint === "embed" ? toJson(EmbedRequestSchema, req as EmbedRequest) : toJson(ChatRequestSchema, req as ChatRequest)) as Record<string, JsonValue>;
  for (const f of DENY) delete json[f];
  return json;
}

function canonicalRequest(endpoint: Endpoint, req: ChatRequest | EmbedRequest): string {
  return canonical(requestJson(endpoint, req));
}

function digest(scope: string, endpoint: string, target: string, body: string): string {
  return hash("sha256", `${VERSION}\n${endpoint}\n${scope}\n${target}\n${body}`, "hex");
}

/** JSON with object keys sorted at every level (arrays keep their order: it is meaningful). */
export function canonical(v: JsonValue): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  const keys = Object.keys(v).sort();
  let s = "{";
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const val = v[k];
    if (val === undefined) continue;
    if (s.length > 1) s += ",";
    s += `${JSON.stringify(k)}:${canonical(val)}`;
  }
  return `${s}}`;
}
