// Backend Throughput (WSO2's `maxTps`) as the Runtime page edits it: read a
// definition into a form model, validate the model, and write it back into a
// copy of the definition that changes nothing but `maxTps`' limit fields.
// Pure functions without the DOM, so node's test runner checks them too.

export const TIME_UNITS = ['SECOND', 'MINUTE', 'HOUR', 'DAY'];
export const ENVIRONMENTS = ['production', 'sandbox'];
/** Token dimensions: model key, WSO2 field suffix, label. */
export const TOKEN_DIMENSIONS = [
  ['prompt', 'MaxPromptTokenCount', 'Prompt tokens'],
  ['completion', 'MaxCompletionTokenCount', 'Completion tokens'],
  ['total', 'MaxTotalTokenCount', 'Total tokens'],
];
const TOKENS = 'tokenBasedThrottlingConfiguration';
/** Largest count a browser holds exactly (2^53 - 1). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** Whether a definition is an AI API (WSO2: `subtypeConfiguration.subtype`). */
export function isAiApi(definition) {
  return definition?.subtypeConfiguration?.subtype === 'AIAPI';
}

/** The AI provider an AI API names, if any. */
export function aiProvider(definition) {
  let configuration = definition?.subtypeConfiguration?.configuration;
  if (typeof configuration === 'string') {
    try {
      configuration = JSON.parse(configuration);
    } catch {
      return '';
    }
  }
  return configuration?.llmProviderName || configuration?.llmProviderId || '';
}

function text(value) {
  return value === null || value === undefined ? '' : String(value);
}

/** The form model of a definition's `maxTps`. Counts are strings as typed. */
export function readThroughput(definition) {
  const maxTps = isObject(definition?.maxTps) ? definition.maxTps : {};
  const tokens = isObject(maxTps[TOKENS]) ? maxTps[TOKENS] : {};
  const model = { mode: 'unlimited', tokensEnabled: tokens.isTokenBasedThrottlingEnabled === true };
  let limited = model.tokensEnabled;
  for (const env of ENVIRONMENTS) {
    const unit = maxTps[`${env}TimeUnit`];
    model[env] = {
      count: text(maxTps[env]),
      unit: TIME_UNITS.includes(unit) ? unit : 'SECOND',
      tokens: {},
    };
    if (maxTps[env] !== null && maxTps[env] !== undefined) limited = true;
    for (const [key, suffix] of TOKEN_DIMENSIONS) {
      model[env].tokens[key] = text(tokens[`${env}${suffix}`]);
    }
  }
  if (limited) model.mode = 'specify';
  return model;
}

/**
 * A typed count: {value} (a whole number >= 0, or null when empty) or {error}.
 */
export function parseCount(raw) {
  const trimmed = String(raw ?? '').trim();
  if (trimmed === '') return { value: null };
  if (/^-\s*\d/.test(trimmed)) return { error: 'Must not be negative.' };
  if (/^\d+[.,]\d*$/.test(trimmed) || /^\d*[.,]\d+$/.test(trimmed)) {
    return { error: 'Must be a whole number.' };
  }
  if (!/^\d+$/.test(trimmed)) return { error: 'Must be a whole number of 0 or more.' };
  const value = Number(trimmed);
  if (value > MAX_COUNT) return { error: `Must be at most ${MAX_COUNT}.` };
  return { value };
}

/** The definition field (as the server names it in errors) of each input. */
export function fieldName(env, what) {
  if (what === 'count') return `maxTps.${env}`;
  if (what === 'unit') return `maxTps.${env}TimeUnit`;
  const dimension = TOKEN_DIMENSIONS.find(([key]) => key === what);
  return `maxTps.${TOKENS}.${env}${dimension[1]}`;
}

/**
 * Problems of a model, keyed by field name (see fieldName). An empty count
 * means no limit for that environment (or token dimension); Specify with no
 * limit at all is refused: that is what Unlimited is for.
 */
