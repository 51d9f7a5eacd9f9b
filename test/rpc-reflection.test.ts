// gRPC reflection and health against a real socket, checked with the tools
// people actually point at a gateway: grpcurl and buf curl (HTTP/2 cleartext),
// plus connect-node clients for what the tools cannot isolate (v1alpha, Watch).

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";

import { create, fromBinary, toJson } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { file_google_rpc_error_details } from "../gen/google/rpc/error_details_pb.ts";
import {
  file_grpc_health_v1_health,
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.ts";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.ts";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.ts";
import { file_switchyard_v1_chat } from "../gen/switchyard/v1/chat_pb.ts";
import { file_switchyard_v1_embeddings } from "../gen/switchyard/v1/embeddings_pb.ts";
import { file_switchyard_v1_models } from "../gen/switchyard/v1/models_pb.ts";
import { createHealth } from "../server/rpc/health.ts";
import { registerReflection } from "../server/rpc/reflection.ts";

const run = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, "..");

const FILES: readonly DescFile[] = [
  file_switchyard_v1_chat,
  file_switchyard_v1_embeddings,
  file_switchyard_v1_models,
  file_grpc_health_v1_health,
  reflectionV1.file_grpc_reflection_v1_reflection,
  reflectionV1alpha.file_grpc_reflection_v1alpha_reflection,
  file_google_rpc_error_details,
];

// ---------------------------------------------------------------------------
// One port, HTTP/1.1 and h2c: sniff the HTTP/2 preface (STACK.md §1).

interface TestServer {
  port: number;
  close(): Promise<void>;
}

async function startServer(
  routes: (router: ConnectRouter) => void,
  interceptors: Interceptor[] = [],
): Promise<TestServer> {
  const handler = connectNodeAdapter({ routes, interceptors });
  const h1 = http.createServer(handler);
  const h2 = http2.createServer(handler);
  const sessions = new Set<http2.Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });
  const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.once("readable", () => {
      const head: Buffer | null = socket.read(Math.min(PREFACE.length, socket.readableLength)) ?? socket.read();
      if (!head) return socket.destroy();
      socket.unshift(head);
      const isH2 = head.length >= 3 && PREFACE.subarray(0, head.length).equals(head);
      (isH2 ? h2 : h1).emit("connection", socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sessions) s.close();
      h1.closeAllConnections();
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------
// Tools

function findGrpcurl(): string {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, "grpcurl"))) return path.join(dir, "grpcurl");
  }
  const fallback = path.join(process.env.HOME ?? os.homedir(), "go", "bin", "grpcurl");
  if (existsSync(fallback)) return fallback;
  throw new Error(
    "grpcurl not found on PATH or in $HOME/go/bin. .ci/run installs it with " +
      "`go install github.com/fullstorydev/grpcurl/cmd/grpcurl@latest`.",
  );
}

/** `grpcurl -plaintext FLAGS 127.0.0.1:PORT VERB...` */
async function grpcurlCall(port: number, flags: string[], verb: string[]): Promise<string> {
  const { stdout } = await run(findGrpcurl(), ["-plaintext", ...flags, `127.0.0.1:${port}`, ...verb], {
    timeout: 20_000,
  });
  return stdout;
}

// ---------------------------------------------------------------------------

