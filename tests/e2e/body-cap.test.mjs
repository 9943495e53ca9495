// Issue 11, bounded memory: request bodies are read from the stream with a running cap, on the
// gateway and on the admin API, so a chunked body without content-length is refused before
// more than the cap is read; the admin API reads no body before the caller's token is accepted.
//
// A raw node:http client writes a chunked body in 1 MiB chunks (up to 100 MiB), waiting for each
// write to drain into the socket, and stops when the server answers or closes. "Read" is measured
// on the client side as the bytes written before the answer arrived; what sits in the loopback
// socket buffers (≤ 4 MiB send + the receiver's window) and in the runtime's own buffers was
// written but not read by the worker, hence the tolerance below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startGateway, ADMIN_TOKEN } from './harness.mjs';

const MIB = 1024 * 1024;
const CHUNK_BYTES = MIB;
const MAX_SENT_BYTES = 100 * MIB;
/** Bytes written but not yet read by the worker when it answers: socket and runtime buffers. */
const TOLERANCE_BYTES = 16 * MIB;
/** src/gateway/request.rs MAX_BODY_BYTES. */
const GATEWAY_BODY_CAP = 10 * MIB;
/** src/admin/input.rs MAX_ADMIN_BODY_BYTES. */
const ADMIN_BODY_CAP = 64 * 1024;

let gw;
before(async () => {
  gw = await startGateway();
});
after(() => gw?.close());

/**
 * POSTs `prefix`, then `chunkBytes` of spaces at a time (valid JSON whitespace) as a chunked body,
 * until `maxBytes` are written (then `suffix`) or the server answers or closes. Resolves with {status, body,
 * error, written} where `written` counts the bytes handed to the socket before the outcome.
 */
function sendChunked(path, headers, { prefix = '{"model":"gpt-4o","messages":[', suffix = ']}', maxBytes = MAX_SENT_BYTES } = {}) {
  const url = new URL(gw.base + path);
  return new Promise((resolve) => {
    let written = 0;
    let outcome = null;
    const req = http.request({
      host: url.hostname, port: url.port, path: url.pathname, method: 'POST',
      headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked', ...headers },
    });
    const finish = (result) => {
      if (outcome) return;
      outcome = { ...result, written };
      resolve(outcome);
      req.destroy();
    };
    req.on('response', (res) => {
      const writtenAtAnswer = written;
      const bufs = [];
      res.on('data', (b) => bufs.push(b));
      res.on('end', () => { written = writtenAtAnswer; finish({ status: res.statusCode, body: Buffer.concat(bufs).toString() }); });
      res.on('error', () => { written = writtenAtAnswer; finish({ status: res.statusCode, body: '' }); });
    });
    req.on('error', (e) => finish({ error: e.code ?? String(e) }));
    req.on('close', () => finish({ error: 'closed' }));
    const chunk = Buffer.alloc(CHUNK_BYTES, 0x20);
    (async () => {
      req.write(prefix);
      written += prefix.length;
      while (!outcome && written < maxBytes) {
        const flushed = req.write(chunk);
        written += chunk.length;
        if (!flushed) {
          await new Promise((resolve) => {
            const go = () => { req.off('drain', go); req.off('close', go); resolve(); };
            req.on('drain', go);
            req.on('close', go);
          });
        }
      }
      if (!outcome) req.end(suffix);
    })();
  });
}

test('gateway: a chunked body past the cap is refused 413 before much more than the cap is read', async () => {
  const key = await gw.seedKey();
  const r = await sendChunked('/openai/v1/chat/completions', { authorization: `Bearer ${key}` });
  console.log(`gateway: ${r.written} bytes written before the answer (cap ${GATEWAY_BODY_CAP})`);
  assert.equal(r.status, 413, JSON.stringify(r));
  assert.equal(JSON.parse(r.body).error.code, 'body_too_large');
  assert.ok(r.written <= GATEWAY_BODY_CAP + TOLERANCE_BYTES, `${r.written} bytes written`);
  assert.equal(gw.mock.requests.length, 0);
});

test('gateway: a chunked body within the cap is read whole and forwarded', async () => {
  const key = await gw.seedKey();
  const r = await sendChunked('/openai/v1/chat/completions', { authorization: `Bearer ${key}` }, {
    prefix: '{"model":"gpt-4o","max_tokens":5,"messages":[{"role":"user","content":"hi"}',
    maxBytes: 3 * MIB,
  });
  assert.equal(r.status, 200, JSON.stringify(r));
  assert.equal(gw.mock.requests.at(-1).body.length > 3 * MIB, true);
});

test('admin: a chunked body without a token is refused 401 before it is read', async () => {
  const r = await sendChunked('/admin/v1/projects', {}, { prefix: '{"name":"' });
  console.log(`admin without a token: ${r.written} bytes written before the answer (${r.status ?? r.error})`);
  assert.ok(r.status === 401 || r.error, JSON.stringify(r));
  if (r.status) assert.equal(JSON.parse(r.body).error.code, 'missing_admin_token');
  assert.ok(r.written <= ADMIN_BODY_CAP + TOLERANCE_BYTES, `${r.written} bytes written`);
});

test('admin: a chunked body with an unknown token is refused 401 before it is read', async () => {
  const r = await sendChunked('/admin/v1/projects', { authorization: 'Bearer tka_nobody' }, { prefix: '{"name":"' });
  assert.ok(r.status === 401 || r.error, JSON.stringify(r));
  if (r.status) assert.equal(JSON.parse(r.body).error.code, 'invalid_admin_token');
  assert.ok(r.written <= ADMIN_BODY_CAP + TOLERANCE_BYTES, `${r.written} bytes written`);
});

test('admin: an Admin\'s chunked body past the cap is refused 413 (or the connection closed), webhook routes too', async () => {
  for (const path of ['/admin/v1/projects', '/admin/v1/webhooks']) {
    const r = await sendChunked(path, { authorization: `Bearer ${ADMIN_TOKEN}` }, { prefix: '{"name":"' });
    console.log(`admin ${path} as Admin: ${r.written} bytes written before the answer (${r.status ?? r.error})`);
    // The worker answers and closes while the client still writes: the reset may reach the
    // client before the answer does.
    assert.ok(r.status === 413 || r.error, `${path}: ${JSON.stringify(r)}`);
    assert.ok(r.written <= ADMIN_BODY_CAP + TOLERANCE_BYTES, `${path}: ${r.written} bytes written`);
  }
});

test('admin: an Admin\'s small chunked body is read and served', async () => {
  const r = await sendChunked('/admin/v1/projects', { authorization: `Bearer ${ADMIN_TOKEN}` }, {
    prefix: '{"name":"chunked project"', suffix: '}', maxBytes: 0,
  });
  assert.equal(r.status, 201, JSON.stringify(r));
});
