// Business hours and canned replies (issue 20) in the pages: the widget outside hours
// says honestly when the team is back, in the visitor's own time zone and language; the
// inbox's hours editor saves and reloads, refuses bad hours at their field and is axe
// clean; a canned reply is inserted in the reply box with `/` and sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, AGENT_TOKEN, BASE, QUIET, agentSocket, axeClean, convItem, eventually, expectText, hidden, launch, screenshot,
  setChatflow, signIn, uniq, visible, widget,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => {
  if (browser) await setChatflow(browser, { ...QUIET, hours: null });
  await browser?.close();
});

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
/** Hours in UTC closed all of today (UTC), 09:00-17:00 every other day: the next
 * opening is tomorrow 09:00 UTC. */
function closedToday() {
  const now = new Date();
  const weekly = {};
  DAYS.forEach((d, i) => { weekly[d] = i === now.getUTCDay() ? [] : [{ from: '09:00', to: '17:00' }]; });
  const backAt = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1, 9, 0);
  return { hours: { time_zone: 'UTC', weekly, holidays: [] }, backAt };
}
/** The day word the widget should use for `at` seen from now in `zone`. */
function dayWord(at, zone, words) {
  const day = (t) => new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(t); // YYYY-MM-DD
  const diff = Math.round((Date.parse(day(at)) - Date.parse(day(Date.now()))) / 864e5);
  return diff < 1 ? words[0] : diff < 2 ? words[1] : null;
}

async function visitorIn(locale, timezoneId) {
  const context = await browser.newContext({ locale, timezoneId });
  const page = await context.newPage();
  await page.goto(`${BASE}/`);
  const w = widget(page);
  await w.open();
  return { context, page, w };
}

test('outside business hours the widget says when the team is back, in the visitor\'s zone and language', async () => {
  const { hours, backAt } = closedToday();
  const awayText = 'We are closed right now.';
  await setChatflow(browser, { email_capture: { when: 'never' }, away: { mode: 'outside_hours', message: awayText }, hours });

  // Berlin is UTC+1 in winter and +2 in summer: 09:00 UTC is 10:00 or 11:00 there.
  const berlinTime = new Intl.DateTimeFormat('de-DE', { timeZone: 'Europe/Berlin', hour: 'numeric', minute: '2-digit' }).format(backAt);
  const de = await visitorIn('de-DE', 'Europe/Berlin');
  await eventually(async () => (await de.w.status.getAttribute('data-state')) === 'away', 'away');
  const back = de.page.getByTestId('fd-back-at');
  await visible(back);
  const word = dayWord(backAt, 'Europe/Berlin', ['heute', 'morgen']);
  if (word) assert.equal(await back.textContent(), `Wir sind ${word} um ${berlinTime} wieder da`);
  else assert.match(await back.textContent(), new RegExp(`^Wir sind \\S+ um ${berlinTime} wieder da$`));
  await expectText(de.w.away, awayText);
  await screenshot(de.page, 'widget-back-at-de');
  await de.context.close();

  // New York, in English: the same instant, its own clock (4:00 AM or 5:00 AM).
  const nyTime = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: 'numeric', minute: '2-digit' }).format(backAt);
  const en = await visitorIn('en-US', 'America/New_York');
  const backEn = en.page.getByTestId('fd-back-at');
  await visible(backEn);
  const wordEn = dayWord(backAt, 'America/New_York', ['today', 'tomorrow']);
  if (wordEn) assert.equal(await backEn.textContent(), `We\u2019re back ${wordEn} at ${nyTime}`);
  else assert.match(await backEn.textContent(), new RegExp(`^We\u2019re back \\S+ at ${nyTime}$`));
  await en.context.close();
});

test('from back_at on the widget shows the inbox open', async () => {
  // A schedule that opens in a few seconds: closed now, open from the next minute on.
  const open = new Date(Date.now() + 60_000);
  const pad = (n) => String(n).padStart(2, '0');
  const from = `${pad(open.getUTCHours())}:${pad(open.getUTCMinutes())}`;
  if (from === '00:00' || from >= '23:59') return; // around midnight the one-day schedule does not fit
  const weekly = Object.fromEntries(DAYS.map((d) => [d, []]));
  weekly[DAYS[open.getUTCDay()]] = [{ from, to: '24:00' }];
  await setChatflow(browser, { away: { mode: 'outside_hours', message: 'Closed.' }, hours: { time_zone: 'UTC', weekly, holidays: [] } });
  const en = await visitorIn('en-US', 'UTC');
  await visible(en.page.getByTestId('fd-back-at'));
  assert.equal(await en.w.status.getAttribute('data-state'), 'away');
  // No frame announces the opening: the widget's own timer does.
  await eventually(async () => (await en.w.status.getAttribute('data-state')) === 'online', 'open at back_at', 75_000);
  assert.ok(!(await en.w.away.isVisible()), 'the away banner is gone');
  await en.context.close();
});