describe("gRPC reflection and health on one h1/h2c port", () => {
  const health = createHealth();
  let server: TestServer;

  beforeAll(async () => {
    findGrpcurl(); // fail early and clearly when the tool is missing
    server = await startServer((router) => {
      registerReflection(router, FILES);
      health.register(router);
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  it("grpcurl list shows every service", async () => {
    const out = await grpcurlCall(server.port, [], ["list"]);
    const services = out.trim().split("\n");
    expect(services).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "switchyard.v1.ChatService",
      "switchyard.v1.EmbeddingsService",
      "switchyard.v1.ModelService",
    ]);
  });

  it("grpcurl describes a service, a message with a Struct field and a nested enum", async () => {
    const svc = await grpcurlCall(server.port, [], ["describe", "switchyard.v1.ChatService"]);
    expect(svc).toContain("service ChatService");
    expect(svc).toMatch(/rpc Complete \( \.switchyard\.v1\.CompleteRequest \)/);

    const msg = await grpcurlCall(server.port, [], ["describe", "switchyard.v1.ChatRequest"]);
    expect(msg).toContain("switchyard.v1.ChatRequest is a message");
    expect(msg).toContain(".google.protobuf.Struct");

    const en = await grpcurlCall(server.port, [], ["describe", "switchyard.v1.ToolChoice.Mode"]);
    expect(en).toContain("switchyard.v1.ToolChoice.Mode is an enum");
    expect(en).toContain("enum Mode {");

    const wkt = await grpcurlCall(server.port, [], ["describe", "google.protobuf.Struct"]);
    expect(wkt).toContain("google.protobuf.Struct is a message");

    const method = await grpcurlCall(server.port, [], ["describe", "grpc.health.v1.Health.Check"]);
    expect(method).toContain("grpc.health.v1.Health.Check is a method");

    const details = await grpcurlCall(server.port, [], ["describe", "google.rpc.BadRequest.FieldViolation"]);
    expect(details).toContain("google.rpc.BadRequest.FieldViolation is a message");
  });

  it("grpcurl reports unknown symbols", async () => {
    await expect(grpcurlCall(server.port, [], ["describe", "switchyard.v1.NoSuchThing"])).rejects.toThrow(
      /Symbol not found|not found/,
    );
  });

  it("grpcurl Health/Check returns SERVING; unknown service is NotFound", async () => {
    const out = await grpcurlCall(server.port, [], ["grpc.health.v1.Health/Check"]);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });

    health.setStatus("switchyard.v1.ChatService", "SERVING");
    const named = await grpcurlCall(server.port, ["-d", '{"service":"switchyard.v1.ChatService"}'], [
      "grpc.health.v1.Health/Check",
    ]);
    expect(JSON.parse(named)).toEqual({ status: "SERVING" });

    const err = await grpcurlCall(server.port, ["-d", '{"service":"nope"}'], ["grpc.health.v1.Health/Check"]).then(
      () => undefined,
      (e: { stderr?: string; stdout?: string }) => `${e.stdout ?? ""}${e.stderr ?? ""}`,
    );
    expect(err).toMatch(/NotFound/);
  });

  it("buf curl --list-methods works through reflection", async () => {
    const { stdout } = await run(
      path.join(repoRoot, "node_modules", ".bin", "buf"),
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", `http://127.0.0.1:${server.port}`],
      { cwd: repoRoot, timeout: 30_000 },
    );
    const methods = stdout.trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "switchyard.v1.ChatService/Complete",
        "switchyard.v1.ChatService/Stream",
        "switchyard.v1.EmbeddingsService/Embed",
        "switchyard.v1.ModelService/ListModels",
        "grpc.health.v1.Health/Check",
        "grpc.health.v1.Health/Watch",
      ]),
    );
  });

  it("v1alpha answers over gRPC with the same content as v1", async () => {
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` });
    const alpha = createClient(reflectionV1alpha.ServerReflection, transport);
    const v1 = createClient(reflectionV1.ServerReflection, transport);

    const requests = [
      { host: "h", messageRequest: { case: "listServices", value: "*" } },
      { host: "h", messageRequest: { case: "fileContainingSymbol", value: ".switchyard.v1.ToolChoice.Mode" } },
      { host: "h", messageRequest: { case: "fileByFilename", value: "switchyard/v1/embeddings.proto" } },
      { host: "h", messageRequest: { case: "fileByFilename", value: "nope.proto" } },
      { host: "h", messageRequest: { case: "fileContainingSymbol", value: "switchyard.v1.ChatService.Complete" } },
      { host: "h", messageRequest: { case: "fileContainingExtension", value: { containingType: "switchyard.v1.ChatRequest", extensionNumber: 100 } } },
      { host: "h", messageRequest: { case: "allExtensionNumbersOfType", value: "switchyard.v1.ChatRequest" } },
      { host: "h", messageRequest: { case: "allExtensionNumbersOfType", value: "switchyard.v1.Nope" } },
      { host: "h", messageRequest: { case: undefined } },
    ] as const;

    async function* alphaRequests() {
      for (const r of requests) yield create(reflectionV1alpha.ServerReflectionRequestSchema, r);
    }
    async function* v1Requests() {
      for (const r of requests) yield create(reflectionV1.ServerReflectionRequestSchema, r);
    }
    const alphaResponses = [];
    for await (const res of alpha.serverReflectionInfo(alphaRequests())) alphaResponses.push(res);
    const v1Responses = [];
    for await (const res of v1.serverReflectionInfo(v1Requests())) v1Responses.push(res);

    expect(alphaResponses).toHaveLength(requests.length);
    expect(alphaResponses[0].$typeName).toBe("grpc.reflection.v1alpha.ServerReflectionResponse");
    expect(alphaResponses[0].validHost).toBe("h");
    expect(alphaResponses[0].originalRequest?.messageRequest).toEqual({ case: "listServices", value: "*" });
    // Same answers on both versions (compared as JSON: the $typeNames differ).
    expect(alphaResponses.map((r) => toJson(reflectionV1alpha.ServerReflectionResponseSchema, r))).toEqual(
      v1Responses.map((r) => toJson(reflectionV1.ServerReflectionResponseSchema, r)),
    );

    const [list, nestedEnum, byName, missing, method, ext, extNumbers, extUnknownType, empty] = alphaResponses.map(
      (r) => r.messageResponse,
    );
    expect(list.case === "listServicesResponse" && list.value.service.map((s) => s.name)).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "switchyard.v1.ChatService",
      "switchyard.v1.EmbeddingsService",
      "switchyard.v1.ModelService",
    ]);

    const names = (r: typeof nestedEnum): string[] => {
      if (r.case !== "fileDescriptorResponse") throw new Error(`expected file descriptors, got ${JSON.stringify(r)}`);
      return r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name);
    };
    // Requested file first, then its transitive closure including WKTs.
    expect(names(nestedEnum)).toEqual(["switchyard/v1/chat.proto", "google/protobuf/struct.proto", "switchyard/v1/common.proto"]);
    expect(names(byName)[0]).toBe("switchyard/v1/embeddings.proto");
    expect(names(byName)).toEqual(expect.arrayContaining(["google/protobuf/struct.proto", "switchyard/v1/common.proto"]));
    expect(names(method)[0]).toBe("switchyard/v1/chat.proto");

    expect(missing).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
    expect(ext).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
    expect(extNumbers).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "switchyard.v1.ChatRequest", extensionNumber: [] },
    });
    expect(extUnknownType).toMatchObject({ case: "errorResponse", value: { errorCode: Code.NotFound } });
    expect(empty).toMatchObject({ case: "errorResponse", value: { errorCode: Code.Unimplemented } });
  });

  it("grpcurl works against a server that only has v1alpha", async () => {
    // Register v1 without its implementation, so it answers UNIMPLEMENTED the
    // way an older server does: grpcurl must fall back to v1alpha.
    // (Leaving the path unregistered is not the same: connect-node then answers
    // a bare HTTP 404, which grpc-go clients report as INTERNAL "server closed
    // the stream without sending trailers" and do not fall back from.)
    const alphaOnly = await startServer((router) => {
      const filtered: ConnectRouter = {
        get handlers() {
          return router.handlers;
        },
        service(service, impl, options) {
          if (service.typeName === reflectionV1.ServerReflection.typeName) router.service(service, {}, options);
          else router.service(service, impl, options);
          return this;
        },
        rpc(method, impl, options) {
          router.rpc(method, impl, options);
          return this;
        },
      };
      registerReflection(filtered, FILES);
    });
    try {
      const list = await grpcurlCall(alphaOnly.port, [], ["list"]);
      expect(list).toContain("switchyard.v1.ChatService");
      const en = await grpcurlCall(alphaOnly.port, [], ["describe", "switchyard.v1.ToolChoice.Mode"]);
      expect(en).toContain("enum Mode {");
      // Proof that v1 really is absent here: calling it directly is UNIMPLEMENTED.
      const v1 = createClient(reflectionV1.ServerReflection, createGrpcTransport({ baseUrl: `http://127.0.0.1:${alphaOnly.port}` }));
      const call = async () => {
        for await (const _ of v1.serverReflectionInfo(
          (async function* () {
            yield create(reflectionV1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
          })(),
        ));
      };
      await expect(call()).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Unimplemented);
    } finally {
      await alphaOnly.close();
    }
  });
});

