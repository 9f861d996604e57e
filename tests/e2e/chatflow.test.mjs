// An admin changes the chatflow in the inbox page, and the next visitor feels it at once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, BASE, eventually, expectText, launch, screenshot, setChatflow, signIn, visible, widget,
} from './lib.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

test('an admin switches email capture to first_message and the next visitor is prompted at once', async () => {
  // Start from a chatflow that would not prompt within the test's time.
  await setChatflow(browser, {
    email_capture: { when: 'no_reply', delay_secs: 3600, message: null },
    away: { mode: 'off', message: null },
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const admin = await ctx.newPage();
  await signIn(admin, ADMIN_TOKEN);
  await admin.getByTestId('tab-settings').click();
  const form = admin.getByTestId('chatflow-form');
  await visible(form);
  await eventually(async () => (await admin.getByTestId('cf-when').inputValue()) === 'no_reply', 'the chatflow to load');
  assert.equal(await admin.getByTestId('cf-delay').inputValue(), '3600');

  const promptText = 'Where can we send the answer? We usually reply within the hour.';
  await admin.getByTestId('cf-when').selectOption('first_message');
  await admin.getByTestId('cf-message').fill(promptText);
  await admin.getByTestId('cf-followup-enabled').setChecked(true);
  await admin.getByTestId('cf-followup-delay').fill('300');
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-status'), 'Saved');
  await screenshot(admin, 'inbox-chatflow-settings');

  // The saved values are what the server now holds.
  await admin.reload();
  await admin.getByTestId('tab-settings').click();
  // The whole form, not its first field: a field restored by the browser could pass alone.
  await eventually(async () => (await admin.getByTestId('cf-when').inputValue()) === 'first_message'
    && (await admin.getByTestId('cf-message').inputValue()) === promptText, 'the saved chatflow');
  assert.equal(await admin.getByTestId('cf-followup-delay').inputValue(), '300');

  // The next visitor is prompted right after their first message, with the new text.
  const vctx = await browser.newContext();
  const visitor = await vctx.newPage();
  await visitor.goto(`${BASE}/`);
  const w = widget(visitor);
  await w.open();
  const started = Date.now();
  await w.send('Do you rent bikes by the day?');
  await visible(w.prompt, 5000);
  await expectText(w.promptText, promptText);
  assert.ok(Date.now() - started < 5000, 'prompted at once');
  await vctx.close();

  // Empty texts say which built-in text the visitor gets instead (the server's own).
  assert.match(await admin.getByTestId('cf-away-message').getAttribute('placeholder'), /as soon as we can/);
  assert.match(await admin.getByTestId('cf-message').getAttribute('placeholder'), /if you.re gone when we reply/);

  // A bad value is refused at its field, in words an admin understands, and nothing is sent.
  await admin.getByTestId('cf-when').selectOption('no_reply');
  await admin.getByTestId('cf-delay').fill('0');
  await admin.getByTestId('cf-save').click();
  await expectText(admin.getByTestId('cf-delay-error'), 'from 1 to 86400');
  assert.equal(await admin.getByTestId('cf-delay').getAttribute('aria-invalid'), 'true');
  assert.equal(await admin.evaluate(() => document.activeElement.id), 'cf-delay', 'focus on the bad field');
  assert.ok(!/delay_secs|got 0/.test(await admin.getByTestId('cf-status').textContent()), 'no developer text');
  // Leaving for the inbox and coming back keeps what was typed (and says it is unsaved).
  await admin.getByTestId('cf-delay').fill('45');
  await admin.getByTestId('tab-inbox').click();
  await expectText(admin.getByTestId('toast'), 'unsaved');
  await admin.getByTestId('tab-settings').click();
  assert.equal(await admin.getByTestId('cf-delay').inputValue(), '45');
  await ctx.close();
});
