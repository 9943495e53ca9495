// Issue 10, "Done when": 200 concurrent calls from one key under a hard daily spend cap, each
// trying one trick to make the upstream bill more than the key is charged (or none). Afterwards
// the sum of what the mock upstream would bill for the calls it served (its own usage figures,
// each model writing up to the output cap it was sent, × the pricing table the gateway uses) is
// at most the cap, and every refused call names its reason.
//
// Run twice. (1) A key admitted per call (`admission: exact`) against an upstream that bills
// each call's worst case (its whole output cap, `x-mock-fill-output`) while reporting less: the
// 200 calls' reservations overlap, so the sum of their bounds, hence of their worst-case bills,
// is at most the cap. (2) The same calls from a hot key leased at the edge (admitted from the
// isolate's slices, so calls also settle and free room while others are admitted), against an
// upstream that bills what it reports (cut streams, abandoned calls and missing terminal events
// still billed in full): each call is charged at least what the upstream bills, so the upstream
// bills at most what the key's ledger commits, which stays at most the cap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, pollUntil } from './harness.mjs';
import { priceMicros } from '../mock-upstream/server.mjs';

const PRICING = [
  { model: 'gpt-4o', input: 2_500_000, output: 10_000_000, cached_input: 1_250_000 },
  { model: 'o3', input: 2_000_000, output: 8_000_000, cached_input: 500_000 },
  { model: 'claude-sonnet-4', input: 3_000_000, output: 15_000_000, cached_input: 300_000 },
  { model: 'gemini-2.5-flash', input: 300_000, output: 2_500_000, cached_input: 75_000 },
];
const CAP_MICROS = 3_000_000;
const CALLS = 200;

let gw;
before(async () => {
  gw = await startGateway({ bindings: { PRICING: JSON.stringify(PRICING) } });
});
after(() => gw?.close());

const text = (n) => 'word '.repeat(n);
const chat = (over = {}) => ({ model: 'gpt-4o', messages: [{ role: 'user', content: text(40) }], ...over });
const responses = (over = {}) => ({ model: 'o3', input: text(40), ...over });
const claude = (over = {}) =>
  ({ model: 'claude-sonnet-4', max_tokens: 1000, messages: [{ role: 'user', content: text(40) }], ...over });
const gemini = (over = {}) => ({ contents: [{ role: 'user', parts: [{ text: text(40) }] }], ...over });
const PNG = Buffer.alloc(600, 7).toString('base64');
const usageSchema = {
  type: 'object', properties: { usage: { type: 'object', properties: { input_tokens: { type: 'integer' } } } },
};

