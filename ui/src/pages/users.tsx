/**
 * People and automation (UserService): users with their grants, and admin
 * API keys (the secret is shown once). Changes need users.write.
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { User } from "../../../gen/switchyard/v1/users_pb.ts";
import type { Customer, Team } from "../../../gen/switchyard/v1/org_pb.ts";
import { api } from "../api.ts";
import { ConfirmButton } from "../components/confirm-button.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { emptyGrant, GrantPicker, grantOf, grantText, type GrantInput } from "../components/grant-picker.tsx";
import { Pager } from "../components/pager.tsx";
import { SecretOnce } from "../components/secret-once.tsx";
import { time } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { useCan } from "../session.ts";

export function UsersPage(_: { path: string }) {
  const can = useCan();
  const [tokens, setTokens] = useState<string[]>([]);
  const users = useLoad(() => api.users.listUsers({ pageSize: 100, pageToken: tokens.at(-1) ?? "" }), [tokens]);
  const org = useLoad(async () => {
    if (!can("org.read")) return { customers: [], teams: [] };
    const [c, t] = await Promise.all([api.org.listCustomers({ pageSize: 1000 }), api.org.listTeams({ pageSize: 1000 })]);
    return { customers: c.customers, teams: t.teams };
  }, []);
  const [editing, setEditing] = useState("");
  const [error, setError] = useState<unknown>(undefined);
  const customers = org.data?.customers ?? [];
  const teams = org.data?.teams ?? [];
  const write = can("users.write");

  const act = (p: Promise<unknown>): void => {
    setError(undefined);
    p.then(users.reload, setError);
  };

  return (
    <>
      <h1>Users</h1>
      <section aria-labelledby="people-h">
        <h2 id="people-h">People</h2>
        {write && <CreateUser customers={customers} teams={teams} onCreated={users.reload} />}
        <ErrorBox error={error} />
        <ErrorBox error={users.error} />
        {users.data?.users.filter((u) => u.id === editing).map((u) => (
          <GrantsEditor key={u.id} user={u} customers={customers} teams={teams} onDone={(saved) => { setEditing(""); if (saved) users.reload(); }} />
        ))}
        <div class="table-wrap">
          <table data-testid="users-table">
            <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col">Grants</th><th scope="col">Sign-in</th><th scope="col">Last login</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {users.data?.users.map((u) => (
                <tr key={u.id} class={u.disabled ? "muted" : ""}>
                  <td>{u.email}</td><td>{u.name}</td>
                  <td>{u.grants.map(grantText).join("; ") || <span class="muted">none</span>}</td>
                  <td>{[u.hasPassword && "password", u.ssoSubject !== "" && "SSO", u.disabled && "disabled"].filter(Boolean).join(", ")}</td>
                  <td>{time(u.lastLoginAt)}</td>
                  <td class="actions">
                    {write && (
                      <>
                        <button type="button" onClick={() => setEditing(u.id)} aria-label={`Edit grants of ${u.email}`}>Grants</button>
                        <button type="button" onClick={() => act(api.users.updateUser({ id: u.id, disabled: !u.disabled }))} aria-label={`${u.disabled ? "Enable" : "Disable"} ${u.email}`}>
                          {u.disabled ? "Enable" : "Disable"}
                        </button>
                        <ConfirmButton label="Delete" question={`Delete ${u.email}?`} onConfirm={() => act(api.users.deleteUser({ id: u.id }))} />
                      </>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <Pager tokens={tokens} next={users.data?.nextPageToken ?? ""} onPage={setTokens} />
      </section>
      <ApiKeys customers={customers} teams={teams} write={write} />
    </>
  );
}

function CreateUser({ customers, teams, onCreated }: { customers: Customer[]; teams: Team[]; onCreated: () => void }) {
  const [email, setEmail] = useState("");
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [grant, setGrant] = useState<GrantInput>(emptyGrant());
  const [error, setError] = useState<unknown>(undefined);
  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.users.createUser({ email, name, ...(password === "" ? {} : { password }), grants: [grantOf(grant)] }).then(() => {
      setEmail(""); setName(""); setPassword(""); setGrant(emptyGrant());
      onCreated();
    }, setError);
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-labelledby="new-user-h" data-testid="create-user">
      <h3 id="new-user-h">New user</h3>
      <label>Email<input type="email" name="user-email" required autoComplete="off" value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></label>
      <label>Name<input name="user-name" value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <label>Password<input type="password" name="user-password" autoComplete="new-password" placeholder="none: SSO only" value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
      <GrantPicker value={grant} onChange={setGrant} customers={customers} teams={teams} idPrefix="new-user" />
      <button type="submit">Create user</button>
      <ErrorBox error={error} />
    </form>
  );
}

function GrantsEditor({ user, customers, teams, onDone }: { user: User; customers: Customer[]; teams: Team[]; onDone: (saved: boolean) => void }) {
  const [grants, setGrants] = useState(user.grants.map((g) => ({ role: g.role, scope: g.scope })));
  const [adding, setAdding] = useState<GrantInput>(emptyGrant());
  const [error, setError] = useState<unknown>(undefined);
  const box = useRef<HTMLElement>(null);
  useEffect(() => box.current?.focus(), []);
  const save = (): void => {
    api.users.setGrants({ userId: user.id, grants }).then(() => onDone(true), setError);
  };
  return (
    <section class="panel" ref={box} tabIndex={-1} aria-label={`Grants of ${user.email}`} data-testid="grants-editor">
      <h3>Grants of {user.email}</h3>
      <ul>
        {grants.map((g, i) => (
          <li key={i}>
            {grantText({ ...g, $typeName: "switchyard.v1.Grant" })}{" "}
            <button type="button" onClick={() => setGrants(grants.filter((_, j) => j !== i))} aria-label={`Remove grant ${grantText({ ...g, $typeName: "switchyard.v1.Grant" })}`}>Remove</button>
          </li>
        ))}
        {grants.length === 0 && <li class="muted">No grants: this user can sign in but see nothing.</li>}
      </ul>
      <form class="inline-form" aria-label="Add a grant" onSubmit={(e) => { e.preventDefault(); setGrants([...grants, grantOf(adding)]); setAdding(emptyGrant()); }}>
        <GrantPicker value={adding} onChange={setAdding} customers={customers} teams={teams} idPrefix={`grant-${user.id}`} />
        <button type="submit">Add grant</button>
      </form>
      <div class="row">
        <button type="button" onClick={save}>Save grants</button>
        <button type="button" onClick={() => onDone(false)}>Cancel</button>
      </div>
      <ErrorBox error={error} />
    </section>
  );
}

function ApiKeys({ customers, teams, write }: { customers: Customer[]; teams: Team[]; write: boolean }) {
  const [includeRevoked, setIncludeRevoked] = useState(false);
  const keys = useLoad(() => api.users.listApiKeys({ includeRevoked }), [includeRevoked]);
  const [name, setName] = useState("");
  const [grant, setGrant] = useState<GrantInput>(emptyGrant());
  const [expires, setExpires] = useState("");
  const [secret, setSecret] = useState<{ label: string; value: string } | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);

  const create = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.users.createApiKey({
      name,
      grants: [grantOf(grant)],
      ...(expires === "" ? {} : { expiresAt: timestampFromMs(new Date(`${expires}T23:59:59`).getTime()) }),
    }).then((r) => {
      setSecret({ label: `Admin API key ${r.key?.name ?? name}`, value: r.secret });
      setName(""); setGrant(emptyGrant()); setExpires("");
      keys.reload();
    }, setError);
  };

  return (
    <section aria-labelledby="apikeys-h">
      <h2 id="apikeys-h">Admin API keys</h2>
      {secret !== undefined && <SecretOnce label={secret.label} secret={secret.value} onDone={() => setSecret(undefined)} />}
      {write && (
        <form class="panel inline-form" onSubmit={create} aria-labelledby="new-admin-api-key-h" data-testid="create-api-key">
          <h3 id="new-admin-api-key-h">New admin API key</h3>
          <label>Key name<input name="apikey-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
          <GrantPicker value={grant} onChange={setGrant} customers={customers} teams={teams} idPrefix="new-apikey" />
          <label>Expires on<input type="date" name="apikey-expires" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} /></label>
          <button type="submit">Create admin API key</button>
        </form>
      )}
      <label class="check">
        <input type="checkbox" name="apikeys-include-revoked" checked={includeRevoked} onChange={(e) => setIncludeRevoked(e.currentTarget.checked)} />
        Include revoked
      </label>
      <ErrorBox error={error} />
      <ErrorBox error={keys.error} />
      <div class="table-wrap">
        <table data-testid="apikeys-table">
          <thead><tr><th scope="col">Name</th><th scope="col">Key</th><th scope="col">Grants</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Actions</th></tr></thead>
          <tbody>
            {keys.data?.keys.map((k) => (
              <tr key={k.id} class={k.revokedAt !== undefined ? "muted" : ""}>
                <td>{k.name}</td><td><code>{k.hint}</code></td><td>{k.grants.map(grantText).join("; ")}</td>
                <td>{time(k.createdAt)}{k.createdBy !== "" && <span class="muted"> by {k.createdBy}</span>}</td>
                <td>{k.revokedAt !== undefined ? `revoked ${time(k.revokedAt)}` : time(k.expiresAt)}</td>
                <td class="actions">
                  {write && k.revokedAt === undefined && <ConfirmButton label="Revoke" question={`Revoke ${k.name}?`} onConfirm={() => { setError(undefined); api.users.revokeApiKey({ id: k.id }).then(keys.reload, setError); }} />}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  );
}
