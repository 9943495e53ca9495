// Issue 3, policy: every API family in JSON and streaming, model lists filtered per key, and every
// check with its answer, through a gateway configured with routing groups (fallback targets,
// a model map, a group keys must be granted).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startMock } from '../mock-upstream/server.mjs';
import {
  startGateway, startFixedUpstream, closedPort, keyRecord, json, parseSse, UPSTREAM_SECRET,
} from './harness.mjs';

const SECRET_A = 'sk-target-a-credential';
const SECRET_B = 'sk-target-b-credential';
const DEFAULT_MODELS = [
  'gpt-*', 'o3*', 'text-embedding-*', 'dall-e-*', 'tts-*', 'omni-moderation-*', 'claude-*', 'gemini-*',
];

let gw; // default upstream: gw.mock
let second; // the target fallback lands on
let failing; // a target answering 503 to everything
let keys; // name -> plaintext key

const base = (port, family) => {
  const prefix = { openai: '/openai/v1', anthropic: '/anthropic/v1', gemini: '/gemini/v1beta' }[family];
  return `http://127.0.0.1:${port}${prefix}`;
};
const target = (port, family, credential_secret = 'UPSTREAM_API_KEY', model_map) => ({
  base_url: base(port, family), family, credential_secret, ...(model_map && { model_map }),
});
const allFamilies = (port) => ['openai', 'anthropic', 'gemini'].map((f) => target(port, f));

before(async () => {
  const main = await startMock({ port: 0 });
  second = await startMock({ port: 0 });
  failing = await startFixedUpstream(503);
  const closed = await closedPort();
  const routing = {
    groups: [
      // First: model lists (no model) of a key without groups go to the first group.
      { name: 'default', models: DEFAULT_MODELS, targets: allFamilies(main.port) },
      { name: 'premium', models: ['premium-*'], targets: allFamilies(main.port) },
      {
        name: 'mapped', models: ['team-fast'], targets: [
          target(main.port, 'openai', 'UPSTREAM_API_KEY', { 'team-fast': 'gpt-4o-mini' }),
          target(main.port, 'gemini', 'UPSTREAM_API_KEY', { 'team-fast': 'gemini-2.5-flash' }),
        ],
      },
      {
        name: 'fallback-503', models: ['fb-503'],
        targets: [target(failing.port, 'openai', 'CRED_A'), target(second.port, 'openai', 'CRED_B')],
      },
      {
        name: 'fallback-closed', models: ['fb-closed'],
        targets: [
          { base_url: `http://127.0.0.1:${closed}/openai/v1`, family: 'openai', credential_secret: 'CRED_A' },
          target(second.port, 'openai', 'CRED_B'),
        ],
      },
      {
        name: 'no-fallback', models: ['fb-none'], fallback: false,
        targets: [target(failing.port, 'openai', 'CRED_A'), target(second.port, 'openai', 'CRED_B')],
      },
    ],
  };
  gw = await startGateway({
    mock: main,
    bindings: { ROUTING: JSON.stringify(routing), CRED_A: SECRET_A, CRED_B: SECRET_B },
  });
  const seed = async (over) => gw.seedKey(keyRecord(over));
  keys = {
    valid: await seed(),
    listing: await seed({ models: { allow: ['gpt-4o*', 'claude-sonnet*', 'gemini-2.5-flash'] } }),
    disabled: await seed({ status: 'disabled' }),
    expired: await seed({ expires_at: Date.now() - 60_000 }),
    notYetExpired: await seed({ expires_at: Date.now() + 3_600_000 }),
    ip: await seed({ ip_allowlist: ['203.0.113.0/24', '2001:db8::/32'] }),
    allow: await seed({ models: { allow: ['gpt-4o', 'claude-sonnet*'] } }),
    block: await seed({ models: { block: ['gpt-4o-mini', 'claude-haiku*'] } }),
    defaultOnly: await seed({ routing_groups: ['default'] }),
    rpm2: await seed({ limits: { rpm: 2 }, models: { block: ['o3'] }, ip_allowlist: ['203.0.113.0/24'] }),
    blockAll: await seed({
      models: {
        block: ['gpt-4o', 'text-embedding-3-small', 'dall-e-3', 'tts-1', 'omni-moderation-latest', 'claude-sonnet-4',
          'gemini-2.5-flash'],
      },
    }),
  };
});

