// Webhook delivery end to end: endpoints managed through the Outbox object's admin routes, events
// enqueued directly or raised by a key's ledger on a real spend threshold (of the key's own caps,
// a model pattern's or an end user's), delivered signed to a
// receiver on 127.0.0.1 that fails first, with retries driven by real Durable Object alarms.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { startGateway, keyRecord, json } from './harness.mjs';
import { startReceiver, verifySignature, waitFor } from './webhook-receiver.mjs';

const FAST = { WEBHOOK_BACKOFF_BASE_MS: '50' };
// 10 micro-dollars per output token, input free: a call with max_tokens 20 costs exactly 200.
const PRICING = JSON.stringify([{ model: 'gpt-4o-mini', input: 0, output: 10_000_000 }]);

let gw;
before(async () => {
  gw = await startGateway({ bindings: { ...FAST, PRICING } });
});
after(async () => gw?.close());

/** The Outbox object ("org") of a gateway, called directly (the admin router is not needed). */
async function outboxOf(gateway) {
  const ns = await gateway.mf.getDurableObjectNamespace('OUTBOX');
  const stub = ns.get(ns.idFromName('org'));
  const call = async (method, path, body) => {
    const res = await stub.fetch(`https://outbox${path}`, body === undefined ? { method } : { method, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  return {
    call,
    createEndpoint: async (body) => {
      const res = await call('POST', '/admin/v1/webhooks', body);
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body;
    },
    deliveries: async (id) => (await call('GET', `/admin/v1/webhooks/${id}/deliveries`)).body.data,
    enqueue: (events) => call('POST', '/enqueue', { events }),
  };
}

const eventId = () => `evt_${randomBytes(16).toString('hex')}`;
const event = (type, data = {}) => ({ id: eventId(), type, created_at: Date.now(), data });

/** A free loopback port with nothing listening on it. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Asserts every request of `receiver` is signed with `secret` and names its body's id. */
function assertSigned(receiver, secret) {
  for (const r of receiver.requests) {
    assert.equal(r.contentType, 'application/json');
    assert.equal(JSON.parse(r.body).id, r.id, 'the id header is the event id');
    assert.ok(verifySignature(secret, r.signature, r.body), `signature ${r.signature} verifies`);
    assert.ok(!verifySignature(`${secret}x`, r.signature, r.body), 'and only with the right secret');
  }
}

test('admin routes: create shows the secret once; list, delete, errors', async () => {
  const outbox = await outboxOf(gw);
  const created = await outbox.createEndpoint({ url: 'https://hooks.example.com/a', events: ['key.created', 'usage.alert'] });
  assert.match(created.id, /^wh_[0-9a-f]{16}$/);
  assert.match(created.secret, /^whsec_[0-9a-f]{64}$/);
  assert.deepEqual(created.events, ['key.created', 'usage.alert']);
  const all = await outbox.createEndpoint({ url: 'https://hooks.example.com/b' });
  assert.deepEqual(all.events, ['*']);

  const list = await outbox.call('GET', '/admin/v1/webhooks');
  assert.equal(list.status, 200);
  const mine = list.body.data.filter((e) => [created.id, all.id].includes(e.id));
  assert.equal(mine.length, 2);
  assert.ok(mine.every((e) => !('secret' in e)), 'listings never show secrets');

  for (const [body, code] of [
    [{ url: 'http://hooks.example.com/' }, 'invalid_webhook_url'],
    [{ url: 'https://hooks.example.com/', events: ['key.exploded'] }, 'invalid_event_type'],
    [{ url: 'https://hooks.example.com/', events: [] }, 'invalid_event_type'],
    [{ uri: 'https://hooks.example.com/' }, 'invalid_body'],
  ]) {
    const res = await outbox.call('POST', '/admin/v1/webhooks', body);
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, code);
  }

  for (const id of [created.id, all.id]) {
    assert.deepEqual((await outbox.call('DELETE', `/admin/v1/webhooks/${id}`)).body, { id, deleted: true });
  }
  assert.equal((await outbox.call('DELETE', `/admin/v1/webhooks/${created.id}`)).status, 404);
  assert.equal((await outbox.call('GET', `/admin/v1/webhooks/${created.id}/deliveries`)).status, 404);
  assert.equal((await outbox.call('PUT', '/admin/v1/webhooks')).status, 405);
});

test('each event is delivered exactly once, signed, through failures; retries carry the same id', async () => {
  const receiver = await startReceiver({ failFirst: 2 });
  const outbox = await outboxOf(gw);
  try {
    const endpoint = await outbox.createEndpoint({ url: receiver.url });
    const events = [event('key.created', { key_id: 'key_a' }), event('key.rotated', { key_id: 'key_a' }), event('key.deleted', { key_id: 'key_b' })];
    assert.deepEqual((await outbox.enqueue(events)).body, { accepted: 3, rejected: [] });
    // The same event handed over again (a lost acknowledgement) is stored once.
    assert.equal((await outbox.enqueue([events[0]])).status, 200);

    await waitFor(() => receiver.delivered().length >= 3, { what: 'three deliveries' });
    await new Promise((resolve) => setTimeout(resolve, 500)); // would-be duplicates have time to arrive
    const delivered = receiver.delivered().map((r) => r.id).sort();
    assert.deepEqual(delivered, events.map((e) => e.id).sort(), 'each event delivered once');
    for (const e of events) {
      const attempts = receiver.requests.filter((r) => r.id === e.id);
      assert.deepEqual(attempts.map((r) => r.status), [500, 500, 200]);
      assert.equal(new Set(attempts.map((r) => r.body)).size, 1, 'every attempt sends the same body');
      assert.deepEqual(JSON.parse(attempts[0].body), e);
    }
    assertSigned(receiver, endpoint.secret);

    const listed = await outbox.deliveries(endpoint.id);
    assert.equal(listed.length, 3);
    for (const d of listed) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts, 3);
      assert.equal(d.last_status, 200);
      assert.equal(d.next_attempt_at, null);
    }
    await outbox.call('DELETE', `/admin/v1/webhooks/${endpoint.id}`);
  } finally {
    await receiver.close();
  }
});

