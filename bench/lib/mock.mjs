// The mock upstream as a process of its own for the benchmarks (so it can be pinned to a core
// and its CPU read apart from the gateway's): tests/mock-upstream/server.mjs, plus
//   - its request log cleared every second (it keeps every request otherwise: memory grows),
//   - BENCH_CHUNK_DELAY_MS as the default SSE chunk delay (the same for every path measured),
//   - GET /__bench/stats -> {served, inflight, maxInflight}; DELETE /__bench/stats resets them.
// Prints one line {"listening":port} like the mock's own CLI.
import http from 'node:http';

const chunkDelay = process.env.BENCH_CHUNK_DELAY_MS;
let served = 0, inflight = 0, maxInflight = 0;

const createServer = http.createServer;
http.createServer = (handler) => createServer((req, res) => {
  if (req.url.startsWith('/__bench/')) {
    if (req.method === 'DELETE') { served = 0; maxInflight = inflight; }
    res.writeHead(200, { 'content-type': 'application/json' });
    return res.end(JSON.stringify({ served, inflight, maxInflight }));
  }
  served++;
  inflight++;
  if (inflight > maxInflight) maxInflight = inflight;
  res.once('close', () => { inflight--; });
  if (chunkDelay !== undefined && req.headers['x-mock-chunk-delay-ms'] === undefined) {
    req.headers['x-mock-chunk-delay-ms'] = chunkDelay;
  }
  handler(req, res);
});

const { startMock } = await import('../../tests/mock-upstream/server.mjs');
const mock = await startMock({ port: Number(process.env.MOCK_PORT ?? 0) });
setInterval(() => { mock.requests.length = 0; }, 1000).unref();
process.stdout.write(JSON.stringify({ listening: mock.port }) + '\n');
const stop = () => {
  setTimeout(() => process.exit(0), 1000).unref(); // open keep-alive sockets must not keep it alive
  mock.close().finally(() => process.exit(0));
};
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, stop);
