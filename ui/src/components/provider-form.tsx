/**
 * Adding and editing providers (ProviderService.CreateProvider and
 * UpdateProvider). API keys are typed into password inputs and never come
 * back: editing shows only their hints and replaces them as a whole.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "preact/hooks";
import type { Provider } from "../../../gen/switchyard/v1/providers_pb.ts";
import { api } from "../api.ts";
import { list } from "../format.ts";
import { baseUrlPlaceholder, PROVIDER_TYPES, providerType } from "../provider-types.ts";
import { ErrorBox } from "./error-box.tsx";

/** "Name: value" lines → headers; a line without a colon is refused like a server refusal. */
export function headersOf(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter((l) => l !== "")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new ConnectError(`extra headers: '${line}' is not "Name: value"`, Code.InvalidArgument);
    out[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return out;
}

const typed = (keys: string[]): string[] => keys.map((k) => k.trim()).filter((k) => k !== "");

/** One password input per API key, with buttons to add and remove inputs. */
function KeyInputs(props: { keys: string[]; onChange: (keys: string[]) => void; legend: string; prefix: string; disabled?: boolean }) {
  const { keys, onChange, prefix } = props;
  const name = (i: number): string => (keys.length === 1 ? "API key" : `API key ${i + 1}`);
  return (
    <fieldset class="group" disabled={props.disabled}>
      <legend>{props.legend}</legend>
      {keys.map((k, i) => (
        <span class="group-row" key={i}>
          <label>
            {name(i)}
            <input type="password" name={`${prefix}-key-${i}`} autoComplete="new-password" spellcheck={false} value={k}
              onInput={(e) => onChange(keys.map((old, j) => (j === i ? e.currentTarget.value : old)))} />
          </label>
          {keys.length > 1 && (
            <button type="button" onClick={() => onChange(keys.filter((_, j) => j !== i))} aria-label={`Remove ${name(i)}`}>Remove</button>
          )}
        </span>
      ))}
      <button type="button" onClick={() => onChange([...keys, ""])}>Add another key</button>
    </fieldset>
  );
}

function HeadersInput(props: { value: string; onChange: (v: string) => void; name: string; label: string; placeholder: string; disabled?: boolean }) {
  return (
    <label>
      {props.label}
      <textarea name={props.name} rows={2} placeholder={props.placeholder} disabled={props.disabled} value={props.value}
        onInput={(e) => props.onChange(e.currentTarget.value)} />
    </label>
  );
}

/** The "Add provider" form; the type picks the base URL placeholder and whether a key is required. */
export function CreateProvider({ onCreated }: { onCreated: (p: Provider | undefined) => void }) {
  const [type, setType] = useState("openai");
  const [id, setId] = useState("");
  const [baseUrl, setBaseUrl] = useState("");
  const [keys, setKeys] = useState([""]);
  const [models, setModels] = useState("");
  const [headers, setHeaders] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const t = providerType(type);

  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    let h: Record<string, string>;
    try {
      h = headersOf(headers);
    } catch (err) {
      setError(err);
      return;
    }
    api.providers.createProvider({ id: id.trim() || type, type, baseUrl: baseUrl.trim(), apiKeys: typed(keys), models: list(models), headers: h }).then((r) => {
      setId(""); setBaseUrl(""); setKeys([""]); setModels(""); setHeaders("");
      onCreated(r.provider);
    }, setError);
  };

  return (
    <form class="panel inline-form" onSubmit={submit} aria-labelledby="new-provider-h" data-testid="create-provider">
      <h3 id="new-provider-h">Add provider</h3>
      <label>
        Type
        <select name="provider-type" value={type} onChange={(e) => setType(e.currentTarget.value)}>
          {PROVIDER_TYPES.map((p) => <option key={p.type} value={p.type}>{p.label} ({p.type})</option>)}
        </select>
      </label>
      <label>Provider id<input name="provider-id" placeholder={type} autoComplete="off" spellcheck={false} value={id} onInput={(e) => setId(e.currentTarget.value)} /></label>
      <label class="wide">
        Base URL
        <input type="url" name="provider-base-url" required={t.defaultBaseUrl === ""} placeholder={baseUrlPlaceholder(t)} value={baseUrl} onInput={(e) => setBaseUrl(e.currentTarget.value)} />
      </label>
      <KeyInputs keys={keys} onChange={setKeys} legend={t.needsKey ? "API keys (at least one; requests rotate over them)" : "API keys (optional)"} prefix="provider" />
      <label class="wide">Models<input name="provider-models" placeholder="as the provider's model list reports; or gpt-4o, gpt-4o-mini" value={models} onInput={(e) => setModels(e.currentTarget.value)} /></label>
      <HeadersInput value={headers} onChange={setHeaders} name="provider-headers" label="Extra headers (not secret)" placeholder="OpenAI-Organization: org-…" />
      <button type="submit">Add provider</button>
      <ErrorBox error={error} />
    </form>
  );
}

