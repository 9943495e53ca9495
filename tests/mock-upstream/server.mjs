#!/usr/bin/env node
/**
 * Deterministic mock upstream for the OpenAI, Anthropic and Gemini API families.
 *
 *   node tests/mock-upstream/server.mjs [--port N]      (or env MOCK_PORT; default 0 = free port)
 *   -> binds 127.0.0.1, prints exactly one stdout line: {"listening":<port>}
 *
 *   import { startMock } from './server.mjs'
 *   const m = await startMock({ port: 0 }); m.port; m.requests; await m.close();
 *
 * Token accounting (identical for every family):
 *   input_tokens  = ceil(byte length of the raw request body / 4)
 *   output_tokens = header x-mock-output-tokens if present, else min(limit, 20) where limit =
 *                   max_tokens ?? max_completion_tokens ?? max_output_tokens
 *                   ?? generationConfig.maxOutputTokens ?? 20
 *   total_tokens  = input_tokens + output_tokens
 *   answer text   = "tok" repeated output_tokens times, joined by single spaces
 *   streams split the words into chunks of ceil(output_tokens / 4) words (~4 chunks);
 *   concatenating the deltas gives the exact answer text.
 *
 * Misbehaviour knobs (request headers):
 *   x-mock-status: CODE          answer CODE with {error:{message:"mock failure",type:"mock"}}
 *   x-mock-latency-ms: N         wait N ms before sending the response headers
 *   x-mock-chunk-delay-ms: N     delay between SSE writes (default 5)
 *   x-mock-cut-after: N          streams: write N events, then destroy the socket
 *   x-mock-no-usage: 1           omit usage / usageMetadata everywhere
 *   x-mock-output-tokens: N      force the output token count
 *   x-mock-fail-times: N         with x-mock-fail-key: K, the first N requests carrying K fail
 *                                with x-mock-status (default 503); later ones succeed
 *   x-mock-no-terminal: 1        streams: end cleanly without their last (terminal) event
 *   x-mock-reasoning-tokens: N   OpenAI: N more output tokens spent reasoning (reported in
 *                                *_tokens_details.reasoning_tokens), within the output cap
 *   x-mock-cache-write-tokens: N Anthropic: N of the input tokens (at most all) written to the
 *                                prompt cache (cache_creation_input_tokens, cache_creation.*)
 *   x-mock-cache-ttl: 1h         Anthropic: those writes kept one hour (default 5m)
 *   x-mock-tool-use-prompt-tokens: N  Gemini, on a request with `tools`: N more input tokens
 *                                billed as toolUsePromptTokenCount
 *   x-mock-fill-output: 1        billing: the model writes up to its output cap (or 100000
 *                                tokens when none was sent) for each of n / candidateCount
 *   x-mock-input-per-char: 1     billing: one input token per character (CJK-like), not bytes/4
 *
 * Like the real APIs: Responses objects echo the request's `tools` and `text` (with its format
 * schema) before `usage`; `background: true` on Responses is answered `status: "queued"` with no
 * usage (the job would run, and bill, later).
 *
 * Billing: every generation request (POST, not token counting) the mock answers with a 2xx records `billed`, what the provider would
 * bill for it whatever the client saw (cut streams, no-usage knobs and background jobs included):
 *   {model, input, output, cache_write_5m, cache_write_1h}   (tokens; `input` is the uncached
 *   input, tool-use prompt tokens included). `priceMicros(billed, table)` prices it with a
 *   gateway pricing table (first matching entry; `*` globs), rounded up per call.
 *
 * Introspection: GET /__mock/health, GET /__mock/requests, DELETE /__mock/requests.
 * Every other request is recorded as
 *   {method, path (incl. query), headers (lowercased), credential, body (string), host}
 * where credential = authorization ?? x-api-key ?? x-goog-api-key ?? ?key= ?? null.
 */
