// Reading Sluice's Prometheus exposition (/metrics) for one API, and turning
// successive samples into per-window totals for the Backend traffic chart.
// Pure functions without the DOM, so node's test runner checks them too.

export const DIMENSIONS = ['requests', 'prompt_tokens', 'completion_tokens', 'total_tokens'];
export const TOKEN_DIMENSIONS = DIMENSIONS.slice(1);
export const UNIT_MS = { SECOND: 1000, MINUTE: 60000, HOUR: 3600000, DAY: 86400000 };

const FORWARDED = 'sluice_backend_forwarded_total';
const REFUSED = 'sluice_backend_refused_total';
const USAGE = 'sluice_backend_window_usage';
const LIMIT = 'sluice_backend_window_limit';

function unescapeLabel(value) {
  return value.replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
}

/** Every sample line of a Prometheus text exposition: {name, labels, value}. */
export function parsePrometheus(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    let label;
    while ((label = labelPattern.exec(match[3] || '')) !== null) {
      labels[label[1]] = unescapeLabel(label[2]);
    }
    const value = Number(match[4]);
    if (!Number.isNaN(value)) samples.push({ name: match[1], labels, value });
  }
  return samples;
}

function emptyEnvironment() {
  return { route: null, forwarded: null, refused: {}, usage: {}, limit: {} };
}

/**
 * What /metrics says about one API, per environment: `forwarded` (counter),
 * `refused[dimension]` (counters), `usage[dimension]` and `limit[dimension]`
 * (gauges of the current window). Absent series stay absent (null / missing).
 */
export function apiMetrics(samples, apiId) {
  const result = { production: emptyEnvironment(), sandbox: emptyEnvironment() };
  for (const { name, labels, value } of samples) {
    if (labels.api_id !== apiId) continue;
    const env = result[labels.environment];
    if (!env) continue;
    env.route = labels.api ?? env.route;
    if (name === FORWARDED) env.forwarded = value;
    else if (name === REFUSED) env.refused[labels.dimension] = value;
    else if (name === USAGE) env.usage[labels.dimension] = value;
    else if (name === LIMIT) env.limit[labels.dimension] = value;
  }
  return result;
}

/** The index of the window (of `unitMs`) holding time `t` (ms since epoch, UTC). */
export function windowIndex(t, unitMs) {
  return Math.floor(t / unitMs);
}

function increase(now, before) {
  if (now === null || now === undefined) return 0;
  // A series absent from the earlier sample did not exist yet: Sluice
  // registers an API's series with its first request, so it was zero.
  const earlier = before ?? 0;
  // A counter that went down was reset (a restart): all of it is new.
  return now >= earlier ? now - earlier : now;
}

/**
 * Per-window totals built from successive samples of one environment. The
 * increase of a counter between two samples is put in the window of the
 * later sample; the first window seen only holds what happened after the
 * first sample (it is marked `partial`). Keeps the last `keep` windows.
 */
export class WindowSeries {
  constructor(unit, keep = 24) {
    this.unit = unit;
    this.unitMs = UNIT_MS[unit] || UNIT_MS.SECOND;
    this.keep = keep;
    this.windows = [];
    this.previous = null;
  }

  /** Add the sample of one environment taken at time `t`. */
  add(t, env) {
    const index = windowIndex(t, this.unitMs);
    let window = this.windows[this.windows.length - 1];
    if (!window || window.index !== index) {
      window = {
        index,
        start: index * this.unitMs,
        forwarded: 0,
        refused: 0,
        tokensRefused: 0,
        tokens: {},
        usage: 0,
        limit: null,
        partial: this.previous === null,
      };
      this.windows.push(window);
      if (this.windows.length > this.keep) this.windows.shift();
    }
    if (this.previous) {
      window.forwarded += increase(env.forwarded, this.previous.forwarded);
      window.refused += increase(env.refused.requests, this.previous.refused.requests);
      for (const dimension of TOKEN_DIMENSIONS) {
        window.tokensRefused += increase(env.refused[dimension], this.previous.refused[dimension]);
      }
    }
    window.usage = env.usage.requests ?? 0;
    window.limit = env.limit.requests ?? null;
    for (const dimension of TOKEN_DIMENSIONS) {
      window.tokens[dimension] = { usage: env.usage[dimension] ?? 0, limit: env.limit[dimension] ?? null };
    }
    this.previous = env;
  }
}
