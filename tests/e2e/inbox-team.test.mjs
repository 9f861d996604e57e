// Running the team from the inbox page (issue 19): an admin adds an agent and gets the
// invite link once; the link signs that agent in in another browser; a display name
// reaches the visitor's widget; a change of inboxes reconnects the agent with their new
// access at once; revoking closes their open inbox at once. Inboxes are created and
// edited (origins, widget title, colour, greeting), taking effect without a restart.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  ADMIN_TOKEN, AGENT_TOKEN, BASE, convItem, eventually, expectText, forbidDialogs, hidden, launchQuiet, screenshot, signIn,
  uniq, visible, widget,
} from './lib.mjs';

let browser;
before(async () => { browser = await launchQuiet(); });
after(async () => { await browser?.close(); });

async function adminSettings() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();
  const problems = forbidDialogs(page);
  await signIn(page, ADMIN_TOKEN);
  await page.getByTestId('tab-settings').click();
  await visible(page.getByTestId('team-settings'));
  await visible(page.getByTestId('team-agent'));
  return { context, page, problems };
}
const online = async (page) => (await page.getByTestId('conn-status').getAttribute('data-state')) === 'online'
  && !(await page.getByTestId('signin').isVisible());
const row = (page, name) => page.getByTestId('team-agent').filter({ has: page.getByTestId('team-agent-name').filter({ hasText: name }) });

test('an admin adds an agent, whose invite link signs them in; display name, access change and revoke take effect at once', async () => {
  const admin = await adminSettings();
  const { page } = admin;
  const name = `Ann ${uniq()}`;

  // Add the agent: name, role, inboxes; the invite link is shown once, with a copy button.
  await page.getByTestId('agent-add').click();
  await visible(page.getByTestId('agent-dialog'));
  await page.getByTestId('agent-name-input').fill(name);
  await page.getByTestId('agent-role-input').selectOption('agent');
  await page.getByTestId('agent-inbox-default').setChecked(true);
  await page.getByTestId('agent-save').click();
  await visible(page.getByTestId('invite-dialog'));
  await expectText(page.getByTestId('invite-dialog'), 'will not be shown again');
  const link = await page.getByTestId('invite-link').inputValue();
  assert.match(link, new RegExp(`^${BASE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/inbox#invite=fda_`));
  await page.getByTestId('invite-copy').click();
  await expectText(page.getByTestId('invite-status'), 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), link);
  await screenshot(page, 'team-invite');
  await page.getByTestId('invite-close').click();
  await hidden(page.getByTestId('invite-dialog'));
  await eventually(async () => (await page.getByTestId('invite-link').inputValue()) === '', 'the link to leave the page once closed');
  await visible(row(page, name));
  await expectText(row(page, name).getByTestId('team-agent-sub'), `Visitors see \u201c${name}\u201d`);

  // The invite link signs Ann in, in another browser.
  const annCtx = await browser.newContext();
  const ann = await annCtx.newPage();
  const annProblems = forbidDialogs(ann);
  await ann.goto(link);
  await eventually(() => online(ann), 'the invite link to sign Ann in');
  await expectText(ann.getByTestId('agent-name'), name);
  assert.equal(ann.url(), `${BASE}/inbox`);

  // A visitor writes; Ann replies; the widget shows her name.
  const vctx = await browser.newContext();
  const vpage = await vctx.newPage();
  await vpage.goto(`${BASE}/`);
  const w = widget(vpage);
  await w.open();
  const hello = `Team ${uniq()}: can someone help me?`;
  await w.send(hello);
  await (await convItem(ann, hello)).click();
  await ann.getByTestId('reply-input').fill('Hi, Ann here.');
  await ann.getByTestId('reply-input').press('Enter');
  const who = vpage.locator('[data-testid=fd-message][data-author=agent] .who');
  await expectText(who, name);

  // A display name: visitors see it on the next reply.
  await row(page, name).getByTestId('team-agent-edit').click();
  await page.getByTestId('agent-display-input').fill('Ann from Acme Bikes');
  await page.getByTestId('agent-save').click();
  await hidden(page.getByTestId('agent-dialog'));
  await expectText(row(page, name).getByTestId('team-agent-sub'), 'Visitors see \u201cAnn from Acme Bikes\u201d');
  await ann.getByTestId('reply-input').fill('Your bike is ready.');
  await ann.getByTestId('reply-input').press('Enter');
  await expectText(who, 'Ann from Acme Bikes');

  // A rename shows in the team list.
  const renamed = `${name} Smith`;
  await row(page, name).getByTestId('team-agent-edit').click();
  await page.getByTestId('agent-name-input').fill(renamed);
  await page.getByTestId('agent-save').click();
  await hidden(page.getByTestId('agent-dialog'));
  await visible(row(page, renamed));

  // Taking the default inbox away: Ann's page reconnects (4010) with her new access, and
  // the conversation leaves her list without a reload.
  await row(page, renamed).getByTestId('team-agent-edit').click();
  await page.getByTestId('agent-inbox-default').setChecked(false);
  await page.getByTestId('agent-save').click();
  await hidden(page.getByTestId('agent-dialog'));
  await eventually(async () => (await ann.getByTestId('conv-item').filter({ hasText: hello }).count()) === 0,
    'the conversation to leave Ann\'s list');
  await eventually(() => online(ann), 'Ann reconnected');
  await expectText(ann.getByTestId('agent-name'), renamed);
  // The conversation she had open is closed too: it is not hers to see any more.
  await visible(ann.getByTestId('thread-none'));
  assert.equal(await ann.getByTestId('reply-input').isVisible(), false);

  // Revoke, with a confirmation: Ann's open inbox closes at once and says why.
  await row(page, renamed).getByTestId('team-agent-revoke').click();
  await visible(page.getByTestId('confirm-dialog'));
  await expectText(page.getByTestId('confirm-dialog'), 'signed out everywhere');
  await page.getByTestId('confirm-ok').click();
  await hidden(page.getByTestId('confirm-dialog'));
  await visible(ann.getByTestId('signin-form'), 5000);
  await expectText(ann.getByTestId('signin-error'), 'signed out');
  await visible(row(page, renamed).getByTestId('team-agent-revoked'));
  // Her browser's cookie is dead too.
  await ann.reload();
  await visible(ann.getByTestId('signin-form'));
  // The admin cannot revoke themselves: no such button on their own row.
  const own = page.getByTestId('team-agent').filter({ hasText: '(you)' });
  await visible(own);
  assert.equal(await own.getByTestId('team-agent-revoke').isVisible(), false);

  assert.deepEqual(admin.problems, []);
  assert.deepEqual(annProblems, []);
  await vctx.close();
  await annCtx.close();
  await admin.context.close();
});