import http from 'node:http';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const MODELS = [
  'gpt-4o', 'gpt-4o-mini', 'o3', 'text-embedding-3-small',
  'claude-sonnet-4', 'claude-haiku-4', 'gemini-2.5-pro', 'gemini-2.5-flash',
];
const CREATED = 1700000000;
const CREATED_ISO = new Date(CREATED * 1000).toISOString();
const ERROR_BODY = { error: { message: 'mock failure', type: 'mock' } };

// ---------- response writers ----------

function sendJson(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** events: [{event?, data}] ; data is an object (JSON-encoded) or a raw string. */
async function sendSse(res, events, { delay, cutAfter }) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  res.flushHeaders();
  for (let i = 0; i < events.length; i++) {
    if (i === cutAfter) return void res.socket?.destroy();
    if (i > 0 && delay > 0) await sleep(delay);
    if (res.destroyed) return;
    const { event, data } = events[i];
    const frame = (event ? `event: ${event}\n` : '') +
      `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    await new Promise((resolve) => res.write(frame, resolve));
  }
  res.end();
}

// ---------- per-request context ----------

const intHeader = (req, name) => {
  const v = req.headers[name];
  return v === undefined || v === '' ? undefined : parseInt(v, 10);
};
const flagHeader = (req, name) => !['', '0', 'false', undefined].includes(req.headers[name]);

function makeContext(req, url, raw) {
  let body = {};
  try { body = raw ? JSON.parse(raw) : {}; } catch { /* non-JSON body: treat as empty */ }
  if (body === null || typeof body !== 'object') body = {};
  const limit = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens ??
    body.generationConfig?.maxOutputTokens ?? 20;
  const inTok = flagHeader(req, 'x-mock-input-per-char') ? [...raw].length : Math.ceil(Buffer.byteLength(raw) / 4);
  const sentCap = body.max_tokens ?? body.max_completion_tokens ?? body.max_output_tokens ??
    body.generationConfig?.maxOutputTokens ?? 100_000;
  const choices = Math.max(1, body.n ?? body.generationConfig?.candidateCount ?? 1);
  const outTok = Math.max(0, intHeader(req, 'x-mock-output-tokens') ?? Math.min(limit, 20));
  const reasoning = Math.max(0, Math.min(intHeader(req, 'x-mock-reasoning-tokens') ?? 0, limit - outTok));
  const cacheWrite = Math.max(0, Math.min(intHeader(req, 'x-mock-cache-write-tokens') ?? 0, inTok));
  const toolUse = body.tools !== undefined ? Math.max(0, intHeader(req, 'x-mock-tool-use-prompt-tokens') ?? 0) : 0;
  const words = Array(outTok).fill('tok');
  const per = Math.max(1, Math.ceil(outTok / 4));
  const chunks = [];
  for (let i = 0; i < words.length; i += per) chunks.push((i ? ' ' : '') + words.slice(i, i + per).join(' '));
  return {
    url, body, inTok, outTok, chunks,
    text: words.join(' '),
    model: body.model ?? 'mock-model',
    usage: !flagHeader(req, 'x-mock-no-usage'),
    stream: body.stream === true,
    reasoning, toolUse,
    cacheWrite: { tokens: cacheWrite, ttl: req.headers['x-mock-cache-ttl'] === '1h' ? '1h' : '5m' },
    billed: {
      model: body.model ?? url.pathname.match(/models\/([^/:]+)/)?.[1] ?? 'mock-model',
      input: inTok - cacheWrite + toolUse,
      output: flagHeader(req, 'x-mock-fill-output') ? sentCap * choices : outTok + reasoning,
      cache_write_5m: req.headers['x-mock-cache-ttl'] === '1h' ? 0 : cacheWrite,
      cache_write_1h: req.headers['x-mock-cache-ttl'] === '1h' ? cacheWrite : 0,
    },
  };
}

/** What `billed` costs under a gateway pricing table, in micro-dollars (rounded up). */
export function priceMicros(billed, table) {
  const glob = (pattern, name) =>
    new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`).test(name);
  const price = table.find((entry) => glob(entry.model, billed.model));
  if (!price) return Infinity;
  const write5m = price.cache_write ?? Math.ceil(price.input * 1.25);
  const write1h = price.cache_write_1h ?? price.input * 2;
  const perMillion = BigInt(billed.input) * BigInt(price.input) + BigInt(billed.output) * BigInt(price.output) +
    BigInt(billed.cache_write_5m) * BigInt(write5m) + BigInt(billed.cache_write_1h) * BigInt(write1h);
  return Number((perMillion + 999_999n) / 1_000_000n);
}

