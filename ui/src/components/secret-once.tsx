import { useEffect, useRef, useState } from "preact/hooks";

/**
 * A newly issued secret. The server keeps only its hash, so this is the one
 * time it can be seen: copy button, then dismiss.
 */
export function SecretOnce({ label, secret, onDone }: { label: string; secret: string; onDone: () => void }) {
  const [copied, setCopied] = useState<"" | "copied" | "failed">("");
  const box = useRef<HTMLElement>(null);
  useEffect(() => box.current?.focus(), []);
  const copy = (): void => {
    navigator.clipboard.writeText(secret).then(() => setCopied("copied"), () => setCopied("failed"));
  };
  return (
    <section class="secret" aria-label={label} tabIndex={-1} ref={box} data-testid="secret-once">
      <p>
        <strong>{label}</strong>: shown once. Copy it now; it cannot be displayed again.
      </p>
      <code class="secret-value" data-testid="secret-value">{secret}</code>
      <div class="row">
        <button type="button" onClick={copy}>Copy</button>
        <button type="button" onClick={onDone}>Done</button>
        <span role="status">{copied === "copied" ? "Copied." : copied === "failed" ? "Copy failed: select the text instead." : ""}</span>
      </div>
    </section>
  );
}
