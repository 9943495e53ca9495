// The console: one page, hash routes (#/keys, #/keys/key_1, …), one screen per route. Flow: on
// load, who-am-I tells whether a session exists (else the sign-in screen); the navigation shows
// only the screens the caller's role may use (perm.js); a 401 from any call (session signed out
// elsewhere or expired) returns to sign-in.
import './app.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { whenSignedOut } from './api.js';
import { maySomewhere } from './perm.js';
import { current, signIn, signOut } from './session.js';
import { Failure } from './ui.jsx';
import { SignIn } from './screens/signin.jsx';
import { Overview } from './screens/overview.jsx';
import { Keys } from './screens/keys.jsx';
import { KeyScreen } from './screens/key.jsx';
import { Projects } from './screens/projects.jsx';
import { ProjectScreen } from './screens/project.jsx';
import { Principals } from './screens/principals.jsx';
import { OrgScreen } from './screens/org.jsx';
import { Audit } from './screens/audit.jsx';
import { Webhooks } from './screens/webhooks.jsx';
import { Orgs } from './screens/orgs.jsx';
import { Account } from './screens/account.jsx';

/** The screens, in navigation order: route, label, whether the caller may open it, component. */
const SCREENS = [
  { route: '', label: 'Overview', open: () => true, screen: Overview },
  { route: 'keys', label: 'Keys', open: (me) => maySomewhere(me, 'keys.read') || maySomewhere(me, 'keys.create'), screen: Keys, detail: KeyScreen },
  { route: 'projects', label: 'Projects', open: (me) => maySomewhere(me, 'projects.read'), screen: Projects, detail: ProjectScreen },
  { route: 'principals', label: 'People', open: (me) => maySomewhere(me, 'principals.read'), screen: Principals },
  { route: 'org', label: 'Organisation', open: (me) => maySomewhere(me, 'org.policy.read'), screen: OrgScreen },
  { route: 'audit', label: 'Audit log', open: (me) => maySomewhere(me, 'audit.read'), screen: Audit },
  { route: 'webhooks', label: 'Webhooks', open: (me) => maySomewhere(me, 'webhooks.manage'), screen: Webhooks },
  { route: 'orgs', label: 'Organisations', open: (me) => me.operator || me.actions.includes('orgs.manage'), screen: Orgs },
  { route: 'account', label: 'Account', open: () => true, screen: Account },
];

/** The route of the location's hash: ["keys", "key_1"]. */
const routeOf = () => location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);

/**
 * A development sign-in link (`#signin=<token>`, printed by `make dev`): used once, then wiped.
 * `DEV_SIGN_IN` is set by scripts/console-build.mjs: true in `make dev`'s build only, so a deployed
 * console has no such path (a link cannot sign a visitor into someone else's account).
 */
function takeDevToken() {
  if (!DEV_SIGN_IN) return null;
  const match = /^#signin=(.+)$/.exec(location.hash);
  if (!match) return null;
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
  return decodeURIComponent(match[1]);
}

function App() {
  const [me, setMe] = useState(undefined);
  const [failure, setFailure] = useState(null);
  const [route, setRoute] = useState(routeOf());

  useEffect(() => {
    const onHash = () => setRoute(routeOf());
    addEventListener('hashchange', onHash);
    whenSignedOut(() => setMe(null));
    const devToken = takeDevToken();
    (devToken ? signIn(devToken) : current()).then(setMe, (error) => {
      setFailure(error);
      setMe(null);
    });
    return () => removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    const screen = SCREENS.find((s) => s.route === (route[0] ?? ''));
    document.title = `${screen?.label ?? 'Not found'} · teamkeys console`;
    document.getElementById('main')?.focus({ preventScroll: true });
  }, [route[0], route[1]]);

  if (me === undefined) return <p class="loading">Loading the console…</p>;
  if (me === null) {
    return <SignIn failure={failure} onSignedIn={(caller) => { setFailure(null); setMe(caller); }} />;
  }

  const open = SCREENS.filter((s) => s.open(me));
  const screen = open.find((s) => s.route === (route[0] ?? ''));
  const Screen = screen && (route[1] && screen.detail ? screen.detail : screen.screen);
  const leave = async () => {
    try {
      await signOut();
    } finally {
      setMe(null);
    }
  };
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => { e.preventDefault(); document.getElementById('main').focus(); }}>Skip to content</a>
      <header class="top">
        <span class="brand">teamkeys</span>
        <span class="who" data-role={me.role}>
          {me.name} · <span class="role">{me.operator ? 'operator' : me.role?.replace('_', ' ')}</span>
          {me.org && <span class="muted"> · {me.org}</span>}
        </span>
        <button type="button" onClick={leave}>Sign out</button>
      </header>
      <nav aria-label="Console">
        <ul>
          {open.map((s) => (
            <li key={s.route}>
              <a href={`#/${s.route}`} aria-current={s === screen ? 'page' : undefined}>{s.label}</a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        {Screen ? <Screen me={me} id={route[1]} setMe={setMe} /> : <Failure error={{ message: 'There is no such screen, or your role may not open it.', code: 'not_found' }} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app'));
