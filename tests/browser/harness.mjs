// The browser harness: Debian's Chromium (/usr/bin/chromium, installed by scripts/setup.sh; never a
// downloaded browser) driven by playwright-core, against the built worker under Miniflare
// (tests/e2e/harness.mjs) serving the console from build/assets/console/. Every page records its
// console errors and uncaught exceptions; `screenshot` writes target/console-screenshots/<name>.png.
import { chromium } from 'playwright-core';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ADMIN_TOKEN, startGateway } from '../e2e/harness.mjs';
import { root } from '../e2e/worker-options.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = path.join(root, 'target/console-screenshots');
export { ADMIN_TOKEN };

/** The gateway (as tests/e2e's startGateway) and a headless Chromium; `close()` ends both. */
export async function startConsole(options = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run 'make setup' (it installs Debian's chromium)`);
  if (!existsSync(path.join(root, 'build/assets/console/index.html'))) throw new Error("the console is not built: run 'make build'");
  mkdirSync(SCREENSHOTS, { recursive: true });
  // The assets are opt-in in the e2e harness (see worker-options.mjs); the console needs them.
  const gateway = await startGateway({ ...options, assets: true });
  // Secure cookies need a secure context: http://localhost is one.
  const base = gateway.base.replace('127.0.0.1', 'localhost');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  return {
    gateway,
    browser,
    /** The browser's origin (http://localhost:<port>: a secure context, so Secure cookies work). */
    base,
    /** The same worker for calls from the test itself. */
    api: gateway.base,
    url: `${base}/console/`,
    /** A new browser context (its own cookies) at `width`×`height`, its page, and its errors. */
    async open({ width = 1280, height = 900 } = {}) {
      const context = await browser.newContext({ viewport: { width, height }, baseURL: base });
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
      const page = await context.newPage();
      const errors = [];
      page.on('console', (message) => message.type() === 'error' && errors.push(`console: ${message.text()}`));
      page.on('pageerror', (error) => errors.push(`page: ${error.message}`));
      return { context, page, errors };
    },
    async close() {
      await browser.close();
      await gateway.close();
    },
  };
}

/**
 * Signs `page` in with `token` through the sign-in form and waits for the navigation; refused
 * answers (a 401 the test provokes on purpose) are not console errors of the page's own.
 */
export async function signIn(page, url, token) {
  await page.goto(url);
  await page.getByLabel('Admin API token').fill(token);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('navigation', { name: 'Console' }).waitFor();
}

/** A full-page screenshot of `page` as target/console-screenshots/<name>.png. */
export async function screenshot(page, name) {
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Calls the admin API with a bearer token (test setup, not the console). */
export async function admin(base, token, method, p, body) {
  const response = await fetch(`${base}/admin/v1${p}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}
