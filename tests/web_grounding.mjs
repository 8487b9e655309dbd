// web_grounding.mjs — grounded answers on the chat page in headless Chromium
// (Debian's /usr/bin/chromium through playwright-core), against a server
// started with --index: the grounding setting appears, an answer lists its
// sources (numbered, linked, with highlighted snippets) under the shaded
// tokens, each citation marker and the sentence before it are marked with
// their source, hovering one lights the source up; saves a screenshot.
// Usage: node tests/web_grounding.mjs BASE_URL SCREENSHOT_PATH API_KEY
import { chromium } from 'playwright-core';
import { checker, finish, launchChromium, localPage, requireLocalBase } from './lib_test.mjs';

const [base, shot, apiKey] = process.argv.slice(2);
requireLocalBase(shot ? base : '', 'node web_grounding.mjs http://127.0.0.1:PORT SCREENSHOT.png API_KEY');
const { check, failed } = checker();
const { browser, close } = await launchChromium(chromium, { width: 1280, height: 860 });
try {
  const { page, pageErrors } = await localPage(browser, base); /* only ever the server under test */
  await page.goto(base + '/');
  await page.fill('#api-key', apiKey);
  await page.dispatchEvent('#api-key', 'change');
  await page.waitForSelector('#grounding-box:not([hidden])', { timeout: 10000 });
  check(await page.isChecked('#grounding'), 'the page offers grounding (the server has an index), on by default');
  await page.fill('#top-k', '2');
  await page.dispatchEvent('#top-k', 'input');
  await page.fill('#temperature', '0');
  await page.dispatchEvent('#temperature', 'input');
  await page.fill('#max-tokens', '48');
  await page.fill('#input', 'What about sourdough bread?');
  await page.press('#input', 'Enter');
  await page.waitForSelector('.msg.assistant .sources li', { timeout: 30000 });
  await page.waitForSelector('#stop', { state: 'hidden', timeout: 60000 });
  const items = await page.$$eval('.msg.assistant .sources li', (ls) => ls.map((li) => ({
    num: li.querySelector('.num').textContent, link: li.querySelector('a') ? li.querySelector('a').href : null,
    who: li.querySelector('.src-head').textContent, marks: li.querySelectorAll('.snippet mark').length,
    snippet: li.querySelector('.snippet').textContent, citedBy: li.querySelector('.cited-by')?.textContent || '' })));
  check(items.length === 2, `two sources under the answer (${items.length})`);
  check(items.map((x) => x.num).join() === '[1],[2]', 'numbered [1], [2]');
  check(items.some((x) => x.link === 'https://x.com/carol/status/501' && x.who.includes('@carol')), 'a source links to its post');
  check(items.every((x) => x.marks >= 1 && /sourdough|bread/i.test(x.snippet)), 'each snippet highlights the query words');
  const tokens = await page.locator('.msg.assistant .tok').count();
  const shaded = await page.$$eval('.msg.assistant .tok', (s) => s.filter((x) => /rgba\(/.test(x.style.background)).length);
  check(tokens >= 5 && shaded === tokens, `the answer's tokens keep their confidence shading (${shaded}/${tokens})`);
  const cites = await page.$$eval('.msg.assistant .tok.cite', (s) => s.map((x) => x.dataset.source));
  const sentence = await page.$$eval('.msg.assistant .tok.cites', (s) => s.length);
  check(cites.length >= 1 && cites.every((n) => n === '1' || n === '2'), `citation markers marked with their source (${cites})`);
  check(sentence >= 1, `the citing sentence's tokens are marked (${sentence})`);
  check(items.some((x) => x.citedBy.startsWith('cited by: “')), 'a source lists the sentence that cites it');
  // hovering a cited token lights its source up
  const n = cites[0];
  await page.hover(`.msg.assistant .tok.cite >> nth=0`);
  const lit = await page.$$eval(`.msg.assistant .sources li.hl`, (ls) => ls.map((li) => li.dataset.source));
  check(lit.length === 1 && lit[0] === n, `hovering marker [${n}] lights source ${n} (${lit})`);
  // and hovering the source lights its citations (the screenshot shows that, without the token card)
  await page.hover(`.msg.assistant .sources li[data-source="${n}"]`);
  const litToks = await page.locator('.msg.assistant .tok.hl').count();
  check(litToks >= 1, `hovering source ${n} lights the tokens that cite it (${litToks})`);
  await page.screenshot({ path: shot, fullPage: false });
  console.log('screenshot: ' + shot);
  // grounding off: no sources
  await page.uncheck('#grounding');
  await page.fill('#input', 'And without sources?');
  await page.press('#input', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('.msg.assistant .meta').length === 2, null, { timeout: 60000 });
  check((await page.locator('.msg.assistant >> nth=1 >> .sources').count()) === 0, 'grounding unchecked: no sources');
  check(pageErrors.length === 0, `no script errors on the page (${pageErrors.join('; ')})`);
} finally {
  await close();
}
finish(failed, 'web grounding');