after(async () => {
  await gw?.close();
  await gw?.mock.close();
  await second?.close();
  await failing?.close();
});

const bearer = (k) => ({ authorization: `Bearer ${k}` });
const count = () => gw.mock.requests.length;
const last = () => gw.mock.requests.at(-1);
const words = (n) => Array(n).fill('tok').join(' ');
const inTokens = (raw) => Math.ceil(Buffer.byteLength(raw) / 4);

/** Asserts the error envelope and returns its `error`. */
async function assertError(res, status, type, code) {
  const text = await res.text();
  assert.equal(res.status, status, text);
  const body = JSON.parse(text);
  assert.equal(body.error.type, type, text);
  assert.equal(body.error.code, code, text);
  assert.equal(typeof body.error.message, 'string');
  return body.error;
}

const chat = (model, k = keys.valid, extra = {}, headers = {}) =>
  gw.fetch('/openai/v1/chat/completions', json({ model, messages: [{ role: 'user', content: 'hi' }], ...extra }, { ...bearer(k), ...headers }));

// ---------- each family, JSON and streaming ----------

test('OpenAI chat completions: JSON and stream', async () => {
  const res = await chat('gpt-4o', keys.valid, { max_tokens: 3 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).choices[0].message.content, words(3));
  assert.equal(last().credential, `Bearer ${UPSTREAM_SECRET}`);

  const stream = await chat('gpt-4o', keys.valid, { max_tokens: 5, stream: true, stream_options: { include_usage: true } });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
  const events = parseSse(await stream.text());
  assert.equal(events.at(-1).data, '[DONE]');
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
  assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), words(5));
  // The client asked for usage itself, so it gets the usage chunk.
  const raw = last().body;
  assert.deepEqual(chunks.at(-1).usage, { prompt_tokens: inTokens(raw), completion_tokens: 5, total_tokens: inTokens(raw) + 5 });
});

test('OpenAI responses: JSON and stream', async () => {
  const res = await gw.fetch('/openai/v1/responses', json({ model: 'gpt-4o', input: 'hi', max_output_tokens: 4 }, bearer(keys.valid)));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.object, 'response');
  assert.equal(body.output[0].content[0].text, words(4));
  assert.equal(last().path, '/openai/v1/responses');

  const stream = await gw.fetch('/openai/v1/responses',
    json({ model: 'gpt-4o', input: 'hi', max_output_tokens: 4, stream: true }, bearer(keys.valid)));
  assert.equal(stream.status, 200);
  const events = parseSse(await stream.text());
  assert.equal(events[0].event, 'response.created');
  assert.equal(events.at(-1).event, 'response.completed');
  const deltas = events.filter((e) => e.event === 'response.output_text.delta').map((e) => JSON.parse(e.data).delta);
  assert.ok(deltas.length > 1);
  assert.equal(deltas.join(''), words(4));
  // Responses streams always carry usage; the one change is `store: false`, spliced in first, so
  // nothing of the call is kept in the upstream account every key shares.
  assert.equal(last().body, `{"store":false,${JSON.stringify({ model: 'gpt-4o', input: 'hi', max_output_tokens: 4, stream: true }).slice(1)}`);
});

test('OpenAI embeddings', async () => {
  const res = await gw.fetch('/openai/v1/embeddings',
    json({ model: 'text-embedding-3-small', input: ['a', 'b'] }, bearer(keys.valid)));
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.data.length, 2);
  assert.equal(body.usage.prompt_tokens, inTokens(last().body));
});

