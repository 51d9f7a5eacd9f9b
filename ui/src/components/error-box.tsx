import { describeError } from "../api.ts";

/** A failed call or a server refusal, announced to screen readers. */
export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  return (
    <p class="error" role="alert" data-testid="error">
      {describeError(error)}
    </p>
  );
}
