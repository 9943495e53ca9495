// Issue 10, late settles: an upstream stream that stops sending for UPSTREAM_IDLE_TIMEOUT_MS is
// ended (the client's stream ends early, without its terminal event) and settled as a stream cut
// short: charged its reservation. A stream that keeps sending within the timeout is untouched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, keyRecord, parseSse, pollUntil } from './harness.mjs';

const IDLE_TIMEOUT_MS = 400;
const TPD = 10_000_000;
// What the gateway reserves in tokens for a text-only body (src/gateway/bounds.rs).
const REQUEST_OVERHEAD_TOKENS = 512;
const tokensOf = (raw) => Math.ceil(Buffer.byteLength(raw) / 4);

let gw;
before(async () => {
  gw = await startGateway({ bindings: { UPSTREAM_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS) } });
});
after(() => gw?.close());

const anthropicStream = (content) =>
  JSON.stringify({ model: 'claude-sonnet-4', max_tokens: 100, stream: true, messages: [{ role: 'user', content }] });

async function tokensUsed(key) {
  const res = await gw.fetch('/openai/v1/models', { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return TPD - Number(res.headers.get('x-ratelimit-remaining-tokens'));
}

async function stream(key, raw, chunkDelayMs) {
  const started = Date.now();
  const res = await gw.fetch('/anthropic/v1/messages', {
    method: 'POST', body: raw,
    headers: { 'content-type': 'application/json', 'x-api-key': key, 'x-mock-chunk-delay-ms': String(chunkDelayMs) },
  });
  assert.equal(res.status, 200);
  let text = '';
  try {
    text = await res.text();
  } catch { /* a stream ended by the gateway may end in an error */ }
  return { events: parseSse(text), elapsedMs: Date.now() - started };
}

test('a stream idle past the timeout is ended and charged its reservation', async () => {
  const key = await gw.seedKey(keyRecord({ limits: { tpd: TPD } }));
  const raw = anthropicStream('idle');
  // Seven events 1.5 s apart: the whole stream would take 9 s.
  const { events, elapsedMs } = await stream(key, raw, 1500);
  assert.ok(elapsedMs < 4000, `the stream ran ${elapsedMs} ms`);
  assert.ok(!events.some((e) => e.event === 'message_stop'), 'no terminal event reached the client');
  const reserved = tokensOf(raw) + REQUEST_OVERHEAD_TOKENS + 100;
  const used = await pollUntil(() => tokensUsed(key), (n) => n === reserved);
  assert.equal(used, reserved, 'a stream ended idle is charged its reservation');
});

test('a stream that keeps sending within the timeout is untouched and settled on its usage', async () => {
  const key = await gw.seedKey(keyRecord({ limits: { tpd: TPD } }));
  const raw = anthropicStream('lively');
  // Seven events 150 ms apart: 1 s in all, more than twice the idle timeout.
  const { events, elapsedMs } = await stream(key, raw, 150);
  assert.ok(elapsedMs >= 2 * IDLE_TIMEOUT_MS, `the stream ran ${elapsedMs} ms`);
  assert.equal(events.at(-1).event, 'message_stop');
  const reported = tokensOf(gw.mock.requests.at(-1).body) + 20;
  const used = await pollUntil(() => tokensUsed(key), (n) => n === reported);
  assert.equal(used, reported);
});
