// Issue 4, the ledger: admission is atomic under concurrency (rate limits admit exactly their
// limit, spend caps are never passed), counters settle to the usage the upstream reported
// whatever way a call ends, limit headers ride on proxied responses, and a key disabled at its
// Durable Object is refused at once whatever KV says.
//
// Prices are set to 1 micro-dollar per token (input and output) so money equals tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, json, parseSse, pollUntil, sha256hex } from './harness.mjs';

const PRICING = [
  { model: 'gpt-4o*', input: 1_000_000, output: 1_000_000 },
  { model: 'claude-*', input: 1_000_000, output: 1_000_000 },
  { model: 'gemini-*', input: 1_000_000, output: 1_000_000 },
  { model: 'text-embedding-*', input: 1_000_000, output: 0 },
];

let gw;
before(async () => {
  gw = await startGateway({ bindings: { PRICING: JSON.stringify(PRICING) } });
});
after(() => gw?.close());

const bearer = (k) => ({ authorization: `Bearer ${k}` });
// What the mock upstream reports for a body it received: a quarter of its bytes.
const tokensOf = (raw) => Math.ceil(Buffer.byteLength(raw) / 4);
// What the gateway reserves for a text-only body (src/gateway/bounds.rs): token windows a quarter
// of its bytes, spend caps all of them, each plus the per-request overhead and the output cap.
const REQUEST_OVERHEAD_TOKENS = 512;
const reservedTokens = (raw, maxTokens) => tokensOf(raw) + REQUEST_OVERHEAD_TOKENS + maxTokens;
const reservedMicros = (raw, maxTokens) => Buffer.byteLength(raw) + REQUEST_OVERHEAD_TOKENS + maxTokens;
const count = () => gw.mock.requests.length;
const byTestId = (id) => {
  const found = gw.mock.requests.filter((r) => r.headers['x-test-id'] === id);
  assert.equal(found.length, 1, `mock requests tagged ${id}`);
  return found[0];
};

/** Reads a body to its end; a body cut by the upstream ends in an error, which is expected. */
async function drain(res) {
  try {
    return { text: await res.text(), error: null };
  } catch (error) {
    return { text: null, error };
  }
}

/** Header `name` of a zero-token call (a model list) on key `k`. */
async function headerOfZeroTokenCall(k, name) {
  const res = await gw.fetch('/openai/v1/models', { headers: bearer(k) });
  await res.arrayBuffer();
  assert.equal(res.status, 200);
  return Number(res.headers.get(name));
}

test('200 concurrent requests against rpm 50 admit exactly 50', async () => {
  const k = await gw.seedKey(keyRecord({ limits: { rpm: 50 } }));
  const before = count();
  const body = { model: 'gpt-4o', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] };
  const responses = await Promise.all(Array.from({ length: 200 }, () =>
    gw.fetch('/openai/v1/chat/completions', json(body, bearer(k))).then(async (res) => ({
      status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json(),
    }))));
  const admitted = responses.filter((r) => r.status === 200);
  const refused = responses.filter((r) => r.status === 429);
  assert.equal(admitted.length, 50);
  assert.equal(refused.length, 150);
  assert.equal(count(), before + 50, 'the upstream saw exactly the admitted requests');
  for (const r of refused) {
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.equal(r.body.error.code, 'rate_limit_exceeded');
    assert.equal(r.body.error.limit.scope, 'rpm');
    assert.equal(r.body.error.limit.limit, 50);
    assert.equal(r.body.error.limit.used, 50);
    assert.equal(typeof r.body.error.limit.reset_at_ms, 'number');
    assert.match(r.retryAfter ?? '', /^[1-9][0-9]*$/, 'Retry-After on a 429');
    assert.ok(Number(r.retryAfter) <= 60);
  }
  for (const r of admitted) assert.equal(r.body.object, 'chat.completion');
});