for (const [how, headers] of [['x-api-key', (k) => ({ 'x-api-key': k })], ['Bearer', bearer]]) {
  test(`Anthropic messages and count_tokens with ${how}; anthropic-version passed through`, async () => {
    const h = { ...headers(keys.valid), 'anthropic-version': '2023-06-01', 'anthropic-beta': 'interleaved-thinking-2025-05-14, files-api-2025-04-14' };
    const res = await gw.fetch('/anthropic/v1/messages',
      json({ model: 'claude-sonnet-4', max_tokens: 6, messages: [{ role: 'user', content: 'hi' }] }, h));
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.type, 'message');
    assert.equal(body.content[0].text, words(6));
    const seen = last();
    assert.equal(seen.headers['x-api-key'], UPSTREAM_SECRET);
    assert.equal(seen.headers.authorization, undefined);
    assert.equal(seen.headers['anthropic-version'], '2023-06-01');
    // Only allowlisted betas pass: the Files API would reach the account's stored files.
    assert.equal(seen.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14');

    const stream = await gw.fetch('/anthropic/v1/messages',
      json({ model: 'claude-sonnet-4', max_tokens: 6, stream: true, messages: [{ role: 'user', content: 'hi' }] }, h));
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
    const events = parseSse(await stream.text());
    assert.deepEqual(
      [events[0].event, events.at(-2).event, events.at(-1).event],
      ['message_start', 'message_delta', 'message_stop'],
    );
    const text = events.filter((e) => e.event === 'content_block_delta').map((e) => JSON.parse(e.data).delta.text).join('');
    assert.equal(text, words(6));
    assert.equal(last().headers['anthropic-version'], '2023-06-01');

    const counted = await gw.fetch('/anthropic/v1/messages/count_tokens',
      json({ model: 'claude-sonnet-4', messages: [{ role: 'user', content: 'hi' }] }, h));
    assert.equal(counted.status, 200);
    assert.deepEqual(await counted.json(), { input_tokens: inTokens(last().body) });
    assert.equal(last().path, '/anthropic/v1/messages/count_tokens');
    assert.equal(last().headers['anthropic-version'], '2023-06-01');
    assert.equal(last().credential, UPSTREAM_SECRET);
  });
}

for (const [how, headers] of [['x-goog-api-key', (k) => ({ 'x-goog-api-key': k })], ['Bearer', bearer]]) {
  test(`Gemini generateContent and streamGenerateContent?alt=sse with ${how}`, async () => {
    const h = headers(keys.valid);
    const body = { contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 8 } };
    const res = await gw.fetch('/gemini/v1beta/models/gemini-2.5-flash:generateContent', json(body, h));
    assert.equal(res.status, 200);
    const answer = await res.json();
    assert.equal(answer.candidates[0].content.parts[0].text, words(8));
    assert.equal(answer.usageMetadata.candidatesTokenCount, 8);
    let seen = last();
    assert.equal(seen.path, '/gemini/v1beta/models/gemini-2.5-flash:generateContent');
    assert.equal(seen.headers['x-goog-api-key'], UPSTREAM_SECRET);
    assert.equal(seen.headers.authorization, undefined);

    const stream = await gw.fetch('/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', json(body, h));
    assert.equal(stream.status, 200);
    assert.match(stream.headers.get('content-type'), /^text\/event-stream/);
    const events = parseSse(await stream.text()).map((e) => JSON.parse(e.data));
    assert.ok(events.length > 1);
    assert.equal(events.map((e) => e.candidates[0].content.parts[0].text).join(''), words(8));
    assert.equal(events.at(-1).candidates[0].finishReason, 'STOP');
    seen = last();
    assert.equal(seen.path, '/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
    assert.equal(seen.credential, UPSTREAM_SECRET);
  });
}

test('Gemini ?key= is not accepted as a key, and is stripped before forwarding', async () => {
  const body = { contents: [{ parts: [{ text: 'hi' }] }] };
  const before = count();
  await assertError(
    await gw.fetch(`/gemini/v1beta/models/gemini-2.5-flash:generateContent?key=${keys.valid}`, json(body)),
    401, 'authentication_error', 'invalid_api_key',
  );
  assert.equal(count(), before);

  const res = await gw.fetch(
    `/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?key=${keys.valid}&alt=sse`,
    json(body, { 'x-goog-api-key': keys.valid }),
  );
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.equal(count(), before + 1);
  assert.equal(last().path, '/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse');
  assert.equal(last().credential, UPSTREAM_SECRET);
});

// ---------- model lists ----------