test('the hours editor shows, checks, saves and reloads the business hours; axe clean', async () => {
  const { hours } = closedToday();
  await setChatflow(browser, { away: { mode: 'outside_hours', message: null }, hours });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 }, timezoneId: 'Europe/Berlin' });
  const admin = await ctx.newPage();
  await signIn(admin, ADMIN_TOKEN);
  await admin.getByTestId('tab-settings').click();
  await eventually(async () => (await admin.getByTestId('cf-away-mode').inputValue()) === 'outside_hours', 'the stored mode');
  assert.equal(await admin.getByTestId('cf-hours-enabled').isChecked(), true);
  assert.equal(await admin.getByTestId('cf-hours-tz').inputValue(), 'UTC');
  const today = DAYS[new Date().getUTCDay()];
  const other = DAYS[(new Date().getUTCDay() + 1) % 7];
  assert.equal(await admin.getByTestId(`cf-hours-${today}`).inputValue(), '');
  assert.equal(await admin.getByTestId(`cf-hours-${other}`).inputValue(), '09:00-17:00');
  await axeClean(admin, 'settings with business hours');

  // Bad values are refused at their field, and nothing is sent.
  await admin.getByTestId('cf-hours-mon').fill('09:00-12:00, 11:00-17:00');
  await admin.getByTestId('cf-hours-tz').fill('Mars/Olympus');
  await admin.getByTestId('cf-hours-holidays').fill('2026-12-24\n24.12.2026');
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-hours-mon-error'), 'not overlapping');
  await expectText(admin.getByTestId('cf-hours-tz-error'), 'Europe/Berlin');
  await expectText(admin.getByTestId('cf-hours-holidays-error'), 'YYYY-MM-DD');
  assert.equal(await admin.getByTestId('cf-hours-mon').getAttribute('aria-invalid'), 'true');
  assert.equal(await admin.evaluate(() => document.activeElement.id), 'cf-hours-tz', 'focus on the first bad field');
  await axeClean(admin, 'hours with field errors');

  // Fixed and saved: the server holds them, and a reload shows them again.
  await admin.getByTestId('cf-hours-tz').fill('Europe/Berlin');
  await admin.getByTestId('cf-hours-mon').fill('13:30-17:00, 08:00-12:30');
  await admin.getByTestId('cf-hours-sat').fill('10:00-14:00');
  await admin.getByTestId('cf-hours-holidays').fill('2026-12-24\n\n2026-12-25\n');
  assert.ok(!(await admin.getByTestId('cf-hours-mon-error').isVisible()), 'typing clears the error');
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-status'), 'Saved');
  await screenshot(admin, 'inbox-business-hours');
  await admin.reload(); // signed in again by the session cookie
  await admin.getByTestId('tab-settings').click();
  await eventually(async () => (await admin.getByTestId('cf-hours-tz').inputValue()) === 'Europe/Berlin', 'the saved hours');
  assert.equal(await admin.getByTestId('cf-hours-mon').inputValue(), '08:00-12:30, 13:30-17:00');
  assert.equal(await admin.getByTestId('cf-hours-sat').inputValue(), '10:00-14:00');
  assert.equal(await admin.getByTestId('cf-hours-holidays').inputValue(), '2026-12-24\n2026-12-25');
  assert.equal(await admin.getByTestId('cf-away-mode').inputValue(), 'outside_hours');

  // Turning the hours off while the mode needs them is refused at the mode.
  await admin.getByTestId('cf-hours-enabled').setChecked(false);
  assert.equal(await admin.getByTestId('cf-hours-tz').isDisabled(), true);
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-away-mode-error'), 'needs business hours');
  // Off, with another mode: saved without hours; a new editor starts in the browser's zone.
  await admin.getByTestId('cf-away-mode').selectOption('always');
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-status'), 'Saved');
  await admin.reload(); // signed in again by the session cookie
  await admin.getByTestId('tab-settings').click();
  await eventually(async () => (await admin.getByTestId('cf-away-mode').inputValue()) === 'always', 'the saved mode');
  assert.equal(await admin.getByTestId('cf-hours-enabled').isChecked(), false);
  assert.equal(await admin.getByTestId('cf-hours-tz').inputValue(), 'Europe/Berlin');
  await ctx.close();
});

