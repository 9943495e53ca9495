// The caller's own account: who it is, its session, its projects; a new token for itself (anyone
// may rotate their own, shown once) and signing out on every device.
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { signOutEverywhere } from '../session.js';
import { ConfirmButton, Failure, SecretOnce, useSubmit, when } from '../ui.jsx';

export function Account({ me, setMe }) {
  const [rotated, setRotated] = useState(null);
  const action = useSubmit();
  const everywhere = async () => {
    if ((await action.submit(signOutEverywhere)) !== undefined) setMe(null);
  };
  const rotate = async () => {
    const answer = await action.submit(() => api('POST', `/admin/v1/principals/${encodeURIComponent(me.id)}/rotate-token`, { grace_seconds: 0 }));
    if (answer) setRotated(answer);
  };
  return (
    <>
      <h1>Account</h1>
      <dl class="facts">
        <div><dt>Name</dt><dd>{me.name}</dd></div>
        <div><dt>Id</dt><dd class="mono">{me.id}</dd></div>
        <div><dt>Role</dt><dd>{me.operator ? 'operator' : me.role?.replace('_', ' ')}</dd></div>
        {me.org && <div><dt>Organisation</dt><dd class="mono">{me.org}</dd></div>}
        <div><dt>Projects</dt><dd>{me.projects.map((p) => `${p.project} (${p.role})`).join(', ') || '—'}</dd></div>
        {me.session && <div><dt>Session ends</dt><dd>{when(me.session.expires_at)} at the latest; after 30 minutes idle sooner</dd></div>}
      </dl>
      {rotated && <SecretOnce label="Your new token" secret={rotated.token}><p>Your previous token stopped working.</p></SecretOnce>}
      <Failure error={action.failure} />
      <div class="actions">
        {!me.operator && <ConfirmButton label="New token" confirm="Replace your token? The current one stops working now." onConfirm={rotate} />}
        <ConfirmButton label="Sign out everywhere" danger confirm="End every session of yours, on every device?" onConfirm={everywhere} />
      </div>
    </>
  );
}