describe("health Watch over h2c gRPC", () => {
  it("streams changes and ends the handler when the client cancels", async () => {
    const health = createHealth();
    // Resolves when the server-side Watch stream has finished (its finally ran).
    let watchEnded!: () => void;
    const ended = new Promise<void>((resolve) => (watchEnded = resolve));
    const observeEnd: Interceptor = (next) => async (req) => {
      const res = await next(req);
      if (!res.stream || req.method.name !== "Watch") return res;
      return {
        ...res,
        message: (async function* () {
          try {
            yield* res.message;
          } finally {
            watchEnded();
          }
        })(),
      };
    };
    const server = await startServer((router) => health.register(router), [observeEnd]);
    try {
      const client = createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.port}` }));
      const abort = new AbortController();
      const iterator = client.watch({ service: "" }, { signal: abort.signal })[Symbol.asyncIterator]();
      expect((await iterator.next()).value.status).toBe(ServingStatus.SERVING);
      health.setStatus("", "NOT_SERVING");
      expect((await iterator.next()).value.status).toBe(ServingStatus.NOT_SERVING);
      abort.abort();
      await expect(iterator.next()).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Canceled);
      await ended; // the server handler returned: listeners removed, no leak
      health.setStatus("", "SERVING");
    } finally {
      await server.close();
    }
  });
});

describe("health Watch when the gateway stops", () => {
  it("sends NOT_SERVING, then ends open and new Watch streams instead of holding the drain for its grace", async () => {
    const health = createHealth();
    const client = createClient(Health, createRouterTransport((router) => health.register(router)));
    const open = client.watch({ service: "" })[Symbol.asyncIterator]();
    expect((await open.next()).value.status).toBe(ServingStatus.SERVING);
    health.setStatus("", "NOT_SERVING");
    health.close();
    expect((await open.next()).value.status).toBe(ServingStatus.NOT_SERVING);
    expect((await open.next()).done).toBe(true);
    // A load balancer reconnecting during the drain hears the status once, and the stream ends.
    const late = client.watch({ service: "" })[Symbol.asyncIterator]();
    expect((await late.next()).value.status).toBe(ServingStatus.NOT_SERVING);
    expect((await late.next()).done).toBe(true);
  });
});

describe("health service", () => {
  it("Check, List and Watch follow the gRPC health spec", async () => {
    const health = createHealth();
    const transport = createRouterTransport((router) => health.register(router));
    const client = createClient(Health, transport);

    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    await expect(client.check({ service: "switchyard.v1.ChatService" })).rejects.toSatisfy(
      (e) => ConnectError.from(e).code === Code.NotFound,
    );

    health.setStatus("switchyard.v1.ChatService", "NOT_SERVING");
    expect((await client.check({ service: "switchyard.v1.ChatService" })).status).toBe(ServingStatus.NOT_SERVING);
    const list = await client.list({});
    expect(Object.fromEntries(Object.entries(list.statuses).map(([k, v]) => [k, v.status]))).toEqual({
      "": ServingStatus.SERVING,
      "switchyard.v1.ChatService": ServingStatus.NOT_SERVING,
    });

    // Watch an unknown service: SERVICE_UNKNOWN, then changes as they happen.
    const abort = new AbortController();
    const seen: number[] = [];
    const stream = client.watch({ service: "switchyard.v1.ModelService" }, { signal: abort.signal });
    const iterator = stream[Symbol.asyncIterator]();
    seen.push((await iterator.next()).value.status);
    health.setStatus("switchyard.v1.ModelService", "SERVING");
    seen.push((await iterator.next()).value.status);
    health.setStatus("switchyard.v1.ModelService", "SERVING"); // no change, no message
    health.setStatus("switchyard.v1.ModelService", "NOT_SERVING");
    seen.push((await iterator.next()).value.status);
    expect(seen).toEqual([ServingStatus.SERVICE_UNKNOWN, ServingStatus.SERVING, ServingStatus.NOT_SERVING]);
    abort.abort();
    await expect(iterator.next()).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Canceled);
  });
});
