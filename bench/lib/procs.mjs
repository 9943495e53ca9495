// Child processes of the benchmark: started pinned to a core, their CPU time read from /proc,
// and all of them stopped when the run ends (normally, on error or on Ctrl-C).
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';

const children = new Set();
function isWritableDir(dir) {
  try {
    accessSync(dir, constants.W_OK);
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
/**
 * The run's scratch folder (load specs, key lists, perf data, Miniflare's storage); removed at
 * the end. In memory (/dev/shm) when there is one: Miniflare keeps KV and every Durable Object's
 * SQLite database in files, and on a disk their syncs stall the whole workerd process for
 * seconds once thousands of objects exist, which measures the disk, not the gateway (production
 * storage is not a local disk). BENCH_TMP chooses another place.
 */
const base = process.env.BENCH_TMP ?? (isWritableDir('/dev/shm') ? '/dev/shm' : tmpdir());
export const scratch = mkdtempSync(path.join(base, 'teamkeys-bench-'));
/** A fresh folder inside `scratch`. */
export const scratchDir = (name) => {
  const dir = path.join(scratch, name);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Whether processes can be pinned: taskset is there and this machine has two cores or more. */
export const canPin = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;
/** The server under test runs on SERVER_CPU; load generator and mock upstream on CLIENT_CPU. */
export const SERVER_CPU = 0;
export const CLIENT_CPU = 1;

/** Spawns `cmd args` on core `cpu` (when pinning is possible); it is killed when the run ends. */
export function start(cmd, args, { cpu, ...opts } = {}) {
  const pinned = canPin && cpu !== undefined;
  const child = spawn(pinned ? 'taskset' : cmd, pinned ? ['-c', String(cpu), cmd, ...args] : args, opts);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Moves every thread of `pid` to core `cpu`. */
export function pin(pid, cpu) {
  if (canPin) spawnSync('taskset', ['-a', '-cp', String(cpu), String(pid)], { stdio: 'ignore' });
}

/**
 * CPU seconds used so far by all threads of `pid` (0 if it is gone): the sum of the threads'
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds; threads that already ended are not counted),
 * else /proc/<pid>/stat user + system (clock ticks, 10 ms).
 */
export function cpuSeconds(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try { ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]); } catch { /* ended */ }
    }
    if (ns > 0) return ns / 1e9;
  } catch { /* no schedstat: fall back */ }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

/** Total CPU seconds of a set of pids. */
export const cpuOf = (pids) => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);

/** Resolves with the first stdout line of `child` (rejects if it exits or `ms` pass first). */
export function firstLine(child, ms = 60_000) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no output within ${ms} ms`)), ms);
    child.stdout.on('data', function onData(d) {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.stdout.resume();
        resolve(buf.slice(0, nl));
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`exited with ${code} before answering`)); });
  });
}

/** A TCP port free on 127.0.0.1 at the time of asking. */
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` until it answers at all (any status), for `ms` at most. */
export async function waitForHttp(url, ms = 30_000) {
  const until = Date.now() + ms;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      return;
    } catch (e) {
      if (Date.now() > until) throw new Error(`${url} did not answer within ${ms} ms: ${e.message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const adopted = new Map();
/** A grandchild (e.g. Miniflare's workerd) to kill at the end if its parent did not stop it. */
export function adopt(pid) {
  try { adopted.set(pid, readFileSync(`/proc/${pid}/comm`, 'utf8').trim()); } catch { /* gone */ }
}

/** Stops every child still running (SIGTERM, then SIGKILL after a grace period). */
export async function stopAll(graceMs = 3000) {
  const live = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
  for (const c of live) c.kill('SIGTERM');
  await Promise.race([
    Promise.all(live.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r))))),
    new Promise((r) => setTimeout(r, graceMs).unref()),
  ]);
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const [pid, name] of adopted) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === name) process.kill(pid, 'SIGKILL');
    } catch { /* already gone */ }
  }
  if (!process.env.BENCH_KEEP_SCRATCH) rmSync(scratch, { recursive: true, force: true });
}
