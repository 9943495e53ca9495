// Issue 12, what only the platform operator does to an organisation, end to end on the built
// worker: price overrides that meter its keys' calls (and no other organisation's), and the
// rotation of the master key of stored credentials without downtime — k2 added first, the reseal
// job, k1 removed — across restarts of the worker with its Durable Objects and KV persisted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startGateway, ADMIN_TOKEN } from './harness.mjs';

import { startMock } from '../mock-upstream/server.mjs';

/** How long an isolate may use a record it read (src/gateway/record_memo.rs). */
const RECORD_MEMO_MS = 5_000;

const SECRET = 'sk-rotate-TopSecretCredential0123456789';
const keyText = (byte) => Buffer.alloc(32, byte).toString('base64');
const K1 = `k1:${keyText(1)}`;
const K2 = `k2:${keyText(2)}`;
const CHAT = '/openai/v1/chat/completions';
const BODY = JSON.stringify({ model: 'gpt-4o', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] });

let mock;
let persist;
let gw;

/** (Re)starts the worker with `CREDENTIALS_KEYS` = `keys`, on the same persisted storage. */
async function start(keys) {
  await gw?.close();
  gw = await startGateway({
    mock,
    bindings: { CREDENTIALS_KEYS: keys, IGNORE_JURISDICTIONS: 'true', ALLOW_INSECURE_UPSTREAMS: 'true' },
    miniflare: { kvPersist: path.join(persist, 'kv'), durableObjectsPersist: path.join(persist, 'do') },
  });
}

before(async () => {
  mock = await startMock({ port: 0 });
  persist = mkdtempSync(path.join(tmpdir(), 'teamkeys-operator-'));
  await start(K1);
});
after(async () => {
  await gw?.close();
  await mock?.close();
  rmSync(persist, { recursive: true, force: true });
});

function as(token) {
  return async (method, p, body) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await gw.fetch(`/admin/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}
const operator = as(ADMIN_TOKEN);

/** An organisation on its own credential `main` (sent to the mock), with one key. */
async function organisation(name) {
  const made = await operator('POST', '/orgs', { name, platform_routing: false, admin: { name: `${name} admin` } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const admin = as(made.body.admin.token);
  const base_url = `http://127.0.0.1:${mock.port}/openai/v1`;
  const stored = await admin('PUT', '/org/credentials/main', { provider: 'openai_compatible', secret: SECRET, base_url });
  assert.equal(stored.status, 200, JSON.stringify(stored.body));
  const routing = { groups: [{ name: 'own', models: ['*'], targets: [{ family: 'openai', credential: 'main' }] }] };
  assert.equal((await admin('PUT', '/org/routing', routing)).status, 200);
  const project = await admin('POST', '/projects', { name: 'p' });
  const key = await admin('POST', '/keys', { name: 'ci', project: project.body.id });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { id: made.body.org.id, admin, keyId: key.body.id, key: key.body.key };
}

/** One chat call with `key`: its status and the credential the mock received. */
async function call(key) {
  mock.requests.length = 0;
  const res = await gw.fetch(CHAT, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: BODY });
  const text = await res.text();
  return { status: res.status, text, credential: mock.requests.at(-1)?.credential ?? null };
}

/** The total cost the key's ledger has counted (the settle runs after the answer: polled). */
async function spent(org, atLeast) {
  for (let i = 0; i < 50; i++) {
    const usage = await org.admin('GET', `/keys/${org.keyId}/usage`);
    const cost = usage.body.usage.total.cost_micros;
    if (cost >= atLeast) return cost;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the settle never counted');
}

test('price overrides are set by the operator only and meter only its organisation', async () => {
  const a = await organisation('a');
  const b = await organisation('b');
  for (const org of [a, b]) assert.equal((await call(org.key)).status, 200);
  const first = await spent(a, 1);
  assert.equal(await spent(b, 1), first, 'the same call costs the same on the platform prices');

  // The organisation's Admin cannot set its own prices (the operator's routes refuse its token).
  const cheap = [{ model: 'gpt-4o', input: 1, output: 1 }];
  assert.equal((await a.admin('PUT', `/orgs/${a.id}/pricing`, cheap)).status, 401);
  assert.equal((await a.admin('PUT', '/org/pricing', cheap)).status, 405);
  const refused = await operator('PUT', `/orgs/${a.id}/pricing`, { 'gpt-4o': 1 });
  assert.equal(refused.body.error.code, 'invalid_pricing');

  // Ten times the list price of gpt-4o for organisation a.
  const tenfold = [{ model: 'gpt-4o', input: 25000000, output: 100000000, cached_input: 12500000 }];
  const set = await operator('PUT', `/orgs/${a.id}/pricing`, tenfold);
  assert.equal(set.status, 200, JSON.stringify(set.body));
  const read = await a.admin('GET', '/org/pricing');
  assert.equal(read.body.overrides.length, 1);
  assert.equal(read.body.data[0].input, 25000000, 'the overrides come first');

  // The request path reads prices with the organisation's record: each isolate may use the record
  // it memoized for RECORD_MEMO_MS (5 s; Miniflare's KV has no edge cache of its own).
  await new Promise((resolve) => setTimeout(resolve, RECORD_MEMO_MS + 500));
  for (const org of [a, b]) assert.equal((await call(org.key)).status, 200);
  const second = (await spent(a, first + 1)) - first;
  const other = (await spent(b, first + 1)) - first;
  assert.equal(other, first, 'organisation b keeps the platform prices');
  assert.ok(Math.abs(second - 10 * first) <= 10, `ten times the cost: ${first} then ${second}`);

  assert.equal((await operator('DELETE', `/orgs/${a.id}/pricing`)).status, 200);
  assert.equal((await a.admin('GET', '/org/pricing')).body.overrides.length, 0);
});

test('the master key rotates without downtime: k2 first, reseal, k1 removed', async () => {
  const org = await organisation('rotating');
  assert.deepEqual(await call(org.key).then((c) => [c.status, c.credential]), [200, `Bearer ${SECRET}`]);
  const kid = async () => JSON.parse(await gw.kv.get(`org:${org.id}`)).credentials.main.sealed.kid;
  assert.equal(await kid(), 'k1');

  // k1 removed too early: the credential cannot be opened and nothing is forwarded.
  await start(K2);
  const early = await call(org.key);
  assert.deepEqual([early.status, JSON.parse(early.text).error.code, early.credential], [500, 'upstream_credential_missing', null]);

  // Step 1: k2 first, k1 kept. Calls go on; the job moves the credential to k2.
  await start(`${K2},${K1}`);
  assert.equal((await call(org.key)).status, 200);
  const resealed = await operator('POST', `/orgs/${org.id}/credentials/reseal`);
  assert.equal(resealed.status, 200, JSON.stringify(resealed.body));
  assert.deepEqual(resealed.body, { primary_key_id: 'k2', resealed: ['main'], current: 0, failed: [] });
  assert.equal(await kid(), 'k2', 'the KV record is re-projected');
  assert.deepEqual((await operator('POST', `/orgs/${org.id}/credentials/reseal`)).body.resealed, []);

  // Step 3: k1 removed. The resealed credential still opens; nothing an admin sees changed.
  await start(K2);
  assert.deepEqual(await call(org.key).then((c) => [c.status, c.credential]), [200, `Bearer ${SECRET}`]);
  const listed = await org.admin('GET', '/org/credentials');
  assert.equal(listed.body.data[0].masked, 'sk-…6789');
  assert.ok(!JSON.stringify(listed.body).includes(SECRET));
});
