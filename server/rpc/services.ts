import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ChatService,
  CompleteResponseSchema,
  type StreamResponse,
} from "../../gen/switchyard/v1/chat_pb.ts";
import { EmbeddingsService } from "../../gen/switchyard/v1/embeddings_pb.ts";
import { ListModelsResponseSchema, ModelService } from "../../gen/switchyard/v1/models_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import { toConnectError } from "../errors/to-connect.ts";
import type { Pipeline } from "../pipeline/pipeline.ts";
import { rpcCall, rpcEntry } from "./context.ts";

/**
 * The switchyard.v1 services. Each method only unwraps the RPC message and
 * calls the same pipeline the REST bridge calls.
 */
export function registerServices(router: ConnectRouter, pipeline: Pipeline): void {
  router.service(ChatService, {
    complete(req, ctx) {
      return rpcCall(async () => {
        if (req.request === undefined) throw invalid("request: required", "request");
        const completion = await pipeline.complete(req.request, rpcEntry(ctx));
        return create(CompleteResponseSchema, { completion });
      });
    },
    async *stream(req, ctx): AsyncGenerator<StreamResponse> {
      const chunks = await rpcCall(async () => {
        if (req.request === undefined) throw invalid("request: required", "request");
        return pipeline.stream(req.request, { includeUsage: req.includeUsage }, rpcEntry(ctx));
      });
      try {
        for await (const chunk of chunks) yield { $typeName: "switchyard.v1.StreamResponse", chunk };
      } catch (err) {
        throw toConnectError(GatewayError.from(err));
      }
    },
  });

  router.service(EmbeddingsService, {
    embed(req, ctx) {
      return rpcCall(() => pipeline.embed(req, rpcEntry(ctx)));
    },
  });

  router.service(ModelService, {
    listModels(_req, ctx) {
      // Admins see the model list too (the web UI's providers page); it runs nothing upstream.
      return rpcCall(async () => create(ListModelsResponseSchema, { models: await pipeline.listModels(rpcEntry(ctx, { admins: true })) }));
    },
  });
}
