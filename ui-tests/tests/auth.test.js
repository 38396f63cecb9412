// Who may use the Publisher: an unauthenticated visit is sent to the login
// page (and back after logging in), API calls and /metrics without
// credentials get 401, a forged cross-site POST that carries the session
// cookie but not the CSRF token is refused, and logging out ends the session.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startSluice, httpApi, freePort, ADMIN_PASSWORD } from '../lib/sluice.js';
import { launch, logIn, textOf } from '../lib/browser.js';

let sluice;
let browser;
let api;

before(async () => {
  sluice = await startSluice();
  browser = await launch();
  api = await sluice.createApi(httpApi(sluice, { name: 'Orders', context: '/orders', maxTps: { production: 5 } }));
});

after(async () => {
  const errors = browser?.pageErrors ?? [];
  await browser?.close();
  await sluice?.stop();
  assert.deepEqual(errors, [], 'no script errors or CSP violations in any page');
});

test('an unauthenticated visit goes to the login page, and back to the page after login', async () => {
  const page = await browser.newPage();
  const target = `/publisher/apis/${api.id}/runtime`;
  const response = await page.goto(`${sluice.admin}${target}`);
  assert.equal(new URL(page.url()).pathname, '/publisher/login');
  assert.equal(new URL(page.url()).searchParams.get('next'), target);
  assert.equal(response.status(), 200);
  assert.equal(await page.locator('meta[name="csrf-token"]').count(), 0, 'no application page was served');

  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Log in' }).click();
  assert.equal(await textOf(page.getByRole('alert')), 'Wrong user name or password.');

  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${sluice.admin}${target}`);
  await page.getByRole('group', { name: 'Backend Throughput' }).waitFor();

  const [cookie] = (await browser.cookies(sluice.admin)).filter((c) => c.name === 'sluice_session');
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.equal(await page.evaluate(() => document.cookie), '', 'scripts cannot read the session');
  await page.close();
});

test('API calls and /metrics without credentials get 401', async () => {
  for (const path of ['/metrics', '/api/am/publisher/v4/apis', `/api/am/publisher/v4/apis/${api.id}`, '/api/am/devportal/v3/applications', '/publisher/session']) {
    const reply = await fetch(`${sluice.admin}${path}`);
    assert.equal(reply.status, 401, path);
  }
  const create = await fetch(`${sluice.admin}/api/am/publisher/v4/apis`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(httpApi(sluice, { name: 'X', context: '/x' })),
  });
  assert.equal(create.status, 401);
  const page = await fetch(`${sluice.admin}/publisher/apis`, { redirect: 'manual' });
  assert.equal(page.status, 303);
  assert.equal(page.headers.get('location'), '/publisher/login?next=%2Fpublisher%2Fapis');
});

test('a forged cross-site POST carrying the session cookie is refused', async () => {
  const page = await browser.newPage();
  await logIn(page, sluice);
  const before = await sluice.rest('GET', '/api/am/publisher/v4/apis');

  // A hostile page on another origin (same host, other port: "same-site", so
  // even SameSite=Strict lets the cookie go along).
  const port = await freePort();
  const forged = JSON.stringify(httpApi(sluice, { name: 'Forged', context: '/forged' }));
  const hostile = createServer((_, response) => {
    response.setHeader('content-type', 'text/html');
    const [head, tail] = [forged.slice(0, -1) + ',"pad":"', '"}'];
    response.end(`<!doctype html><form id="f" method="post" enctype="text/plain"
      action="${sluice.admin}/api/am/publisher/v4/apis">
      <input type="hidden" name='${head.replace(/'/g, '&#39;')}' value='${tail}'></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((resolve) => hostile.listen(port, '127.0.0.1', resolve));
  try {
    const sent = page.waitForRequest((request) => request.method() === 'POST' && request.url().endsWith('/api/am/publisher/v4/apis'));
    const answered = page.waitForResponse((response) => response.request().method() === 'POST' && response.url().endsWith('/api/am/publisher/v4/apis'));
    await page.goto(`http://127.0.0.1:${port}/`);
    const headers = await (await sent).allHeaders();
    assert.match(headers.cookie || '', /sluice_session=/, 'the browser attached the session cookie');
    assert.equal(headers['x-csrf-token'], undefined);
    assert.equal(headers.origin, `http://127.0.0.1:${port}`);
    const response = await answered;
    assert.equal(response.status(), 403);
    assert.match((await response.json()).description, /cross-origin request refused/);
  } finally {
    hostile.close();
  }
  const afterward = await sluice.rest('GET', '/api/am/publisher/v4/apis');
  assert.equal(afterward.json.count, before.json.count, 'nothing was created');

  // The same change from the Publisher itself, with its token, goes through.
  await page.goto(`${sluice.admin}/publisher/apis`);
  const status = await page.evaluate(async (body) => {
    const token = document.querySelector('meta[name="csrf-token"]').content;
    const reply = await fetch('/api/am/publisher/v4/apis', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token }, body,
    });
    const without = await fetch('/api/am/publisher/v4/apis', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body,
    });
    return [reply.status, without.status];
  }, forged);
  assert.deepEqual(status, [201, 403], 'with the token: created; same origin without it: refused');
  await page.close();
});

test('logging out ends the session', async () => {
  const page = await browser.newPage();
  await logIn(page, sluice);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.waitForURL(/\/publisher\/login/);
  assert.equal((await browser.cookies(sluice.admin)).filter((c) => c.name === 'sluice_session').length, 0);
  await page.goto(`${sluice.admin}/publisher/applications`);
  assert.equal(new URL(page.url()).pathname, '/publisher/login');
  await page.close();
});
