// The gateway for the benchmarks: the built worker (build/index.js + index_bg.wasm) in workerd
// through Miniflare with local KV and SQLite-backed Durable Objects, configured as
// tests/e2e/harness.mjs configures it, in front of the mock upstream at MOCK_PORT.
// A second, tiny worker bound to the same KV namespace seeds key records in bulk (10,000 puts
// through Miniflare's Node proxy take minutes; inside workerd, seconds). It is never on the
// request path measured.
// A third worker is the same gateway (its own Durable Objects, the same KV namespace) without
// two hops Miniflare adds to every call and production does not have: its socket reaches the
// worker directly (`unsafeDirectSockets`), not through Miniflare's entry worker (a JS worker that
// rebuilds the request with its `cf` object, routes it over a service binding and rebuilds the
// response), and its outbound fetches go straight out (`stripCfConnectingIp: false`), not
// through the worker Miniflare puts in front of the network to remove `CF-Connecting-IP`.
// Run with an IPC channel (child_process.fork):
//   -> {op: 'ready', url, directUrl, workerdPids}
//   <- {op: 'seed', id, entries: [[kvKey, jsonString], ...]}  -> {op: 'seeded', id, n, ms}
import { Miniflare } from 'miniflare';
import { gatewayWorkerOptions, root } from '../../tests/e2e/worker-options.mjs';
import { readdirSync, readFileSync } from 'node:fs';

const SEEDER = `export default {
  async fetch(request, env) {
    const entries = await request.json();
    await Promise.all(entries.map(([k, v]) => env.KEYS.put(k, v)));
    return new Response(String(entries.length));
  },
};`;

const mf = new Miniflare({
  rootPath: root,
  workers: [
    {
      name: 'teamkeys',
      ...gatewayWorkerOptions({
        upstreamUrl: `http://127.0.0.1:${process.env.MOCK_PORT}`,
        upstreamSecret: 'sk-upstream-bench-credential',
      }),
    },
    {
      name: 'teamkeys-direct',
      ...gatewayWorkerOptions({
        upstreamUrl: `http://127.0.0.1:${process.env.MOCK_PORT}`,
        upstreamSecret: 'sk-upstream-bench-credential',
      }),
      unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
      stripCfConnectingIp: false,
    },
    {
      name: 'bench-seeder',
      modules: true,
      script: SEEDER,
      compatibilityDate: '2026-04-26',
      kvNamespaces: ['KEYS'],
    },
  ],
});
const url = (await mf.ready).toString().replace(/\/$/, '');
const seeder = await mf.getWorker('bench-seeder');
const directUrl = (await mf.unsafeGetDirectURL('teamkeys-direct')).toString().replace(/\/$/, '');

/** Descendant processes of this one named workerd (Miniflare spawns one). */
function workerdPids() {
  const parent = new Map();
  const name = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      name.set(Number(d), stat.slice(stat.indexOf('(') + 1, close));
      parent.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const isDescendant = (pid) => {
    for (let p = parent.get(pid); p; p = parent.get(p)) if (p === process.pid) return true;
    return false;
  };
  return [...name].filter(([pid, n]) => n.includes('workerd') && isDescendant(pid)).map(([pid]) => pid);
}

async function seed(entries) {
  const started = Date.now();
  for (let i = 0; i < entries.length; i += 500) {
    const res = await seeder.fetch('http://seeder/', { method: 'POST', body: JSON.stringify(entries.slice(i, i + 500)) });
    if (!res.ok) throw new Error(`seeding failed: ${res.status} ${await res.text()}`);
    await res.text();
  }
  return Date.now() - started;
}

process.on('message', async (msg) => {
  if (msg.op === 'seed') {
    try {
      const ms = await seed(msg.entries);
      process.send({ op: 'seeded', id: msg.id, n: msg.entries.length, ms });
    } catch (e) {
      process.send({ op: 'seeded', id: msg.id, error: String(e) });
    }
  }
});
const stop = () => mf.dispose().finally(() => process.exit(0));
process.on('disconnect', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.send({ op: 'ready', url, directUrl, workerdPids: workerdPids() });