test('model lists are filtered to the models the key may call', async () => {
  const expected = ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet-4', 'gemini-2.5-flash'];

  const openai = await gw.fetch('/openai/v1/models', { headers: bearer(keys.listing) });
  assert.equal(openai.status, 200);
  const o = await openai.json();
  assert.equal(o.object, 'list');
  assert.deepEqual(o.data.map((m) => m.id), expected);

  const anthropic = await gw.fetch('/anthropic/v1/models', { headers: { 'x-api-key': keys.listing } });
  assert.equal(anthropic.status, 200);
  const a = await anthropic.json();
  assert.deepEqual(a.data.map((m) => m.id), expected);
  assert.equal(a.first_id, 'gpt-4o');
  assert.equal(a.last_id, 'gemini-2.5-flash');

  const gemini = await gw.fetch('/gemini/v1beta/models', { headers: { 'x-goog-api-key': keys.listing } });
  assert.equal(gemini.status, 200);
  const g = await gemini.json();
  assert.deepEqual(g.models.map((m) => m.name), expected.map((id) => `models/${id}`));

  // A key without a model policy sees what the routing groups serve: the mock's whole list.
  const all = await (await gw.fetch('/openai/v1/models', { headers: bearer(keys.valid) })).json();
  assert.equal(all.data.length, 8);
});

// ---------- every check and its answer ----------

test('disabled key: 401 key_disabled, expired key: 401 key_expired, nothing forwarded', async () => {
  const before = count();
  await assertError(await chat('gpt-4o', keys.disabled), 401, 'authentication_error', 'key_disabled');
  await assertError(await gw.fetch('/openai/v1/models', { headers: bearer(keys.disabled) }),
    401, 'authentication_error', 'key_disabled');
  await assertError(await chat('gpt-4o', keys.expired), 401, 'authentication_error', 'key_expired');
  assert.equal(count(), before);
  const ok = await chat('gpt-4o', keys.notYetExpired);
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});

test('IP allowlist reads CF-Connecting-IP only (IPv4 CIDR, IPv6, X-Forwarded-For ignored)', async () => {
  const from = async (headers) => chat('gpt-4o', keys.ip, {}, headers);
  const allowed = async (headers) => {
    const res = await from(headers);
    assert.equal(res.status, 200, JSON.stringify(headers));
    await res.arrayBuffer();
  };
  const denied = async (headers) => {
    const before = count();
    await assertError(await from(headers), 403, 'permission_error', 'ip_not_allowed');
    assert.equal(count(), before, JSON.stringify(headers));
  };
  await allowed({ 'cf-connecting-ip': '203.0.113.7' });
  await allowed({ 'cf-connecting-ip': '203.0.113.255' });
  await denied({ 'cf-connecting-ip': '203.0.114.1' });
  await denied({ 'cf-connecting-ip': '198.51.100.1' });
  await allowed({ 'cf-connecting-ip': '2001:db8:0:1::5' });
  await denied({ 'cf-connecting-ip': '2001:db9::1' });
  // X-Forwarded-For is the client's to write: an allowed address there changes nothing.
  await denied({ 'cf-connecting-ip': '198.51.100.1', 'x-forwarded-for': '203.0.113.7' });
  await denied({ 'x-forwarded-for': '203.0.113.7' }); // workerd sets CF-Connecting-IP to 127.0.0.1
  // …and an allowed CF-Connecting-IP is not undone by a forged X-Forwarded-For.
  await allowed({ 'cf-connecting-ip': '203.0.113.7', 'x-forwarded-for': '198.51.100.1' });
  // The allowlisted address never reaches the upstream as a header.
  assert.equal(last().headers['cf-connecting-ip'], undefined);
  assert.equal(last().headers['x-forwarded-for'], undefined);
});

test('model allow and block lists: 403 model_not_allowed', async () => {
  const before = count();
  await assertError(await chat('gpt-4o-mini', keys.allow), 403, 'permission_error', 'model_not_allowed');
  await assertError(await chat('o3', keys.allow), 403, 'permission_error', 'model_not_allowed');
  await assertError(
    await gw.fetch('/anthropic/v1/messages', json({ model: 'claude-haiku-4', max_tokens: 5, messages: [] }, { 'x-api-key': keys.allow })),
    403, 'permission_error', 'model_not_allowed',
  );
  await assertError(await chat('gpt-4o-mini', keys.block), 403, 'permission_error', 'model_not_allowed');
  await assertError(
    await gw.fetch('/anthropic/v1/messages', json({ model: 'claude-haiku-4', max_tokens: 5, messages: [] }, { 'x-api-key': keys.block })),
    403, 'permission_error', 'model_not_allowed',
  );
  // The path model is checked like the body model.
  await assertError(
    await gw.fetch('/openai/v1/models/gpt-4o-mini', { headers: bearer(keys.block) }),
    403, 'permission_error', 'model_not_allowed',
  );
  assert.equal(count(), before);
  for (const [model, k] of [['gpt-4o', keys.allow], ['gpt-4o', keys.block], ['o3', keys.block]]) {
    const res = await chat(model, k);
    assert.equal(res.status, 200, `${model}`);
    await res.arrayBuffer();
  }
  assert.equal(count(), before + 3);
});