// [name, path, body, extra headers, how the client reads the answer]
const TRICKS = [
  ['none', '/openai/v1/chat/completions', chat({ max_tokens: 50 })],
  ['no output cap', '/openai/v1/chat/completions', chat()],
  ['huge n', '/openai/v1/chat/completions', chat({ n: 128 })],
  ['cjk input', '/openai/v1/chat/completions', chat({ messages: [{ role: 'user', content: '漢字'.repeat(1500) }] }),
    { 'x-mock-input-per-char': '1' }],
  ['inline image', '/openai/v1/chat/completions', chat({ messages: [{ role: 'user', content: [
    { type: 'text', text: 'what is this' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG}` } }] }] })],
  ['image by url', '/openai/v1/chat/completions', chat({ messages: [{ role: 'user', content: [
    { type: 'image_url', image_url: { url: 'https://example.com/huge.png' } }] }] })],
  ['previous_response_id', '/openai/v1/responses', responses({ previous_response_id: 'resp_someone_elses' })],
  ['store true', '/openai/v1/responses', responses({ store: true })],
  ['background', '/openai/v1/responses', responses({ background: true })],
  ['web_search', '/openai/v1/responses', responses({ tools: [{ type: 'web_search' }] })],
  ['usage in schema', '/openai/v1/responses', responses({
    tools: [{ type: 'function', name: 'report', parameters: usageSchema }],
    text: { format: { type: 'json_schema', name: 'out', schema: usageSchema } },
  })],
  ['reasoning', '/openai/v1/responses', responses({ reasoning: { effort: 'high' } }), { 'x-mock-reasoning-tokens': '90000' }],
  ['gemini fileData', '/gemini/v1beta/models/gemini-2.5-flash:generateContent', gemini({ contents: [{ role: 'user',
    parts: [{ fileData: { mimeType: 'video/mp4', fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } }] }] })],
  ['gemini cachedContent', '/gemini/v1beta/models/gemini-2.5-flash:generateContent',
    gemini({ cachedContent: 'cachedContents/shared' })],
  ['gemini googleSearch', '/gemini/v1beta/models/gemini-2.5-flash:generateContent',
    gemini({ tools: [{ googleSearch: {} }] }), { 'x-mock-tool-use-prompt-tokens': '500000' }],
  ['gemini toolUsePromptTokenCount', '/gemini/v1beta/models/gemini-2.5-flash:generateContent',
    gemini({ tools: [{ functionDeclarations: [{ name: 'f', description: text(30) }] }] }),
    { 'x-mock-tool-use-prompt-tokens': '100' }],
  ['gemini candidateCount', '/gemini/v1beta/models/gemini-2.5-flash:generateContent',
    gemini({ generationConfig: { candidateCount: 8 } })],
  ['alt game', '/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=media', gemini()],
  ['anthropic files beta', '/anthropic/v1/messages', claude(), { 'anthropic-beta': 'files-api-2025-04-14' }],
  ['anthropic 1h cache writes', '/anthropic/v1/messages', claude({ system: [{ type: 'text', text: text(300),
    cache_control: { type: 'ephemeral', ttl: '1h' } }] }),
    { 'anthropic-beta': 'extended-cache-ttl-2025-04-11', 'x-mock-cache-write-tokens': '1000000', 'x-mock-cache-ttl': '1h' }],
  ['stream cut', '/anthropic/v1/messages', claude({ stream: true }), { 'x-mock-cut-after': '3' }],
  ['stream without terminal event', '/anthropic/v1/messages', claude({ stream: true }), { 'x-mock-no-terminal': '1' }],
  ['client leaves', '/openai/v1/chat/completions', chat({ stream: true }), { 'x-mock-chunk-delay-ms': '200' }, 'leave'],
  ['unknown model', '/openai/v1/chat/completions', chat({ model: 'gpt-9-ultra' })],
];

async function send([name, path, body, headers = {}, read = 'whole'], key, worstCase) {
  const controller = new AbortController();
  try {
    const res = await gw.fetch(path, {
      method: 'POST', body: JSON.stringify(body), signal: controller.signal,
      headers: {
        'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-api-key': key,
        'x-goog-api-key': key, ...(worstCase ? { 'x-mock-fill-output': '1' } : {}), 'x-trick': name, ...headers,
      },
    });
    if (res.status !== 200) return { name, status: res.status, error: (await res.json()).error };
    if (read === 'leave') {
      await res.body.getReader().read();
      controller.abort();
    } else {
      await res.text().catch(() => null);
    }
    return { name, status: 200 };
  } catch (error) {
    return { name, status: 'client error', error: String(error) };
  }
}

/** The 200 tricks from a key with `admission` against an upstream billing its `worstCase` or not. */
async function tricks(admission, worstCase) {
  const record = keyRecord({ limits: { spend: [{ period: 'daily', limit_micros: CAP_MICROS }] }, admission });
  const key = await gw.seedKey(record);
  gw.mock.requests.length = 0;
  const calls = Array.from({ length: CALLS }, (_, i) => TRICKS[i % TRICKS.length]);
  const results = await Promise.all(calls.map((trick) => send(trick, key, worstCase)));
  // Streams the gateway ended or the client left are billed by the time their socket closed.
  await new Promise((resolve) => setTimeout(resolve, 500));

  const byOutcome = {};
  for (const r of results) {
    const outcome = r.status === 200 ? 'admitted' : `${r.status} ${r.error?.code}`;
    byOutcome[outcome] = (byOutcome[outcome] ?? 0) + 1;
  }
  const byTrick = {};
  for (const r of results) {
    byTrick[r.name] ??= new Set();
    byTrick[r.name].add(r.status === 200 ? 'admitted' : `${r.status} ${r.error?.code}`);
  }
  const served = gw.mock.requests.filter((r) => r.billed && r.headers['x-trick']);
  const billed = served.reduce((sum, r) => sum + priceMicros(r.billed, PRICING), 0);
  console.log(`outcomes: ${JSON.stringify(byOutcome)}`);
  console.log(`per trick: ${JSON.stringify(Object.fromEntries(Object.entries(byTrick).map(([k, v]) => [k, [...v]])))}`);
  console.log(`upstream served ${served.length} calls, billed ${billed} micro-dollars, cap ${CAP_MICROS}`);

  for (const r of results) {
    if (r.status === 200) continue;
    assert.ok([400, 403, 429].includes(r.status), `${r.name}: ${r.status} ${JSON.stringify(r.error)}`);
    assert.equal(typeof r.error?.code, 'string', `${r.name}: a refusal names its reason`);
    if (r.status === 429) assert.equal(r.error.code, 'spend_limit_exceeded', r.name);
  }
  const admitted = results.filter((r) => r.status === 200).length;
  assert.ok(admitted > 0, 'some calls were admitted');
  assert.ok(results.some((r) => r.status === 429), 'the cap was reached');
  assert.ok(billed <= CAP_MICROS, `the upstream billed ${billed} > cap ${CAP_MICROS}`);
  for (const refusedEverywhere of ['previous_response_id', 'store true', 'background', 'unknown model']) {
    assert.ok(!served.some((r) => r.headers['x-trick'] === refusedEverywhere), `${refusedEverywhere} reached the upstream`);
  }
  return { record, billed };
}

test('200 concurrent tricks under a hard daily cap, admitted per call: the upstream bills at most the cap', async () => {
  await tricks('exact', true);
});

test('200 concurrent tricks under a hard daily cap, leased at the edge: billed at most what the ledger commits, at most the cap', async () => {
  const { record, billed } = await tricks('auto', false);
  // The leased calls' ends reach the key's object with its isolate's next message or flush.
  const committed = async () => {
    const ns = await gw.mf.getDurableObjectNamespace('LEDGER');
    const res = await ns.get(ns.idFromName(record.id))
      .fetch('https://ledger/', { method: 'POST', body: JSON.stringify({ op: 'report', limits: record.limits }) });
    return (await res.json()).usage.today.cost_micros;
  };
  const charged = await pollUntil(committed, (micros) => micros >= billed, { timeoutMs: 5000 });
  console.log(`charged ${charged}, billed ${billed}, cap ${CAP_MICROS}`);
  assert.ok(billed <= charged, `the upstream billed ${billed} > charged ${charged}`);
  assert.ok(charged <= CAP_MICROS, `charged ${charged} > the cap ${CAP_MICROS}`);
});

test('a schema property named `usage`, echoed before the real usage, is not read as usage', async () => {
  const tpd = 10_000_000;
  const key = await gw.seedKey(keyRecord({ limits: { tpd } }));
  const used = async () => {
    const res = await gw.fetch('/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
    await res.arrayBuffer();
    return tpd - Number(res.headers.get('x-ratelimit-remaining-tokens'));
  };
  let expected = 0;
  for (const stream of [false, true]) {
    const body = responses({
      stream, max_output_tokens: 200,
      tools: [{ type: 'function', name: 'report', parameters: usageSchema }],
      text: { format: { type: 'json_schema', name: 'out', schema: usageSchema } },
    });
    const res = await gw.fetch('/openai/v1/responses', {
      method: 'POST', body: JSON.stringify(body),
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-mock-reasoning-tokens': '30' },
    });
    assert.equal(res.status, 200);
    const answer = await res.text();
    assert.ok(answer.indexOf('"usage":{"type":"object"') < answer.lastIndexOf('"usage":{"input_tokens"'));
    const served = gw.mock.requests.at(-1);
    expected += served.billed.input + served.billed.output;
    const seen = await pollUntil(used, (n) => n === expected);
    assert.equal(seen, expected, `stream ${stream}: charged the top-level usage (input + 20 + 30 reasoning)`);
  }
});
