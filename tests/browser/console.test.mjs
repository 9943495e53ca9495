// The console in headless Chromium against the built worker (Miniflare): the lifecycle walk from
// the operator to a member's key and back to the audit log, each role's controls, a boundary
// refusal shown on its field, sign-out revoking the session, CSRF refusals, phone width. Every
// page must end with no console error, no uncaught exception and no failed asset (an admin API
// refusal the test provokes is the API's answer, not a page error). Screenshots of each main
// screen go to target/console-screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { root } from '../e2e/worker-options.mjs';
import { sizes } from '../../scripts/console-build.mjs';
import { pollUntil } from '../e2e/harness.mjs';
import { admin, ADMIN_TOKEN, screenshot, signIn, startConsole } from './harness.mjs';

const CREDENTIALS_KEYS = `e2e:${Buffer.alloc(32, 9).toString('base64')}`;
let c;

before(async () => {
  c = await startConsole({ bindings: { CREDENTIALS_KEYS, IGNORE_JURISDICTIONS: 'true' } });
});
after(async () => {
  await c?.close();
});

/** A browser session of its own; `done()` asserts the page logged no error and closes it. */
async function browse(options) {
  const session = await c.open(options);
  session.page.on('response', (response) => {
    const path = new URL(response.url()).pathname;
    if (response.status() >= 500 || (response.status() >= 400 && !path.startsWith('/admin/v1/'))) {
      session.errors.push(`response: ${response.status()} ${path}`);
    }
  });
  session.done = async () => {
    // An admin API refusal (4xx) is logged by Chromium as a failed resource; it is checked above.
    const errors = session.errors.filter((e) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(e));
    assert.deepEqual(errors, [], 'the page logged errors');
    await session.context.close();
  };
  return session;
}

/** A new organisation (by the operator's API) and its Admin's token. */
async function organisation(name) {
  const made = await admin(c.api, ADMIN_TOKEN, 'POST', '/orgs', { name, admin: { name: `${name} admin` } });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  return { id: made.body.org.id, token: made.body.admin.token };
}

/** The secret shown once on the page (and that it says it will not be shown again). */
async function shownSecret(page) {
  await page.getByText('you will not see this again').first().waitFor();
  return page.locator('input[data-secret]').first().inputValue();
}

const go = (page, route) => page.goto(`${c.url}#/${route}`);