test('concurrent streams against a spend cap never pass it', async () => {
  // The client asks for usage itself and sets its cap, so the body is forwarded byte for byte.
  // The reservation bounds the bill (every body byte an input token, plus the cap of 50); the
  // mock bills a quarter of the bytes and 20 output tokens, so each call settles far below it.
  const raw = JSON.stringify({
    model: 'gpt-4o', stream: true, stream_options: { include_usage: true }, max_tokens: 50,
    messages: [{ role: 'user', content: 'spend a little' }],
  });
  const estimate = reservedMicros(raw, 50);
  const actual = tokensOf(raw) + 20;
  const cap = Math.floor(10.5 * estimate);
  const k = await gw.seedKey(keyRecord({ limits: { spend: [{ period: 'daily', limit_micros: cap }] } }));
  const before = count();

  const results = await Promise.all(Array.from({ length: 30 }, () =>
    gw.fetch('/openai/v1/chat/completions', {
      method: 'POST', body: raw,
      headers: { 'content-type': 'application/json', 'x-mock-chunk-delay-ms': '20', ...bearer(k) },
    }).then(async (res) => ({ status: res.status, retryAfter: res.headers.get('retry-after'), text: await res.text() }))));

  const admitted = results.filter((r) => r.status === 200);
  const refused = results.filter((r) => r.status === 429);
  assert.equal(admitted.length + refused.length, 30, JSON.stringify(results.map((r) => r.status)));
  // Admission keeps committed + reserved + estimate ≤ cap: at least floor(cap / estimate) get in
  // (all reserved at once), at most as many as fit when earlier ones already settled lower.
  const atLeast = Math.floor(cap / estimate);
  const atMost = Math.floor((cap - estimate) / actual) + 1;
  assert.ok(admitted.length >= atLeast && admitted.length <= atMost,
    `${admitted.length} admitted, expected ${atLeast}..${atMost}`);
  assert.equal(count(), before + admitted.length);
  for (const r of admitted) {
    const events = parseSse(r.text);
    assert.equal(events.at(-1).data, '[DONE]');
    assert.equal(JSON.parse(events.at(-2).data).usage.total_tokens, actual);
  }
  for (const r of refused) {
    const { error } = JSON.parse(r.text);
    assert.equal(error.code, 'spend_limit_exceeded');
    assert.equal(error.type, 'rate_limit_error');
    assert.equal(error.limit.scope, 'spend_daily');
    assert.equal(error.limit.limit, cap);
    assert.ok(error.limit.used + estimate > cap, JSON.stringify(error.limit));
    assert.match(r.retryAfter ?? '', /^[1-9][0-9]*$/, 'Retry-After on a spend 429');
  }

  const spent = admitted.length * actual;
  assert.ok(spent <= cap, `spent ${spent} > cap ${cap}`);
  const remaining = await pollUntil(
    () => headerOfZeroTokenCall(k, 'x-teamkeys-spend-remaining-micros'),
    (left) => left === cap - spent,
  );
  assert.equal(remaining, cap - spent, 'spend after settlement is the sum of the true costs');
});

