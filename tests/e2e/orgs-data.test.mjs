// Issue 12, the data plane of organisations: two organisations with identically named projects
// and keys (even the same key id), each with its own routing and its own sealed upstream
// credential, seeded into KV as the control plane projects them. Each key's calls reach only its
// organisation's credential and follow its routing; a suspended organisation's calls are
// refused within the isolate's record memo (5 s; Miniflare's KV has no edge cache); a key
// from before organisations is served as before; a credential that cannot be opened forwards
// nothing; no plaintext credential is in any KV value or log line.
//
// Credentials are sealed here as src/credentials/sealing.rs does: AES-256-GCM (WebCrypto), a
// 96-bit nonce, the tag appended to the ciphertext, and as associated data "teamkeys credential
// v1" followed by org id, name, provider and base URL, each as an 8-byte big-endian length and
// its bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto, randomBytes } from 'node:crypto';
import { startGateway, keyRecord, json, newKey, pollUntil, UPSTREAM_SECRET } from './harness.mjs';

const MASTER_KEY = randomBytes(32);
const OTHER_MASTER_KEY = randomBytes(32);
const CREDENTIALS_KEYS = `k1:${MASTER_KEY.toString('base64')}`;
const SECRET_A = `sk-org-a-${randomBytes(12).toString('hex')}`;
const SECRET_B = `sk-org-b-${randomBytes(12).toString('hex')}`;
const CHAT = '/openai/v1/chat/completions';
const KEY_ID = 'key_same_in_both';

