// API pages: the list, the create form, and one API's page with its side
// navigation: Overview (with delete), API Configurations > Basic info and
// Runtime, and Backend traffic.

import { h, link, replace, confirmDialog, announce } from './dom.js';
import { api, getAll, PUBLISHER, ApiError } from './http.js';
import { field, select, clearErrors, showErrors, serverErrors, formMessage, unsaved } from './forms.js';
import { isAiApi, aiProvider, describeLimit } from './throughput.js';
import { runtimeSection } from './runtime.js';
import { trafficSection } from './traffic.js';
import { navigate } from './app.js';

/** AI providers: the value written to `llmProviderName`, and its label. */
export const AI_PROVIDERS = [
  ['OpenAI', 'OpenAI'],
  ['AzureOpenAI', 'Azure OpenAI'],
  ['MistralAI', 'Mistral AI'],
  ['Anthropic', 'Anthropic'],
  ['OpenAI-compatible', 'OpenAI-compatible (self-hosted)'],
];

function apiPath(id, section) {
  return `/publisher/apis/${encodeURIComponent(id)}/${section}`;
}

function endpointUrl(definition, env) {
  return definition?.endpointConfig?.[`${env}_endpoints`]?.url || '';
}

function route(definition) {
  const context = String(definition.context || '').replace(/\/+$/, '');
  return context.includes('{version}') ? context.replace('{version}', definition.version) : `${context}/${definition.version}`;
}

export async function apiListPage(main) {
  const apis = await getAll(`${PUBLISHER}/apis`);
  const rows = apis.map((definition) => h('tr', {},
    h('td', {}, link(apiPath(definition.id, 'overview'), definition.name),
      isAiApi(definition) ? [' ', h('span', { class: 'badge ai' }, 'AI')] : null),
    h('td', {}, h('code', {}, route(definition))),
    h('td', {}, describeLimit(definition, 'production')),
    h('td', {}, describeLimit(definition, 'sandbox')),
  ));
  replace(main,
    h('div', { class: 'page-head' },
      h('h1', { tabindex: '-1' }, 'APIs'),
      link('/publisher/apis/new', 'Create API', { class: 'button' })),
    apis.length === 0
      ? h('p', { class: 'panel' }, 'No APIs yet. ', link('/publisher/apis/new', 'Create the first one'), '.')
      : h('div', { class: 'table-wrap' }, h('table', {},
        h('caption', { class: 'visually-hidden' }, 'APIs and their Maximum Backend Throughput'),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'Name'),
          h('th', { scope: 'col' }, 'Route'),
          h('th', { scope: 'col' }, 'Production throughput'),
          h('th', { scope: 'col' }, 'Sandbox throughput'))),
        h('tbody', {}, rows))),
  );
}

/** The fields of the basic-info form, shared by create and edit. */
function basicForm(definition, { creating }) {
  const inputs = {};
  const make = (name, options) => {
    const made = field(options);
    inputs[name] = made.input;
    return made.wrapper;
  };
  const ai = isAiApi(definition);
  const provider = select({
    id: 'api-ai-provider',
    label: 'AI provider',
    options: AI_PROVIDERS,
    value: aiProvider(definition) || 'OpenAI',
  });
  inputs['subtypeConfiguration.configuration.llmProviderName'] = provider.select;
  const aiBox = h('input', { type: 'checkbox', id: 'api-is-ai', checked: ai, disabled: !creating });
  const providerRow = h('div', { hidden: !ai }, provider.wrapper);
  aiBox.addEventListener('change', () => { providerRow.hidden = !aiBox.checked; });
  const fields = h('div', { class: 'stack' },
    h('div', { class: 'grid-2' },
      make('name', { id: 'api-name', label: 'Name', value: definition.name || '', attributes: { required: true, autocomplete: 'off' } }),
      make('version', { id: 'api-version', label: 'Version', value: definition.version || '', hint: 'One path segment, e.g. v1 or 1.0.0.', attributes: { required: true, autocomplete: 'off' } }),
    ),
    make('context', { id: 'api-context', label: 'Context', value: definition.context || '', hint: 'The path prefix, e.g. /orders. Callers use /{context}/{version}/…', attributes: { required: true, autocomplete: 'off' } }),
    make('endpointConfig.production_endpoints.url', { id: 'api-production-url', label: 'Production endpoint URL', value: endpointUrl(definition, 'production'), type: 'url', hint: 'Where PRODUCTION keys are sent.', attributes: { autocomplete: 'off' } }),
    make('endpointConfig.sandbox_endpoints.url', { id: 'api-sandbox-url', label: 'Sandbox endpoint URL', value: endpointUrl(definition, 'sandbox'), type: 'url', hint: 'Where SANDBOX keys are sent. Leave empty for none.', attributes: { autocomplete: 'off' } }),
    h('div', { class: 'field' },
      h('label', { class: 'check', for: 'api-is-ai' }, aiBox, 'AI API (counts tokens as well as requests)'),
      creating ? null : h('p', { class: 'hint' }, 'Whether an API is an AI API is chosen when it is created.')),
    providerRow,
  );
  const state = () => ({
    name: inputs.name.value,
    version: inputs.version.value,
    context: inputs.context.value,
    production: inputs['endpointConfig.production_endpoints.url'].value,
    sandbox: inputs['endpointConfig.sandbox_endpoints.url'].value,
    ai: aiBox.checked,
    provider: provider.select.value,
  });
  return { fields, inputs, state };
}

