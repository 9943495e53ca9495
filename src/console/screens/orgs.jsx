// Organisations (the platform's operator): the directory, a new organisation with its first Admin
// (whose token is shown once), and each one's suspension, platform routing and deletion.
import { useState } from 'preact/hooks';
import { all, api } from '../api.js';
import { ConfirmButton, Failure, Field, Loaded, SecretOnce, Table, useLoad, useSubmit, when } from '../ui.jsx';

const HINTS = ['', 'wnam', 'enam', 'sam', 'weur', 'eeur', 'apac', 'oc', 'afr', 'me'];

export function Orgs() {
  const [version, setVersion] = useState(0);
  const [created, setCreated] = useState(null);
  const orgs = useLoad(() => all('/admin/v1/orgs'), [version]);
  const form = useSubmit((field) => `org.${field.replace(/\[\d+\].*$/, '')}`);
  const action = useSubmit();
  const reload = () => setVersion(version + 1);
  const act = (method, path, body) => action.submit(() => api(method, path, body)).then(reload);
  const create = async (event) => {
    event.preventDefault();
    const target = event.currentTarget;
    const elements = target.elements;
    const body = { name: elements.namedItem('org.name').value.trim(), admin: { name: elements.namedItem('org.admin').value.trim() } };
    const jurisdiction = elements.namedItem('org.jurisdiction').value;
    const hint = elements.namedItem('org.location_hint').value;
    if (jurisdiction) body.jurisdiction = jurisdiction;
    if (hint) body.location_hint = hint;
    const answer = await form.submit(() => api('POST', '/admin/v1/orgs', body));
    if (answer) {
      target.reset();
      setCreated(answer);
      reload();
    }
  };
  return (
    <>
      <h1>Organisations</h1>
      {created && (
        <SecretOnce label={`Token of ${created.admin.name}, first Admin of ${created.org.name}`} secret={created.admin.token}>
          <p>Organisation <span class="mono">{created.org.id}</span> is ready.</p>
        </SecretOnce>
      )}
      <form class="panel" onSubmit={create} noValidate aria-labelledby="new-org-title">
        <h2 id="new-org-title">New organisation</h2>
        <div class="grid">
          <Field name="org.name" label="Name" error={form.errors['org.name']}>{(p) => <input {...p} required />}</Field>
          <Field name="org.admin" label="Its first Admin's name" error={form.errors['org.admin']}>{(p) => <input {...p} required />}</Field>
          <Field name="org.jurisdiction" label="Jurisdiction" error={form.errors['org.jurisdiction']}>
            {(p) => (
              <select {...p}>
                <option value="">none</option><option value="eu">eu</option><option value="fedramp">fedramp</option>
              </select>
            )}
          </Field>
          <Field name="org.location_hint" label="Location hint" error={form.errors['org.location_hint']}>
            {(p) => <select {...p}>{HINTS.map((h) => <option key={h} value={h}>{h || 'none'}</option>)}</select>}
          </Field>
        </div>
        <Failure error={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>Create organisation</button>
      </form>
      <Failure error={action.failure} />
      <Loaded state={orgs}>
        {(list) => (
          <Table
            caption="Organisations"
            columns={['Name', 'Id', 'Status', 'Platform routing', 'Created', 'Actions']}
            rows={list.map((o) => {
              const path = `/admin/v1/orgs/${encodeURIComponent(o.id)}`;
              return (
                <tr key={o.id} data-org={o.id}>
                  <th scope="row">{o.name}</th>
                  <td class="mono">{o.id}{o.jurisdiction ? ` (${o.jurisdiction})` : ''}</td>
                  <td><span class={`status ${o.status}`}>{o.status}</span></td>
                  <td>{o.platform_routing ? 'yes' : 'no'}</td>
                  <td>{when(o.created_at)}</td>
                  <td class="row-actions">
                    {o.status === 'active' && <ConfirmButton label="Suspend" confirm={`Suspend ${o.name}? Its keys are refused.`} onConfirm={() => act('POST', `${path}/suspend`)} />}
                    {o.status === 'suspended' && <button type="button" onClick={() => act('POST', `${path}/resume`)}>Resume</button>}
                    {o.status !== 'deleted' && (
                      <button type="button" onClick={() => act('PATCH', path, { platform_routing: !o.platform_routing })}>
                        {o.platform_routing ? 'Stop platform routing' : 'Allow platform routing'}
                      </button>
                    )}
                    {o.status !== 'deleted' && <ConfirmButton label="Delete" danger confirm={`Delete ${o.name} and everything it holds?`} onConfirm={() => act('DELETE', path)} />}
                  </td>
                </tr>
              );
            })}
          />
        )}
      </Loaded>
    </>
  );
}