test('routing: group not granted → 403, model no group serves → 404', async () => {
  const before = count();
  await assertError(await chat('premium-1', keys.defaultOnly), 403, 'permission_error', 'routing_group_not_allowed');
  await assertError(await chat('llama-3', keys.valid), 404, 'not_found_error', 'model_not_found');
  await assertError(await chat('llama-3', keys.defaultOnly), 404, 'not_found_error', 'model_not_found');
  assert.equal(count(), before);
  // A key without groups may use every group; one granted 'default' still calls what it serves.
  for (const [model, k] of [['premium-1', keys.valid], ['gpt-4o', keys.defaultOnly]]) {
    const res = await chat(model, k);
    assert.equal(res.status, 200, model);
    await res.arrayBuffer();
  }
  assert.equal(count(), before + 2);
});

test('malformed requests: invalid JSON, missing model, body over 10 MiB', async () => {
  const before = count();
  const post = (body, headers = {}) => gw.fetch('/openai/v1/chat/completions', {
    method: 'POST', headers: { 'content-type': 'application/json', ...bearer(keys.valid), ...headers }, body,
  });
  await assertError(await post('{"model":"gpt-4o",'), 400, 'invalid_request_error', 'invalid_json');
  await assertError(await post('[1,2]'), 400, 'invalid_request_error', 'invalid_json');
  await assertError(await post('{"model":"gpt-4o","model":"gpt-4o-mini"}'), 400, 'invalid_request_error', 'invalid_json');
  await assertError(await post('{"messages":[]}'), 400, 'invalid_request_error', 'missing_model');
  await assertError(await post('{"model":"","messages":[]}'), 400, 'invalid_request_error', 'missing_model');
  await assertError(await post(''), 400, 'invalid_request_error', 'missing_body');

  // A declared length over the limit is refused before the body is sent: only the headers go
  // out, and the answer must come without it (a gateway reading the body first would hang here).
  const declared = await new Promise((resolve, reject) => {
    const url = new URL(gw.base);
    const req = http.request({
      host: url.hostname, port: url.port, method: 'POST', path: '/openai/v1/chat/completions',
      headers: { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024 + 1), ...bearer(keys.valid) },
    }, (res) => {
      const bufs = [];
      res.on('data', (b) => bufs.push(b));
      res.on('end', () => { resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(bufs).toString()) }); req.destroy(); });
    });
    req.on('error', reject);
    req.setTimeout(5000, () => reject(new Error('no answer without the body: the gateway waited for it')));
    req.flushHeaders();
  });
  assert.equal(declared.status, 413);
  assert.equal(declared.body.error.code, 'body_too_large');
  assert.equal(declared.body.error.type, 'invalid_request_error');
  // Without a declared length (chunked), the gateway counts while reading.
  // (On a connection of its own: the gateway stops reading, so the connection is not reusable.)
  const chunked = await gw.postOnce('/openai/v1/chat/completions',
    { 'content-type': 'application/json', ...bearer(keys.valid) },
    Array.from({ length: 11 }, () => Buffer.alloc(1024 * 1024, 0x20)));
  assert.equal(chunked.status, 413);
  assert.equal(JSON.parse(chunked.text).error.code, 'body_too_large');
  assert.equal(count(), before);
});

