// The admin API as the page calls it: same origin, the session cookie, and the CSRF token on every
// state-changing call. A refusal becomes an ApiError carrying the envelope's code and, for a refused
// field (400 `boundary_exceeded`, `invalid_field`), the field it names.

/** The header that carries the session's CSRF token on POST, PUT, PATCH and DELETE. */
export const CSRF_HEADER = 'x-csrf-token';

let csrfToken = null;
let onSignedOut = () => {};

/** Sets the session's CSRF token (null when signed out). */
export function setCsrf(token) {
  csrfToken = token;
}

/** Called when a call answers 401: the session ended (signed out elsewhere, expired). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

/** A refusal or failure, as the envelope `{"error":{"message","type","code"}}` says it. */
export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message ?? `The server answered ${status}.`);
    this.status = status;
    this.code = error?.code ?? 'unknown';
    this.type = error?.type ?? 'unknown';
    this.field = error?.field ?? fieldOf(this.code, this.message);
  }
}

/**
 * The field a refusal names: `boundary_exceeded` and `invalid_field` messages start with it
 * (`limits.rpm: 500 is above …`, `boundary.models.allow[1]: …`).
 */
export function fieldOf(code, message) {
  if (code !== 'boundary_exceeded' && code !== 'invalid_field') return null;
  const match = /^([A-Za-z_][\w.[\]]*): /.exec(message);
  return match ? match[1] : null;
}

/** One admin call; resolves to the JSON answer (null for an empty one), or throws ApiError. */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers[CSRF_HEADER] = csrfToken;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { message: 'The server could not be reached.', code: 'network', type: 'network' });
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = new ApiError(response.status, json?.error);
    if (response.status === 401) onSignedOut(error);
    throw error;
  }
  return json;
}

/** `path` with the query parameters of `params` that are set. */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') query.set(name, String(value));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** Every item of a paged list (`{data, next_cursor}`), following cursors up to `max` items. */
export async function all(path, params = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await api('GET', withQuery(path, { ...params, limit: 200, cursor }));
    items.push(...page.data);
    cursor = page.next_cursor ?? null;
  } while (cursor && items.length < max);
  return items;
}
