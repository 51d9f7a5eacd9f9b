import { create } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  AggregateRequestsRequest_Bucket as BucketEnum,
  AggregateRequestsRequest_GroupBy as GroupByEnum,
  AggregateRequestsResponseSchema,
  LogService,
  SearchRequestsResponseSchema,
  type LogFilter as LogFilterMessage,
} from "../../gen/switchyard/v1/logs_pb.ts";
import { GatewayError, invalid } from "../errors/errors.ts";
import type { Entry } from "../pipeline/pipeline.ts";
import type { Bucket, GroupBy } from "../telemetry/log-aggregate.ts";
import type { LogFilter } from "../telemetry/log-store.ts";
import type { RequestLog } from "../telemetry/request-log.ts";
import type { ServiceOptions } from "./admin.ts";
import { rpcCall } from "./context.ts";

const GROUP_BY: Record<number, GroupBy> = {
  [GroupByEnum.KEY]: "key",
  [GroupByEnum.TEAM]: "team",
  [GroupByEnum.CUSTOMER]: "customer",
  [GroupByEnum.MODEL]: "model",
  [GroupByEnum.PROVIDER]: "provider",
};

const BUCKET: Record<number, Bucket> = {
  [BucketEnum.UNSPECIFIED]: "none",
  [BucketEnum.MINUTE]: "minute",
  [BucketEnum.HOUR]: "hour",
  [BucketEnum.DAY]: "day",
};

/**
 * switchyard.v1.LogService over the request log. The log holds every
 * tenant's traffic: the permission table (server/admin/access.ts) lets a
 * caller read only the customers and teams its grants cover.
 */
export function registerLogService(router: ConnectRouter, log: RequestLog, options: ServiceOptions): void {
  router.service(LogService, {
    searchRequests(req) {
      return rpcCall(async () => {
        const pageSize = req.pageSize === 0 ? 100 : req.pageSize;
        if (pageSize > 1000) throw invalid("page_size: at most 1000", "page_size");
        let page;
        try {
          page = await log.search(filter(req.filter), pageSize, req.pageToken);
        } catch (err) {
          if ((err as Error).message === "invalid page token") throw invalid("page_token: not a token from this API", "page_token");
          throw err;
        }
        return create(SearchRequestsResponseSchema, {
          entries: page.entries.map((e) => ({
            ...e,
            timeMs: BigInt(e.timeMs),
            firstChunkMs: e.firstChunkMs ?? undefined,
            // Bodies only when asked: a page of a hundred rows stays small.
            requestBody: req.includeBodies ? e.requestBody ?? "" : "",
            responseBody: req.includeBodies ? e.responseBody ?? "" : "",
          })),
          nextPageToken: page.nextPageToken,
        });
      });
    },
    aggregateRequests(req) {
      return rpcCall(async () => {
        const groupBy = GROUP_BY[req.groupBy];
        if (groupBy === undefined) throw invalid("group_by: required (key, team, customer, model or provider)", "group_by");
        const bucket = BUCKET[req.bucket] ?? "none";
        const rows = await log.aggregate(filter(req.filter), groupBy, bucket);
        return create(AggregateRequestsResponseSchema, {
          rows: rows.map((r) => ({
            ...r,
            bucketStartMs: BigInt(r.bucketStartMs),
            requests: BigInt(r.requests),
            errors: BigInt(r.errors),
            promptTokens: BigInt(r.promptTokens),
            completionTokens: BigInt(r.completionTokens),
            cacheHits: BigInt(r.cacheHits),
          })),
        });
      });
    },
  }, options);
}

function filter(f: LogFilterMessage | undefined): LogFilter {
  if (f === undefined) return {};
  return {
    startTimeMs: Number(f.startTimeMs),
    endTimeMs: Number(f.endTimeMs),
    key: f.key,
    team: f.team,
    customer: f.customer,
    model: f.model,
    provider: f.provider,
    status: f.status,
    requestId: f.requestId,
  };
}
