// The end-to-end harness: the built worker (build/index.js + index_bg.wasm) in workerd through
// Miniflare, with real local KV and SQLite-backed Durable Objects, in front of the mock upstream.
// Each test file starts one gateway and one or more mocks; keys are seeded as the control plane
// would: only the SHA-256 of the key reaches KV.
import { Miniflare } from 'miniflare';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { startMock } from '../mock-upstream/server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
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
 * Starts a gateway in workerd. `bindings` adds or overrides worker vars and secrets.
 * Returns { mf, mock, fetch(path, init), seedKey(record?) -> plaintext key, close() }.
 */
export async function startGateway({ bindings = {}, mock } = {}) {
  for (const f of ['build/index.js', 'build/index_bg.wasm']) {
    if (!existsSync(path.join(root, f))) throw new Error(`${f} is missing: run 'make build' first`);
  }
  const upstream = mock ?? (await startMock({ port: 0 }));
  const mf = new Miniflare({
    rootPath: root,
    scriptPath: 'build/index.js',
    modules: true,
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: '2026-04-26',
    kvNamespaces: ['KEYS'],
    durableObjects: {
      LEDGER: { className: 'KeyLedger', useSQLite: true },
      OUTBOX: { className: 'Outbox', useSQLite: true },
      REGISTRY: { className: 'Registry', useSQLite: true },
    },
    bindings: {
      UPSTREAM_URL: `http://127.0.0.1:${upstream.port}`,
      UPSTREAM_API_KEY: UPSTREAM_SECRET,
      ADMIN_TOKEN,
      ...bindings,
    },
  });
  const base = (await mf.ready).toString().replace(/\/$/, '');
  const kv = await mf.getKVNamespace('KEYS');
  return {
    mf,
    mock: upstream,
    base,
    kv,
    fetch: (p, init) => fetch(base + p, init),
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
