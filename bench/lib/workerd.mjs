// The gateway for the benchmarks without Miniflare: the built worker (build/index.js +
// index_bg.wasm) under the `workerd` binary of the npm package, with a capnp config written here:
//   - the Durable Objects (every class wrangler.toml binds) SQLite-backed on a local disk
//     service (the run's scratch folder, in /dev/shm when there is one);
//   - KEYS served by a small KV service of our own: a worker in the same workerd process holding
//     the values in a Map, speaking the protocol workerd's KV binding speaks to its backing service
//     (GET https://fake-host/<encodeURIComponent(key)>?urlencoded=true → the value, or 404). Its
//     CPU counts as the server's, like Miniflare's KV simulator does in the Miniflare rows, but it is
//     a Map lookup, not a simulation with SQLite and blobs on disk;
//   - outbound fetches (the mock upstream) through a network service that allows local addresses.
// A second socket (seed) puts records into the KV service in bulk: never on the path measured.
//
// startWorkerd({cpu, mockUrl, upstreamSecret, buildDir, name, wrap}) → {url, pid, seed(entries), proc}
// (`wrap`: a command prefix, e.g. valgrind's, that runs workerd; `pid` is then the prefix's)

import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, scratchDir, start, waitForHttp } from './procs.mjs';

const KV_SERVICE = `
const values = new Map();
export default {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.hostname === 'seed') {
      if (request.method !== 'POST') return new Response('ready');
      const entries = await request.json();
      for (const [k, v] of entries) values.set(k, v);
      return new Response(String(entries.length));
    }
    const key = decodeURIComponent(url.pathname.slice(1));
    if (request.method === 'GET') {
      const value = values.get(key);
      return value === undefined ? new Response(null, { status: 404 }) : new Response(value);
    }
    if (request.method === 'PUT') {
      values.set(key, await request.text());
      return new Response(null, { status: 200 });
    }
    if (request.method === 'DELETE') {
      values.delete(key);
      return new Response(null, { status: 200 });
    }
    return new Response('unsupported', { status: 501 });
  },
};
`;

// The seed socket's entry: forwards to the KV service with host "seed".
const SEED_ENTRY = `
export default {
  fetch(request, env) {
    return env.KV.fetch(new Request('http://seed/', request));
  },
};
`;

// Every Durable Object class wrangler.toml binds (the budgets' objects included: keys under a
// budget lease from them).
const CLASSES = [
  ['LEDGER', 'KeyLedger'], ['BUDGET', 'BudgetLedger'], ['OUTBOX', 'Outbox'], ['REGISTRY', 'Registry'],
  ['PLATFORM', 'Platform'], ['SIGNIN_GUARD', 'SignInGuard'],
];

const capnpString = (s) => JSON.stringify(s);

/** The capnp config of the run; every file it embeds is copied next to it. */
function writeConfig(dir, { port, seedPort, mockUrl, upstreamSecret, buildDir }) {
  copyFileSync(path.join(buildDir, 'index.js'), path.join(dir, 'index.js'));
  copyFileSync(path.join(buildDir, 'index_bg.wasm'), path.join(dir, 'index_bg.wasm'));
  writeFileSync(path.join(dir, 'kv.js'), KV_SERVICE);
  writeFileSync(path.join(dir, 'seed.js'), SEED_ENTRY);
  const disk = path.join(dir, 'disk');
  mkdirSync(disk);
  const texts = { UPSTREAM_URL: mockUrl, UPSTREAM_API_KEY: upstreamSecret };
  const config = `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "teamkeys", worker = .gateway),
    (name = "kv", worker = .kv),
    (name = "seed", worker = .seed),
    (name = "disk", disk = (path = ${capnpString(disk)}, writable = true)),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:${port}", http = (), service = "teamkeys"),
    (name = "seed", address = "127.0.0.1:${seedPort}", http = (), service = "seed"),
  ],
);

const gateway :Workerd.Worker = (
  modules = [
    (name = "index.js", esModule = embed "index.js"),
    (name = "index_bg.wasm", wasm = embed "index_bg.wasm"),
  ],
  compatibilityDate = "2026-04-26",
  compatibilityFlags = ["enable_request_signal"],
  bindings = [
    (name = "KEYS", kvNamespace = "kv"),
${CLASSES.map(([binding, cls]) => `    (name = ${capnpString(binding)}, durableObjectNamespace = ${capnpString(cls)}),`).join('\n')}
${Object.entries(texts).map(([k, v]) => `    (name = ${capnpString(k)}, text = ${capnpString(v)}),`).join('\n')}
  ],
  durableObjectNamespaces = [
${CLASSES.map(([, cls]) => `    (className = ${capnpString(cls)}, uniqueKey = ${capnpString(`teamkeys-${cls}`)}, enableSql = true),`).join('\n')}
  ],
  durableObjectStorage = (localDisk = "disk"),
  globalOutbound = "internet",
);

const kv :Workerd.Worker = (
  modules = [(name = "kv.js", esModule = embed "kv.js")],
  compatibilityDate = "2026-04-26",
);

const seed :Workerd.Worker = (
  modules = [(name = "seed.js", esModule = embed "seed.js")],
  compatibilityDate = "2026-04-26",
  bindings = [(name = "KV", service = "kv")],
);
`;
  const file = path.join(dir, 'config.capnp');
  writeFileSync(file, config);
  return file;
}


/** The workerd binary of the npm package (the same build Miniflare runs). */
export function workerdBinary() {
  const bin = 'node_modules/workerd/bin/workerd';
  if (!existsSync(bin)) throw new Error(`${bin} is missing: run 'npm ci'`);
  return path.resolve(bin);
}

/** Starts workerd on core `cpu` with the worker in `buildDir`; resolves once it answers. */
export async function startWorkerd({ cpu, mockUrl, upstreamSecret, buildDir = 'build', name = 'workerd', onLog = () => {}, wrap = [] }) {
  const dir = scratchDir(name);
  const [port, seedPort] = [await freePort(), await freePort()];
  const config = writeConfig(dir, { port, seedPort, mockUrl, upstreamSecret, buildDir });
  const [cmd, ...args] = [...wrap, workerdBinary(), 'serve', config, '--experimental'];
  const proc = start(cmd, args, { cpu, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', onLog);
  proc.stderr.on('data', onLog);
  const exited = new Promise((_, reject) => proc.once('exit', (code) => reject(new Error(`workerd exited (${code})`))));
  const url = `http://127.0.0.1:${port}`;
  await Promise.race([waitForHttp(`http://127.0.0.1:${seedPort}/`, wrap.length ? 300_000 : 60_000), exited]);
  async function seed(entries) {
    const startedAt = Date.now();
    for (let i = 0; i < entries.length; i += 2000) {
      const res = await fetch(`http://127.0.0.1:${seedPort}/`, { method: 'POST', body: JSON.stringify(entries.slice(i, i + 2000)) });
      if (!res.ok) throw new Error(`seeding workerd's KV failed: ${res.status} ${await res.text()}`);
      await res.text();
    }
    return Date.now() - startedAt;
  }
  return { url, pid: proc.pid, seed, proc };
}
