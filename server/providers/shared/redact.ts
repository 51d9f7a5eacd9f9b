/**
 * Provider error messages sometimes echo part of the credential ("Incorrect
 * API key provided: sk-abc***xyz"). Messages are passed to callers, so
 * anything shaped like a key or token is masked first.
 */
const SECRET_SHAPES = [
  /\b(sk|pk|rk)-[A-Za-z0-9_*.-]{6,}/g, // OpenAI, Anthropic (sk-ant-...), and the gateway's own sk-sy-
  /\bAIza[0-9A-Za-z_*-]{10,}/g, // Google API keys
  /\b(AKIA|ASIA)[0-9A-Z*]{8,}/g, // AWS access key ids
  /\b[A-Za-z0-9_*+/=-]{32,}\b/g, // any other long opaque token
];

export function redactSecrets(message: string): string {
  let out = message;
  for (const re of SECRET_SHAPES) out = out.replace(re, "[redacted]");
  return out;
}
