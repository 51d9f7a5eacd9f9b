import type { AggregateOptions, DatabaseSync, StatementSync } from "node:sqlite";

/**
 * Request-log aggregates (LogService.AggregateRequests): totals, latency and
 * overhead percentiles and cache hits per group and time bucket, computed by
 * SQLite in one pass over the matching rows.
 */

export type GroupBy = "key" | "team" | "customer" | "model" | "provider";
export type Bucket = "none" | "minute" | "hour" | "day";

export interface AggregateRow {
  group: string;
  bucketStartMs: number;
  requests: number;
  errors: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  /** Nearest-rank percentiles of latency_ms over the group's requests in the bucket. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Nearest-rank percentiles of the gateway's own share (see OVERHEAD); 0 when no request qualifies. */
  overheadP50Ms: number;
  overheadP99Ms: number;
  /** Requests answered from the cache (exact or semantic). */
  cacheHits: number;
}

export const GROUP_COLUMN: Record<GroupBy, string> = { key: "key", team: "team", customer: "customer", model: "model", provider: "provider" };
export const BUCKET_MS: Record<Bucket, number> = { none: 0, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * The gateway's own time for one row, as switchyard_overhead_seconds
 * measures it (server/telemetry/metrics.ts): successful requests with an
 * upstream time only, (first chunk or end) minus upstream, clamped at 0.
 * NULL for every other row, so the percentile skips it.
 */
const OVERHEAD = `CASE WHEN status = 'ok' AND upstream_ms IS NOT NULL
  THEN MAX(0, COALESCE(first_chunk_ms, latency_ms) - upstream_ms) END`;

/** SQL aggregate: nearest-rank p50 and p99 of its non-NULL inputs, as JSON "[p50,p99]"; NULL without inputs. */
const PERCENTILES = "p50_p99";

/**
 * Registers the percentile aggregate on the store's connection. GROUP BY
 * sorts the rows and feeds one group at a time, so only the current
 * group's values are held, never the whole result.
 */
export function registerAggregateFunctions(db: DatabaseSync): void {
  // The accumulator stays a JS array inside node:sqlite (it is never bound to SQL); the typings admit only SQL values.
  const options = {
    start: (): number[] => [],
    step: (values: number[], value: unknown) => {
      if (typeof value === "number") values.push(value);
      return values;
    },
    result: (values: number[]) => {
      if (values.length === 0) return null;
      const sorted = Float64Array.from(values).sort();
      return JSON.stringify([nearestRank(sorted, 50), nearestRank(sorted, 99)]);
    },
    deterministic: true,
  };
  db.aggregate(PERCENTILES, options as unknown as AggregateOptions);
}

/** The value at rank ceil(p/100 * n) of sorted values (1-based): always one of the inputs, never interpolated. */
function nearestRank(sorted: Float64Array, p: number): number {
  // p * n is an exact integer, so the division is exact when the rank is whole.
  return sorted[Math.max(1, Math.ceil((p * sorted.length) / 100)) - 1]!;
}

/**
 * Runs the aggregate over the rows matching `where` (a conjunction of
 * parameterised conditions). Rows come back ordered by bucket, then group.
 */
export function aggregate(
  prepared: (sql: string) => StatementSync,
  where: readonly string[],
  params: readonly (string | number)[],
  groupBy: GroupBy,
  bucket: Bucket,
): AggregateRow[] {
  const size = BUCKET_MS[bucket];
  const bucketExpr = size === 0 ? "0" : `(time_ms / ${size}) * ${size}`;
  const sql = `SELECT ${GROUP_COLUMN[groupBy]} AS grp, ${bucketExpr} AS bucket, COUNT(*) AS requests,
      SUM(status <> 'ok') AS errors, SUM(prompt_tokens) AS prompt, SUM(completion_tokens) AS completion, SUM(cost_usd) AS cost,
      SUM(cache_status IN ('hit', 'semantic-hit')) AS cache_hits,
      ${PERCENTILES}(latency_ms) AS latency, ${PERCENTILES}(${OVERHEAD}) AS overhead
    FROM requests ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
    GROUP BY grp, bucket ORDER BY bucket, grp`;
  return (prepared(sql).all(...params) as Record<string, number | string | null>[]).map((r) =>
    aggregateRowOf(r, percentiles(r["latency"]), percentiles(r["overhead"])),
  );
}

/**
 * One result row of the aggregate query (columns grp, bucket, requests,
 * errors, prompt, completion, cost, cache_hits) with its percentiles as
 * [p50, p99]: shared by the SQLite and PostgreSQL stores.
 */
export function aggregateRowOf(r: Record<string, unknown>, latency: [number, number], overhead: [number, number]): AggregateRow {
  return {
    group: String(r["grp"]),
    bucketStartMs: Number(r["bucket"]),
    requests: Number(r["requests"]),
    errors: Number(r["errors"]),
    promptTokens: Number(r["prompt"]),
    completionTokens: Number(r["completion"]),
    costUsd: Number(r["cost"]),
    latencyP50Ms: latency[0],
    latencyP99Ms: latency[1],
    overheadP50Ms: overhead[0],
    overheadP99Ms: overhead[1],
    cacheHits: Number(r["cache_hits"]),
  };
}

function percentiles(json: number | string | null | undefined): [number, number] {
  return typeof json === "string" ? (JSON.parse(json) as [number, number]) : [0, 0];
}
