// A webhook receiver for the end-to-end tests: a Node http server on 127.0.0.1 that records every
// delivery and answers 500 to the first `failFirst` attempts of each event id, then 200.
// `verifySignature` is the check a real receiver does (see the README).
import http from 'node:http';
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Whether `header` (`t=<unix s>,v1=<hex>`) signs `body` with `secret` and `t` is within
 * `toleranceS` of now. The MAC is HMAC-SHA256 keyed with the secret string over `${t}.${body}`.
 */
export function verifySignature(secret, header, body, { toleranceS = 300, nowS = Date.now() / 1000 } = {}) {
  const fields = new Map((header ?? '').split(',').map((part) => {
    const eq = part.indexOf('=');
    return [part.slice(0, eq), part.slice(eq + 1)];
  }));
  const t = Number(fields.get('t'));
  const v1 = fields.get('v1') ?? '';
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(v1, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Starts a receiver. Returns { port, url, requests, delivered(), waitFor(predicate), close() };
 * each request is recorded as { id, signature, contentType, body, status }.
 */
export async function startReceiver({ failFirst = 0, port = 0 } = {}) {
  const requests = [];
  const attemptsById = new Map();
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const id = req.headers['teamkeys-webhook-id'];
      const attempt = (attemptsById.get(id) ?? 0) + 1;
      attemptsById.set(id, attempt);
      const status = attempt <= failFirst ? 500 : 200;
      requests.push({
        id,
        signature: req.headers['teamkeys-signature'],
        contentType: req.headers['content-type'],
        body: Buffer.concat(chunks).toString('utf8'),
        status,
      });
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'try again');
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const bound = server.address().port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}/hooks`,
    requests,
    delivered: () => requests.filter((r) => r.status === 200),
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Polls `predicate` (sync or async) every 25 ms until it is truthy; throws after `timeoutMs`. */
export async function waitFor(predicate, { timeoutMs = 10_000, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