function validateBasic(values) {
  const errors = {};
  if (!values.name.trim()) errors.name = 'Enter a name.';
  if (!values.version.trim()) errors.version = 'Enter a version.';
  else if (!/^[A-Za-z0-9._~-]+$/.test(values.version.trim()) || ['.', '..'].includes(values.version.trim())) {
    errors.version = 'Use one path segment of letters, digits and -._~';
  }
  if (!values.context.trim() || values.context.trim() === '/') errors.context = 'Enter a context, e.g. /orders.';
  for (const env of ['production', 'sandbox']) {
    const url = values[env].trim();
    const name = `endpointConfig.${env}_endpoints.url`;
    if (!url) continue;
    try {
      const parsed = new URL(url);
      if (!['http:', 'https:'].includes(parsed.protocol)) errors[name] = 'Use an http:// or https:// URL.';
    } catch {
      errors[name] = 'Enter a full URL, e.g. http://10.0.0.5:8080/orders.';
    }
  }
  if (!values.production.trim() && !values.sandbox.trim()) {
    errors['endpointConfig.production_endpoints.url'] = 'Enter a production or a sandbox endpoint URL.';
  }
  return errors;
}

/** A copy of `definition` with the basic-info values written in. */
function applyBasic(definition, values) {
  const copy = structuredClone(definition);
  copy.name = values.name.trim();
  copy.version = values.version.trim();
  copy.context = values.context.trim().startsWith('/') ? values.context.trim() : `/${values.context.trim()}`;
  const endpointConfig = copy.endpointConfig && typeof copy.endpointConfig === 'object' ? copy.endpointConfig : {};
  if (!endpointConfig.endpoint_type) endpointConfig.endpoint_type = 'http';
  for (const env of ['production', 'sandbox']) {
    const key = `${env}_endpoints`;
    const url = values[env].trim();
    if (url) {
      const endpoint = endpointConfig[key] && typeof endpointConfig[key] === 'object' ? endpointConfig[key] : {};
      endpoint.url = url;
      endpointConfig[key] = endpoint;
    } else {
      delete endpointConfig[key];
    }
  }
  copy.endpointConfig = endpointConfig;
  if (values.ai) {
    const subtype = copy.subtypeConfiguration && typeof copy.subtypeConfiguration === 'object' ? copy.subtypeConfiguration : {};
    subtype.subtype = 'AIAPI';
    let configuration = subtype.configuration;
    if (typeof configuration === 'string') {
      try { configuration = JSON.parse(configuration); } catch { configuration = {}; }
    }
    configuration = configuration && typeof configuration === 'object' ? configuration : {};
    configuration.llmProviderName = values.provider;
    subtype.configuration = configuration;
    copy.subtypeConfiguration = subtype;
  }
  return copy;
}

export async function createApiPage(main) {
  const blank = { securityScheme: ['api_key'], type: 'HTTP' };
  const { fields, inputs, state } = basicForm(blank, { creating: true });
  const initial = JSON.stringify(state());
  const form = h('form', { class: 'panel stack', novalidate: true, 'aria-labelledby': 'create-title' },
    fields,
    h('div', { class: 'actions' },
      h('button', { type: 'submit' }, 'Create'),
      link('/publisher/apis', 'Cancel', { class: 'button secondary' })),
  );
  let saving = false;
  unsaved.track(() => !saving && JSON.stringify(state()) !== initial);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = state();
    const errors = validateBasic(values);
    if (Object.keys(errors).length) {
      showErrors(form, errors, inputs);
      return;
    }
    const definition = applyBasic(blank, values);
    saving = true;
    try {
      const created = await api.post(`${PUBLISHER}/apis`, definition);
      announce(`API ${created.name} created.`);
      await navigate(apiPath(created.id, 'runtime'), { force: true });
    } catch (error) {
      saving = false;
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, serverErrors(error), inputs);
    }
  });
  replace(main,
    h('p', { class: 'breadcrumb' }, link('/publisher/apis', 'APIs'), ' / Create'),
    h('h1', { id: 'create-title', tabindex: '-1' }, 'Create an API'),
    h('p', { class: 'hint' }, 'The API gets a production and a sandbox budget of its own; set them under Runtime after creating it.'),
    form,
  );
  inputs.name.focus();
}

const SECTIONS = [
  ['overview', 'Overview'],
  ['configuration', 'Basic info', 'API Configurations'],
  ['runtime', 'Runtime', 'API Configurations'],
  ['traffic', 'Backend traffic'],
];

