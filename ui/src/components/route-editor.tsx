/**
 * Creating and replacing aliases and routes (ProviderService.SetAlias and
 * SetRoute). Given an existing entry the form edits it (its name fixed);
 * otherwise it makes a new one. Model inputs suggest from the datalist
 * MODEL_CHOICES, which the page fills from ModelService.ListModels.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { RouteSticky, RouteStrategy, type Alias, type Route } from "../../../gen/switchyard/v1/providers_pb.ts";
import { api } from "../api.ts";
import { list } from "../format.ts";
import { ErrorBox } from "./error-box.tsx";

/** The id of the page's <datalist> of callable model names. */
export const MODEL_CHOICES = "model-choices";

/** How a route picks its first target, as the select offers it. */
export const STRATEGIES: readonly [RouteStrategy, string][] = [
  [RouteStrategy.WEIGHTED, "weighted"],
  [RouteStrategy.LEAST_BUSY, "least busy"],
];

/** What keeps a caller on one target of a weighted route, as the select offers it. */
export const STICKINESS: readonly [RouteSticky, string][] = [
  [RouteSticky.NONE, "none"],
  [RouteSticky.USER, "by the request's user"],
  [RouteSticky.SESSION, "by x-session-id"],
];

/** "weighted", "least busy", ...: the option's text, or "" when unknown. */
export const optionName = <T,>(options: readonly [T, string][], v: T): string => options.find(([o]) => o === v)?.[1] ?? "";

/** Focuses the first input of an editor opened on an existing entry. */
function useFocusWhen(editing: boolean) {
  const ref = useRef<HTMLInputElement>(null);
  useEffect(() => {
    if (editing) ref.current?.focus();
  }, []);
  return ref;
}

/** A new alias, or a new target for an existing one (SetAlias replaces). */
export function AliasEditor({ alias, onDone }: { alias?: Alias | undefined; onDone: (saved: boolean) => void }) {
  const [name, setName] = useState(alias?.name ?? "");
  const [target, setTarget] = useState(alias?.target ?? "");
  const [error, setError] = useState<unknown>(undefined);
  const first = useFocusWhen(alias !== undefined);
  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.providers.setAlias({ name: name.trim(), target: target.trim() }).then(() => {
      setName(""); setTarget("");
      onDone(true);
    }, setError);
  };
  const title = alias === undefined ? "New alias" : `Edit alias ${alias.name}`;
  return (
    <form class="panel inline-form" onSubmit={submit} aria-label={title} data-testid="alias-editor">
      <h3>{title}</h3>
      <label>Alias name<input name="alias-name" required readOnly={alias !== undefined} placeholder="e.g. fast" spellcheck={false} value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <label class="wide">
        Target model
        <input ref={first} name="alias-target" required list={MODEL_CHOICES} placeholder="provider/model" spellcheck={false} value={target} onInput={(e) => setTarget(e.currentTarget.value)} />
      </label>
      <button type="submit">Save alias</button>
      {alias !== undefined && <button type="button" onClick={() => onDone(false)}>Cancel</button>}
      <ErrorBox error={error} />
    </form>
  );
}

interface TargetInput {
  model: string;
  weight: string;
}

/** A new route, or an existing one's targets, weights, strategy and fallbacks (SetRoute replaces). */
export function RouteEditor({ route, onDone }: { route?: Route | undefined; onDone: (saved: boolean) => void }) {
  const [name, setName] = useState(route?.name ?? "");
  const [targets, setTargets] = useState<TargetInput[]>(route?.targets.map((t) => ({ model: t.model, weight: String(t.weight) })) ?? [{ model: "", weight: "1" }]);
  const [strategy, setStrategy] = useState<RouteStrategy>(route?.strategy || RouteStrategy.WEIGHTED);
  const [sticky, setSticky] = useState<RouteSticky>(route?.sticky || RouteSticky.NONE);
  const [fallbacks, setFallbacks] = useState(route?.fallbacks.join(", ") ?? "");
  const [error, setError] = useState<unknown>(undefined);
  const first = useFocusWhen(route !== undefined);

  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.providers.setRoute({
      name: name.trim(),
      targets: targets.map((t) => ({ model: t.model.trim(), weight: t.weight.trim() === "" ? 1 : Number(t.weight) })),
      strategy, sticky, fallbacks: list(fallbacks),
    }).then(() => {
      setName(""); setTargets([{ model: "", weight: "1" }]); setFallbacks("");
      onDone(true);
    }, setError);
  };
  const set = (i: number, change: Partial<TargetInput>): void => setTargets(targets.map((t, j) => (j === i ? { ...t, ...change } : t)));
  const title = route === undefined ? "New route" : `Edit route ${route.name}`;

  return (
    <form class="panel inline-form" onSubmit={submit} aria-label={title} data-testid="route-editor">
      <h3>{title}</h3>
      <label>Route name<input name="route-name" required readOnly={route !== undefined} placeholder="e.g. chat-default" spellcheck={false} value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <label>
        Strategy
        <select name="route-strategy" value={strategy} onChange={(e) => setStrategy(Number(e.currentTarget.value) as RouteStrategy)}>
          {STRATEGIES.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
        </select>
      </label>
      <label>
        Sticky
        <select name="route-sticky" value={sticky} onChange={(e) => setSticky(Number(e.currentTarget.value) as RouteSticky)}>
          {STICKINESS.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
        </select>
      </label>
      <fieldset class="group">
        <legend>Targets (the first is picked by weight)</legend>
        {targets.map((t, i) => (
          <span class="group-row" key={i}>
            <label>
              Target {i + 1} model
              <input ref={i === 0 ? first : undefined} name={`route-target-${i}`} required list={MODEL_CHOICES} placeholder="model, alias or provider/model" spellcheck={false}
                value={t.model} onInput={(e) => set(i, { model: e.currentTarget.value })} />
            </label>
            <label>
              Target {i + 1} weight
              <input type="number" name={`route-weight-${i}`} min="0" step="any" class="narrow" value={t.weight} onInput={(e) => set(i, { weight: e.currentTarget.value })} />
            </label>
            {targets.length > 1 && (
              <button type="button" onClick={() => setTargets(targets.filter((_, j) => j !== i))} aria-label={`Remove target ${i + 1}`}>Remove</button>
            )}
          </span>
        ))}
        <button type="button" onClick={() => setTargets([...targets, { model: "", weight: "1" }])}>Add target</button>
      </fieldset>
      <label class="wide">Fallbacks, in order<input name="route-fallbacks" placeholder="none; or anthropic/claude-3-5-haiku, …" spellcheck={false} value={fallbacks} onInput={(e) => setFallbacks(e.currentTarget.value)} /></label>
      <button type="submit">Save route</button>
      {route !== undefined && <button type="button" onClick={() => onDone(false)}>Cancel</button>}
      <ErrorBox error={error} />
    </form>
  );
}
