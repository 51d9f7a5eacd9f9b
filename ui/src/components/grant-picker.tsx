import { AdminRole, type Grant } from "../../../gen/switchyard/v1/users_pb.ts";
import type { Customer, Team } from "../../../gen/switchyard/v1/org_pb.ts";

/** Admin roles, lowest first, with their names. */
export const ROLES: readonly [AdminRole, string][] = [
  [AdminRole.VIEWER, "viewer"],
  [AdminRole.EDITOR, "editor"],
  [AdminRole.ADMIN, "admin"],
  [AdminRole.OWNER, "owner"],
];

/** A grant as typed: role, and where (everywhere, or one customer or team). */
export interface GrantInput {
  role: AdminRole;
  scope: "global" | "customerId" | "teamId";
  id: string;
}

/** A new grant's starting value: viewer, everywhere. */
export const emptyGrant = (): GrantInput => ({ role: AdminRole.VIEWER, scope: "global", id: "" });

/** The grant message for a request. */
export function grantOf(g: GrantInput): { role: AdminRole; scope: Grant["scope"] } {
  return { role: g.role, scope: g.scope === "global" ? { case: undefined } : { case: g.scope, value: g.id } };
}

/** "editor on team eng", "owner everywhere". */
export function grantText(g: Grant): string {
  const role = ROLES.find(([r]) => r === g.role)?.[1] ?? "no role";
  switch (g.scope.case) {
    case "customerId": return `${role} on customer ${g.scope.value}`;
    case "teamId": return `${role} on team ${g.scope.value}`;
    default: return `${role} everywhere`;
  }
}

/** Role, scope and (for a scoped grant) which customer or team. */
export function GrantPicker(props: { value: GrantInput; onChange: (g: GrantInput) => void; customers: Customer[]; teams: Team[]; idPrefix: string }) {
  const { value: g, onChange, idPrefix } = props;
  const options = g.scope === "customerId" ? props.customers : g.scope === "teamId" ? props.teams : [];
  return (
    <>
      <label>
        Role
        <select name={`${idPrefix}-role`} value={g.role} onChange={(e) => onChange({ ...g, role: Number(e.currentTarget.value) as AdminRole })}>
          {ROLES.map(([r, label]) => <option key={r} value={r}>{label}</option>)}
        </select>
      </label>
      <label>
        Scope
        <select name={`${idPrefix}-scope`} value={g.scope} onChange={(e) => onChange({ ...g, scope: e.currentTarget.value as GrantInput["scope"], id: "" })}>
          <option value="global">everywhere</option>
          <option value="customerId">one customer</option>
          <option value="teamId">one team</option>
        </select>
      </label>
      {g.scope !== "global" && (
        <label>
          {g.scope === "customerId" ? "Customer" : "Team"}
          <select name={`${idPrefix}-scope-id`} required value={g.id} onChange={(e) => onChange({ ...g, id: e.currentTarget.value })}>
            <option value="">choose…</option>
            {options.map((o) => <option key={o.id} value={o.id}>{o.name || o.id}</option>)}
          </select>
        </label>
      )}
    </>
  );
}
