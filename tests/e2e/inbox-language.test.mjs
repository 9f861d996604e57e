// The inbox page speaks the agent's language (issue 19): German for a German browser,
// English otherwise, a choice in settings remembered in this browser, <html lang> and
// dates in step, friendly texts per error code (never the server's developer message),
// and an admin's own texts shown exactly as typed. Both string tables are complete.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, AGENT_TOKEN, BASE, convItem, eventually, expectText, forbidDialogs, launch, setChatflow, signIn, visible, widget } from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('the English and German string tables have the same keys, and every key the page names exists', () => {
  const js = readFileSync(new URL('../../src/assets/inbox.js', import.meta.url), 'utf8');
  const html = readFileSync(new URL('../../src/assets/inbox.html', import.meta.url), 'utf8').replace(/<!--[\s\S]*?-->/g, '');
  const table = js.slice(js.indexOf('var STRINGS = {'), js.indexOf('\n  };', js.indexOf('var STRINGS = {')));
  const [en, de] = table.split(/\n {4}de: \{/);
  const keys = (part) => new Set([...part.matchAll(/'([a-zA-Z_.]+)':/g)].map((m) => m[1]));
  const enKeys = keys(en), deKeys = keys(de);
  assert.ok(enKeys.size > 150, `a full table (${enKeys.size} keys)`);
  assert.deepEqual([...enKeys].filter((k) => !deKeys.has(k)), [], 'missing in German');
  assert.deepEqual([...deKeys].filter((k) => !enKeys.has(k)), [], 'missing in English');
  const named = [...html.matchAll(/data-t="([^"]+)"/g)].map((m) => m[1])
    .concat([...html.matchAll(/data-ta="([^"]+)"/g)].flatMap((m) => m[1].split(',').map((p) => p.split(':')[1])));
  assert.deepEqual(named.filter((k) => !enKeys.has(k)), [], 'keys the page names that the table lacks');
  // Keys the script asks for with t('…').
  const used = [...js.matchAll(/\bt\('([a-zA-Z_.]+)'/g)].map((m) => m[1]).filter((k) => !k.endsWith('.'));
  assert.deepEqual(used.filter((k) => !enKeys.has(k)), [], 'keys the script uses that the table lacks');
});

test('a German browser gets the inbox in German; the choice in settings switches and is remembered', async () => {
  const prompt = 'Hinterlass uns deine E-Mail – wir melden uns! (typed by the admin, never translated)';
  await setChatflow(browser, { email_capture: { when: 'never', message: prompt }, away: { mode: 'off', message: null } });
  const ctx = await browser.newContext({ locale: 'de-DE', timezoneId: 'Europe/Berlin' });
  const page = await ctx.newPage();
  const problems = forbidDialogs(page);
  await page.goto(`${BASE}/inbox`);
  await visible(page.getByTestId('signin-form'));
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  await expectText(page.locator('#signin h1'), 'Beim Posteingang anmelden');
  assert.equal(await page.getByTestId('signin-submit').textContent(), 'Anmelden');

  // A wrong token: the German text.
  await page.getByTestId('signin-token').fill('fda_not-a-real-token');
  await page.getByTestId('signin-submit').click();
  await expectText(page.getByTestId('signin-error'), 'nicht angenommen');

  await signIn(page, ADMIN_TOKEN);
  await expectText(page.getByTestId('tab-inbox'), 'Posteingang');
  await expectText(page.getByTestId('conn-status'), 'Verbunden');
  assert.equal(await page.getByTestId('search').getAttribute('placeholder'), 'Name, E-Mail oder Nachricht suchen');
  assert.match(await page.title(), /Posteingang/);

  // A visitor writes; the list and thread speak German, the day separator says "Heute",
  // and the time is formatted for German (24 h, no AM/PM).
  const vctx = await browser.newContext();
  const vpage = await vctx.newPage();
  await vpage.goto(`${BASE}/`);
  const w = widget(vpage);
  await w.open();
  const hello = `Sprache ${Date.now()}: is the shop open on Sunday?`;
  await w.send(hello);
  const item = await convItem(page, hello);
  await expectText(item.getByTestId('conv-label'), 'Unbekannter Besucher');
  await item.click();
  await expectText(page.getByTestId('thread-messages'), hello);
  await expectText(page.getByTestId('day-separator'), 'Heute');
  const meta = await page.getByTestId('thread-message-meta').first().textContent();
  assert.match(meta, /^\d{1,2}:\d{2}$/, `a German time: ${meta}`);

  // An error answered by code: the friendly German text, not the server's message.
  await page.getByTestId('assign-open').click();
  await page.getByTestId('assign-email').fill('kein-at-zeichen');
  await page.getByTestId('assign-lookup').click();
  await expectText(page.getByTestId('assign-error'), 'Diese E-Mail-Adresse sieht nicht gültig aus.');
  await page.getByTestId('assign-cancel').click();

  // The chatflow form shows the admin's prompt exactly as typed, in a German page.
  await page.getByTestId('tab-settings').click();
  await eventually(async () => (await page.getByTestId('cf-message').inputValue()) === prompt, 'the admin\'s own prompt text');
  await expectText(page.locator('#cf-title'), 'Chatablauf');

  // Switch to English: everything follows at once, and a reload keeps it.
  await page.getByTestId('lang-select').selectOption('en');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await expectText(page.getByTestId('tab-inbox'), 'Inbox');
  await expectText(page.locator('#cf-title'), 'Chatflow');
  assert.equal(await page.getByTestId('cf-message').inputValue(), prompt, 'the admin text is not touched');
  await page.getByTestId('tab-inbox').click();
  await expectText(page.getByTestId('day-separator'), 'Today');
  await expectText(item.getByTestId('conv-label'), 'Unknown visitor');
  await page.reload();
  await visible(page.getByTestId('tab-inbox'));
  await expectText(page.getByTestId('tab-inbox'), 'Inbox');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  assert.equal(await page.evaluate(() => localStorage.getItem('frontdesk.lang')), 'en');

  // Back to the browser's language.
  await page.getByTestId('tab-settings').click();
  await page.getByTestId('lang-select').selectOption('');
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'de');
  assert.equal(await page.evaluate(() => localStorage.getItem('frontdesk.lang')), null);
  assert.deepEqual(problems, []);
  await vctx.close();
  await ctx.close();
});

test('an English browser gets English, with a non-admin too', async () => {
  const ctx = await browser.newContext({ locale: 'en-GB' });
  const page = await ctx.newPage();
  await signIn(page, AGENT_TOKEN);
  assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
  await expectText(page.getByTestId('tab-settings'), 'Settings');
  await ctx.close();
});
