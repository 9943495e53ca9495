// node --test tests/mock-upstream/selftest.mjs
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startMock, MODELS } from './server.mjs';

let mock, base;
before(async () => { mock = await startMock({ port: 0 }); base = `http://127.0.0.1:${mock.port}`; });
after(() => mock.close());
beforeEach(() => fetch(`${base}/__mock/requests`, { method: 'DELETE' }));

const post = (path, body, headers = {}) => fetch(base + path, {
  method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
});
const inTok = (body) => Math.ceil(Buffer.byteLength(JSON.stringify(body)) / 4);

/** Reads an SSE body; returns {events:[{event,data}], chunks, error}. Tolerates a cut socket. */
async function readSse(res) {
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^text\/event-stream/);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = '', chunks = 0, error = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks++;
      text += dec.decode(value, { stream: true });
    }
  } catch (e) { error = e; }
  const events = text.split('\n\n').filter(Boolean).map((frame) => {
    const ev = {};
    for (const line of frame.split('\n')) {
      const [k, v] = [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)];
      ev[k] = k === 'data' && v !== '[DONE]' ? JSON.parse(v) : v;
    }
    return ev;
  });
  return { events, chunks, error };
}

test('openai chat JSON: shape and token formulas', async () => {
  const body = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi' }], max_tokens: 7 };
  const j = await (await post('/openai/v1/chat/completions', body)).json();
  assert.equal(j.object, 'chat.completion');
  assert.equal(j.model, 'gpt-4o');
  assert.equal(j.choices[0].message.content, 'tok tok tok tok tok tok tok');
  assert.equal(j.choices[0].finish_reason, 'stop');
  assert.deepEqual(j.usage, { prompt_tokens: inTok(body), completion_tokens: 7, total_tokens: inTok(body) + 7 });

  const big = await (await post('/openai/v1/chat/completions', { model: 'x', max_tokens: 500 })).json();
  assert.equal(big.usage.completion_tokens, 20);
  const forced = await (await post('/openai/v1/chat/completions', { model: 'x' }, { 'x-mock-output-tokens': '33' })).json();
  assert.equal(forced.usage.completion_tokens, 33);
  assert.equal(forced.choices[0].message.content.split(' ').length, 33);
});

test('openai chat SSE: include_usage controls the usage chunk', async () => {
  const body = { model: 'gpt-4o', stream: true, stream_options: { include_usage: true } };
  const s = await readSse(await post('/openai/v1/chat/completions', body));
  assert.ok(s.chunks >= 3, `expected several network chunks, got ${s.chunks}`);
  assert.equal(s.events.at(-1).data, '[DONE]');
  const usageChunk = s.events.at(-2).data;
  assert.deepEqual(usageChunk.choices, []);
  assert.deepEqual(usageChunk.usage, { prompt_tokens: inTok(body), completion_tokens: 20, total_tokens: inTok(body) + 20 });
  const content = s.events.slice(0, -2).map((e) => e.data.choices[0].delta.content ?? '').join('');
  assert.equal(content, Array(20).fill('tok').join(' '));
  assert.ok(s.events.slice(0, -1).every((e) => e.data.object === 'chat.completion.chunk'));

  const without = await readSse(await post('/openai/v1/chat/completions', { model: 'gpt-4o', stream: true }));
  assert.ok(without.events.every((e) => e.data === '[DONE]' || e.data.usage === undefined));
  const noUsage = await readSse(await post('/openai/v1/chat/completions', body, { 'x-mock-no-usage': '1' }));
  assert.ok(noUsage.events.every((e) => e.data === '[DONE]' || e.data.usage === undefined));
});

test('openai responses JSON and SSE', async () => {
  const body = { model: 'o3', input: 'hello', max_output_tokens: 4 };
  const j = await (await post('/openai/v1/responses', body)).json();
  assert.equal(j.object, 'response');
  assert.equal(j.output[0].content[0].text, 'tok tok tok tok');
  assert.deepEqual(j.usage, {
    input_tokens: inTok(body), input_tokens_details: { cached_tokens: 0 },
    output_tokens: 4, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: inTok(body) + 4,
  });

  const s = await readSse(await post('/openai/v1/responses', { ...body, stream: true }));
  assert.equal(s.events[0].event, 'response.created');
  const last = s.events.at(-1);
  assert.equal(last.event, 'response.completed');
  assert.equal(last.data.type, 'response.completed');
  assert.equal(last.data.response.usage.output_tokens, 4);
  assert.equal(s.events.filter((e) => e.event === 'response.output_text.delta').map((e) => e.data.delta).join(''), 'tok tok tok tok');
});

