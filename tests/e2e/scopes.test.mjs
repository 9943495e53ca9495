// Issue 13, the scopes inside a key: an end user over its limit is refused while the key's other
// end users pass; a model pattern's limit refuses its models while the key's other models pass;
// the end-user header is required on such keys and never forwarded; `GET /v1/key` answers what
// the key's ledger holds, with any family's key header.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, json } from './harness.mjs';

let gw;
before(async () => {
  gw = await startGateway();
});
after(() => gw?.close());

const bearer = (k) => ({ authorization: `Bearer ${k}` });
const chat = (model) => ({ model, max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] });

/** `n` concurrent chat calls of `model` with `headers`: [{status, body}]. */
async function calls(n, k, model, headers = {}) {
  return Promise.all(Array.from({ length: n }, () =>
    gw.fetch('/openai/v1/chat/completions', json(chat(model), { ...bearer(k), ...headers }))
      .then(async (res) => ({ status: res.status, body: await res.json() }))));
}

const statuses = (answers) => answers.map((a) => a.status).sort();

test('an end user over its limit is refused while the key\'s other end users pass', async () => {
  const k = await gw.seedKey(keyRecord({ limits: { rpm: 100 }, end_user_limits: { rpm: 2 } }));
  const seen = gw.mock.requests.length;
  const alice = await calls(20, k, 'gpt-4o', { 'x-teamkeys-end-user': 'alice' });
  assert.deepEqual(statuses(alice), [...Array(2).fill(200), ...Array(18).fill(429)]);
  for (const refused of alice.filter((a) => a.status === 429)) {
    assert.equal(refused.body.error.code, 'rate_limit_exceeded');
    assert.equal(refused.body.error.limit.level, 'end_user');
    assert.equal(refused.body.error.limit.end_user, 'alice');
    assert.equal(refused.body.error.limit.scope, 'rpm');
    assert.equal(refused.body.error.limit.limit, 2);
  }
  const bob = await calls(2, k, 'gpt-4o', { 'x-teamkeys-end-user': 'bob' });
  assert.deepEqual(statuses(bob), [200, 200], 'bob is not held by alice\'s refusal');
  const sent = gw.mock.requests.slice(seen);
  assert.equal(sent.length, 4, 'the upstream saw exactly the admitted calls');
  for (const request of sent) {
    assert.ok(!Object.keys(request.headers).some((name) => name.startsWith('x-teamkeys')), 'never forwarded');
  }

  const missing = await calls(1, k, 'gpt-4o');
  assert.deepEqual([missing[0].status, missing[0].body.error.code], [400, 'missing_end_user']);
  const invalid = await calls(1, k, 'gpt-4o', { 'x-teamkeys-end-user': 'two words' });
  assert.deepEqual([invalid[0].status, invalid[0].body.error.code], [400, 'invalid_end_user']);
});

test('a model pattern\'s limit refuses its models while the key\'s other models pass', async () => {
  const k = await gw.seedKey(keyRecord({
    limits: { rpm: 100 },
    model_limits: [{ pattern: 'gpt-4o-mini*', limits: { rpm: 3 } }],
  }));
  const mini = await calls(10, k, 'gpt-4o-mini');
  assert.deepEqual(statuses(mini), [...Array(3).fill(200), ...Array(7).fill(429)]);
  for (const refused of mini.filter((a) => a.status === 429)) {
    assert.deepEqual(
      [refused.body.error.limit.level, refused.body.error.limit.pattern, refused.body.error.limit.scope],
      ['model', 'gpt-4o-mini*', 'rpm'],
    );
  }
  assert.deepEqual(statuses(await calls(5, k, 'gpt-4o')), Array(5).fill(200), 'other models pass');
  const after = await calls(1, k, 'gpt-4o-mini-2024-07-18');
  assert.equal(after[0].status, 429, 'every model the pattern matches shares its limit');
});

test('GET /v1/key answers what the key\'s ledger holds, with any family\'s key header', async () => {
  const k = await gw.seedKey(keyRecord({
    limits: { rpm: 50 },
    model_limits: [{ pattern: 'gpt-4o-mini*', limits: { rpm: 5 } }],
    end_user_limits: { rpm: 4 },
  }));
  const alice = { 'x-teamkeys-end-user': 'alice' };
  assert.deepEqual(statuses(await calls(2, k, 'gpt-4o-mini', alice)), [200, 200]);
  assert.deepEqual(statuses(await calls(1, k, 'gpt-4o', alice)), [200]);

  const res = await gw.fetch('/v1/key', { headers: { ...bearer(k), ...alice } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /application\/json/);
  const quota = await res.json();
  assert.equal(quota.object, 'key_quota');
  const rpm = (limits) => {
    const { scope, limit, used, remaining } = limits.find((l) => l.scope === 'rpm');
    return { scope, limit, used, remaining };
  };
  assert.deepEqual(rpm(quota.key.limits), { scope: 'rpm', limit: 50, used: 3, remaining: 47 });
  assert.equal(quota.key.usage.today.requests, 3);
  assert.equal(quota.models[0].pattern, 'gpt-4o-mini*');
  assert.deepEqual(rpm(quota.models[0].limits), { scope: 'rpm', limit: 5, used: 2, remaining: 3 });
  assert.equal(quota.end_user.id, 'alice');
  assert.deepEqual(rpm(quota.end_user.limits), { scope: 'rpm', limit: 4, used: 3, remaining: 1 });

  for (const headers of [{ 'x-api-key': k }, { 'x-goog-api-key': k }]) {
    const other = await gw.fetch('/v1/key', { headers });
    assert.equal(other.status, 200);
    const body = await other.json();
    assert.equal(rpm(body.key.limits).used, 3);
    assert.equal(body.end_user, undefined, 'no end user asked, none answered');
  }
  const unknown = await gw.fetch('/v1/key', { headers: bearer('tk_test_unknown') });
  assert.deepEqual([unknown.status, (await unknown.json()).error.code], [401, 'invalid_api_key']);
  const post = await gw.fetch('/v1/key', { method: 'POST', headers: bearer(k) });
  assert.deepEqual([post.status, (await post.json()).error.code], [405, 'method_not_allowed']);
});
