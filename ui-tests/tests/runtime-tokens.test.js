// The Runtime flow for the token limits of an AI API: the same six steps,
// with prompt, completion and total token counts per environment, saved in
// WSO2's `tokenBasedThrottlingConfiguration`, read back through the REST API;
// then real chat completions through the gateway meet the saved token limits.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice, httpApi } from '../lib/sluice.js';
import { launch, logIn, openRuntime, screenshot, textOf } from '../lib/browser.js';
import { awayFromMinuteEnd } from '../lib/clock.js';

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

/** A chat completion through the gateway: the mock answers `max_tokens`
 * completion tokens and about a quarter of the prompt's bytes as prompt. */
async function chat(path, key, maxTokens) {
  const response = await fetch(`${sluice.gateway}${path}`, {
    method: 'POST',
    headers: { apikey: key, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', max_tokens: maxTokens, messages: [{ role: 'user', content: 'Hello there' }] }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, json: text ? JSON.parse(text) : null };
}

test('token limits saved on the Runtime page are enforced through the gateway at once', async () => {
  const api = await sluice.createApi(aiApi('Tokens', '/tokens'));
  const keys = await sluice.subscribedKeys(api.id, 'token-app');
  const page = await browser.newPage();
  await logIn(page, sluice);
  await openRuntime(page, 'Tokens');
  await page.getByLabel('Specify').check();
  await page.getByLabel('Production: time unit').selectOption('MINUTE');
  await page.getByLabel('Sandbox: time unit').selectOption('MINUTE');
  await page.getByLabel('Enforce token limits').check();
  await page.getByLabel('Production: total tokens per time unit').fill('120');
  // Per SECOND, token limits get a warning; per MINUTE it goes away.
  await page.getByLabel('Production: time unit').selectOption('SECOND');
  assert.match(await textOf(page.locator('#token-second-warning')), /production are counted per SECOND/);
  await page.getByLabel('Production: time unit').selectOption('MINUTE');
  assert.equal(await page.locator('#token-second-warning').isVisible(), false);
  await page.getByLabel('Sandbox: total tokens per time unit').fill('50');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);
  await page.close();
  await awayFromMinuteEnd();

  // Production, 120 total tokens per MINUTE: each call reserves its prompt
  // bound plus 30 before it is forwarded, so calls pass until the next
  // reservation would not fit, and what the backend reports stays within.
  const path = '/tokens/v1/v1/chat/completions';
  const replies = [];
  for (let i = 0; i < 5; i += 1) replies.push(await chat(path, keys.PRODUCTION, 30));
  const statuses = replies.map((reply) => reply.status);
  const passed = replies.filter((reply) => reply.status === 200);
  assert.ok(passed.length >= 1, `some calls pass: ${statuses}`);
  assert.deepEqual(statuses, [...passed.map(() => 200), ...Array(5 - passed.length).fill(503)]);
  const reported = passed.reduce((sum, reply) => sum + reply.json.usage.total_tokens, 0);
  assert.ok(reported <= 120, `the backend reported ${reported} tokens`);
  const refused = replies[passed.length];
  assert.equal(refused.headers.get('x-sluice-limit-dimension'), 'total_tokens');
  assert.equal(refused.json.fault.code, 900801);
  assert.ok(Number(refused.headers.get('retry-after')) >= 1);

  // Sandbox, 50 total tokens: a call that reserves more can never pass.
  const tooBig = await chat(path, keys.SANDBOX, 40);
  assert.equal(tooBig.status, 400);
  assert.equal(tooBig.headers.get('x-should-retry'), 'false');
  assert.equal(tooBig.json.fault.code, 900952);
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