test('nothing is lost while the receiver is down', async () => {
  const port = await freePort();
  const outbox = await outboxOf(gw);
  const endpoint = await outbox.createEndpoint({ url: `http://127.0.0.1:${port}/hooks`, events: ['key.disabled'] });
  const events = [event('key.disabled', { key_id: 'key_c' }), event('key.disabled', { key_id: 'key_d' })];
  await outbox.enqueue(events);
  await outbox.enqueue([event('key.created', { key_id: 'key_e' })]); // not subscribed

  const failing = await waitFor(async () => {
    const listed = await outbox.deliveries(endpoint.id);
    return listed.length === 2 && listed.every((d) => d.status === 'pending' && d.attempts >= 2) && listed;
  }, { what: 'failed attempts' });
  assert.ok(failing.every((d) => d.last_error && d.last_status === null && d.next_attempt_at > 0), JSON.stringify(failing));

  const receiver = await startReceiver({ port });
  try {
    await waitFor(() => receiver.delivered().length >= 2, { what: 'deliveries after the receiver came up' });
    assert.deepEqual(receiver.delivered().map((r) => r.id).sort(), events.map((e) => e.id).sort());
    assertSigned(receiver, endpoint.secret);
    await waitFor(async () => (await outbox.deliveries(endpoint.id)).every((d) => d.status === 'delivered'), { what: 'delivered status' });
  } finally {
    await receiver.close();
    await outbox.call('DELETE', `/admin/v1/webhooks/${endpoint.id}`);
  }
});

