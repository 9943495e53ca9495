// Project and organisation budgets end to end: the built worker in workerd (Miniflare) with its
// Registry, key objects, budget objects and KV, in front of the mock upstream. Budgets are set
// through the admin API, keys created through it (their records carry the budgets above them);
// the key objects lease slices of the project's budget from its object.
//
// 1. 1,000 concurrent calls spread over 20 keys of one project with a project RPM of 300 admit at
//    most 300, and at least 300 minus the under-admission bound; every refusal names the level
//    and scope ({"limit":{"level":"project","scope":"rpm"}}).
// 2. A project daily spend cap shared by 5 keys under 200 concurrent streaming calls: the
//    upstream bills at most the cap, and the project's budget ends with exactly the sum of its
//    keys' spend (once the keys' reports and returned slices have reached it).
// 3. `GET /v1/key` answers the project's headroom that bounds the key, as of its last lease
//    reply, and nothing about the project's other keys.
// 4. A hot key under a project budget is leased at the edge (its calls reach its ledger in the
//    isolate's reports), and the project's requests and spend end equal to the key's.
// 5. The organisation's spend threshold raises a usage.alert webhook naming the level.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, ADMIN_TOKEN, pollUntil } from './harness.mjs';
import { priceMicros } from '../mock-upstream/server.mjs';
import { startReceiver, waitFor } from './webhook-receiver.mjs';

const PRICING = [
  { model: 'gpt-4o', input: 2_500_000, output: 10_000_000, cached_input: 1_250_000 },
  // 10 micro-dollars per output token, input free: a call with max_tokens 20 costs exactly 200.
  { model: 'gpt-4o-mini', input: 0, output: 10_000_000 },
];

let gw;
before(async () => {
  gw = await startGateway({ bindings: { PRICING: JSON.stringify(PRICING) } });
});
after(() => gw?.close());

