// The inbox page for everyone (issue 19): axe-core finds no serious or critical
// violation on the sign-in, list, open conversation and settings views, in the light
// and the dark scheme; dark mode and reduced motion follow the system; day separators
// and full dates in the thread; links in messages are clickable and safe.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ADMIN_TOKEN, BASE, convItem, eventually, expectText, forbidDialogs, launchQuiet, screenshot, signIn, visible, widget } from './lib.mjs';

const AXE = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

let browser;
before(async () => { browser = await launchQuiet(); });
after(async () => { await browser?.close(); });

/** Runs axe-core in the page (evaluated, so the page's CSP is untouched) and fails on
 * any serious or critical violation, naming the rule and the elements. */
async function axeClean(page, view) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`) }));
  });
  if (process.env.FRONTDESK_AXE_VERBOSE) console.log(view, JSON.stringify(result.map((v) => `${v.impact} ${v.id}`)));
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${view}: axe violations\n${JSON.stringify(bad, null, 2)}`);
}

async function visitorSays(text) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  await w.send(text);
  return context;
}

for (const colorScheme of ['light', 'dark']) {
  test(`axe: no serious or critical violation in the ${colorScheme} scheme (sign-in, list, conversation, settings)`, async () => {
    const v = await visitorSays(`Axe ${colorScheme} ${Date.now()}: see https://acme.example/invoices/1031 please`);
    const ctx = await browser.newContext({ colorScheme, viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    const problems = forbidDialogs(page);
    await page.goto(`${BASE}/inbox`);
    await visible(page.getByTestId('signin-form'));
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg === 'rgb(15, 17, 23)', colorScheme === 'dark', `the ${colorScheme} background (${bg})`);
    await axeClean(page, 'sign-in');
    // A refused token: the error shows, still clean.
    await page.getByTestId('signin-token').fill('fda_nope');
    await page.getByTestId('signin-submit').click();
    await visible(page.getByTestId('signin-error'));
    await axeClean(page, 'sign-in with an error');

    await signIn(page, ADMIN_TOKEN);
    // Focus lands on something useful after signing in, not on <body>.
    assert.notEqual(await page.evaluate(() => document.activeElement.tagName), 'BODY');
    await visible(page.getByTestId('conv-item'));
    await axeClean(page, 'list');
    await screenshot(page, `a11y-${colorScheme}-list`);

    const item = await convItem(page, `Axe ${colorScheme}`);
    await item.click();
    await expectText(page.getByTestId('thread-messages'), 'acme.example');
    assert.equal(await item.locator('button').getAttribute('aria-current'), 'true', 'the open row is aria-current');
    assert.equal(await page.getByTestId('thread-messages').getAttribute('role'), 'log');
    await axeClean(page, 'open conversation');
    await screenshot(page, `a11y-${colorScheme}-thread`);

    await page.getByTestId('tab-settings').click();
    assert.equal(await page.getByTestId('tab-settings').getAttribute('aria-current'), 'page');
    assert.equal(await page.getByTestId('tab-inbox').getAttribute('aria-current'), null);
    await visible(page.getByTestId('chatflow-form'));
    await eventually(async () => !(await page.getByTestId('cf-save').isDisabled()), 'the chatflow to load');
    await visible(page.getByTestId('team-agent'));
    await visible(page.getByTestId('team-inbox'));
    await axeClean(page, 'settings');
    await screenshot(page, `a11y-${colorScheme}-settings`);
    // The admin dialogs, open.
    await page.getByTestId('agent-add').click();
    await visible(page.getByTestId('agent-dialog'));
    await axeClean(page, 'add-agent dialog');
    await page.keyboard.press('Escape');
    await page.getByTestId('team-inbox-edit').first().click();
    await visible(page.getByTestId('inbox-dialog'));
    await axeClean(page, 'edit-inbox dialog');
    await page.keyboard.press('Escape');
    // Esc closed it and focus went back to the button that opened it.
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('data-testid')), 'team-inbox-edit');
    assert.deepEqual(problems, []);
    await ctx.close();
    await v.close();
  });
}