async function chat(key) {
  const response = await fetch(`${c.api}/openai/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 16, messages: [{ role: 'user', content: 'hello' }] }),
  });
  await response.arrayBuffer();
  return response.status;
}

test('lifecycle: operator → Admin → owner → member → key → calls → chart → rotate → disable → audit', async () => {
  // The operator creates the organisation and its first Admin.
  const operator = await browse();
  await signIn(operator.page, c.url, ADMIN_TOKEN);
  await go(operator.page, 'orgs');
  await operator.page.getByLabel('Name', { exact: true }).fill('acme');
  await operator.page.getByLabel("Its first Admin's name").fill('Ada');
  await operator.page.getByRole('button', { name: 'Create organisation' }).click();
  const adminToken = await shownSecret(operator.page);
  assert.match(adminToken, /^tka_/);
  await screenshot(operator.page, 'orgs');
  await operator.done();

  // The Admin sets the organisation's boundary, creates a project and its owner.
  const ada = await browse();
  await signIn(ada.page, c.url, adminToken);
  await screenshot(ada.page, 'overview-admin');
  await go(ada.page, 'org');
  await ada.page.getByRole('button', { name: 'Edit boundary' }).click();
  await ada.page.getByLabel('Requests per minute').fill('100');
  await ada.page.getByLabel('Spend cap, daily (USD)').fill('50');
  await ada.page.getByRole('button', { name: 'Save boundary' }).click();
  await ada.page.getByText('$50.00').waitFor();
  await screenshot(ada.page, 'org');
  await go(ada.page, 'projects');
  await ada.page.getByRole('button', { name: 'New project' }).click();
  await ada.page.getByLabel('Name', { exact: true }).fill('search');
  await ada.page.getByLabel('Requests per minute').fill('60');
  await ada.page.getByRole('button', { name: 'Create project' }).click();
  await ada.page.getByRole('heading', { name: 'search', level: 1 }).waitFor();
  const project = new URL(ada.page.url()).hash.split('/')[2];
  assert.match(project, /^prj_/);
  await go(ada.page, 'principals');
  await ada.page.getByRole('button', { name: 'New person' }).click();
  await ada.page.getByLabel('Name', { exact: true }).fill('Olivia');
  await ada.page.getByLabel('Role').selectOption('project_owner');
  await ada.page.getByLabel('search').check();
  await ada.page.getByRole('button', { name: 'Create', exact: true }).click();
  const ownerToken = await shownSecret(ada.page);
  await ada.page.getByRole('button', { name: 'Done' }).click();
  await ada.page.locator('tr', { hasText: 'Olivia' }).waitFor();
  await screenshot(ada.page, 'people');

  // The owner signs in and creates a member of the project.
  const olivia = await browse();
  await signIn(olivia.page, c.url, ownerToken);
  await go(olivia.page, `projects/${project}`);
  await olivia.page.getByRole('button', { name: 'New person in this project' }).click();
  await olivia.page.getByLabel('Name', { exact: true }).fill('Max');
  assert.deepEqual(await olivia.page.getByLabel('Role').locator('option').allTextContents(), ['member'], 'an owner creates members only');
  await olivia.page.getByRole('button', { name: 'Create', exact: true }).click();
  const memberToken = await shownSecret(olivia.page);
  await olivia.page.getByRole('button', { name: 'Done' }).click();
  await olivia.page.locator('tr[data-member]', { hasText: 'Max' }).waitFor();
  await screenshot(olivia.page, 'project');
  await olivia.done();

  // The member signs in, creates a key and copies it.
  const max = await browse();
  await signIn(max.page, c.url, memberToken);
  await go(max.page, 'keys');
  await max.page.getByRole('button', { name: 'New key' }).click();
  await max.page.getByLabel('Name', { exact: true }).fill('prod');
  await max.page.getByLabel('Requests per minute').fill('30');
  await max.page.getByRole('button', { name: 'Create key' }).click();
  const key = await shownSecret(max.page);
  assert.match(key, /^tk_/);
  await max.page.getByRole('button', { name: 'Copy' }).click();
  await max.page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await max.page.evaluate(() => navigator.clipboard.readText()), key);
  await max.page.locator('tr[data-key]', { hasText: 'prod' }).waitFor();
  await screenshot(max.page, 'keys');

  // The key makes calls through the gateway; the key's page shows them.
  for (let i = 0; i < 3; i++) assert.equal(await chat(key), 200);
  await max.page.getByRole('link', { name: 'Open prod' }).click();
  const requests = await pollUntil(
    async () => {
      await max.page.reload();
      const chart = max.page.locator('#chart-requests');
      await chart.waitFor();
      return Number(await chart.getAttribute('data-total'));
    },
    (total) => total >= 3,
    { timeoutMs: 10000, intervalMs: 300 },
  );
  assert.equal(requests, 3, 'the requests chart counts the three calls');
  assert.ok(Number(await max.page.locator('#chart-tokens').getAttribute('data-total')) > 0, 'tokens charted');
  assert.ok(Number(await max.page.locator('#chart-spend').getAttribute('data-total')) > 0, 'spend charted');
  await max.page.locator('.headroom [data-scope="rpm"]').waitFor();
  await screenshot(max.page, 'key');

  // Rotate with a grace period: both secrets work; then disable: neither does.
  await max.page.getByRole('button', { name: 'Rotate' }).click();
  await max.page.getByLabel('The old secret keeps working for').selectOption('3600');
  await max.page.getByRole('button', { name: 'Rotate now' }).click();
  const rotated = await shownSecret(max.page);
  assert.notEqual(rotated, key);
  await max.page.getByText('The previous secret keeps working until').waitFor();
  assert.equal(await chat(key), 200, 'the old secret works during the grace period');
  assert.equal(await chat(rotated), 200, 'the new secret works');
  await max.page.getByRole('button', { name: 'Disable' }).click();
  await max.page.locator('[data-status="disabled"]').waitFor();
  assert.equal(await chat(rotated), 401, 'a disabled key is refused');
  await max.done();

  // The Admin's audit log shows each step, with before and after.
  await go(ada.page, 'audit');
  for (const action of ['org.policy.write', 'projects.create', 'principals.create', 'keys.create', 'keys.rotate', 'keys.disable']) {
    await ada.page.locator(`li[data-action="${action}"]`).first().waitFor();
  }
  const disabled = ada.page.locator('li[data-action="keys.disable"]').first();
  await disabled.locator('summary').click();
  assert.match(await disabled.locator('.before-after').innerText(), /"status": "active"[\s\S]*"status": "disabled"/);
  await screenshot(ada.page, 'audit');
  await ada.done();
});

/**
 * An organisation with a project, its owner, a member with a key, another member without, and
 * Finance, made through the API; each principal's token.
 */
async function cast(name) {
  const org = await organisation(name);
  const as = (method, path, body) => admin(c.api, org.token, method, path, body);
  const project = (await as('POST', '/projects', { name: 'web' })).body.id;
  const person = async (who, role) => (await as('POST', '/principals', { name: who, role, projects: role === 'finance' ? [] : [project] })).body;
  const owner = await person('Owen', 'project_owner');
  const member = await person('Mia', 'member');
  const other = await person('Oscar', 'member');
  const finance = await person('Fay', 'finance');
  const key = await admin(c.api, member.token, 'POST', '/keys', { name: 'mia-key', project, limits: { rpm: 10 } });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { org, project, owner, member, other, finance, key: key.body };
}

const navOf = async (page) => page.getByRole('navigation', { name: 'Console' }).getByRole('link').allTextContents();
const buttonsOf = async (page) => page.getByRole('group', { name: 'Key actions' }).getByRole('button').allTextContents();

test('role walk: each role sees exactly the controls its permissions allow', async () => {
  const s = await cast('roles');
  const roles = [
    ['operator', ADMIN_TOKEN, ['Overview', 'Keys', 'Projects', 'People', 'Organisation', 'Audit log', 'Webhooks', 'Organisations', 'Account']],
    ['admin', s.org.token, ['Overview', 'Keys', 'Projects', 'People', 'Organisation', 'Audit log', 'Webhooks', 'Account']],
    ['owner', s.owner.token, ['Overview', 'Keys', 'Projects', 'People', 'Account']],
    ['member', s.member.token, ['Overview', 'Keys', 'Projects', 'Account']],
    ['other-member', s.other.token, ['Overview', 'Keys', 'Projects', 'Account']],
    ['finance', s.finance.token, ['Overview', 'Keys', 'Projects', 'Account']],
  ];
  // Key actions on the member's key, and the create buttons, per role (null: the key is not readable).
  const keyButtons = {
    admin: ['Edit', 'Disable', 'Rotate', 'Delete'],
    owner: ['Edit', 'Disable', 'Rotate', 'Delete'],
    member: ['Edit', 'Disable', 'Rotate', 'Delete'],
    'other-member': null,
    finance: [],
  };
  const creates = {
    admin: { key: true, project: true, person: true },
    owner: { key: true, project: false, person: true },
    member: { key: true, project: false, person: false },
    'other-member': { key: true, project: false, person: false },
    finance: { key: false, project: false, person: false },
  };
  for (const [role, token, nav] of roles) {
    const b = await browse();
    await signIn(b.page, c.url, token);
    assert.deepEqual(await navOf(b.page), nav, `${role}: navigation`);
    await screenshot(b.page, `overview-${role}`);
    if (role !== 'operator') {
      await go(b.page, 'keys');
      await b.page.locator('table.keys').waitFor();
      assert.equal(await b.page.getByRole('button', { name: 'New key' }).count(), creates[role].key ? 1 : 0, `${role}: New key`);
      const rows = await b.page.locator('table.keys tbody tr[data-key]').count();
      assert.equal(rows, keyButtons[role] === null ? 0 : 1, `${role}: keys listed`);
      await go(b.page, `keys/${s.key.id}`);
      if (keyButtons[role] === null) {
        await b.page.getByRole('alert').waitFor();
        assert.match(await b.page.getByRole('alert').innerText(), /Missing permission 'keys.read'/, `${role}: another's key is refused`);
      } else {
        await b.page.getByRole('heading', { name: 'mia-key', level: 1 }).waitFor();
        assert.deepEqual(await buttonsOf(b.page), keyButtons[role], `${role}: key actions`);
      }
      await go(b.page, 'projects');
      await b.page.locator(`tr[data-project="${s.project}"]`).waitFor();
      assert.equal(await b.page.getByRole('button', { name: 'New project' }).count(), creates[role].project ? 1 : 0, `${role}: New project`);
      await go(b.page, `projects/${s.project}`);
      await b.page.getByRole('heading', { name: 'Members' }).waitFor();
      const edits = await b.page.getByRole('button', { name: /^Edit (boundary|ceiling)$/ }).allTextContents();
      const expectedEdits = { admin: ['Edit boundary', 'Edit ceiling'], owner: ['Edit boundary'] }[role] ?? [];
      assert.deepEqual(edits, expectedEdits, `${role}: project edits`);
      assert.equal(await b.page.getByRole('button', { name: 'New person in this project' }).count(), creates[role].person ? 1 : 0, `${role}: new person`);
      assert.equal(await b.page.getByRole('form', { name: 'Add a member' }).count(), role === 'admin' || role === 'owner' ? 1 : 0, `${role}: add member`);
    }
    await b.done();
  }
});

