// web_chat.mjs — the chat page in headless Chromium (Debian's /usr/bin/chromium
// driven by playwright-core): type a message, see a reply stream in with
// shaded tokens, hover one for its alternatives, press Stop on a long reply,
// start a new chat; saves a screenshot.
// Usage: node tests/web_chat.mjs BASE_URL SCREENSHOT_PATH [API_KEY]
import { chromium } from 'playwright-core';
import { checker, finish, launchChromium, localPage, requireLocalBase } from './lib_test.mjs';

const [base, shot, apiKey] = process.argv.slice(2);
requireLocalBase(shot ? base : '', 'node web_chat.mjs http://127.0.0.1:PORT SCREENSHOT.png [API_KEY]');
const { check, failed } = checker();

const { browser, close } = await launchChromium(chromium, { width: 1280, height: 800 });
try {
  const { page, pageErrors } = await localPage(browser, base); /* only ever the server under test */
  await page.goto(base + '/');
  if (apiKey) {
    // the key goes into the settings field, as a user would type it
    await page.fill('#api-key', apiKey);
    await page.dispatchEvent('#api-key', 'change');
    await page.waitForFunction(() => !document.getElementById('model').textContent.includes('unavailable'), null,
                               { timeout: 10000 }).catch(() => {});
  }
  await page.waitForFunction(() => !document.getElementById('model').textContent.includes('connecting'));
  check(!(await page.textContent('#model')).includes('unavailable'), 'the page finds the model through /v1/models');

  // settings: a short reply, sampled (a briefly trained model's greedy text is all spaces)
  await page.fill('#temperature', '0.8');
  await page.dispatchEvent('#temperature', 'input');
  await page.fill('#max-tokens', '24');
  // A briefly trained model sometimes samples <|im_end|> first: a one-token
  // reply is right but shows too little, so such a chat is started again.
  let firstCount = 0, tokens = 0;
  for (let attempt = 1; attempt <= 5; attempt++) {
    if (attempt > 1) await page.click('#new-chat');
    await page.fill('#input', 'Hello there! Tell me something.');
    await page.press('#input', 'Enter');
    // the reply streams: tokens appear while the stop button is showing
    // 'attached', not 'visible': a token whose bytes end mid-character has an
    // empty span (its text arrives with the next token) and no size.
    await page.waitForSelector('.msg.assistant .tok', { state: 'attached', timeout: 30000 });
    firstCount = await page.locator('.msg.assistant .tok').count();
    await page.waitForSelector('#stop', { state: 'hidden', timeout: 60000 });
    tokens = await page.locator('.msg.assistant .tok').count();
    if (tokens >= 2) break;
    console.log(`attempt ${attempt}: a ${tokens}-token reply, again`);
  }
  check(firstCount >= 1 && tokens >= firstCount, `reply streamed in (${firstCount} tokens first, ${tokens} in all)`);
  check(tokens >= 2, 'several shaded tokens');
  const shaded = await page.$$eval('.msg.assistant .tok', (s) => s.filter((x) => /rgba\(/.test(x.style.background)).length);
  check(shaded === tokens, `every token carries a shade (${shaded}/${tokens})`);
  const meta = await page.textContent('.msg.assistant .meta');
  check(/tokens/.test(meta), `a finished reply shows its summary ("${meta}")`);
  check((await page.textContent('.msg.user .body')) === 'Hello there! Tell me something.', 'the user message is shown');

  // hover: the alternatives card
  // (the first token with a size: one ending mid-character has an empty
  // span, and one that is just a newline has no width)
  const visibleTok = await page.$$eval('.msg.assistant .tok',
                                       (s) => s.findIndex((x) => x.getBoundingClientRect().width > 0));
  check(visibleTok >= 0, 'a token is visible to hover');
  await page.hover(`.msg.assistant .tok >> nth=${Math.max(visibleTok, 0)}`);
  await page.waitForSelector('#tip:not([hidden])', { timeout: 5000 });
  const rows = await page.locator('#tip tr').count();
  check(rows === 5, `hovering a token shows its top 5 alternatives (${rows})`);
  await page.screenshot({ path: shot, fullPage: false });
  console.log('screenshot: ' + shot);
  await page.mouse.move(5, 5);

  // stop: a long reply is cut by the Stop button (or ends on its own first)
  await page.fill('#max-tokens', '250');
  await page.fill('#temperature', '1');
  await page.dispatchEvent('#temperature', 'input');
  await page.fill('#input', 'Now write a very long story.');
  await page.press('#input', 'Enter');
  await page.waitForFunction(() => document.querySelectorAll('.msg.assistant')[1]?.querySelector('.tok, .meta'),
                             null, { timeout: 30000 });
  // The reply may end between the check and the click: then there is no Stop.
  if (await page.isVisible('#stop')) await page.click('#stop', { timeout: 3000 }).catch(() => {});
  await page.waitForSelector('#stop', { state: 'hidden', timeout: 10000 });
  const meta2 = await page.textContent('.msg.assistant >> nth=1 >> .meta');
  const body2 = /error/.test(meta2) ? await page.textContent('.msg.assistant >> nth=1') : '';
  check(/stopped|finished|limit/.test(meta2), `Stop ends the reply ("${meta2}"${body2 ? `; reply: ${body2}` : ''})`);
  check(await page.isVisible('#send'), 'the Send button is back after Stop');

  // new chat clears the conversation
  await page.click('#new-chat');
  check((await page.locator('.msg').count()) === 0, 'New chat clears the conversation');
  check(pageErrors.length === 0, `no script errors on the page (${pageErrors.join('; ')})`);
} finally {
  await close();
}
finish(failed, 'web chat');
