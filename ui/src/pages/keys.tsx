/**
 * Virtual keys (KeyService): list, create and rotate (the secret is shown
 * once), edit, revoke; each key's spend against its budget. Changes need
 * keys.write, budgets budgets.write.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { Team } from "../../../gen/switchyard/v1/org_pb.ts";
import type { VirtualKey } from "../../../gen/switchyard/v1/keys_pb.ts";
import { api } from "../api.ts";
import { BudgetBar } from "../components/budget-bar.tsx";
import { BudgetEditor, LimitsFields, limitsInput, limitsOf } from "../components/budget-editor.tsx";
import { BudgetFields, budgetOf, emptyBudget } from "../components/budget-fields.tsx";
import { ConfirmButton } from "../components/confirm-button.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { Pager } from "../components/pager.tsx";
import { SecretOnce } from "../components/secret-once.tsx";
import { list, time } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { useCan } from "../session.ts";

export function KeysPage(_: { path: string }) {
  const can = useCan();
  const teams = useLoad(() => api.org.listTeams({ pageSize: 1000 }), []);
  const [teamId, setTeamId] = useState("");
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const [tokens, setTokens] = useState<string[]>([]);
  const keys = useLoad(() => api.keys.listKeys({ teamId, includeRevoked, pageSize: 100, pageToken: tokens.at(-1) ?? "" }), [teamId, includeRevoked, tokens]);
  const [secret, setSecret] = useState<{ label: string; value: string } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [editing, setEditing] = useState("");
  const [version, setVersion] = useState(0);

  const act = (p: Promise<unknown>): void => {
    setError(undefined);
    p.then(keys.reload, setError);
  };
  const done = (saved: boolean): void => {
    setEditing("");
    if (saved) {
      setVersion(version + 1);
      keys.reload();
    }
  };

  return (
    <>
      <h1>Keys</h1>
      {secret !== undefined && <SecretOnce label={secret.label} secret={secret.value} onDone={() => setSecret(undefined)} />}
      {can("keys.write") && (
        <CreateKey teams={teams.data?.teams ?? []} onCreated={(label, value) => { setSecret({ label, value }); keys.reload(); }} />
      )}
      {keys.data?.keys.filter((k) => editing === `e:${k.id}`).map((k) => <EditKey key={k.id} vkey={k} teams={teams.data?.teams ?? []} onDone={done} />)}
      <div class="row">
        <label>
          Team
          <select name="keys-team-filter" value={teamId} onChange={(e) => { setTokens([]); setTeamId(e.currentTarget.value); }}>
            <option value="">all teams</option>
            {teams.data?.teams.map((t) => <option key={t.id} value={t.id}>{t.name || t.id}</option>)}
          </select>
        </label>
        <label class="check">
          <input type="checkbox" name="include-revoked" checked={includeRevoked} onChange={(e) => { setTokens([]); setIncludeRevoked(e.currentTarget.checked); }} />
          Include revoked
        </label>
      </div>
      <ErrorBox error={error} />
      <ErrorBox error={keys.error} />
      <div class="table-wrap">
        <table data-testid="keys-table">
          <thead>
            <tr>
              <th scope="col">Name</th><th scope="col">Key</th><th scope="col">Team</th><th scope="col">Models</th>
              <th scope="col">State</th><th scope="col">Spend</th><th scope="col">Created</th><th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {keys.data?.keys.map((k) => (
              <tr key={k.id} data-testid={`key-${k.id}`}>
                <td>{k.name}</td>
                <td><code>{k.hint}</code><br /><span class="muted">{k.id}</span></td>
                <td>{k.teamId}</td>
                <td>{k.allowedModels.join(", ") || <span class="muted">all</span>}</td>
                <td>{k.revokedAt !== undefined ? "revoked" : k.enabled ? "enabled" : "disabled"}</td>
                <td>
                  {editing === `b:${k.id}`
                    ? <BudgetEditor scope={{ case: "keyId", value: k.id }} budget={k.budget} limits={k.limits} withLimits onDone={done} />
                    : <BudgetBar scope={{ case: "keyId", value: k.id }} name={k.id} version={version} />}
                </td>
                <td>{time(k.createdAt)}</td>
                <td class="actions">
                  {k.revokedAt === undefined && can("keys.write") && (
                    <>
                      <button type="button" onClick={() => setEditing(`e:${k.id}`)} aria-label={`Edit key ${k.name}`}>Edit</button>
                      <ConfirmButton label="Rotate" class="" question={`Rotate ${k.name}? The old secret stops working.`}
                        onConfirm={() => act(api.keys.rotateKey({ id: k.id }).then((r) => setSecret({ label: `New secret for ${k.name}`, value: r.secret })))} />
                      <ConfirmButton label="Revoke" question={`Revoke ${k.name} for good?`} onConfirm={() => act(api.keys.revokeKey({ id: k.id }))} />
                    </>
                  )}
                  {k.revokedAt === undefined && can("budgets.write") && editing !== `b:${k.id}` && (
                    <button type="button" onClick={() => setEditing(`b:${k.id}`)} aria-label={`Edit budget of key ${k.name}`}>Budget</button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {keys.data?.keys.length === 0 && <p class="muted">No keys.</p>}
      <Pager tokens={tokens} next={keys.data?.nextPageToken ?? ""} onPage={setTokens} />
    </>
  );
}

function CreateKey({ teams, onCreated }: { teams: Team[]; onCreated: (label: string, secret: string) => void }) {
  const [name, setName] = useState("");
  const [teamId, setTeamId] = useState("");
  const [models, setModels] = useState("");
  const [budget, setBudget] = useState(emptyBudget());
  const [limits, setLimits] = useState(limitsInput());
  const [error, setError] = useState<unknown>(undefined);
  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.keys.createKey({ name, teamId, allowedModels: list(models), budget: budgetOf(budget), limits: limitsOf(limits) }).then((r) => {
      setName(""); setModels(""); setBudget(emptyBudget()); setLimits(limitsInput());
      onCreated(`Secret of ${r.key?.name ?? name}`, r.secret);
    }, setError);
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-labelledby="new-key-h" data-testid="create-key">
      <h3 id="new-key-h">New key</h3>
      <label>Key name<input name="key-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <TeamSelect teams={teams} value={teamId} onChange={setTeamId} name="key-team" />
      <label>Allowed models<input name="key-models" placeholder="all; or gpt-4o*, openai/gpt-4o-mini" value={models} onInput={(e) => setModels(e.currentTarget.value)} /></label>
      <BudgetFields value={budget} onChange={setBudget} idPrefix="new-key" />
      <LimitsFields value={limits} onChange={setLimits} idPrefix="new-key" />
      <button type="submit">Create key</button>
      <ErrorBox error={error} />
    </form>
  );
}

function TeamSelect({ teams, value, onChange, name }: { teams: Team[]; value: string; onChange: (v: string) => void; name: string }) {
  return (
    <label>
      Team
      <select name={name} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">none</option>
        {teams.map((t) => <option key={t.id} value={t.id}>{t.name || t.id}</option>)}
      </select>
    </label>
  );
}

/** Name, team, allowed models and the enabled switch; budget and limits have their own editor. */
function EditKey({ vkey, teams, onDone }: { vkey: VirtualKey; teams: Team[]; onDone: (saved: boolean) => void }) {
  const [name, setName] = useState(vkey.name);
  const [teamId, setTeamId] = useState(vkey.teamId);
  const [models, setModels] = useState(vkey.allowedModels.join(", "));
  const [enabled, setEnabled] = useState(vkey.enabled);
  const [error, setError] = useState<unknown>(undefined);
  const first = useRef<HTMLInputElement>(null);
  useEffect(() => first.current?.focus(), []);
  const submit = (e: Event): void => {
    e.preventDefault();
    const allowed = list(models);
    api.keys.updateKey({
      id: vkey.id, name, enabled,
      ...(teamId !== vkey.teamId ? { teamId } : {}),
      allowedModels: allowed, clearAllowedModels: allowed.length === 0,
    }).then(() => onDone(true), setError);
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-label={`Edit key ${vkey.name}`} data-testid="edit-key">
      <h2>Edit {vkey.name}</h2>
      <label>Key name<input ref={first} name="edit-key-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <TeamSelect teams={teams} value={teamId} onChange={setTeamId} name="edit-key-team" />
      <label>Allowed models<input name="edit-key-models" placeholder="all" value={models} onInput={(e) => setModels(e.currentTarget.value)} /></label>
      <label class="check"><input type="checkbox" name="edit-key-enabled" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />Enabled</label>
      <button type="submit">Save key</button>
      <button type="button" onClick={() => onDone(false)}>Cancel</button>
      <ErrorBox error={error} />
    </form>
  );
}
