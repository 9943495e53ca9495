// One project: its boundary (owners and Admins edit it), its ceiling (Admins only), its members
// (owners and Admins manage them, and create people into it), its usage and headroom.
import { useState } from 'preact/hooks';
import { all, api } from '../api.js';
import { may, maySomewhere } from '../perm.js';
import { projectControl, readRules, RulesFields, RulesView } from '../rules.jsx';
import { ConfirmButton, Failure, Field, FormEnd, Loaded, Table, useLoad, useSubmit, when } from '../ui.jsx';
import { UsageCharts } from '../usage.jsx';
import { HeadroomOf } from './overview.jsx';
import { CreatePrincipal } from './principals.jsx';

export function ProjectScreen({ me, id }) {
  const [version, setVersion] = useState(0);
  const project = useLoad(() => api('GET', `/admin/v1/projects/${encodeURIComponent(id)}`), [id, version]);
  return (
    <Loaded state={project}>
      {(p) => <ProjectView me={me} p={p} reload={() => setVersion(version + 1)} />}
    </Loaded>
  );
}

function ProjectView({ me, p, reload }) {
  const scope = { project: p.id };
  const path = `/admin/v1/projects/${encodeURIComponent(p.id)}`;
  const removal = useSubmit();
  return (
    <>
      <p class="crumbs"><a href="#/projects">Projects</a> / {p.name}</p>
      <div class="section-head">
        <h1>{p.name}</h1>
        {may(me, 'projects.delete', scope) && (
          <ConfirmButton label="Delete project" danger confirm="Delete this project? Only a project without keys can be." onConfirm={async () => {
            if ((await removal.submit(() => api('DELETE', path))) !== undefined) location.hash = '#/projects';
          }} />
        )}
      </div>
      <Failure error={removal.failure} />
      <dl class="facts">
        <div><dt>Id</dt><dd class="mono">{p.id}</dd></div>
        <div><dt>Created</dt><dd>{when(p.created_at)} by {p.created_by}</dd></div>
        {p.description && <div><dt>Description</dt><dd>{p.description}</dd></div>}
      </dl>
      <BoundaryPart me={me} p={p} path={path} part="boundary" title="Boundary" editable={may(me, 'projects.update', scope)} reload={reload}
        about="What this project's keys may have at most; within the organisation's boundary and the ceiling." />
      <BoundaryPart me={me} p={p} path={path} part="ceiling" title="Ceiling" editable={may(me, 'projects.ceiling.write', scope)} reload={reload}
        about="The widest the boundary may be made; only Admins change it." />
      <Members me={me} p={p} path={path} />
      {may(me, 'usage.projects.read', scope) && (
        <>
          <UsageCharts path={`${path}/history`} title="Usage of this project" />
          <HeadroomOf path={`/admin/v1/headroom?project=${encodeURIComponent(p.id)}`} />
        </>
      )}
    </>
  );
}

function BoundaryPart({ p, path, part, title, about, editable, reload }) {
  const [editing, setEditing] = useState(false);
  const form = useSubmit(projectControl);
  const save = async (event) => {
    event.preventDefault();
    const rules = readRules(event.currentTarget, part, { boundary: true });
    if ((await form.submit(() => api('PATCH', path, { [part]: rules }))) !== undefined) {
      setEditing(false);
      reload();
    }
  };
  return (
    <section aria-labelledby={`${part}-title`} data-part={part}>
      <div class="section-head">
        <h2 id={`${part}-title`}>{title}</h2>
        {editable && !editing && <button type="button" onClick={() => setEditing(true)}>Edit {title.toLowerCase()}</button>}
      </div>
      <p class="muted">{about}</p>
      {editing ? (
        <form class="panel" onSubmit={save} noValidate aria-label={`Edit ${title.toLowerCase()}`}>
          <RulesFields scope={part} boundary value={p[part]} errors={form.errors} />
          <FormEnd form={form} label={`Save ${title.toLowerCase()}`} onCancel={() => setEditing(false)} />
        </form>
      ) : (
        <RulesView value={p[part]} boundary />
      )}
    </section>
  );
}

function Members({ me, p, path }) {
  const [version, setVersion] = useState(0);
  const [adding, setAdding] = useState(false);
  const manage = may(me, 'projects.members.manage', { project: p.id });
  const create = may(me, 'principals.create', { project: p.id });
  const members = useLoad(() => api('GET', `${path}/members`).then((a) => a.data), [path, version]);
  const principals = useLoad(() => (manage && maySomewhere(me, 'principals.read') ? all('/admin/v1/principals') : Promise.resolve([])), [manage]);
  const change = useSubmit();
  const reload = () => setVersion(version + 1);
  const put = (principal, role) => change.submit(() => api('PUT', `${path}/members/${encodeURIComponent(principal)}`, { role })).then(reload);
  const remove = (principal) => change.submit(() => api('DELETE', `${path}/members/${encodeURIComponent(principal)}`)).then(reload);
  const add = async (event) => {
    event.preventDefault();
    const elements = event.currentTarget.elements;
    await put(elements.namedItem('member.principal').value.trim(), elements.namedItem('member.role').value);
  };
  return (
    <section aria-labelledby="members-title">
      <div class="section-head">
        <h2 id="members-title">Members</h2>
        {create && !adding && <button type="button" onClick={() => setAdding(true)}>New person in this project</button>}
      </div>
      {adding && (
        <CreatePrincipal me={me} projects={[p]} fixedProject={p.id} onDone={() => { setAdding(false); reload(); }} />
      )}
      <Failure error={change.failure} />
      <Loaded state={members}>
        {(list) => (
          <Table
            caption={`Members of ${p.name}`}
            columns={['Name', 'Principal', 'Role', manage && 'Change']}
            empty="No members yet."
            rows={list.map((m) => (
              <tr key={m.principal} data-member={m.principal}>
                <th scope="row">{m.name}</th>
                <td class="mono">{m.principal}</td>
                <td>{m.role}</td>
                {manage && (
                  <td class="row-actions">
                    <button type="button" onClick={() => put(m.principal, m.role === 'owner' ? 'member' : 'owner')}>
                      Make {m.role === 'owner' ? 'member' : 'owner'}
                    </button>
                    <ConfirmButton label="Remove" danger confirm={`Remove ${m.name}?`} onConfirm={() => remove(m.principal)} />
                  </td>
                )}
              </tr>
            ))}
          />
        )}
      </Loaded>
      {manage && (
        <form class="inline-form" onSubmit={add} aria-label="Add a member">
          <Field name="member.principal" label="Add principal (id)">
            {(props) => (
              <>
                <input {...props} list="principal-ids" required />
                <datalist id="principal-ids">
                  {(principals.data ?? []).map((x) => <option key={x.id} value={x.id}>{x.name}</option>)}
                </datalist>
              </>
            )}
          </Field>
          <Field name="member.role" label="As">
            {(props) => (
              <select {...props}>
                <option value="member">member</option>
                <option value="owner">owner</option>
              </select>
            )}
          </Field>
          <button type="submit">Add</button>
        </form>
      )}
    </section>
  );
}
