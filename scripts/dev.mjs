// `make dev`: the gateway on this machine with an embedded default. Starts the bundled mock
// upstream, seeds a demo key into local KV (only its SHA-256 is stored), then runs
// `wrangler dev` (workerd with local KV and Durable Objects persisted under .dev/state).
// wrangler runs the build (wrangler.toml `[build]`) with TEAMKEYS_BUILD=dev: a development build
// (no LTO, no wasm-opt), rebuilt in seconds when a source file changes.
// Ctrl-C stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { startMock } from '../tests/mock-upstream/server.mjs';

const PORT = Number(process.env.PORT ?? 8787);
const STATE = '.dev/state';
// Local-only demo key: printed here so it can be pasted; KV holds only its hash.
const DEMO_KEY = 'tk_demo_local_only_0123456789abcdef';
// Local-only bootstrap Admin token for the admin API (/admin/v1): the ADMIN_TOKEN secret.
const DEV_ADMIN_TOKEN = 'tka_dev_local_only_admin_token';
const wrangler = 'node_modules/.bin/wrangler';

const mock = await startMock({ port: Number(process.env.MOCK_PORT ?? 0) });
mkdirSync(STATE, { recursive: true });
// Local-only master key for stored credentials (32 bytes of 7s), plain-http upstreams for the mock,
// and jurisdictions ignored (workerd does not implement them).
const DEV_CREDENTIALS_KEYS = `dev:${Buffer.alloc(32, 7).toString('base64')}`;
writeFileSync(
  '.dev.vars',
  `UPSTREAM_API_KEY=sk-mock-upstream-credential\nADMIN_TOKEN=${DEV_ADMIN_TOKEN}\n` +
    `CREDENTIALS_KEYS=${DEV_CREDENTIALS_KEYS}\nALLOW_INSECURE_UPSTREAMS=true\nIGNORE_JURISDICTIONS=true\n`,
);

// A demo organisation and its Admin's token (shown once), made by the operator.
async function demoOrganisation(url) {
  const response = await fetch(`${url}/admin/v1/orgs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${DEV_ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'demo', admin: { name: 'demo admin' } }),
  });
  const body = await response.json();
  return response.status === 201 ? body : { error: body };
}

const record = {
  id: 'key_demo',
  name: 'demo key',
  description: 'seeded by make dev',
  creator: 'make-dev',
  project: 'demo',
  status: 'active',
  created_at: Date.now(),
  limits: { rpm: 60, tpm: 100000, spend: [{ period: 'daily', limit_micros: 5000000 }] },
};
const hash = createHash('sha256').update(DEMO_KEY).digest('hex');
const seeded = spawnSync(
  wrangler,
  ['kv', 'key', 'put', '--binding', 'KEYS', `key:${hash}`, JSON.stringify(record), '--local', '--persist-to', STATE],
  { stdio: ['ignore', 'ignore', 'inherit'] },
);
if (seeded.status !== 0) {
  await mock.close();
  process.exit(seeded.status ?? 1);
}

const dev = spawn(
  wrangler,
  ['dev', '--ip', '127.0.0.1', '--port', String(PORT), '--persist-to', STATE,
   '--var', `UPSTREAM_URL:http://127.0.0.1:${mock.port}`],
  { stdio: ['inherit', 'pipe', 'inherit'], env: { ...process.env, TEAMKEYS_BUILD: 'dev' } },
);
let announced = false;
dev.stdout.on('data', (chunk) => {
  process.stdout.write(chunk);
  if (!announced && /Ready on/.test(chunk.toString())) {
    announced = true;
    const url = `http://127.0.0.1:${PORT}`;
    announce(url);
  }
});
async function announce(url) {
  const demo = await demoOrganisation(url).catch((error) => ({ error: String(error) }));
  // The one-click sign-in (local only): the console takes the token from the fragment (which no
  // server sees), exchanges it for a session and wipes it from the address bar.
  const organisation = demo.error
    ? `Demo organisation: not created (${JSON.stringify(demo.error)})`
    : `Demo organisation ${demo.org.id}, its Admin's token (shown once): ${demo.admin.token}
  curl ${url}/admin/v1/me -H "Authorization: Bearer ${demo.admin.token}"
Console: ${url}/console/
  Sign in as the demo Admin in one click: ${url}/console/#signin=${encodeURIComponent(demo.admin.token)}`;
  console.log(`
teamkeys is running at ${url} (mock upstream on 127.0.0.1:${mock.port})
Demo key: ${DEMO_KEY}

  curl ${url}/openai/v1/chat/completions \\
  -H "Authorization: Bearer ${DEMO_KEY}" -H "content-type: application/json" \\
  -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

OpenAI SDK: base_url="${url}/openai/v1", api_key="${DEMO_KEY}"
Anthropic SDK: base_url="${url}/anthropic", api_key="${DEMO_KEY}"
Admin API: ${url}/admin/v1 (see /admin/v1/openapi.json), operator token: ${DEV_ADMIN_TOKEN}
  curl ${url}/admin/v1/orgs -H "Authorization: Bearer ${DEV_ADMIN_TOKEN}"
${organisation}
Press Ctrl-C to stop.
`);
}
const stop = async () => {
  dev.kill('SIGINT');
  await mock.close();
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
dev.on('exit', async (code) => {
  await mock.close();
  process.exit(code ?? 0);
});
