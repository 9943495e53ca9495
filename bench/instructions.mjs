#!/usr/bin/env node
// Instructions per call on the full JSON path, counted by valgrind's callgrind: a figure other
// processes on a shared machine cannot inflate, where CPU time per call moves by 2-10× with the
// machine's load. For comparing builds and setups (a change measured before/after), not a
// substitute for `make bench`'s CPU per call on a quiet machine.
//
//   node bench/instructions.mjs                  every setup below, 300 calls each
//   BENCH_SETUPS=raw,direct BENCH_CALLS=500 BENCH_TOP=25 node bench/instructions.mjs
//   BENCH_BUILD=/path/to/build (another build's index.js + index_bg.wasm, e.g. a stash of before)
//
// Setups (the same key without limits, hot: admitted from an edge lease, its record memoized):
//   raw     the built worker under the workerd binary itself (bench/lib/workerd.mjs)
//   entry   Miniflare, through its entry worker (what `make bench` measures as "Miniflare")
//   direct  Miniflare, reached without its entry worker and outbound wrapper (bench/lib/gateway.mjs)
// and, on raw workerd, what `make bench`'s many-keys section compares:
//   exact     one key whose admission is exact (`admission: exact`: admitted and settled at its
//             object per call, its record memoized, its object warm)
//   rotation  BENCH_KEYS keys (default 10,000) in rotation, each once in the warm-up (its first KV
//             read, its object created) and then each call a key last called BENCH_KEYS calls ago
//             (its record past the memo, its object likely evicted); the warm-up is every key once
// Each server runs under `valgrind --tool=callgrind` with instrumentation off while it starts
// and warms up (1,000 calls: the key turns hot, V8 tiers the code up), then on for the calls
// counted (4 connections, closed loop). Output: instructions per call (also without V8's
// background compilers, which may still be tiering code up), a few landmarks (inclusive) and the
// functions with the most instructions of their own, from callgrind_annotate. Needs valgrind;
// ~2-4 min a setup.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from './lib/load.mjs'; // the Node generator: counts are exact, nothing to install
import { adopt, CLIENT_CPU, firstLine, scratchDir, SERVER_CPU, start, stopAll } from './lib/procs.mjs';
import { startWorkerd, workerdBinary } from './lib/workerd.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const SETUPS = (process.env.BENCH_SETUPS ?? 'raw,entry,direct').split(',').map((s) => s.trim());
const CALLS = Number(process.env.BENCH_CALLS ?? 300);
const WARM_CALLS = Number(process.env.BENCH_WARM_CALLS ?? 1000);
const TOP = Number(process.env.BENCH_TOP ?? 15);
const BUILD = path.resolve(process.env.BENCH_BUILD ?? 'build');
const log = (...a) => console.error('[instructions]', ...a);

const CHAT = JSON.stringify({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Say hello to the benchmark, in a few short words please.' }],
  max_tokens: 20,
});
const SECRET = 'sk-upstream-bench-credential';
const KEY = `tk_bench_instr_${randomBytes(12).toString('hex')}`;
const RECORD = JSON.stringify({ id: 'key_instr', name: 'instructions', creator: 'bench', project: 'bench', status: 'active', created_at: Date.now() });
const entryOf = (key, record) => [`key:${createHash('sha256').update(key).digest('hex')}`, JSON.stringify(record)];
const ENTRY = [`key:${createHash('sha256').update(KEY).digest('hex')}`, RECORD];
const EXACT_KEY = `tk_bench_exact_${randomBytes(12).toString('hex')}`;
const ROTATION_KEYS = Array.from({ length: Number(process.env.BENCH_KEYS ?? 10000) }, (_, i) => `tk_bench_rot${i}_${randomBytes(12).toString('hex')}`);
const recordOf = (id, extra = {}) => ({ id, name: id, creator: 'bench', project: 'bench', status: 'active', created_at: Date.now(), ...extra });

const out = scratchDir('callgrind');
// vgdb's pipes in a folder of ours: by default they go under TMPDIR, which Miniflare's process
// has set to its own scratch folder.
const VGDB_PREFIX = `--vgdb-prefix=${out}/vgdb-pipe`;
const VALGRIND = ['valgrind', '--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', VGDB_PREFIX, `--callgrind-out-file=${out}/callgrind.%p`];

function control(pid, ...args) {
  const r = spawnSync('callgrind_control', [VGDB_PREFIX, ...args, String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`callgrind_control ${args.join(' ')} ${pid}: ${r.stderr || r.stdout}`);
}

/** Descendants of `parent` whose command name says callgrind (valgrind renames its process). */
function callgrindPids(parent) {
  const parentOf = new Map();
  const names = new Map();
  for (const d of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      names.set(Number(d), stat.slice(stat.indexOf('(') + 1, close));
      parentOf.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
    } catch { /* gone */ }
  }
  const below = (pid) => { for (let p = parentOf.get(pid); p; p = parentOf.get(p)) if (p === parent) return true; return false; };
  return [...names].filter(([pid, n]) => /callgrind|valgrind|workerd/.test(n) && below(pid)).map(([pid]) => pid);
}

