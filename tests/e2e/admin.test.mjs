// The admin API end to end: the built worker in workerd (Miniflare) with its Registry, ledger
// objects and KV, in front of the mock upstream.
//
// 1. A lifecycle walk: the bootstrap Admin creates a project and a project owner, who creates a
//    member, who creates a key, calls a model with it, reads its usage, rotates it (the old
//    secret works within the grace period, never after), is refused a policy above the
//    boundary; a tightened boundary applies from the key's next request; an Admin disables it.
// 2. Key changes raise key.* webhook events (through the outbox; subscribed via the admin API).
// 3. The role × action table, cell by cell over HTTP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, ADMIN_TOKEN, json, pollUntil, sha256hex } from './harness.mjs';
import { startReceiver, waitFor } from './webhook-receiver.mjs';

let gw;
before(async () => {
  gw = await startGateway();
});
after(async () => {
  await gw?.close();
});

/** An admin API client acting with `token`. */
function as(token) {
  const call = async (method, path, body) => {
    const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await gw.fetch(`/admin/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null, text, headers: res.headers };
  };
  return {
    get: (p) => call('GET', p),
    post: (p, b) => call('POST', p, b ?? {}),
    put: (p, b) => call('PUT', p, b),
    patch: (p, b) => call('PATCH', p, b),
    del: (p) => call('DELETE', p),
  };
}

const admin = as(ADMIN_TOKEN);

/** Asserts the answer's status and returns its body. */
function expect(answer, status, what) {
  assert.equal(answer.status, status, `${what}: ${answer.text}`);
  return answer.body;
}

const chat = (key) =>
  gw.fetch(
    '/openai/v1/chat/completions',
    json({ model: 'gpt-4o', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }, { authorization: `Bearer ${key}` }),
  );

async function chatStatus(key) {
  const res = await chat(key);
  await res.arrayBuffer();
  return res.status;
}

/** Polls `read` until `done(value)` (the ledger settles after the response). */
async function eventually(read, done, what) {
  let value;
  for (let i = 0; i < 50; i++) {
    value = await read();
    if (done(value)) return value;
    await sleep(50);
  }
  assert.fail(`${what}: last value ${JSON.stringify(value)}`);
}

test('tokens: missing and unknown are 401, the OpenAPI document is public', async () => {
  const missing = await as(undefined).get('/me');
  assert.equal(missing.status, 401);
  assert.equal(missing.body.error.code, 'missing_admin_token');
  const unknown = await as('tka_not-a-real-token').get('/me');
  assert.equal(unknown.status, 401);
  assert.equal(unknown.body.error.type, 'authentication_error');
  const me = expect(await admin.get('/me'), 200, 'bootstrap admin');
  assert.equal(me.role, 'admin');
  const doc = expect(await as(undefined).get('/openapi.json'), 200, 'openapi');
  assert.match(doc.openapi, /^3\./);
  assert.ok(doc.paths['/keys/{id}/rotate'], 'the document describes rotation');
  const huge = await gw.postOnce('/admin/v1/keys',
    { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    [JSON.stringify({ name: 'x'.repeat(70_000), project: 'p' })]);
  assert.equal(huge.status, 413);
});

test('lifecycle: project → owner → member → key → call → usage → rotate → boundary → disable', async () => {
  expect(await admin.put('/org/policy', { limits: { rpm: 100 } }), 200, 'org policy');
  const project = expect(await admin.post('/projects', { name: 'search', boundary: { limits: { rpm: 50 } } }), 201, 'project');
  assert.match(project.id, /^prj_/);

  const olga = expect(await admin.post('/principals', { name: 'Olga', role: 'project_owner', projects: [project.id] }), 201, 'owner');
  assert.match(olga.token, /^tka_/);
  assert.deepEqual(olga.projects, [{ project: project.id, role: 'owner' }]);
  const owner = as(olga.token);
  const max = expect(await owner.post('/principals', { name: 'Max', role: 'member', projects: [project.id] }), 201, 'member');
  const member = as(max.token);
  expect(await owner.post('/principals', { name: 'Eve', role: 'admin' }), 403, 'owners create members only');

  // Create: the plaintext once, a masked form afterwards.
  const created = expect(
    await member.post('/keys', { name: 'ci bot', project: project.id, tags: ['ci'], limits: { rpm: 20 } }),
    201,
    'key',
  );
  const secret = created.key;
  assert.match(secret, /^tk_[0-9A-Za-z]{40}$/);
  assert.equal(created.masked, `tk_...${secret.slice(-4)}`);
  assert.equal(created.creator, max.id);
  assert.equal(created.effective.limits.rpm, 20);
  const shown = expect(await member.get(`/keys/${created.id}`), 200, 'get key');
  assert.ok(!JSON.stringify(shown).includes(secret), 'the key is never shown again');
  assert.equal(shown.masked, created.masked);

  // Call a model with it; usage shows up once the ledger settled.
  assert.equal(await chatStatus(secret), 200);
  const usage = await eventually(
    async () => expect(await member.get(`/keys/${created.id}/usage`), 200, 'usage').usage,
    (u) => u.total.requests === 1 && u.total.output_tokens > 0,
    'key usage',
  );
  assert.ok(usage.today.input_tokens > 0 && usage.month.tokens === usage.total.tokens);
  const report = expect(await member.get(`/keys/${created.id}/usage`), 200, 'usage');
  assert.deepEqual(
    report.limits.map((l) => [l.scope, l.limit, l.used]),
    [['rpm', 20, 1]],
  );
  const projectUsage = expect(await owner.get(`/projects/${project.id}/usage`), 200, 'project usage');
  assert.equal(projectUsage.usage.total.requests, 1);
  assert.equal(projectUsage.keys[0].key_id, created.id);
  expect(await member.get(`/projects/${project.id}/usage`), 403, 'members see their keys only');
  const finance = as(expect(await admin.post('/principals', { name: 'Fin', role: 'finance' }), 201, 'finance').token);
  const orgUsage = expect(await finance.get('/usage'), 200, 'org usage');
  const line = orgUsage.projects.find((p) => p.project_id === project.id);
  assert.equal(line.usage.total.requests, 1);
  assert.equal(line.usage.total.cost_micros, usage.total.cost_micros);
  assert.ok(orgUsage.usage.total.requests >= 1);
  expect(await finance.post(`/keys/${created.id}/disable`), 403, 'finance manages no keys');

  // Rotate with a grace period: both secrets work, then only the new one.
  const rotated = expect(await member.post(`/keys/${created.id}/rotate`, { grace_seconds: 1.5 }), 200, 'rotate');
  const secret2 = rotated.key;
  assert.notEqual(secret2, secret);
  assert.equal(rotated.secret_version, 2);
  const record = async (s) => JSON.parse(await gw.kv.get(`key:${sha256hex(s)}`));
  assert.equal((await record(secret)).secret_version, 1, 'during grace KV holds the old secret at its version');
  assert.equal((await record(secret2)).secret_version, 2);
  assert.equal(await chatStatus(secret), 200, 'old secret within grace');
  assert.equal(await chatStatus(secret2), 200, 'new secret');
  await sleep(Math.max(0, rotated.previous_secret_valid_until - Date.now()) + 300);
  assert.equal(await chatStatus(secret), 401, 'old secret after grace');
  assert.equal(await chatStatus(secret2), 200, 'new secret after grace');
  // Even where an edge still serves the old record, the key's ledger object refuses it.
  await gw.kv.put(`key:${sha256hex(secret)}`, JSON.stringify({ ...(await record(secret2)), secret_version: 1 }));
  const stale = await chat(secret);
  assert.equal(stale.status, 401, 'a stale KV copy of the old secret is refused');
  assert.equal((await stale.json()).error.code, 'invalid_api_key');
  await gw.kv.delete(`key:${sha256hex(secret)}`);
  const afterRotation = await eventually(
    async () => expect(await member.get(`/keys/${created.id}/usage`), 200, 'usage').usage.total.requests,
    (n) => n === 4,
    'counters carry over a rotation',
  );
  assert.equal(afterRotation, 4);

  // Above the boundary: refused, naming the field.
  const above = expect(await member.patch(`/keys/${created.id}`, { limits: { rpm: 60 } }), 400, 'above boundary');
  assert.equal(above.error.code, 'boundary_exceeded');
  assert.match(above.error.message, /^limits\.rpm: 60 is above the boundary of project/);
  const aboveOrg = expect(await owner.patch(`/projects/${project.id}`, { boundary: { limits: { rpm: 500 } } }), 400, 'project above org');
  assert.match(aboveOrg.error.message, /^boundary\.limits\.rpm: 500 is above the organisation boundary/);

  // Tightening the boundary applies to the existing key from its next request.
  expect(await owner.patch(`/projects/${project.id}`, { boundary: { limits: { rpm: 4 } } }), 200, 'tighten');
  const tightened = await chat(secret2);
  await tightened.arrayBuffer();
  assert.equal(tightened.status, 429, 'rpm 4 already used this minute');
  assert.ok(tightened.headers.get('retry-after'));
  assert.equal(expect(await member.get(`/keys/${created.id}`), 200, 'get').effective.limits.rpm, 4);
  expect(await owner.patch(`/projects/${project.id}`, { boundary: { limits: { rpm: 50 } } }), 200, 'loosen');
  // An edge may repeat a full window's refusal for up to a second without asking the key's
  // object (REFUSAL_HOLD_MAX_MS), so a loosened limit applies within that second.
  assert.equal(await pollUntil(() => chatStatus(secret2), (s) => s === 200, { timeoutMs: 2500 }), 200, 'loosening restores the key');

  // An Admin disables it: the next call is refused; enabling restores it; deleting ends it.
  const disabling = await admin.post(`/keys/${created.id}/disable`);
  assert.equal(disabling.headers.get('teamkeys-propagation'), null, 'KV and the ledger object have it');
  assert.equal(expect(disabling, 200, 'disable').status, 'disabled');
  const refused = await chat(secret2);
  assert.equal(refused.status, 401);
  assert.equal((await refused.json()).error.code, 'key_disabled');
  expect(await member.post(`/keys/${created.id}/enable`), 200, 'enable');
  assert.equal(await chatStatus(secret2), 200, 'enabled again');
  expect(await member.del(`/keys/${created.id}`), 200, 'delete');
  assert.equal(await chatStatus(secret2), 401, 'deleted');
  expect(await member.post(`/keys/${created.id}/enable`), 409, 'a deleted key stays deleted');

  // The audit log has every change, before and after, and never a secret.
  const audit = expect(await admin.get('/audit?limit=200'), 200, 'audit');
  const actions = audit.data.filter((e) => e.target_id === created.id).map((e) => e.action);
  assert.deepEqual(actions, ['keys.delete', 'keys.enable', 'keys.disable', 'keys.rotate', 'keys.create']);
  const rotation = audit.data.find((e) => e.action === 'keys.rotate');
  assert.equal(rotation.actor, max.id);
  assert.equal(rotation.before.secret_version, 1);
  assert.equal(rotation.after.secret_version, 2);
  for (const s of [secret, secret2, olga.token, max.token]) assert.ok(!JSON.stringify(audit).includes(s), 'no secret in the audit log');
  expect(await member.get('/audit'), 403, 'audit is for admins');
});

test('events: every key change is delivered as a key.* webhook, without secrets', async () => {
  const receiver = await startReceiver();
  try {
    const types = ['key.created', 'key.updated', 'key.disabled', 'key.enabled', 'key.rotated', 'key.deleted'];
    const endpoint = expect(await admin.post('/webhooks', { url: receiver.url, events: types }), 201, 'endpoint');
    expect(await as('tka_not-a-real-token').get('/webhooks'), 401, 'webhooks need a known token');
    const project = expect(await admin.post('/projects', { name: 'events' }), 201, 'project').id;
    const key = expect(await admin.post('/keys', { name: 'evented', project }), 201, 'key');
    expect(await admin.patch(`/keys/${key.id}`, { tags: ['x'] }), 200, 'update');
    expect(await admin.post(`/keys/${key.id}/disable`), 200, 'disable');
    expect(await admin.post(`/keys/${key.id}/enable`), 200, 'enable');
    const rotated = expect(await admin.post(`/keys/${key.id}/rotate`), 200, 'rotate');
    expect(await admin.del(`/keys/${key.id}`), 200, 'delete');
    const delivered = await waitFor(() => receiver.delivered().length >= types.length && receiver.delivered(), {
      what: 'six key events',
    });
    const bodies = delivered.map((r) => JSON.parse(r.body));
    assert.deepEqual(bodies.map((e) => e.type), types);
    for (const e of bodies) {
      assert.equal(e.data.key.id, key.id);
      assert.equal(e.data.actor, 'admin');
    }
    assert.equal(bodies[4].data.key.secret_version, 2);
    for (const r of delivered) assert.ok(!r.body.includes(key.key) && !r.body.includes(rotated.key), 'no secret in events');
    expect(await admin.del(`/webhooks/${endpoint.id}`), 200, 'unsubscribe');
    const audit = expect(await admin.get('/audit?limit=20'), 200, 'audit').data.filter((e) => e.target_id === endpoint.id);
    assert.deepEqual(audit.map((e) => [e.action, e.target_type, e.actor]), [
      ['webhooks.manage', 'webhook', 'admin'],
      ['webhooks.manage', 'webhook', 'admin'],
    ]);
    assert.equal(audit[1].after.url, receiver.url);
    assert.ok(!JSON.stringify(audit).includes(endpoint.secret), 'the signing secret is not audited');
  } finally {
    await receiver.close();
  }
});

test('keys: filters and cursor pagination', async () => {
  const project = expect(await admin.post('/projects', { name: 'paging' }), 201, 'project').id;
  const other = expect(await admin.post('/projects', { name: 'other' }), 201, 'project').id;
  const made = [];
  for (let i = 0; i < 5; i++) {
    const tags = i % 2 === 0 ? ['even'] : ['odd'];
    made.push(expect(await admin.post('/keys', { name: `k${i}`, project, tags }), 201, 'key').id);
  }
  expect(await admin.post('/keys', { name: 'elsewhere', project: other }), 201, 'key');
  expect(await admin.post(`/keys/${made[1]}/disable`), 200, 'disable');

  const seen = [];
  let cursor = null;
  let pages = 0;
  do {
    const page = expect(await admin.get(`/keys?project=${project}&limit=2${cursor ? `&cursor=${cursor}` : ''}`), 200, 'page');
    assert.ok(page.data.length <= 2);
    seen.push(...page.data.map((k) => k.id));
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  assert.deepEqual(seen, made);
  assert.equal(pages, 3);

  const ids = async (q) => expect(await admin.get(`/keys?project=${project}&${q}`), 200, q).data.map((k) => k.id);
  assert.deepEqual(await ids('tag=even'), [made[0], made[2], made[4]]);
  assert.deepEqual(await ids('status=disabled'), [made[1]]);
  assert.deepEqual(await ids('creator=admin&tag=odd'), [made[1], made[3]]);
  assert.deepEqual(await ids('creator=nobody'), []);
  expect(await admin.get('/keys?tags=even'), 400, 'unknown filter');
  expect(await admin.get('/keys?cursor=bogus'), 400, 'bad cursor');
  expect(await admin.get('/keys?status=paused'), 400, 'bad status');
});

test('roles: the table cell by cell over HTTP', async () => {
  // Standing: the owner owns P (not Q); the member belongs to P and created key K; finance
  // belongs nowhere. M2 is another member of P; K2 is a key the owner created in P.
  const P = expect(await admin.post('/projects', { name: 'P' }), 201, 'P').id;
  const Q = expect(await admin.post('/projects', { name: 'Q' }), 201, 'Q').id;
  const principal = async (name, role, projects) =>
    expect(await admin.post('/principals', { name, role, projects }), 201, name);
  const ownerP = await principal('owner', 'project_owner', [P]);
  const memberP = await principal('member', 'member', [P]);
  const financeP = await principal('finance', 'finance', []);
  const other = await principal('other member', 'member', [P]);
  const callers = { admin, owner: as(ownerP.token), member: as(memberP.token), finance: as(financeP.token) };
  const K = expect(await callers.member.post('/keys', { name: 'K', project: P }), 201, 'K').id;
  const K2 = expect(await callers.owner.post('/keys', { name: 'K2', project: P }), 201, 'K2').id;
  const victims = {};
  for (const role of Object.keys(callers)) {
    victims[role] = expect(await callers.member.post('/keys', { name: `victim of ${role}`, project: P }), 201, 'victim').id;
  }

  // [permission, request, allowed status (else 403) for admin, owner, member, finance]
  const Y = 'allowed';
  const cells = [
    ['org.policy.read', (c) => c.get('/org/policy'), [200, 403, 403, 403]],
    ['org.policy.write', (c) => c.put('/org/policy', { models: { allow: [] } }), [400, 403, 403, 403]],
    ['org.routing.read', (c) => c.get('/org/routing'), [200, 403, 403, 403]],
    ['org.pricing.read', (c) => c.get('/org/pricing'), [200, 403, 403, 403]],
    ['projects.create', (c) => c.post('/projects', { name: '' }), [400, 403, 403, 403]],
    ['projects.read', (c) => c.get(`/projects/${P}`), [200, 200, 200, 200]],
    ['projects.read', (c) => c.get(`/projects/${Q}`), [200, 403, 403, 200]],
    ['projects.read', (c) => c.get('/projects'), [200, 200, 200, 200]],
    ['projects.update', (c) => c.patch(`/projects/${P}`, { name: '' }), [400, 400, 403, 403]],
    ['projects.update', (c) => c.patch(`/projects/${Q}`, { name: '' }), [400, 403, 403, 403]],
    ['projects.delete', (c) => c.del(`/projects/${P}`), [409, 403, 403, 403]],
    ['projects.members.manage', (c) => c.put(`/projects/${P}/members/${other.id}`, { role: 'member' }), [200, 200, 403, 403]],
    ['projects.members.manage', (c) => c.put(`/projects/${Q}/members/${other.id}`, { role: 'member' }), [200, 403, 403, 403]],
    ['principals.create', (c) => c.post('/principals', { name: 'n', role: 'member', projects: [P] }), [201, 201, 403, 403]],
    ['principals.create', (c) => c.post('/principals', { name: 'n', role: 'finance' }), [201, 403, 403, 403]],
    ['principals.read', (c) => c.get(`/principals/${other.id}`), [200, 200, 403, 403]],
    ['principals.read', (c) => c.get('/principals'), [200, 200, 403, 403]],
    ['principals.delete', (c) => c.del('/principals/prn_doesnotexist'), [404, 403, 403, 403]],
    ['keys.create', (c) => c.post('/keys', { name: 'new', project: P }), [201, 201, 201, 403]],
    ['keys.create', (c) => c.post('/keys', { name: 'new', project: Q }), [201, 403, 403, 403]],
    ['keys.read', (c) => c.get(`/keys/${K}`), [200, 200, 200, 200]],
    ['keys.read', (c) => c.get(`/keys/${K2}`), [200, 200, 403, 200]],
    ['keys.read', (c) => c.get('/keys'), [200, 200, 200, 200]],
    ['keys.update', (c) => c.patch(`/keys/${K}`, { name: '' }), [400, 400, 400, 403]],
    ['keys.update', (c) => c.patch(`/keys/${K2}`, { name: '' }), [400, 400, 403, 403]],
    ['keys.disable', (c) => c.post(`/keys/${K}/disable`), [200, 200, 200, 403]],
    ['keys.enable', (c) => c.post(`/keys/${K}/enable`), [200, 200, 200, 403]],
    ['keys.enable', (c) => c.post(`/keys/${K2}/enable`), [200, 200, 403, 403]],
    ['keys.rotate', (c) => c.post(`/keys/${K}/rotate`, { grace_seconds: -1 }), [400, 400, 400, 403]],
    ['keys.delete', (c, role) => c.del(`/keys/${victims[role]}`), [200, 200, 200, 403]],
    ['keys.delete', (c) => c.del(`/keys/${K2}`), [Y, Y, 403, 403]],
    ['usage.keys.read', (c) => c.get(`/keys/${K}/usage`), [200, 200, 200, 200]],
    ['usage.projects.read', (c) => c.get(`/projects/${P}/usage`), [200, 200, 403, 200]],
    ['usage.projects.read', (c) => c.get(`/projects/${Q}/usage`), [200, 403, 403, 200]],
    ['usage.projects.read', (c) => c.get('/usage'), [200, 200, 403, 200]],
    ['audit.read', (c) => c.get('/audit'), [200, 403, 403, 403]],
    ['webhooks.manage', (c) => c.get('/webhooks'), [200, 403, 403, 403]],
  ];
  for (const [permission, request, expected] of cells) {
    for (const [i, role] of ['finance', 'member', 'owner', 'admin'].entries()) {
      const want = expected[3 - i];
      if (want === Y) continue; // destructive for the roles allowed; checked for the others
      const answer = await request(callers[role], role);
      assert.equal(answer.status, want, `${role} × ${permission}: ${answer.text}`);
      if (want === 403) {
        assert.equal(answer.body.error.type, 'permission_error');
        assert.ok(answer.body.error.message.includes(`'${permission}'`), `${role} × ${permission}: ${answer.body.error.message}`);
      }
    }
  }

  // Lists show only what a get would: the member sees K and the victims, not K2.
  const memberKeys = expect(await callers.member.get(`/keys?project=${P}&status=active`), 200, 'list').data.map((k) => k.id);
  assert.ok(memberKeys.includes(K) && !memberKeys.includes(K2));
  const ownerProjects = expect(await callers.owner.get('/projects'), 200, 'list').data.map((p) => p.id);
  assert.deepEqual(ownerProjects, [P]);
});
