/**
 * The response cache (CacheService): counters, and purging by key, team,
 * customer or model, or everything, after a confirmation. Purging needs
 * cache.purge.
 */
import { useState } from "preact/hooks";
import { api } from "../api.ts";
import { ConfirmButton } from "../components/confirm-button.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { bytes, int, usd } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { useCan } from "../session.ts";

const SCOPES = [
  ["all", "Everything"],
  ["keyId", "One key (id)"],
  ["teamId", "One team (id)"],
  ["customerId", "One customer (id)"],
  ["model", "One model"],
] as const;

type Scope = (typeof SCOPES)[number][0];

export function CachePage(_: { path: string }) {
  const can = useCan();
  const stats = useLoad(() => api.cache.getCacheStats({}), [], 5000);
  const [scope, setScope] = useState<Scope>("all");
  const [value, setValue] = useState("");
  const [result, setResult] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const s = stats.data;

  const purge = (): void => {
    setError(undefined);
    setResult("");
    const req = scope === "all" ? { all: true } : { [scope]: value.trim() };
    api.cache.purgeCache(req).then((r) => {
      setResult(`Purged ${int(r.purged)} entries.`);
      stats.reload();
    }, setError);
  };
  const target = scope === "all" ? "the whole cache" : `the cache of ${scope === "model" ? "model" : scope.replace("Id", "")} ${value.trim()}`;

  return (
    <>
      <h1>Cache</h1>
      <ErrorBox error={stats.error} />
      {s !== undefined && (
        <dl class="stats" data-testid="cache-stats">
          {([
            ["Store", s.store], ["Entries", int(s.entries)], ["Semantic entries", int(s.semanticEntries)],
            ["Size", `${bytes(s.bytes)} of ${bytes(s.maxBytes)}`], ["Hits", int(s.hits)], ["Semantic hits", int(s.semanticHits)],
            ["Misses", int(s.misses)], ["Bypasses", int(s.bypasses)], ["Evictions", int(s.evictions)], ["Expired", int(s.expired)],
            ["Saved", usd(s.savedUsd)],
          ] as const).map(([k, v]) => <div class="stat" key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
        </dl>
      )}
      {can("cache.purge") && (
        <section aria-labelledby="purge-h">
          <h2 id="purge-h">Purge</h2>
          <form class="inline-form" onSubmit={(e) => e.preventDefault()} aria-label="Purge the cache">
            <label>
              What to purge
              <select name="purge-scope" value={scope} onChange={(e) => setScope(e.currentTarget.value as Scope)}>
                {SCOPES.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
              </select>
            </label>
            {scope !== "all" && (
              <label>{scope === "model" ? "Model" : "Id"}<input name="purge-value" required value={value} onInput={(e) => setValue(e.currentTarget.value)} /></label>
            )}
            <ConfirmButton label="Purge" question={`Purge ${target}?`} disabled={scope !== "all" && value.trim() === ""} onConfirm={purge} />
          </form>
          <p role="status">{result}</p>
          <ErrorBox error={error} />
        </section>
      )}
    </>
  );
}
