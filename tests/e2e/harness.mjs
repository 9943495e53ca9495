// The end-to-end harness: the built worker (build/index.js + index_bg.wasm) in workerd through
// Miniflare, with real local KV and SQLite-backed Durable Objects, in front of the mock upstream.
// Each test file starts one gateway and one or more mocks; keys are seeded as the control plane
// would: only the SHA-256 of the key reaches KV.
import { Miniflare } from 'miniflare';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { startMock } from '../mock-upstream/server.mjs';
import { gatewayWorkerOptions, root } from './worker-options.mjs';

export const UPSTREAM_SECRET = 'sk-upstream-test-credential';
/** The bootstrap Admin's token (the ADMIN_TOKEN secret) of every test gateway. */
export const ADMIN_TOKEN = 'tka_bootstrap-admin-token-for-tests';

export const sha256hex = (s) => createHash('sha256').update(s).digest('hex');
export const newKey = () => `tk_test_${randomBytes(18).toString('hex')}`;

/** A key record with sensible defaults; `over` replaces any field. */
export function keyRecord(over = {}) {
  return {
    id: `key_${randomBytes(6).toString('hex')}`,
    name: 'test key',
    creator: 'tester',
    project: 'proj_test',
    status: 'active',
    created_at: Date.now(),
    ...over,
  };
}

/**
 * Starts a gateway in workerd. `bindings` adds or overrides worker vars and secrets;
 * `miniflare` adds Miniflare options (e.g. `handleRuntimeStdio` to read the worker's logs);
 * `assets: true` serves the console from build/assets (see worker-options.mjs for why it is opt-in).
 * Returns { mf, mock, fetch(path, init), seedKey(record?) -> plaintext key, close() }.
 */
export async function startGateway({ bindings = {}, mock, miniflare = {}, assets = false } = {}) {
  for (const f of ['build/index.js', 'build/index_bg.wasm']) {
    if (!existsSync(path.join(root, f))) throw new Error(`${f} is missing: run 'make build' first`);
  }
  const upstream = mock ?? (await startMock({ port: 0 }));
  const mf = new Miniflare({
    rootPath: root,
    ...gatewayWorkerOptions({
      upstreamUrl: `http://127.0.0.1:${upstream.port}`,
      upstreamSecret: UPSTREAM_SECRET,
      bindings: { ADMIN_TOKEN, ...bindings },
      assets,
    }),
    ...miniflare,
  });
  const base = (await mf.ready).toString().replace(/\/$/, '');
  const kv = await mf.getKVNamespace('KEYS');
  return {
    mf,
    mock: upstream,
    base,
    kv,
    fetch: (p, init) => fetch(base + p, init),
    /**
     * A POST of `chunks` (strings or buffers, sent chunked) on a connection of its own, closed
     * after the answer: for bodies the gateway refuses before reading them whole, which leaves
     * the connection unusable for a next request. Resolves to { status, text }.
     */
    postOnce(p, headers, chunks) {
      return new Promise((resolve, reject) => {
        const url = new URL(base + p);
        const req = http.request(
          { host: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers, agent: false },
          (res) => {
            const bufs = [];
            res.on('data', (b) => bufs.push(b));
            res.on('end', () => { resolve({ status: res.statusCode, text: Buffer.concat(bufs).toString() }); req.destroy(); });
          },
        );
        req.on('error', reject);
        (async () => {
          for (const chunk of chunks) {
            if (req.destroyed || !req.write(chunk)) await new Promise((r) => setTimeout(r, 1));
          }
          req.end();
        })().catch(() => {});
      });
    },
    async seedKey(record = keyRecord(), key = newKey()) {
      await kv.put(`key:${sha256hex(key)}`, JSON.stringify(record));
      return key;
    },
    async close() {
      await mf.dispose();
      if (!mock) await upstream.close();
    },
  };
}

/** Reads a response body as its chunks (Uint8Array[]) and the joined text. */
export async function readChunks(res) {
  const chunks = [];
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
  }
  return { chunks, text: Buffer.concat(chunks).toString('utf8') };
}

export const json = (body, headers = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

/**
 * A bare upstream that answers every request with `status` and a JSON error body, recording
 * each request like the mock does ({method, path, headers, credential, body}). A failing target
 * for fallback tests: unlike the mock's x-mock-status header, it fails whatever the request says.
 */
export async function startFixedUpstream(status = 503) {
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const bufs = [];
    for await (const b of req) bufs.push(b);
    const h = req.headers;
    requests.push({
      method: req.method, path: req.url, headers: { ...h },
      credential: h.authorization ?? h['x-api-key'] ?? h['x-goog-api-key'] ?? null,
      body: Buffer.concat(bufs).toString('utf8'),
    });
    const body = JSON.stringify({ error: { message: `fixed ${status}`, type: 'fixed' } });
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    requests,
    close: () => new Promise((done) => { server.close(() => done()); server.closeAllConnections(); }),
  };
}

/** A local port that nothing listens on (bound, then released). */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Server-sent events of a body: [{event?, data}] with `data` as the raw string. */
export function parseSse(text) {
  return text.split(/\r?\n\r?\n/).filter((block) => block.trim()).map((block) => {
    const event = {};
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith('event:')) event.event = line.slice(6).trim();
      else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
    }
    event.data = data.join('\n');
    return event;
  });
}

/**
 * Calls `read()` until `done(value)` holds or `timeoutMs` passes; returns the last value (the
 * caller asserts on it, so a timeout fails with the value actually seen).
 */
export async function pollUntil(read, done, { timeoutMs = 5000, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() >= deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