test('unknown paths 404, refused routes 403 route_not_allowed, wrong method 405', async () => {
  const before = count();
  const call = (method, path, body) => gw.fetch(path, {
    method, headers: { 'content-type': 'application/json', ...bearer(keys.valid) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  for (const path of ['/', '/v1/chat/completions', '/openai/v1/nope', '/openai/v2/chat/completions',
    '/anthropic/v1/complete', '/openai/v1/chat/completions/', '/openai/v1//chat/completions']) {
    await assertError(await call('POST', path, { model: 'gpt-4o' }), 404, 'not_found_error', 'not_found');
  }
  for (const [method, path] of [
    ['POST', '/openai/v1/files'], ['GET', '/openai/v1/files/file-1/content'], ['POST', '/openai/v1/batches'],
    ['POST', '/openai/v1/fine_tuning/jobs'], ['POST', '/openai/v1/assistants'], ['GET', '/openai/v1/responses/resp_1'],
    ['POST', '/openai/v1/audio/transcriptions'], ['POST', '/anthropic/v1/messages/batches'],
    ['POST', '/anthropic/v1/files'], ['POST', '/gemini/v1beta/files'], ['POST', '/gemini/v1beta/cachedContents'],
    ['POST', '/gemini/v1beta/models/gemini-2.5-flash:batchGenerateContent'],
  ]) {
    await assertError(await call(method, path, method === 'POST' ? { model: 'gpt-4o' } : undefined),
      403, 'permission_error', 'route_not_allowed');
  }
  for (const [method, path, allow] of [
    ['GET', '/openai/v1/chat/completions', 'POST'], ['POST', '/openai/v1/models', 'GET'],
    ['DELETE', '/openai/v1/models/gpt-4o', 'GET'], ['GET', '/anthropic/v1/messages', 'POST'],
    ['GET', '/gemini/v1beta/models/gemini-2.5-flash:generateContent', 'POST'],
  ]) {
    const res = await call(method, path, method === 'POST' ? { model: 'gpt-4o' } : undefined);
    assert.equal(res.headers.get('allow'), allow, `${method} ${path}`);
    await assertError(res, 405, 'invalid_request_error', 'method_not_allowed');
  }
  assert.equal(count(), before);
});

test('a denied request consumes no quota', async () => {
  const k = keys.rpm2;
  const ip = { 'cf-connecting-ip': '203.0.113.9' };
  const denials = [
    [await chat('o3', k, {}, ip), 403, 'model_not_allowed'],
    [await chat('gpt-4o', k, {}, { 'cf-connecting-ip': '198.51.100.1' }), 403, 'ip_not_allowed'],
    [await chat('llama-3', k, {}, ip), 404, 'model_not_found'],
    [await gw.fetch('/openai/v1/chat/completions', { method: 'POST', headers: { ...bearer(k), ...ip }, body: '{' }), 400, 'invalid_json'],
    [await gw.fetch('/openai/v1/chat/completions', json({ messages: [] }, { ...bearer(k), ...ip })), 400, 'missing_model'],
    [await gw.fetch('/openai/v1/batches', json({ model: 'gpt-4o' }, { ...bearer(k), ...ip })), 403, 'route_not_allowed'],
    [await chat('o3', k, {}, ip), 403, 'model_not_allowed'],
  ];
  for (const [res, status, code] of denials) {
    assert.equal(res.status, status);
    assert.equal((await res.json()).error.code, code);
  }
  for (let i = 0; i < 2; i++) {
    const res = await chat('gpt-4o', k, {}, ip);
    assert.equal(res.status, 200, `allowed call ${i + 1}`);
    assert.equal(res.headers.get('x-ratelimit-remaining-requests'), String(1 - i));
    await res.arrayBuffer();
  }
  // The limit is live: the third allowed call is over it.
  const over = await chat('gpt-4o', k, {}, ip);
  const error = await assertError(over, 429, 'rate_limit_error', 'rate_limit_exceeded');
  assert.equal(error.limit.scope, 'rpm');
  assert.equal(error.limit.used, 2);
});

// ---------- routing: fallback and model map ----------

test('fallback: a target answering 503 → the next target answers, with its own credential', async () => {
  const failedBefore = failing.requests.length;
  const secondBefore = second.requests.length;
  const res = await chat('fb-503', keys.valid, { max_tokens: 2 });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.model, 'fb-503');
  assert.equal(body.choices[0].message.content, words(2));
  assert.equal(failing.requests.length, failedBefore + 1);
  assert.equal(failing.requests.at(-1).credential, `Bearer ${SECRET_A}`);
  assert.equal(second.requests.length, secondBefore + 1);
  const seen = second.requests.at(-1);
  assert.equal(seen.path, '/openai/v1/chat/completions');
  assert.equal(seen.credential, `Bearer ${SECRET_B}`);
  assert.equal(JSON.parse(seen.body).model, 'fb-503');
});

test('fallback: a target that cannot be reached → the next target answers', async () => {
  const secondBefore = second.requests.length;
  const res = await chat('fb-closed', keys.valid, { max_tokens: 2 });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).model, 'fb-closed');
  assert.equal(second.requests.length, secondBefore + 1);
  assert.equal(second.requests.at(-1).credential, `Bearer ${SECRET_B}`);
});

