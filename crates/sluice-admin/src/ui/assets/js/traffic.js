// Backend traffic: what the gateway forwarded to and refused for each
// environment of one API, per window, against the limit; read from /metrics
// every second, so the numbers shown are the ones /metrics reports.

import { h, replace, formatCount } from './dom.js';
import { api, getText, PUBLISHER } from './http.js';
import { ENVIRONMENTS, isAiApi, describeLimit } from './throughput.js';
import { parsePrometheus, apiMetrics, WindowSeries, TOKEN_DIMENSIONS } from './metrics.js';
import { windowChart, windowLabel } from './chart.js';

const REFRESH_MS = 1000;
const DEFINITION_EVERY = 10;
const ENV_LABEL = { production: 'Production', sandbox: 'Sandbox' };
const TOKEN_LABEL = { prompt_tokens: 'Prompt tokens', completion_tokens: 'Completion tokens', total_tokens: 'Total tokens' };
const TOKEN_FIELD = { prompt_tokens: 'MaxPromptTokenCount', completion_tokens: 'MaxCompletionTokenCount', total_tokens: 'MaxTotalTokenCount' };

/**
 * The limits the definition sets for an environment, per dimension (`null`
 * for a dimension without one), and their time unit. /metrics has them too,
 * but only once the API has been called: Sluice registers an API's series
 * with its first request.
 */
function limitsOf(definition, env) {
  const maxTps = definition.maxTps && typeof definition.maxTps === 'object' ? definition.maxTps : {};
  const tokens = maxTps.tokenBasedThrottlingConfiguration || {};
  const enabled = isAiApi(definition) && tokens.isTokenBasedThrottlingEnabled === true;
  const limits = { requests: maxTps[env] ?? null };
  for (const dimension of TOKEN_DIMENSIONS) {
    limits[dimension] = enabled ? (tokens[`${env}${TOKEN_FIELD[dimension]}`] ?? null) : null;
  }
  return { unit: maxTps[`${env}TimeUnit`] || 'SECOND', limits };
}

function tile(name, value, metric, env) {
  return h('div', { class: 'tile' },
    h('div', { class: 'value', dataset: { metric, env } }, value),
    h('div', { class: 'name' }, name));
}