test('a real spend threshold raises usage.alert, then usage.limit_reached, from the key ledger', async () => {
  const receiver = await startReceiver({ failFirst: 1 });
  const outbox = await outboxOf(gw);
  try {
    const endpoint = await outbox.createEndpoint({ url: receiver.url, events: ['usage.alert', 'usage.limit_reached'] });
    const record = keyRecord({
      limits: { spend: [{ period: 'daily', limit_micros: 1000, warn_at_percent: [50] }] },
    });
    const key = await gw.seedKey(record);
    const call = () =>
      gw.fetch('/openai/v1/chat/completions', json({ model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` }));

    const spend = async (times) => {
      for (let i = 0; i < times; i++) {
        const res = await call();
        const text = await res.text();
        assert.equal(res.status, 200, text);
      }
    };
    await spend(3);
    // 3 × 200 = 600 of 1000 micro-dollars: the 50 % threshold, and only it.
    const alert = await waitFor(() => receiver.delivered().find((r) => JSON.parse(r.body).type === 'usage.alert'), { what: 'usage.alert' });
    const body = JSON.parse(alert.body);
    const { period_start_ms: periodStart, ...data } = body.data;
    assert.deepEqual(data, { key_id: record.id, period: 'daily', threshold_percent: 50, limit_micros: 1000, spent_micros: 600 });
    assert.equal(periodStart % 86_400_000, 0, 'the UTC day');
    assert.match(body.id, /^evt_[0-9a-f]{32}$/);

    await spend(2);
    const reached = await waitFor(() => receiver.delivered().find((r) => JSON.parse(r.body).type === 'usage.limit_reached'), { what: 'usage.limit_reached' });
    assert.equal(JSON.parse(reached.body).data.spent_micros, 1000);
    const refused = await call();
    assert.equal(refused.status, 429, 'the cap holds');
    await refused.text();

    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(receiver.delivered().length, 2, 'each threshold once');
    assert.equal(receiver.requests.length, 4, 'one failed attempt each, then delivered');
    assertSigned(receiver, endpoint.secret);
    await outbox.call('DELETE', `/admin/v1/webhooks/${endpoint.id}`);
  } finally {
    await receiver.close();
  }
});

test("a model pattern's and an end user's spend thresholds raise usage.alert naming the scope", async () => {
  const receiver = await startReceiver();
  const outbox = await outboxOf(gw);
  try {
    const endpoint = await outbox.createEndpoint({ url: receiver.url, events: ['usage.alert'] });
    const daily = (limit, percent) => ({ spend: [{ period: 'daily', limit_micros: limit, warn_at_percent: [percent] }] });
    const record = keyRecord({
      limits: { rpm: 100 },
      model_limits: [{ pattern: 'gpt-4o-mini*', limits: daily(1000, 50) }],
      end_user_limits: daily(2000, 25),
    });
    const key = await gw.seedKey(record);
    for (let i = 0; i < 3; i++) {
      const res = await gw.fetch('/openai/v1/chat/completions', json(
        { model: 'gpt-4o-mini', max_tokens: 20, messages: [{ role: 'user', content: 'hi' }] },
        { authorization: `Bearer ${key}`, 'x-teamkeys-end-user': 'alice' }));
      assert.equal(res.status, 200, await res.text());
    }
    // 3 × 200 = 600: 50 % of the pattern's 1,000, 25 % of alice's 2,000; the key has no cap.
    const ofKey = () => receiver.delivered().map((r) => JSON.parse(r.body)).filter((e) => e.data.key_id === record.id);
    const events = await waitFor(() => ofKey().length >= 2 && ofKey(), { what: "the pattern's and alice's usage.alert" });
    const scoped = events.map(({ data: { period_start_ms: _, ...data } }) => data)
      .sort((a, b) => a.level.localeCompare(b.level));
    assert.deepEqual(scoped, [
      { key_id: record.id, level: 'end_user', end_user: 'alice', period: 'daily', threshold_percent: 25, limit_micros: 2000, spent_micros: 600 },
      { key_id: record.id, level: 'model', pattern: 'gpt-4o-mini*', period: 'daily', threshold_percent: 50, limit_micros: 1000, spent_micros: 600 },
    ]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(ofKey().length, 2, 'each threshold once');
    await outbox.call('DELETE', `/admin/v1/webhooks/${endpoint.id}`);
  } finally {
    await receiver.close();
  }
});

test('a delivery that keeps failing expires after WEBHOOK_EXPIRY_MS', async () => {
  const short = await startGateway({ bindings: { ...FAST, WEBHOOK_EXPIRY_MS: '400' } });
  const receiver = await startReceiver({ failFirst: Infinity });
  try {
    const outbox = await outboxOf(short);
    const endpoint = await outbox.createEndpoint({ url: receiver.url });
    const e = event('key.updated', { key_id: 'key_f' });
    await outbox.enqueue([e]);
    const [expired] = await waitFor(async () => {
      const listed = await outbox.deliveries(endpoint.id);
      return listed[0]?.status === 'expired' && listed;
    }, { what: 'expiry' });
    assert.ok(expired.attempts >= 3, `attempts ${expired.attempts}`);
    assert.equal(expired.last_status, 500);
    assert.equal(expired.next_attempt_at, null);
    assert.equal(receiver.requests.length, expired.attempts);
    assert.ok(receiver.requests.every((r) => r.id === e.id));
  } finally {
    await receiver.close();
    await short.close();
  }
});
