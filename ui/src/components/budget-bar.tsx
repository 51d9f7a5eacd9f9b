import type { GetBudgetRequest } from "../../../gen/switchyard/v1/budgets_pb.ts";
import { api } from "../api.ts";
import { usd } from "../format.ts";
import { useLoad } from "../hooks.ts";
import { periodName } from "./budget-fields.tsx";
import { ErrorBox } from "./error-box.tsx";

type Scope = GetBudgetRequest["scope"];

/** Spend in the current budget window against the limit, as a bar; spend alone without a budget. */
export function BudgetBar({ scope, name, version = 0 }: { scope: Scope; name: string; version?: number }) {
  const b = useLoad(() => api.budgets.getBudget({ scope }), [scope.case, scope.value, version]);
  if (b.error !== undefined) return <ErrorBox error={b.error} />;
  if (b.data === undefined) return <span class="muted">…</span>;
  const { budget, spentUsd, reservedUsd } = b.data;
  const limit = budget?.limitUsd ?? 0;
  const text = budget === undefined
    ? `${usd(spentUsd)} spent (no budget)`
    : `${usd(spentUsd)} of ${usd(limit)} ${periodName(budget.period)}`;
  return (
    <span class="budget" data-testid={`budget-${name}`}>
      {budget !== undefined && (
        <meter min={0} max={limit || 1} value={Math.min(spentUsd + reservedUsd, limit || 1)} high={limit * 0.8} optimum={0} aria-label={`Spend of ${name}`} />
      )}
      <span class="budget-text">{text}</span>
    </span>
  );
}
