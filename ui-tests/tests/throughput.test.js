// The Runtime page's model of `maxTps` (throughput.js), without a browser:
// what it reads, what it refuses, and that writing it back changes nothing
// but the limit fields.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  readThroughput, validateThroughput, applyThroughput, parseCount, describeLimit, isAiApi, aiProvider,
} from '../../crates/sluice-admin/src/ui/assets/js/throughput.js';

const wso2 = {
  id: 'a1',
  name: 'Orders',
  context: '/orders',
  version: 'v1',
  businessInformation: { businessOwner: 'Ops' },
  endpointConfig: { endpoint_security: { production: { enabled: true, type: 'apikey', apiKeyIdentifier: 'Authorization', apiKeyValue: '********' } } },
  maxTps: { production: 100, productionTimeUnit: 'SECOND', sandbox: 10, sandboxTimeUnit: 'MINUTE', 'x-sluice': { rejectStatus: 429 }, vendorField: 'kept' },
};

test('a definition with limits reads as Specify with its counts and units', () => {
  const model = readThroughput(wso2);
  assert.equal(model.mode, 'specify');
  assert.deepEqual(model.production, { count: '100', unit: 'SECOND', tokens: { prompt: '', completion: '', total: '' } });
  assert.equal(model.sandbox.unit, 'MINUTE');
});

test('a definition without maxTps reads as Unlimited', () => {
  assert.equal(readThroughput({ name: 'x' }).mode, 'unlimited');
  assert.equal(readThroughput({ maxTps: { 'x-sluice': { shadow: true } } }).mode, 'unlimited');
});

test('counts must be whole numbers of 0 or more', () => {
  assert.deepEqual(parseCount(' 42 '), { value: 42 });
  assert.deepEqual(parseCount('0'), { value: 0 });
  assert.deepEqual(parseCount(''), { value: null });
  assert.match(parseCount('-5').error, /negative/);
  assert.match(parseCount('1.5').error, /whole/);
  assert.match(parseCount('ten').error, /whole/);
  assert.match(parseCount('9007199254740993').error, /at most/);
});

test('an empty count is no limit, but Specify needs at least one limit', () => {
  const model = readThroughput(wso2);
  model.sandbox.count = '';
  assert.deepEqual(validateThroughput(model, { ai: false }), {});
  model.production.count = ' ';
  assert.deepEqual(Object.keys(validateThroughput(model, { ai: false })), ['maxTps.production']);
  model.mode = 'unlimited';
  assert.deepEqual(validateThroughput(model, { ai: false }), {});
});

test('a bad count is reported on its own field', () => {
  const model = readThroughput(wso2);
  model.sandbox.count = '-1';
  assert.deepEqual(Object.keys(validateThroughput(model, { ai: false })), ['maxTps.sandbox']);
});

test('an AI API may limit an environment by tokens only', () => {
  const model = readThroughput({});
  model.mode = 'specify';
  model.tokensEnabled = true;
  assert.match(validateThroughput(model, { ai: true })['maxTps.production'], /at least one/);
  model.production.tokens.total = '6000';
  assert.deepEqual(validateThroughput(model, { ai: true }), {});
  model.tokensEnabled = false;
  assert.match(validateThroughput(model, { ai: true })['maxTps.production'], /at least one/, 'counts not enforced are no limit');
  model.tokensEnabled = true;
  model.production.tokens.prompt = '-1';
  assert.deepEqual(Object.keys(validateThroughput(model, { ai: true })),
    ['maxTps.tokenBasedThrottlingConfiguration.productionMaxPromptTokenCount']);
});

test('writing the model back changes only the limit fields', () => {
  const model = readThroughput(wso2);
  model.production.count = '3';
  model.production.unit = 'MINUTE';
  const saved = applyThroughput(wso2, model, { ai: false });
  const expected = structuredClone(wso2);
  expected.maxTps.production = 3;
  expected.maxTps.productionTimeUnit = 'MINUTE';
  assert.deepEqual(saved, expected);
  assert.deepEqual(Object.keys(saved.maxTps), Object.keys(wso2.maxTps), 'key order kept');
  assert.equal(wso2.maxTps.production, 100, 'the loaded definition is not modified');
});

test('Unlimited removes the limits but keeps Sluice options and unknown keys', () => {
  const model = readThroughput(wso2);
  model.mode = 'unlimited';
  const saved = applyThroughput(wso2, model, { ai: false });
  assert.deepEqual(saved.maxTps, { 'x-sluice': { rejectStatus: 429 }, vendorField: 'kept' });
  const bare = applyThroughput({ name: 'x', maxTps: { production: 1 } }, model, { ai: false });
  assert.equal('maxTps' in bare, false);
});

test('an environment left without limits gains no time unit field', () => {
  const model = readThroughput({ maxTps: { production: 5 } });
  model.production.unit = 'HOUR';
  const saved = applyThroughput({ maxTps: { production: 5 } }, model, { ai: false });
  assert.deepEqual(saved.maxTps, { production: 5, productionTimeUnit: 'HOUR' });
});

test('token limits are written in WSO2 shape for AI APIs', () => {
  const ai = { subtypeConfiguration: { subtype: 'AIAPI', configuration: '{"llmProviderName":"MistralAI"}' } };
  assert.equal(isAiApi(ai), true);
  assert.equal(aiProvider(ai), 'MistralAI');
  const model = readThroughput(ai);
  model.mode = 'specify';
  model.tokensEnabled = true;
  Object.assign(model.production, { count: '', unit: 'MINUTE', tokens: { prompt: '5000', completion: '2000', total: '' } });
  Object.assign(model.sandbox, { count: '10', unit: 'HOUR', tokens: { prompt: '', completion: '', total: '1200' } });
  const saved = applyThroughput(ai, model, { ai: true });
  assert.deepEqual(saved.maxTps, {
    productionTimeUnit: 'MINUTE',
    sandbox: 10,
    sandboxTimeUnit: 'HOUR',
    tokenBasedThrottlingConfiguration: {
      isTokenBasedThrottlingEnabled: true,
      productionMaxPromptTokenCount: 5000,
      productionMaxCompletionTokenCount: 2000,
      sandboxMaxTotalTokenCount: 1200,
    },
  });
  assert.equal(describeLimit(saved, 'production'), '5000 prompt tokens per MINUTE, 2000 completion tokens per MINUTE');
});
