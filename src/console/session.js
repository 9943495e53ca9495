// The console's session: a principal's token (or a Cloudflare Access assertion) is exchanged once
// for a session cookie (HttpOnly: the page never sees it) and a CSRF token kept in memory only; the
// token itself is dropped as soon as the exchange answers. Who-am-I tells the page who signed in and
// what its role may do (see perm.js).
import { api, setCsrf } from './api.js';

const SESSIONS = '/admin/v1/sessions';

/** The page's view of who-am-I: { id, name, role, org, operator, projects, permitted, actions }. */
function caller(whoami) {
  return {
    id: whoami.principal?.id,
    name: whoami.principal?.name,
    role: whoami.principal?.role,
    org: whoami.org,
    operator: Boolean(whoami.operator),
    projects: whoami.projects ?? [],
    permitted: whoami.access ?? whoami.actions ?? {},
    actions: whoami.actions ?? [],
    session: whoami.session ?? null,
  };
}

/** Exchanges `token` for a session; resolves to the caller. */
export async function signIn(token) {
  const answer = await api('POST', SESSIONS, { token });
  setCsrf(answer.csrf_token);
  return caller(answer.whoami);
}

/** Signs in through Cloudflare Access (which adds its assertion header) into organisation `org`. */
export async function signInWithAccess(org) {
  const answer = await api('POST', SESSIONS, { org });
  setCsrf(answer.csrf_token);
  return caller(answer.whoami);
}

/** The caller of the current session, or null when there is none. */
export async function current() {
  try {
    const whoami = await api('GET', `${SESSIONS}/current`);
    if (whoami.csrf_token) setCsrf(whoami.csrf_token);
    return caller(whoami);
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

/** Ends this session; resolves to true. */
export async function signOut() {
  await api('DELETE', `${SESSIONS}/current`);
  setCsrf(null);
  return true;
}

/** Ends every session of the caller, on every device; resolves to true. */
export async function signOutEverywhere() {
  await api('DELETE', SESSIONS);
  setCsrf(null);
  return true;
}
