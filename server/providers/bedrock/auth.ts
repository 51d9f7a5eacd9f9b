import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { keyRing } from "../shared/upstream.ts";
import type { CallOptions } from "../types.ts";

/** One AWS credential set from the configuration. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string | undefined;
}

/** What is signed: the exact bytes that will be sent. */
export interface UnsignedRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: Uint8Array;
}

/**
 * Signs a request with the credential set the call names (`call.keyIndex`),
 * or the next in rotation; returns every header to send (host, x-amz-date,
 * authorization, ...).
 */
export type Signer = (req: UnsignedRequest, call?: CallOptions) => Promise<Record<string, string>>;

/**
 * SigV4 signing for one service name ("bedrock"), rotating over the
 * configured credential sets request by request unless the call names one. The signature covers the
 * host, the path (URI-escaped once more, as for every AWS service but S3),
 * the query, every header given and the SHA-256 of the body; session
 * credentials add x-amz-security-token.
 */
export function createSigner(service: string, region: string, credentials: readonly AwsCredentials[]): Signer {
  const signers = credentials.map((c) => new SignatureV4({
    service,
    region,
    credentials: {
      accessKeyId: c.accessKeyId,
      secretAccessKey: c.secretAccessKey,
      ...(c.sessionToken === undefined ? {} : { sessionToken: c.sessionToken }),
    },
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: true,
    applyChecksum: true,
  }));
  const next = keyRing(signers);

  return async (req, call) => {
    const signer = next(call);
    if (signer === undefined) throw new Error("bedrock: no AWS credentials configured");
    const url = new URL(req.url);
    const query: Record<string, string> = {};
    for (const [k, v] of url.searchParams) query[k] = v;
    const signed = await signer.sign({
      method: req.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port === "" ? {} : { port: Number(url.port) }),
      path: url.pathname,
      query,
      headers: { ...req.headers, host: url.host },
      body: req.body,
    });
    return signed.headers as Record<string, string>;
  };
}
