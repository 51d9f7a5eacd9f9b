/** Small data hooks shared by the pages. */
import { useCallback, useEffect, useRef, useState } from "preact/hooks";

/** What useLoad returns: the last data, the last error (cleared by a success), and whether a load is running. */
export interface Loaded<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs a load whenever deps change (and on reload()); answers that arrive
 * after a newer load started are dropped. With pollMs, reloads on that
 * interval while the component is mounted, keeping the last data on screen.
 */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[], pollMs = 0): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({ data: undefined, error: undefined, loading: true });
  const seq = useRef(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  const run = useCallback(() => {
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    loadRef.current().then(
      (data) => mine === seq.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => mine === seq.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
  }, []);

  useEffect(() => {
    run();
    if (pollMs <= 0) return () => void seq.current++;
    const t = setInterval(run, pollMs);
    return () => {
      clearInterval(t);
      seq.current++;
    };
  }, deps);

  return { ...state, reload: run };
}

/** The current location hash as a path ("#/keys" → "/keys"), updated on navigation. */
export function useHashPath(): string {
  const read = (): string => location.hash.replace(/^#/, "") || "/";
  const [path, setPath] = useState(read);
  useEffect(() => {
    const on = (): void => setPath(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return path;
}
