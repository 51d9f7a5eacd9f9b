import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ChatChunkSchema,
  ChatCompletionSchema,
  DeltaSchema,
  FinishReason,
  Role,
  type ChatChunk,
  type ChatCompletion,
  type Message,
} from "../../gen/switchyard/v1/chat_pb.ts";
import type { Usage } from "../../gen/switchyard/v1/common_pb.ts";

/** Text per replayed content chunk: enough chunks to look like a stream, few enough to be cheap. */
const CHUNK_CHARS = 256;

/**
 * A stored answer replayed as a stream, in OpenAI's order: a role chunk,
 * reasoning and content chunks, one chunk per tool call, the finish chunk,
 * then (when asked) a usage chunk with no choices. Every entry point encodes
 * these like live chunks, so a hit looks exactly like a fresh stream.
 */
export function completionToChunks(c: ChatCompletion, includeUsage: boolean): ChatChunk[] {
  const chunks: ChatChunk[] = [];
  const chunk = (index: number, delta: MessageInitShape<typeof DeltaSchema>, finish: FinishReason = FinishReason.UNSPECIFIED): ChatChunk =>
    create(ChatChunkSchema, {
      id: c.id,
      created: c.created,
      model: c.model,
      systemFingerprint: c.systemFingerprint,
      choices: [{ index, delta, finishReason: finish }],
    });
  for (const choice of c.choices) {
    const m = choice.message;
    const i = choice.index;
    chunks.push(chunk(i, { role: Role.ASSISTANT, content: "" }));
    if (m !== undefined) {
      for (const piece of pieces(m.reasoningContent)) chunks.push(chunk(i, { reasoningContent: piece }));
      for (const piece of pieces(text(m))) chunks.push(chunk(i, { content: piece }));
      if (m.refusal !== undefined) chunks.push(chunk(i, { refusal: m.refusal }));
      m.toolCalls.forEach((t, n) => chunks.push(chunk(i, { toolCalls: [{ index: n, id: t.id, name: t.function?.name ?? "", arguments: t.function?.arguments ?? "" }] })));
    }
    chunks.push(chunk(i, {}, choice.finishReason));
  }
  if (includeUsage && c.usage !== undefined) {
    chunks.push(create(ChatChunkSchema, { id: c.id, created: c.created, model: c.model, systemFingerprint: c.systemFingerprint, choices: [], usage: c.usage }));
  }
  return chunks;
}

function* pieces(s: string): Generator<string> {
  for (let i = 0; i < s.length; i += CHUNK_CHARS) yield s.slice(i, i + CHUNK_CHARS);
}

function text(m: Message): string {
  let s = "";
  for (const p of m.content) if (p.part.case === "text") s += p.part.value;
  return s;
}

interface ChoiceAcc {
  content: string;
  reasoning: string;
  refusal: string | undefined;
  tools: { id: string; name: string; arguments: string }[];
  finish: FinishReason;
}

/**
 * Rebuilds the whole answer from a stream's chunks, so a streamed answer can
 * be stored and later served to streaming and non-streaming callers alike.
 * Only a stream that finished cleanly is ever stored (the caller checks).
 * Reasoning signatures make an answer unfit to store: replaying thinking
 * without them would break the caller's next turn.
 */
export class StreamAssembler {
  #id = "";
  #created = 0n;
  #model = "";
  #fingerprint = "";
  #usage: Usage | undefined;
  #choices: ChoiceAcc[] = [];
  #unfit = false;

  push(chunk: ChatChunk): void {
    if (this.#id === "") {
      this.#id = chunk.id;
      this.#created = chunk.created;
      this.#model = chunk.model;
      this.#fingerprint = chunk.systemFingerprint;
    }
    if (chunk.usage !== undefined) this.#usage = chunk.usage;
    for (const c of chunk.choices) {
      const acc = (this.#choices[c.index] ??= { content: "", reasoning: "", refusal: undefined, tools: [], finish: FinishReason.UNSPECIFIED });
      const d = c.delta;
      if (d !== undefined) {
        if (d.content) acc.content += d.content;
        if (d.reasoningContent) acc.reasoning += d.reasoningContent;
        if (d.reasoningSignature) this.#unfit = true;
        if (d.refusal !== undefined) acc.refusal = (acc.refusal ?? "") + d.refusal;
        for (const t of d.toolCalls) {
          const call = (acc.tools[t.index] ??= { id: "", name: "", arguments: "" });
          if (t.id) call.id = t.id;
          if (t.name) call.name = t.name;
          if (t.arguments) call.arguments += t.arguments;
        }
      }
      if (c.finishReason !== FinishReason.UNSPECIFIED) acc.finish = c.finishReason;
    }
  }

  /** The assembled answer, or undefined when it cannot be stored (a choice never finished, signatures). */
  result(): ChatCompletion | undefined {
    if (this.#unfit || this.#choices.length === 0) return undefined;
    const choices = [];
    for (let index = 0; index < this.#choices.length; index++) {
      const acc = this.#choices[index];
      if (acc === undefined || acc.finish === FinishReason.UNSPECIFIED) return undefined;
      choices.push({
        index,
        finishReason: acc.finish,
        message: {
          role: Role.ASSISTANT,
          content: acc.content === "" ? [] : [{ part: { case: "text" as const, value: acc.content } }],
          contentIsText: true,
          reasoningContent: acc.reasoning,
          ...(acc.refusal === undefined ? {} : { refusal: acc.refusal }),
          toolCalls: acc.tools.filter((t) => t !== undefined).map((t) => ({ id: t.id, function: { name: t.name, arguments: t.arguments } })),
        },
      });
    }
    return create(ChatCompletionSchema, {
      id: this.#id,
      created: this.#created,
      model: this.#model,
      systemFingerprint: this.#fingerprint,
      choices,
      ...(this.#usage === undefined ? {} : { usage: this.#usage }),
    });
  }
}
