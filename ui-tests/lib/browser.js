// Headless Debian Chromium driven by playwright-core: never a downloaded
// browser. One fresh profile per launch; screenshots go to
// target/ui-artifacts/.

import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, ROOT } from './sluice.js';

export const CHROMIUM = process.env.SLUICE_CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = join(ROOT, 'target', 'ui-artifacts');

/** A browser context with a fresh profile, 1280x800 unless told otherwise. */
export async function launch({ viewport = { width: 1280, height: 800 } } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  // Script errors and Content-Security-Policy violations of any page, for
  // the tests to assert there were none (expected 401/403 answers are not
  // errors here).
  context.pageErrors = [];
  context.on('page', (page) => {
    page.on('pageerror', (error) => context.pageErrors.push(`${page.url()}: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Uncaught/.test(message.text())) {
        context.pageErrors.push(`${page.url()}: ${message.text()}`);
      }
    });
  });
  const close = context.close.bind(context);
  context.close = async () => {
    await close();
    rmSync(profile, { recursive: true, force: true });
  };
  return context;
}

/**
 * Open `path`; when the server sends the browser to the login page (no
 * session yet in this profile), log in through the form and come back.
 */
export async function logIn(page, sluice, path = '/publisher/apis') {
  await page.goto(`${sluice.admin}${path}`);
  if (!new URL(page.url()).pathname.startsWith('/publisher/login')) return;
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForURL(`${sluice.admin}${path}`);
}

/** Save a screenshot of the page as target/ui-artifacts/NAME.png; returns the path. */
export async function screenshot(page, name, options = {}) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, ...options });
  return path;
}

/** Steps 2 and 3: pick the API in the list, then API Configurations > Runtime. */
export async function openRuntime(page, name) {
  await page.getByRole('link', { name: 'APIs', exact: true }).first().click();
  await page.getByRole('table').getByRole('link', { name, exact: true }).click();
  await page.getByRole('navigation', { name: 'API sections' }).getByRole('link', { name: 'Runtime' }).click();
  await page.getByRole('heading', { name: 'Runtime' }).waitFor();
}

/** The text of an element, once it is visible. */
export async function textOf(locator) {
  await locator.waitFor();
  return (await locator.textContent()).trim();
}
