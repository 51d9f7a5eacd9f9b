/**
 * Independent SigV4 verification for the Bedrock stand-in, written from the
 * AWS Signature Version 4 specification with node:crypto (not the signer the
 * gateway uses): canonical request, string to sign, signing key, signature.
 * The payload hash is computed from the body actually received, so a body
 * changed after signing fails. Answers use Bedrock's 403 error types.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";

export interface StandinCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface SignedRequestView {
  method: string;
  /** The raw request target, path and query, as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Verdict =
  | { ok: true; accessKeyId: string }
  | { ok: false; type: "MissingAuthenticationTokenException" | "UnrecognizedClientException" | "InvalidSignatureException" | "IncompleteSignatureException"; message: string };

const SIGNATURE_MISMATCH =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/** Five minutes, as AWS allows. */
const MAX_SKEW_MS = 5 * 60 * 1000;

export function verifySigV4(req: SignedRequestView, creds: readonly StandinCredentials[], region: string, service: string, now = Date.now()): Verdict {
  const auth = headerValue(req.headers, "authorization");
  if (auth === undefined) return { ok: false, type: "MissingAuthenticationTokenException", message: "Missing Authentication Token" };
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (m === null) return { ok: false, type: "IncompleteSignatureException", message: `Authorization header requires 'Credential', 'Signature', 'SignedHeaders' parameters. Authorization=${auth.split(" ")[0]}` };
  const [, accessKeyId, scopeDate, scopeRegion, scopeService, signedHeaderList, signature] = m as unknown as string[];
  const cred = creds.find((c) => c.accessKeyId === accessKeyId);
  if (cred === undefined) return { ok: false, type: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  if (cred.sessionToken !== undefined && headerValue(req.headers, "x-amz-security-token") !== cred.sessionToken) {
    return { ok: false, type: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  }
  if (scopeRegion !== region) return { ok: false, type: "InvalidSignatureException", message: `Credential should be scoped to a valid region. ` };
  if (scopeService !== service) return { ok: false, type: "InvalidSignatureException", message: `Credential should be scoped to correct service: '${service}'. ` };
  const amzDate = headerValue(req.headers, "x-amz-date") ?? "";
  const when = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (when === null) return { ok: false, type: "IncompleteSignatureException", message: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header." };
  const signedAt = Date.UTC(+when[1]!, +when[2]! - 1, +when[3]!, +when[4]!, +when[5]!, +when[6]!);
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) return { ok: false, type: "InvalidSignatureException", message: `Signature expired: ${amzDate} is now earlier than the allowed window.` };
  if (!amzDate.startsWith(scopeDate!)) return { ok: false, type: "InvalidSignatureException", message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP." };

  const signedHeaders = signedHeaderList!.split(";");
  if (!signedHeaders.includes("host")) return { ok: false, type: "InvalidSignatureException", message: "'Host' must be a 'SignedHeader' in the AWS Authorization." };
  if (cred.sessionToken !== undefined && !signedHeaders.includes("x-amz-security-token")) return { ok: false, type: "InvalidSignatureException", message: SIGNATURE_MISMATCH };
  for (const h of signedHeaders) if (headerValue(req.headers, h) === undefined) return { ok: false, type: "InvalidSignatureException", message: SIGNATURE_MISMATCH };

  const [rawPath = "/", rawQuery = ""] = req.url.split(/\?(.*)/s, 2);
  const canonicalRequest = [
    req.method,
    rawPath.split("/").map(uriEncode).join("/"),
    canonicalQuery(rawQuery),
    signedHeaders.map((h) => `${h}:${(headerValue(req.headers, h) ?? "").trim().replace(/\s+/g, " ")}\n`).join(""),
    signedHeaderList,
    sha256Hex(req.body),
  ].join("\n");
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
  let key: Buffer = hmac(`AWS4${cred.secretAccessKey}`, scopeDate!);
  for (const part of [scopeRegion!, scopeService!, "aws4_request"]) key = hmac(key, part);
  const expected = createHmac("sha256", key).update(stringToSign).digest();
  const given = Buffer.from(signature!, "hex");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, type: "InvalidSignatureException", message: SIGNATURE_MISMATCH };
  return { ok: true, accessKeyId: accessKeyId! };
}

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(",") : v;
}

function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}

/** RFC 3986 unreserved characters stay; everything else is %XX (so an already-escaped "%3A" becomes "%253A"). */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function canonicalQuery(raw: string): string {
  if (raw === "") return "";
  return raw
    .split("&")
    .map((kv) => {
      const [k = "", v = ""] = kv.split(/=(.*)/s, 2);
      return [uriEncode(decodeURIComponent(k)), uriEncode(decodeURIComponent(v))] as const;
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}
