// Managing APIs and consumers in the Publisher: create (plain and AI), edit,
// delete with a confirmation, applications with subscriptions and keys shown
// once with a copy button; keyboard use and a narrow window.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice, httpApi } from '../lib/sluice.js';
import { launch, logIn, openRuntime, screenshot, textOf } from '../lib/browser.js';

let sluice;
let browser;

before(async () => {
  sluice = await startSluice();
  browser = await launch();
});

after(async () => {
  const errors = browser?.pageErrors ?? [];
  await browser?.close();
  await sluice?.stop();
  assert.deepEqual(errors, [], 'no script errors or CSP violations in any page');
});

async function apiNamed(name) {
  const list = await sluice.rest('GET', `/api/am/publisher/v4/apis?query=name:${encodeURIComponent(name)}`);
  return list.json.list.find((definition) => definition.name === name);
}

test('an API created in the form is stored with its endpoints, and an AI API with its provider', async () => {
  const page = await browser.newPage();
  await logIn(page, sluice);
  await page.getByRole('link', { name: 'Create API' }).click();
  await page.getByLabel('Name').fill('Inventory');
  await page.getByLabel('Version').fill('v2');
  await page.getByLabel('Context').fill('/inventory');
  await page.getByLabel('Production endpoint URL').fill(`${sluice.mock}/inv`);
  await page.getByLabel('Sandbox endpoint URL').fill(`${sluice.mock}/inv-sandbox`);
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('group', { name: 'Backend Throughput' }).waitFor();
  assert.match(new URL(page.url()).pathname, /^\/publisher\/apis\/[^/]+\/runtime$/, 'goes on to Runtime');
  const inventory = await apiNamed('Inventory');
  assert.equal(inventory.context, '/inventory');
  assert.equal(inventory.version, 'v2');
  assert.equal(inventory.endpointConfig.production_endpoints.url, `${sluice.mock}/inv`);
  assert.equal(inventory.endpointConfig.sandbox_endpoints.url, `${sluice.mock}/inv-sandbox`);
  assert.equal(inventory.subtypeConfiguration, undefined);

  await page.getByRole('link', { name: 'APIs', exact: true }).first().click();
  await page.getByRole('link', { name: 'Create API' }).click();
  await page.getByLabel('Name').fill('Claude');
  await page.getByLabel('Version').fill('v1');
  await page.getByLabel('Context').fill('claude');
  await page.getByLabel('Production endpoint URL').fill(`${sluice.mock}/anthropic`);
  await page.getByLabel('AI API').check();
  await page.getByLabel('AI provider').selectOption('Anthropic');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.locator('#token-limits').waitFor({ state: 'attached' });
  const claude = await apiNamed('Claude');
  assert.deepEqual(claude.subtypeConfiguration, { subtype: 'AIAPI', configuration: { llmProviderName: 'Anthropic' } });
  assert.equal(claude.context, '/claude');
  assert.equal(claude.endpointConfig.sandbox_endpoints, undefined, 'no sandbox endpoint given, none stored');
  await page.close();
});

test('basic info is edited in place and the rest of the definition is kept', async () => {
  const api = await sluice.createApi(httpApi(sluice, {
    name: 'Catalog', context: '/catalog', maxTps: { production: 9 }, extra: { tags: ['shop'] },
  }));
  const before = await sluice.getApi(api.id);
  const page = await browser.newPage();
  await logIn(page, sluice, `/publisher/apis/${api.id}/configuration`);
  await page.getByLabel('Name').fill('Product catalog');
  await page.getByLabel('Sandbox endpoint URL').fill('not a url');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('#api-sandbox-url-error')), /full URL/);
  await page.getByLabel('Sandbox endpoint URL').fill(`${sluice.mock}/catalog-sandbox`);
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  assert.match(await textOf(page.locator('h1')), /^Product catalog/, 'the title follows the new name');
  const after = await sluice.getApi(api.id);
  const expected = structuredClone(before);
  expected.name = 'Product catalog';
  expected.endpointConfig.sandbox_endpoints.url = `${sluice.mock}/catalog-sandbox`;
  assert.deepEqual(after, expected);
  await page.close();
});

