/**
 * One provider as the Providers page shows it: what ProviderService lists
 * (type, base URL, models, key hints, where it is defined) beside the live
 * state RoutingService reports (each key's circuit, requests in flight and
 * cool-down; each target's circuit). Either half may be missing for a moment
 * while the two lists catch up with a change.
 */
import type { ComponentChildren } from "preact";
import { Source, type Provider } from "../../../gen/switchyard/v1/providers_pb.ts";
import { CircuitState, type ProviderHealth } from "../../../gen/switchyard/v1/routing_pb.ts";
import { time } from "../format.ts";
import { providerType } from "../provider-types.ts";

const STATE: Record<CircuitState, string> = {
  [CircuitState.UNSPECIFIED]: "unknown",
  [CircuitState.CLOSED]: "closed",
  [CircuitState.HALF_OPEN]: "half-open",
  [CircuitState.OPEN]: "open",
};

function Circuit({ state }: { state: CircuitState }) {
  return <span class={`circuit circuit-${STATE[state] ?? "unknown"}`}>{STATE[state] ?? "unknown"}</span>;
}

/** Marks what the configuration file defines: read-only in the UI. */
export function SourceBadge({ source }: { source: Source }) {
  if (source !== Source.CONFIG) return null;
  return <span class="badge" data-testid="from-config" title="Defined in the configuration file: change the file to change it">from config file</span>;
}

/** A provider's card; `served` counts its callable models, `children` are the caller's controls. */
export function ProviderCard(props: { id: string; provider?: Provider | undefined; health?: ProviderHealth | undefined; served: number; children?: ComponentChildren }) {
  const { id, provider: p, health: h } = props;
  const now = Date.now();
  const hints = p?.keyHints ?? [];
  const rows = Math.max(hints.length, ...(h?.keys.map((k) => k.index + 1) ?? []));
  const headingId = `provider-h-${id}`;
  return (
    <section class="card" aria-labelledby={headingId} data-testid={`provider-${id}`}>
      <div class="card-head">
        <h2 id={headingId}>{id}</h2>
        {p !== undefined && <SourceBadge source={p.source} />}
      </div>
      {p !== undefined && (
        <dl class="kv">
          <div><dt>Type</dt><dd>{providerType(p.type).label} <span class="muted">({p.type})</span></dd></div>
          <div><dt>Base URL</dt><dd><code>{p.baseUrl}</code></dd></div>
          <div>
            <dt>Models</dt>
            <dd>
              {p.models.length > 0 ? p.models.join(", ") : <span class="muted">as the provider reports</span>}
              {props.served > 0 && <span class="muted"> ({props.served} served)</span>}
            </dd>
          </div>
          {p.headerNames.length > 0 && <div><dt>Extra headers</dt><dd>{p.headerNames.join(", ")}</dd></div>}
        </dl>
      )}
      {rows > 0 ? (
        <table>
          <caption>API keys</caption>
          <thead><tr><th scope="col">Key</th><th scope="col">Circuit</th><th scope="col" class="num">In flight</th><th scope="col">Cooling until</th></tr></thead>
          <tbody>
            {Array.from({ length: rows }, (_, i) => {
              const k = h?.keys.find((x) => x.index === i);
              return (
                <tr key={i}>
                  <td><code data-testid="key-hint">{hints[i] ?? `#${i + 1}`}</code></td>
                  <td>{k !== undefined ? <Circuit state={k.state} /> : <span class="muted">no traffic yet</span>}</td>
                  <td class="num">{k?.inFlight ?? ""}</td>
                  <td>{k !== undefined && Number(k.coolingUntilMs) > now ? time(k.coolingUntilMs) : ""}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      ) : (
        <p class="muted">No API keys.</p>
      )}
      {h !== undefined && h.targets.length > 0 && (
        <table>
          <caption>Targets</caption>
          <thead><tr><th scope="col">Model</th><th scope="col">Circuit</th></tr></thead>
          <tbody>{h.targets.map((t) => <tr key={t.model}><td>{t.model}</td><td><Circuit state={t.state} /></td></tr>)}</tbody>
        </table>
      )}
      {props.children}
    </section>
  );
}