export function validateThroughput(model, { ai }) {
  const errors = {};
  if (model.mode !== 'specify') return errors;
  let limits = 0;
  for (const env of ENVIRONMENTS) {
    const count = parseCount(model[env].count);
    if (count.error) errors[fieldName(env, 'count')] = count.error;
    else if (count.value !== null) limits += 1;
    if (!TIME_UNITS.includes(model[env].unit)) errors[fieldName(env, 'unit')] = 'Choose a time unit.';
    if (ai) {
      for (const [key] of TOKEN_DIMENSIONS) {
        const tokens = parseCount(model[env].tokens[key]);
        if (tokens.error) errors[fieldName(env, key)] = tokens.error;
        else if (tokens.value !== null && model.tokensEnabled) limits += 1;
      }
    }
  }
  if (limits === 0 && Object.keys(errors).length === 0) {
    errors[fieldName('production', 'count')] = ai
      ? 'Enter at least one request or token limit (0 forwards nothing), or choose Unlimited.'
      : 'Enter at least one limit (0 forwards nothing), or choose Unlimited.';
  }
  return errors;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function setOrDelete(object, key, value) {
  if (value === null) delete object[key];
  else object[key] = value;
}

/**
 * A copy of `definition` with the model's limits written into `maxTps`.
 * Everything else is left as it was: other fields of the definition, masked
 * credentials, `maxTps["x-sluice"]` and unknown keys of `maxTps`. Unlimited
 * removes the limit fields (and `maxTps` itself when nothing else is in it).
 * Call it only with a model validateThroughput accepts.
 */
export function applyThroughput(definition, model, { ai }) {
  const copy = structuredClone(definition);
  const maxTps = isObject(copy.maxTps) ? copy.maxTps : {};
  if (model.mode !== 'specify') {
    for (const env of ENVIRONMENTS) {
      delete maxTps[env];
      delete maxTps[`${env}TimeUnit`];
    }
    delete maxTps[TOKENS];
    if (Object.keys(maxTps).length === 0) delete copy.maxTps;
    else copy.maxTps = maxTps;
    return copy;
  }
  for (const env of ENVIRONMENTS) {
    const count = parseCount(model[env].count).value;
    setOrDelete(maxTps, env, count);
    const tokens = ai && TOKEN_DIMENSIONS.some(([key]) => parseCount(model[env].tokens[key]).value !== null);
    // A unit is written where it means something (or was there already), so
    // an environment left without limits gains no field.
    if (count !== null || tokens || `${env}TimeUnit` in maxTps) maxTps[`${env}TimeUnit`] = model[env].unit;
  }
  if (ai) {
    const tokens = isObject(maxTps[TOKENS]) ? maxTps[TOKENS] : {};
    tokens.isTokenBasedThrottlingEnabled = Boolean(model.tokensEnabled);
    for (const env of ENVIRONMENTS) {
      for (const [key, suffix] of TOKEN_DIMENSIONS) {
        setOrDelete(tokens, `${env}${suffix}`, parseCount(model[env].tokens[key]).value);
      }
    }
    maxTps[TOKENS] = tokens;
  }
  copy.maxTps = maxTps;
  return copy;
}

/** "3 per MINUTE" / "unlimited" for one environment of a definition. */
export function describeLimit(definition, env) {
  const maxTps = isObject(definition?.maxTps) ? definition.maxTps : {};
  const count = maxTps[env];
  const unit = maxTps[`${env}TimeUnit`] || 'SECOND';
  const parts = [];
  if (count !== null && count !== undefined) parts.push(`${count} requests per ${unit}`);
  const tokens = maxTps[TOKENS];
  if (isAiApi(definition) && isObject(tokens) && tokens.isTokenBasedThrottlingEnabled === true) {
    for (const [, suffix, label] of TOKEN_DIMENSIONS) {
      const value = tokens[`${env}${suffix}`];
      if (value !== null && value !== undefined) parts.push(`${value} ${label.toLowerCase()} per ${unit}`);
    }
  }
  return parts.length ? parts.join(', ') : 'unlimited';
}
