// Issue 2, the foundation: a team key in front of the upstream. JSON and streamed chat
// completions pass through; missing and unknown keys get the 401 envelope; the upstream sees
// only the organisation's credential, never the client's key; KV holds only key hashes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, json, sha256hex, newKey, parseSse, UPSTREAM_SECRET } from './harness.mjs';

let gw;
let key;
let record;

before(async () => {
  gw = await startGateway();
  record = keyRecord();
  key = await gw.seedKey(record);
});
after(() => gw?.close());

const CHAT = '/openai/v1/chat/completions';
const auth = (k = key) => ({ authorization: `Bearer ${k}` });
const mockCount = () => gw.mock.requests.length;

test('JSON chat completion through the gateway', async () => {
  const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hello there' }], max_tokens: 7 };
  const before = mockCount();
  const res = await gw.fetch(CHAT, json(body, auth()));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const answer = await res.json();
  assert.equal(answer.object, 'chat.completion');
  assert.equal(answer.model, 'gpt-4o');
  assert.equal(answer.choices[0].message.content, Array(7).fill('tok').join(' '));
  // The body reached the upstream unchanged, so the mock's count is over the client's bytes.
  assert.equal(mockCount(), before + 1);
  const seen = gw.mock.requests.at(-1);
  assert.equal(seen.method, 'POST');
  assert.equal(seen.path, CHAT);
  assert.equal(seen.body, JSON.stringify(body));
  const inTok = Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4);
  assert.deepEqual(answer.usage, { prompt_tokens: inTok, completion_tokens: 7, total_tokens: inTok + 7 });
});

test('streamed chat completion arrives in several chunks, over time, ending with [DONE]', async () => {
  const delay = 150;
  const res = await gw.fetch(CHAT, json(
    { model: 'gpt-4o', stream: true, max_tokens: 8, messages: [{ role: 'user', content: 'count' }] },
    { ...auth(), 'x-mock-chunk-delay-ms': String(delay) },
  ));
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const chunks = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push({ at: Date.now(), text: Buffer.from(value).toString('utf8') });
  }
  const text = chunks.map((c) => c.text).join('');
  assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
  // Not one buffer: the first chunk reached the client before the upstream had written the end,
  // and the mock sleeps `delay` between its 7 events, so the chunks span at least 6 delays.
  assert.ok(!chunks[0].text.includes('[DONE]'), 'the first chunk already held the end of the stream');
  const spread = chunks.at(-1).at - chunks[0].at;
  assert.ok(spread >= 5 * delay, `all chunks arrived within ${spread} ms: the stream was buffered`);

  const events = parseSse(text);
  assert.equal(events.at(-1).data, '[DONE]');
  assert.ok(text.endsWith('data: [DONE]\n\n'), JSON.stringify(text.slice(-40)));
  const deltas = events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(deltas.map((d) => d.choices[0]?.delta?.content ?? '').join(''), Array(8).fill('tok').join(' '));
  // The gateway asked the upstream for usage on the client's behalf, and kept that chunk from it.
  assert.ok(deltas.every((d) => d.usage === undefined), 'the usage chunk the client did not ask for was forwarded');
  const upstreamBody = JSON.parse(gw.mock.requests.at(-1).body);
  assert.deepEqual(upstreamBody.stream_options, { include_usage: true });
});

const AUTH_ERROR_KEYS = ['message', 'type', 'code'];

async function assertInvalidKey(res) {
  assert.equal(res.status, 401);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), [...AUTH_ERROR_KEYS].sort());
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.equal(body.error.type, 'authentication_error');
  assert.equal(body.error.code, 'invalid_api_key');
  return body;
}

test('401 invalid_api_key for a missing key, and nothing reaches the upstream', async () => {
  const before = mockCount();
  await assertInvalidKey(await gw.fetch(CHAT, json({ model: 'gpt-4o', messages: [] })));
  await assertInvalidKey(await gw.fetch(CHAT, json({ model: 'gpt-4o', messages: [] }, { authorization: 'Bearer ' })));
  await assertInvalidKey(await gw.fetch(CHAT, json({ model: 'gpt-4o', messages: [] }, { authorization: key })));
  assert.equal(mockCount(), before);
});

test('401 invalid_api_key for an unknown key, and nothing reaches the upstream', async () => {
  const before = mockCount();
  const unknown = newKey();
  const body = await assertInvalidKey(await gw.fetch(CHAT, json({ model: 'gpt-4o', messages: [] }, auth(unknown))));
  assert.ok(!body.error.message.includes(unknown), 'the error echoes the key');
  // A key differing from a real one in its last character is just as unknown.
  const nearMiss = key.slice(0, -1) + (key.endsWith('0') ? '1' : '0');
  await assertInvalidKey(await gw.fetch(CHAT, json({ model: 'gpt-4o', messages: [] }, auth(nearMiss))));
  assert.equal(mockCount(), before);
});

test('the upstream sees the upstream credential, never the client key', async () => {
  // Send the key everywhere a careless proxy might pass it on: the auth header, another key
  // header, and the query string.
  const res = await gw.fetch(`${CHAT}?key=${key}&api_key=x`, json(
    { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }] },
    { ...auth(), 'x-api-key': key, 'x-goog-api-key': key, 'x-custom': 'kept' },
  ));
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const requests = gw.mock.requests;
  assert.ok(requests.length >= 3, 'the earlier tests forwarded requests');
  for (const r of requests) {
    assert.equal(r.credential, `Bearer ${UPSTREAM_SECRET}`);
    assert.equal(r.headers.authorization, `Bearer ${UPSTREAM_SECRET}`);
    assert.equal(r.headers['x-api-key'], undefined);
    assert.equal(r.headers['x-goog-api-key'], undefined);
    for (const [name, value] of Object.entries(r.headers)) {
      assert.ok(!String(value).includes(key), `header ${name} carries the client key`);
    }
    assert.ok(!r.path.includes(key), `path ${r.path} carries the client key`);
    assert.ok(!r.body.includes(key), 'the body carries the client key');
  }
  const last = requests.at(-1);
  assert.equal(last.path, CHAT, 'only known query parameters (alt, paging) are forwarded');
  assert.equal(last.headers['x-custom'], 'kept');
});

test('KV holds only key hashes', async () => {
  const { keys } = await gw.kv.list();
  assert.deepEqual(keys.map((k) => k.name), [`key:${sha256hex(key)}`]);
  for (const { name } of keys) {
    assert.match(name, /^key:[0-9a-f]{64}$/);
    assert.ok(!name.includes(key));
    const stored = await gw.kv.get(name);
    assert.ok(!stored.includes(key), 'a stored record carries the key');
    assert.deepEqual(JSON.parse(stored), record);
  }
});
