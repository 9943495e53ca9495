// The audit log (Admins): every change, newest first, with who, what, when, and the resource
// before and after (secrets masked); the members that changed are marked.
import { useEffect, useState } from 'preact/hooks';
import { api, withQuery } from '../api.js';
import { Failure, when } from '../ui.jsx';

/** The top-level members whose values differ between `before` and `after`. */
const changed = (before, after) => {
  const names = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  return [...names].filter((n) => JSON.stringify(before?.[n]) !== JSON.stringify(after?.[n]));
};

export function Audit() {
  const [entries, setEntries] = useState([]);
  const [cursor, setCursor] = useState(undefined);
  const [failure, setFailure] = useState(null);
  const [filter, setFilter] = useState('');
  const more = async (from) => {
    try {
      const page = await api('GET', withQuery('/admin/v1/audit', { limit: 50, cursor: from }));
      setEntries((list) => (from ? [...list, ...page.data] : page.data));
      setCursor(page.next_cursor);
    } catch (error) {
      setFailure(error);
    }
  };
  useEffect(() => { more(null); }, []);
  const needle = filter.trim().toLowerCase();
  const shown = needle ? entries.filter((e) => [e.action, e.actor, e.target_id, e.target_type].some((t) => t.toLowerCase().includes(needle))) : entries;
  return (
    <>
      <h1>Audit log</h1>
      <Failure error={failure} />
      <p>
        <label for="audit-filter">Filter </label>
        <input id="audit-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} placeholder="action, actor, target…" />
      </p>
      <ol class="audit" aria-label="Changes, newest first">
        {shown.map((e) => (
          <li key={e.id} data-action={e.action} data-target={e.target_id}>
            <details>
              <summary>
                <span class="mono">{e.action}</span> on {e.target_type} <span class="mono">{e.target_id}</span> by {e.actor}
                <span class="muted"> · {when(e.at_ms)}</span>
              </summary>
              <p class="muted">Changed: {changed(e.before, e.after).join(', ') || 'nothing visible'}</p>
              <div class="before-after">
                <div><h3>Before</h3><pre class="json">{e.before === undefined || e.before === null ? '—' : JSON.stringify(e.before, null, 2)}</pre></div>
                <div><h3>After</h3><pre class="json">{e.after === undefined || e.after === null ? '—' : JSON.stringify(e.after, null, 2)}</pre></div>
              </div>
            </details>
          </li>
        ))}
      </ol>
      {cursor && <button type="button" onClick={() => more(cursor)}>Older changes</button>}
    </>
  );
}
