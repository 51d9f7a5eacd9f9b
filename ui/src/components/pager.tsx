/** Previous/next over page tokens: the caller keeps the stack of tokens it came through. */
export function Pager({ tokens, next, onPage }: { tokens: string[]; next: string; onPage: (tokens: string[]) => void }) {
  if (tokens.length === 0 && next === "") return null;
  return (
    <nav class="row pager" aria-label="Pages">
      <button type="button" disabled={tokens.length === 0} onClick={() => onPage(tokens.slice(0, -1))}>Previous page</button>
      <span>Page {tokens.length + 1}</span>
      <button type="button" disabled={next === ""} onClick={() => onPage([...tokens, next])}>Next page</button>
    </nav>
  );
}