test('a new invite link replaces the old one', async () => {
  const admin = await adminSettings();
  const { page } = admin;
  const name = `Ben ${uniq()}`;
  await page.getByTestId('agent-add').click();
  await page.getByTestId('agent-name-input').fill(name);
  await page.getByTestId('agent-save').click();
  await visible(page.getByTestId('invite-dialog'));
  const first = await page.getByTestId('invite-link').inputValue();
  assert.match(first, /#invite=fda_/);
  await page.getByTestId('invite-close').click();
  await hidden(page.getByTestId('invite-dialog'));
  await row(page, name).getByTestId('team-agent-invite').click();
  await visible(page.getByTestId('invite-dialog'));
  const second = await eventually(async () => page.getByTestId('invite-link').inputValue(), 'the new link');
  assert.notEqual(first, second);
  await page.getByTestId('invite-close').click();
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(first);
  await expectText(p.getByTestId('signin-error'), 'not valid');
  await p.goto(second);
  await eventually(() => online(p), 'the new link signs in');
  await ctx.close();
  await admin.context.close();
});

/** Opens a visitor connection to `inbox` from the server's own origin: the welcome, or the close code. */
async function visitorHello(page, inbox) {
  return page.evaluate((url) => new Promise((resolve) => {
    const ws = new WebSocket(url);
    ws.onopen = () => ws.send(JSON.stringify({ type: 'hello', visitor_token: null, resume_after: 0 }));
    ws.onmessage = (e) => { const f = JSON.parse(e.data); if (f.type === 'welcome') { resolve(f); ws.close(); } };
    ws.onclose = (e) => resolve({ closed: e.code });
  }), `${BASE.replace(/^http/, 'ws')}/ws/visitor?inbox=${encodeURIComponent(inbox)}`);
}

test('an admin creates an inbox and edits its origins and widget; it takes effect without a restart', async () => {
  const admin = await adminSettings();
  const { page } = admin;
  const key = `shop-${uniq()}`;
  await page.getByTestId('inbox-add').click();
  await visible(page.getByTestId('inbox-dialog'));
  // Checked at the form first: a bad key, an origin with a path.
  await page.getByTestId('inbox-key-input').fill('no spaces please');
  await page.getByTestId('inbox-name-input').fill('Shop');
  await page.getByTestId('inbox-save').click();
  await expectText(page.getByTestId('inbox-error'), 'letters, digits');
  await page.getByTestId('inbox-key-input').fill(key);
  await page.getByTestId('inbox-origins-input').fill('https://shop.example.com/checkout');
  await page.getByTestId('inbox-save').click();
  await expectText(page.getByTestId('inbox-error'), 'no path');
  await page.getByTestId('inbox-origins-input').fill('https://shop.example.com');
  await page.getByTestId('inbox-save').click();
  await hidden(page.getByTestId('inbox-dialog'));
  const item = page.locator(`[data-testid=team-inbox][data-inbox-key="${key}"]`);
  await visible(item);
  await expectText(item.getByTestId('team-inbox-origins'), 'https://shop.example.com');
  // The same key again: the server refuses, the dialog says so in plain words.
  await page.getByTestId('inbox-add').click();
  await page.getByTestId('inbox-key-input').fill(key);
  await page.getByTestId('inbox-name-input').fill('Shop again');
  await page.getByTestId('inbox-save').click();
  await expectText(page.getByTestId('inbox-error'), 'already be in use');
  await page.getByTestId('inbox-cancel').click();

  // This page's origin is not allowed yet: a visitor from here is refused (4003).
  const vctx = await browser.newContext();
  const vpage = await vctx.newPage();
  await vpage.goto(`${BASE}/healthz`);
  assert.deepEqual(await visitorHello(vpage, key), { closed: 4003 });

  // Edit: allow this origin too (one per line), and brand the widget.
  await item.getByTestId('team-inbox-edit').click();
  await visible(page.getByTestId('inbox-dialog'));
  assert.equal(await page.getByTestId('inbox-key-input').isVisible(), false, 'a key cannot change');
  await page.getByTestId('inbox-name-input').fill('Shop EU');
  await page.getByTestId('inbox-origins-input').fill(`https://shop.example.com\n${new URL(BASE).origin}`);
  await page.getByTestId('inbox-title-input').fill('Talk to the shop');
  await page.getByTestId('inbox-color-input').fill('#0A5CFF');
  assert.equal(await page.getByTestId('inbox-color-picker').inputValue(), '#0a5cff', 'the picker follows the text');
  await page.getByTestId('inbox-greeting-input').fill('Moin! Wie können wir helfen? (kept as typed)');
  await page.getByTestId('inbox-save').click();
  await hidden(page.getByTestId('inbox-dialog'));
  await expectText(item.getByTestId('team-inbox-name'), 'Shop EU');
  await expectText(item.getByTestId('team-inbox-origins'), new URL(BASE).origin);

  // At once, without a restart: the visitor is welcomed, with the widget settings.
  const welcome = await visitorHello(vpage, key);
  assert.deepEqual(welcome.widget, { title: 'Talk to the shop', color: '#0a5cff', greeting: 'Moin! Wie können wir helfen? (kept as typed)' });

  // The edit dialog shows what was saved; clearing a value gives the widget's default back.
  await item.getByTestId('team-inbox-edit').click();
  assert.equal(await page.getByTestId('inbox-origins-input').inputValue(), `https://shop.example.com\n${new URL(BASE).origin}`);
  assert.equal(await page.getByTestId('inbox-color-input').inputValue(), '#0a5cff');
  await page.getByTestId('inbox-title-input').fill('');
  await page.getByTestId('inbox-save').click();
  await hidden(page.getByTestId('inbox-dialog'));
  assert.equal((await visitorHello(vpage, key)).widget?.title ?? null, null);

  // The new inbox is the admin's (its creator's) in the chatflow choice too.
  await eventually(async () => (await page.getByTestId('cf-inbox').locator('option').allTextContents()).includes(key), 'the new inbox in the chatflow choice');
  await screenshot(page, 'team-inboxes');
  // On a phone the sections fit the screen, dialogs too.
  await page.setViewportSize({ width: 390, height: 844 });
  const fits = () => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth
    && document.getElementById('settings-view').scrollWidth <= window.innerWidth);
  assert.ok(await fits(), 'no horizontal scrolling in the settings');
  await item.getByTestId('team-inbox-edit').click();
  await visible(page.getByTestId('inbox-dialog'));
  assert.ok(await page.getByTestId('inbox-dialog').evaluate((d) => d.getBoundingClientRect().right <= window.innerWidth));
  await screenshot(page, 'team-inbox-dialog-390');
  await page.keyboard.press('Escape');
  assert.deepEqual(admin.problems, []);
  await vctx.close();
  await admin.context.close();
});

test('a non-admin sees neither Team nor Inboxes', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  await signIn(page, AGENT_TOKEN);
  await page.getByTestId('tab-settings').click();
  await visible(page.getByTestId('general-settings'));
  assert.equal(await page.getByTestId('team-settings').isVisible(), false);
  assert.equal(await page.getByTestId('inboxes-settings').isVisible(), false);
  await ctx.close();
});
