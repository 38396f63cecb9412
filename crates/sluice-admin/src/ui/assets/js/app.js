// The Publisher's entry point: the in-app router (History API), the
// unsaved-changes guard on every way of leaving a page, and log out.
// Each page is a function that renders into <main> and may return a cleanup
// function (to stop polling) that runs when the page is left.

import { announce, confirmDialog } from './dom.js';
import { api, whenUnauthenticated } from './http.js';
import { unsaved } from './forms.js';
import { apiListPage, createApiPage, apiPage } from './apis.js';
import { applicationsPage } from './applications.js';

const main = document.getElementById('main');
let cleanup = null;
let leaving = false;

const routes = [
  [/^\/publisher\/?$/, () => navigate('/publisher/apis', { replace: true })],
  [/^\/publisher\/apis$/, () => apiListPage(main)],
  [/^\/publisher\/apis\/new$/, () => createApiPage(main)],
  [/^\/publisher\/apis\/([^/]+)$/, (id) => navigate(`/publisher/apis/${id}/overview`, { replace: true })],
  [/^\/publisher\/apis\/([^/]+)\/(overview|configuration|runtime|traffic)$/, (id, section) => apiPage(main, decodeURIComponent(id), section)],
  [/^\/publisher\/applications$/, () => applicationsPage(main)],
];

function section(path) {
  return path.startsWith('/publisher/applications') ? 'applications' : 'apis';
}

async function render() {
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup must not stop navigation */ }
    cleanup = null;
  }
  unsaved.clear();
  const path = location.pathname;
  for (const link of document.querySelectorAll('.topnav a')) {
    if (link.dataset.section === section(path)) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  const route = routes.find(([pattern]) => pattern.test(path));
  main.replaceChildren();
  if (!route) {
    main.append(Object.assign(document.createElement('h1'), { textContent: 'Page not found' }));
    return;
  }
  const [pattern, page] = route;
  try {
    const result = await page(...pattern.exec(path).slice(1));
    if (typeof result === 'function') cleanup = result;
  } catch (error) {
    main.replaceChildren();
    const message = document.createElement('p');
    message.className = 'form-error';
    message.setAttribute('role', 'alert');
    message.textContent = error.message || String(error);
    main.append(message);
  }
  const heading = main.querySelector('h1');
  if (heading) {
    document.title = `${heading.textContent} · Sluice Publisher`;
    announce(heading.textContent);
  }
}

async function mayLeave() {
  if (!unsaved.any()) return true;
  return confirmDialog({
    title: 'Leave without saving?',
    message: 'You have unsaved changes on this page. Leaving discards them.',
    confirmLabel: 'Leave',
    danger: true,
  });
}

/** Go to an in-app path, asking first when the page has unsaved changes. */
export async function navigate(path, { replace = false, force = false } = {}) {
  if (!force && !replace && !(await mayLeave())) return false;
  if (replace) history.replaceState({}, '', path);
  else history.pushState({}, '', path);
  await render();
  if (!replace) main.focus({ preventScroll: false });
  return true;
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey || link.target) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith('/publisher/')) return;
  if (url.pathname.startsWith('/publisher/assets/')) return;
  if (url.pathname === location.pathname && url.hash) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

let shown = location.pathname + location.search;
window.addEventListener('popstate', async () => {
  const target = location.pathname + location.search;
  if (unsaved.any()) {
    // Put the page back while asking; go on only if the user agrees.
    history.pushState({}, '', shown);
    if (!(await mayLeave())) return;
    history.replaceState({}, '', target);
  }
  shown = target;
  await render();
});
const pushState = history.pushState.bind(history);
const replaceState = history.replaceState.bind(history);
history.pushState = (state, title, url) => { pushState(state, title, url); shown = location.pathname + location.search; };
history.replaceState = (state, title, url) => { replaceState(state, title, url); shown = location.pathname + location.search; };

window.addEventListener('beforeunload', (event) => {
  if (!leaving && unsaved.any()) {
    event.preventDefault();
    event.returnValue = '';
  }
});

function toLogin() {
  leaving = true;
  const next = encodeURIComponent(location.pathname + location.search);
  location.assign(`/publisher/login?next=${next}`);
}
whenUnauthenticated(toLogin);

document.getElementById('logout').addEventListener('click', async () => {
  if (!(await mayLeave())) return;
  try {
    await api.del('/publisher/session');
  } finally {
    leaving = true;
    location.assign('/publisher/login');
  }
});

render();
