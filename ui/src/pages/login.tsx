/**
 * Sign-in: email and password, the bootstrap admin key, or single sign-on,
 * whichever GetAuthConfig says this gateway offers. The server answers a
 * login with an HttpOnly session cookie; the shell then asks WhoAmI.
 */
import { useState } from "preact/hooks";
import { api, setCsrfToken } from "../api.ts";
import { ErrorBox } from "../components/error-box.tsx";
import { useLoad } from "../hooks.ts";

export function Login({ error, notice, onSignedIn }: { error?: unknown; notice?: string | undefined; onSignedIn: () => Promise<void> }) {
  const config = useLoad(() => api.auth.getAuthConfig({}), []);
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [adminKey, setAdminKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);

  const submit = (method: "password" | "adminKey") => (e: Event): void => {
    e.preventDefault();
    setBusy(true);
    setFailure(undefined);
    const req = method === "password"
      ? { method: { case: "password" as const, value: { email, password } } }
      : { method: { case: "adminKey" as const, value: adminKey } };
    api.auth.login(req).then(
      async (res) => {
        setCsrfToken(res.csrfToken);
        setPassword("");
        setAdminKey("");
        await onSignedIn();
      },
      (err: unknown) => setFailure(err),
    ).finally(() => setBusy(false));
  };

  const c = config.data;
  return (
    <main class="login" id="main">
      <h1>Switchyard</h1>
      <p class="muted">Sign in to the gateway's admin console.</p>
      {notice !== undefined && <p role="status" class="notice">{notice}</p>}
      <ErrorBox error={error ?? config.error} />
      <ErrorBox error={failure} />
      {c?.needsBootstrap && (
        <p class="notice" data-testid="bootstrap-hint">
          No owner exists yet. Start the gateway with <code>SWITCHYARD_ADMIN_KEY</code> set, or run{" "}
          <code>switchyard admin create-owner</code>.
        </p>
      )}
      {c?.passwordLogin && (
        <form onSubmit={submit("password")} data-testid="password-login" aria-label="Sign in with email and password">
          <label>
            Email
            <input type="email" name="email" autoComplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          </label>
          <label>
            Password
            <input type="password" name="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy}>Sign in</button>
        </form>
      )}
      {c?.adminKeyLogin && (
        <form onSubmit={submit("adminKey")} data-testid="admin-key-login" aria-label="Sign in with the admin key">
          <label>
            Admin key
            <input type="password" name="admin-key" autoComplete="off" required value={adminKey} onInput={(e) => setAdminKey(e.currentTarget.value)} />
          </label>
          <button type="submit" disabled={busy}>Sign in with admin key</button>
        </form>
      )}
      {c?.oidc && (
        <p>
          <a class="button" href={c.oidcStartUrl} data-testid="sso-login">{c.oidcLabel || "Sign in with single sign-on"}</a>
        </p>
      )}
      {c !== undefined && !c.passwordLogin && !c.adminKeyLogin && !c.oidc && (
        <p>No way to sign in is configured on this gateway.</p>
      )}
    </main>
  );
}
