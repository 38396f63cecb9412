// Saving the Runtime page of an API with endpoint credentials and fields the
// UI does not show leaves all of them intact: the definition read back
// through the REST API differs only in the edited limit, and the stored
// secret (only ever shown masked) still reaches the backend.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSluice, httpApi } from '../lib/sluice.js';
import { launch, logIn, openRuntime, textOf } from '../lib/browser.js';

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

test('credentials and unshown fields survive a Runtime save', async () => {
  const definition = httpApi(sluice, {
    name: 'Payments',
    context: '/payments',
    maxTps: {
      production: 5,
      productionTimeUnit: 'SECOND',
      'x-sluice': { rejectStatus: 429, shadow: false },
      vendorExtension: { keep: ['me', 1] },
    },
    extra: {
      description: 'Card payments, with a backend key held by the gateway.',
      businessInformation: { businessOwner: 'Finance', technicalOwnerEmail: 'ops@example.com' },
      additionalProperties: [{ name: 'tier', value: 'gold', display: true }],
      corsConfiguration: { corsConfigurationEnabled: false },
      operations: [{ target: '/*', verb: 'GET', authType: 'Application & Application User' }],
      'x-vendor': { nested: { deep: true } },
    },
  });
  definition.endpointConfig.endpoint_security = {
    production: { enabled: true, type: 'apikey', apiKeyIdentifier: 'Authorization', apiKeyValue: 'Bearer sk-x' },
  };
  const api = await sluice.createApi(definition);
  const keys = await sluice.subscribedKeys(api.id, 'billing');
  const before = await sluice.getApi(api.id);
  assert.equal(before.endpointConfig.endpoint_security.production.apiKeyValue, '********', 'the REST API masks it');

  const page = await browser.newPage();
  const puts = [];
  page.on('request', (request) => { if (request.method() === 'PUT') puts.push(request.postDataJSON()); });
  await logIn(page, sluice);
  await openRuntime(page, 'Payments');
  await page.getByLabel('Production: requests per time unit').fill('7');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await textOf(page.locator('.form-ok')), /^Saved\./);

  assert.equal(puts.length, 1);
  assert.equal(puts[0].endpointConfig.endpoint_security.production.apiKeyValue, '********',
    'the browser never had the secret: it sent the mask back');

  const after = await sluice.getApi(api.id);
  const expected = structuredClone(before);
  expected.maxTps.production = 7;
  assert.deepEqual(after, expected, 'only the edited limit changed');
  assert.deepEqual(Object.keys(after), Object.keys(before), 'field order kept');

  const reply = await sluice.call('/payments/v1/charge', keys.PRODUCTION);
  assert.equal(reply.status, 200);
  assert.equal(reply.json.headers.authorization, 'Bearer sk-x', 'the stored secret still reaches the backend');
  assert.equal(reply.json.headers.apikey, undefined, "the caller's key is not forwarded");

  const overview = await page.getByRole('navigation', { name: 'API sections' }).getByRole('link', { name: 'Overview' });
  await overview.click();
  const shown = await textOf(page.locator('dl.facts'));
  assert.match(shown, /Authorization: \*{8}/);
  assert.doesNotMatch(await page.content(), /sk-x/, 'the page never holds the secret');
  await page.close();
});
