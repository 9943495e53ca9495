// Where workerd spends its CPU, sampled with Linux `perf` (when it is installed and allowed):
// self time grouped by what the code is (SQLite, V8's collector, compiled wasm/JS, kernel...),
// plus the inclusive share of a few landmarks (SQLite statements, outgoing fetch, ...).
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { scratchDir } from './procs.mjs';

const dir = scratchDir('perf');

/** Whether `perf record` works here. */
export function perfWorks() {
  const r = spawnSync('perf', ['record', '-q', '-o', path.join(dir, 'probe.data'), '--', 'true'], { stdio: 'ignore' });
  return r.status === 0;
}

/** Samples `pid` (all threads, with call graphs) for `seconds`; resolves with the data file. */
export function record(pid, seconds) {
  const file = path.join(dir, `workerd-${pid}-${Date.now()}.data`);
  const child = spawn('perf', ['record', '-q', '-F', '499', '-g', '-p', String(pid), '-o', file, '--', 'sleep', String(seconds)], { stdio: 'ignore' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code === 0 ? file : null)));
}

// Self time of a symbol -> a category, first match wins.
const CATEGORIES = [
  ['compiled wasm + JS (JIT code)', (dso) => dso.startsWith('[JIT]') || dso.startsWith('perf-')],
  ['kernel (syscalls, loopback TCP, scheduling, page faults)', (dso) => dso.startsWith('[kernel')],
  ['SQLite (Durable Object and KV-simulator storage)', (_, sym) => /sqlite3|^pager|^vdbe|^btree|^wal[A-Z]|^unixWrite|^unixRead|^unixSync/i.test(sym)],
  ['V8 garbage collection', (_, sym) => /v8::internal::(Heap|Scavenger|ScavengerCollector|MarkCompact|MinorMarkSweep|Sweeper|ConcurrentMarking|MarkingVisitor|MainMarkingVisitor|ConcurrentMarkingVisitor|MarkingWorklist|IncrementalMarking|GlobalHandles|EphemeronHashTable|HeapObject::Size)|cppgc::|Scavenge/.test(sym)],
  ['V8 compilers (TurboFan, Maglev, Liftoff, parser)', (_, sym) => /v8::internal::(compiler|maglev|wasm::(Liftoff|TurboFan|Compile|.*Decoder)|Parser|Scanner|baseline)|Turboshaft|turboshaft/.test(sym)],
  ['V8 builtins and interpreter (JS glue: Miniflare, wasm-bindgen)', (_, sym) => /^Builtins_/.test(sym)],
  ['V8 runtime (API, handles, compiler, objects)', (_, sym) => /v8::|V8/.test(sym)],
  ['workerd runtime (jsg bindings, HTTP, headers, streams, I/O context)', (_, sym) => /workerd::/.test(sym)],
  ['kj (event loop, promises, async I/O)', (_, sym) => /kj::/.test(sym)],
  ['memory allocation (tcmalloc)', (_, sym) => /tcmalloc|TCMalloc|malloc|^free$|operator new|operator delete/.test(sym)],
  ['libc (memcpy, etc.)', (dso) => /^libc|^ld-linux/.test(dso)],
];
const LANDMARKS = [
  ['SQLite statements (sqlite3_step, incl. commits)', /^sqlite3_step$/],
  ['SQLite statement preparation', /^sqlite3LockAndPrepare$|^sqlite3_prepare_v3$/],
  ['outgoing fetch() (upstream and DO subrequests)', /^workerd::api::\(anonymous namespace\)::fetchImplNoOutputLock/],
  ['V8 collector on the main thread', /^v8::internal::Heap::CollectGarbage/],
  ['JS run by the interpreter', /^Builtins_InterpreterEntryTrampoline$/],
  ['wasm to JS calls (wasm-bindgen imports)', /^Builtins_WasmToJsWrapper/],
];

/** Summarizes a perf data file: {samples, categories: [[name, pct]], landmarks: [[name, pct]], topSelf: [[sym, pct]]}. */
export function summarize(file) {
  const report = (args) => spawnSync('perf', ['report', '-i', file, '--stdio', '-g', 'none', '--percent-limit', '0', ...args],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 }).stdout ?? '';
  const self = report(['--no-children', '-n', '--sort', 'dso,sym']);
  let samples = 0;
  const cats = new Map(CATEGORIES.map(([n]) => [n, 0]));
  cats.set('other', 0);
  const top = [];
  for (const line of self.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\d+)\s+(.+?)\s+\[([.k])\]\s+(.*?)\s*$/.exec(line);
    if (!m) continue;
    const [, pct, n, dso, , sym] = m;
    samples += Number(n);
    const cat = CATEGORIES.find(([, test]) => test(dso.trim(), sym))?.[0] ?? 'other';
    cats.set(cat, cats.get(cat) + Number(pct));
    if (top.length < 15) top.push([`${sym.slice(0, 90)} (${dso.trim()})`, Number(pct)]);
  }
  const children = report(['--children', '--sort', 'sym']);
  const landmarks = LANDMARKS.map(([name, re]) => {
    let best = 0;
    for (const line of children.split('\n')) {
      const m = /^\s*([\d.]+)%\s+([\d.]+)%\s+\[([.k])\]\s+(.*?)\s*$/.exec(line);
      if (m && re.test(m[4])) best = Math.max(best, Number(m[1]));
    }
    return [name, best];
  });
  const round = (x) => Math.round(x * 10) / 10;
  return {
    samples,
    categories: [...cats].sort((a, b) => b[1] - a[1]).map(([n, p]) => [n, round(p)]),
    landmarks: landmarks.map(([n, p]) => [n, round(p)]),
    topSelf: top.map(([n, p]) => [n, round(p)]),
  };
}
