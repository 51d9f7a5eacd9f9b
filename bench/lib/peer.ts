// The peer gateway for `bench/run.ts --peer`: Portkey's open-source gateway
// (@portkey-ai/gateway), installed on first use into bench/.peer/ (gitignored,
// never in package.json) and pointed at the same stand-in as Switchyard.

import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { BENCH_DIR } from "./rig.ts";

export const PEER_NAME = "portkey";
export const PEER_VERSION = "1.15.2";
/**
 * Portkey 1.15.2 adds its x-portkey-* headers to the upstream's Response with
 * headers.append(). @hono/node-server 1.14 and later (which its `^1.3.3`
 * range picks) hand a fetch() Response's headers over as they are, and those
 * are immutable: every stream and embedding then fails with `TypeError:
 * immutable` and a 500 (Portkey-AI/gateway#1389). 1.13.8 still copies them
 * into a plain object, so the peer runs unpatched.
 */
const HONO_NODE_SERVER = "1.13.8";

export const PEER_DIR = path.join(BENCH_DIR, ".peer");
const ENTRY = path.join(PEER_DIR, "node_modules", "@portkey-ai", "gateway", "build", "start-server.js");

/** The package.json written into bench/.peer/: the pinned versions, with the override above. */
function manifest(): string {
  return JSON.stringify(
    {
      private: true,
      description: "bench/run.ts --peer installs this; not part of Switchyard",
      dependencies: { "@portkey-ai/gateway": PEER_VERSION },
      overrides: { "@hono/node-server": HONO_NODE_SERVER },
    },
    null,
    2,
  ) + "\n";
}

function installedVersion(pkg: string): string | undefined {
  try {
    return (JSON.parse(readFileSync(path.join(PEER_DIR, "node_modules", pkg, "package.json"), "utf8")) as { version?: string }).version;
  } catch {
    return undefined;
  }
}

/**
 * Installs the peer into bench/.peer/ unless the pinned versions are already
 * there; returns its entry point. npm may block install scripts: Portkey's
 * only one is patch-package, with no patches in the published package.
 */
export function ensurePeer(): string {
  if (existsSync(ENTRY) && installedVersion("@portkey-ai/gateway") === PEER_VERSION && installedVersion("@hono/node-server") === HONO_NODE_SERVER) {
    return ENTRY;
  }
  mkdirSync(PEER_DIR, { recursive: true });
  writeFileSync(path.join(PEER_DIR, "package.json"), manifest());
  console.log(`installing @portkey-ai/gateway@${PEER_VERSION} into ${path.relative(process.cwd(), PEER_DIR) || PEER_DIR} ...`);
  const r = spawnSync("npm", ["install", "--prefix", PEER_DIR, "--no-audit", "--no-fund", "--loglevel", "error"], {
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.error) throw new Error(`npm install for the peer: ${r.error.message}`);
  if (r.status !== 0 || !existsSync(ENTRY)) throw new Error(`npm install for the peer failed (exit code ${r.status}); see above`);
  return ENTRY;
}

/**
 * The peer's command line: it takes only `--port=N` and listens on every
 * interface; `--headless` skips its web UI (and the banner's UI line).
 */
export function peerArgv(entry: string, port: number): string[] {
  return [process.execPath, entry, `--port=${port}`, "--headless"];
}

/**
 * The peer's environment. It refuses custom hosts on private networks but
 * trusts loopback by default (TRUSTED_CUSTOM_HOSTS, default
 * "localhost,127.0.0.1,::1,host.docker.internal"); set explicitly so that a
 * TRUSTED_CUSTOM_HOSTS in the caller's environment cannot lock the stand-in out.
 */
export function peerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, TRUSTED_CUSTOM_HOSTS: "127.0.0.1" };
}

/**
 * Request headers that route a plain OpenAI request through the peer to the
 * stand-in: provider openai with a custom base URL (Portkey appends
 * /chat/completions etc.). The Authorization header is forwarded upstream as
 * the provider key.
 */
export function peerHeaders(upstream: string): string[] {
  return ["x-portkey-provider: openai", `x-portkey-custom-host: ${upstream}`];
}

/** Scenarios the peer cannot serve against the stand-in, with the reason. */
export const PEER_SKIPS: Record<string, string> = {
  responses: "Portkey forwards /v1/responses to the provider's own Responses API (no translation to chat completions for openai), which the stand-in does not serve",
  "responses-stream": "Portkey forwards /v1/responses to the provider's own Responses API (no translation to chat completions for openai), which the stand-in does not serve",
  grpc: "Portkey serves no gRPC API",
  connect: "Portkey serves no Connect API",
};
