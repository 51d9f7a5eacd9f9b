/**
 * The shell: finds out who is signed in (WhoAmI), shows the login screen or
 * the navigation and the current page. Routing is by location hash
 * ("#/keys"), so every page is one static index.html under /ui/.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { ComponentType } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { Identity_Kind, type WhoAmIResponse } from "../../gen/switchyard/v1/auth_pb.ts";
import { api, onSessionLost, setCsrfToken } from "./api.ts";
import { useHashPath } from "./hooks.ts";
import { Login } from "./pages/login.tsx";
import { AuditPage } from "./pages/audit.tsx";
import { CachePage } from "./pages/cache.tsx";
import { KeysPage } from "./pages/keys.tsx";
import { OrgPage } from "./pages/org.tsx";
import { OverviewPage } from "./pages/overview.tsx";
import { ProvidersPage } from "./pages/providers.tsx";
import { RequestsPage } from "./pages/requests.tsx";
import { UsersPage } from "./pages/users.tsx";
import { SessionContext, type Permission, type Session } from "./session.ts";

interface Page {
  path: string;
  label: string;
  /** Needed to see the page at all; the page hides its edit controls by the write permissions. */
  needs: Permission;
  component: ComponentType<{ path: string }>;
}

const PAGES: readonly Page[] = [
  { path: "/", label: "Overview", needs: "logs.read", component: OverviewPage },
  { path: "/requests", label: "Requests", needs: "logs.read", component: RequestsPage },
  { path: "/org", label: "Customers & Teams", needs: "org.read", component: OrgPage },
  { path: "/keys", label: "Keys", needs: "keys.read", component: KeysPage },
  { path: "/providers", label: "Providers", needs: "routing.read", component: ProvidersPage },
  { path: "/cache", label: "Cache", needs: "cache.read", component: CachePage },
  { path: "/users", label: "Users", needs: "users.read", component: UsersPage },
  { path: "/audit", label: "Audit", needs: "audit.read", component: AuditPage },
];

type State =
  | { kind: "loading" }
  | { kind: "signed-out"; error?: unknown; notice?: string }
  | { kind: "signed-in"; session: Session };

export function App() {
  const [state, setState] = useState<State>({ kind: "loading" });

  const signedIn = (who: WhoAmIResponse): void => {
    setCsrfToken(who.csrfToken);
    setState({ kind: "signed-in", session: { identity: who.identity, permissions: new Set(who.permissions) } });
  };
  const refresh = (): Promise<void> =>
    api.auth.whoAmI({}).then(signedIn, (err: unknown) => {
      setCsrfToken("");
      const unauthenticated = ConnectError.from(err).code === Code.Unauthenticated;
      setState({ kind: "signed-out", error: unauthenticated ? undefined : err });
    });

  useEffect(() => {
    onSessionLost(() => {
      setCsrfToken("");
      setState({ kind: "signed-out", notice: "Your session has ended. Sign in again." });
    });
    void refresh();
  }, []);

  if (state.kind === "loading") return <p class="loading" role="status">Loading…</p>;
  if (state.kind === "signed-out") return <Login error={state.error} notice={state.notice} onSignedIn={refresh} />;
  return (
    <SessionContext.Provider value={state.session}>
      <Shell
        session={state.session}
        onSignOut={() => {
          api.auth.logout({}).catch(() => undefined).finally(() => {
            setCsrfToken("");
            setState({ kind: "signed-out", notice: "Signed out." });
          });
        }}
      />
    </SessionContext.Provider>
  );
}

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const path = useHashPath();
  const main = useRef<HTMLElement>(null);
  const visible = PAGES.filter((p) => session.permissions.has(p.needs));
  const base = "/" + (path.split("/")[1] ?? "");
  const page = visible.find((p) => p.path === base);
  const first = useRef(true);

  // Moving to another page puts keyboard and screen-reader focus at its start.
  useEffect(() => {
    document.title = page === undefined ? "Switchyard" : `${page.label} · Switchyard`;
    if (first.current) first.current = false;
    else main.current?.focus();
  }, [base]);

  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), main.current?.focus())}>Skip to content</a>
      <header class="top">
        <span class="brand">Switchyard</span>
        <span class="who" data-testid="who">{whoLabel(session)}</span>
        <button type="button" onClick={onSignOut}>Sign out</button>
      </header>
      <nav class="side" aria-label="Sections">
        <ul>
          {visible.map((p) => (
            <li key={p.path}>
              <a href={`#${p.path}`} aria-current={p === page ? "page" : undefined}>{p.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" ref={main} tabIndex={-1}>
        {page !== undefined
          ? <page.component path={path} />
          : visible.length === 0
            ? <p>Your account holds no permissions here yet. Ask an admin for a grant.</p>
            : <p>Nothing here. <a href={`#${visible[0]!.path}`}>Go to {visible[0]!.label}</a>.</p>}
      </main>
    </div>
  );
}

function whoLabel(s: Session): string {
  const id = s.identity;
  if (id === undefined) return "";
  if (id.kind === Identity_Kind.BOOTSTRAP) return "admin key (owner)";
  return id.email || id.name || id.id;
}
