// lib_test.mjs — what the Node.js end-to-end clients share: the check
// counter, the loopback-only base URL argument, and a headless Chromium on a
// fresh profile whose pages may only reach the server under test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// check(cond, what, detail?) prints ok/FAIL; failed() is the count so far.
export function checker() {
  let failures = 0;
  const check = (cond, what, detail) => {
    console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}${!cond && detail !== undefined ? ': ' + JSON.stringify(detail) : ''}`);
    if (!cond) failures++;
  };
  return { check, failed: () => failures };
}

// argv[0] must be a loopback URL (tests never talk to another host).
export function requireLocalBase(base, usage) {
  if (!base || !base.startsWith('http://127.0.0.1:')) {
    console.error('usage: ' + usage);
    process.exit(2);
  }
}

// Debian's chromium, headless, on a fresh profile; close() also removes it.
export async function launchChromium(chromium, viewport) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tg-chromium-'));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium', headless: true, viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  return {
    browser,
    close: async () => { await browser.close(); fs.rmSync(profile, { recursive: true, force: true }); },
  };
}

// A page that may only load URLs under base, collecting its script errors.
export async function localPage(browser, base) {
  const page = await browser.newPage();
  await page.route('**/*', (route) => (route.request().url().startsWith(base) ? route.continue() : route.abort()));
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  return { page, pageErrors };
}

// The end of a script: the count of failed checks, exit 1 if any.
export function finish(failed, name) {
  if (failed()) {
    console.error(`${failed()} check(s) failed`);
    process.exit(1);
  }
  console.log(`${name}: all checks passed`);
}
