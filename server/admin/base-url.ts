import { BlockList, isIP } from "node:net";
import { invalid } from "../errors/errors.ts";

/**
 * Addresses a provider's base URL may not name. An admin-made provider
 * receives requests with the gateway's credentials for it, so its URL must
 * not reach the host's own cloud metadata service (instance credentials,
 * LiteLLM CVE-2024-6587 and Portkey CVE-2025-66405 show the pattern):
 * link-local ranges (169.254.0.0/16, fe80::/10, where AWS, Azure, GCP and
 * Oracle serve metadata), AWS's IPv6 metadata address, Alibaba's
 * 100.100.100.200, and the metadata host names.
 *
 * Loopback and private ranges stay allowed on purpose: a model server on
 * 127.0.0.1 (Ollama, vLLM) or on the LAN is the normal case for a
 * self-hosted gateway, and only global owners and admins may set a URL.
 * Only literal addresses and known names are checked here; a public name
 * that resolves to a link-local address is not (that needs a check at
 * connect time in the outbound client).
 */
const blocked = new BlockList();
blocked.addSubnet("169.254.0.0", 16, "ipv4");
blocked.addSubnet("fe80::", 10, "ipv6");
blocked.addAddress("fd00:ec2::254", "ipv6");
blocked.addAddress("100.100.100.200", "ipv4");

const METADATA_HOSTS = new Set(["metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"]);

/** Throws invalid_request (param base_url) unless the URL is one an admin may point a provider at. */
export function checkBaseUrl(raw: string): void {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid("base_url: not a URL", "base_url");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw invalid("base_url: must be http or https", "base_url");
  // Keys go in headers, never in URLs (they would reach logs and traces).
  if (url.username !== "" || url.password !== "") throw invalid("base_url: must not contain credentials; use api_keys", "base_url");
  // WHATWG URL parsing already turned "2852039166" or "0xa9.254.169.254" into dotted form.
  const host = url.hostname.replace(/^\[|\]$/g, "").replace(/\.$/, "").toLowerCase();
  const family = isIP(host);
  if (METADATA_HOSTS.has(host) || (family !== 0 && blocked.check(host, family === 6 ? "ipv6" : "ipv4"))) {
    throw invalid(`base_url: ${host} is a link-local or cloud metadata address`, "base_url");
  }
}
