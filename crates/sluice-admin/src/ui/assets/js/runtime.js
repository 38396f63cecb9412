// API Configurations > Runtime: the Backend Throughput section. Unlimited or
// Specify; with Specify a request count and a time unit per environment, and
// for AI APIs prompt, completion and total token counts per environment.
// Save PUTs the definition exactly as loaded except for these fields.

import { h, replace, announce } from './dom.js';
import { api, PUBLISHER, ApiError } from './http.js';
import { clearErrors, showErrors, serverErrors, formMessage, unsaved } from './forms.js';
import {
  ENVIRONMENTS, TIME_UNITS, TOKEN_DIMENSIONS,
  isAiApi, readThroughput, validateThroughput, applyThroughput, fieldName,
} from './throughput.js';

const ENV_LABEL = { production: 'Production', sandbox: 'Sandbox' };

function countInput(id, value, label) {
  return h('input', {
    id, name: id, value, inputmode: 'numeric', autocomplete: 'off', placeholder: 'no limit', 'aria-label': label,
  });
}

export function runtimeSection(content, loaded) {
  let definition = loaded;
  const ai = isAiApi(definition);
  const inputs = {};
  const model = readThroughput(definition);

  const unlimited = h('input', { type: 'radio', name: 'throughput-mode', id: 'throughput-unlimited', value: 'unlimited', checked: model.mode !== 'specify' });
  const specify = h('input', { type: 'radio', name: 'throughput-mode', id: 'throughput-specify', value: 'specify', checked: model.mode === 'specify' });

  const requestRows = ENVIRONMENTS.map((env) => {
    const count = countInput(`${env}-count`, model[env].count, `${ENV_LABEL[env]}: requests per time unit`);
    const unit = h('select', { id: `${env}-unit`, name: `${env}-unit`, 'aria-label': `${ENV_LABEL[env]}: time unit` },
      TIME_UNITS.map((name) => h('option', { value: name, selected: name === model[env].unit }, name)));
    inputs[fieldName(env, 'count')] = count;
    inputs[fieldName(env, 'unit')] = unit;
    const url = definition?.endpointConfig?.[`${env}_endpoints`]?.url;
    return h('div', { class: 'limit-row' },
      h('label', { class: 'env', for: count.id }, ENV_LABEL[env], h('small', {}, url || `no ${env} endpoint`)),
      h('div', { class: 'cell' }, count),
      h('span', { class: 'per', 'aria-hidden': 'true' }, 'requests per'),
      h('div', { class: 'cell' }, unit));
  });

  let tokenPart = null;
  let tokensEnabled = null;
  const secondWarning = h('p', { class: 'form-warning', id: 'token-second-warning', role: 'status', hidden: true });
  if (ai) {
    tokensEnabled = h('input', { type: 'checkbox', id: 'tokens-enabled', checked: model.tokensEnabled });
    const rows = ENVIRONMENTS.map((env) => h('div', { class: 'token-grid' },
      h('div', { class: 'env' }, ENV_LABEL[env]),
      TOKEN_DIMENSIONS.map(([key, , label]) => {
        const id = `${env}-${key}-tokens`;
        const input = countInput(id, model[env].tokens[key], `${ENV_LABEL[env]}: ${label.toLowerCase()} per time unit`);
        inputs[fieldName(env, key)] = input;
        return h('div', { class: 'cell field' }, h('label', { for: id }, label), input);
      })));
    tokenPart = h('fieldset', { id: 'token-limits' },
      h('legend', {}, 'Token-based limits (AI API)'),
      h('label', { class: 'check', for: 'tokens-enabled' }, tokensEnabled, 'Enforce token limits'),
      h('p', { class: 'hint' }, 'Tokens per time unit of the environment (the unit chosen above), counted from the provider\'s usage numbers. Leave a count empty for no limit on that dimension. With enforcement off, the counts are kept but not applied.'),
      rows,
      secondWarning);
  }

  const limits = h('div', { id: 'throughput-limits', class: 'stack', hidden: model.mode !== 'specify' },
    h('p', { class: 'hint' }, 'What the gateway forwards to each backend per time unit, all applications and users together. Windows are aligned to the unit (a MINUTE window starts at second 0). An empty count is no limit for that environment; 0 forwards nothing.'),
    requestRows,
    tokenPart);

  const current = () => {
    const state = {
      mode: specify.checked ? 'specify' : 'unlimited',
      tokensEnabled: tokensEnabled ? tokensEnabled.checked : model.tokensEnabled,
    };
    for (const env of ENVIRONMENTS) {
      state[env] = {
        count: inputs[fieldName(env, 'count')].value,
        unit: inputs[fieldName(env, 'unit')].value,
        tokens: {},
      };
      for (const [key] of TOKEN_DIMENSIONS) {
        state[env].tokens[key] = ai ? inputs[fieldName(env, key)].value : model[env].tokens[key];
      }
    }
    return state;
  };
  // Token limits per SECOND are valid but rarely what an owner wants.
  const warnAboutSeconds = () => {
    if (!ai) return;
    const state = current();
    const perSecond = ENVIRONMENTS.filter((env) => state.tokensEnabled
      && state[env].unit === 'SECOND'
      && TOKEN_DIMENSIONS.some(([key]) => String(state[env].tokens[key] ?? '').trim() !== ''));
    secondWarning.hidden = perSecond.length === 0;
    secondWarning.textContent = perSecond.length === 0 ? ''
      : `Token limits of ${perSecond.map((env) => ENV_LABEL[env].toLowerCase()).join(' and ')} are counted per SECOND: one large completion can use a whole window's budget. MINUTE matches how providers meter tokens.`;
  };
  warnAboutSeconds();
  limits.addEventListener('input', warnAboutSeconds);
  limits.addEventListener('change', warnAboutSeconds);

  let saved = JSON.stringify(current());
  const untrack = unsaved.track(() => JSON.stringify(current()) !== saved);

  for (const radio of [unlimited, specify]) {
    radio.addEventListener('change', () => { limits.hidden = !specify.checked; });
  }

  const saveButton = h('button', { type: 'submit', id: 'save-runtime' }, 'Save');
  const reset = h('button', { type: 'button', class: 'secondary', id: 'reset-runtime' }, 'Discard changes');
  const form = h('form', { class: 'panel stack', novalidate: true, 'aria-labelledby': 'runtime-title' },
    h('h2', { id: 'runtime-title' }, 'Runtime'),
    h('fieldset', { id: 'backend-throughput' },
      h('legend', {}, 'Backend Throughput'),
      h('p', { class: 'hint', id: 'throughput-explained' }, 'Maximum Backend Throughput protects the backend: it caps what this API version sends to its production and its sandbox endpoint, each with its own budget.'),
      h('div', { class: 'radios', role: 'radiogroup', 'aria-describedby': 'throughput-explained' },
        h('label', { for: 'throughput-unlimited' }, unlimited, 'Unlimited'),
        h('label', { for: 'throughput-specify' }, specify, 'Specify')),
      limits),
    h('div', { class: 'actions' }, saveButton, reset),
  );

  reset.addEventListener('click', () => {
    untrack();
    runtimeSection(content, definition);
    announce('Changes discarded.');
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const state = current();
    const errors = validateThroughput(state, { ai });
    if (Object.keys(errors).length) {
      showErrors(form, errors, inputs);
      return;
    }
    saveButton.disabled = true;
    try {
      const next = applyThroughput(definition, state, { ai });
      definition = await api.put(`${PUBLISHER}/apis/${encodeURIComponent(definition.id)}`, next);
      saved = JSON.stringify(current());
      formMessage(form, 'ok', 'Saved. The gateway enforces the new limits from the next request.');
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, serverErrors(error), inputs);
    } finally {
      saveButton.disabled = false;
    }
  });

  replace(content, form);
}
