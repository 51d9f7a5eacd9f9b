import { useEffect, useRef, useState } from "preact/hooks";

/**
 * A destructive action in two steps, inline (no modal to trap focus in):
 * the button turns into "question? Yes / Cancel", with focus on Cancel.
 */
export function ConfirmButton(props: { label: string; question: string; onConfirm: () => void; disabled?: boolean; class?: string }) {
  const [asking, setAsking] = useState(false);
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) cancel.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" class={props.class ?? "danger"} disabled={props.disabled} onClick={() => setAsking(true)}>
        {props.label}
      </button>
    );
  }
  return (
    <span class="confirm" role="group" aria-label={props.question}>
      <span>{props.question}</span>{" "}
      <button type="button" class="danger" onClick={() => (setAsking(false), props.onConfirm())}>Yes, {props.label.toLowerCase()}</button>{" "}
      <button type="button" ref={cancel} onClick={() => setAsking(false)}>Cancel</button>
    </span>
  );
}
