/**
 * Where traffic goes. Providers as ProviderService lists them (type, base
 * URL, models, key hints, source) beside their live routing state
 * (RoutingService.GetHealth), both refreshed every 2 s while the page is
 * open; aliases and routes (ListRoutes); and every callable model
 * (ModelService.ListModels). Adding, editing and deleting need
 * providers.write, and only what was made here can change: entries from the
 * configuration file are marked and read-only.
 */
import { useState } from "preact/hooks";
import { Source } from "../../../gen/switchyard/v1/providers_pb.ts";
import { api } from "../api.ts";
import { ConfirmButton } from "../components/confirm-button.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { ProviderCard } from "../components/provider-card.tsx";
import { CreateProvider, EditProvider } from "../components/provider-form.tsx";
import { MODEL_CHOICES } from "../components/route-editor.tsx";
import { RoutesSection } from "../components/routes-section.tsx";
import { time } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { useCan } from "../session.ts";

export function ProvidersPage(_: { path: string }) {
  const can = useCan();
  const write = can("providers.write");
  // One poll for both lists, so a provider and its health appear together.
  const live = useLoad(async () => {
    const [list, health] = await Promise.all([api.providers.listProviders({}), api.routing.getHealth({})]);
    return { providers: list.providers, health: health.providers, at: Date.now() };
  }, [], 2000);
  const routes = useLoad(() => api.providers.listRoutes({}), []);
  const models = useLoad(() => api.models.listModels({}), []);
  const [editing, setEditing] = useState("");
  const [failed, setFailed] = useState<{ id: string; error: unknown } | undefined>(undefined);

  const changed = (): void => {
    live.reload();
    routes.reload();
    models.reload();
  };
  const remove = (id: string): void => {
    setFailed(undefined);
    api.providers.deleteProvider({ id }).then(changed, (error: unknown) => setFailed({ id, error }));
  };

  const providers = live.data?.providers ?? [];
  const health = live.data?.health ?? [];
  const ids = [...new Set([...providers.map((p) => p.id), ...health.map((h) => h.provider)])].sort();
  const served = (id: string): number => models.data?.models.filter((m) => m.provider === id && m.target === "").length ?? 0;

  return (
    <>
      <h1>Providers</h1>
      <p class="muted">{live.data !== undefined ? `Live: refreshed every 2 s (${time(live.data.at)})` : "Loading…"}</p>
      {write && <CreateProvider onCreated={changed} />}
      <ErrorBox error={live.error} />
      <div class="cards">
        {ids.map((id) => {
          const p = providers.find((x) => x.id === id);
          const editable = write && p !== undefined && p.source !== Source.CONFIG;
          return (
            <ProviderCard key={id} id={id} provider={p} health={health.find((h) => h.provider === id)} served={served(id)}>
              {editable && editing === id && <EditProvider provider={p} onDone={(saved) => { setEditing(""); if (saved) changed(); }} />}
              {editable && editing !== id && (
                <div class="row">
                  <button type="button" onClick={() => setEditing(id)} aria-label={`Edit provider ${id}`}>Edit</button>
                  <ConfirmButton label="Delete" question={`Delete provider ${id}? Requests to it stop at once.`} onConfirm={() => remove(id)} />
                </div>
              )}
              {failed?.id === id && <ErrorBox error={failed.error} />}
            </ProviderCard>
          );
        })}
      </div>
      {live.data !== undefined && ids.length === 0 && (
        <p class="muted" data-testid="no-providers">No providers yet.{write ? " Add one above: it serves requests as soon as it is saved." : ""}</p>
      )}
      <RoutesSection routes={routes} write={write} onChanged={changed} />
      <h2>Models</h2>
      <p class="muted">Every name a request can use: "provider/model", or an alias.</p>
      <ErrorBox error={models.error} />
      <datalist id={MODEL_CHOICES}>
        {models.data?.models.map((m) => <option key={m.id} value={m.id} />)}
      </datalist>
      <div class="table-wrap">
        <table data-testid="models-table">
          <thead><tr><th scope="col">Model</th><th scope="col">Provider</th><th scope="col">Alias of</th><th scope="col">Owned by</th></tr></thead>
          <tbody>
            {models.data?.models.map((m) => (
              <tr key={m.id}><td>{m.id}</td><td>{m.provider}</td><td>{m.target}</td><td>{m.ownedBy}</td></tr>
            ))}
          </tbody>
        </table>
      </div>
      {models.data?.models.length === 0 && <p class="muted">No models yet.</p>}
    </>
  );
}
