/**
 * Providers as routing sees them (RoutingService.GetHealth, refreshed every
 * 2 s while the page is open): each upstream key's circuit, requests in
 * flight and cool-down, each target's circuit; and the models served
 * (ModelService.ListModels). Read-only.
 */
import { CircuitState, type ProviderHealth } from "../../../gen/switchyard/v1/routing_pb.ts";
import type { Model } from "../../../gen/switchyard/v1/models_pb.ts";
import { Code, ConnectError } from "@connectrpc/connect";
import { api, describeError } from "../api.ts";
import { ErrorBox } from "../components/error-box.tsx";
import { time } from "../format.ts";
import { useLoad } from "../hooks.ts";

const STATE: Record<CircuitState, string> = {
  [CircuitState.UNSPECIFIED]: "unknown",
  [CircuitState.CLOSED]: "closed",
  [CircuitState.HALF_OPEN]: "half-open",
  [CircuitState.OPEN]: "open",
};

export function ProvidersPage(_: { path: string }) {
  const health = useLoad(() => api.routing.getHealth({}), [], 2000);
  const models = useLoad(() => api.models.listModels({}), []);
  return (
    <>
      <h1>Providers</h1>
      <p class="muted">{health.data !== undefined ? `Live: refreshed every 2 s (${time(Date.now())})` : "Loading…"}</p>
      <ErrorBox error={health.error} />
      <div class="cards">
        {health.data?.providers.map((p) => <ProviderCard key={p.provider} p={p} models={models.data?.models.filter((m) => m.provider === p.provider) ?? []} />)}
      </div>
      {health.data?.providers.length === 0 && <p class="muted">No providers configured.</p>}
      <h2>Models</h2>
      {refused(models.error)
        ? <p class="notice" data-testid="models-refused">The model list is served to inference callers only: {describeError(models.error)}</p>
        : <ErrorBox error={models.error} />}
      <div class="table-wrap">
        <table data-testid="models-table">
          <thead><tr><th scope="col">Model</th><th scope="col">Provider</th><th scope="col">Target</th><th scope="col">Owned by</th></tr></thead>
          <tbody>
            {models.data?.models.map((m) => (
              <tr key={m.id}><td>{m.id}</td><td>{m.provider}</td><td>{m.target}</td><td>{m.ownedBy}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/** ModelService is an inference API: the server may refuse it to admin sessions, which is no failure of this page. */
function refused(err: unknown): boolean {
  return err !== undefined && ConnectError.from(err).code === Code.PermissionDenied;
}

function Circuit({ state }: { state: CircuitState }) {
  return <span class={`circuit circuit-${STATE[state]}`}>{STATE[state]}</span>;
}

function ProviderCard({ p, models }: { p: ProviderHealth; models: Model[] }) {
  const now = Date.now();
  return (
    <section class="card" aria-label={`Provider ${p.provider}`} data-testid={`provider-${p.provider}`}>
      <h2>{p.provider}</h2>
      {models.length > 0 && <p class="muted">{models.length} models</p>}
      <table>
        <caption>Upstream keys</caption>
        <thead><tr><th scope="col">Key</th><th scope="col">Circuit</th><th scope="col" class="num">In flight</th><th scope="col">Cooling until</th></tr></thead>
        <tbody>
          {p.keys.map((k) => (
            <tr key={k.index}>
              <td>#{k.index}</td><td><Circuit state={k.state} /></td><td class="num">{k.inFlight}</td>
              <td>{Number(k.coolingUntilMs) > now ? time(k.coolingUntilMs) : ""}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {p.targets.length > 0 && (
        <table>
          <caption>Targets</caption>
          <thead><tr><th scope="col">Model</th><th scope="col">Circuit</th></tr></thead>
          <tbody>{p.targets.map((t) => <tr key={t.model}><td>{t.model}</td><td><Circuit state={t.state} /></td></tr>)}</tbody>
        </table>
      )}
    </section>
  );
}
