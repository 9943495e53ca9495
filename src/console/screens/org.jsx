// The organisation (Admins): its boundary, the widest any key of it may have; single sign-on
// through Cloudflare Access; its upstream credentials (write-only, shown masked); its routing.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { may } from '../perm.js';
import { readRules, ruleControl, RulesFields, RulesView } from '../rules.jsx';
import { ConfirmButton, Failure, Field, FormEnd, Loaded, Table, useLoad, useSubmit, when } from '../ui.jsx';

export function OrgScreen({ me }) {
  return (
    <>
      <h1>Organisation</h1>
      <Boundary me={me} />
      {may(me, 'org.policy.write') && <SingleSignOn />}
      {may(me, 'org.credentials.read') && <Credentials me={me} />}
      {may(me, 'org.routing.read') && <Routing />}
    </>
  );
}

function Boundary({ me }) {
  const [editing, setEditing] = useState(false);
  const [version, setVersion] = useState(0);
  const policy = useLoad(() => api('GET', '/admin/v1/org/policy'), [version]);
  const form = useSubmit((field) => ruleControl('org', field.replace(/^policy\./, '')));
  const save = async (event) => {
    event.preventDefault();
    const rules = readRules(event.currentTarget, 'org', { boundary: true });
    if ((await form.submit(() => api('PUT', '/admin/v1/org/policy', rules))) !== undefined) {
      setEditing(false);
      setVersion(version + 1);
    }
  };
  return (
    <section aria-labelledby="boundary-title" data-part="org">
      <div class="section-head">
        <h2 id="boundary-title">Boundary</h2>
        {may(me, 'org.policy.write') && !editing && <button type="button" onClick={() => setEditing(true)}>Edit boundary</button>}
      </div>
      <p class="muted">The most any key of the organisation may have; projects narrow it.</p>
      <Loaded state={policy}>
        {(b) =>
          editing ? (
            <form class="panel" onSubmit={save} noValidate aria-label="Edit the organisation's boundary">
              <RulesFields scope="org" boundary value={b} errors={form.errors} />
              <FormEnd form={form} label="Save boundary" onCancel={() => setEditing(false)} />
            </form>
          ) : (
            <RulesView value={b} boundary />
          )
        }
      </Loaded>
    </section>
  );
}

function SingleSignOn() {
  const [version, setVersion] = useState(0);
  const settings = useLoad(() => api('GET', '/admin/v1/org/access').catch((e) => (e.status === 404 ? null : Promise.reject(e))), [version]);
  const form = useSubmit((field) => `sso.${field}`);
  const save = async (event) => {
    event.preventDefault();
    const elements = event.currentTarget.elements;
    const body = { team_domain: elements.namedItem('sso.team_domain').value.trim(), audience: elements.namedItem('sso.audience').value.trim() };
    if ((await form.submit(() => api('PUT', '/admin/v1/org/access', body))) !== undefined) setVersion(version + 1);
  };
  const remove = () => form.submit(() => api('DELETE', '/admin/v1/org/access')).then(() => setVersion(version + 1));
  return (
    <section aria-labelledby="sso-title">
      <h2 id="sso-title">Single sign-on (Cloudflare Access)</h2>
      <p class="muted">People whose email matches a principal's sign in through your Access application.</p>
      <Loaded state={{ ...settings, data: settings.loading ? undefined : settings.data ?? {} }}>
        {(s) => (
          <form class="inline-form" onSubmit={save} noValidate>
            <Field name="sso.team_domain" label="Team domain" hint="myteam.cloudflareaccess.com" error={form.errors['sso.team_domain']}>
              {(p) => <input {...p} defaultValue={s.team_domain ?? ''} required />}
            </Field>
            <Field name="sso.audience" label="Application audience (AUD tag)" error={form.errors['sso.audience']}>
              {(p) => <input {...p} defaultValue={s.audience ?? ''} required />}
            </Field>
            <button type="submit">Save</button>
            {s.team_domain && <ConfirmButton label="Turn off" danger confirm="Turn single sign-on off?" onConfirm={remove} />}
          </form>
        )}
      </Loaded>
      <Failure error={form.failure} />
    </section>
  );
}

function Credentials({ me }) {
  const [version, setVersion] = useState(0);
  const credentials = useLoad(() => api('GET', '/admin/v1/org/credentials').then((a) => a.data), [version]);
  const form = useSubmit((field) => `credential.${field}`);
  const write = may(me, 'org.credentials.write');
  const save = async (event) => {
    event.preventDefault();
    const target = event.currentTarget;
    const elements = target.elements;
    const name = elements.namedItem('credential.name').value.trim();
    const body = { provider: elements.namedItem('credential.provider').value, secret: elements.namedItem('credential.secret').value };
    const baseUrl = elements.namedItem('credential.base_url').value.trim();
    if (baseUrl) body.base_url = baseUrl;
    elements.namedItem('credential.secret').value = '';
    if ((await form.submit(() => api('PUT', `/admin/v1/org/credentials/${encodeURIComponent(name)}`, body))) !== undefined) {
      target.reset();
      setVersion(version + 1);
    }
  };
  const remove = (name) => form.submit(() => api('DELETE', `/admin/v1/org/credentials/${encodeURIComponent(name)}`)).then(() => setVersion(version + 1));
  return (
    <section aria-labelledby="credentials-title">
      <h2 id="credentials-title">Upstream credentials</h2>
      <Loaded state={credentials}>
        {(list) => (
          <Table
            caption="Upstream credentials"
            columns={['Name', 'Provider', 'Secret', 'Updated', write && 'Actions']}
            empty="None: keys use the deployment's upstream."
            rows={list.map((c) => (
              <tr key={c.name}>
                <th scope="row">{c.name}</th><td>{c.provider}</td><td class="mono">{c.masked}</td><td>{when(c.updated_at)}</td>
                {write && <td><ConfirmButton label="Delete" danger confirm={`Delete ${c.name}?`} onConfirm={() => remove(c.name)} /></td>}
              </tr>
            ))}
          />
        )}
      </Loaded>
      {write && (
        <form class="inline-form" onSubmit={save} noValidate aria-label="Store a credential">
          <Field name="credential.name" label="Name" error={form.errors['credential.name']}>{(p) => <input {...p} required />}</Field>
          <Field name="credential.provider" label="Provider" error={form.errors['credential.provider']}>
            {(p) => (
              <select {...p}>
                {['openai', 'anthropic', 'gemini', 'openai_compatible'].map((x) => <option key={x} value={x}>{x}</option>)}
              </select>
            )}
          </Field>
          <Field name="credential.secret" label="Secret (write-only)" error={form.errors['credential.secret']}>
            {(p) => <input {...p} type="password" autocomplete="off" required />}
          </Field>
          <Field name="credential.base_url" label="Base URL (optional)" error={form.errors['credential.base_url']}>{(p) => <input {...p} type="url" />}</Field>
          <button type="submit">Store</button>
        </form>
      )}
      <Failure error={form.failure} />
    </section>
  );
}

function Routing() {
  const routing = useLoad(() => api('GET', '/admin/v1/org/routing'), []);
  return (
    <section aria-labelledby="routing-title">
      <h2 id="routing-title">Routing groups</h2>
      <p class="muted">The groups that serve the organisation's keys (set through the admin API).</p>
      <Loaded state={routing}>
        {(r) => (
          <details>
            <summary>Show the routing groups</summary>
            <pre class="json">{JSON.stringify(r, null, 2)}</pre>
          </details>
        )}
      </Loaded>
    </section>
  );
}