test('admins manage canned replies in settings; an agent inserts one with / and the keyboard, and sends it', async () => {
  await setChatflow(browser, { ...QUIET, hours: null });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const admin = await ctx.newPage();
  await signIn(admin, ADMIN_TOKEN);
  await admin.getByTestId('tab-settings').click();
  const card = admin.getByTestId('canned-settings');
  await visible(card);
  const tag = uniq().replace(/[^a-z0-9]/gi, '').toLowerCase().slice(-8);

  // A bad shortcut is refused at its field, and nothing is sent.
  await admin.getByTestId('canned-title-input').fill('Shipping times');
  await admin.getByTestId('canned-shortcut').fill('ship ping!');
  await admin.getByTestId('canned-text').fill('We ship within 2 working days.');
  await admin.getByTestId('canned-save').click();
  await expectText(admin.getByTestId('canned-shortcut-error'), '1 to 32');
  assert.equal(await admin.evaluate(() => document.activeElement.id), 'canned-shortcut');
  await axeClean(admin, 'canned replies with a field error');

  // Saved: it shows in the list (from the server's `canned` frame).
  await admin.getByTestId('canned-shortcut').fill(`ship${tag}`);
  await admin.getByTestId('canned-save').click();
  await expectText(admin.getByTestId('canned-status'), 'Saved');
  const item = admin.getByTestId('canned-item').filter({ hasText: `/ship${tag}` });
  await visible(item);
  // Edited: the same reply, a new text.
  await item.getByTestId('canned-edit').click();
  await expectText(admin.getByTestId('canned-form-title'), 'Shipping times');
  await admin.getByTestId('canned-text').fill('We ship within 2 working days; delivery takes 3 to 5 more.');
  await admin.getByTestId('canned-save').click();
  await expectText(item, 'delivery takes 3 to 5 more');
  // Another, then deleted again.
  await admin.getByTestId('canned-title-input').fill('Opening hours');
  await admin.getByTestId('canned-shortcut').fill(`hours${tag}`);
  await admin.getByTestId('canned-text').fill('We are here Monday to Friday, 9 to 5.');
  await admin.getByTestId('canned-save').click();
  const second = admin.getByTestId('canned-item').filter({ hasText: `/hours${tag}` });
  await visible(second);
  // A shortcut the inbox already uses is refused at the field.
  await admin.getByTestId('canned-title-input').fill('Twice');
  await admin.getByTestId('canned-shortcut').fill(`hours${tag}`);
  await admin.getByTestId('canned-text').fill('Again');
  await admin.getByTestId('canned-save').click();
  await expectText(admin.getByTestId('canned-shortcut-error'), 'not used by another');
  await axeClean(admin, 'canned replies');
  await screenshot(admin, 'inbox-canned-settings');
  await second.getByTestId('canned-delete').click();
  await hidden(second);

  // An agent (not admin) gets the list after ready and inserts with / and the keyboard.
  const vctx = await browser.newContext();
  const visitor = await vctx.newPage();
  await visitor.goto(`${BASE}/`);
  const w = widget(visitor);
  await w.open();
  const question = `How long does shipping take? ${tag}`;
  await w.send(question);
  const actx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const agent = await actx.newPage();
  await signIn(agent, AGENT_TOKEN);
  await (await convItem(agent, question)).click();
  await expectText(agent.getByTestId('thread-messages'), question);
  const input = agent.getByTestId('reply-input');
  const pick = agent.getByTestId('canned-pick');
  await input.pressSequentially(`Hi! /ship${tag.slice(0, 3)}`, { delay: 10 });
  await visible(pick);
  assert.equal(await input.getAttribute('aria-expanded'), 'true');
  await expectText(pick.getByTestId('canned-option').first(), 'Shipping times');
  // A reply saved elsewhere (by the admin's socket) joins the open list from its `canned` frame.
  const sock = await agentSocket(browser, ADMIN_TOKEN);
  await sock.send({ type: 'save_canned', inbox: 'default', id: null, title: 'Shipping abroad', text: 'Abroad it takes a week.', shortcut: `ship${tag}abroad` });
  const saved = await sock.next('canned', 'error');
  assert.equal(saved.type, 'canned', JSON.stringify(saved));
  await eventually(async () => (await pick.getByTestId('canned-option').count()) === 2, 'the new reply in the open list');
  await axeClean(agent, 'the canned-reply picker');
  // Down selects the second, up the first again; the active option is announced.
  await input.press('ArrowDown');
  assert.equal(await input.getAttribute('aria-activedescendant'), 'canned-opt-1');
  await input.press('ArrowUp');
  assert.equal(await agent.locator('#canned-opt-0').getAttribute('aria-selected'), 'true');
  // Esc closes it and keeps the text; typing opens it again.
  await input.press('Escape');
  await hidden(pick);
  assert.equal(await input.inputValue(), `Hi! /ship${tag.slice(0, 3)}`);
  await input.press('End');
  await input.pressSequentially(tag.slice(3), { delay: 10 });
  await visible(pick);
  await eventually(async () => (await pick.getByTestId('canned-option').count()) === 2, 'both shipping replies still match');
  // Enter inserts (it does not send), a second Enter sends.
  await input.press('Enter');
  await hidden(pick);
  const text = 'Hi! We ship within 2 working days; delivery takes 3 to 5 more.';
  assert.equal(await input.inputValue(), text);
  await input.press('Enter');
  await eventually(async () => (await w.allTexts()).includes(text), 'the visitor gets the canned reply');
  await sock.send({ type: 'delete_canned', inbox: 'default', id: saved.replies.find((r) => r.shortcut === `ship${tag}abroad`).id });
  assert.equal((await sock.next('canned', 'error')).type, 'canned');
  await sock.close();
  await vctx.close(); await actx.close(); await ctx.close();
});
