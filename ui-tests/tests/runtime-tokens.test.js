// The Runtime flow for the token limits of an AI API: the same six steps,
// with prompt, completion and total token counts per environment, saved in
// WSO2's `tokenBasedThrottlingConfiguration`. Token enforcement through the
// gateway belongs to the AI issue (#3); this checks what the UI owns: the
// saved definition, read back through the REST API.

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

function aiApi(name, context) {
  return httpApi(sluice, {
    name,
    context,
    extra: {
      subtypeConfiguration: { subtype: 'AIAPI', configuration: { llmProviderName: 'OpenAI', llmProviderApiVersion: '1.0.0' } },
      additionalProperties: [{ name: 'team', value: 'ml', display: false }],
    },
  });
}

function withoutMaxTps(definition) {
  const { maxTps, ...rest } = definition;
  return rest;
}

test('token limits per environment are saved in WSO2 shape, and nothing else changes', async () => {
  const api = await sluice.createApi(aiApi('Chat', '/chat'));
  const before = await sluice.getApi(api.id);
  const page = await browser.newPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Chat');
  assert.match(await textOf(page.locator('h1 .badge.ai')), /OpenAI/);
  assert.equal(await page.getByLabel('Enforce token limits').isVisible(), false, 'hidden while Unlimited');

  await page.getByLabel('Specify').check();
  await page.getByLabel('Production: requests per time unit').fill('100');
  await page.getByLabel('Production: time unit').selectOption('MINUTE');
  await page.getByLabel('Sandbox: requests per time unit').fill('10');
  await page.getByLabel('Sandbox: time unit').selectOption('MINUTE');
  await page.getByLabel('Enforce token limits').check();
  const tokens = {
    'Production: prompt tokens per time unit': '5000',
    'Production: completion tokens per time unit': '2000',
    'Production: total tokens per time unit': '6000',
    'Sandbox: prompt tokens per time unit': '1000',
    'Sandbox: completion tokens per time unit': '500',
    'Sandbox: total tokens per time unit': '1200',
  };
  for (const [label, value] of Object.entries(tokens)) await page.getByLabel(label).fill(value);
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  await screenshot(page, 'runtime-ai', { fullPage: true });

  const after = await sluice.getApi(api.id);
  assert.deepEqual(after.maxTps, {
    production: 100,
    productionTimeUnit: 'MINUTE',
    sandbox: 10,
    sandboxTimeUnit: 'MINUTE',
    tokenBasedThrottlingConfiguration: {
      isTokenBasedThrottlingEnabled: true,
      productionMaxPromptTokenCount: 5000,
      productionMaxCompletionTokenCount: 2000,
      productionMaxTotalTokenCount: 6000,
      sandboxMaxPromptTokenCount: 1000,
      sandboxMaxCompletionTokenCount: 500,
      sandboxMaxTotalTokenCount: 1200,
    },
  });
  assert.deepEqual(withoutMaxTps(after), withoutMaxTps(before));

  // Token-only limits are allowed for AI APIs: no request count in production.
  await page.getByLabel('Production: requests per time unit').fill('');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  const tokenOnly = await sluice.getApi(api.id);
  assert.equal('production' in tokenOnly.maxTps, false);
  assert.equal(tokenOnly.maxTps.productionTimeUnit, 'MINUTE');
  assert.equal(tokenOnly.maxTps.tokenBasedThrottlingConfiguration.productionMaxTotalTokenCount, 6000);

  // Switching enforcement off keeps the counts (WSO2's meaning of the flag).
  await page.getByLabel('Enforce token limits').uncheck();
  await page.getByLabel('Production: requests per time unit').fill('100');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  const disabled = (await sluice.getApi(api.id)).maxTps.tokenBasedThrottlingConfiguration;
  assert.equal(disabled.isTokenBasedThrottlingEnabled, false);
  assert.equal(disabled.sandboxMaxTotalTokenCount, 1200);

  // The traffic view of an AI API has token tiles as well.
  await page.getByRole('navigation', { name: 'API sections' }).getByRole('link', { name: 'Backend traffic' }).click();
  await page.locator('[data-metric="total_tokens"][data-env="production"]').waitFor();
  await screenshot(page, 'traffic-ai', { fullPage: true });
  await page.close();
});

test('a plain API shows no token fields and keeps a stored token configuration', async () => {
  const stored = { isTokenBasedThrottlingEnabled: false, productionMaxTotalTokenCount: 10 };
  const api = await sluice.createApi(httpApi(sluice, {
    name: 'Plain',
    context: '/plain',
    maxTps: { production: 5, productionTimeUnit: 'SECOND', tokenBasedThrottlingConfiguration: stored },
  }));
  const page = await browser.newPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Plain');
  assert.equal(await page.locator('#token-limits').count(), 0);
  await page.getByLabel('Sandbox: requests per time unit').fill('4');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  const after = await sluice.getApi(api.id);
  assert.deepEqual(after.maxTps.tokenBasedThrottlingConfiguration, stored);
  assert.equal(after.maxTps.sandbox, 4);
  await page.close();
});