function sideNav(definition, current) {
  const items = [];
  let group = null;
  let list = null;
  for (const [section, label, groupName] of SECTIONS) {
    if (groupName !== group || !list) {
      group = groupName;
      if (groupName) items.push(h('div', { class: 'group', id: `group-${section}` }, groupName));
      list = h('ul', { 'aria-labelledby': groupName ? `group-${section}` : undefined });
      items.push(list);
    }
    list.append(h('li', {}, link(apiPath(definition.id, section), label, { 'aria-current': section === current ? 'page' : undefined })));
  }
  return h('nav', { class: 'sidenav', 'aria-label': 'API sections' }, items);
}

export async function apiPage(main, id, section) {
  const definition = await api.get(`${PUBLISHER}/apis/${encodeURIComponent(id)}`);
  const content = h('div', { class: 'api-content' });
  const title = h('h1', { tabindex: '-1' }, definition.name, ' ', h('span', { class: 'badge' }, definition.version),
    isAiApi(definition) ? [' ', h('span', { class: 'badge ai' }, `AI · ${aiProvider(definition) || 'provider not set'}`)] : null);
  replace(main,
    h('p', { class: 'breadcrumb' }, link('/publisher/apis', 'APIs'), ' / ', definition.name),
    title,
    h('div', { class: 'api-layout' }, sideNav(definition, section), content),
  );
  switch (section) {
    case 'overview': return overview(content, definition);
    case 'configuration': return basicInfo(content, definition);
    case 'runtime': return runtimeSection(content, definition);
    case 'traffic': return trafficSection(content, definition);
    default: return undefined;
  }
}

function credentialSummary(definition, env) {
  const credential = definition?.endpointConfig?.endpoint_security?.[env];
  if (!credential || credential.enabled !== true) return 'none';
  const type = String(credential.type || '').toLowerCase();
  if (type === 'apikey') return `${credential.apiKeyIdentifier}: ${credential.apiKeyValue} (stored, masked)`;
  if (type === 'basic') return `basic, user ${credential.username}, password ${credential.password} (stored, masked)`;
  return type;
}

function overview(content, definition) {
  const facts = [
    ['Route', h('code', {}, route(definition))],
    ['Id', h('code', {}, definition.id)],
    ['Production endpoint', endpointUrl(definition, 'production') || 'none'],
    ['Sandbox endpoint', endpointUrl(definition, 'sandbox') || 'none'],
    ['Production credentials', credentialSummary(definition, 'production')],
    ['Sandbox credentials', credentialSummary(definition, 'sandbox')],
    ['Production throughput', describeLimit(definition, 'production')],
    ['Sandbox throughput', describeLimit(definition, 'sandbox')],
  ];
  const remove = h('button', { type: 'button', class: 'danger', id: 'delete-api' }, 'Delete API');
  remove.addEventListener('click', async () => {
    const confirmed = await confirmDialog({
      title: `Delete ${definition.name} ${definition.version}?`,
      message: 'The API, its subscriptions and its counters are removed, and the gateway stops routing it at once. This cannot be undone.',
      confirmLabel: 'Delete',
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api.del(`${PUBLISHER}/apis/${encodeURIComponent(definition.id)}`);
      announce(`API ${definition.name} deleted.`);
      await navigate('/publisher/apis', { force: true });
    } catch (error) {
      formMessage(content, 'error', error.message);
    }
  });
  replace(content,
    h('section', { class: 'panel', 'aria-labelledby': 'overview-title' },
      h('h2', { id: 'overview-title' }, 'Overview'),
      h('dl', { class: 'facts' }, facts.map(([name, value]) => [h('dt', {}, name), h('dd', {}, value)])),
      h('p', { class: 'hint' }, 'Each API version and each environment has its own budget: production and sandbox are counted separately, even when they point at the same URL.'),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'danger-title' },
      h('h2', { id: 'danger-title' }, 'Delete'),
      h('p', { class: 'hint' }, 'Deleting removes the API and its subscriptions.'),
      remove),
  );
}

function basicInfo(content, loaded) {
  let definition = loaded;
  const { fields, inputs, state } = basicForm(definition, { creating: false });
  let initial = JSON.stringify(state());
  unsaved.track(() => JSON.stringify(state()) !== initial);
  const form = h('form', { class: 'panel stack', novalidate: true, 'aria-labelledby': 'basic-title' },
    h('h2', { id: 'basic-title' }, 'Basic info'),
    fields,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'save-basic' }, 'Save')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const values = state();
    const errors = validateBasic(values);
    if (Object.keys(errors).length) {
      showErrors(form, errors, inputs);
      return;
    }
    try {
      definition = await api.put(`${PUBLISHER}/apis/${encodeURIComponent(definition.id)}`, applyBasic(definition, values));
      initial = JSON.stringify(state());
      // Draw the page again so its title and breadcrumb show the new name.
      unsaved.clear();
      await apiPage(content.closest('main'), definition.id, 'configuration');
      const again = document.querySelector('.api-content form');
      if (again) formMessage(again, 'ok', 'Saved. The gateway routes the API with these settings now.');
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(form, serverErrors(error), inputs);
    }
  });
  replace(content, form);
}