async function admin(method, path, body) {
  const headers = { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await gw.fetch(`/admin/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** A project with `budget` (its ceiling) and `keys` keys created in it; their plaintexts. */
async function projectWithKeys(name, budget, keys) {
  const project = await admin('POST', '/projects', { name });
  await admin('PATCH', `/projects/${project.id}/budget`, { ceiling: budget });
  const secrets = [];
  for (let i = 0; i < keys; i++) {
    secrets.push((await admin('POST', '/keys', { name: `${name}-${i}`, project: project.id })).key);
  }
  return { id: project.id, secrets };
}

const CHAT = '/openai/v1/chat/completions';
const chatBody = (body) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: 'hello' }], ...body });

/**
 * One call on a connection of its own (closed after the answer: a burst right after another must
 * not reuse keep-alive connections the runtime may be closing); its status and, for a refusal,
 * its error, the body read whole.
 */
async function call(key, body, headers = {}) {
  const sent = { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers };
  const { status, text } = await gw.postOnce(CHAT, sent, [JSON.stringify(chatBody(body))]);
  return status === 200 ? { status, text } : { status, error: JSON.parse(text).error };
}

function tally(results) {
  const counts = {};
  for (const r of results) {
    const what = r.status === 200 ? 'admitted' : `${r.status} ${r.error?.code} ${r.error?.limit?.level ?? ''}`;
    counts[what] = (counts[what] ?? 0) + 1;
  }
  return counts;
}

// The most a refusal can under-admit by: the unused parts of the other keys' live slices at that
// moment (README, "Budgets"); with 20 holders each slice is at most its fair share of what is
// free, and one call once headroom is low.
const RPM = 300;
const UNDER_ADMISSION_BOUND = 20;

test('1,000 concurrent calls over 20 keys under a project RPM of 300', async () => {
  const { secrets } = await projectWithKeys('rpm', { rpm: RPM }, 20);
  const started = Date.now();
  const results = await Promise.all(
    Array.from({ length: 1000 }, (_, i) => call(secrets[i % 20], { max_tokens: 8 })),
  );
  console.log(`outcomes in ${Date.now() - started} ms: ${JSON.stringify(tally(results))}`);
  const admitted = results.filter((r) => r.status === 200).length;
  for (const r of results.filter((r) => r.status !== 200)) {
    assert.equal(r.status, 429, JSON.stringify(r.error));
    assert.equal(r.error.code, 'rate_limit_exceeded');
    assert.equal(r.error.limit.level, 'project');
    assert.equal(r.error.limit.scope, 'rpm');
  }
  assert.ok(admitted <= RPM, `admitted ${admitted} > the project's rpm ${RPM}`);
  assert.ok(admitted >= RPM - UNDER_ADMISSION_BOUND, `admitted ${admitted} < ${RPM} - ${UNDER_ADMISSION_BOUND}`);
});

test("a project daily cap shared by 5 keys under 200 concurrent streams: at most the cap, the project's usage the sum of its keys'", async () => {
  // Each call reserves and (the model writing its whole output cap) costs about 4,000 micro-dollars.
  const CAP = 200_000;
  const project = await projectWithKeys('spend', { spend: [{ period: 'daily', limit_micros: CAP }] }, 5);
  gw.mock.requests.length = 0;
  const results = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      call(project.secrets[i % 5], { max_tokens: 400, stream: true, stream_options: { include_usage: true } },
        { 'x-mock-chunk-delay-ms': '10', 'x-mock-output-tokens': '400' })),
  );
  console.log(`outcomes: ${JSON.stringify(tally(results))}`);
  for (const r of results.filter((r) => r.status !== 200)) {
    assert.equal(r.status, 429, JSON.stringify(r.error));
    assert.deepEqual([r.error.code, r.error.limit.level, r.error.limit.scope], ['spend_limit_exceeded', 'project', 'spend_daily']);
  }
  assert.ok(results.some((r) => r.status === 200) && results.some((r) => r.status === 429), 'some admitted, then the cap');
  const billed = gw.mock.requests.filter((r) => r.billed).reduce((sum, r) => sum + priceMicros(r.billed, PRICING), 0);
  assert.ok(billed <= CAP, `the upstream billed ${billed} > the cap ${CAP}`);

  // The keys' settles reach their objects, then (within a second, or when a lease ends) the budget.
  const keysSpend = async () => (await admin('GET', `/projects/${project.id}/usage`)).usage.today.cost_micros;
  const budgetSpend = async () =>
    (await admin('GET', `/projects/${project.id}/budget`)).usage.find((u) => u.scope === 'spend_daily').used;
  const settled = await pollUntil(
    async () => [await keysSpend(), await budgetSpend()],
    ([keys, budget]) => keys > 0 && keys === budget,
    { timeoutMs: 15_000, intervalMs: 250 },
  );
  console.log(`billed ${billed}, keys ${settled[0]}, project budget ${settled[1]}, cap ${CAP}`);
  assert.equal(settled[1], settled[0], "the project's usage is the sum of its keys'");
  assert.ok(settled[1] <= CAP, `the project's spend ${settled[1]} > the cap ${CAP}`);
});