test('a boundary refusal is shown on the field it names', async () => {
  const s = await cast('bounds');
  const policy = await admin(c.api, s.org.token, 'PUT', '/org/policy', { limits: { rpm: 100, spend: [{ period: 'daily', limit_micros: 5000000 }] } });
  assert.equal(policy.status, 200, JSON.stringify(policy.body));
  const b = await browse();
  await signIn(b.page, c.url, s.member.token);
  await go(b.page, 'keys');
  await b.page.getByRole('button', { name: 'New key' }).click();
  await b.page.getByLabel('Name', { exact: true }).fill('too-fast');
  await b.page.getByLabel('Requests per minute').fill('500');
  await b.page.getByRole('button', { name: 'Create key' }).click();
  const rpm = b.page.getByLabel('Requests per minute');
  await b.page.locator('[data-field="key.limits.rpm"]').waitFor();
  assert.equal(await rpm.getAttribute('aria-invalid'), 'true');
  assert.match(await b.page.locator('[data-field="key.limits.rpm"]').innerText(), /limits\.rpm: 500 is above the organisation/);
  assert.ok(await rpm.evaluate((input) => input === document.activeElement), 'the refused field has the focus');
  assert.equal(await b.page.locator('.field-error').count(), 1, 'only that field is marked');
  await screenshot(b.page, 'boundary-refusal');

  // A spend cap above the organisation's: `limits.spend[daily].limit_micros` names the daily cap's field.
  await rpm.fill('');
  await b.page.getByLabel('Spend cap, daily (USD)').fill('9');
  await b.page.getByRole('button', { name: 'Create key' }).click();
  await b.page.locator('[data-field="key.limits.spend.daily"]').waitFor();
  assert.equal(await b.page.getByLabel('Spend cap, daily (USD)').getAttribute('aria-invalid'), 'true');
  assert.equal(await rpm.getAttribute('aria-invalid'), null, 'the earlier refusal is cleared');
  await b.done();

  // A project's boundary above the organisation's: the error sits on the project form's field.
  const o = await browse();
  await signIn(o.page, c.url, s.owner.token);
  await go(o.page, `projects/${s.project}`);
  await o.page.getByRole('button', { name: 'Edit boundary' }).click();
  await o.page.getByLabel('Requests per minute').fill('1000');
  await o.page.getByRole('button', { name: 'Save boundary' }).click();
  await o.page.locator('[data-field="boundary.limits.rpm"]').waitFor();
  assert.match(await o.page.locator('[data-field="boundary.limits.rpm"]').innerText(), /boundary\.limits\.rpm/);
  await o.done();
});