test('reduced motion turns transitions off', async () => {
  const ctx = await browser.newContext({ reducedMotion: 'reduce', viewport: { width: 900, height: 700 } });
  const page = await ctx.newPage();
  await page.goto(`${BASE}/inbox`);
  await visible(page.getByTestId('signin-form'));
  const d = await page.evaluate(() => getComputedStyle(document.getElementById('signin-submit')).transitionDuration);
  assert.match(d, /^0s(, 0s)*$/, d);
  await ctx.close();
});

test('links in messages are real links only for http(s), opened safely; markup stays text', async () => {
  const text = `Links ${Date.now()}: invoice https://acme.example/invoices/1031?x=1&y=2. Also (see http://shop.example/help) ` +
    'but not javascript:alert(1) nor <a href="https://evil.example">html</a> nor data:text/html,hi';
  const v = await visitorSays(text);
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, ADMIN_TOKEN);
  await (await convItem(page, text.slice(0, 20))).click();
  const body = page.getByTestId('thread-message-text').filter({ hasText: 'invoice' });
  await visible(body);
  assert.equal(await body.textContent(), text, 'the text reads exactly as written');
  const links = await body.locator('a').evaluateAll((as) => as.map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target })));
  assert.deepEqual(links, [
    { href: 'https://acme.example/invoices/1031?x=1&y=2', text: 'https://acme.example/invoices/1031?x=1&y=2', rel: 'noopener noreferrer', target: '_blank' },
    { href: 'http://shop.example/help', text: 'http://shop.example/help', rel: 'noopener noreferrer', target: '_blank' },
    // The https URL inside the typed markup is a URL in text, so it links; the markup is not HTML.
    { href: 'https://evil.example/', text: 'https://evil.example', rel: 'noopener noreferrer', target: '_blank' },
  ]);
  // An agent's reply links too, in their own bubble.
  await page.getByTestId('reply-input').fill('Here: https://acme.example/track');
  await page.getByTestId('reply-input').press('Enter');
  const mine = page.locator('[data-testid=thread-message][data-author=agent] a');
  await eventually(async () => (await mine.count()) === 1, 'a link in the reply');
  await ctx.close();
  await v.close();
});

test('older messages get a day separator with the date and their full date and time', async () => {
  const text = `Days ${Date.now()}: still there?`;
  const v = await visitorSays(text);
  const ctx = await browser.newContext({ locale: 'en-US' });
  const page = await ctx.newPage();
  // The page believes it is three days later: the message is from three days ago.
  await page.clock.setFixedTime(new Date(Date.now() + 3 * 86400_000));
  await signIn(page, ADMIN_TOKEN);
  await (await convItem(page, text)).click();
  await expectText(page.getByTestId('thread-messages'), text);
  const sep = await page.getByTestId('day-separator').first().textContent();
  assert.ok(!/Today|Yesterday/.test(sep) && /\d/.test(sep), `a date, not Today: ${sep}`);
  const meta = page.locator('[data-testid=thread-message]', { hasText: text }).getByTestId('thread-message-meta');
  const when = await meta.textContent();
  assert.match(when, /\d{4}/, `the year in ${when}`);
  assert.match(when, /\d{1,2}:\d{2}/, `the time in ${when}`);
  // A reply (stamped by the server on the same day) joins that day: still one separator.
  await page.getByTestId('reply-input').fill('Yes, sorry for the wait!');
  await page.getByTestId('reply-input').press('Enter');
  const reply = page.locator('[data-testid=thread-message][data-author=agent]', { hasText: 'sorry for the wait' });
  await eventually(async () => (await reply.getAttribute('data-status')) === 'sent', 'the reply ack');
  assert.equal(await page.getByTestId('day-separator').count(), 1);
  await ctx.close();
  await v.close();
});