test('no fallback: the group\'s first target failing is a 502, the second is not tried', async () => {
  const failedBefore = failing.requests.length;
  const secondBefore = second.requests.length;
  await assertError(await chat('fb-none', keys.valid), 502, 'upstream_error', 'upstream_error');
  assert.equal(failing.requests.length, failedBefore + 1);
  assert.equal(second.requests.length, secondBefore);
});

test('model_map renames the model for the upstream (body and Gemini path)', async () => {
  const res = await chat('team-fast', keys.valid, { max_tokens: 2 });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.equal(JSON.parse(last().body).model, 'gpt-4o-mini');

  const g = await gw.fetch('/gemini/v1beta/models/team-fast:generateContent',
    json({ contents: [{ parts: [{ text: 'hi' }] }] }, { 'x-goog-api-key': keys.valid }));
  assert.equal(g.status, 200);
  await g.arrayBuffer();
  assert.equal(last().path, '/gemini/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(last().credential, UPSTREAM_SECRET);
});

// ---------- every route applies the same checks ----------

const gemini = { contents: [{ parts: [{ text: 'hi' }] }] };
/**
 * Every route src/gateway/route.rs offers: [method, path, body, model or null, upstream status,
 * members the gateway adds to the body it forwards (the output cap it reserved, `store: false`)].
 */
const ROUTES = [
  ['POST', '/openai/v1/chat/completions', { model: 'gpt-4o', messages: [] }, 'gpt-4o', 200, { max_completion_tokens: 4096 }],
  ['POST', '/openai/v1/completions', { model: 'gpt-4o', prompt: 'hi' }, 'gpt-4o', 200, { max_tokens: 4096 }],
  ['POST', '/openai/v1/responses', { model: 'gpt-4o', input: 'hi' }, 'gpt-4o', 200, { store: false, max_output_tokens: 4096 }],
  ['POST', '/openai/v1/embeddings', { model: 'text-embedding-3-small', input: 'hi' }, 'text-embedding-3-small', 200, {}],
  ['GET', '/openai/v1/models', undefined, null, 200, {}],
  ['GET', '/openai/v1/models/gpt-4o', undefined, 'gpt-4o', 404, {}], // the mock has no model-info route
  ['POST', '/openai/v1/images/generations', { model: 'dall-e-3', prompt: 'a cat' }, 'dall-e-3', 200, {}],
  ['POST', '/openai/v1/audio/speech', { model: 'tts-1', input: 'hi', voice: 'alloy' }, 'tts-1', 200, {}],
  ['POST', '/openai/v1/moderations', { model: 'omni-moderation-latest', input: 'hi' }, 'omni-moderation-latest', 200, {}],
  ['POST', '/anthropic/v1/messages', { model: 'claude-sonnet-4', max_tokens: 5, messages: [] }, 'claude-sonnet-4', 200, {}],
  ['POST', '/anthropic/v1/messages/count_tokens', { model: 'claude-sonnet-4', messages: [] }, 'claude-sonnet-4', 200, {}],
  ['GET', '/anthropic/v1/models', undefined, null, 200, {}],
  ['GET', '/anthropic/v1/models/claude-sonnet-4', undefined, 'claude-sonnet-4', 404, {}],
  ['GET', '/gemini/v1beta/models', undefined, null, 200, {}],
  ['GET', '/gemini/v1beta/models/gemini-2.5-flash', undefined, 'gemini-2.5-flash', 404, {}],
  ['POST', '/gemini/v1beta/models/gemini-2.5-flash:generateContent', gemini, 'gemini-2.5-flash', 200, { generationConfig: { maxOutputTokens: 4096 } }],
  ['POST', '/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent', gemini, 'gemini-2.5-flash', 200, { generationConfig: { maxOutputTokens: 4096 } }],
  ['POST', '/gemini/v1beta/models/gemini-2.5-flash:countTokens', gemini, 'gemini-2.5-flash', 200, {}],
];

const CREDENTIAL = {
  openai: `Bearer ${UPSTREAM_SECRET}`, anthropic: UPSTREAM_SECRET, gemini: UPSTREAM_SECRET,
};

test('every route: no key → 401, refused key → nothing forwarded, valid key → forwarded', async () => {
  const family = (path) => path.split('/')[1];
  const call = (method, path, body, k) => gw.fetch(path, {
    method,
    headers: { 'content-type': 'application/json', ...(k && bearer(k)) },
    ...(body && { body: JSON.stringify(body) }),
  });
  for (const [method, path, body, model, upstreamStatus, added] of ROUTES) {
    const where = `${method} ${path}`;
    const before = count();
    // (a) no key
    await assertError(await call(method, path, body), 401, 'authentication_error', 'invalid_api_key');
    // (b) refused before the upstream: a disabled key on every route, a blocked model where there is one
    const disabled = await assertError(await call(method, path, body, keys.disabled), 401, 'authentication_error', 'key_disabled');
    assert.ok(disabled.message.length > 0, where);
    if (model) {
      const blocked = await assertError(await call(method, path, body, keys.blockAll), 403, 'permission_error', 'model_not_allowed');
      assert.ok(blocked.message.includes(model), `${where}: ${blocked.message}`);
    }
    assert.equal(count(), before, `${where}: a refused request reached the upstream`);
    // (c) a valid key is forwarded, once, to the same path, with the family's credential
    const res = await call(method, path, body, keys.valid);
    const text = await res.text();
    assert.equal(res.status, upstreamStatus, `${where}: ${text}`);
    assert.equal(count(), before + 1, where);
    const seen = last();
    assert.equal(seen.method, method, where);
    assert.equal(seen.path, path, where);
    assert.equal(seen.credential, CREDENTIAL[family(path)], where);
    if (body) assert.deepEqual(JSON.parse(seen.body), { ...body, ...added }, where);
  }
});

test('the upstream account stays behind: its 401 is a 502, its rate-limit headers and field masks do not cross', async () => {
  const before = gw.mock.requests.length;
  const refused = await gw.fetch('/openai/v1/chat/completions', json(
    { model: 'gpt-4o', messages: [] },
    { authorization: `Bearer ${keys.valid}`, 'x-mock-status': '401' },
  ));
  await assertError(refused, 502, 'upstream_error', 'upstream_error');

  const masked = await gw.fetch('/gemini/v1beta/models/gemini-2.5-flash:generateContent?fields=usageMetadata.promptTokenCount', json(
    { contents: [{ parts: [{ text: 'hi' }] }] },
    { 'x-goog-api-key': keys.valid, 'x-goog-fieldmask': 'candidates', 'openai-organization': 'org-other' },
  ));
  assert.equal(masked.status, 200);
  await masked.arrayBuffer();
  const seen = gw.mock.requests.slice(before).at(-1);
  assert.equal(seen.path, '/gemini/v1beta/models/gemini-2.5-flash:generateContent');
  assert.equal(seen.headers['x-goog-fieldmask'], undefined);
  assert.equal(seen.headers['openai-organization'], undefined);
});

test('a key with a spend cap cannot call routes billed per image or character', async () => {
  const capped = await gw.seedKey(keyRecord({ limits: { spend: [{ period: 'daily', limit_micros: 1_000_000 }] } }));
  const before = gw.mock.requests.length;
  const res = await gw.fetch('/openai/v1/images/generations', json(
    { model: 'dall-e-3', prompt: 'a cat' }, { authorization: `Bearer ${capped}` },
  ));
  await assertError(res, 403, 'permission_error', 'route_not_metered');
  assert.equal(gw.mock.requests.length, before, 'nothing reached the upstream');
});
