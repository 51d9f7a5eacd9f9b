/**
 * Traffic over time from the request log (LogService.AggregateRequests,
 * grouped by provider): counts, tokens and spend are summed across
 * providers; latency and gateway overhead percentiles cannot be summed, so
 * they are drawn per provider.
 */
import { useMemo, useState } from "preact/hooks";
import { AggregateRequestsRequest_Bucket as Bucket, AggregateRequestsRequest_GroupBy as GroupBy, type AggregateRow } from "../../../gen/switchyard/v1/logs_pb.ts";
import { api } from "../api.ts";
import { Chart, type ChartSeries } from "../components/chart.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { int, ms, usd } from "../format.ts";
import { useLoad } from "../hooks.ts";

const RANGES = [
  { id: "1h", label: "Last hour", spanMs: 3_600_000, bucket: Bucket.MINUTE, stepMs: 60_000 },
  { id: "24h", label: "Last 24 hours", spanMs: 86_400_000, bucket: Bucket.HOUR, stepMs: 3_600_000 },
  { id: "7d", label: "Last 7 days", spanMs: 7 * 86_400_000, bucket: Bucket.HOUR, stepMs: 3_600_000 },
] as const;

type Range = (typeof RANGES)[number];

export function OverviewPage(_: { path: string }) {
  const [range, setRange] = useState<Range>(RANGES[0]);
  const agg = useLoad(async () => {
    const end = Date.now();
    const start = Math.floor((end - range.spanMs) / range.stepMs) * range.stepMs;
    const res = await api.logs.aggregateRequests({
      filter: { startTimeMs: BigInt(start) },
      groupBy: GroupBy.PROVIDER,
      bucket: range.bucket,
    });
    return { start, end, rows: res.rows };
  }, [range.id], 15_000);

  const view = useMemo(() => (agg.data === undefined ? undefined : shape(agg.data.rows, agg.data.start, agg.data.end, range.stepMs)), [agg.data]);

  return (
    <>
      <h1>Overview</h1>
      <div class="row">
        <div role="group" aria-label="Time range" class="segmented">
          {RANGES.map((r) => (
            <button key={r.id} type="button" aria-pressed={r.id === range.id} onClick={() => setRange(r)} title={r.label}>{r.id}</button>
          ))}
        </div>
        <button type="button" onClick={agg.reload} disabled={agg.loading}>Refresh</button>
        <span role="status" class="muted">{agg.loading ? "Loading…" : ""}</span>
      </div>
      <ErrorBox error={agg.error} />
      {view !== undefined && (
        <>
          <dl class="stats" data-testid="overview-totals">
            <Stat label="Requests" value={int(view.totals.requests)} />
            <Stat label="Errors" value={int(view.totals.errors)} />
            <Stat label="Tokens" value={int(view.totals.tokens)} />
            <Stat label="Spend" value={usd(view.totals.cost)} />
            <Stat label="Cache hits" value={int(view.totals.cacheHits)} />
          </dl>
          <div class="charts">
            <Chart title="Requests and errors" xs={view.xs} format={(v) => int(Math.round(v))} testId="chart-requests"
              series={[{ label: "requests", values: view.requests }, { label: "errors", values: view.errors }]}
              summary={`${int(view.totals.requests)} requests, ${int(view.totals.errors)} errors`} />
            <Chart title="Latency" xs={view.xs} format={ms} series={view.latency} summary="p50 and p99 latency per provider" />
            <Chart title="Gateway overhead" xs={view.xs} format={ms} series={view.overhead} summary="p50 and p99 time spent in the gateway per provider" />
            <Chart title="Tokens" xs={view.xs} format={(v) => int(Math.round(v))}
              series={[{ label: "prompt", values: view.prompt }, { label: "completion", values: view.completion }]}
              summary={`${int(view.totals.tokens)} tokens`} />
            <Chart title="Spend" xs={view.xs} format={usd} axisFormat={usdAxis} series={[{ label: "USD", values: view.cost }]} summary={`${usd(view.totals.cost)} spent`} />
          </div>
        </>
      )}
    </>
  );
}

/** Axis labels stay short: fractions of a cent in exponent form. */
function usdAxis(v: number): string {
  return v === 0 ? "$0" : Math.abs(v) < 0.01 ? `$${v.toExponential(0)}` : usd(v);
}

function Stat({ label, value }: { label: string; value: string }) {
  return (
    <div class="stat">
      <dt>{label}</dt>
      <dd>{value}</dd>
    </div>
  );
}

/** Rows (provider × bucket) to one value per bucket for the whole range; empty buckets are 0 for counts, gaps for percentiles. */
function shape(rows: AggregateRow[], start: number, end: number, step: number) {
  const xs: number[] = [];
  for (let t = start; t <= end; t += step) xs.push(t);
  const at = (r: AggregateRow): number => Math.round((Number(r.bucketStartMs) - start) / step);
  const zeros = (): number[] => xs.map(() => 0);
  const requests = zeros(), errors = zeros(), prompt = zeros(), completion = zeros(), cost = zeros();
  const totals = { requests: 0, errors: 0, tokens: 0, cost: 0, cacheHits: 0 };
  const providers = [...new Set(rows.map((r) => r.group))].sort();
  const latency: ChartSeries[] = [];
  const overhead: ChartSeries[] = [];
  const gaps = (): (number | null)[] => xs.map(() => null);
  for (const p of providers) {
    const name = p || "(none)";
    const l50 = gaps(), l99 = gaps(), o50 = gaps(), o99 = gaps();
    for (const r of rows) {
      if (r.group !== p) continue;
      const i = at(r);
      if (i < 0 || i >= xs.length) continue;
      l50[i] = r.latencyP50Ms; l99[i] = r.latencyP99Ms; o50[i] = r.overheadP50Ms; o99[i] = r.overheadP99Ms;
    }
    // Percentiles have gaps where a bucket saw no traffic: dots keep a lone bucket visible.
    latency.push({ label: `${name} p50`, values: l50, dots: true }, { label: `${name} p99`, values: l99, dashed: true, dots: true });
    overhead.push({ label: `${name} p50`, values: o50, dots: true }, { label: `${name} p99`, values: o99, dashed: true, dots: true });
  }
  for (const r of rows) {
    const n = Number(r.requests), e = Number(r.errors), pt = Number(r.promptTokens), ct = Number(r.completionTokens);
    totals.requests += n; totals.errors += e; totals.tokens += pt + ct; totals.cost += r.costUsd; totals.cacheHits += Number(r.cacheHits);
    const i = at(r);
    if (i < 0 || i >= xs.length) continue;
    requests[i] += n; errors[i] += e; prompt[i] += pt; completion[i] += ct; cost[i] += r.costUsd;
  }
  return { xs, requests, errors, prompt, completion, cost, latency, overhead, totals };
}