test('sign-out revokes the session; sign-out everywhere ends every session', async () => {
  const s = await cast('signout');
  const b = await browse();
  await signIn(b.page, c.url, s.member.token);
  const cookies = await b.context.cookies();
  const session = cookies.find((cookie) => cookie.httpOnly);
  assert.ok(session, 'an HttpOnly session cookie');
  assert.equal(session.sameSite, 'Strict');
  const cookie = `${session.name}=${session.value}`;
  const whoami = () => fetch(`${c.api}/admin/v1/sessions/current`, { headers: { cookie } }).then((r) => r.status);
  assert.equal(await whoami(), 200);
  assert.equal(await b.page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage) + document.cookie), '{}{}', 'the page keeps nothing');
  await b.page.getByRole('button', { name: 'Sign out' }).click();
  await b.page.getByRole('heading', { name: 'Sign in to teamkeys' }).waitFor();
  await screenshot(b.page, 'signin');
  assert.equal(await whoami(), 401, 'the old cookie no longer works');
  await b.done();

  const one = await browse();
  const two = await browse();
  await signIn(one.page, c.url, s.member.token);
  await signIn(two.page, c.url, s.member.token);
  await go(one.page, 'account');
  await screenshot(one.page, 'account');
  await one.page.getByRole('button', { name: 'Sign out everywhere' }).click();
  await one.page.getByRole('button', { name: 'Yes, sign out everywhere' }).click();
  await one.page.getByRole('heading', { name: 'Sign in to teamkeys' }).waitFor();
  await two.page.reload();
  await two.page.getByRole('heading', { name: 'Sign in to teamkeys' }).waitFor();
  await one.done();
  await two.done();
});

