// The load generator: oha (crates.io) when it is there or can be installed, else wrk (Debian) for
// closed-loop throughput, else the Node generator (nodeload.mjs) for everything. One function,
// `runLoad`, gives the same result shape whichever tool ran:
//   {tool, requests, rps, elapsedS, statuses: {code: n}, errors: {text: n},
//    latencyMs: {p50, p90, p99, max, mean}, firstByteMs: {p50, p90, p99} | null}
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { start, CLIENT_CPU, scratchDir } from './procs.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const scratch = scratchDir('load');
const OHA_VERSION = '1.16.0';
let tool = { name: 'node' };
let seq = 0;

const version = (bin, flag = '--version') => {
  const r = spawnSync(bin, [flag], { encoding: 'utf8' });
  return r.status === 0 || r.stdout ? (r.stdout + r.stderr).trim().split('\n')[0].split(' ').slice(0, 2).join(' ') : null;
};

/**
 * Finds or installs the load generator. Order: `oha` on PATH or in ~/.cargo/bin; else
 * `cargo install oha --locked` (unless BENCH_NO_INSTALL=1); else `wrk`; else Node.
 */
export function ensureLoadGenerator({ log = console.log } = {}) {
  const force = process.env.BENCH_LOADGEN; // oha | wrk | node: use that one (for testing the fallbacks)
  if (force === 'node') return (tool = { name: 'node', version: process.version });
  if (force === 'wrk' && version('wrk', '-v')?.startsWith('wrk')) return (tool = { name: 'wrk', bin: 'wrk', version: version('wrk', '-v') });
  const cargoBin = path.join(process.env.HOME ?? '', '.cargo/bin');
  const oha = () => ['oha', path.join(cargoBin, 'oha')].find((bin) => version(bin)?.startsWith('oha'));
  let bin = oha();
  if (!bin && process.env.BENCH_NO_INSTALL !== '1' && version('cargo')) {
    log(`oha is missing: installing oha ${OHA_VERSION} from crates.io (cargo install --locked; compiles for a few minutes)...`);
    const r = spawnSync('cargo', ['install', 'oha', '--version', OHA_VERSION, '--locked'], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CARGO_PROFILE_RELEASE_LTO: 'false', CARGO_PROFILE_RELEASE_CODEGEN_UNITS: '16' },
    });
    if (r.status !== 0) log('cargo install oha failed: falling back.');
    bin = oha();
  }
  const hasWrk = () => version('wrk', '-v')?.startsWith('wrk');
  if (!bin && !hasWrk() && process.env.BENCH_NO_INSTALL !== '1' && process.getuid?.() === 0 && version('apt-get', '--version')) {
    log('Trying wrk from Debian instead (apt-get install wrk)...');
    spawnSync('apt-get', ['install', '-y', '-q', 'wrk'], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (bin) tool = { name: 'oha', bin, version: version(bin) };
  else if (hasWrk()) tool = { name: 'wrk', bin: 'wrk', version: version('wrk', '-v') };
  else tool = { name: 'node', version: process.version };
  if (tool.name !== 'oha') {
    log(`Using ${tool.name} (${tool.version}) for closed-loop runs and the Node generator for open-loop and first-byte runs.`);
  }
  return tool;
}

/**
 * Runs one load. spec: {url, method, headers, body, mode: 'closed'|'open', concurrency, rate,
 * durationS, count, keysFile}. Closed: `concurrency` connections back to back for `durationS`
 * (or `count` requests). Open: `rate` requests/s for `durationS` (or `count` requests), latency
 * from each request's scheduled start.
 */
export async function runLoad(spec) {
  if (spec.keysFile || tool.name === 'node' || (tool.name === 'wrk' && (spec.mode === 'open' || spec.count))) {
    return runNode(spec);
  }
  return tool.name === 'oha' ? runOha(spec) : runWrk(spec);
}

function collect(child) {
  return new Promise((resolve, reject) => {
    let out = '', err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`load generator exited with ${code}: ${err.slice(-500)}`))));
  });
}

