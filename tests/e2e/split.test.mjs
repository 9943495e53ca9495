// The gateway alone as a worker of its own (wrangler.gateway.toml, build/gateway/): it serves
// calls with the key ledgers of the `teamkeys` worker bound by script_name, so a key's counters
// are the same whichever worker a call comes through; it has no control plane: the admin API and
// the console are unknown routes there.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { startMock } from '../mock-upstream/server.mjs';
import { gatewayAloneWorkerOptions, gatewayWorkerOptions, root } from './worker-options.mjs';
import { ADMIN_TOKEN, UPSTREAM_SECRET, json, keyRecord, newKey, sha256hex } from './harness.mjs';

let mf;
let mock;
let whole;
let alone;
let kv;

before(async () => {
  for (const f of ['build/index.js', 'build/gateway/index.js', 'build/gateway/index_bg.wasm']) {
    if (!existsSync(path.join(root, f))) throw new Error(`${f} is missing: run 'make build' first`);
  }
  mock = await startMock({ port: 0 });
  const upstreamUrl = `http://127.0.0.1:${mock.port}`;
  const wholeOptions = gatewayWorkerOptions({ upstreamUrl, upstreamSecret: UPSTREAM_SECRET, bindings: { ADMIN_TOKEN } });
  mf = new Miniflare({
    rootPath: root,
    workers: [
      { ...wholeOptions, name: 'teamkeys', kvNamespaces: { KEYS: 'keys' } },
      gatewayAloneWorkerOptions({ upstreamUrl, upstreamSecret: UPSTREAM_SECRET, ledgersWorker: 'teamkeys', kvId: 'keys' }),
    ],
  });
  await mf.ready;
  whole = await mf.getWorker('teamkeys');
  alone = await mf.getWorker('teamkeys-gateway');
  kv = await mf.getKVNamespace('KEYS', 'teamkeys');
});
after(async () => {
  await mf?.dispose();
  await mock?.close();
});

const CHAT = 'http://gateway/openai/v1/chat/completions';
const call = (worker, key) =>
  worker.fetch(CHAT, json({ model: 'gpt-4o', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }, { authorization: `Bearer ${key}` }));

async function seed(record) {
  const key = newKey();
  await kv.put(`key:${sha256hex(key)}`, JSON.stringify(record));
  return key;
}

test('the gateway alone admits calls at the ledgers of the teamkeys worker: one key, one set of counters', async () => {
  const key = await seed(keyRecord({ limits: { rpm: 3 } }));
  const statuses = [];
  for (const worker of [alone, alone, whole, alone]) {
    const res = await call(worker, key);
    statuses.push(res.status);
    await res.arrayBuffer();
  }
  assert.deepEqual(statuses, [200, 200, 200, 429], 'the third call through the whole worker counts in the same minute');
  const quota = await alone.fetch('http://gateway/v1/key', { headers: { authorization: `Bearer ${key}` } });
  assert.equal(quota.status, 200);
  const body = await quota.json();
  assert.equal(body.key.usage.today.requests, 3, JSON.stringify(body.key.usage));
});

test('the gateway alone has no control plane: the admin API and the console are unknown routes', async () => {
  for (const p of ['/admin/v1/keys', '/console/', '/admin/v1/sessions']) {
    const res = await alone.fetch(`http://gateway${p}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const body = await res.json();
    assert.equal(res.status, 404, `${p}: ${JSON.stringify(body)}`);
    assert.ok(body.error?.code, `${p} answers the error envelope`);
  }
  const res = await whole.fetch('http://gateway/admin/v1/keys', { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(res.status, 200, 'the teamkeys worker still serves the admin API');
  await res.arrayBuffer();
});
