// Calls to the admin REST API from the UI: JSON in and out, the session's
// CSRF token on every state-changing request, WSO2 error bodies turned into
// ApiError (whose `fields` name the offending fields).

export const PUBLISHER = '/api/am/publisher/v4';
export const DEVPORTAL = '/api/am/devportal/v3';

const SAFE = new Set(['GET', 'HEAD']);
let onUnauthenticated = () => {};

/** Called when the server answers 401: the session expired or was ended. */
export function whenUnauthenticated(callback) {
  onUnauthenticated = callback;
}

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

/** A refused API call: HTTP status, WSO2 error body, offending fields. */
export class ApiError extends Error {
  constructor(status, body) {
    const description = body && typeof body === 'object' ? body.description : '';
    super(description || `The server answered ${status}.`);
    this.status = status;
    this.body = body;
    this.fields = body && Array.isArray(body.error) ? body.error : [];
  }
}

async function send(method, path, body, accept) {
  const headers = { Accept: accept };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!SAFE.has(method)) {
    const token = csrfToken();
    if (token) headers['X-CSRF-Token'] = token;
  }
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, { description: `The admin server cannot be reached (${error.message}).` });
  }
  if (response.status === 401) {
    onUnauthenticated();
  }
  return response;
}

/** Call the JSON API; resolves to the parsed body (or null), rejects with ApiError. */
export async function request(method, path, body) {
  const response = await send(method, path, body, 'application/json');
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { description: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** GET a text resource (the Prometheus exposition at /metrics). */
export async function getText(path) {
  const response = await send('GET', path, undefined, 'text/plain');
  const text = await response.text();
  if (!response.ok) throw new ApiError(response.status, { description: text });
  return text;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body) => request('POST', path, body ?? {}),
  put: (path, body) => request('PUT', path, body),
  del: (path) => request('DELETE', path),
};

/** Every item of a paged WSO2 list. */
export async function getAll(path) {
  const items = [];
  let offset = 0;
  for (;;) {
    const separator = path.includes('?') ? '&' : '?';
    const page = await api.get(`${path}${separator}limit=100&offset=${offset}`);
    items.push(...page.list);
    offset += page.list.length;
    if (page.list.length === 0 || offset >= page.pagination.total) return items;
  }
}