async function startMock() {
  const mock = start(process.execPath, ['bench/lib/mock.mjs'], { cpu: CLIENT_CPU, stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BENCH_CHUNK_DELAY_MS: '0' } });
  return `http://127.0.0.1:${JSON.parse(await firstLine(mock)).listening}`;
}

/** The raw-workerd setup under callgrind, seeded with `entries`, its files named by `setup`: {url, pid}. */
async function raw(mockUrl, entries, setup) {
  const w = await startWorkerd({ cpu: SERVER_CPU, mockUrl, upstreamSecret: SECRET, buildDir: BUILD, name: `workerd-callgrind-${setup}`, wrap: VALGRIND });
  for (let i = 0; i < entries.length; i += 1000) await w.seed(entries.slice(i, i + 1000));
  return { url: w.url, pid: w.pid };
}

/** What each setup calls with: the server, its seeded records, the authorization of its calls. */
function plan(setup) {
  const single = (key) => ({ headers: { authorization: `Bearer ${key}` }, warm: WARM_CALLS });
  switch (setup) {
    case 'exact': return { server: 'raw', entries: [entryOf(EXACT_KEY, recordOf('key_exact', { admission: 'exact' }))], ...single(EXACT_KEY) };
    case 'rotation': {
      const keysFile = path.join(out, 'rotation-keys.txt');
      writeFileSync(keysFile, ROTATION_KEYS.join('\n') + '\n');
      return { server: 'raw', entries: ROTATION_KEYS.map((k, i) => entryOf(k, recordOf(`key_rot_${i}`))), headers: {}, keysFile, warm: ROTATION_KEYS.length };
    }
    default: return { server: setup, entries: [ENTRY], ...single(KEY) };
  }
}

/** A Miniflare setup (bench/lib/gateway.mjs) with its workerd under callgrind: {url, pid}. */
async function miniflare(mockUrl, direct) {
  const wrapper = path.join(out, 'workerd-under-callgrind.sh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${VALGRIND.map((a) => `'${a}'`).join(' ')} '${workerdBinary()}' "$@"\n`);
  chmodSync(wrapper, 0o755);
  if (BUILD !== path.resolve('build')) throw new Error('BENCH_BUILD applies to the raw setup only');
  const gw = start(process.execPath, ['bench/lib/gateway.mjs'], {
    cpu: SERVER_CPU, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, MOCK_PORT: new URL(mockUrl).port, TMPDIR: scratchDir('miniflare'), MINIFLARE_WORKERD_PATH: wrapper },
  });
  const ready = await new Promise((resolve, reject) => {
    gw.once('message', resolve);
    gw.once('exit', (code) => reject(new Error(`the gateway exited (${code})`)));
  });
  await new Promise((resolve, reject) => {
    gw.on('message', (m) => { if (m.op === 'seeded') (m.error ? reject(new Error(m.error)) : resolve()); });
    gw.send({ op: 'seed', id: 1, entries: [ENTRY] });
  });
  const [pid] = callgrindPids(gw.pid);
  if (!pid) throw new Error('no workerd under callgrind found below the gateway');
  adopt(pid);
  return { url: direct ? ready.directUrl : ready.url, pid, stop: () => gw.kill('SIGTERM') };
}

async function count(setup, mockUrl) {
  log(`${setup}: starting under callgrind (instrumentation off)`);
  const p = plan(setup);
  const server = p.server === 'raw' ? await raw(mockUrl, p.entries, setup) : await miniflare(mockUrl, p.server === 'direct');
  const load = { url: `${server.url}/openai/v1/chat/completions`, method: 'POST', body: CHAT, headers: { 'content-type': 'application/json', ...p.headers }, keysFile: p.keysFile, mode: 'closed', concurrency: 4 };
  log(`${setup}: ${p.warm} calls to warm up`);
  const warm = await runLoad({ ...load, count: p.warm });
  if (warm.statuses?.['200'] !== p.warm) throw new Error(`${setup}: warm-up answered ${JSON.stringify(warm.statuses)} ${JSON.stringify(warm.errors)}`);
  control(server.pid, '--instr=on');
  await runLoad({ ...load, count: 100 }); // the code re-translated with instrumentation: not counted
  control(server.pid, '--zero');
  log(`${setup}: ${CALLS} calls counted`);
  const r = await runLoad({ ...load, count: CALLS });
  const before = new Set(readdirSync(out));
  control(server.pid, '--dump');
  // The dump is written by the server's own thread, soon after the request: wait for it.
  let file;
  for (let waited = 0; !file && waited < 120_000; waited += 500) {
    await new Promise((r) => setTimeout(r, 500));
    file = readdirSync(out).filter((f) => !before.has(f) && /^callgrind\.\d+\.\d+$/.test(f) && statSync(path.join(out, f)).size > 0 &&
      /^totals:/m.test(readFileSync(path.join(out, f), 'utf8').slice(-4096))).map((f) => path.join(out, f)).pop();
  }
  control(server.pid, '--instr=off');
  server.stop?.();
  if (!file) throw new Error(`${setup}: no dump written`);
  const annotate = (...args) => spawnSync('callgrind_annotate', ['--threshold=100', ...args, file], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout;
  const total = Number(/^(?:summary|totals):\s*([\d,]+)/m.exec(readFileSync(file, 'utf8'))?.[1]?.replace(/,/g, '') ?? NaN);
  const functions = (text) => text.split('\n').map((l) => /^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*)$/.exec(l)).filter(Boolean)
    .map(([, n, f]) => [Number(n.replace(/,/g, '')), f.replace(/\s+\[[^\]]*\]$/, '').trim()]).filter(([n, f]) => n > 0 && f && !/PROGRAM TOTALS/.test(f));
  const ok = r.statuses?.['200'] ?? 0;
  const inclusive = functions(annotate('--inclusive=yes'));
  // V8's compilers on their background threads (tiering up still, or again): not the calls' own work.
  const compiling = COMPILER_TASKS.reduce((a, re) => a + (inclusive.find(([, f]) => re.test(f))?.[0] ?? 0), 0);
  return {
    setup, calls: ok, statuses: r.statuses, instructions: total, perCall: total / Math.max(1, ok),
    perCallWithoutCompilers: (total - compiling) / Math.max(1, ok),
    self: functions(annotate()).slice(0, TOP),
    landmarks: LANDMARKS.map(([name, re]) => [inclusive.find(([, f]) => re.test(f.replace(/^\?\?\?:/, '')))?.[0] ?? 0, name]),
  };
}

