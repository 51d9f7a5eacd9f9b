import type { ServerResponse } from "node:http";
import type { NodeRequest, NodeResponse } from "../transport/node-http.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import { toOpenAIError } from "../errors/to-openai.ts";
import { MAX_JSON_DEPTH, nestedDeeperThan } from "../wire/openai/json.ts";

/**
 * HTTP plumbing shared by the REST routes. Requests arrive over HTTP/1.1 or
 * h2c (the same port), so everything here works on both Node APIs.
 */
export type Req = NodeRequest;
export type Res = NodeResponse;

/**
 * Reads a JSON body, refusing it early by content-length or as soon as it
 * grows past the limit (413), so an oversized upload costs little.
 */
export function readJsonBody(req: Req, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"]);
  if (declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      const text = chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks, size).toString("utf8");
      if (text.length === 0) return reject(invalid("the request body is empty; send a JSON object"));
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        return reject(invalid(`the request body is not valid JSON: ${(err as Error).message}`));
      }
      // JSON.parse takes any depth; what comes next (stringify, protobuf Structs) recurses and would run out of stack.
      // Text shorter than twice the limit cannot nest that deep (a level takes two brackets): no walk.
      if (text.length >= 2 * MAX_JSON_DEPTH && nestedDeeperThan(value, MAX_JSON_DEPTH)) return reject(invalid(`the request body is nested more than ${MAX_JSON_DEPTH} levels deep`));
      resolve(value);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new GatewayError("canceled", "the request body could not be read", { cause: err }));
    };
    const cleanup = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError("payload_too_large", `the request body is larger than the limit of ${limit} bytes`);
}

/** Sends a JSON response in one write. */
export function sendJson(res: Res, status: number, body: unknown, headers?: Record<string, string>): void {
  const payload = JSON.stringify(body);
  const h: Record<string, string | number> = {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(payload),
    ...headers,
  };
  res.writeHead(status, h);
  res.end(payload);
}

/**
 * Retry-After when waiting helps; and for the caller's own limits where it
 * does not (a lifetime budget spent, a request larger than a tokens-per-minute
 * limit), `x-should-retry: false`, which the official OpenAI and Anthropic SDKs
 * obey instead of retrying a 429 that cannot succeed.
 */
export function retryHeaders(err: GatewayError): Record<string, string> {
  if (err.retryAfter !== undefined) return { "retry-after": err.retryAfter };
  if (err.callerLimit && (err.code === "budget_exceeded" || err.code === "rate_limited")) return { "x-should-retry": "false" };
  return {};
}

/** Sends a GatewayError as OpenAI's error JSON, unless the response has already started. */
export function sendError(res: Res, err: GatewayError, headers?: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return;
  const { status, body } = toOpenAIError(err);
  const h: Record<string, string> = { ...headers };
  Object.assign(h, retryHeaders(err));
  // An oversized body may still be arriving: ask HTTP/1.1 clients to reconnect
  // rather than making the server read the rest of it.
  if (err.code === "payload_too_large" && (res as ServerResponse).req?.httpVersionMajor === 1) h["connection"] = "close";
  sendJson(res, status, body, h);
}
