/**
 * Customers and their teams (OrgService), each with its spend against its
 * budget (BudgetService). Creating and deleting needs org.write; budgets
 * need budgets.write.
 */
import { useState } from "preact/hooks";
import type { Customer, Team } from "../../../gen/switchyard/v1/org_pb.ts";
import { api } from "../api.ts";
import { BudgetBar } from "../components/budget-bar.tsx";
import { BudgetEditor, LimitsFields, limitsInput, limitsOf } from "../components/budget-editor.tsx";
import { BudgetFields, budgetOf, emptyBudget } from "../components/budget-fields.tsx";
import { ConfirmButton } from "../components/confirm-button.tsx";
import { ErrorBox } from "../components/error-box.tsx";
import { useLoad } from "../hooks.ts";
import { useCan } from "../session.ts";

export function OrgPage(_: { path: string }) {
  const can = useCan();
  const customers = useLoad(() => api.org.listCustomers({ pageSize: 1000 }), []);
  const [customerFilter, setCustomerFilter] = useState("");
  const teams = useLoad(() => api.org.listTeams({ customerId: customerFilter, pageSize: 1000 }), [customerFilter]);
  const [error, setError] = useState<unknown>(undefined);
  const [editing, setEditing] = useState("");
  const [version, setVersion] = useState(0);

  const act = (p: Promise<unknown>, then: () => void): void => {
    setError(undefined);
    p.then(then, setError);
  };
  const budgetDone = (saved: boolean): void => {
    setEditing("");
    if (saved) {
      setVersion(version + 1);
      customers.reload();
      teams.reload();
    }
  };

  return (
    <>
      <h1>Customers &amp; Teams</h1>
      <ErrorBox error={error} />

      <section aria-labelledby="customers-h">
        <h2 id="customers-h">Customers</h2>
        {can("org.write") && <CreateCustomer onCreated={customers.reload} />}
        <ErrorBox error={customers.error} />
        <div class="table-wrap">
          <table data-testid="customers-table">
            <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Spend</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {customers.data?.customers.map((c) => (
                <tr key={c.id}>
                  <td>{c.id}</td><td>{c.name}</td>
                  <td>
                    {editing === `c:${c.id}`
                      ? <BudgetEditor scope={{ case: "customerId", value: c.id }} budget={c.budget} withLimits={false} onDone={budgetDone} />
                      : <BudgetBar scope={{ case: "customerId", value: c.id }} name={c.id} version={version} />}
                  </td>
                  <td class="actions">
                    {can("budgets.write") && editing !== `c:${c.id}` && <button type="button" onClick={() => setEditing(`c:${c.id}`)} aria-label={`Edit budget of customer ${c.id}`}>Budget</button>}
                    {can("org.write") && <ConfirmButton label="Delete" question={`Delete customer ${c.id}?`} onConfirm={() => act(api.org.deleteCustomer({ id: c.id }), customers.reload)} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {customers.data?.customers.length === 0 && <p class="muted">No customers yet.</p>}
      </section>

      <section aria-labelledby="teams-h">
        <h2 id="teams-h">Teams</h2>
        {can("org.write") && <CreateTeam customers={customers.data?.customers ?? []} onCreated={teams.reload} />}
        <div class="row">
          <label>
            Show teams of
            <select name="team-customer-filter" value={customerFilter} onChange={(e) => setCustomerFilter(e.currentTarget.value)}>
              <option value="">all customers</option>
              {customers.data?.customers.map((c) => <option key={c.id} value={c.id}>{c.name || c.id}</option>)}
            </select>
          </label>
        </div>
        <ErrorBox error={teams.error} />
        <div class="table-wrap">
          <table data-testid="teams-table">
            <thead><tr><th scope="col">Id</th><th scope="col">Name</th><th scope="col">Customer</th><th scope="col">Limits</th><th scope="col">Spend</th><th scope="col">Actions</th></tr></thead>
            <tbody>
              {teams.data?.teams.map((t) => (
                <tr key={t.id} data-testid={`team-${t.id}`}>
                  <td>{t.id}</td><td>{t.name}</td><td>{t.customerId}</td><td>{limitsText(t)}</td>
                  <td>
                    {editing === `t:${t.id}`
                      ? <BudgetEditor scope={{ case: "teamId", value: t.id }} budget={t.budget} limits={t.limits} withLimits onDone={budgetDone} />
                      : <BudgetBar scope={{ case: "teamId", value: t.id }} name={t.id} version={version} />}
                  </td>
                  <td class="actions">
                    {can("budgets.write") && editing !== `t:${t.id}` && <button type="button" onClick={() => setEditing(`t:${t.id}`)} aria-label={`Edit budget of team ${t.id}`}>Budget</button>}
                    {can("org.write") && <ConfirmButton label="Delete" question={`Delete team ${t.id}?`} onConfirm={() => act(api.org.deleteTeam({ id: t.id }), teams.reload)} />}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {teams.data?.teams.length === 0 && <p class="muted">No teams yet.</p>}
      </section>
    </>
  );
}

function limitsText(t: Team): string {
  const l = t.limits;
  if (l === undefined) return "";
  return [l.rpm !== undefined && `${l.rpm} rpm`, l.tpm !== undefined && `${l.tpm} tpm`, l.maxConcurrent !== undefined && `${l.maxConcurrent} concurrent`].filter(Boolean).join(", ");
}

function CreateCustomer({ onCreated }: { onCreated: () => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [budget, setBudget] = useState(emptyBudget());
  const [error, setError] = useState<unknown>(undefined);
  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.org.createCustomer({ id, name, budget: budgetOf(budget) }).then(() => {
      setId(""); setName(""); setBudget(emptyBudget());
      onCreated();
    }, setError);
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-labelledby="new-customer-h" data-testid="create-customer">
      <h3 id="new-customer-h">New customer</h3>
      <label>Customer id<input name="customer-id" required placeholder="lowercase, digits, - _" value={id} onInput={(e) => setId(e.currentTarget.value)} /></label>
      <label>Name<input name="customer-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <BudgetFields value={budget} onChange={setBudget} idPrefix="new-customer" />
      <button type="submit">Create customer</button>
      <ErrorBox error={error} />
    </form>
  );
}

function CreateTeam({ customers, onCreated }: { customers: Customer[]; onCreated: () => void }) {
  const [id, setId] = useState("");
  const [name, setName] = useState("");
  const [customerId, setCustomerId] = useState("");
  const [budget, setBudget] = useState(emptyBudget());
  const [limits, setLimits] = useState(limitsInput());
  const [error, setError] = useState<unknown>(undefined);
  const submit = (e: Event): void => {
    e.preventDefault();
    setError(undefined);
    api.org.createTeam({ id, name, customerId, budget: budgetOf(budget), limits: limitsOf(limits) }).then(() => {
      setId(""); setName(""); setBudget(emptyBudget()); setLimits(limitsInput());
      onCreated();
    }, setError);
  };
  return (
    <form class="panel inline-form" onSubmit={submit} aria-labelledby="new-team-h" data-testid="create-team">
      <h3 id="new-team-h">New team</h3>
      <label>Team id<input name="team-id" required placeholder="lowercase, digits, - _" value={id} onInput={(e) => setId(e.currentTarget.value)} /></label>
      <label>Name<input name="team-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} /></label>
      <label>
        Customer
        <select name="team-customer" value={customerId} onChange={(e) => setCustomerId(e.currentTarget.value)}>
          <option value="">none</option>
          {customers.map((c) => <option key={c.id} value={c.id}>{c.name || c.id}</option>)}
        </select>
      </label>
      <BudgetFields value={budget} onChange={setBudget} idPrefix="new-team" />
      <LimitsFields value={limits} onChange={setLimits} idPrefix="new-team" />
      <button type="submit">Create team</button>
      <ErrorBox error={error} />
    </form>
  );
}