// ---------- OpenAI ----------

const openaiUsage = (c) => ({
  prompt_tokens: c.inTok, completion_tokens: c.outTok + c.reasoning, total_tokens: c.inTok + c.outTok + c.reasoning,
  ...(c.reasoning && { completion_tokens_details: { reasoning_tokens: c.reasoning } }),
});

function openaiChat(c, id) {
  const base = { id: `chatcmpl-mock-${id}`, created: CREATED, model: c.model };
  if (!c.stream) {
    return { json: {
      ...base, object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content: c.text }, finish_reason: 'stop' }],
      ...(c.usage && { usage: openaiUsage(c) }),
    } };
  }
  const chunk = (choices, extra) => ({ data: { ...base, object: 'chat.completion.chunk', choices, ...extra } });
  const choice = (delta, finish_reason = null) => [{ index: 0, delta, finish_reason }];
  const events = [
    chunk(choice({ role: 'assistant', content: '' })),
    ...c.chunks.map((content) => chunk(choice({ content }))),
    chunk(choice({}, 'stop')),
  ];
  if (c.usage && c.body.stream_options?.include_usage === true) events.push(chunk([], { usage: openaiUsage(c) }));
  events.push({ data: '[DONE]' });
  return { sse: events };
}

function openaiResponses(c, id) {
  const respId = `resp_mock_${id}`, msgId = `msg_mock_${id}`;
  const part = { type: 'output_text', text: c.text, annotations: [] };
  const item = { type: 'message', id: msgId, status: 'completed', role: 'assistant', content: [part] };
  const out = c.outTok + c.reasoning;
  const usage = {
    input_tokens: c.inTok, input_tokens_details: { cached_tokens: 0 },
    output_tokens: out, output_tokens_details: { reasoning_tokens: c.reasoning }, total_tokens: c.inTok + out,
  };
  // The request's tools and text format (a JSON schema may name a property `usage`) come
  // before the response's own usage, as in the real API.
  const response = (status, done) => ({
    id: respId, object: 'response', created_at: CREATED, status, model: c.model,
    output: done ? [item] : [],
    tools: c.body.tools ?? [],
    text: c.body.text ?? { format: { type: 'text' } },
    background: c.body.background === true,
    ...(done && c.usage && { usage }),
  });
  if (c.body.background === true) return { json: response('queued', false) };
  if (!c.stream) return { json: response('completed', true) };
  const ev = [
    ['response.created', { response: response('in_progress', false) }],
    ['response.in_progress', { response: response('in_progress', false) }],
    ['response.output_item.added', { output_index: 0, item: { ...item, status: 'in_progress', content: [] } }],
    ['response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: { ...part, text: '' } }],
    ...c.chunks.map((delta) => ['response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta }]),
    ['response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text: c.text }],
    ['response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part }],
    ['response.output_item.done', { output_index: 0, item }],
    ['response.completed', { response: response('completed', true) }],
  ];
  return { sse: ev.map(([type, d], sequence_number) => ({ event: type, data: { type, sequence_number, ...d } })) };
}

function openaiEmbeddings(c) {
  const input = c.body.input;
  const n = Array.isArray(input) && typeof input[0] !== 'number' ? input.length : 1;
  return { json: {
    object: 'list', model: c.model,
    data: Array.from({ length: n }, (_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3] })),
    ...(c.usage && { usage: { prompt_tokens: c.inTok, total_tokens: c.inTok } }),
  } };
}

const openaiGeneric = (c) => ({ json: {
  ok: true, path: c.url.pathname,
  ...(c.usage && c.body.model !== undefined && { usage: openaiUsage(c) }),
} });

// ---------- Anthropic ----------

function anthropicMessages(c, id) {
  const message = (content, usage) => ({
    id: `msg_mock_${id}`, type: 'message', role: 'assistant', model: c.model, content,
    stop_reason: content.length ? 'end_turn' : null, stop_sequence: null,
    ...(c.usage && { usage }),
  });
  const input = {
    input_tokens: c.inTok - c.cacheWrite.tokens,
    cache_creation_input_tokens: c.cacheWrite.tokens,
    cache_read_input_tokens: 0,
    cache_creation: {
      ephemeral_5m_input_tokens: c.cacheWrite.ttl === '5m' ? c.cacheWrite.tokens : 0,
      ephemeral_1h_input_tokens: c.cacheWrite.ttl === '1h' ? c.cacheWrite.tokens : 0,
    },
  };
  if (!c.stream) {
    return { json: message([{ type: 'text', text: c.text }], { ...input, output_tokens: c.outTok }) };
  }
  const ev = [
    ['message_start', { message: message([], { ...input, output_tokens: 1 }) }],
    ['content_block_start', { index: 0, content_block: { type: 'text', text: '' } }],
    ...c.chunks.map((text) => ['content_block_delta', { index: 0, delta: { type: 'text_delta', text } }]),
    ['content_block_stop', { index: 0 }],
    ['message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null },
      ...(c.usage && { usage: { output_tokens: c.outTok } }) }],
    ['message_stop', {}],
  ];
  return { sse: ev.map(([type, d]) => ({ event: type, data: { type, ...d } })) };
}

// ---------- Gemini ----------

function gemini(c, _id, [, model, action]) {
  if (action === 'countTokens') return { json: { totalTokens: c.inTok } };
  const reply = (text, done, candTok) => ({
    candidates: [{ content: { parts: [{ text }], role: 'model' }, ...(done && { finishReason: 'STOP' }), index: 0 }],
    ...(c.usage && { usageMetadata: {
      promptTokenCount: c.inTok, candidatesTokenCount: candTok, totalTokenCount: c.inTok + c.toolUse + candTok,
      ...(c.toolUse && { toolUsePromptTokenCount: c.toolUse }) } }),
    modelVersion: model,
  });
  if (action === 'generateContent') return { json: reply(c.text, true, c.outTok) };
  const pieces = c.chunks.length ? c.chunks : [''];
  let sofar = 0;
  const chunks = pieces.map((text, i) => {
    sofar += text.split(' ').filter(Boolean).length;
    return reply(text, i === pieces.length - 1, sofar);
  });
  return c.url.searchParams.get('alt') === 'sse' ? { sse: chunks.map((data) => ({ data })) } : { json: chunks };
}

// ---------- model lists ----------

const owner = (id) => (id.startsWith('claude') ? 'anthropic' : id.startsWith('gemini') ? 'google' : 'openai');
const openaiModels = () => ({ json: {
  object: 'list', data: MODELS.map((id) => ({ id, object: 'model', created: CREATED, owned_by: owner(id) })),
} });
const anthropicModels = () => ({ json: {
  data: MODELS.map((id) => ({ type: 'model', id, display_name: id, created_at: CREATED_ISO })),
  has_more: false, first_id: MODELS[0], last_id: MODELS.at(-1),
} });
const geminiModels = () => ({ json: {
  models: MODELS.map((id) => ({ name: `models/${id}`, displayName: id,
    supportedGenerationMethods: ['generateContent', 'streamGenerateContent', 'countTokens'] })),
} });

const ROUTES = [
  ['POST', /^\/openai\/v1\/chat\/completions$/, openaiChat],
  ['POST', /^\/openai\/v1\/responses$/, openaiResponses],
  ['POST', /^\/openai\/v1\/embeddings$/, openaiEmbeddings],
  ['GET', /^\/openai\/v1\/models$/, openaiModels],
  ['POST', /^\/openai\/v1\/.+$/, openaiGeneric],
  ['POST', /^\/anthropic\/v1\/messages$/, anthropicMessages],
  ['POST', /^\/anthropic\/v1\/messages\/count_tokens$/, (c) => ({ json: { input_tokens: c.inTok } })],
  ['GET', /^\/anthropic\/v1\/models$/, anthropicModels],
  ['POST', /^\/gemini\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent|countTokens)$/, gemini],
  ['GET', /^\/gemini\/v1beta\/models$/, geminiModels],
];

// ---------- server ----------

export function startMock({ port = 0 } = {}) {
  const requests = [];
  const failCounts = new Map();
  let seq = 0;

  async function handle(req, res) {
    const bufs = [];
    for await (const b of req) bufs.push(b);
    const raw = Buffer.concat(bufs).toString('utf8');
    const url = new URL(req.url, 'http://mock');

    if (url.pathname.startsWith('/__mock/')) {
      const key = `${req.method} ${url.pathname}`;
      if (key === 'GET /__mock/health') return sendJson(res, 200, { ok: true });
      if (key === 'GET /__mock/requests') return sendJson(res, 200, requests);
      if (key === 'DELETE /__mock/requests') { requests.length = 0; return sendJson(res, 200, { ok: true }); }
      return sendJson(res, 404, { error: { message: 'not found', type: 'not_found' } });
    }

    const h = req.headers;
    const record = {
      method: req.method, path: req.url, headers: { ...h },
      credential: h.authorization ?? h['x-api-key'] ?? h['x-goog-api-key'] ?? url.searchParams.get('key'),
      body: raw, host: h.host ?? null, billed: null,
    };
    requests.push(record);
    const id = ++seq;

    const latency = intHeader(req, 'x-mock-latency-ms');
    if (latency > 0) await sleep(latency);

    let failStatus = intHeader(req, 'x-mock-status');
    const failTimes = intHeader(req, 'x-mock-fail-times');
    if (failTimes !== undefined) {
      const key = h['x-mock-fail-key'] ?? '';
      const n = (failCounts.get(key) ?? 0) + 1;
      failCounts.set(key, n);
      failStatus = n <= failTimes ? failStatus ?? 503 : undefined;
    }
    if (failStatus !== undefined) return sendJson(res, failStatus, ERROR_BODY);

    for (const [method, re, handler] of ROUTES) {
      const m = req.method === method && re.exec(url.pathname);
      if (!m) continue;
      const context = makeContext(req, url, raw);
      const out = handler(context, id, m);
      const free = req.method !== 'POST' || /count_?tokens/i.test(url.pathname);
      if (!free) record.billed = context.billed;
      if (out.json !== undefined) return sendJson(res, 200, out.json);
      if (flagHeader(req, 'x-mock-no-terminal')) out.sse.pop();
      return sendSse(res, out.sse, {
        delay: intHeader(req, 'x-mock-chunk-delay-ms') ?? 5,
        cutAfter: intHeader(req, 'x-mock-cut-after'),
      });
    }
    sendJson(res, 404, { error: { message: `no mock route for ${req.method} ${url.pathname}`, type: 'not_found' } });
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      process.stderr.write(`mock-upstream: ${err?.stack ?? err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: { message: String(err), type: 'mock_internal' } });
      else res.destroy();
    });
  });

  // Idle keep-alive connections stay open longer than the client (workerd) keeps them: a server
  // that closes an idle connection first (Node's default after 5 s) races the client reusing it,
  // and the call in flight fails with "Network connection lost" (seen between bursts).
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 121_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({
        port: server.address().port,
        requests,
        close: () => new Promise((done) => { server.close(() => done()); server.closeAllConnections(); }),
      });
    });
  });
}

// ---------- CLI ----------

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const i = args.findIndex((a) => a === '--port' || a.startsWith('--port='));
  const port = i < 0 ? process.env.MOCK_PORT ?? 0
    : args[i].includes('=') ? args[i].split('=')[1] : args[i + 1];
  const mock = await startMock({ port: Number(port) || 0 });
  process.stdout.write(JSON.stringify({ listening: mock.port }) + '\n');
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => mock.close().then(() => process.exit(0)));
}