test('a state-changing call without the CSRF token, or from another origin, is refused', async () => {
  const s = await cast('csrf');
  const b = await browse();
  await signIn(b.page, c.url, s.org.token);
  const missing = await b.page.evaluate(async () => {
    const r = await fetch('/admin/v1/projects', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"sneaky"}' });
    return { status: r.status, body: await r.json() };
  });
  assert.equal(missing.status, 403);
  assert.equal(missing.body.error.code, 'csrf_failed');
  const session = (await b.context.cookies()).find((cookie) => cookie.httpOnly);
  const csrf = (await (await fetch(`${c.api}/admin/v1/sessions/current`, { headers: { cookie: `${session.name}=${session.value}` } })).json()).csrf_token;
  const foreign = await fetch(`${c.api}/admin/v1/projects`, {
    method: 'POST',
    headers: { cookie: `${session.name}=${session.value}`, 'x-csrf-token': csrf, origin: 'https://evil.example', 'content-type': 'application/json' },
    body: '{"name":"sneaky"}',
  });
  assert.equal(foreign.status, 403, 'another origin is refused even with the token');
  const projects = await admin(c.api, s.org.token, 'GET', '/projects');
  assert.ok(!projects.body.data.some((p) => p.name === 'sneaky'), 'nothing was created');
  await b.done();
});

test('keyboard only: sign in, move between screens, open a key', async () => {
  const s = await cast('keyboard');
  const b = await browse();
  await b.page.goto(c.url);
  await b.page.getByRole('heading', { name: 'Sign in to teamkeys' }).waitFor();
  await b.page.keyboard.press('Tab');
  assert.equal(await b.page.evaluate(() => document.activeElement.getAttribute('type')), 'password', 'Tab reaches the token field first');
  await b.page.keyboard.type(s.member.token);
  await b.page.keyboard.press('Enter');
  await b.page.getByRole('navigation', { name: 'Console' }).waitFor();
  // Skip link, then the header's button, then the navigation: Overview, Keys.
  const focusedText = () => b.page.evaluate(() => document.activeElement.textContent);
  for (let i = 0; i < 10 && (await focusedText()) !== 'Keys'; i++) await b.page.keyboard.press('Tab');
  assert.equal(await focusedText(), 'Keys');
  await b.page.keyboard.press('Enter');
  await b.page.getByRole('heading', { name: 'Keys', level: 1 }).waitFor();
  for (let i = 0; i < 30 && (await focusedText()) !== 'mia-key'; i++) await b.page.keyboard.press('Tab');
  assert.equal(await focusedText(), 'mia-key', 'the key list is reachable by Tab');
  await b.page.keyboard.press('Enter');
  await b.page.getByRole('heading', { name: 'mia-key', level: 1 }).waitFor();
  await b.done();
});

test('phone width: every main screen fits 390 px without sideways scrolling', async () => {
  const s = await cast('phone');
  const b = await browse({ width: 390, height: 844 });
  await signIn(b.page, c.url, s.org.token);
  for (const route of ['', 'keys', `keys/${s.key.id}`, 'projects', `projects/${s.project}`, 'principals', 'org', 'audit', 'webhooks', 'account']) {
    await go(b.page, route);
    await b.page.locator('main h1').first().waitFor();
    await b.page.waitForLoadState('networkidle');
    const overflow = await b.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `#/${route} overflows by ${overflow}px`);
    if (route === 'keys' || route === '') await screenshot(b.page, `phone-${route || 'overview'}`);
  }
  // Webhooks: an endpoint (its secret shown once) and its deliveries.
  await go(b.page, 'webhooks');
  await b.page.getByLabel('URL').fill('http://127.0.0.1:9/hook');
  await b.page.getByLabel('key.created').check();
  await b.page.getByRole('button', { name: 'Add endpoint' }).click();
  assert.match(await shownSecret(b.page), /\S{16,}/);
  const endpoint = b.page.locator('li[data-webhook]', { hasText: '127.0.0.1:9/hook' });
  await endpoint.getByRole('button', { name: 'Deliveries' }).click();
  await endpoint.locator('table').waitFor();
  await screenshot(b.page, 'webhooks');
  await b.done();
});

test('the built console is small, hashed, and has no development sign-in', async () => {
  const { files, total } = sizes();
  assert.ok(total.gzip < 40 * 1024, `the console is ${total.gzip} B gzip; keep it under 40 KB`);
  assert.ok(files.some((f) => /^assets\/app-[A-Z0-9]+\.js$/.test(f.name)), 'content-hashed script');
  const script = files.find((f) => f.name.endsWith('.js')).name;
  assert.doesNotMatch(readFileSync(path.join(root, 'build/assets/console', script), 'utf8'), /signin=/, 'make build leaves out #signin=');
  const page = await fetch(c.url);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-security-policy'), /script-src 'self'/);
  assert.match(await page.text(), new RegExp(script.replace('.', '\\.')));
});
