// One key: what it is and what the boundaries make of it, its usage (pictures, totals, headroom of
// each limit), and the actions the caller's standing toward it allows: edit, disable / enable,
// rotate with a grace period (the new secret shown once), delete.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { Headroom } from '../charts.jsx';
import { may } from '../perm.js';
import { ruleControl, RulesView } from '../rules.jsx';
import { ConfirmButton, Failure, Field, FormEnd, Loaded, money, number, SecretOnce, Table, useLoad, useSubmit, when } from '../ui.jsx';
import { UsageCharts } from '../usage.jsx';
import { KeyFields, readKey } from './keyform.jsx';

const GRACES = [
  [0, 'none: the old secret stops now'],
  [3600, '1 hour'],
  [86400, '1 day'],
  [604800, '7 days'],
];

export function KeyScreen({ me, id }) {
  const [version, setVersion] = useState(0);
  const key = useLoad(() => api('GET', `/admin/v1/keys/${encodeURIComponent(id)}`), [id, version]);
  const reload = () => setVersion(version + 1);
  return (
    <Loaded state={key}>
      {(k) => <KeyView me={me} k={k} reload={reload} />}
    </Loaded>
  );
}

function KeyView({ me, k, reload }) {
  const [editing, setEditing] = useState(false);
  const [rotated, setRotated] = useState(null);
  const action = useSubmit();
  const resource = { project: k.project, creator: k.creator };
  const path = `/admin/v1/keys/${encodeURIComponent(k.id)}`;
  const act = async (method, suffix, body) => {
    const answer = await action.submit(() => api(method, `${path}${suffix}`, body));
    if (answer !== undefined) reload();
    return answer;
  };
  const live = k.status !== 'deleted';
  return (
    <>
      <p class="crumbs"><a href="#/keys">Keys</a> / {k.name}</p>
      <div class="section-head">
        <h1>{k.name}</h1>
        <span class={`status ${k.expired ? 'expired' : k.status}`} data-status={k.status}>{k.expired ? 'expired' : k.status}</span>
      </div>
      {rotated && (
        <SecretOnce label="New secret" secret={rotated.key}>
          <p>
            {rotated.previous_secret_valid_until
              ? `The previous secret keeps working until ${when(rotated.previous_secret_valid_until)}.`
              : 'The previous secret stopped working.'}
          </p>
        </SecretOnce>
      )}
      <div class="actions" role="group" aria-label="Key actions">
        {live && may(me, 'keys.update', resource) && !editing && <button type="button" onClick={() => setEditing(true)}>Edit</button>}
        {k.status === 'active' && may(me, 'keys.disable', resource) && (
          <button type="button" onClick={() => act('POST', '/disable')}>Disable</button>
        )}
        {k.status === 'disabled' && may(me, 'keys.enable', resource) && (
          <button type="button" onClick={() => act('POST', '/enable')}>Enable</button>
        )}
        {live && may(me, 'keys.rotate', resource) && <Rotate onRotate={async (grace) => setRotated(await act('POST', '/rotate', { grace_seconds: grace }))} />}
        {live && may(me, 'keys.delete', resource) && (
          <ConfirmButton label="Delete" danger confirm="Delete this key for good? Calls with it stop at once." onConfirm={() => act('DELETE', '')} />
        )}
      </div>
      <Failure error={action.failure} />
      {editing && <EditKey k={k} path={path} onDone={(changed) => { setEditing(false); if (changed) reload(); }} />}
      <section aria-labelledby="facts-title">
        <h2 id="facts-title">About this key</h2>
        <dl class="facts">
          <div><dt>Id</dt><dd class="mono">{k.id}</dd></div>
          <div><dt>Secret</dt><dd class="mono">{k.masked} (version {k.secret_version})</dd></div>
          <div><dt>Project</dt><dd><a href={`#/projects/${k.project}`}>{k.project}</a></dd></div>
          <div><dt>Creator</dt><dd>{k.creator}</dd></div>
          <div><dt>Created</dt><dd>{when(k.created_at)}</dd></div>
          <div><dt>Last used</dt><dd>{when(k.last_used_at)}</dd></div>
          <div><dt>Expires</dt><dd>{when(k.expires_at)}</dd></div>
          <div><dt>Tags</dt><dd>{(k.tags ?? []).join(', ') || '—'}</dd></div>
          {k.description && <div><dt>Description</dt><dd>{k.description}</dd></div>}
        </dl>
        <h3>Its rules</h3>
        <RulesView value={k.policy} />
        <h3>What the boundaries leave it</h3>
        <RulesView value={{ limits: k.effective.limits }} limitsOnly />
      </section>
      {may(me, 'usage.keys.read', resource) && <KeyUsage k={k} path={path} />}
    </>
  );
}

function Rotate({ onRotate }) {
  const [open, setOpen] = useState(false);
  if (!open) return <button type="button" onClick={() => setOpen(true)}>Rotate</button>;
  const submit = (event) => {
    event.preventDefault();
    setOpen(false);
    onRotate(Number(event.currentTarget.elements.namedItem('grace').value));
  };
  return (
    <form class="inline-form" onSubmit={submit}>
      <Field name="grace" label="The old secret keeps working for">
        {(p) => (
          <select {...p} defaultValue="3600">
            {GRACES.map(([seconds, label]) => <option key={seconds} value={seconds}>{label}</option>)}
          </select>
        )}
      </Field>
      <button type="submit" class="primary">Rotate now</button>
      <button type="button" onClick={() => setOpen(false)}>Cancel</button>
    </form>
  );
}

function EditKey({ k, path, onDone }) {
  const form = useSubmit((field) => ruleControl('key', field));
  const save = async (event) => {
    event.preventDefault();
    const body = readKey(event.currentTarget);
    const answer = await form.submit(() => api('PATCH', path, body));
    if (answer) onDone(true);
  };
  return (
    <form class="panel" onSubmit={save} aria-labelledby="edit-title" noValidate>
      <h2 id="edit-title">Edit {k.name}</h2>
      <KeyFields value={k} errors={form.errors} />
      <FormEnd form={form} label="Save" onCancel={() => onDone(false)} />
    </form>
  );
}

function KeyUsage({ k, path }) {
  const usage = useLoad(() => api('GET', `${path}/usage`), [path]);
  return (
    <>
      <Loaded state={usage}>
        {(u) => (
          <section aria-labelledby="totals-title">
            <h2 id="totals-title">Usage</h2>
            <Table
              caption="Usage per period"
              columns={['Period', ['Requests', 'num'], ['Tokens', 'num'], ['Spend', 'num']]}
              rows={[['Today (UTC)', u.usage.today], ['This month', u.usage.month], ['In total', u.usage.total]].map(([label, t]) => (
                <tr key={label} data-period={label}>
                  <th scope="row">{label}</th>
                  <td class="num">{number(t.requests)}</td>
                  <td class="num">{number(t.tokens)}</td>
                  <td class="num">{money(t.cost_micros)}</td>
                </tr>
              ))}
            />
            <Headroom keys={[{ key_id: k.id, name: k.name, limits: u.limits }]} title="Headroom of each limit" link={false} />
          </section>
        )}
      </Loaded>
      <UsageCharts path={`${path}/history`} title="Usage over time" />
    </>
  );
}
