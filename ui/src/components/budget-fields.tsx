import { Period, type Budget } from "../../../gen/switchyard/v1/budgets_pb.ts";

/** The periods a budget can reset on, as the select offers them. */
export const PERIODS: readonly [Period, string][] = [
  [Period.NONE, "lifetime"],
  [Period.MINUTE, "per minute"],
  [Period.HOUR, "per hour"],
  [Period.DAY, "per day"],
  [Period.WEEK, "per week"],
  [Period.MONTH, "per month"],
];

/** "per day", or "" for an unknown period. */
export function periodName(p: Period | undefined): string {
  return PERIODS.find(([v]) => v === p)?.[1] ?? "";
}

/** A budget as typed: the limit stays a string so an empty field means "no budget". */
export interface BudgetInput {
  limit: string;
  period: Period;
}

/** The form value for an existing budget, or an empty one (monthly by default). */
export const emptyBudget = (b?: Budget): BudgetInput => ({
  limit: b === undefined ? "" : String(b.limitUsd),
  period: b?.period || Period.MONTH,
});

/** The budget message for a request, or undefined when no limit was typed. */
export function budgetOf(input: BudgetInput): { limitUsd: number; period: Period } | undefined {
  return input.limit.trim() === "" ? undefined : { limitUsd: Number(input.limit), period: input.period };
}

/** Limit (USD) and period inputs, each labelled with the owner's name. */
export function BudgetFields({ value, onChange, idPrefix }: { value: BudgetInput; onChange: (v: BudgetInput) => void; idPrefix: string }) {
  return (
    <>
      <label>
        Budget (USD)
        <input
          type="number" min="0" step="any" inputMode="decimal" name={`${idPrefix}-budget`} placeholder="no budget"
          value={value.limit} onInput={(e) => onChange({ ...value, limit: e.currentTarget.value })}
        />
      </label>
      <label>
        Budget period
        <select name={`${idPrefix}-period`} value={value.period} onChange={(e) => onChange({ ...value, period: Number(e.currentTarget.value) as Period })}>
          {PERIODS.map(([v, label]) => <option key={v} value={v}>{label}</option>)}
        </select>
      </label>
    </>
  );
}
