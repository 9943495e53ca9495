// Sign-in: a principal's token, exchanged for a session and then dropped (the field is cleared
// and nothing stores it), or single sign-on through Cloudflare Access, whose assertion header
// Access adds to the request itself.
import { signIn, signInWithAccess } from '../session.js';
import { Failure, Field, useSubmit } from '../ui.jsx';

export function SignIn({ onSignedIn, failure }) {
  const token = useSubmit();
  const sso = useSubmit();
  const withToken = async (event) => {
    event.preventDefault();
    const input = event.currentTarget.elements.namedItem('token');
    const value = input.value.trim();
    input.value = '';
    const caller = await token.submit(() => signIn(value));
    if (caller) onSignedIn(caller);
  };
  const withAccess = async (event) => {
    event.preventDefault();
    const org = event.currentTarget.elements.namedItem('org').value.trim();
    const caller = await sso.submit(() => signInWithAccess(org));
    if (caller) onSignedIn(caller);
  };
  const expired = failure && failure.status !== 401 ? failure : null;
  return (
    <main id="main" class="signin" tabIndex={-1}>
      <h1>Sign in to teamkeys</h1>
      <Failure error={expired} />
      <form onSubmit={withToken} aria-labelledby="with-token">
        <h2 id="with-token">With your token</h2>
        <Field name="token" label="Admin API token" hint="Your principal's token (tka_…). It is exchanged for a session and not kept by this page.">
          {(p) => <input {...p} type="password" autocomplete="off" spellcheck={false} required />}
        </Field>
        <Failure error={token.failure} />
        <button type="submit" class="primary" disabled={token.busy}>Sign in</button>
      </form>
      <form onSubmit={withAccess} aria-labelledby="with-access">
        <h2 id="with-access">With single sign-on</h2>
        <p class="muted">When your organisation's Admin has set up Cloudflare Access for this console.</p>
        <Field name="org" label="Organisation id" hint="org_…">
          {(p) => <input {...p} autocomplete="organization" required />}
        </Field>
        <Failure error={sso.failure} />
        <button type="submit" disabled={sso.busy}>Sign in with Cloudflare Access</button>
      </form>
    </main>
  );
}