test("GET /v1/key answers the project's headroom that bounds the key, as of its last lease reply", async () => {
  const { secrets: [mine, other] } = await projectWithKeys('quota', { rpm: 50 }, 2);
  const before = Date.now();
  for (const key of [other, other, mine, mine, mine]) assert.equal((await call(key, { max_tokens: 8 })).status, 200);
  const after = Date.now();
  const res = await gw.fetch('/v1/key', { headers: { 'x-api-key': mine } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.budgets.length, 1, JSON.stringify(body));
  const project = body.budgets[0];
  console.log(`the project as the key sees it: ${JSON.stringify(project)}`);
  assert.equal(project.level, 'project');
  assert.ok(project.as_of_ms >= before && project.as_of_ms <= after, `as of its last lease reply: ${project.as_of_ms}`);
  const { limit, remaining } = project.headroom.requests;
  assert.equal(limit, 50);
  // Every call so far and every key's outstanding slice count as used at the budget.
  const slice = project.slice?.requests ?? 0;
  assert.ok(remaining + slice <= 50 - 5, `remaining ${remaining} + slice ${slice} with 5 calls made`);
  assert.deepEqual(Object.keys(project).sort().filter((m) => !['as_of_ms', 'headroom', 'level', 'slice'].includes(m)), [],
    'nothing about other keys');
  assert.equal(body.key.usage.today.requests, 3, "the key's own usage only");
});

test("a hot key under a project budget is leased at the edge, and the project's usage is its key's", async () => {
  const budget = { rpd: 100_000, spend: [{ period: 'daily', limit_micros: 10_000_000 }] };
  const { id, secrets: [key] } = await projectWithKeys('leased', budget, 1);
  const calls = 60;
  for (let i = 0; i < calls; i++) {
    const r = await call(key, { model: 'gpt-4o-mini', max_tokens: 20 });
    assert.equal(r.status, 200, `call ${i}: ${JSON.stringify(r.error)}`);
  }
  const keyUsage = async () => (await admin('GET', `/projects/${id}/usage`)).usage.today;
  const budgetUsed = async (scope) =>
    (await admin('GET', `/projects/${id}/budget`)).usage.find((u) => u.scope === scope).used;
  // Leased: the calls of the isolate's current slice reach the key's ledger with its next report
  // (a flush within a second), not one by one.
  const atOnce = (await keyUsage()).requests;
  assert.ok(atOnce < calls, `${atOnce} of ${calls} calls counted at once: asked per call, not leased`);
  const settled = await pollUntil(
    async () => {
      const usage = await keyUsage();
      return [usage.requests, usage.cost_micros, await budgetUsed('rpd'), await budgetUsed('spend_daily')];
    },
    ([requests, cost, rpd, spend]) => requests === calls && rpd === calls && cost > 0 && spend === cost,
    { timeoutMs: 15_000, intervalMs: 250 },
  );
  console.log(`leased under a project: ${atOnce} of ${calls} counted at once; then key, project: ${JSON.stringify(settled)}`);
  assert.deepEqual(settled.slice(2), settled.slice(0, 2), "the project's requests and spend are its key's");
});

test("the organisation's spend threshold raises usage.alert naming the level, from its budget object", async () => {
  const receiver = await startReceiver();
  const ns = await gw.mf.getDurableObjectNamespace('OUTBOX');
  const outbox = ns.get(ns.idFromName('org'));
  try {
    const created = await outbox.fetch('https://outbox/admin/v1/webhooks', {
      method: 'POST', body: JSON.stringify({ url: receiver.url, events: ['usage.alert'] }),
    });
    assert.equal(created.status, 201, await created.clone().text());
    const endpoint = await created.json();
    await admin('PUT', '/org/budget', { limits: { spend: [{ period: 'daily', limit_micros: 1_000, warn_at_percent: [50] }] } });
    const { secrets: [key] } = await projectWithKeys('alerts', {}, 1);
    for (let i = 0; i < 4; i++) {
      const r = await call(key, { model: 'gpt-4o-mini', max_tokens: 20 });
      assert.equal(r.status, 200, JSON.stringify(r.error));
    }
    // (The project budgets of the tests before raise their own alerts, naming `project`.)
    const ofOrg = (r) => JSON.parse(r.body).type === 'usage.alert' && JSON.parse(r.body).data.level === 'organisation';
    const alert = await waitFor(() => receiver.delivered().find(ofOrg), { what: "the organisation's usage.alert", timeoutMs: 15_000 });
    const data = JSON.parse(alert.body).data;
    assert.equal(data.key_id, undefined, 'a budget event names no key');
    assert.deepEqual([data.period, data.threshold_percent, data.limit_micros], ['daily', 50, 1_000]);
    assert.ok(data.spent_micros >= 500, JSON.stringify(data));
    await outbox.fetch(`https://outbox/admin/v1/webhooks/${endpoint.id}`, { method: 'DELETE' });
  } finally {
    await receiver.close();
  }
});
