// Webhooks (Admins): the endpoints that receive the organisation's events, each with its recent
// deliveries; a new endpoint's signing secret is shown once.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ConfirmButton, Failure, Field, Loaded, SecretOnce, Table, useLoad, useSubmit, when } from '../ui.jsx';

const EVENTS = ['key.created', 'key.updated', 'key.disabled', 'key.enabled', 'key.rotated', 'key.deleted', 'usage.alert', 'usage.limit_reached'];

export function Webhooks() {
  const [version, setVersion] = useState(0);
  const [created, setCreated] = useState(null);
  const [open, setOpen] = useState(null);
  const endpoints = useLoad(() => api('GET', '/admin/v1/webhooks').then((a) => a.data), [version]);
  const form = useSubmit((field) => `webhook.${field.replace(/\[\d+\].*$/, '')}`);
  const create = async (event) => {
    event.preventDefault();
    const target = event.currentTarget;
    const elements = target.elements;
    const chosen = EVENTS.filter((e) => elements.namedItem(`webhook.event.${e}`).checked);
    const body = { url: elements.namedItem('webhook.url').value.trim(), events: chosen.length ? chosen : ['*'] };
    const endpoint = await form.submit(() => api('POST', '/admin/v1/webhooks', body));
    if (endpoint) {
      target.reset();
      setCreated(endpoint);
      setVersion(version + 1);
    }
  };
  const remove = (id) => form.submit(() => api('DELETE', `/admin/v1/webhooks/${encodeURIComponent(id)}`)).then(() => setVersion(version + 1));
  return (
    <>
      <h1>Webhooks</h1>
      {created?.secret && <SecretOnce label={`Signing secret of ${created.url}`} secret={created.secret} kept="The outbox keeps it to sign each delivery; no answer shows it again." />}
      <form class="panel" onSubmit={create} noValidate aria-labelledby="new-webhook-title">
        <h2 id="new-webhook-title">New endpoint</h2>
        <Field name="webhook.url" label="URL" hint="https://…" error={form.errors['webhook.url']}>
          {(p) => <input {...p} type="url" required />}
        </Field>
        <fieldset class="choices">
          <legend>Events (none ticked: every event, including ones added later)</legend>
          {EVENTS.map((e) => (
            <label key={e}><input type="checkbox" name={`webhook.event.${e}`} /> {e}</label>
          ))}
        </fieldset>
        {form.errors['webhook.events'] && <p class="field-error" role="alert">{form.errors['webhook.events']}</p>}
        <Failure error={form.failure} />
        <button type="submit" class="primary" disabled={form.busy}>Add endpoint</button>
      </form>
      <Loaded state={endpoints}>
        {(list) => (
          <ul class="endpoints">
            {list.length === 0 && <li class="muted">No endpoints.</li>}
            {list.map((w) => (
              <li key={w.id} data-webhook={w.id}>
                <div class="section-head">
                  <h2 class="mono">{w.url}</h2>
                  <span>
                    <button type="button" aria-expanded={open === w.id} onClick={() => setOpen(open === w.id ? null : w.id)}>Deliveries</button>{' '}
                    <ConfirmButton label="Delete" danger confirm="Delete this endpoint and its pending deliveries?" onConfirm={() => remove(w.id)} />
                  </span>
                </div>
                <p class="muted">{w.events.join(', ')} · since {when(w.created_at)}</p>
                {open === w.id && <Deliveries id={w.id} />}
              </li>
            ))}
          </ul>
        )}
      </Loaded>
    </>
  );
}

function Deliveries({ id }) {
  const deliveries = useLoad(() => api('GET', `/admin/v1/webhooks/${encodeURIComponent(id)}/deliveries`).then((a) => a.data), [id]);
  return (
    <Loaded state={deliveries}>
      {(list) => (
        <Table
          caption="Deliveries"
          columns={['Event', 'Status', ['Attempts', 'num'], 'Last answer', 'When']}
          empty="No deliveries yet."
          rows={list.map((d) => (
            <tr key={d.event_id}>
              <th scope="row">{d.type}</th><td>{d.status}</td><td class="num">{d.attempts}</td>
              <td>{d.last_status ?? ''} {d.last_error ?? ''}</td><td>{when(d.updated_at)}</td>
            </tr>
          ))}
        />
      )}
    </Loaded>
  );
}
