// People (principals): those the caller may read (an owner: the members of its projects); an Admin
// creates any role, a project owner creates members of the projects it owns; the new token is shown
// once. Admins delete principals and rotate their tokens.
import { useState } from 'preact/hooks';
import { all, api } from '../api.js';
import { may, maySomewhere } from '../perm.js';
import { ConfirmButton, Failure, Field, FormEnd, Loaded, ScreenHead, SecretOnce, Table, useLoad, useSubmit, when } from '../ui.jsx';

const ROLES = ['admin', 'project_owner', 'member', 'finance'];

export function Principals({ me }) {
  const [version, setVersion] = useState(0);
  const [creating, setCreating] = useState(false);
  const [rotated, setRotated] = useState(null);
  const principals = useLoad(() => all('/admin/v1/principals'), [version]);
  const projects = useLoad(() => all('/admin/v1/projects'), []);
  const action = useSubmit();
  const reload = () => setVersion(version + 1);
  const intoProjects = (projects.data ?? []).filter((p) => may(me, 'principals.create', { project: p.id }));
  const manages = may(me, 'principals.delete') || may(me, 'principals.rotate_token');
  const rotate = async (principal) => {
    const answer = await action.submit(() => api('POST', `/admin/v1/principals/${encodeURIComponent(principal.id)}/rotate-token`, { grace_seconds: 0 }));
    if (answer) setRotated(answer);
  };
  return (
    <>
      <ScreenHead title="People">
        {maySomewhere(me, 'principals.create') && !creating && (
          <button type="button" class="primary" onClick={() => setCreating(true)}>New person</button>
        )}
      </ScreenHead>
      {creating && <CreatePrincipal me={me} projects={intoProjects} onDone={() => { setCreating(false); reload(); }} />}
      {rotated && <SecretOnce label={`New token of ${rotated.name}`} secret={rotated.token} />}
      <Failure error={action.failure} />
      <Loaded state={principals}>
        {(list) => (
          <Table
            caption="People"
            columns={['Name', 'Id', 'Role', 'Projects', 'Token', 'Token expires', manages && 'Actions']}
            rows={list.map((x) => (
              <tr key={x.id} data-principal={x.id}>
                <th scope="row">{x.name}{x.email && <span class="muted"> · {x.email}</span>}</th>
                <td class="mono">{x.id}</td>
                <td>{x.role.replace('_', ' ')}</td>
                <td>{x.projects.map((m) => `${m.project} (${m.role})`).join(', ') || '—'}</td>
                <td class="mono">{x.masked_token}</td>
                <td>{when(x.token_expires_at)}</td>
                {manages && (
                  <td class="row-actions">
                    {may(me, 'principals.rotate_token') && x.id !== me.id && (
                      <ConfirmButton label="Rotate token" confirm={`Give ${x.name} a new token? The old one stops now.`} onConfirm={() => rotate(x)} />
                    )}
                    {may(me, 'principals.delete') && x.id !== me.id && (
                      <ConfirmButton label="Delete" danger confirm={`Delete ${x.name}? Its token stops working; its keys stay.`}
                        onConfirm={() => action.submit(() => api('DELETE', `/admin/v1/principals/${encodeURIComponent(x.id)}`)).then(reload)} />
                    )}
                  </td>
                )}
              </tr>
            ))}
          />
        )}
      </Loaded>
    </>
  );
}

/**
 * The form that creates a principal: an Admin picks any role, a project owner creates members;
 * `fixedProject` puts the new principal into that project. Shows the token once.
 */
export function CreatePrincipal({ me, projects, fixedProject, onDone }) {
  const [created, setCreated] = useState(null);
  const form = useSubmit((field) => `principal.${field.replace(/\[\d+\].*$/, '')}`);
  const roles = me.role === 'admin' ? ROLES : ['member'];
  const create = async (event) => {
    event.preventDefault();
    const elements = event.currentTarget.elements;
    const chosen = fixedProject ? [fixedProject] : projects.filter((p) => elements.namedItem(`principal.project.${p.id}`)?.checked).map((p) => p.id);
    const email = elements.namedItem('principal.email').value.trim();
    const body = { name: elements.namedItem('principal.name').value.trim(), role: elements.namedItem('principal.role').value, projects: chosen };
    if (email) body.email = email;
    const principal = await form.submit(() => api('POST', '/admin/v1/principals', body));
    if (principal) setCreated(principal);
  };
  if (created) {
    return (
      <SecretOnce label={`Token of ${created.name} (${created.role.replace('_', ' ')})`} secret={created.token}>
        <p>Hand it to {created.name}: it signs them in here and to the admin API.</p>
        <button type="button" onClick={() => onDone(created)}>Done</button>
      </SecretOnce>
    );
  }
  return (
    <form class="panel" onSubmit={create} aria-labelledby="new-principal-title" noValidate>
      <h2 id="new-principal-title">New person</h2>
      <div class="grid">
        <Field name="principal.name" label="Name" error={form.errors['principal.name']}>
          {(p) => <input {...p} required />}
        </Field>
        <Field name="principal.role" label="Role" error={form.errors['principal.role']}>
          {(p) => (
            <select {...p}>
              {roles.map((role) => <option key={role} value={role}>{role.replace('_', ' ')}</option>)}
            </select>
          )}
        </Field>
        <Field name="principal.email" label="Email (for single sign-on)" error={form.errors['principal.email']}>
          {(p) => <input {...p} type="email" autocomplete="off" />}
        </Field>
      </div>
      {!fixedProject && projects.length > 0 && (
        <fieldset class="choices" aria-describedby={form.errors['principal.projects'] ? 'f-principal-projects-error' : undefined}>
          <legend>Projects (a project owner owns them; others are members)</legend>
          {projects.map((p) => (
            <label key={p.id}>
              <input type="checkbox" name={`principal.project.${p.id}`} /> {p.name}
            </label>
          ))}
          {form.errors['principal.projects'] && <p class="field-error" id="f-principal-projects-error" role="alert">{form.errors['principal.projects']}</p>}
        </fieldset>
      )}
      <FormEnd form={form} label="Create" onCancel={() => onDone(null)} />
    </form>
  );
}
