/**
 * Redaction for anything that leaves the request path as text: provider
 * error messages shown to callers, and prompts/answers in the request log.
 */

/** Shapes of credentials: provider keys, the gateway's own keys, long opaque tokens. */
const SECRET_SHAPES = [
  /\b(sk|pk|rk)-[A-Za-z0-9_*.-]{6,}/g, // OpenAI, Anthropic (sk-ant-...), and the gateway's own sk-sy-
  /\bAIza[0-9A-Za-z_*-]{10,}/g, // Google API keys
  /\b(AKIA|ASIA)[0-9A-Z*]{8,}/g, // AWS access key ids
  /\b[A-Za-z0-9_*+/=-]{32,}\b/g, // any other long opaque token
];

/** Masks anything shaped like a key or token. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const re of SECRET_SHAPES) out = out.replace(re, "[redacted]");
  return out;
}

/** Named patterns for the request log's `redact` setting; anything else is read as a regular expression. */
const NAMED: Record<string, RegExp[]> = {
  secrets: SECRET_SHAPES,
  email: [/[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g],
  credit_card: [/\b(?:\d[ -]?){13,19}\b/g],
  phone: [/\+?\d[\d ()-]{7,}\d/g],
};

/**
 * A redactor from a list of pattern names and regular expressions. Patterns
 * are compiled once, at start-up; an invalid one is a configuration error.
 */
export function createRedactor(patterns: readonly string[]): (text: string) => string {
  const compiled: RegExp[] = [];
  for (const p of patterns) {
    const named = NAMED[p];
    if (named) compiled.push(...named);
    else compiled.push(new RegExp(p, "g"));
  }
  if (compiled.length === 0) return (t) => t;
  return (text) => {
    let out = text;
    for (const re of compiled) out = out.replace(re, "[redacted]");
    return out;
  };
}
