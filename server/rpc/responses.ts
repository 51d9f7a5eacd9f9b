import { create, type JsonObject } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  CreateResponseResponseSchema,
  DeleteResponseResponseSchema,
  GetResponseResponseSchema,
  ResponsesService,
  StreamResponseResponseSchema,
  type StreamResponseResponse,
} from "../../gen/switchyard/v1/responses_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import { toConnectError } from "../errors/to-connect.ts";
import type { ResponsesApi } from "../responses/service.ts";
import { rpcCall, rpcEntry } from "./context.ts";

/**
 * switchyard.v1.ResponsesService: the Responses API over Connect, gRPC and
 * gRPC-Web, the same code and store as POST /v1/responses
 * (server/responses/service.ts). Bodies and answers are the REST JSON as
 * google.protobuf.Struct.
 *
 * StreamResponse: errors before the first event are RPC errors with the
 * usual codes; a failure after it is reported as REST reports it, a last
 * `response.failed` event, and the stream then ends normally (OK), so a
 * client sees the same event sequence on every transport.
 */
export function registerResponsesService(router: ConnectRouter, api: ResponsesApi): void {
  router.service(ResponsesService, {
    createResponse(req, ctx) {
      return rpcCall(async () => {
        const { response, gateway } = await api.create(bodyJson(req.body), rpcEntry(ctx));
        return create(CreateResponseResponseSchema, { response: response as JsonObject, gateway });
      });
    },
    async *streamResponse(req, ctx): AsyncGenerator<StreamResponseResponse> {
      const events = await rpcCall(() => api.stream(bodyJson(req.body), rpcEntry(ctx)));
      let gateway = events.gateway;
      try {
        for await (const batch of events) {
          for (const e of batch) {
            yield create(StreamResponseResponseSchema, { type: e.type, event: e.event as JsonObject, gateway });
            gateway = undefined; // the first event only
          }
        }
      } catch (err) {
        throw toConnectError(GatewayError.from(err));
      }
    },
    getResponse(req, ctx) {
      return rpcCall(async () => {
        const entry = rpcEntry(ctx);
        return create(GetResponseResponseSchema, { response: (await api.get(requiredId(req.id), entry)) as JsonObject });
      });
    },
    deleteResponse(req, ctx) {
      return rpcCall(async () => {
        const entry = rpcEntry(ctx);
        await api.remove(requiredId(req.id), entry);
        return create(DeleteResponseResponseSchema, { id: req.id, deleted: true });
      });
    },
  });
}

/** The request body, the REST JSON (protobuf-es hands a Struct field over as a JsonObject). */
function bodyJson(body: JsonObject | undefined): JsonObject {
  if (body === undefined) throw invalid("body: required", "body");
  return body;
}

function requiredId(id: string): string {
  if (id === "") throw invalid("id: required", "id");
  return id;
}