async function runOha(spec) {
  const args = ['--no-tui', '--output-format', 'json', '--disable-compression'];
  args.push('-m', spec.method ?? 'GET');
  for (const [k, v] of Object.entries(spec.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (spec.body !== undefined) args.push('-d', spec.body);
  if (spec.mode === 'open') {
    args.push('-q', String(spec.rate), '--latency-correction', '-c', String(spec.concurrency ?? 64));
  } else {
    args.push('-c', String(spec.concurrency ?? 1));
  }
  if (spec.count) args.push('-n', String(spec.count));
  else args.push('-z', `${spec.durationS}s`, '-w');
  args.push(spec.url);
  const out = JSON.parse(await collect(start(tool.bin, args, { cpu: CLIENT_CPU, stdio: ['ignore', 'pipe', 'pipe'] })));
  const pct = (p) => (p && Number.isFinite(p.p50) ? {
    p50: ms(p.p50), p90: ms(p.p90), p99: ms(p.p99),
  } : null);
  const statuses = out.statusCodeDistribution ?? {};
  const errors = out.errorDistribution ?? {};
  const requests = [...Object.values(statuses), ...Object.values(errors)].reduce((a, b) => a + b, 0);
  return {
    tool: 'oha',
    requests,
    rps: out.summary.requestsPerSec,
    elapsedS: out.summary.total,
    statuses,
    errors,
    latencyMs: pct(out.latencyPercentiles) && {
      ...pct(out.latencyPercentiles), max: ms(out.summary.slowest), mean: ms(out.summary.average),
    },
    firstByteMs: pct(out.firstBytePercentiles),
  };
}

const ms = (s) => (s === null || s === undefined || Number.isNaN(s) ? null : Math.round(s * 1e6) / 1e3);

async function runNode(spec) {
  const file = path.join(scratch, `load-${++seq}.json`);
  writeFileSync(file, JSON.stringify({
    url: spec.url, method: spec.method, headers: spec.headers, body: spec.body, keysFile: spec.keysFile,
    mode: spec.mode ?? 'closed', concurrency: spec.concurrency, rate: spec.rate,
    count: spec.count, durationMs: spec.durationS ? spec.durationS * 1000 : undefined,
  }));
  const child = start(process.execPath, [path.join(here, 'nodeload.mjs'), file], { cpu: CLIENT_CPU, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = JSON.parse(await collect(child));
  return {
    tool: 'node', requests: out.sent, rps: out.rps, elapsedS: out.elapsedS,
    statuses: out.statuses, errors: out.errors, latencyMs: out.latencyMs, firstByteMs: out.firstByteMs,
  };
}

async function runWrk(spec) {
  const script = path.join(scratch, `wrk-${++seq}.lua`);
  const lua = [`wrk.method = ${JSON.stringify(spec.method ?? 'GET')}`];
  if (spec.body !== undefined) lua.push(`wrk.body = ${JSON.stringify(spec.body)}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) lua.push(`wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  writeFileSync(script, lua.join('\n') + '\n');
  const c = spec.concurrency ?? 1;
  const out = await collect(start(tool.bin, ['-t1', `-c${c}`, `-d${Math.max(1, Math.round(spec.durationS))}s`, '--latency', '-s', script, spec.url],
    { cpu: CLIENT_CPU, stdio: ['ignore', 'pipe', 'pipe'] }));
  const dur = (text) => {
    const m = /([\d.]+)(us|ms|s)\b/.exec(text);
    return m ? Number(m[1]) * { us: 1e-3, ms: 1, s: 1e3 }[m[2]] : null;
  };
  const line = (re) => out.split('\n').find((l) => re.test(l)) ?? '';
  const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: (.*)/.exec(out)?.[1];
  return {
    tool: 'wrk',
    requests: total,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    elapsedS: spec.durationS,
    statuses: non2xx ? { '2xx': total - non2xx, 'non-2xx': non2xx } : { '2xx': total },
    errors: socketErrors ? { [socketErrors]: 1 } : {},
    latencyMs: {
      p50: dur(line(/^\s+50%/)), p90: dur(line(/^\s+90%/)), p99: dur(line(/^\s+99%/)),
      max: dur(line(/^\s+Latency/).split(/\s+/).filter(Boolean)[3] ?? ''), mean: dur(line(/^\s+Latency/)),
    },
    firstByteMs: null,
  };
}