/**
 * Changes an admin-made provider. Fields left as they are are not sent
 * (UpdateProvider keeps them); keys typed here replace all current keys.
 */
export function EditProvider({ provider: p, onDone }: { provider: Provider; onDone: (saved: boolean) => void }) {
  const t = providerType(p.type);
  const [baseUrl, setBaseUrl] = useState(p.baseUrl);
  const [keys, setKeys] = useState([""]);
  const [clearKeys, setClearKeys] = useState(false);
  const [models, setModels] = useState(p.models.join(", "));
  const [headers, setHeaders] = useState("");
  const [clearHeaders, setClearHeaders] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);

  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    let h: Record<string, string>;
    try {
      h = clearHeaders ? {} : headersOf(headers);
    } catch (err) {
      setError(err);
      return;
    }
    const m = list(models);
    const url = baseUrl.trim();
    api.providers.updateProvider({
      id: p.id,
      ...(url !== p.baseUrl ? { baseUrl: url } : {}),
      apiKeys: clearKeys ? [] : typed(keys),
      clearApiKeys: clearKeys,
      ...(m.join("\n") === p.models.join("\n") ? {} : m.length === 0 ? { clearModels: true } : { models: m }),
      headers: h,
      clearHeaders,
    }).then(() => onDone(true), setError);
  };

  const hints = p.keyHints.join(", ");
  return (
    <form class="inline-form" onSubmit={submit} aria-label={`Edit provider ${p.id}`} data-testid="edit-provider">
      <label class="wide">
        Base URL
        <input ref={first} type="url" name="edit-provider-base-url" placeholder={t.defaultBaseUrl !== "" ? `${t.defaultBaseUrl} (empty: this default)` : baseUrlPlaceholder(t)}
          required={t.defaultBaseUrl === ""} value={baseUrl} onInput={(e) => setBaseUrl(e.currentTarget.value)} />
      </label>
      <KeyInputs keys={keys} onChange={setKeys} prefix="edit-provider" disabled={clearKeys}
        legend={p.keyCount === 0 ? "API keys (none now)" : `Replace API keys (empty keeps the current ${p.keyCount}: ${hints})`} />
      {p.keyCount > 0 && (
        <label class="check"><input type="checkbox" name="edit-provider-clear-keys" checked={clearKeys} onChange={(e) => setClearKeys(e.currentTarget.checked)} />Remove all API keys</label>
      )}
      <label class="wide">Models<input name="edit-provider-models" placeholder="as the provider's model list reports" value={models} onInput={(e) => setModels(e.currentTarget.value)} /></label>
      <HeadersInput value={headers} onChange={setHeaders} name="edit-provider-headers" disabled={clearHeaders}
        label={p.headerNames.length === 0 ? "Extra headers" : `Replace extra headers (empty keeps ${p.headerNames.join(", ")})`} placeholder="Name: value, one per line" />
      {p.headerNames.length > 0 && (
        <label class="check"><input type="checkbox" name="edit-provider-clear-headers" checked={clearHeaders} onChange={(e) => setClearHeaders(e.currentTarget.checked)} />Remove extra headers</label>
      )}
      <button type="submit">Save provider</button>
      <button type="button" onClick={() => onDone(false)}>Cancel</button>
      <ErrorBox error={error} />
    </form>
  );
}
