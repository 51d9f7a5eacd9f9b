/**
 * The request log: filters, pages, and one entry in detail
 * (LogService.SearchRequests). Filters apply on submit, so typing does not
 * fire a search per key.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { RequestLogEntry } from "../../../gen/switchyard/v1/logs_pb.ts";
import { api } from "../api.ts";
import { ErrorBox } from "../components/error-box.tsx";
import { Pager } from "../components/pager.tsx";
import { fromLocalInput, int, ms, time, usd } from "../format.ts";
import { useLoad } from "../hooks.ts";

const FIELDS = ["key", "team", "customer", "model", "provider", "status"] as const;
type Field = (typeof FIELDS)[number];
type Form = Record<Field | "from" | "to", string>;

const EMPTY: Form = { from: "", to: "", key: "", team: "", customer: "", model: "", provider: "", status: "" };
const PAGE_SIZE = 50;

export function RequestsPage(_: { path: string }) {
  const [form, setForm] = useState<Form>(EMPTY);
  const [applied, setApplied] = useState<Form>(EMPTY);
  const [tokens, setTokens] = useState<string[]>([]);
  const [open, setOpen] = useState<RequestLogEntry | undefined>(undefined);

  const page = useLoad(() => {
    const filter = {
      ...Object.fromEntries(FIELDS.map((f) => [f, applied[f].trim()])),
      startTimeMs: BigInt(fromLocalInput(applied.from)),
      endTimeMs: BigInt(fromLocalInput(applied.to)),
    };
    return api.logs.searchRequests({ filter, pageSize: PAGE_SIZE, pageToken: tokens.at(-1) ?? "" });
  }, [applied, tokens]);

  const set = (k: keyof Form) => (e: Event): void => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });

  return (
    <>
      <h1>Requests</h1>
      <form class="filters" aria-label="Filter requests" onSubmit={(e) => { e.preventDefault(); setTokens([]); setApplied(form); }}>
        <label>From<input type="datetime-local" name="from" value={form.from} onInput={set("from")} /></label>
        <label>To<input type="datetime-local" name="to" value={form.to} onInput={set("to")} /></label>
        {FIELDS.map((f) => (
          <label key={f}>
            {f[0]!.toUpperCase() + f.slice(1)}
            <input name={f} value={form[f]} onInput={set(f)} placeholder={f === "status" ? "ok, or an error code" : "any"} />
          </label>
        ))}
        <div class="row">
          <button type="submit">Search</button>
          <button type="button" onClick={() => { setForm(EMPTY); setTokens([]); setApplied(EMPTY); }}>Clear</button>
          <button type="button" onClick={page.reload}>Refresh</button>
        </div>
      </form>
      <ErrorBox error={page.error} />
      {open !== undefined && <Detail entry={open} onClose={() => setOpen(undefined)} />}
      <div class="table-wrap">
        <table data-testid="requests-table">
          <caption class="sr-only">Logged requests, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th><th scope="col">Request</th><th scope="col">Key</th><th scope="col">Team</th>
              <th scope="col">Model</th><th scope="col">Provider</th><th scope="col">Status</th>
              <th scope="col" class="num">Tokens</th><th scope="col" class="num">Cost</th><th scope="col" class="num">Latency</th>
            </tr>
          </thead>
          <tbody>
            {page.data?.entries.map((e) => (
              <tr key={e.requestId} class={e.status === "ok" ? "" : "bad"}>
                <td>{time(e.timeMs)}</td>
                <td><button type="button" class="link" onClick={() => setOpen(e)} aria-label={`Details of request ${e.requestId}`}>{e.requestId}</button></td>
                <td>{e.key}</td><td>{e.team}</td><td>{e.model || e.modelAsked}</td><td>{e.provider}</td><td>{e.status}</td>
                <td class="num">{int(e.promptTokens + e.completionTokens)}</td><td class="num">{usd(e.costUsd)}</td><td class="num">{ms(e.latencyMs)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {page.data?.entries.length === 0 && <p class="muted">No requests match.</p>}
      <Pager tokens={tokens} next={page.data?.nextPageToken ?? ""} onPage={setTokens} />
    </>
  );
}

function Detail({ entry: e, onClose }: { entry: RequestLogEntry; onClose: () => void }) {
  const rows: [string, string][] = [
    ["Time", time(e.timeMs)], ["Request id", e.requestId], ["Operation", e.operation], ["Key", e.key], ["Team", e.team],
    ["Customer", e.customer], ["Model asked", e.modelAsked], ["Model", e.model], ["Provider", e.provider], ["Status", e.status],
    ["Prompt tokens", int(e.promptTokens)], ["Completion tokens", int(e.completionTokens)], ["Cached tokens", int(e.cachedTokens)],
    ["Cost", usd(e.costUsd)], ["Saved by cache", usd(e.savedUsd)], ["Latency", ms(e.latencyMs)],
    ["First chunk", e.firstChunkMs === undefined ? "" : ms(e.firstChunkMs)], ["Cache", e.cacheStatus], ["Attempts", String(e.attempts)],
  ];
  // The row as listed has no bodies; fetch this one with them (and the targets it tried). Naming its
  // team or customer keeps the call within a scoped admin's reach.
  const full = useLoad(async () => {
    const res = await api.logs.searchRequests({
      filter: { requestId: e.requestId, key: e.key, team: e.team, customer: e.team === "" ? e.customer : "", startTimeMs: e.timeMs, endTimeMs: e.timeMs + 1n },
      includeBodies: true,
      pageSize: 10,
    });
    return res.entries[0];
  }, [e.requestId, e.timeMs]);
  const panel = useRef<HTMLElement>(null);
  useEffect(() => panel.current?.focus(), [e.requestId]);
  return (
    <section class="panel" ref={panel} tabIndex={-1} aria-label={`Request ${e.requestId}`} data-testid="request-detail">
      <div class="row spread">
        <h2>Request {e.requestId}</h2>
        <button type="button" onClick={onClose}>Close</button>
      </div>
      <dl class="kv">
        {rows.filter(([, v]) => v !== "").map(([k, v]) => (
          <div key={k}><dt>{k}</dt><dd>{v}</dd></div>
        ))}
      </dl>
      <ErrorBox error={full.error} />
      {full.data !== undefined && (
        <>
          <h3>Targets tried</h3>
          <ol data-testid="request-targets">{full.data.targets.map((t, i) => <li key={i}>{t}</li>)}</ol>
          <h3>Request body</h3>
          {full.data.requestBody === "" ? <p class="muted">Not stored (request bodies are logged only with requestLog.bodies on).</p> : <pre class="body" data-testid="request-body">{pretty(full.data.requestBody)}</pre>}
          <h3>Response body</h3>
          {full.data.responseBody === "" ? <p class="muted">Not stored.</p> : <pre class="body" data-testid="response-body">{pretty(full.data.responseBody)}</pre>}
        </>
      )}
    </section>
  );
}

/** Stored bodies are redacted JSON: indent them for reading. */
function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}
