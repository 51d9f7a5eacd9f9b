/**
 * Provider error messages sometimes echo part of the credential ("Incorrect
 * API key provided: sk-abc***xyz"); they are masked before callers see them.
 */
export { redactSecrets } from "../../telemetry/redact.ts";
