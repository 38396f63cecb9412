// Starts the real Sluice binary and its mock backend as private processes on
// free 127.0.0.1 ports, and talks to them: the admin REST API with HTTP
// Basic, the gateway with an API key, the mock's own counters.

import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
// SLUICE_BIN: another build of the binary (default: the debug build).
const BINARY = process.env.SLUICE_BIN || join(ROOT, 'target', 'debug', 'sluice');
export const ADMIN_PASSWORD = 'ui-test password 4 sluice';
const PUBLISHER = '/api/am/publisher/v4';
const DEVPORTAL = '/api/am/devportal/v3';

/** A port nothing listens on right now. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/**
 * Poll `check` until it returns a truthy value or `timeoutMs` passes. A
 * thrown error counts as "not yet", unless it is marked `fatal`.
 */
export async function until(check, { timeoutMs = 10000, intervalMs = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
      last = value;
    } catch (error) {
      if (error.fatal) throw error;
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function start(args, env, logFile) {
  const log = openSync(logFile, 'a');
  const child = spawn(BINARY, args, { env: { ...process.env, ...env }, stdio: ['ignore', log, log] });
  child.logFile = logFile;
  child.on('error', (error) => { child.failed = error; });
  return child;
}

function stop(child) {
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    return exited;
  }
  return Promise.resolve();
}

/** A running Sluice and mock backend. Call `stop()` when done. */
export async function startSluice() {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ui-'));
  const [gatewayPort, adminPort, mockPort] = [await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'sluice.toml');
  writeFileSync(config, [
    '[gateway]', `listen = "127.0.0.1:${gatewayPort}"`,
    '[admin]', `listen = "127.0.0.1:${adminPort}"`,
    '[store]', `url = "sqlite://${join(dir, 'sluice.db')}"`,
    '[log]', 'access_log = false', '',
  ].join('\n'));
  const mock = start(['mock-backend', '--listen', `127.0.0.1:${mockPort}`], {}, join(dir, 'mock.log'));
  const sluice = start(['serve', '--config', config], {
    SLUICE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    SLUICE_KEY_PEPPER: 'ui-test pepper',
  }, join(dir, 'sluice.log'));

  const instance = new Sluice({ dir, gatewayPort, adminPort, mockPort, sluice, mock });
  const exitedEarly = (child) => {
    if (child.failed) return new Error(`cannot start ${BINARY} (run cargo build --bin sluice first): ${child.failed.message}`);
    if (child.exitCode === null) return null;
    return new Error(`${child.spawnargs.join(' ')} exited ${child.exitCode}:\n${readFileSync(child.logFile, 'utf8')}`);
  };
  await until(async () => {
    for (const child of [sluice, mock]) {
      const error = exitedEarly(child);
      if (error) throw Object.assign(error, { fatal: true });
    }
    const [health, stats] = await Promise.all([
      fetch(`${instance.admin}/healthz`).then((r) => r.ok, () => false),
      fetch(`${instance.mock}/__mock/stats`).then((r) => r.ok, () => false),
    ]);
    return health && stats;
  }, { timeoutMs: 30000, what: 'sluice and the mock backend to listen' });
  return instance;
}

export class Sluice {
  constructor({ dir, gatewayPort, adminPort, mockPort, sluice, mock }) {
    this.dir = dir;
    this.admin = `http://127.0.0.1:${adminPort}`;
    this.gateway = `http://127.0.0.1:${gatewayPort}`;
    this.mock = `http://127.0.0.1:${mockPort}`;
    this.processes = [sluice, mock];
  }

  async stop() {
    await Promise.all(this.processes.map(stop));
  }

  /** Call the admin API as the admin user (HTTP Basic). */
  async rest(method, path, body) {
    const headers = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PASSWORD}`).toString('base64')}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.admin}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await response.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = text; }
    return { status: response.status, json, text, headers: response.headers };
  }

  async createApi(definition) {
    const reply = await this.rest('POST', `${PUBLISHER}/apis`, definition);
    if (reply.status !== 201) throw new Error(`create API: ${reply.status} ${reply.text}`);
    return reply.json;
  }

  async getApi(id) {
    const reply = await this.rest('GET', `${PUBLISHER}/apis/${id}`);
    if (reply.status !== 200) throw new Error(`get API: ${reply.status} ${reply.text}`);
    return reply.json;
  }

  /** An application subscribed to `apiId` with a PRODUCTION and a SANDBOX key. */
  async subscribedKeys(apiId, name) {
    const app = await this.rest('POST', `${DEVPORTAL}/applications`, { name, throttlingPolicy: 'Unlimited' });
    if (app.status !== 201) throw new Error(`create app: ${app.text}`);
    const applicationId = app.json.applicationId;
    const sub = await this.rest('POST', `${DEVPORTAL}/subscriptions`, { apiId, applicationId, throttlingPolicy: 'Unlimited' });
    if (sub.status !== 201) throw new Error(`subscribe: ${sub.text}`);
    const keys = {};
    for (const keyType of ['PRODUCTION', 'SANDBOX']) {
      const key = await this.rest('POST', `${DEVPORTAL}/applications/${applicationId}/api-keys/${keyType}/generate`, { validityPeriod: -1 });
      if (key.status !== 200 && key.status !== 201) throw new Error(`generate key: ${key.text}`);
      keys[keyType] = key.json.apikey;
    }
    return keys;
  }

  /** Call an API through the gateway with a key. */
  async call(path, key) {
    const response = await fetch(`${this.gateway}${path}`, { headers: { apikey: key } });
    const text = await response.text();
    let json = null;
    try { json = JSON.parse(text); } catch { json = null; }
    return { status: response.status, json, headers: response.headers };
  }

  /** Requests the mock backend has received. */
  async backendRequests() {
    const response = await fetch(`${this.mock}/__mock/stats`);
    return (await response.json()).requests;
  }

  /** /metrics, as the admin sees it. */
  async metrics() {
    const reply = await this.rest('GET', '/metrics');
    if (reply.status !== 200) throw new Error(`/metrics: ${reply.status}`);
    return reply.text;
  }
}

/** A definition of a plain HTTP API on the mock backend. */
export function httpApi(sluice, { name, context, version = 'v1', maxTps, extra = {} }) {
  return {
    name,
    context,
    version,
    type: 'HTTP',
    securityScheme: ['api_key'],
    endpointConfig: {
      endpoint_type: 'http',
      production_endpoints: { url: `${sluice.mock}/prod` },
      sandbox_endpoints: { url: `${sluice.mock}/sandbox` },
    },
    ...(maxTps ? { maxTps } : {}),
    ...extra,
  };
}