test('counters settle to the usage the upstream reported, however each call ended', async () => {
  const tpd = 10_000_000;
  const k = await gw.seedKey(keyRecord({ limits: { tpd } }));
  const anthropic = (max_tokens, stream, content) =>
    JSON.stringify({ model: 'claude-sonnet-4', max_tokens, stream, messages: [{ role: 'user', content }] });
  const reserved = reservedTokens;
  const reported = (id, output) => tokensOf(byTestId(id).body) + output;

  // [id, path, raw body, extra headers, expected gateway status, expected charge (after the call)]
  const calls = [
    ['json', '/anthropic/v1/messages', anthropic(100, false, 'plain json'), {}, 200, (id) => reported(id, 20)],
    ['stream', '/anthropic/v1/messages', anthropic(100, true, 'plain stream'), {}, 200, (id) => reported(id, 20)],
    // Upstream failures release the reservation: nothing is charged.
    ['status-500', '/anthropic/v1/messages', anthropic(100, false, 'fails'), { 'x-mock-status': '500' }, 502, () => 0],
    ['status-429', '/anthropic/v1/messages', anthropic(100, true, 'limited'), { 'x-mock-status': '429' }, 429, () => 0],
    // Streams cut before their terminal event (message_stop) have no final usage: they are
    // charged their reservation (or the usage seen, where that is more), as the upstream may
    // have billed the whole cap (src/gateway/metering.rs).
    ['cut-1', '/anthropic/v1/messages', anthropic(100, true, 'cut after start'), { 'x-mock-cut-after': '1' }, 200,
      (id) => reserved(byTestId(id).body, 100)],
    ['cut-3', '/anthropic/v1/messages', anthropic(100, true, 'cut after a delta'), { 'x-mock-cut-after': '3' }, 200,
      (id) => reserved(byTestId(id).body, 100)],
    ['cut-8', '/anthropic/v1/messages', anthropic(100, true, 'cut before stop'), { 'x-mock-cut-after': '8' }, 200,
      (id) => reserved(byTestId(id).body, 100)],
    // A 2xx that never reported usage is charged its full reservation.
    ['cut-0', '/anthropic/v1/messages', anthropic(100, true, 'cut at once'), { 'x-mock-cut-after': '0' }, 200,
      (id) => reserved(byTestId(id).body, 100)],
    ['no-usage', '/anthropic/v1/messages', anthropic(100, false, 'silent'), { 'x-mock-no-usage': '1' }, 200,
      (id) => reserved(byTestId(id).body, 100)],
    // OpenAI streams: the gateway asks for usage (the body grows) and settles on it, or on the
    // reservation of the client's body when the upstream still omits it.
    ['openai-stream', '/openai/v1/chat/completions',
      JSON.stringify({ model: 'gpt-4o', stream: true, max_tokens: 100, messages: [{ role: 'user', content: 'hi' }] }),
      {}, 200, (id) => reported(id, 20)],
    ['openai-stream-no-usage', '/openai/v1/chat/completions',
      JSON.stringify({ model: 'gpt-4o', stream: true, max_tokens: 100, messages: [{ role: 'user', content: 'quiet' }] }),
      { 'x-mock-no-usage': '1' }, 200,
      () => reserved(JSON.stringify({ model: 'gpt-4o', stream: true, max_tokens: 100, messages: [{ role: 'user', content: 'quiet' }] }), 100)],
    ['gemini-sse', '/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse',
      JSON.stringify({ contents: [{ parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 100 } }),
      {}, 200, (id) => reported(id, 20)],
    ['embeddings', '/openai/v1/embeddings', JSON.stringify({ model: 'text-embedding-3-small', input: 'embed me' }),
      {}, 200, (id) => reported(id, 0)],
    // Token counting is not billed in tokens.
    ['count', '/anthropic/v1/messages/count_tokens', JSON.stringify({ model: 'claude-sonnet-4', messages: [] }),
      {}, 200, () => 0],
  ];

  await Promise.all(calls.map(async ([id, path, raw, headers, status]) => {
    const res = await gw.fetch(path, {
      method: 'POST', body: raw,
      headers: { 'content-type': 'application/json', 'x-test-id': id, ...bearer(k), ...headers },
    });
    assert.equal(res.status, status, id);
    await drain(res);
  }));

  const expected = calls.map(([id, , , , , charge]) => [id, charge(id)]);
  const total = expected.reduce((sum, [, n]) => sum + n, 0);
  const remaining = await pollUntil(
    () => headerOfZeroTokenCall(k, 'x-ratelimit-remaining-tokens'),
    (left) => left === tpd - total,
  );
  assert.equal(tpd - remaining, total, `charged per call: ${JSON.stringify(expected)}`);
});

test('x-ratelimit-* and spend headers on proxied responses', async () => {
  const limits = { rpm: 10, tpm: 100_000, tpd: 1_000_000, spend: [{ period: 'monthly', limit_micros: 1_000_000 }] };
  const k = await gw.seedKey(keyRecord({ limits }));
  const raw = JSON.stringify({ model: 'gpt-4o', max_tokens: 30, messages: [{ role: 'user', content: 'headers' }] });
  const estimate = reservedTokens(raw, 30);
  const res = await gw.fetch('/openai/v1/chat/completions', {
    method: 'POST', body: raw, headers: { 'content-type': 'application/json', ...bearer(k) },
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const h = (name) => res.headers.get(name);
  assert.equal(h('x-ratelimit-limit-requests'), '10');
  assert.equal(h('x-ratelimit-remaining-requests'), '9');
  assert.match(h('x-ratelimit-reset-requests'), /^(\d+h)?(\d+m)?\d+m?s$/);
  // The tightest token window is the minute: the reservation is counted until it settles.
  assert.equal(h('x-ratelimit-limit-tokens'), '100000');
  assert.equal(h('x-ratelimit-remaining-tokens'), String(100_000 - estimate));
  assert.match(h('x-ratelimit-reset-tokens'), /^(\d+h)?(\d+m)?\d+m?s$/);
  assert.equal(h('x-teamkeys-spend-remaining-micros'), String(1_000_000 - reservedMicros(raw, 30)));

  const stream = await gw.fetch('/anthropic/v1/messages', json(
    { model: 'claude-sonnet-4', max_tokens: 10, stream: true, messages: [{ role: 'user', content: 'hi' }] },
    { 'x-api-key': k },
  ));
  assert.equal(stream.status, 200);
  await stream.arrayBuffer();
  assert.equal(stream.headers.get('x-ratelimit-limit-requests'), '10');
  assert.equal(stream.headers.get('x-ratelimit-remaining-requests'), '8');
  for (const name of ['x-ratelimit-limit-tokens', 'x-ratelimit-remaining-tokens', 'x-teamkeys-spend-remaining-micros']) {
    assert.match(stream.headers.get(name) ?? '', /^\d+$/, name);
  }
  assert.ok(Number(stream.headers.get('x-teamkeys-spend-remaining-micros')) < 1_000_000 - estimate);
});

/** Sends a control command straight to a key's ledger object, as the control plane does. */
async function controlLedger(keyId, control) {
  const ns = await gw.mf.getDurableObjectNamespace('LEDGER');
  const res = await ns.get(ns.idFromName(keyId)).fetch('https://ledger/', {
    method: 'POST', body: JSON.stringify({ op: 'control', control }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { outcome: 'done' });
}

test('a key disabled at its ledger object is refused on its next request, whatever KV says', async () => {
  const record = keyRecord();
  const k = await gw.seedKey(record);
  const call = () => gw.fetch('/openai/v1/chat/completions', json({ model: 'gpt-4o', messages: [] }, bearer(k)));
  const first = await call();
  assert.equal(first.status, 200);
  await first.arrayBuffer();

  const control = (c) => controlLedger(record.id, c);
  await control({ action: 'disable' });
  const kvRecord = JSON.parse(await gw.kv.get(`key:${sha256hex(k)}`));
  assert.equal(kvRecord.status, 'active', 'KV still says active');

  const before = count();
  const refused = await call();
  assert.equal(refused.status, 401);
  const { error } = await refused.json();
  assert.equal(error.type, 'authentication_error');
  assert.equal(error.code, 'key_disabled');
  assert.equal(count(), before, 'the refused request reached the upstream');

  await control({ action: 'enable' });
  const again = await call();
  assert.equal(again.status, 200);
  await again.arrayBuffer();

  // A rotation without grace retires the secret the KV copy still names.
  await control({ action: 'rotate', new_version: 2, grace_until_ms: null });
  const rotated = await call();
  assert.equal(rotated.status, 401);
  assert.equal((await rotated.json()).error.code, 'invalid_api_key');
});

test('a full request window is refused at the edge for up to a second, then by the object again', async () => {
  const record = keyRecord({ limits: { rpm: 1 } });
  const k = await gw.seedKey(record);
  const call = async () => {
    const res = await gw.fetch('/openai/v1/chat/completions', json({ model: 'gpt-4o', messages: [] }, bearer(k)));
    const body = await res.json();
    return { status: res.status, code: body.error?.code };
  };
  assert.equal((await call()).status, 200);
  const refused = await call();
  assert.deepEqual(refused, { status: 429, code: 'rate_limit_exceeded' });
  // The object now refuses the key for another reason; the edge, holding the window's refusal,
  // does not ask it again within the hold…
  await controlLedger(record.id, { action: 'disable' });
  assert.deepEqual(await call(), { status: 429, code: 'rate_limit_exceeded' });
  // …and asks it again once the hold (at most a second) is over.
  const after = await pollUntil(call, (r) => r.status === 401, { timeoutMs: 2500 });
  assert.deepEqual(after, { status: 401, code: 'key_disabled' });
});

test('an upstream answer whose status carries no body (204) is passed on without one, and the isolate lives on', async () => {
  const k = await gw.seedKey(keyRecord({ limits: { tpd: 10_000_000 } }));
  const call = (headers) => gw.fetch('/openai/v1/chat/completions', {
    method: 'POST',
    body: JSON.stringify({ model: 'gpt-4o', max_tokens: 10, messages: [{ role: 'user', content: 'nothing' }] }),
    headers: { 'content-type': 'application/json', ...bearer(k), ...headers },
  });
  for (let i = 0; i < 3; i++) {
    const empty = await call({ 'x-mock-status': '204' });
    assert.equal(empty.status, 204);
    assert.equal(await empty.text(), '');
    const next = await call({});
    assert.equal(next.status, 200, 'the next call is served');
    await drain(next);
  }
});
