// The API owner's path on a request-count API, in a real browser: log in,
// pick the API, API Configurations > Runtime, Specify, production and sandbox
// limits, Save; then real traffic through the gateway meets the new limits,
// and the Backend traffic view shows what /metrics reports.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSluice, httpApi, until, ROOT } from '../lib/sluice.js';
import { launch, logIn, openRuntime, screenshot, textOf } from '../lib/browser.js';
import { awayFromMinuteEnd } from '../lib/clock.js';
import { parsePrometheus, apiMetrics } from '../../crates/sluice-admin/src/ui/assets/js/metrics.js';

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

function withoutMaxTps(definition) {
  const { maxTps, ...rest } = definition;
  return rest;
}

async function statuses(path, key, count) {
  const replies = [];
  for (let i = 0; i < count; i += 1) replies.push(await sluice.call(path, key));
  return replies;
}

test('the six steps set production and sandbox limits that the gateway enforces at once', async () => {
  const api = await sluice.createApi(httpApi(sluice, { name: 'Orders', context: '/orders' }));
  const keys = await sluice.subscribedKeys(api.id, 'shop');
  const before = await sluice.getApi(api.id);
  assert.equal(before.maxTps, undefined, 'starts unlimited');
  const page = await browser.newPage();

  // 1. Log in to the API Publisher.
  await logIn(page, sluice);
  // 2. Select the API from the list of APIs.
  await page.getByRole('table').getByRole('link', { name: 'Orders', exact: true }).click();
  await page.getByRole('heading', { name: /Orders/ }).first().waitFor();
  // 3. API Configurations > Runtime.
  const sections = page.getByRole('navigation', { name: 'API sections' });
  assert.equal(await textOf(sections.locator('.group')), 'API Configurations');
  await sections.getByRole('link', { name: 'Runtime' }).click();
  await page.getByRole('group', { name: 'Backend Throughput' }).waitFor();
  assert.equal(await page.getByLabel('Unlimited').isChecked(), true);
  assert.equal(await page.getByLabel('Production: requests per time unit').isVisible(), false);
  // 4. Choose Specify.
  await page.getByLabel('Specify').check();
  // 5. Production and Sandbox limits, a count and a time unit each.
  await page.getByLabel('Production: requests per time unit').fill('3');
  await page.getByLabel('Production: time unit').selectOption('MINUTE');
  await page.getByLabel('Sandbox: requests per time unit').fill('2');
  await page.getByLabel('Sandbox: time unit').selectOption('MINUTE');
  // 6. Save.
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  const shot = await screenshot(page, 'runtime');
  if (process.env.SLUICE_UI_DOCS_SCREENSHOT === '1') {
    // Refreshes the README's screenshot (kept out of ordinary runs: its
    // ports change every time).
    mkdirSync(join(ROOT, 'docs', 'img'), { recursive: true });
    copyFileSync(shot, join(ROOT, 'docs', 'img', 'publisher-runtime.png'));
  }

  const after = await sluice.getApi(api.id);
  assert.deepEqual(after.maxTps, { production: 3, productionTimeUnit: 'MINUTE', sandbox: 2, sandboxTimeUnit: 'MINUTE' });
  assert.deepEqual(withoutMaxTps(after), withoutMaxTps(before), 'nothing else changed');

  // The Backend traffic view, open before the traffic starts.
  await sections.getByRole('link', { name: 'Backend traffic' }).click();
  await page.locator('#traffic-production-chart svg').waitFor();

  // Real traffic through the gateway: the new limits hold at once.
  await awayFromMinuteEnd();
  const arrivedBefore = await sluice.backendRequests();
  const production = await statuses('/orders/v1/items', keys.PRODUCTION, 4);
  assert.deepEqual(production.map((r) => r.status), [200, 200, 200, 503]);
  assert.equal(production[0].json.path, '/prod/items');
  assert.equal(production[3].json.fault.code, 900801);
  assert.ok(Number(production[3].headers.get('retry-after')) >= 1);
  const sandbox = await statuses('/orders/v1/items', keys.SANDBOX, 3);
  assert.deepEqual(sandbox.map((r) => r.status), [200, 200, 503]);
  assert.equal(sandbox[0].json.path, '/sandbox/items');
  assert.equal(await sluice.backendRequests() - arrivedBefore, 5, 'the backend saw only what was admitted');

  // The view's numbers are the ones /metrics reports.
  const shown = async (env) => {
    const read = async (metric) => (await page.locator(`[data-metric="${metric}"][data-env="${env}"]`).textContent()).trim();
    return { window: await read('window'), forwarded: await read('forwarded'), refused: await read('refused') };
  };
  const expected = {
    production: { window: '3 / 3', forwarded: '3', refused: '1' },
    sandbox: { window: '2 / 2', forwarded: '2', refused: '1' },
  };
  await until(async () => {
    const metrics = apiMetrics(parsePrometheus(await sluice.metrics()), api.id);
    for (const env of ['production', 'sandbox']) {
      const reported = metrics[env];
      const fromMetrics = {
        window: `${reported.usage.requests} / ${reported.limit.requests}`,
        forwarded: String(reported.forwarded),
        refused: String(reported.refused.requests),
      };
      assert.deepEqual(fromMetrics, expected[env], `/metrics for ${env}`);
      if (JSON.stringify(await shown(env)) !== JSON.stringify(fromMetrics)) return false;
    }
    return true;
  }, { what: 'the traffic view to show what /metrics reports' });

  for (const [env, forwarded, refused] of [['production', '3', '1'], ['sandbox', '2', '1']]) {
    const bar = page.locator(`#traffic-${env}-chart g.window[data-current="true"]`);
    await until(async () => (await bar.getAttribute('data-forwarded')) === forwarded
      && (await bar.getAttribute('data-refused')) === refused, { what: `${env} bar` });
    assert.equal(await page.locator(`#traffic-${env}-chart .limit-line`).count(), 1);
    assert.equal(await page.locator(`#traffic-${env}-chart .bar-refused`).count() >= 1, true);
  }
  await screenshot(page, 'traffic', { fullPage: true });
  await page.close();
});