test('deleting an API asks for confirmation first', async () => {
  const api = await sluice.createApi(httpApi(sluice, { name: 'Legacy', context: '/legacy' }));
  const page = await browser.newPage();
  await logIn(page, sluice, `/publisher/apis/${api.id}/overview`);
  const dialog = page.getByRole('dialog', { name: 'Delete Legacy v1?' });
  await page.getByRole('button', { name: 'Delete API' }).click();
  await dialog.waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'hidden' });
  assert.equal((await sluice.rest('GET', `/api/am/publisher/v4/apis/${api.id}`)).status, 200, 'Escape cancels');

  await page.getByRole('button', { name: 'Delete API' }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await page.getByRole('heading', { name: 'APIs' }).waitFor();
  assert.equal((await sluice.rest('GET', `/api/am/publisher/v4/apis/${api.id}`)).status, 404);
  assert.equal(await page.getByRole('link', { name: 'Legacy', exact: true }).count(), 0);
  await page.close();
});

test('an application subscribes to an API and its keys, shown once and copied, call it', async () => {
  await sluice.createApi(httpApi(sluice, { name: 'Weather', context: '/weather' }));
  const page = await browser.newPage();
  await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: sluice.admin });
  await logIn(page, sluice, '/publisher/applications');
  await page.getByLabel('Application name').fill('forecast-app');
  await page.getByRole('button', { name: 'Create application' }).click();
  const card = page.getByRole('region', { name: 'forecast-app' });
  await card.waitFor();
  await card.getByLabel('API to subscribe to').selectOption({ label: `Weather v1 (/weather)` });
  await card.getByRole('button', { name: 'Subscribe' }).click();
  await page.getByRole('region', { name: 'forecast-app' }).getByRole('link', { name: 'Weather v1' }).waitFor();

  const keys = {};
  for (const [keyType, path] of [['production', '/prod/today'], ['sandbox', '/sandbox/today']]) {
    const region = page.getByRole('region', { name: 'forecast-app' });
    await region.getByRole('button', { name: `Generate ${keyType} key` }).click();
    const field = region.getByLabel(new RegExp(`New ${keyType} key`));
    await field.waitFor();
    keys[keyType] = await field.inputValue();
    assert.match(keys[keyType], /^slk_[0-9a-f]{16}_/);
    await region.getByRole('button', { name: 'Copy' }).click();
    await region.getByText('Copied.').waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), keys[keyType]);
    const reply = await sluice.call('/weather/v1/today', keys[keyType]);
    assert.equal(reply.status, 200, keyType);
    assert.equal(reply.json.path, path);
  }
  await screenshot(page, 'applications', { fullPage: true });

  await page.reload();
  await page.getByRole('region', { name: 'forecast-app' }).waitFor();
  assert.equal(await page.getByText(keys.production).count(), 0);
  assert.doesNotMatch(await page.content(), new RegExp(keys.production), 'a key is never shown again');
  await page.close();
});

test('the Runtime form works with the keyboard alone', async () => {
  const api = await sluice.createApi(httpApi(sluice, { name: 'Keys', context: '/keys' }));
  const page = await browser.newPage();
  await logIn(page, sluice, `/publisher/apis/${api.id}/runtime`);
  await page.getByLabel('Unlimited').focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByLabel('Specify').isChecked(), true);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'production-count');
  await page.keyboard.type('7');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'production-unit');
  await page.keyboard.type('HOUR');
  for (let i = 0; i < 3; i += 1) await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'save-runtime');
  await page.keyboard.press('Enter');
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  const saved = (await sluice.getApi(api.id)).maxTps;
  assert.deepEqual(saved, { production: 7, productionTimeUnit: 'HOUR' }, 'the empty sandbox gains no field');
  await page.close();
});

test('the Runtime page fits a narrow window without sideways scrolling', async () => {
  const api = await sluice.createApi(httpApi(sluice, { name: 'Mobile', context: '/mobile', maxTps: { production: 3, productionTimeUnit: 'MINUTE' } }));
  const narrow = await launch({ viewport: { width: 390, height: 844 } });
  try {
    const page = await narrow.newPage();
    await logIn(page, sluice, `/publisher/apis/${api.id}/runtime`);
    await page.getByRole('group', { name: 'Backend Throughput' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the window`);
    assert.ok((await page.getByLabel('Production: requests per time unit').boundingBox()).width >= 100);
    await screenshot(page, 'runtime-narrow', { fullPage: true });
    await page.goto(`${sluice.admin}/publisher/apis/${api.id}/traffic`);
    await page.locator('#traffic-production-chart svg').waitFor();
    const trafficOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(trafficOverflow <= 0, `the traffic view is ${trafficOverflow}px wider than the window`);
  } finally {
    await narrow.close();
  }
});