function associatedData(orgId, name, provider, baseUrl) {
  const parts = [Buffer.from('teamkeys credential v1')];
  for (const field of [orgId, name, provider, baseUrl ?? '']) {
    const bytes = Buffer.from(field, 'utf8');
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(bytes.length));
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

/** A StoredCredential's JSON: `secret` sealed for (orgId, name) with `masterKey` under `kid`. */
async function sealed({ orgId, name = 'main', provider = 'openai_compatible', baseUrl, secret, masterKey = MASTER_KEY, kid = 'k1' }) {
  const key = await webcrypto.subtle.importKey('raw', masterKey, 'AES-GCM', false, ['encrypt']);
  const nonce = randomBytes(12);
  const ciphertext = await webcrypto.subtle.encrypt(
    { name: 'AES-GCM', iv: nonce, additionalData: associatedData(orgId, name, provider, baseUrl) },
    key,
    Buffer.from(secret),
  );
  return {
    provider,
    ...(baseUrl ? { base_url: baseUrl } : {}),
    sealed: { kid, nonce: nonce.toString('base64'), ciphertext: Buffer.from(ciphertext).toString('base64') },
    masked: `${secret.slice(0, 3)}…${secret.slice(-4)}`,
    created_at: 1,
    updated_at: 1,
  };
}

let gw;
const logs = [];
const keys = {};
let mockBase;

/** Organisation `id`'s record: `routing` naming its credential `main`, sealed from `credential`. */
async function orgRecord(id, { status = 'active', models, modelMap, credential = {} }) {
  const target = { family: 'openai', credential: 'main', ...(modelMap ? { model_map: modelMap } : {}) };
  return {
    id,
    status,
    routing: { groups: [{ name: 'own', models, targets: [target] }] },
    credentials: { main: await sealed({ orgId: id, baseUrl: mockBase, ...credential }) },
  };
}

const seedOrg = async (id, options) => gw.kv.put(`org:${id}`, JSON.stringify(await orgRecord(id, options)));
const ORG_A = { models: ['gpt-*'], credential: { secret: SECRET_A } };
const ORG_B = { models: ['*'], modelMap: { 'gpt-4o': 'gpt-4o-mini' }, credential: { secret: SECRET_B } };

before(async () => {
  gw = await startGateway({
    // workerd has no jurisdictions: the local run addresses org_a's EU ledger without one (the
    // host tests, tests/gateway_flow.rs, check the jurisdiction is passed on).
    bindings: { CREDENTIALS_KEYS, IGNORE_JURISDICTIONS: 'true' },
    miniflare: {
      handleRuntimeStdio(stdout, stderr) {
        stdout.on('data', (chunk) => logs.push(chunk.toString()));
        stderr.on('data', (chunk) => logs.push(chunk.toString()));
      },
    },
  });
  mockBase = `http://127.0.0.1:${gw.mock.port}/openai/v1`;
  await seedOrg('org_a', ORG_A);
  await seedOrg('org_b', ORG_B);
  // Identically named projects and keys, the same key id: only the organisation tells them apart.
  const same = { id: KEY_ID, name: 'ci', project: 'proj_shared', limits: { rpm: 2 } };
  keys.a = await gw.seedKey(keyRecord({ ...same, org: 'org_a', jurisdiction: 'eu' }));
  keys.b = await gw.seedKey(keyRecord({ ...same, org: 'org_b' }));
  keys.legacy = await gw.seedKey(keyRecord({ ...same }));
});
after(() => gw?.close());

const chat = (key, model = 'gpt-4o') =>
  gw.fetch(CHAT, json({ model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` }));

/** Calls with `key`; returns the status and what the mock saw (null when nothing reached it). */
async function call(key, model) {
  const before = gw.mock.requests.length;
  const res = await chat(key, model);
  const body = await res.json();
  const seen = gw.mock.requests.length > before ? gw.mock.requests.at(-1) : null;
  return { status: res.status, body, seen };
}

test("each key reaches only its organisation's credential and follows its organisation's routing", async () => {
  const a = await call(keys.a);
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.seen.credential, `Bearer ${SECRET_A}`);
  assert.equal(JSON.parse(a.seen.body).model, 'gpt-4o');

  const b = await call(keys.b);
  assert.equal(b.status, 200, JSON.stringify(b.body));
  assert.equal(b.seen.credential, `Bearer ${SECRET_B}`);
  assert.equal(JSON.parse(b.seen.body).model, 'gpt-4o-mini', "org_b's routing renames the model");

  // org_a's routing serves gpt-* only; org_b's serves everything.
  assert.equal((await call(keys.a, 'o3')).status, 404);
  assert.equal((await call(keys.b, 'o3')).seen.credential, `Bearer ${SECRET_B}`);

  // The key from before organisations: the platform's routing and secret.
  const legacy = await call(keys.legacy);
  assert.equal(legacy.status, 200);
  assert.equal(legacy.seen.credential, `Bearer ${UPSTREAM_SECRET}`);
});

test("the same key id in two organisations counts in two ledger objects", async () => {
  // rpm 2: org_a's key has made one admitted call above, org_b's two; the legacy key one.
  assert.equal((await call(keys.a)).status, 200);
  assert.equal((await call(keys.a)).status, 429, "org_a's window is its own");
  assert.equal((await call(keys.legacy)).status, 200, "the legacy object is a third one");
  assert.equal((await call(keys.b)).status, 429);
});

test("a suspended organisation's calls are refused within the edge's record time, nothing forwarded", async () => {
  await seedOrg('org_b', { ...ORG_B, status: 'suspended' });
  // The isolate's memo of the organisation's record lasts 5 s (RECORD_MEMO_MS; Miniflare's KV
  // has no edge cache): until then org_b's calls meet its key's full window.
  const before = gw.mock.requests.length;
  const refused = await pollUntil(() => call(keys.b), (r) => r.status === 403, { timeoutMs: 7000, intervalMs: 250 });
  assert.equal(gw.mock.requests.length, before, 'nothing forwarded meanwhile');
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error.code, 'organisation_suspended');
  assert.equal(refused.seen, null);
  await seedOrg('org_b', ORG_B);
});

test('a key naming an organisation without a record is refused as unknown', async () => {
  const orphan = await gw.seedKey(keyRecord({ org: 'org_gone' }), newKey());
  const refused = await call(orphan);
  assert.equal(refused.status, 401);
  assert.equal(refused.body.error.code, 'invalid_api_key');
  assert.equal(refused.seen, null);
});

test('a credential that cannot be opened forwards nothing, says nothing about why, and releases its reservation', async () => {
  // One call in flight at most: a reservation left open would refuse the next call with 429.
  const key = await gw.seedKey(keyRecord({ org: 'org_c', limits: { max_in_flight: 1 } }));
  const cases = [
    { secret: `sk-org-c-${randomBytes(8).toString('hex')}`, masterKey: OTHER_MASTER_KEY },
    { secret: `sk-org-c-${randomBytes(8).toString('hex')}`, kid: 'k9' },
    { secret: `sk-org-c-${randomBytes(8).toString('hex')}`, orgId: 'org_a' },
  ];
  for (const credential of cases) {
    await seedOrg('org_c', { models: ['*'], credential });
    const refused = await call(key);
    assert.equal(refused.status, 500, JSON.stringify(credential));
    assert.deepEqual(refused.body.error, {
      message: 'The upstream credential for this call cannot be used.',
      type: 'internal_error',
      code: 'upstream_credential_missing',
    });
    assert.equal(refused.seen, null, 'nothing forwarded');
    assert.ok(!logs.join('').includes(credential.secret));
  }
  assert.ok(logs.join('').includes("credential 'main' cannot be used"), 'the reason is logged');
  await seedOrg('org_c', { models: ['*'], credential: { secret: `sk-org-c-${randomBytes(8).toString('hex')}` } });
  const served = await pollUntil(() => call(key), ({ status }) => status === 200);
  assert.equal(served.status, 200, 'the refused calls released their reservations');
});

test('no plaintext credential is in any KV value or log line', async () => {
  const { keys: names } = await gw.kv.list();
  assert.ok(names.some(({ name }) => name === 'org:org_a'));
  for (const { name } of names) {
    const value = await gw.kv.get(name);
    for (const secret of [SECRET_A, SECRET_B]) assert.ok(!value.includes(secret), `${name} holds a plaintext`);
  }
  const text = logs.join('');
  assert.ok(text.length > 0, 'the logs were captured');
  for (const secret of [SECRET_A, SECRET_B]) assert.ok(!text.includes(secret), 'a log line holds a plaintext');
});