test('openai embeddings, models, generic endpoints', async () => {
  const body = { model: 'text-embedding-3-small', input: ['a', 'b'] };
  const e = await (await post('/openai/v1/embeddings', body)).json();
  assert.equal(e.object, 'list');
  assert.deepEqual(e.data.map((d) => [d.object, d.index, d.embedding]), [['embedding', 0, [0.1, 0.2, 0.3]], ['embedding', 1, [0.1, 0.2, 0.3]]]);
  assert.deepEqual(e.usage, { prompt_tokens: inTok(body), total_tokens: inTok(body) });

  const m = await (await fetch(`${base}/openai/v1/models`)).json();
  assert.equal(m.object, 'list');
  assert.deepEqual(m.data.map((d) => d.id), MODELS);
  assert.ok(m.data.every((d) => d.object === 'model' && d.created && d.owned_by));

  const g = await (await post('/openai/v1/images/generations', { model: 'gpt-image-1', prompt: 'x' })).json();
  assert.equal(g.ok, true);
  assert.equal(g.path, '/openai/v1/images/generations');
  assert.ok(g.usage);
  const g2 = await (await post('/openai/v1/moderations', { input: 'x' })).json();
  assert.equal(g2.usage, undefined);
});

test('anthropic messages JSON and SSE, count_tokens, models', async () => {
  const body = { model: 'claude-sonnet-4', max_tokens: 9, messages: [{ role: 'user', content: 'hi' }] };
  const j = await (await post('/anthropic/v1/messages', body)).json();
  assert.equal(j.type, 'message');
  assert.equal(j.role, 'assistant');
  assert.equal(j.stop_reason, 'end_turn');
  assert.equal(j.content[0].type, 'text');
  assert.equal(j.content[0].text.split(' ').length, 9);
  const noCache = {
    cache_creation_input_tokens: 0, cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
  };
  assert.deepEqual(j.usage, { input_tokens: inTok(body), ...noCache, output_tokens: 9 });

  const sbody = { ...body, stream: true };
  const s = await readSse(await post('/anthropic/v1/messages', sbody));
  const names = s.events.map((e) => e.event);
  assert.deepEqual([names[0], names[1], names.at(-3), names.at(-2), names.at(-1)],
    ['message_start', 'content_block_start', 'content_block_stop', 'message_delta', 'message_stop']);
  assert.ok(names.filter((n) => n === 'content_block_delta').length >= 2);
  assert.ok(s.events.every((e) => e.data.type === e.event));
  assert.deepEqual(s.events[0].data.message.usage, { input_tokens: inTok(sbody), ...noCache, output_tokens: 1 });
  assert.deepEqual(s.events.at(-2).data.usage, { output_tokens: 9 });

  const ct = await (await post('/anthropic/v1/messages/count_tokens', body)).json();
  assert.deepEqual(ct, { input_tokens: inTok(body) });

  const m = await (await fetch(`${base}/anthropic/v1/models`)).json();
  assert.deepEqual(m.data.map((d) => d.id), MODELS);
  assert.equal(m.has_more, false);
  assert.equal(m.first_id, MODELS[0]);
  assert.equal(m.last_id, MODELS.at(-1));
  assert.ok(m.data.every((d) => d.type === 'model' && d.display_name && d.created_at));
});

test('gemini generateContent, streamGenerateContent SSE, models', async () => {
  const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }], generationConfig: { maxOutputTokens: 6 } };
  const j = await (await post('/gemini/v1beta/models/gemini-2.5-pro:generateContent', body)).json();
  assert.equal(j.candidates[0].content.role, 'model');
  assert.equal(j.candidates[0].content.parts[0].text, 'tok tok tok tok tok tok');
  assert.equal(j.candidates[0].finishReason, 'STOP');
  assert.equal(j.modelVersion, 'gemini-2.5-pro');
  assert.deepEqual(j.usageMetadata, { promptTokenCount: inTok(body), candidatesTokenCount: 6, totalTokenCount: inTok(body) + 6 });

  const s = await readSse(await post('/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', body));
  assert.ok(s.events.length >= 2);
  const counts = s.events.map((e) => e.data.usageMetadata.candidatesTokenCount);
  assert.deepEqual(counts, [...counts].sort((a, b) => a - b));
  assert.equal(counts.at(-1), 6);
  assert.equal(s.events.at(-1).data.candidates[0].finishReason, 'STOP');
  assert.equal(s.events.map((e) => e.data.candidates[0].content.parts[0].text).join(''), 'tok tok tok tok tok tok');

  const m = await (await fetch(`${base}/gemini/v1beta/models`)).json();
  assert.deepEqual(m.models.map((x) => x.name), MODELS.map((id) => `models/${id}`));
});

