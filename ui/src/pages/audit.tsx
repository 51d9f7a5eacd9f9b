/**
 * The audit log (AuditService): whether its hash chain verifies, shown
 * first; events with filters and pages; and an export of the filtered time
 * range as a JSONL download (ExportAudit streams it in chunks).
 */
import { useState } from "preact/hooks";
import type { AuditEvent, VerifyAuditResponse } from "../../../gen/switchyard/v1/audit_pb.ts";
import { api } from "../api.ts";
import { ErrorBox } from "../components/error-box.tsx";
import { Pager } from "../components/pager.tsx";
import { fromLocalInput, int, time } from "../format.ts";
import { useLoad, type Loaded } from "../hooks.ts";

interface Filters {
  from: string;
  to: string;
  actor: string;
  action: string;
  target: string;
}

const EMPTY: Filters = { from: "", to: "", actor: "", action: "", target: "" };

export function AuditPage(_: { path: string }) {
  const verify = useLoad(() => api.audit.verifyAudit({}), []);
  const [form, setForm] = useState<Filters>(EMPTY);
  const [applied, setApplied] = useState<Filters>(EMPTY);
  const [tokens, setTokens] = useState<string[]>([]);
  const events = useLoad(() => api.audit.listAuditEvents({
    startTimeMs: BigInt(fromLocalInput(applied.from)),
    endTimeMs: BigInt(fromLocalInput(applied.to)),
    actorId: applied.actor.trim(),
    action: applied.action.trim(),
    target: applied.target.trim(),
    pageSize: 50,
    pageToken: tokens.at(-1) ?? "",
  }), [applied, tokens]);
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState<unknown>(undefined);
  const set = (k: keyof Filters) => (e: Event): void => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });

  const exportJsonl = async (): Promise<void> => {
    setExporting(true);
    setExportError(undefined);
    try {
      const parts: Uint8Array<ArrayBuffer>[] = [];
      for await (const chunk of api.audit.exportAudit({ startTimeMs: BigInt(fromLocalInput(applied.from)), endTimeMs: BigInt(fromLocalInput(applied.to)) })) {
        parts.push(new Uint8Array(chunk.jsonl));
      }
      const url = URL.createObjectURL(new Blob(parts, { type: "application/x-ndjson" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `switchyard-audit-${new Date().toISOString().slice(0, 19).replace(/:/g, "")}.jsonl`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setExportError(err);
    } finally {
      setExporting(false);
    }
  };

  return (
    <>
      <h1>Audit</h1>
      <Verification v={verify} />
      <form class="filters" aria-label="Filter audit events" onSubmit={(e) => { e.preventDefault(); setTokens([]); setApplied(form); }}>
        <label>From<input type="datetime-local" name="audit-from" value={form.from} onInput={set("from")} /></label>
        <label>To<input type="datetime-local" name="audit-to" value={form.to} onInput={set("to")} /></label>
        <label>Actor id<input name="audit-actor" value={form.actor} onInput={set("actor")} /></label>
        <label>Action<input name="audit-action" placeholder="e.g. key.create" value={form.action} onInput={set("action")} /></label>
        <label>Target<input name="audit-target" value={form.target} onInput={set("target")} /></label>
        <div class="row">
          <button type="submit">Search</button>
          <button type="button" onClick={() => { setForm(EMPTY); setTokens([]); setApplied(EMPTY); }}>Clear</button>
          <button type="button" onClick={events.reload}>Refresh</button>
          <button type="button" onClick={() => void exportJsonl()} disabled={exporting}>{exporting ? "Exporting…" : "Export JSONL"}</button>
        </div>
      </form>
      <ErrorBox error={exportError} />
      <ErrorBox error={events.error} />
      <div class="table-wrap">
        <table data-testid="audit-table">
          <thead>
            <tr><th scope="col" class="num">Seq</th><th scope="col">Time</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Target</th><th scope="col">Outcome</th><th scope="col">Details</th></tr>
          </thead>
          <tbody>
            {events.data?.events.map((e) => <Row key={String(e.seq)} e={e} />)}
          </tbody>
        </table>
      </div>
      {events.data?.events.length === 0 && <p class="muted">No events match.</p>}
      <Pager tokens={tokens} next={events.data?.nextPageToken ?? ""} onPage={setTokens} />
    </>
  );
}

function Verification({ v }: { v: Loaded<VerifyAuditResponse> }) {
  if (v.error !== undefined) return <ErrorBox error={v.error} />;
  const r = v.data;
  return (
    <div class={`verify ${r === undefined ? "" : r.ok ? "ok" : "bad"}`} role={r !== undefined && !r.ok ? "alert" : "status"} data-testid="audit-verify">
      {r === undefined
        ? "Verifying the audit chain…"
        : r.ok
          ? <><strong>Audit chain verified.</strong> {int(r.checked)} events checked; head #{String(r.headSeq)} <code>{r.headHash.slice(0, 16)}</code></>
          : <><strong>Audit chain broken at event #{String(r.firstBadSeq)}:</strong> {r.problem} ({int(r.checked)} events checked)</>}
      {" "}<button type="button" onClick={v.reload} disabled={v.loading}>Verify again</button>
    </div>
  );
}

function Row({ e }: { e: AuditEvent }) {
  return (
    <tr class={e.outcome === "ok" || e.outcome === "" ? "" : "bad"}>
      <td class="num">{String(e.seq)}</td>
      <td>{time(e.timeMs)}</td>
      <td>{e.actorLabel || e.actorId}</td>
      <td>{e.action}</td>
      <td>{e.target}</td>
      <td>{e.outcome}</td>
      <td>
        <details>
          <summary>Show</summary>
          <dl class="kv">
            <div><dt>Actor id</dt><dd>{e.actorId}</dd></div>
            <div><dt>Source IP</dt><dd>{e.sourceIp}</dd></div>
            <div><dt>Request id</dt><dd>{e.requestId}</dd></div>
            <div><dt>Hash</dt><dd><code>{e.hash}</code></dd></div>
          </dl>
          {e.beforeJson !== "" && <><h4>Before</h4><pre>{pretty(e.beforeJson)}</pre></>}
          {e.afterJson !== "" && <><h4>After</h4><pre>{pretty(e.afterJson)}</pre></>}
        </details>
      </td>
    </tr>
  );
}

function pretty(json: string): string {
  try {
    return JSON.stringify(JSON.parse(json), null, 2);
  } catch {
    return json;
  }
}
