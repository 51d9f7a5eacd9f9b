/**
 * Aliases and routes (ProviderService.ListRoutes): what model names stand
 * for. With providers.write, admin-made entries can be edited and deleted
 * and new ones added; those from the configuration file are read-only.
 */
import { useState } from "preact/hooks";
import { Source, type Alias, type ListRoutesResponse, type Route } from "../../../gen/switchyard/v1/providers_pb.ts";
import { api } from "../api.ts";
import type { Loaded } from "../hooks.ts";
import { ConfirmButton } from "./confirm-button.tsx";
import { ErrorBox } from "./error-box.tsx";
import { SourceBadge } from "./provider-card.tsx";
import { AliasEditor, optionName, RouteEditor, STICKINESS, STRATEGIES } from "./route-editor.tsx";

/** Both lists with their editors; `onChanged` reloads whatever depends on them (the page's lists). */
export function RoutesSection({ routes, write, onChanged }: { routes: Loaded<ListRoutesResponse>; write: boolean; onChanged: () => void }) {
  const [alias, setAlias] = useState<Alias | undefined>(undefined);
  const [route, setRoute] = useState<Route | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const act = (p: Promise<unknown>): void => {
    setError(undefined);
    p.then(onChanged, setError);
  };
  const saved = (close: () => void) => (ok: boolean): void => {
    close();
    if (ok) onChanged();
  };
  const aliases = routes.data?.aliases ?? [];
  const list = routes.data?.routes ?? [];

  return (
    <>
      <section aria-labelledby="aliases-h">
        <h2 id="aliases-h">Aliases</h2>
        <p class="muted">A model name that stands for one provider's model.</p>
        {write && <AliasEditor key={alias?.name ?? ""} alias={alias} onDone={saved(() => setAlias(undefined))} />}
        <ErrorBox error={routes.error} />
        <ErrorBox error={error} />
        {aliases.length === 0 ? <p class="muted">No aliases.</p> : (
          <div class="table-wrap">
            <table data-testid="aliases-table">
              <thead><tr><th scope="col">Alias</th><th scope="col">Target</th><th scope="col">Actions</th></tr></thead>
              <tbody>
                {aliases.map((a) => (
                  <tr key={a.name} data-testid={`alias-${a.name}`}>
                    <td>{a.name} <SourceBadge source={a.source} /></td>
                    <td>{a.target}</td>
                    <td class="actions">
                      {write && a.source !== Source.CONFIG && (
                        <>
                          <button type="button" onClick={() => setAlias(a)} aria-label={`Edit alias ${a.name}`}>Edit</button>
                          <ConfirmButton label="Delete" question={`Delete alias ${a.name}?`} onConfirm={() => act(api.providers.deleteAlias({ name: a.name }))} />
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section aria-labelledby="routes-h">
        <h2 id="routes-h">Routes</h2>
        <p class="muted">A model name spread over weighted targets, with fallbacks tried in order when they fail.</p>
        {write && <RouteEditor key={route?.name ?? ""} route={route} onDone={saved(() => setRoute(undefined))} />}
        {list.length === 0 ? <p class="muted">No routes.</p> : (
          <div class="table-wrap">
            <table data-testid="routes-table">
              <thead>
                <tr><th scope="col">Route</th><th scope="col">Targets (weight)</th><th scope="col">Strategy</th><th scope="col">Sticky</th><th scope="col">Fallbacks</th><th scope="col">Actions</th></tr>
              </thead>
              <tbody>
                {list.map((r) => (
                  <tr key={r.name} data-testid={`route-${r.name}`}>
                    <td>{r.name} <SourceBadge source={r.source} /></td>
                    <td>{r.targets.map((t) => `${t.model} (${t.weight})`).join(", ")}</td>
                    <td>{optionName(STRATEGIES, r.strategy) || "weighted"}</td>
                    <td>{optionName(STICKINESS, r.sticky) || "none"}</td>
                    <td>{r.fallbacks.join(" → ") || <span class="muted">none</span>}</td>
                    <td class="actions">
                      {write && r.source !== Source.CONFIG && (
                        <>
                          <button type="button" onClick={() => setRoute(r)} aria-label={`Edit route ${r.name}`}>Edit</button>
                          <ConfirmButton label="Delete" question={`Delete route ${r.name}?`} onConfirm={() => act(api.providers.deleteRoute({ name: r.name }))} />
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </>
  );
}
