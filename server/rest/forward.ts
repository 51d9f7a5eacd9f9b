import { GatewayError, invalid } from "../errors/errors.ts";
import { toOpenAIError } from "../errors/to-openai.ts";
import type { ForwardPath } from "../providers/types.ts";
import { isRecord } from "../wire/openai/json.ts";
import { gatewayHeaders } from "./chat.ts";
import { restEntry, type RestDeps } from "./context.ts";
import { readJsonBody, sendJson, type Req, type Res } from "./http.ts";
import { startSse, writeFrame } from "./sse.ts";

/**
 * A transcription upload (multipart/form-data with the audio file), read up
 * to the body limit and parsed; the scalar fields routing needs are returned
 * apart. The form goes to the provider re-encoded, with its model name.
 */
async function readUpload(req: Req, limit: number): Promise<{ body: Record<string, unknown>; form: FormData }> {
  const type = String(req.headers["content-type"] ?? "");
  if (!type.toLowerCase().startsWith("multipart/form-data")) throw invalid("audio/transcriptions takes multipart/form-data with a file and a model");
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) throw new GatewayError("payload_too_large", `the request body is larger than the limit of ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new GatewayError("payload_too_large", `the request body is larger than the limit of ${limit} bytes`);
    chunks.push(chunk);
  }
  let form: FormData;
  try {
    form = await new Response(Buffer.concat(chunks, size), { headers: { "content-type": type } }).formData();
  } catch {
    throw invalid("the multipart body could not be read");
  }
  if (!(form.get("file") instanceof Blob)) throw invalid("file: required (the audio to transcribe)", "file");
  const body: Record<string, unknown> = {};
  for (const f of ["model", "user"]) {
    const v = form.get(f);
    if (typeof v === "string") body[f] = v;
  }
  if (form.get("stream") === "true") body["stream"] = true;
  return { body, form };
}

/** Moderations name a model optionally; OpenAI's default. */
const DEFAULT_MODERATION_MODEL = "omni-moderation-latest";

/**
 * POST /v1/completions (legacy text completions, streaming too),
 * /v1/moderations, /v1/images/generations, /v1/audio/speech (audio bytes
 * passed on as they come) and /v1/audio/transcriptions (a multipart
 * upload within the body limit): OpenAI's bodies, forwarded to
 * the OpenAI-format providers that serve the model through the pipeline
 * (keys, budgets, routing, fallbacks, the request log), answered as the
 * provider answered. Other providers get a 400 naming them.
 */
export async function handleForward(req: Req, res: Res, deps: RestDeps, startedAt: number, path: ForwardPath): Promise<void> {
  const entry = await restEntry(req, res, deps, startedAt);
  let body: unknown;
  let form: FormData | undefined;
  if (path === "audio/transcriptions") {
    ({ body, form } = await readUpload(req, deps.maxBodyBytes));
  } else {
    body = await readJsonBody(req, deps.maxBodyBytes);
  }
  if (!isRecord(body)) throw invalid("the request body must be a JSON object");
  if (path === "moderations" && body["model"] === undefined) body["model"] = DEFAULT_MODERATION_MODEL;
  if (body["model"] !== undefined && typeof body["model"] !== "string") throw invalid("model: must be a string", "model");
  const out = await deps.pipeline.forward(path, body, entry, form);
  if (out.kind === "json") {
    sendJson(res, 200, out.json, gatewayHeaders(out.gateway));
    return;
  }
  let started = false;
  try {
    for await (const chunk of out.body) {
      if (!started) {
        startSse(res, { ...gatewayHeaders(out.gateway), "content-type": out.contentType });
        started = true;
      }
      const wait = writeFrame(res, chunk);
      if (wait) await wait;
      if (entry.signal.aborted) break;
    }
    if (!started) startSse(res, gatewayHeaders(out.gateway));
    res.end();
  } catch (err) {
    const e = GatewayError.from(err);
    if (!started) throw e; // nothing sent yet: an ordinary HTTP error
    // An event stream ends with an error event; raw bytes (speech audio) can only be cut, so the
    // caller sees a truncated body rather than a clean end.
    if (!out.contentType.startsWith("text/event-stream")) return void res.destroy();
    if (!entry.signal.aborted) res.write(`data: ${JSON.stringify(toOpenAIError(e).body)}\n\n`);
    res.end();
  }
}