export function trafficSection(content, loaded) {
  let definition = loaded;
  const ai = isAiApi(definition);
  const series = {};
  let polls = 0;
  let timer = null;
  let stopped = false;
  let paused = false;

  const scope = h('p', { class: 'hint scope', id: 'traffic-scope' }, 'Counters: reading…');
  const updated = h('span', { id: 'traffic-updated' }, 'waiting for the first sample…');
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const pause = h('button', { type: 'button', class: 'secondary', id: 'traffic-pause', 'aria-pressed': 'false' }, 'Pause updates');
  const cards = {};
  for (const env of ENVIRONMENTS) {
    cards[env] = h('section', { class: 'panel', id: `traffic-${env}`, 'aria-labelledby': `traffic-${env}-title` });
  }

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume updates' : 'Pause updates';
  });

  replace(content,
    h('section', { class: 'panel', 'aria-labelledby': 'traffic-title' },
      h('h2', { id: 'traffic-title' }, 'Backend traffic'),
      h('p', { class: 'hint' }, 'Requests this API version forwarded to each backend and refused by its Maximum Backend Throughput, per window, against the limit. Read from /metrics every second: the totals are the numbers /metrics reports. Bars are built from successive samples, so the first window shows only what happened since this view opened.'),
      scope,
      h('p', { class: 'hint small' }, 'Last sample: ', updated, ' ', pause),
      error),
    h('div', { class: 'env-cards' }, ENVIRONMENTS.map((env) => cards[env])),
  );

  api.get('/readyz').then((ready) => {
    const counters = ready?.detail?.counters;
    scope.textContent = counters === 'redis'
      ? 'Counters: "used in this window" is the cluster total (shared in Redis by every gateway node); forwarded and refused are this node\'s.'
      : 'Counters: this gateway node (local counting).';
  }).catch(() => { scope.textContent = 'Counters: unknown (readiness not available).'; });

  function drawEnvironment(env, metrics, now) {
    const card = cards[env];
    const { unit, limits } = limitsOf(definition, env);
    const endpoint = definition?.endpointConfig?.[`${env}_endpoints`]?.url;
    let windows = series[env];
    if (!windows || windows.unit !== unit) {
      windows = new WindowSeries(unit);
      series[env] = windows;
    }
    windows.add(now, metrics);
    const current = windows.windows[windows.windows.length - 1];
    const limit = limits.requests === null ? null : (metrics.limit.requests ?? limits.requests);
    const usage = metrics.usage.requests ?? 0;
    const label = `${ENV_LABEL[env]}: current ${unit.toLowerCase()} window from ${windowLabel(current.start, unit)} UTC, ${current.forwarded} forwarded and ${current.refused} refused since the view opened; ${limit === null ? 'no limit' : `limit ${limit}`}.`;
    const children = [
      h('h3', { id: `traffic-${env}-title` }, ENV_LABEL[env], ' ', h('span', { class: 'hint small' }, `· ${describeLimit(definition, env)}`)),
      endpoint ? null : h('p', { class: 'hint' }, `No ${env} endpoint: ${env} keys are refused before counting.`),
      h('div', { class: 'tiles' },
        tile('used in this window', limit !== null ? `${formatCount(usage)} / ${formatCount(limit)}` : 'unlimited', 'window', env),
        tile('forwarded (total)', formatCount(metrics.forwarded ?? 0), 'forwarded', env),
        tile('refused (total)', formatCount(metrics.refused.requests ?? 0), 'refused', env)),
      h('div', { class: 'chart', id: `traffic-${env}-chart` }, windowChart({ windows: windows.windows, limit, unit, label })),
      h('div', { class: 'legend', 'aria-hidden': 'true' },
        h('span', {}, h('span', { class: 'swatch forwarded' }), 'forwarded'),
        h('span', {}, h('span', { class: 'swatch refused' }), 'refused'),
        h('span', {}, h('span', { class: 'swatch limit' }), 'limit per window'),
        h('span', {}, `${unit} windows, times in UTC`)),
    ];
    if (ai) {
      const tokenTiles = TOKEN_DIMENSIONS.map((dimension) => tile(
        `${TOKEN_LABEL[dimension].toLowerCase()} in this window${limits[dimension] !== null ? '' : ' (no limit)'}`,
        limits[dimension] !== null
          ? `${formatCount(metrics.usage[dimension] ?? 0)} / ${formatCount(metrics.limit[dimension] ?? limits[dimension])}`
          : formatCount(metrics.usage[dimension] ?? 0),
        dimension, env));
      const refusedByTokens = TOKEN_DIMENSIONS.reduce((sum, d) => sum + (metrics.refused[d] ?? 0), 0);
      tokenTiles.push(tile('refused by token limits (total)', formatCount(refusedByTokens), 'tokens-refused', env));
      const main = TOKEN_DIMENSIONS.slice().reverse().find((d) => limits[d] !== null) || 'total_tokens';
      const tokenWindows = windows.windows.map((w) => ({
        start: w.start, partial: w.partial, forwarded: w.tokens[main]?.usage ?? 0, refused: 0,
      }));
      children.push(
        h('h4', {}, 'Tokens'),
        h('div', { class: 'tiles' }, tokenTiles),
        h('div', { class: 'chart', id: `traffic-${env}-tokens-chart` }, windowChart({
          windows: tokenWindows,
          limit: limits[main] === null ? null : (metrics.limit[main] ?? limits[main]),
          unit,
          what: TOKEN_LABEL[main].toLowerCase(),
          usedWord: 'used',
          label: `${ENV_LABEL[env]}: ${TOKEN_LABEL[main].toLowerCase()} used per window`,
        })),
        h('p', { class: 'hint small' }, 'Token bars show the window\'s usage as last read (the gauge), not a sum of samples.'),
      );
    }
    replace(card, ...children);
  }

  async function poll() {
    if (stopped) return;
    if (!paused) {
      try {
        if (polls > 0 && polls % DEFINITION_EVERY === 0) {
          definition = await api.get(`${PUBLISHER}/apis/${encodeURIComponent(definition.id)}`);
        }
        const text = await getText('/metrics');
        if (stopped) return;
        const now = Date.now();
        const metrics = apiMetrics(parsePrometheus(text), definition.id);
        for (const env of ENVIRONMENTS) drawEnvironment(env, metrics[env], now);
        updated.textContent = `${new Date(now).toISOString().slice(11, 19)} UTC`;
        error.hidden = true;
        polls += 1;
      } catch (failure) {
        error.textContent = `Cannot read /metrics: ${failure.message}`;
        error.hidden = false;
      }
    }
    if (!stopped) timer = setTimeout(poll, REFRESH_MS);
  }
  poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
