// A small HTTP/1.1 load generator in Node (node:http, keep-alive), for what oha cannot do
// (a different key on every request) and as the fallback when oha is missing.
//
//   node bench/lib/nodeload.mjs CONFIG.json   -> one JSON line on stdout (see `summary`)
//
// CONFIG: {url, method, headers, body, keysFile?, keyHeader?, mode, concurrency, rate, count,
//          durationMs, timeoutMs}
//   mode 'closed': `concurrency` loops, each sending its next request when the last one ends.
//   mode 'open':   requests scheduled at a fixed `rate` whatever the answers; latency counts
//                  from the scheduled instant (no coordinated omission).
//   Stops after `count` requests are sent or `durationMs`, whichever first.
//   keysFile: one key per line; request i sends key i mod n as `authorization: Bearer <key>`.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { summarize } from './stats.mjs';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const url = new URL(cfg.url);
const keys = cfg.keysFile ? readFileSync(cfg.keysFile, 'utf8').split('\n').filter(Boolean) : null;
const body = cfg.body === undefined ? undefined : Buffer.from(cfg.body);
const count = cfg.count ?? Infinity;
const durationMs = cfg.durationMs ?? 3_600_000;
const timeoutMs = cfg.timeoutMs ?? 30_000;
const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.mode === 'open' ? cfg.concurrency ?? 64 : cfg.concurrency ?? 1 });

const latencies = [];
const firstBytes = [];
const statuses = {};
const errors = {};
let sent = 0;
let done = 0;

function once(i, scheduledAt) {
  return new Promise((resolve) => {
    const headers = { ...cfg.headers };
    if (keys) headers[cfg.keyHeader ?? 'authorization'] = `Bearer ${keys[i % keys.length]}`;
    if (body) headers['content-length'] = body.length;
    const start = scheduledAt ?? performance.now();
    let first = null;
    const finish = (status, error) => {
      done++;
      if (error) errors[error] = (errors[error] ?? 0) + 1;
      else {
        statuses[status] = (statuses[status] ?? 0) + 1;
        latencies.push(performance.now() - start);
        if (first !== null) firstBytes.push(first - start);
      }
      resolve();
    };
    const req = http.request(
      { agent, host: url.hostname, port: url.port, path: url.pathname + url.search, method: cfg.method ?? 'GET', headers },
      (res) => {
        res.on('data', () => { if (first === null) first = performance.now(); });
        res.on('end', () => finish(res.statusCode));
        res.on('error', (e) => finish(0, e.code ?? e.message));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => finish(0, e.code ?? e.message));
    req.end(body);
  });
}

const t0 = performance.now();
const deadline = t0 + durationMs;
if (cfg.mode === 'open') {
  const interval = 1000 / cfg.rate;
  const inflight = new Set();
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < count && t0 + sent * interval <= now && now < deadline) {
        const p = once(sent, t0 + sent * interval);
        sent++;
        inflight.add(p);
        p.then(() => inflight.delete(p));
      }
      if (sent >= count || now >= deadline) return resolve();
      setTimeout(tick, Math.max(0, Math.min(5, t0 + sent * interval - now)));
    };
    tick();
  });
  await Promise.all(inflight);
} else {
  const loop = async () => {
    while (sent < count && performance.now() < deadline) {
      await once(sent++);
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency ?? 1 }, loop));
}
const elapsedS = (performance.now() - t0) / 1000;
agent.destroy();

process.stdout.write(JSON.stringify({
  tool: 'node',
  sent,
  completed: latencies.length,
  elapsedS,
  rps: latencies.length / elapsedS,
  statuses,
  errors,
  latencyMs: summarize(latencies),
  firstByteMs: summarize(firstBytes),
}) + '\n');
