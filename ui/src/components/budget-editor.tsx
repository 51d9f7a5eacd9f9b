import { useState } from "preact/hooks";
import type { Budget, Limits, SetBudgetRequest } from "../../../gen/switchyard/v1/budgets_pb.ts";
import { api } from "../api.ts";
import { BudgetFields, budgetOf, emptyBudget } from "./budget-fields.tsx";
import { ErrorBox } from "./error-box.tsx";

/** Limits as typed: empty means none. */
export interface LimitsInput {
  rpm: string;
  tpm: string;
}

/** The form value for existing limits, or empty ones. */
export const limitsInput = (l?: Limits): LimitsInput => ({ rpm: l?.rpm?.toString() ?? "", tpm: l?.tpm?.toString() ?? "" });

/** The limits message, or undefined when nothing was typed. */
export function limitsOf(l: LimitsInput): { rpm?: number; tpm?: bigint } | undefined {
  const out: { rpm?: number; tpm?: bigint } = {};
  if (l.rpm.trim() !== "") out.rpm = Number(l.rpm);
  if (l.tpm.trim() !== "") out.tpm = BigInt(l.tpm.trim());
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Requests-per-minute and tokens-per-minute inputs. */
export function LimitsFields({ value, onChange, idPrefix }: { value: LimitsInput; onChange: (v: LimitsInput) => void; idPrefix: string }) {
  return (
    <>
      <label>Requests / minute<input type="number" min="1" step="1" name={`${idPrefix}-rpm`} placeholder="no limit" value={value.rpm} onInput={(e) => onChange({ ...value, rpm: e.currentTarget.value })} /></label>
      <label>Tokens / minute<input type="number" min="1" step="1" name={`${idPrefix}-tpm`} placeholder="no limit" value={value.tpm} onInput={(e) => onChange({ ...value, tpm: e.currentTarget.value })} /></label>
    </>
  );
}

/**
 * Sets or clears a budget (and, for keys and teams, rate limits) through
 * BudgetService.SetBudget. Empty fields clear what was set.
 */
export function BudgetEditor(props: { scope: SetBudgetRequest["scope"]; budget?: Budget | undefined; limits?: Limits | undefined; withLimits: boolean; onDone: (saved: boolean) => void }) {
  const [budget, setBudget] = useState(emptyBudget(props.budget));
  const [limits, setLimits] = useState(limitsInput(props.limits));
  const [error, setError] = useState<unknown>(undefined);
  const prefix = `${props.scope.case}-${props.scope.value}`;
  const save = (e: Event): void => {
    e.preventDefault();
    const b = budgetOf(budget);
    const l = limitsOf(limits);
    api.budgets.setBudget({
      scope: props.scope,
      budget: b,
      clearBudget: b === undefined,
      ...(props.withLimits ? { limits: l, clearLimits: l === undefined } : {}),
    }).then(() => props.onDone(true), setError);
  };
  return (
    <form class="inline-form" onSubmit={save} aria-label="Budget and limits">
      <BudgetFields value={budget} onChange={setBudget} idPrefix={prefix} />
      {props.withLimits && <LimitsFields value={limits} onChange={setLimits} idPrefix={prefix} />}
      <button type="submit">Save budget</button>
      <button type="button" onClick={() => props.onDone(false)}>Cancel</button>
      <ErrorBox error={error} />
    </form>
  );
}