test('unknown path is a JSON 404', async () => {
  const r = await fetch(`${base}/nope`);
  assert.equal(r.status, 404);
  assert.ok((await r.json()).error);
});

test('x-mock-status answers the error body without usage', async () => {
  const r = await post('/openai/v1/chat/completions', { model: 'x' }, { 'x-mock-status': '429' });
  assert.equal(r.status, 429);
  assert.deepEqual(await r.json(), { error: { message: 'mock failure', type: 'mock' } });
});

test('x-mock-cut-after destroys the stream after N events', async () => {
  const s = await readSse(await post('/anthropic/v1/messages', { model: 'c', stream: true }, { 'x-mock-cut-after': '3' }));
  assert.ok(s.error, 'reader should error on a cut stream');
  assert.equal(s.events.length, 3);
  assert.ok(!s.events.some((e) => e.event === 'message_delta'));
});

test('x-mock-latency-ms and x-mock-chunk-delay-ms', async () => {
  let t = Date.now();
  await post('/openai/v1/embeddings', { input: 'x' }, { 'x-mock-latency-ms': '120' });
  assert.ok(Date.now() - t >= 110);
  t = Date.now();
  const s = await readSse(await post('/openai/v1/chat/completions', { stream: true, max_tokens: 4 }, { 'x-mock-chunk-delay-ms': '40' }));
  assert.ok(Date.now() - t >= 40 * (s.events.length - 1) - 10);
});

test('x-mock-fail-times fails the first N requests per key', async () => {
  const statuses = [];
  for (let i = 0; i < 4; i++) {
    const r = await post('/openai/v1/chat/completions', { model: 'x' }, { 'x-mock-fail-times': '2', 'x-mock-fail-key': 'ft-a' });
    statuses.push(r.status);
    await r.arrayBuffer();
  }
  assert.deepEqual(statuses, [503, 503, 200, 200]);
  const other = await post('/openai/v1/chat/completions', { model: 'x' },
    { 'x-mock-fail-times': '1', 'x-mock-fail-key': 'ft-b', 'x-mock-status': '502' });
  assert.equal(other.status, 502);
});

test('requests are recorded with credential, headers, body and host; clear works', async () => {
  const body = { model: 'gpt-4o' };
  await (await post('/openai/v1/chat/completions?x=1', body, { authorization: 'Bearer sk-up', 'X-Custom': 'v' })).arrayBuffer();
  await (await post('/anthropic/v1/messages', body, { 'x-api-key': 'ak-up' })).arrayBuffer();
  await (await post('/gemini/v1beta/models/g:generateContent', body, { 'x-goog-api-key': 'gk-up' })).arrayBuffer();
  const recs = await (await fetch(`${base}/__mock/requests`)).json();
  assert.equal(recs.length, 3);
  assert.deepEqual(recs.map((r) => r.credential), ['Bearer sk-up', 'ak-up', 'gk-up']);
  assert.equal(recs[0].method, 'POST');
  assert.equal(recs[0].path, '/openai/v1/chat/completions?x=1');
  assert.equal(recs[0].headers['x-custom'], 'v');
  assert.equal(recs[0].body, JSON.stringify(body));
  assert.equal(recs[0].host, `127.0.0.1:${mock.port}`);
  assert.equal(mock.requests.length, 3);

  await fetch(`${base}/__mock/requests`, { method: 'DELETE' });
  assert.deepEqual(await (await fetch(`${base}/__mock/requests`)).json(), []);
  assert.deepEqual(await (await fetch(`${base}/__mock/health`)).json(), { ok: true });
});

test('two instances are independent', async () => {
  const other = await startMock({ port: 0 });
  try {
    assert.notEqual(other.port, mock.port);
    await (await post('/openai/v1/models', {})).arrayBuffer();
    assert.equal(other.requests.length, 0);
  } finally { await other.close(); }
});

