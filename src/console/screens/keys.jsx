// Keys: the keys the caller may read, filtered by project, tag, status and creator (the admin API
// filters) and searched by name, id, description or tag (here); and, for a role that may create
// keys, the form that creates one (its plaintext shown once).
import { useMemo, useState } from 'preact/hooks';
import { all, api } from '../api.js';
import { ruleControl } from '../rules.jsx';
import { may, maySomewhere } from '../perm.js';
import { Field, FormEnd, Loaded, ScreenHead, SecretOnce, Table, useLoad, useSubmit, when } from '../ui.jsx';
import { KeyFields, readKey } from './keyform.jsx';

export function Keys({ me }) {
  const [filters, setFilters] = useState({ project: '', tag: '', status: '', creator: '' });
  const [search, setSearch] = useState('');
  const [created, setCreated] = useState(null);
  const [creating, setCreating] = useState(false);
  const projects = useLoad(() => (maySomewhere(me, 'projects.read') ? all('/admin/v1/projects') : Promise.resolve([])), []);
  const keys = useLoad(() => all('/admin/v1/keys', filters), [filters.project, filters.tag, filters.status, filters.creator, created]);
  const creatable = (projects.data ?? []).filter((p) => may(me, 'keys.create', { project: p.id }));
  const shown = useMemo(() => {
    const needle = search.trim().toLowerCase();
    if (!needle) return keys.data ?? [];
    return (keys.data ?? []).filter((k) =>
      [k.name, k.id, k.description ?? '', k.masked, ...(k.tags ?? [])].some((text) => text.toLowerCase().includes(needle)),
    );
  }, [keys.data, search]);
  const set = (name) => (event) => setFilters({ ...filters, [name]: event.currentTarget.value.trim() });

  return (
    <>
      <ScreenHead title="Keys">
        {creatable.length > 0 && !creating && (
          <button type="button" class="primary" onClick={() => { setCreated(null); setCreating(true); }}>
            New key
          </button>
        )}
      </ScreenHead>
      {created && (
        <SecretOnce label={`Key "${created.name}"`} secret={created.key}>
          <p>
            <a href={`#/keys/${created.id}`}>Open {created.name}</a>
          </p>
        </SecretOnce>
      )}
      {creating && (
        <CreateKey
          projects={creatable}
          onDone={(key) => { setCreating(false); if (key) setCreated(key); }}
        />
      )}
      <form class="filters" role="search" aria-label="Filter keys" onSubmit={(e) => e.preventDefault()}>
        <Field name="search" label="Search">
          {(p) => <input {...p} type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="name, id, tag…" />}
        </Field>
        <Field name="filter-project" label="Project">
          {(p) => (
            <select {...p} value={filters.project} onChange={set('project')}>
              <option value="">All projects</option>
              {(projects.data ?? []).map((project) => <option key={project.id} value={project.id}>{project.name}</option>)}
            </select>
          )}
        </Field>
        <Field name="filter-status" label="Status">
          {(p) => (
            <select {...p} value={filters.status} onChange={set('status')}>
              <option value="">Active and disabled</option>
              <option value="active">Active</option>
              <option value="disabled">Disabled</option>
              <option value="deleted">Deleted</option>
            </select>
          )}
        </Field>
        <Field name="filter-tag" label="Tag">
          {(p) => <input {...p} defaultValue={filters.tag} onChange={set('tag')} />}
        </Field>
        <Field name="filter-creator" label="Creator (principal id)">
          {(p) => <input {...p} defaultValue={filters.creator} onChange={set('creator')} />}
        </Field>
      </form>
      <Loaded state={keys}>
        {() => (
          <Table
            caption="Keys"
            name="keys"
            columns={['Name', 'Key', 'Project', 'Status', 'Tags', 'Creator', 'Expires']}
            empty="No keys match."
            rows={shown.map((k) => (
              <tr key={k.id} data-key={k.id}>
                <th scope="row"><a href={`#/keys/${k.id}`}>{k.name}</a></th>
                <td class="mono">{k.masked}</td>
                <td>{k.project}</td>
                <td><span class={`status ${k.expired ? 'expired' : k.status}`}>{k.expired ? 'expired' : k.status}</span></td>
                <td>{(k.tags ?? []).join(', ')}</td>
                <td>{k.creator}</td>
                <td>{when(k.expires_at)}</td>
              </tr>
            ))}
          />
        )}
      </Loaded>
    </>
  );
}

function CreateKey({ projects, onDone }) {
  const form = useSubmit((field) => ruleControl('key', field));
  const create = async (event) => {
    event.preventDefault();
    const body = readKey(event.currentTarget);
    body.project = event.currentTarget.elements.namedItem('key.project').value;
    const key = await form.submit(() => api('POST', '/admin/v1/keys', body));
    if (key) onDone(key);
  };
  return (
    <form class="panel" onSubmit={create} aria-labelledby="new-key-title" noValidate>
      <h2 id="new-key-title">New key</h2>
      <KeyFields errors={form.errors}>
        <Field name="key.project" label="Project" error={form.errors['key.project']}>
          {(p) => (
            <select {...p} required>
              {projects.map((project) => <option key={project.id} value={project.id}>{project.name} ({project.id})</option>)}
            </select>
          )}
        </Field>
      </KeyFields>
      <FormEnd form={form} label="Create key" onCancel={() => onDone(null)} />
    </form>
  );
}
