import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOpenAIStandin, type OpenAIStandin } from "./standins/openai.ts";
import { startTestGateway, type TestGateway } from "./support/gateway.ts";

// TLS on the one port: HTTP/1.1 and HTTP/2 chosen by ALPN (the REST bridge
// with the official SDK, gRPC with grpcurl through reflection), and mutual
// TLS refusing clients without a certificate the configured CA signed.

const dir = mkdtempSync(join(tmpdir(), "sy-tls-"));
const file = (name: string): string => join(dir, name);
const ssl = (...args: string[]): void => void execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });

let standin: OpenAIStandin;
let gw: TestGateway;
let mtls: TestGateway;

beforeAll(async () => {
  // A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA.
  ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=switchyard test CA", "-keyout", "ca.key", "-out", "ca.pem");
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr");
  ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", writeExt("ext.cnf", "subjectAltName=IP:127.0.0.1,DNS:localhost"));
  ssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=client", "-keyout", "client.key", "-out", "client.csr");
  ssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "client.pem");
  standin = await startOpenAIStandin();
  const providers = [{ id: "openai", type: "openai" as const, baseUrl: standin.url, keys: ["sk-test"] }];
  gw = await startTestGateway({ providers, server: { tls: { certFile: file("server.pem"), keyFile: file("server.key") } } });
  mtls = await startTestGateway({ providers, server: { tls: { certFile: file("server.pem"), keyFile: file("server.key"), clientCaFile: file("ca.pem") } } });
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await mtls?.close();
  await standin?.close();
});

function writeExt(name: string, text: string): string {
  execFileSync("sh", ["-c", `printf '%s\\n' "$1" > "$2"`, "sh", text, file(name)]);
  return file(name);
}

const ca = (): Buffer => readFileSync(file("ca.pem"));

describe("TLS", () => {
  it("serves HTTPS: the gateway's URL is https, and the openai SDK completes a chat over it", async () => {
    expect(gw.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const dispatcher = new Agent({ connect: { ca: ca() } });
    const ready = await undiciFetch(`${gw.url}/readyz`, { dispatcher });
    expect(ready.status).toBe(200);
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused", maxRetries: 0, fetchOptions: { dispatcher } as never, fetch: undiciFetch as never });
    const reply = await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "over TLS" }] });
    expect(reply.choices[0]?.message.content).toBeTruthy();
    await dispatcher.close();
  });

  it("offers HTTP/2 and HTTP/1.1 by ALPN, and answers both", async () => {
    for (const protocol of ["h2", "http/1.1"]) {
      const socket = tlsConnect({ host: "127.0.0.1", port: gw.port, ca: ca(), ALPNProtocols: [protocol] });
      await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
      expect(socket.alpnProtocol).toBe(protocol);
      socket.destroy();
    }
    const session = http2.connect(gw.url, { ca: ca() });
    const status = await new Promise<number>((resolve, reject) => {
      const req = session.request({ ":path": "/healthz" });
      req.once("response", (h) => resolve(Number(h[":status"])));
      req.once("error", reject);
      req.end();
    });
    expect(status).toBe(200);
    session.close();
  });

  it("serves gRPC over TLS: grpcurl lists the services through reflection and calls one", async () => {
    const grpcurl = findGrpcurl();
    const list = await run(grpcurl, ["-cacert", file("ca.pem"), `127.0.0.1:${gw.port}`, "list"]);
    expect(list.split("\n")).toContain("switchyard.v1.ChatService");
    const health = await run(grpcurl, ["-cacert", file("ca.pem"), `127.0.0.1:${gw.port}`, "grpc.health.v1.Health/Check"]);
    expect(JSON.parse(health)).toEqual({ status: "SERVING" });
  });

  it("refuses cleartext on a TLS port without hanging, and keeps serving", async () => {
    const res = await fetch(gw.url.replace("https:", "http:") + "/healthz", { signal: AbortSignal.timeout(5_000) }).then(
      (r) => r.status,
      (err: Error) => String((err.cause as Error | undefined)?.message ?? err.message),
    );
    expect(res).not.toBe(200);
    const dispatcher = new Agent({ connect: { ca: ca() } });
    expect((await undiciFetch(`${gw.url}/healthz`, { dispatcher })).status).toBe(200);
    await dispatcher.close();
  });

  it("with a client CA, refuses clients without a certificate and serves those with one", async () => {
    const bare = new Agent({ connect: { ca: ca() } });
    await expect(undiciFetch(`${mtls.url}/healthz`, { dispatcher: bare })).rejects.toThrow();
    await bare.close();
    // A certificate the CA did not sign (self-signed) is refused too.
    ssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=stranger", "-keyout", "stranger.key", "-out", "stranger.pem");
    const stranger = new Agent({ connect: { ca: ca(), cert: readFileSync(file("stranger.pem")), key: readFileSync(file("stranger.key")) } });
    await expect(undiciFetch(`${mtls.url}/healthz`, { dispatcher: stranger })).rejects.toThrow();
    await stranger.close();
    const client = new Agent({ connect: { ca: ca(), cert: readFileSync(file("client.pem")), key: readFileSync(file("client.key")) } });
    expect((await undiciFetch(`${mtls.url}/healthz`, { dispatcher: client })).status).toBe(200);
    await client.close();
  });

  it("stops the start with the file's name when a certificate cannot be read", async () => {
    await expect(startTestGateway({ server: { tls: { certFile: file("missing.pem"), keyFile: file("server.key") } } })).rejects.toThrow(
      /server\.tls\.certFile: cannot read .*missing\.pem: ENOENT/,
    );
  });
});

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
  );
}

function findGrpcurl(): string {
  for (const d of [...(process.env.PATH ?? "").split(delimiter), join(process.env.HOME ?? homedir(), "go", "bin")]) {
    if (d && existsSync(join(d, "grpcurl"))) return join(d, "grpcurl");
  }
  throw new Error("grpcurl not found; .ci/run installs it with `go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest`");
}
