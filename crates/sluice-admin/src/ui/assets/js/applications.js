// Applications & keys: create an application, subscribe it to APIs, and
// generate PRODUCTION and SANDBOX API keys (shown once, with a copy button).

import { h, replace, link, confirmDialog, announce } from './dom.js';
import { api, getAll, PUBLISHER, DEVPORTAL, ApiError } from './http.js';
import { field, select, clearErrors, showErrors, serverErrors, formMessage } from './forms.js';

export async function applicationsPage(main) {
  const [applications, apis, subscriptions] = await Promise.all([
    getAll(`${DEVPORTAL}/applications`),
    getAll(`${PUBLISHER}/apis`),
    getAll(`${DEVPORTAL}/subscriptions`),
  ]);
  const rerender = () => applicationsPage(main);

  const name = field({ id: 'app-name', label: 'Application name', attributes: { required: true, autocomplete: 'off' } });
  const create = h('form', { class: 'panel stack', novalidate: true, 'aria-labelledby': 'create-app-title' },
    h('h2', { id: 'create-app-title' }, 'Create an application'),
    h('p', { class: 'hint' }, 'An application holds the subscriptions and keys one consumer calls APIs with.'),
    name.wrapper,
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Create application')));
  create.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(create);
    const value = name.input.value.trim();
    if (!value) {
      showErrors(create, { name: 'Enter a name.' }, { name: name.input });
      return;
    }
    try {
      await api.post(`${DEVPORTAL}/applications`, { name: value, throttlingPolicy: 'Unlimited' });
      announce(`Application ${value} created.`);
      await rerender();
      document.getElementById(`app-${slug(value)}`)?.querySelector('h2')?.focus();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(create, serverErrors(error), { name: name.input });
    }
  });

  const cards = applications.map((application) => applicationCard(application, apis,
    subscriptions.filter((s) => s.applicationId === application.applicationId), rerender));

  replace(main,
    h('div', { class: 'page-head' }, h('h1', { tabindex: '-1' }, 'Applications & keys')),
    create,
    applications.length === 0 ? h('p', { class: 'hint' }, 'No applications yet.') : cards,
  );
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-');
}

function applicationCard(application, apis, subscriptions, rerender) {
  const id = application.applicationId;
  const byId = new Map(apis.map((definition) => [definition.id, definition]));
  const card = h('section', { class: 'panel', id: `app-${slug(application.name)}`, 'aria-labelledby': `app-title-${id}` });

  const rows = subscriptions.map((subscription) => {
    const definition = byId.get(subscription.apiId);
    const remove = h('button', { type: 'button', class: 'link' }, 'Unsubscribe');
    remove.addEventListener('click', async () => {
      const confirmed = await confirmDialog({
        title: 'Unsubscribe?',
        message: `${application.name} loses access to ${definition ? definition.name : subscription.apiId}; its keys are refused for that API at once.`,
        confirmLabel: 'Unsubscribe',
        danger: true,
      });
      if (!confirmed) return;
      await api.del(`${DEVPORTAL}/subscriptions/${encodeURIComponent(subscription.subscriptionId)}`);
      await rerender();
    });
    return h('tr', {},
      h('td', {}, definition ? link(`/publisher/apis/${encodeURIComponent(definition.id)}/overview`, `${definition.name} ${definition.version}`) : subscription.apiId),
      h('td', {}, subscription.throttlingPolicy),
      h('td', {}, remove));
  });

  const subscribed = new Set(subscriptions.map((s) => s.apiId));
  const candidates = apis.filter((definition) => !subscribed.has(definition.id));
  const choose = select({
    id: `subscribe-${id}`,
    label: 'API to subscribe to',
    options: candidates.map((definition) => [definition.id, `${definition.name} ${definition.version} (${definition.context})`]),
  });
  const subscribe = h('form', { class: 'actions align-end', novalidate: true },
    choose.wrapper,
    h('button', { type: 'submit', disabled: candidates.length === 0 }, 'Subscribe'));
  subscribe.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(subscribe);
    try {
      await api.post(`${DEVPORTAL}/subscriptions`, { apiId: choose.select.value, applicationId: id, throttlingPolicy: 'Unlimited' });
      announce('Subscribed.');
      await rerender();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      showErrors(subscribe, serverErrors(error), { apiId: choose.select });
    }
  });

  const keyArea = h('div', { class: 'stack', 'aria-live': 'polite' });
  const generate = (keyType) => {
    const button = h('button', { type: 'button', class: 'secondary', id: `generate-${keyType.toLowerCase()}-${id}` }, `Generate ${keyType.toLowerCase()} key`);
    button.addEventListener('click', async () => {
      keyArea.replaceChildren();
      try {
        const key = await api.post(`${DEVPORTAL}/applications/${encodeURIComponent(id)}/api-keys/${keyType}/generate`, { validityPeriod: -1 });
        keyArea.append(shownOnce(key, keyType, id));
      } catch (error) {
        formMessage(keyArea, 'error', error.message);
      }
    });
    return button;
  };

  const remove = h('button', { type: 'button', class: 'danger' }, 'Delete application');
  remove.addEventListener('click', async () => {
    const confirmed = await confirmDialog({
      title: `Delete ${application.name}?`,
      message: 'Its subscriptions and keys are removed; calls with its keys are refused at once.',
      confirmLabel: 'Delete',
      danger: true,
    });
    if (!confirmed) return;
    await api.del(`${DEVPORTAL}/applications/${encodeURIComponent(id)}`);
    announce(`Application ${application.name} deleted.`);
    await rerender();
  });

  card.append(
    h('h2', { id: `app-title-${id}`, tabindex: '-1' }, application.name),
    h('h3', {}, 'Subscriptions'),
    subscriptions.length
      ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'API'), h('th', { scope: 'col' }, 'Policy'), h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
        h('tbody', {}, rows)))
      : h('p', { class: 'hint' }, 'Not subscribed to any API.'),
    candidates.length ? subscribe : h('p', { class: 'hint' }, apis.length ? 'Subscribed to every API.' : 'Create an API to subscribe to.'),
    h('h3', {}, 'API keys'),
    h('p', { class: 'hint' }, 'A production key reaches the production endpoint, a sandbox key the sandbox one. Send it in the apikey header (or the API\'s own key header).'),
    h('div', { class: 'actions' }, generate('PRODUCTION'), generate('SANDBOX')),
    keyArea,
    h('div', { class: 'actions' }, remove),
  );
  return card;
}

function shownOnce(key, keyType, applicationId) {
  const id = `key-${keyType.toLowerCase()}-${applicationId}`;
  const input = h('input', { id, readonly: true, value: key.apikey, spellcheck: 'false', autocomplete: 'off' });
  const copy = h('button', { type: 'button', id: `copy-${id}` }, 'Copy');
  const copied = h('span', { class: 'hint small', role: 'status' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(key.apikey);
    } catch {
      input.select();
      document.execCommand('copy');
    }
    copied.textContent = 'Copied.';
  });
  return h('div', { class: 'panel stack key-once' },
    h('label', { for: id, class: 'label' }, `New ${keyType.toLowerCase()} key (${key.keyName})`),
    h('div', { class: 'secret' }, input, copy, copied),
    h('p', { class: 'form-error' }, 'Copy this key now: it is shown only once and cannot be read again.'));
}
