// gRPC server reflection (grpc.reflection.v1 and v1alpha) for connect-es.
//
// connect-es ships no reflection service (connectrpc/connect-es#507), so this
// answers ServerReflectionInfo from the generated descriptors: every `GenFile`
// carries its FileDescriptorProto (`DescFile.proto`) and its imports
// (`DescFile.dependencies`). grpcurl, buf curl, Postman and grpcui use it to
// list services and to describe messages.
//
// Both versions share one implementation. v1alpha is the older name of the
// same protocol (identical messages); older clients ask for it first, newer
// ones fall back to it when v1 answers UNIMPLEMENTED.

import { toBinary } from "@bufbuild/protobuf";
import type { DescFile, DescMessage, DescEnum, DescExtension } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";

import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.ts";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.ts";

/** The request oneof, common to v1 and v1alpha (minus the `$typeName`s). */
type MessageRequest =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The response oneof as an init shape, assignable to both v1 and v1alpha. */
type MessageResponse =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

/**
 * Register `grpc.reflection.v1.ServerReflection` and
 * `grpc.reflection.v1alpha.ServerReflection` on `router`.
 *
 * `files` are the files whose services are served on this router (pass the
 * health and error-details files too). `list_services` names every service
 * declared in them plus the two reflection services, sorted. Files, symbols
 * and extensions are looked up in the transitive closure of `files`, so
 * well-known types (google/protobuf/struct.proto, ...) resolve as well, and
 * every file descriptor answer carries the requested file first, followed by
 * its transitive dependencies.
 */
export function registerReflection(router: ConnectRouter, files: readonly DescFile[]): void {
  const answer = createResolver([
    ...files,
    v1.file_grpc_reflection_v1_reflection,
    v1alpha.file_grpc_reflection_v1alpha_reflection,
  ]);

  router.service(v1.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req.messageRequest) };
      }
    },
  });
  router.service(v1alpha.ServerReflection, {
    async *serverReflectionInfo(requests) {
      for await (const req of requests) {
        yield { validHost: req.host, originalRequest: req, messageResponse: answer(req.messageRequest) };
      }
    },
  });
}

function createResolver(roots: readonly DescFile[]): (request: MessageRequest) => MessageResponse {
  const byFilename = new Map<string, DescFile>();
  const bySymbol = new Map<string, DescFile>();
  // extendee type name → extension number → file declaring the extension
  const extensionsByType = new Map<string, Map<number, DescFile>>();
  const messageTypes = new Set<string>();
  const serviceNames = new Set<string>();

  const addSymbol = (name: string, file: DescFile) => {
    if (!bySymbol.has(name)) bySymbol.set(name, file);
  };
  const addExtension = (ext: DescExtension, file: DescFile) => {
    addSymbol(ext.typeName, file);
    let numbers = extensionsByType.get(ext.extendee.typeName);
    if (!numbers) extensionsByType.set(ext.extendee.typeName, (numbers = new Map()));
    if (!numbers.has(ext.number)) numbers.set(ext.number, file);
  };
  // Enum values are scoped as siblings of their enum (protobuf's C++ scoping).
  const addEnum = (e: DescEnum, scope: string, file: DescFile) => {
    addSymbol(e.typeName, file);
    for (const v of e.values) addSymbol(scope ? `${scope}.${v.name}` : v.name, file);
  };
  const addMessage = (m: DescMessage, file: DescFile) => {
    addSymbol(m.typeName, file);
    messageTypes.add(m.typeName);
    for (const f of m.fields) addSymbol(`${m.typeName}.${f.name}`, file);
    for (const o of m.oneofs) addSymbol(`${m.typeName}.${o.name}`, file);
    for (const nested of m.nestedMessages) addMessage(nested, file);
    for (const e of m.nestedEnums) addEnum(e, m.typeName, file);
    for (const ext of m.nestedExtensions) addExtension(ext, file);
  };
  const addFile = (file: DescFile) => {
    if (byFilename.has(file.proto.name)) return;
    byFilename.set(file.proto.name, file);
    for (const s of file.services) {
      addSymbol(s.typeName, file);
      for (const m of s.methods) addSymbol(`${s.typeName}.${m.name}`, file);
    }
    for (const m of file.messages) addMessage(m, file);
    for (const e of file.enums) addEnum(e, file.proto.package, file);
    for (const ext of file.extensions) addExtension(ext, file);
    for (const dep of file.dependencies) addFile(dep);
  };
  for (const file of roots) {
    addFile(file);
    for (const s of file.services) serviceNames.add(s.typeName);
  }
  const listServicesResponse: MessageResponse = {
    case: "listServicesResponse",
    value: { service: [...serviceNames].sort().map((name) => ({ name })) },
  };

  // Serialized closures, computed on first use (they never change).
  const closures = new Map<string, Uint8Array[]>();
  const closureOf = (file: DescFile): Uint8Array[] => {
    let out = closures.get(file.proto.name);
    if (!out) {
      const seen = new Set<string>();
      out = [];
      const walk = (f: DescFile) => {
        if (seen.has(f.proto.name)) return;
        seen.add(f.proto.name);
        out!.push(toBinary(FileDescriptorProtoSchema, f.proto));
        for (const dep of f.dependencies) walk(dep);
      };
      walk(file);
      closures.set(file.proto.name, out);
    }
    return out;
  };
  const files = (file: DescFile): MessageResponse => ({
    case: "fileDescriptorResponse",
    value: { fileDescriptorProto: closureOf(file) },
  });
  const error = (code: Code, message: string): MessageResponse => ({
    case: "errorResponse",
    // Connect's Code values are the gRPC status codes.
    value: { errorCode: code, errorMessage: message },
  });
  const stripDot = (name: string) => (name.startsWith(".") ? name.slice(1) : name);

  return (request) => {
    switch (request.case) {
      case "listServices":
        return listServicesResponse;
      case "fileByFilename": {
        const file = byFilename.get(request.value);
        return file ? files(file) : error(Code.NotFound, `file not found: ${request.value}`);
      }
      case "fileContainingSymbol": {
        const symbol = stripDot(request.value);
        const file = bySymbol.get(symbol);
        return file ? files(file) : error(Code.NotFound, `symbol not found: ${symbol}`);
      }
      case "fileContainingExtension": {
        const type = stripDot(request.value.containingType);
        const file = extensionsByType.get(type)?.get(request.value.extensionNumber);
        return file
          ? files(file)
          : error(Code.NotFound, `extension ${request.value.extensionNumber} of ${type} not found`);
      }
      case "allExtensionNumbersOfType": {
        const type = stripDot(request.value);
        const numbers = extensionsByType.get(type);
        if (!numbers && !messageTypes.has(type)) return error(Code.NotFound, `type not found: ${type}`);
        return {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: type, extensionNumber: [...(numbers?.keys() ?? [])].sort((a, b) => a - b) },
        };
      }
      default:
        return error(Code.Unimplemented, "unsupported reflection request");
    }
  };
}