// What a call's instructions go to, by function (inclusive; they overlap).
const LANDMARKS = [
  ['the request handler (WorkerEntrypoint::request)', /^workerd::IoContext::run<workerd::\(anonymous namespace\)::WorkerEntrypoint::request/],
  ['outgoing fetch() (upstream, objects)', /^workerd::api::fetchImpl\(/],
  ['readers released (releaseLock: builds a TypeError)', /^workerd::api::ReaderImpl::releaseLock\(/],
  ['errors built (v8::Exception::TypeError, with their stack)', /^v8::Exception::TypeError\(/],
  ['stream reads (ReadableStreamDefaultReader::read)', /^workerd::api::ReadableStreamDefaultReader::read\(/],
  ['answers pumped to the client (PumpToReader)', /^workerd::api::\(anonymous namespace\)::PumpToReader::pumpLoop\(/],
  ['queueMicrotask (wasm-bindgen-futures wakes)', /^workerd::api::ServiceWorkerGlobalScope::queueMicrotask\(/],
  ['V8 collector, main thread', /^v8::internal::Heap::CollectGarbage\(/],
  ['V8 collector, helper threads (scavenger)', /^v8::internal::ScavengerJobTask::Run\(/],
  ['SQLite statements (sqlite3_step)', /^sqlite3_step$/],
  ['KV reads (KvNamespace::get)', /^workerd::api::KvNamespace::get\(/],
  ['wasm memory copies (memory_copy_wrapper)', /^v8::internal::wasm::memory_copy_wrapper\(/],
  ['V8 wasm compiler (background tier-up)', /BackgroundCompileJob::Run\(/],
  ['V8 JS compiler (background)', /OptimizingCompileTaskExecutor::CompileTask::Run\(/],
];
const COMPILER_TASKS = [/BackgroundCompileJob::Run\(/, /OptimizingCompileTaskExecutor::CompileTask::Run\(/];
const fmtK = (n) => `${(n / 1000).toFixed(0)}k`;
async function main() {
  if (spawnSync('valgrind', ['--version']).status !== 0) throw new Error('valgrind is missing (Debian: apt-get install valgrind)');
  const mockUrl = await startMock();
  const results = [];
  for (const setup of SETUPS) {
    const r = await count(setup, mockUrl);
    results.push(r);
    log(`${setup}: ${fmtK(r.perCall)} instructions per call, ${fmtK(r.perCallWithoutCompilers)} without V8's background compilers (${r.calls} calls)`);
  }
  console.log(`# Instructions per call, full JSON path, key without limits (raw/entry/direct: hot; exact; rotation: ${ROTATION_KEYS.length} keys), ${CALLS} calls, callgrind\n`);
  console.log('| setup | instructions per call | without V8\'s background compilers | calls | statuses |\n|---|---:|---:|---:|---|');
  for (const r of results) console.log(`| ${r.setup} | ${Math.round(r.perCall).toLocaleString('en')} | ${Math.round(r.perCallWithoutCompilers).toLocaleString('en')} | ${r.calls} | ${JSON.stringify(r.statuses)} |`);
  for (const r of results) {
    console.log(`\n## ${r.setup}: instructions per call by landmark (inclusive; they overlap)\n`);
    for (const [n, f] of r.landmarks) console.log(`${fmtK(n / r.calls).padStart(8)}  ${f}`);
    console.log(`\n## ${r.setup}: functions by instructions per call (self)\n`);
    for (const [n, f] of r.self) console.log(`${fmtK(n / r.calls).padStart(8)}  ${f.slice(0, 140)}`);
  }
}

main().then(() => stopAll().then(() => process.exit(0)), async (e) => { log(`ERROR: ${e.stack ?? e}`); await stopAll(); process.exit(1); });
