// Issue 13, edge leases: a hot key's calls are admitted from a slice its object leased the
// isolate, so the object sees a few lease messages instead of a call each; disabling a leased key
// takes effect within the lease interval (1 s); every leased call reaches the key's usage once its
// isolate reported it (with its next message or a flush within a second); a key whose rules say
// `admission: exact` is asked per call and revoked at once; a hot key with a hard spend cap is
// leased too, and under concurrent load ends at or below its cap with what the upstream billed
// equal to the spend its ledger holds.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, json, pollUntil } from './harness.mjs';
import { priceMicros } from '../mock-upstream/server.mjs';

/** The lease interval (src/budget/sizing.rs EDGE_LEASE_MS): the revocation bound of leased keys. */
const EDGE_LEASE_MS = 1_000;
/** Calls within a second that make a key hot in an isolate (src/gateway/edge_leases.rs). */
const HOT_CALLS = 10;

// 10 micro-dollars per output token, input free: a call with max_tokens 20 reserves exactly 200.
const PRICING = [{ model: 'gpt-4o-mini', input: 0, output: 10_000_000 }];

let gw;
before(async () => {
  gw = await startGateway({ bindings: { PRICING: JSON.stringify(PRICING) } });
});
after(() => gw?.close());

const bearer = (k) => ({ authorization: `Bearer ${k}` });

/** Sends one command to a key's ledger object, as the control plane does; answers its reply. */
async function ledger(keyId, command) {
  const ns = await gw.mf.getDurableObjectNamespace('LEDGER');
  const res = await ns.get(ns.idFromName(keyId)).fetch('https://ledger/', { method: 'POST', body: JSON.stringify(command) });
  assert.equal(res.status, 200);
  return res.json();
}

/** One chat call: its status, error code and when it was sent (ms). */
async function call(k) {
  const sentMs = Date.now();
  const res = await gw.fetch('/openai/v1/chat/completions', json({ model: 'gpt-4o', messages: [], max_tokens: 5 }, bearer(k)));
  const body = await res.json();
  return { status: res.status, code: body.error?.code, sentMs };
}

const requestsCounted = async (keyId) => (await ledger(keyId, { op: 'report', limits: {} })).usage.today.requests;

test('a hot key is leased, every leased call is counted, and a disable takes effect within the lease interval', async () => {
  const record = keyRecord({ limits: { rpm: 100_000 } });
  const k = await gw.seedKey(record);
  const calls = 5 * HOT_CALLS;
  for (let i = 0; i < calls; i++) assert.equal((await call(k)).status, 200, `call ${i}`);
  // The isolate reports its leased calls within a second of the first unreported end.
  const counted = await pollUntil(() => requestsCounted(record.id), (n) => n === calls, { timeoutMs: 3000 });
  assert.equal(counted, calls, 'every call counted once its isolate reported it');

  // Keep the key hot, then disable it at its object: calls sent a lease interval after the
  // disable are refused, and the object says why.
  for (let i = 0; i < 2 * HOT_CALLS; i++) assert.equal((await call(k)).status, 200);
  const disabledMs = Date.now();
  await ledger(record.id, { op: 'control', control: { action: 'disable' } });
  let last;
  for (;;) {
    last = await call(k);
    if (last.status !== 200) break;
    assert.ok(last.sentMs < disabledMs + EDGE_LEASE_MS, `admitted ${last.sentMs - disabledMs} ms after the disable`);
  }
  assert.deepEqual([last.status, last.code], [401, 'key_disabled']);
});

test('a key with admission "exact" is asked per call and refused at once when disabled', async () => {
  const record = keyRecord({ limits: { rpm: 100_000 }, admission: 'exact' });
  const k = await gw.seedKey(record);
  for (let i = 0; i < 3 * HOT_CALLS; i++) assert.equal((await call(k)).status, 200);
  // Counted at once: each call was admitted by the object itself.
  assert.equal(await requestsCounted(record.id), 3 * HOT_CALLS);
  await ledger(record.id, { op: 'control', control: { action: 'disable' } });
  assert.deepEqual((({ status, code }) => ({ status, code }))(await call(k)), { status: 401, code: 'key_disabled' });
});

test('a hot key with a hard daily cap is leased: under concurrent calls it ends at or below its cap, billed as its ledger counts', async () => {
  // Each call reserves 200 micro-dollars (20 output tokens at most) and costs 50 (5 written).
  const CAP = 20_000;
  const record = keyRecord({ limits: { spend: [{ period: 'daily', limit_micros: CAP, mode: 'hard', warn_at_percent: [50] }] } });
  const k = await gw.seedKey(record);
  gw.mock.requests.length = 0;
  const capped = async () => {
    const res = await gw.fetch('/openai/v1/chat/completions', json(
      { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], max_tokens: 20 },
      { ...bearer(k), 'x-mock-output-tokens': '5' }));
    const body = await res.json();
    return { status: res.status, code: body.error?.code };
  };
  const outcomes = {};
  // Waves of 40 concurrent calls until the cap refuses (at most 600 calls: 400 fit at their cost).
  for (let wave = 0; wave < 15 && !outcomes['429 spend_limit_exceeded']; wave++) {
    for (const r of await Promise.all(Array.from({ length: 40 }, capped))) {
      const what = r.status === 200 ? 'admitted' : `${r.status} ${r.code}`;
      outcomes[what] = (outcomes[what] ?? 0) + 1;
    }
  }
  console.log(`outcomes: ${JSON.stringify(outcomes)}`);
  assert.deepEqual(Object.keys(outcomes).sort(), ['429 spend_limit_exceeded', 'admitted'], JSON.stringify(outcomes));
  const billed = gw.mock.requests.filter((r) => r.billed).reduce((sum, r) => sum + priceMicros(r.billed, PRICING), 0);
  assert.ok(billed <= CAP, `the upstream billed ${billed} > the cap ${CAP}`);
  // Leased calls reach the ledger with their isolate's next message or flush (within a second).
  const spendCounted = async () => {
    const report = await ledger(record.id, { op: 'report', limits: record.limits });
    return [report.usage.today.cost_micros, report.limits.find((l) => l.scope === 'spend_daily').used];
  };
  const [usage, spent] = await pollUntil(spendCounted, ([usage, spent]) => usage === billed && spent === billed,
    { timeoutMs: 5000 });
  console.log(`billed ${billed}, the key's usage ${usage}, its cap's spend ${spent}, cap ${CAP}`);
  assert.deepEqual([usage, spent], [billed, billed], "what the upstream billed is what the key's ledger holds");
  assert.equal(outcomes.admitted, billed / 50, 'every admitted call billed once');
  assert.ok(billed > CAP / 2, `the cap under-admits by at most the slices still out: ${billed}`);
});
