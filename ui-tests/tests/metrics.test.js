// Reading /metrics for the Backend traffic view (metrics.js), without a
// browser: the exposition parser and the per-window totals.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheus, apiMetrics, WindowSeries } from '../../crates/sluice-admin/src/ui/assets/js/metrics.js';

const exposition = `
# TYPE sluice_backend_forwarded_total counter
sluice_backend_forwarded_total{api="/orders/v1",api_id="a1",environment="production"} 3
sluice_backend_forwarded_total{api="/orders/v1",api_id="a1",environment="sandbox"} 2
sluice_backend_forwarded_total{api="/other/v1",api_id="b2",environment="production"} 99
sluice_backend_refused_total{api="/orders/v1",api_id="a1",environment="production",dimension="requests"} 1
sluice_backend_window_usage{api="/orders/v1",api_id="a1",environment="production",dimension="requests"} 3
sluice_backend_window_limit{api="/orders/v1",api_id="a1",environment="production",dimension="requests"} 3
sluice_gateway_rejected_total{reason="no_route"} 4
sluice_upstream_latency_seconds_bucket{environment="production",outcome="ok",le="0.005"} 2
weird_label{v="a \\"quoted\\" \\\\ value"} 1.5e3
`;

test('the exposition parser reads names, labels with escapes and values', () => {
  const samples = parsePrometheus(exposition);
  assert.equal(samples.length, 9);
  const weird = samples.find((s) => s.name === 'weird_label');
  assert.deepEqual(weird, { name: 'weird_label', labels: { v: 'a "quoted" \\ value' }, value: 1500 });
});

test("one API's numbers are picked by api_id and environment", () => {
  const metrics = apiMetrics(parsePrometheus(exposition), 'a1');
  assert.equal(metrics.production.forwarded, 3);
  assert.equal(metrics.production.refused.requests, 1);
  assert.equal(metrics.production.usage.requests, 3);
  assert.equal(metrics.production.limit.requests, 3);
  assert.equal(metrics.production.route, '/orders/v1');
  assert.equal(metrics.sandbox.forwarded, 2);
  assert.deepEqual(metrics.sandbox.refused, {});
});

function env(forwarded, refused, usage = 0) {
  return { forwarded, refused: { requests: refused }, usage: { requests: usage }, limit: { requests: 3 } };
}

test('counter increases go to the window of the later sample', () => {
  const series = new WindowSeries('MINUTE');
  const minute = 60000;
  series.add(10 * minute + 1000, env(5, 0));
  series.add(10 * minute + 2000, env(7, 0));
  series.add(10 * minute + 3000, env(8, 1));
  series.add(11 * minute + 500, env(9, 4));
  assert.equal(series.windows.length, 2);
  assert.deepEqual(series.windows.map((w) => [w.start, w.forwarded, w.refused, w.partial]), [
    [10 * minute, 3, 1, true],
    [11 * minute, 1, 3, false],
  ]);
  assert.equal(series.windows[1].limit, 3);
});

test('a counter reset (restart) counts what the new counter holds', () => {
  const series = new WindowSeries('HOUR');
  series.add(1000, env(50, 5));
  series.add(2000, env(2, 0));
  assert.equal(series.windows[0].forwarded, 2);
  assert.equal(series.windows[0].refused, 0);
});

test('a series that appears after the first sample counts from zero', () => {
  const series = new WindowSeries('MINUTE');
  const absent = { route: null, forwarded: null, refused: {}, usage: {}, limit: {} };
  series.add(1000, absent);
  series.add(2000, env(3, 1));
  assert.equal(series.windows[0].forwarded, 3);
  assert.equal(series.windows[0].refused, 1);
});

test('only the last windows are kept', () => {
  const series = new WindowSeries('SECOND', 3);
  for (let i = 0; i < 10; i += 1) series.add(i * 1000, env(i, 0));
  assert.deepEqual(series.windows.map((w) => w.start), [7000, 8000, 9000]);
});
