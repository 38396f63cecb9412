// Bad values on the Runtime page (negative, fractional, Specify with every
// count empty) are shown next to their field and save nothing; the server's 400 is shown next to the field it names; leaving a
// page with unsaved changes asks first.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice, httpApi } from '../lib/sluice.js';
import { launch, logIn, openRuntime, textOf } from '../lib/browser.js';

let sluice;
let browser;
let api;
let aiApi;

before(async () => {
  sluice = await startSluice();
  browser = await launch();
  api = await sluice.createApi(httpApi(sluice, {
    name: 'Ledger',
    context: '/ledger',
    maxTps: { production: 10, productionTimeUnit: 'SECOND', sandbox: 5, sandboxTimeUnit: 'MINUTE' },
  }));
  aiApi = await sluice.createApi(httpApi(sluice, {
    name: 'Assistant',
    context: '/assistant',
    extra: { subtypeConfiguration: { subtype: 'AIAPI', configuration: { llmProviderName: 'Anthropic' } } },
  }));
});

after(async () => {
  const errors = browser?.pageErrors ?? [];
  await browser?.close();
  await sluice?.stop();
  assert.deepEqual(errors, [], 'no script errors or CSP violations in any page');
});

/** A page that counts the changes it sends to the REST API. */
async function countingPage() {
  const page = await browser.newPage();
  const writes = [];
  page.on('request', (request) => {
    if (request.url().includes('/api/am/') && request.method() !== 'GET') writes.push(`${request.method()} ${request.url()}`);
  });
  return { page, writes };
}

async function errorOf(page, inputId) {
  const message = await textOf(page.locator(`#${inputId}-error`));
  const input = page.locator(`#${inputId}`);
  assert.equal(await input.getAttribute('aria-invalid'), 'true', `${inputId} marked invalid`);
  const described = await input.getAttribute('aria-describedby');
  assert.ok(described.split(' ').includes(`${inputId}-error`), 'the message is tied to the field');
  return message;
}

test('a negative count, a fraction or an empty count with Specify shows the error and saves nothing', async () => {
  const before = await sluice.getApi(api.id);
  const { page, writes } = await countingPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Ledger');
  assert.equal(await page.getByLabel('Specify').isChecked(), true);

  const production = page.getByLabel('Production: requests per time unit');
  const sandbox = page.getByLabel('Sandbox: requests per time unit');
  await production.fill('-5');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.equal(await errorOf(page, 'production-count'), 'Must not be negative.');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'production-count', 'focus moves to the field');

  await production.fill('1.5');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.equal(await errorOf(page, 'production-count'), 'Must be a whole number.');

  await sandbox.fill('-1');
  await production.fill('8');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.equal(await errorOf(page, 'sandbox-count'), 'Must not be negative.');
  assert.equal(await page.locator('#production-count-error').count(), 0, 'the fixed field is clear');

  await production.fill('');
  await sandbox.fill('');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await errorOf(page, 'production-count'), /Enter at least one limit .* or choose Unlimited/);

  assert.deepEqual(writes, [], 'no change was sent');
  assert.deepEqual(await sluice.getApi(api.id), before, 'the definition is unchanged');
  await page.close();
});

test('a negative token count of an AI API shows the error next to that field', async () => {
  const before = await sluice.getApi(aiApi.id);
  const { page, writes } = await countingPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Assistant');
  await page.getByLabel('Specify').check();
  await page.getByLabel('Production: requests per time unit').fill('10');
  await page.getByLabel('Sandbox: requests per time unit').fill('10');
  await page.getByLabel('Enforce token limits').check();
  await page.getByLabel('Sandbox: completion tokens per time unit').fill('-100');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.equal(await errorOf(page, 'sandbox-completion-tokens'), 'Must not be negative.');
  assert.deepEqual(writes, []);
  assert.deepEqual(await sluice.getApi(aiApi.id), before);
  await page.close();
});

test("the server's 400 is shown next to the field it names", async () => {
  const { page, writes } = await countingPage();
  await logIn(page, sluice, '/publisher/apis/new');
  await page.getByLabel('Name').fill('Spaces');
  await page.getByLabel('Version').fill('v1');
  await page.getByLabel('Context').fill('/has space');
  await page.getByLabel('Production endpoint URL').fill(`${sluice.mock}/x`);
  await page.getByRole('button', { name: 'Create' }).click();
  const message = await errorOf(page, 'api-context');
  assert.match(message, /segment "has space" is not allowed/);
  assert.equal(writes.length, 1, 'the server was asked once');
  const list = await sluice.rest('GET', '/api/am/publisher/v4/apis?query=name:Spaces');
  assert.equal(list.json.count, 0, 'nothing was created');
  await page.close();
});

test('leaving with unsaved changes asks first, in the app and when closing the page', async () => {
  const page = await browser.newPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Ledger');
  await page.getByLabel('Production: requests per time unit').fill('99');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Applications & keys' }).click();
  const dialog = page.getByRole('dialog', { name: 'Leave without saving?' });
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(new URL(page.url()).pathname, `/publisher/apis/${api.id}/runtime`);
  assert.equal(await page.getByLabel('Production: requests per time unit').inputValue(), '99', 'the edit is still there');

  await page.goBack();
  await dialog.waitFor();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  assert.equal(new URL(page.url()).pathname, `/publisher/apis/${api.id}/runtime`);

  const asked = new Promise((resolve) => page.once('dialog', async (native) => {
    resolve(native.type());
    await native.dismiss();
  }));
  await page.close({ runBeforeUnload: true });
  assert.equal(await asked, 'beforeunload');
  assert.equal(page.isClosed(), false, 'dismissing keeps the page');

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'APIs' }).click();
  await dialog.getByRole('button', { name: 'Leave' }).click();
  await page.getByRole('heading', { name: 'APIs' }).waitFor();
  assert.equal((await sluice.getApi(api.id)).maxTps.production, 10, 'nothing was saved');
  await page.close();
});