test('CLI prints exactly {"listening":port} on stdout', async () => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./server.mjs', import.meta.url)), '--port', '0']);
  try {
    const line = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out); });
      child.once('exit', () => reject(new Error(`exited early: ${out}`)));
    });
    assert.match(line, /^\{"listening":\d+\}\n$/);
    const { listening } = JSON.parse(line);
    assert.deepEqual(await (await fetch(`http://127.0.0.1:${listening}/__mock/health`)).json(), { ok: true });
  } finally { child.kill(); }
});

test('responses: tools and text echoed before usage; reasoning tokens; background queued', async () => {
  const schema = { type: 'object', properties: { usage: { type: 'integer' } } };
  const body = {
    model: 'o3', input: 'hi', max_output_tokens: 100,
    tools: [{ type: 'function', name: 'f', parameters: schema }],
    text: { format: { type: 'json_schema', name: 's', schema } },
  };
  const res = await post('/openai/v1/responses', body, { 'x-mock-reasoning-tokens': '50' });
  const raw = await res.text();
  assert.ok(raw.indexOf('"tools"') < raw.lastIndexOf('"usage"'));
  assert.ok(raw.indexOf('"text"') < raw.lastIndexOf('"usage"'));
  const j = JSON.parse(raw);
  assert.deepEqual(j.tools, body.tools);
  assert.deepEqual(j.text, body.text);
  assert.equal(j.usage.output_tokens, 70);
  assert.equal(j.usage.output_tokens_details.reasoning_tokens, 50);
  const capped = await (await post('/openai/v1/responses', { ...body, max_output_tokens: 30 },
    { 'x-mock-reasoning-tokens': '50' })).json();
  assert.equal(capped.usage.output_tokens, 30, 'reasoning stays within the output cap');

  const queued = await (await post('/openai/v1/responses', { model: 'o3', input: 'x', background: true })).json();
  assert.equal(queued.status, 'queued');
  assert.equal(queued.usage, undefined);
  const recorded = await (await fetch(`${base}/__mock/requests`)).json();
  assert.equal(recorded.at(-1).billed.output, 20, 'a background job is billed although unanswered');
});

test('anthropic cache writes; gemini toolUsePromptTokenCount; streams without their terminal event', async () => {
  const body = { model: 'claude-sonnet-4', max_tokens: 10, messages: [{ role: 'user', content: 'x'.repeat(400) }] };
  const j = await (await post('/anthropic/v1/messages', body,
    { 'x-mock-cache-write-tokens': '60', 'x-mock-cache-ttl': '1h' })).json();
  assert.equal(j.usage.cache_creation_input_tokens, 60);
  assert.equal(j.usage.cache_creation.ephemeral_1h_input_tokens, 60);
  assert.equal(j.usage.input_tokens, inTok(body) - 60);

  const g = { contents: [{ parts: [{ text: 'hi' }] }], tools: [{ functionDeclarations: [] }] };
  const gj = await (await post('/gemini/v1beta/models/gemini-2.5-flash:generateContent', g,
    { 'x-mock-tool-use-prompt-tokens': '7' })).json();
  assert.equal(gj.usageMetadata.toolUsePromptTokenCount, 7);

  const s = await readSse(await post('/anthropic/v1/messages', { ...body, stream: true },
    { 'x-mock-no-terminal': '1', 'x-mock-chunk-delay-ms': '0' }));
  assert.equal(s.error, null);
  assert.equal(s.events.at(-1).event, 'message_delta');

  const recorded = await (await fetch(`${base}/__mock/requests`)).json();
  assert.deepEqual(recorded[0].billed, {
    model: 'claude-sonnet-4', input: inTok(body) - 60, output: 10, cache_write_5m: 0, cache_write_1h: 60,
  });
  assert.equal(recorded[1].billed.input, inTok(g) + 7);
});

test('priceMicros prices billed usage like the gateway table, rounded up', async () => {
  const { priceMicros } = await import('./server.mjs');
  const table = [{ model: 'claude-*', input: 3_000_000, output: 15_000_000 }];
  const billed = { model: 'claude-sonnet-4', input: 1000, output: 10, cache_write_5m: 100, cache_write_1h: 100 };
  assert.equal(priceMicros(billed, table), 3000 + 150 + 375 + 600);
  assert.equal(priceMicros({ ...billed, input: 1, output: 0, cache_write_5m: 0, cache_write_1h: 0 }, table), 3);
  assert.equal(priceMicros({ ...billed, model: 'gpt-4o' }, table), Infinity);
});
